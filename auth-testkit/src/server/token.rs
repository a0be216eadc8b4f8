//! `/token`: the authorization code and refresh token grants, and the tokens they issue.

use super::*;

pub(super) async fn token(AxState(s): St, headers: HeaderMap, body: Bytes) -> Response {
    let faults = match s.enter(Some(Endpoint::Token)).await {
        Ok(faults) => faults,
        Err(response) => return response,
    };
    if let Some(error) = faults.find(|f| match f {
        Fault::TokenError(e) => Some(e),
        _ => None,
    }) {
        return oauth_error(StatusCode::BAD_REQUEST, error, "Fault::TokenError");
    }
    let params = parse_form(&body);
    if let Err(response) = s.authenticate_client(&headers, &params) {
        return response;
    }
    let jkt = match s.dpop_proof(&headers, dpop::At::Token, "POST", "/token", None, &faults) {
        Ok(jkt) => jkt,
        Err(response) => return response,
    };
    let mut response = match params.get("grant_type").map(String::as_str) {
        Some("authorization_code") => code_grant(&s, &params, &faults, jkt),
        Some("refresh_token") => refresh_grant(&s, &params, &faults, jkt),
        Some(_) => {
            oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Use authorization_code or refresh_token.")
        }
        None => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "grant_type is missing."),
    };
    s.add_dpop_nonce(&mut response);
    response
}

fn code_grant(s: &Shared, params: &Params, faults: &Faults, jkt: Option<String>) -> Response {
    let invalid = |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
    let Some(code) = params.get("code") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "code is missing.");
    };
    // Removed on first use, whatever the outcome: a code is never good twice.
    let Some(grant) = s.lock().codes.remove(code) else {
        return invalid("The code is unknown or was already used.");
    };
    if grant.expires <= Instant::now() {
        return invalid("The code has expired.");
    }
    if grant.client_id != s.config.client_id {
        return invalid("The code was issued to another client.");
    }
    if params.get("redirect_uri") != Some(&grant.redirect_uri) {
        return invalid("redirect_uri does not match the one sent to /authorize.");
    }
    if let Some(challenge) = &grant.code_challenge {
        match params.get("code_verifier") {
            None => return invalid("code_verifier is missing (PKCE)."),
            Some(verifier) if jwt::pkce_s256(verifier) != *challenge => {
                return invalid("code_verifier does not match code_challenge (PKCE).");
            }
            Some(_) => {}
        }
    }
    if grant.dpop_jkt.is_some() && grant.dpop_jkt != jkt {
        return invalid("The DPoP proof's key is not the one dpop_jkt named at /authorize.");
    }
    let refresh = RefreshGrant {
        client_id: grant.client_id,
        username: grant.username,
        scope: grant.scope,
        auth_time: grant.auth_time,
        acr: grant.acr,
        sid: grant.sid,
        jkt,
    };
    issue_tokens(s, refresh, grant.nonce.as_deref(), faults)
}

fn refresh_grant(s: &Shared, params: &Params, faults: &Faults, jkt: Option<String>) -> Response {
    let Some(token) = params.get("refresh_token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "refresh_token is missing.");
    };
    // Rotation: the presented refresh token is spent. Without it, it stays valid and is
    // repeated in the answer.
    let (grant, kept) = {
        let mut state = s.lock();
        if s.config.rotate_refresh_tokens {
            (state.refresh_tokens.remove(token), None)
        } else {
            (state.refresh_tokens.get(token).cloned(), Some(token.clone()))
        }
    };
    match grant {
        Some(grant) if grant.jkt.is_some() && grant.jkt != jkt => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The refresh token is DPoP-bound; the proof's key is not its key.",
        ),
        Some(mut grant) if grant.client_id == s.config.client_id => {
            grant.jkt = grant.jkt.or(jkt);
            issue_tokens_with(s, grant, None, faults, kept)
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "The refresh token is unknown or was already used."),
    }
}

fn issue_tokens(s: &Shared, grant: RefreshGrant, nonce: Option<&str>, faults: &Faults) -> Response {
    issue_tokens_with(s, grant, nonce, faults, None)
}

/// Issues tokens for `grant`; `refresh_token` is the one to hand back (a new one when `None`).
fn issue_tokens_with(
    s: &Shared,
    mut grant: RefreshGrant,
    nonce: Option<&str>,
    faults: &Faults,
    refresh_token: Option<String>,
) -> Response {
    let Some(user) = s.user(&grant.username) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "The user no longer exists.");
    };
    let id_token = s.id_token(user, &grant, nonce, faults);
    let access_token_ttl = s.access_token_ttl();
    let access_token = jwt::random_token();
    let refresh_token = refresh_token.unwrap_or_else(jwt::random_token);
    if faults.has(&Fault::DpopUnboundToken) {
        grant.jkt = None;
    }
    let body = json!({
        "access_token": access_token,
        "token_type": if grant.jkt.is_some() { "DPoP" } else { "Bearer" },
        "expires_in": access_token_ttl.as_secs(),
        "id_token": id_token,
        "refresh_token": refresh_token,
        "scope": grant.scope,
    });
    let now = Instant::now();
    let issued_at = unix_now();
    let access = AccessGrant {
        username: grant.username.clone(),
        scope: grant.scope.clone(),
        issued_at,
        expires: now + access_token_ttl,
        expires_at: issued_at + access_token_ttl.as_secs(),
        jkt: grant.jkt.clone(),
    };
    let mut state = s.lock();
    state.access_tokens.retain(|_, g| g.expires > now);
    state.access_tokens.insert(access_token, access);
    state.refresh_tokens.insert(refresh_token, grant);
    no_store(StatusCode::OK, body)
}
