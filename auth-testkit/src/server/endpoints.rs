//! The other endpoints: userinfo, introspection (RFC 7662), pushed authorization requests
//! (RFC 9126), revocation (RFC 7009) and end-session.

use super::*;

pub(super) async fn userinfo(AxState(s): St, headers: HeaderMap) -> Response {
    let faults = match s.enter(Some(Endpoint::Userinfo)).await {
        Ok(faults) => faults,
        Err(response) => return response,
    };
    let dpop_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| s.config.dpop && scheme.eq_ignore_ascii_case("dpop"))
        .map(|(_, token)| token.trim());
    let jkt = match dpop_token {
        Some(token) => match s.dpop_proof(&headers, dpop::At::Userinfo, "GET", "/userinfo", Some(token), &faults) {
            Ok(Some(jkt)) => Some(jkt),
            Ok(None) => {
                return s.dpop_refusal(dpop::At::Userinfo, "invalid_dpop_proof", "The DPoP proof is missing.");
            }
            Err(response) => return response,
        },
        None => None,
    };
    let username = dpop_token.or_else(|| bearer(&headers)).and_then(|token| {
        let state = s.lock();
        let grant = state.access_tokens.get(token)?;
        // A bound token only with a proof of its key; an unbound one only as a bearer token.
        (grant.expires > Instant::now() && grant.jkt == jkt).then(|| grant.username.clone())
    });
    let Some(user) = username.as_deref().and_then(|u| s.user(u)) else {
        let mut response =
            oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", "Missing, unknown or expired access token.");
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer error=\"invalid_token\""));
        return response;
    };
    let mut claims = user.claims();
    if faults.has(&Fault::UserinfoSubMismatch) {
        claims.insert("sub".into(), format!("{}-other", user.username()).into());
    }
    let mut response = no_store(StatusCode::OK, Value::Object(claims));
    s.add_dpop_nonce(&mut response);
    response
}

/// RFC 7662 token introspection, for the client only (authenticated as at `/token`):
/// `active` with the grant's claims for a live access token `/token` issued, `{"active":
/// false}` for anything else (a JWT from `MockIdp::access_token_for` included).
pub(super) async fn introspect(AxState(s): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(response) = s.enter(Some(Endpoint::Introspect)).await {
        return response;
    }
    let params = parse_form(&body);
    if let Err(response) = s.authenticate_client(&headers, &params) {
        return response;
    }
    let Some(token) = params.get("token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "token is missing.");
    };
    let answer = {
        let state = s.lock();
        state.access_tokens.get(token).filter(|grant| grant.expires > Instant::now()).map(|grant| {
            let user = s.user(&grant.username);
            json!({
                "active": true,
                "sub": grant.username,
                "client_id": s.config.client_id,
                "scope": grant.scope,
                "token_type": "Bearer",
                "exp": grant.expires_at,
                "iat": grant.issued_at,
                "iss": s.issuer_for(user),
                "aud": s.config.introspection_audience.as_deref().unwrap_or(&s.config.client_id),
            })
        })
    };
    no_store(StatusCode::OK, answer.unwrap_or_else(|| json!({ "active": false })))
}

impl Shared {
    /// The parameters of an `/authorize` request: those pushed earlier when it carries a
    /// `request_uri` (which is spent: single use), else its own; and whether they were
    /// pushed. An unknown, used or expired `request_uri`, or one pushed by another client,
    /// is an HTML `400` page (there is no validated `redirect_uri` to send an error to).
    /// Keeps `params`, which were pushed, under a fresh single-use `request_uri` for the
    /// login form to post back (so a required push cannot be skipped by posting the form
    /// with parameters of one's own).
    pub(super) fn push_again(&self, params: Params) -> String {
        let request_uri = format!("{REQUEST_URI_PREFIX}{}", jwt::random_token());
        self.lock().pushed.insert(request_uri.clone(), (params, Instant::now() + PAR_TTL));
        request_uri
    }

    pub(super) fn pushed_request(&self, params: Params) -> Result<(Params, bool), Response> {
        let Some(request_uri) = params.get("request_uri") else { return Ok((params, false)) };
        let now = Instant::now();
        let pushed = {
            let mut state = self.lock();
            state.pushed.retain(|_, (_, expires)| *expires > now);
            state.pushed.remove(request_uri)
        };
        match pushed {
            Some((pushed, _)) if pushed.get("client_id") == params.get("client_id") => Ok((pushed, true)),
            Some(_) => {
                let msg = "The request_uri was pushed by another client than this request's client_id.";
                Err(html_page(StatusCode::BAD_REQUEST, "Invalid request_uri", msg))
            }
            None => {
                let msg = "The request_uri is unknown, was already used, or has expired.";
                Err(html_page(StatusCode::BAD_REQUEST, "Invalid request_uri", msg))
            }
        }
    }
}

