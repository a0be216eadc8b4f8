//! `/authorize` and its login form: validating the request, the login page, and the
//! answer back to the client (a redirect, or a page that posts it).

use super::*;

/// A validated authorization request: enough to redirect back to the client.
#[derive(Debug)]
pub(super) struct AuthRequest {
    redirect_uri: Url,
    /// As sent: the token request must repeat it exactly.
    redirect_uri_raw: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    scope: String,
    prompt_none: bool,
    /// `max_age` (any value) or `prompt=login`: the person must authenticate again now.
    reauthenticate: bool,
    /// The DPoP key's thumbprint (RFC 9449 `dpop_jkt`).
    dpop_jkt: Option<String>,
    /// The first of the space-separated `acr_values`, the class the login reaches.
    acr: Option<String>,
    /// `response_mode=form_post`: the answer is a page that POSTs it to `redirect_uri`.
    form_post: bool,
}

impl Shared {
    /// Checks the parameters of `/authorize` (also re-posted by the login form). Errors
    /// about the client or `redirect_uri` are an HTML page, never a redirect to an
    /// unvalidated URL; the rest redirect back with an OAuth error.
    pub(super) fn validate_authorize(&self, params: &Params, faults: &Faults) -> Result<AuthRequest, Response> {
        let client_id = params.get("client_id").map(String::as_str).unwrap_or_default();
        if client_id != self.config.client_id {
            let msg = format!(
                "Unknown client_id \"{client_id}\". This mock provider knows only \"{}\".",
                self.config.client_id
            );
            return Err(html_page(StatusCode::BAD_REQUEST, "Unknown client", &msg));
        }
        let raw = params.get("redirect_uri").map(String::as_str).unwrap_or_default();
        let Some(redirect_uri) = http_url(raw) else {
            let msg = "The redirect_uri parameter is missing or is not an absolute http(s) URL.";
            return Err(html_page(StatusCode::BAD_REQUEST, "Invalid redirect_uri", msg));
        };
        let prompt: Vec<&str> = params.get("prompt").map(|p| p.split(' ').collect()).unwrap_or_default();
        let request = AuthRequest {
            redirect_uri,
            redirect_uri_raw: raw.to_owned(),
            state: params.get("state").cloned(),
            nonce: params.get("nonce").cloned(),
            code_challenge: params.get("code_challenge").cloned(),
            scope: params.get("scope").cloned().unwrap_or_default(),
            prompt_none: prompt.contains(&"none"),
            reauthenticate: params.contains_key("max_age") || prompt.contains(&"login"),
            acr: params.get("acr_values").and_then(|v| v.split(' ').find(|v| !v.is_empty())).map(String::from),
            dpop_jkt: params.get("dpop_jkt").cloned(),
            form_post: params.get("response_mode").is_some_and(|m| m == "form_post"),
        };
        let problem = if params.get("response_type").map(String::as_str) != Some("code") {
            Some(("unsupported_response_type", "Only response_type=code is supported."))
        } else if params.get("response_mode").is_some_and(|m| m != "query" && m != "form_post") {
            Some(("invalid_request", "Only response_mode=query and response_mode=form_post are supported."))
        } else if !request.scope.split(' ').any(|s| s == "openid") {
            Some(("invalid_scope", "The scope must include openid."))
        } else if request.code_challenge.is_some()
            && params.get("code_challenge_method").map(String::as_str) != Some("S256")
        {
            Some(("invalid_request", "Only code_challenge_method=S256 is supported."))
        } else {
            None
        };
        match problem {
            Some((error, description)) => Err(self.redirect_error(&request, error, description, faults)),
            None => Ok(request),
        }
    }

    fn redirect_error(&self, request: &AuthRequest, error: &str, description: &str, faults: &Faults) -> Response {
        let mut answer = vec![("error", error.to_owned()), ("error_description", description.to_owned())];
        if let Some(state) = &request.state {
            answer.push(("state", state.clone()));
        }
        answer.push(("iss", self.callback_iss(faults, None)));
        respond(request, &answer)
    }

