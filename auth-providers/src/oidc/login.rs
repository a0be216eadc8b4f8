//! The login: the authorization request (with PAR, DPoP's `dpop_jkt`, step-up options and
//! `response_mode`), and the callback's completion (RFC 9207 `iss`, the code exchange with
//! its DPoP proof, the ID token, userinfo).

use super::*;

impl OidcProvider {
    /// The authorization request of [`IdentityProvider::authorize_with`], and the pending
    /// login the callback needs.
    pub(super) async fn start_login(
        &self,
        redirect_uri: &str,
        options: &LoginOptions,
    ) -> Result<Authorization, ProviderError> {
        let metadata = self.metadata().await?;
        let state = CsrfToken::new_random_len(32);
        let nonce = Nonce::new_random_len(32);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut params: Vec<(String, String)> = [
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("scope", &self.scope),
            ("state", state.secret()),
            ("nonce", nonce.secret()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let asked = step_up_params(options);
        for (key, value) in &self.extra_params {
            if !asked.iter().any(|(asked, _)| asked == key) {
                params.push((key.clone(), value.clone()));
            }
        }
        params.extend(asked.into_iter().map(|(k, v)| (k.to_owned(), v)));
        if self.response_mode.0 == ResponseMode::FormPost {
            // A provider that lists its response modes and not this one would answer
            // with an error, or worse, with a redirect the callback refuses.
            if metadata.response_modes_supported.as_ref().is_some_and(|modes| !modes.iter().any(|m| m == "form_post")) {
                return Err(ProviderError::other(format!(
                    "{}: {} = \"form_post\", but the provider's discovery document does not list form_post \
                     in response_modes_supported; remove the key",
                    self.name, self.response_mode.1
                )));
            }
            params.push(("response_mode".to_owned(), "form_post".to_owned()));
        }
        // RFC 9449 §10: the login's key is named by its thumbprint, so the code can only
        // be exchanged with a proof of that key (sent inside the push with PAR).
        if self.dpop.0 != auth_core::DpopMode::Off
            && let Some(algs) = &metadata.dpop_signing_alg_values_supported
            && !algs.iter().any(|alg| alg == self.dpop.1.as_str())
        {
            return Err(ProviderError::other(format!(
                "{}: {}_alg is {:?}, but the provider's discovery document offers only {:?} \
                 (dpop_signing_alg_values_supported)",
                self.name,
                self.dpop.2,
                self.dpop.1.as_str(),
                algs
            )));
        }
        let dpop_key = match self.dpop.0 {
            auth_core::DpopMode::Off => None,
            _ => Some(DpopKey::generate(self.dpop.1).map_err(|e| ProviderError::other(format!("{}: {e}", self.name)))?),
        };
        if let Some(key) = &dpop_key {
            params.push(("dpop_jkt".to_owned(), key.thumbprint().to_owned()));
        }
        if let Some(profile) = &self.fapi2
            && metadata.pushed_authorization_request_endpoint.is_none()
        {
            return Err(ProviderError::other(format!(
                "{}: {profile} = \"fapi2\" requires pushed authorization requests, but the provider's \
                 discovery document advertises no pushed_authorization_request_endpoint",
                self.name
            )));
        }
        let (use_par, key) = (self.use_par.0, self.use_par.1.as_str());
        let pushed_to = par::endpoint(
            use_par,
            metadata.pushed_authorization_request_endpoint.as_ref(),
            metadata.require_pushed_authorization_requests,
            key,
        )
        .map_err(|message| ProviderError::other(format!("{}: {message}", self.name)))?;
        let mut url = metadata.authorization_endpoint.clone();
        match pushed_to {
            // RFC 9126 §4: only the client and the pushed request's handle go through
            // the browser.
            Some(endpoint) => {
                let request_uri = par::push(&self.http, &metadata, endpoint, &self.client, &params).await?;
                url.query_pairs_mut()
                    .append_pair("client_id", &self.client.client_id)
                    .append_pair("request_uri", &request_uri);
            }
            None => {
                url.query_pairs_mut().append_pair("client_id", &self.client.client_id).extend_pairs(&params);
            }
        }
        let mut pending = PendingLogin::new(state.into_secret())
            .with_nonce(nonce.secret().clone())
            .with_pkce_verifier(verifier.into_secret());
        if let Some(key) = &dpop_key {
            pending = pending.with_dpop_key(key.stored());
        }
        Ok(Authorization::new(url, pending))
    }

    /// Adds the userinfo endpoint's claims when the ID token lacks `email` or `name`.
    /// ID token claims win; userinfo only adds claims the ID token does not have.
    async fn with_userinfo(
        &self,
        metadata: &Metadata,
        mut claims: Claims,
        access_token: &str,
        dpop: Option<dpop::Proofs<'_>>,
    ) -> Result<Claims, Failure> {
        const WHAT: Endpoint = Endpoint::Userinfo;
        let Some(endpoint) = metadata.userinfo_endpoint.as_ref() else { return Ok(claims) };
        if claims.contains_key("email") && claims.contains_key("name") {
            return Ok(claims);
        }
        let answer = match dpop {
            Some(dpop) => {
                let build = || {
                    let authorization = format!("DPoP {access_token}");
                    Ok(self.http.get(endpoint).header(reqwest::header::AUTHORIZATION, authorization))
                };
                dpop.send(&self.http, WHAT, "GET", endpoint, Some(access_token), build).await?
            }
            None => self.http.send(WHAT, endpoint, self.http.get(endpoint).bearer_auth(access_token)).await?,
        };
        if answer.status == reqwest::StatusCode::UNAUTHORIZED || answer.status == reqwest::StatusCode::FORBIDDEN {
            return Err(self
                .http
                .rejected(&format!("the userinfo endpoint refused the access token (HTTP {})", answer.status)));
        }
        if !answer.status.is_success() {
            return Err(self.http.unavailable(WHAT, endpoint, &format!("answered HTTP {}", answer.status)));
        }
        if answer.content_type.as_deref().is_some_and(|t| t.starts_with("application/jwt")) {
            return Err(self
                .http
                .rejected("signed or encrypted userinfo responses (application/jwt) are not supported"));
        }
        let info: Claims = answer.json(&self.http, WHAT, endpoint)?;
        if info.get("sub") != claims.get("sub") {
            return Err(self
                .http
                .rejected("the userinfo response is about another subject than the ID token (sub differs)"));
        }
        for (claim, value) in info {
            claims.entry(claim).or_insert(value);
        }
        Ok(claims)
    }

    pub(super) async fn complete_login(
        &self,
        callback: &CallbackParams,
        pending: &PendingLogin,
        redirect_uri: &str,
    ) -> Result<LoginResult, ProviderError> {
        let metadata = self.metadata().await?;
        // RFC 9207: the callback names the issuer that answered; a mix-up attack shows as
        // another issuer here, or as none from a provider that promises to send it.
        match &callback.iss {
            Some(iss) if !self.profile.callback_issuer_ok(&metadata.issuer, iss) => {
                let message = format!(
                    "the callback comes from issuer {:?}, not {:?} (RFC 9207)",
                    token::clip(iss),
                    metadata.issuer
                );
                return Err(self.http.rejected(&message).into());
            }
            None if metadata.authorization_response_iss_parameter_supported => {
                let message = "the callback lacks the iss parameter this provider promises to send (RFC 9207)";
                return Err(self.http.rejected(message).into());
            }
            None if self.fapi2.is_some() => {
                let key = self.fapi2.as_deref().unwrap_or_default();
                let message =
                    format!("the callback lacks the iss parameter, which {key} = \"fapi2\" requires (RFC 9207)");
                return Err(self.http.rejected(&message).into());
            }
            _ => {}
        }
        let (Some(nonce), Some(pkce_verifier)) = (pending.nonce.as_deref(), pending.pkce_verifier.as_deref()) else {
            return Err(self
                .http
                .rejected("the pending login lacks its nonce or PKCE verifier; start the login again")
                .into());
        };
        let grant = Grant::Code { code: &callback.code, pkce_verifier, redirect_uri };
        let (mode, _, dpop_config_key) = &self.dpop;
        let key = match (mode, pending.dpop_key.as_deref()) {
            (auth_core::DpopMode::Off, _) => None,
            (_, Some(stored)) => Some(DpopKey::from_stored(stored).ok_or_else(|| {
                self.http.rejected("the pending login's DPoP key is unreadable; start the login again")
            })?),
            (_, None) => {
                let message =
                    format!("{dpop_config_key} is on but the pending login has no DPoP key; start the login again");
                return Err(self.http.rejected(&message).into());
            }
        };
        let proofs = key.as_ref().map(|key| dpop::Proofs { key, nonce: &self.dpop_nonce });
        let tokens = token::request(&self.http, &metadata, &self.client, grant, proofs).await?;
        tracing::debug!("authorization code exchanged");
        let proofs = match proofs {
            Some(_) if !dpop::bound(&self.http, *mode, dpop_config_key, tokens.token_type.as_deref())? => None,
            proofs => proofs,
        };
        let Some(raw_id_token) = tokens.id_token.as_deref() else {
            return Err(self
                .http
                .rejected("the token endpoint returned no ID token; is \"openid\" in the scope?")
                .into());
        };
        let claims = self.verify_id_token(&metadata, raw_id_token, Some(nonce)).await?;
        let mut claims = self.with_userinfo(&metadata, claims, &tokens.access_token, proofs).await?;
        self.profile.complete_claims(&mut claims);
        self.profile.admit(&claims)?;
        let subject = self.profile.subject(&claims);
        let mut tokens = tokens.into_token_set();
        tokens.dpop_key = proofs.map(|proofs| proofs.key.stored().to_owned());
        Ok(LoginResult::new(Identity::new(&self.name, subject, claims), tokens))
    }
}

/// The authorization parameters `options` asks for (OpenID Connect Core §3.1.2.1).
fn step_up_params(options: &LoginOptions) -> Vec<(&'static str, String)> {
    let mut params = Vec::new();
    if let Some(max_age) = options.max_age {
        params.push(("max_age", max_age.to_string()));
    }
    if !options.acr_values.is_empty() {
        params.push(("acr_values", options.acr_values.join(" ")));
    }
    if let Some(prompt) = &options.prompt {
        params.push(("prompt", prompt.clone()));
    }
    params
}
