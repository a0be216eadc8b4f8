//! Refreshing a session's tokens: the refresh grant (with the session's DPoP key), the new
//! ID token checked against the session's issuer and subject, and what is kept of the old.

use super::*;

/// Claims of an earlier ID token that describe that token, not the person: not carried
/// over to the identity after a refresh.
const PER_TOKEN_CLAIMS: &[&str] = &["nonce", "at_hash", "c_hash", "jti"];

impl OidcProvider {
    /// Refreshes `session`'s tokens. The layer ends the session on `Rejected` or `Denied`,
    /// so those mean only: the provider says the refresh token is dead (`invalid_grant`), the
    /// new ID token fails verification or names another issuer or subject, or the person is
    /// no longer admitted. Anything else (an outage, `invalid_client`, a 3xx or WAF page, a
    /// discovery document refused now) is `Unavailable`, see [`token::request`].
    pub(super) async fn refresh_session(&self, session: &Session) -> Result<LoginResult, ProviderError> {
        if session.identity.provider != self.name {
            return Err(self
                .http
                .rejected(&format!("the session belongs to provider {:?}", session.identity.provider))
                .into());
        }
        let Some(refresh_token) = session.tokens.refresh_token.as_deref() else {
            return Err(ProviderError::Unsupported("refreshing a session without a refresh token"));
        };
        // Only the token endpoint's invalid_grant (see token::request) and a refused ID token
        // end the session; a discovery document refused now (its issuer changed, say) is a
        // provider-side problem like an outage.
        let metadata = self.metadata().await.map_err(|failure| match failure {
            Failure::Unavailable(message) | Failure::Rejected(message) => ProviderError::Unavailable(message),
        })?;
        // A DPoP-bound session refreshes with its own key (RFC 9449 §5: a public client's
        // refresh token is bound to it), whatever `dpop` says now, and stays bound.
        let key = match session.tokens.dpop_key.as_deref() {
            Some(stored) => Some(
                DpopKey::from_stored(stored)
                    .ok_or_else(|| self.http.rejected("the session's DPoP key is unreadable; log in again"))?,
            ),
            None => None,
        };
        let proofs = key.as_ref().map(|key| dpop::Proofs { key, nonce: &self.dpop_nonce });
        let grant = Grant::Refresh { refresh_token };
        let tokens = token::request(&self.http, &metadata, &self.client, grant, proofs).await?;
        // An unbound answer ends the session, unless `dpop = "optional"` says Bearer tokens
        // will do: then the session goes on unbound (its key dropped, so the new access token
        // is presented as Bearer), as a login answered Bearer does.
        let mode = match self.dpop.0 {
            auth_core::DpopMode::Optional => auth_core::DpopMode::Optional,
            _ => auth_core::DpopMode::Required,
        };
        let still_bound = match proofs {
            Some(_) => dpop::bound(&self.http, mode, &self.dpop.2, tokens.token_type.as_deref())?,
            None => false,
        };
        let mut identity = session.identity.clone();
        if let Some(raw) = tokens.id_token.as_deref() {
            let mut claims = self.verify_id_token(&metadata, raw, None).await?;
            self.profile.complete_claims(&mut claims);
            // OpenID Connect Core §12.2: same issuer, same subject.
            if let Some(old_iss) = identity.claims.get("iss")
                && claims.get("iss") != Some(old_iss)
            {
                return Err(self
                    .http
                    .rejected("the refreshed ID token names another issuer than the session's")
                    .into());
            }
            if self.profile.subject(&claims) != identity.subject {
                return Err(self
                    .http
                    .rejected("the refreshed ID token is about another subject than the session's")
                    .into());
            }
            // Keep what userinfo added at login; the new token's claims win, and what the
            // profile derives comes from the new token only (a Microsoft email verified by
            // `xms_edov` at login is not kept once the token stops saying so).
            let derived = self.profile.derived_claims(&identity.claims);
            for (claim, value) in &identity.claims {
                let claim_name = claim.as_str();
                if !PER_TOKEN_CLAIMS.contains(&claim_name)
                    && !derived.contains(&claim_name)
                    && !claims.contains_key(claim)
                {
                    claims.insert(claim.clone(), value.clone());
                }
            }
            self.profile.admit(&claims)?;
            identity.claims = claims.into();
        }
        tracing::debug!(new_id_token = tokens.id_token.is_some(), "tokens refreshed");
        let old = &session.tokens;
        let mut fresh = tokens.into_token_set();
        fresh.id_token = fresh.id_token.or_else(|| old.id_token.clone());
        fresh.refresh_token = fresh.refresh_token.or_else(|| old.refresh_token.clone());
        fresh.scope = fresh.scope.or_else(|| old.scope.clone());
        if still_bound {
            fresh.dpop_key.clone_from(&old.dpop_key);
        }
        Ok(LoginResult::new(identity, fresh))
    }
}