    /// Signs `username` in: stores a fresh code and redirects back to the client.
    ///
    /// The login happened `auth_age` ago unless the request asks for re-authentication
    /// (`max_age`, `prompt=login`); `Fault::IgnoreStepUp` ignores that and `acr_values`.
    fn complete_login(&self, request: &AuthRequest, username: &str, faults: &Faults) -> Response {
        let code = jwt::random_token();
        let now = Instant::now();
        let step_up = !faults.has(&Fault::IgnoreStepUp);
        {
            let mut state = self.lock();
            let age = if step_up && request.reauthenticate {
                0
            } else {
                state.auth_age.unwrap_or(self.config.auth_age).as_secs()
            };
            state.codes.retain(|_, grant| grant.expires > now);
            state.codes.insert(
                code.clone(),
                CodeGrant {
                    client_id: self.config.client_id.clone(),
                    redirect_uri: request.redirect_uri_raw.clone(),
                    username: username.to_owned(),
                    nonce: request.nonce.clone(),
                    code_challenge: request.code_challenge.clone(),
                    scope: request.scope.clone(),
                    auth_time: unix_now().saturating_sub(age),
                    acr: request.acr.clone().filter(|_| step_up),
                    sid: jwt::random_token(),
                    dpop_jkt: request.dpop_jkt.clone(),
                    expires: now + CODE_TTL,
                },
            );
        }
        let mut answer = vec![("code", code)];
        if let Some(state) = &request.state {
            answer.push(("state", state.clone()));
        }
        answer.push(("iss", self.callback_iss(faults, self.user(username))));
        respond(request, &answer)
    }

    /// The authorization request `params` (of `/authorize` or its login form), checked; with
    /// pushed requests required, one that was not `pushed` is sent back with
    /// `invalid_request`.
    fn authorization_request(&self, params: &Params, pushed: bool, faults: &Faults) -> Result<AuthRequest, Response> {
        let request = self.validate_authorize(params, faults)?;
        if self.config.require_par && !pushed {
            let description = "Pushed Authorization Request must be used (require_pushed_authorization_requests).";
            return Err(self.redirect_error(&request, "invalid_request", description, faults));
        }
        Ok(request)
    }

    /// The login form for the authorization request `params`. A pushed request's form
    /// carries only `client_id` and a fresh `request_uri` for them, as the browser's request
    /// did; any other carries the parameters themselves.
    fn login_page(&self, params: &Params, pushed: bool, error: Option<&str>) -> Response {
        let handle;
        let shown: Params = if pushed {
            let mut request = params.clone();
            request.retain(|key, _| !matches!(key.as_str(), "login" | "password" | "cancel"));
            handle = self.push_again(request);
            let client_id = params.get("client_id").cloned().unwrap_or_default();
            [("client_id".to_owned(), client_id), ("request_uri".to_owned(), handle)].into_iter().collect()
        } else {
            params.clone()
        };
        self.login_form(&shown, error)
    }

    fn login_form(&self, params: &Params, error: Option<&str>) -> Response {
        let mut body = String::new();
        if let Some(error) = error {
            body.push_str(&format!("<p role=\"alert\" class=\"error\">{}</p>\n", escape(error)));
        }
        body.push_str(&format!(
            "<p>Choose an account to continue to <code>{}</code>.</p>\n\
             <form method=\"post\" action=\"authorize/login\">\n",
            escape(&self.config.client_id)
        ));
        for (key, value) in params.iter().filter(|(k, _)| !matches!(k.as_str(), "login" | "password" | "cancel")) {
            body.push_str(&format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">\n", escape(key), escape(value)));
        }
        if self.config.users.iter().any(MockUser::has_password) {
            body.push_str(
                "<p><label for=\"password\">Password (only for accounts that have one)</label>\n\
                 <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\"></p>\n",
            );
        }
        body.push_str("<ul>\n");
        for user in &self.config.users {
            let email = user.email_address().map(|e| format!(" <small>{}</small>", escape(e))).unwrap_or_default();
            body.push_str(&format!(
                "<li><button type=\"submit\" id=\"login-{u}\" name=\"login\" value=\"{u}\">Sign in as {}{email}</button></li>\n",
                escape(user.display_name()),
                u = escape(user.username()),
            ));
        }
        body.push_str(
            "</ul>\n<p><button type=\"submit\" id=\"cancel\" name=\"cancel\" value=\"1\">Cancel</button></p>\n</form>\n",
        );
        let status = if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
        html_raw(status, "Sign in to Mock IdP", &body)
    }
}