/// RFC 9126 pushed authorization requests, for the client only (authenticated as at
/// `/token`): the parameters are checked as `/authorize` checks them and kept for
/// [`PAR_TTL`] under a fresh single-use `request_uri`. Answers `201 {"request_uri",
/// "expires_in"}`, or `400 {"error": "invalid_request"}` for parameters `/authorize` would
/// refuse.
pub(super) async fn par(AxState(s): St, headers: HeaderMap, body: Bytes) -> Response {
    let faults = match s.enter(Some(Endpoint::Par)).await {
        Ok(faults) => faults,
        Err(response) => return response,
    };
    if let Some(delay) = faults.find(|f| match f {
        Fault::ParDelay(d) => Some(*d),
        _ => None,
    }) {
        tokio::time::sleep(delay).await;
    }
    if faults.has(&Fault::ParServerError) {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "Fault::ParServerError");
    }
    if let Some(error) = faults.find(|f| match f {
        Fault::ParError(e) => Some(e),
        _ => None,
    }) {
        return oauth_error(StatusCode::BAD_REQUEST, error, "Fault::ParError");
    }
    let mut params = parse_form(&body);
    if let Err(response) = s.authenticate_client(&headers, &params) {
        return response;
    }
    params.remove("client_secret");
    params.entry("client_id".into()).or_insert_with(|| s.config.client_id.clone());
    if params.contains_key("request_uri") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "request_uri may not be pushed.");
    }
    if s.validate_authorize(&params, &faults).is_err() {
        let description = "The pushed parameters are not a valid authorization request (see /authorize).";
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description);
    }
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", jwt::random_token());
    {
        let mut state = s.lock();
        state.last_par = Some(params.clone());
        state.pushed.insert(request_uri.clone(), (params, Instant::now() + PAR_TTL));
    }
    no_store(StatusCode::CREATED, json!({ "request_uri": request_uri, "expires_in": PAR_TTL.as_secs() }))
}

/// RFC 7009 token revocation, for the client only (authenticated as at `/token`): the
/// token is recorded (see `MockIdp::revoked_tokens`) and, when it is a refresh or access
/// token `/token` issued, forgotten, so a refresh with it answers `invalid_grant`. Answers
/// `200` also for tokens it does not know, as the RFC says.
pub(super) async fn revoke(AxState(s): St, headers: HeaderMap, body: Bytes) -> Response {
    let faults = match s.enter(Some(Endpoint::Revoke)).await {
        Ok(faults) => faults,
        Err(response) => return response,
    };
    if let Some(delay) = faults.find(|f| match f {
        Fault::RevocationDelay(d) => Some(*d),
        _ => None,
    }) {
        tokio::time::sleep(delay).await;
    }
    if faults.has(&Fault::RevocationServerError) {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "Fault::RevocationServerError");
    }
    let params = parse_form(&body);
    if let Err(response) = s.authenticate_client(&headers, &params) {
        return response;
    }
    let Some(token) = params.get("token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "token is missing.");
    };
    let mut state = s.lock();
    state.refresh_tokens.remove(token);
    state.access_tokens.remove(token);
    state.revoked.push(token.clone());
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response()
}

pub(super) async fn end_session(AxState(s): St, RawQuery(query): RawQuery, body: Bytes) -> Response {
    if let Err(response) = s.enter(Some(Endpoint::EndSession)).await {
        return response;
    }
    if !s.config.end_session {
        return html_page(StatusCode::NOT_FOUND, "Not found", "RP-initiated logout is disabled on this mock provider.");
    }
    let mut params = parse_form(query.as_deref().unwrap_or_default().as_bytes());
    params.extend(parse_form(&body));
    s.lock().last_end_session = Some(params.clone());
    match params.get("post_logout_redirect_uri") {
        Some(uri) => match http_url(uri) {
            Some(mut url) => {
                if let Some(state) = params.get("state") {
                    url.query_pairs_mut().append_pair("state", state);
                }
                found(&url)
            }
            None => html_page(
                StatusCode::BAD_REQUEST,
                "Invalid post_logout_redirect_uri",
                "post_logout_redirect_uri must be an absolute http(s) URL.",
            ),
        },
        None => html_page(StatusCode::OK, "You are signed out", "You are signed out of the mock provider."),
    }
}