pub(super) async fn authorize(AxState(s): St, RawQuery(query): RawQuery) -> Response {
    let params = parse_form(query.as_deref().unwrap_or_default().as_bytes());
    s.lock().last_authorize = Some(params.clone());
    let faults = match s.enter(Some(Endpoint::Authorize)).await {
        Ok(faults) => faults,
        Err(response) => return response,
    };
    let (params, pushed) = match s.pushed_request(params) {
        Ok(resolved) => resolved,
        Err(response) => return response,
    };
    let request = match s.authorization_request(&params, pushed, &faults) {
        Ok(request) => request,
        Err(response) => return response,
    };
    if faults.has(&Fault::AccessDenied) {
        return s.redirect_error(&request, "access_denied", "The user denied access (Fault::AccessDenied).", &faults);
    }
    let login_as = s.lock().login_as.clone();
    match login_as {
        Some(username) => s.complete_login(&request, &username, &faults),
        None if request.prompt_none => {
            s.redirect_error(&request, "login_required", "prompt=none, but nobody is signed in.", &faults)
        }
        None => s.login_page(&params, pushed, None),
    }
}

pub(super) async fn login(AxState(s): St, body: Bytes) -> Response {
    let form = parse_form(&body);
    let faults = match s.enter(None).await {
        Ok(faults) => faults,
        Err(response) => return response,
    };
    // The authorization request: the form's own fields, or those pushed behind its
    // `request_uri`; then what the person chose.
    let (mut params, pushed) = match s.pushed_request(form.clone()) {
        Ok(resolved) => resolved,
        Err(response) => return response,
    };
    for key in ["login", "password", "cancel"] {
        if let Some(value) = form.get(key) {
            params.insert(key.to_owned(), value.clone());
        }
    }
    let request = match s.authorization_request(&params, pushed, &faults) {
        Ok(request) => request,
        Err(response) => return response,
    };
    if params.contains_key("cancel") {
        return s.redirect_error(&request, "access_denied", "The user cancelled the sign-in.", &faults);
    }
    if faults.has(&Fault::AccessDenied) {
        return s.redirect_error(&request, "access_denied", "The user denied access (Fault::AccessDenied).", &faults);
    }
    let username = params.get("login").map(String::as_str).unwrap_or_default();
    let Some(user) = s.user(username) else {
        return s.login_page(&params, pushed, Some(&format!("There is no account named \"{username}\".")));
    };
    if !user.password_matches(params.get("password").map(String::as_str)) {
        return s.login_page(&params, pushed, Some(&format!("Wrong password for \"{username}\".")));
    }
    s.complete_login(&request, username, &faults)
}

/// The authorization response `answer` to `request`'s client: a redirect with it in the
/// query, or with `response_mode=form_post` a page that POSTs it to `redirect_uri` as soon
/// as it loads (OAuth 2.0 Form Post Response Mode), as `oidc-provider` answers.
fn respond(request: &AuthRequest, answer: &[(&str, String)]) -> Response {
    if !request.form_post {
        let mut url = request.redirect_uri.clone();
        url.query_pairs_mut().extend_pairs(answer.iter().map(|(k, v)| (*k, v.as_str())));
        return found(&url);
    }
    let mut body = format!("<form method=\"post\" action=\"{}\">\n", escape(request.redirect_uri.as_str()));
    for (name, value) in answer {
        body.push_str(&format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">\n", escape(name), escape(value)));
    }
    body.push_str(
        "<noscript><button type=\"submit\">Continue</button></noscript>\n</form>\n\
         <script>document.forms[0].submit();</script>\n",
    );
    html_raw(StatusCode::OK, "Submit this form", &body)
}
