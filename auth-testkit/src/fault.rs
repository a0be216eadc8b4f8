//! Deliberate misbehaviour, so that relying parties can be tested against broken or
//! hostile providers.

use std::time::Duration;

use serde_json::Value;

/// The issuer value used by [`Fault::WrongIssuer`] and [`Fault::DiscoveryIssuerMismatch`].
pub const WRONG_ISSUER: &str = "https://wrong-issuer.invalid";
/// The `aud` value used by [`Fault::WrongAudience`].
pub const WRONG_AUDIENCE: &str = "wrong-audience";
/// The `nonce` value used by [`Fault::WrongNonce`].
pub const WRONG_NONCE: &str = "wrong-nonce";

/// A misbehaviour of the [`MockIdp`](crate::MockIdp).
///
/// Faults are switched on with [`MockIdp::set_fault`](crate::MockIdp::set_fault) or
/// [`MockIdp::add_fault`](crate::MockIdp::add_fault) and stay active until
/// [`MockIdp::clear_faults`](crate::MockIdp::clear_faults). Several faults may be active
/// at once (for example `Delay` and `WrongNonce`); adding a fault of a kind that is
/// already active replaces it.
///
/// ID-token faults apply to every ID token the token endpoint issues (authorization code
/// and refresh grants), but not to the tokens a test signs by hand
/// ([`MockIdp::sign_id_token`](crate::MockIdp::sign_id_token),
/// [`MockIdp::sign_jwt`](crate::MockIdp::sign_jwt),
/// [`MockIdp::access_token_for`](crate::MockIdp::access_token_for)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// The ID token is correctly built and signed, then one bit of its signature is
    /// flipped.
    BadSignature,
    /// The ID token header says `"alg": "none"` and the signature part is empty
    /// (`header.claims.`).
    AlgNone,
    /// The classic key-confusion attack: header `"alg": "HS256"`, signed with
    /// HMAC-SHA256 keyed with the current public key's SPKI PEM text (`-----BEGIN PUBLIC
    /// KEY-----`, LF line endings, trailing newline), see
    /// [`MockIdp::public_key_pem`](crate::MockIdp::public_key_pem).
    Hs256WithPublicKey,
    /// The ID token's `iss` is [`WRONG_ISSUER`].
    WrongIssuer,
    /// The ID token's `aud` is [`WRONG_AUDIENCE`] (`azp` still names the client).
    WrongAudience,
    /// The ID token has no `sub` claim.
    MissingSub,
    /// The ID token has no `iat` claim.
    MissingIat,
    /// The ID token expired this long ago: `exp` is `now - d`, and `iat` and `auth_time`
    /// move back by the same amount (`id_token_ttl + d`). Use a duration below and above
    /// the relying party's clock-skew leeway to test the leeway.
    Expired(Duration),
    /// The ID token's `nonce` is [`WRONG_NONCE`] instead of the one sent to `/authorize`.
    WrongNonce,
    /// The ID token header has no `kid`.
    NoKid,
    /// The discovery document's `issuer` is [`WRONG_ISSUER`], not the URL it is served at.
    /// (For a subtler mismatch, such as a trailing slash, use [`Fault::DiscoveryExtra`]
    /// with an `issuer` field.)
    DiscoveryIssuerMismatch,
    /// The `iss` query parameter on the redirect back to the client (RFC 9207) is this
    /// value instead of the real issuer.
    CallbackIssuer(String),
    /// `/userinfo` answers with a `sub` that differs from the ID token's (`<sub>-other`).
    UserinfoSubMismatch,
    /// `/authorize` redirects back with `error=access_denied`, as when the user cancels.
    AccessDenied,
    /// `/authorize` ignores step-up requests, as a provider that does not support them:
    /// with `max_age` or `prompt=login` the ID token's `auth_time` is still
    /// [`auth_age`](crate::MockIdpBuilder::auth_age) in the past, and `acr_values` gives no
    /// `acr` claim. Applies to logins completed while it is active (the code's grant keeps
    /// what was decided at `/authorize`).
    IgnoreStepUp,
    /// Every endpoint answers `503 Service Unavailable` (hits are still counted).
    Unavailable,
    /// Every endpoint sleeps this long before answering, for timeout tests.
    Delay(Duration),
    /// The token endpoint answers `400` with `{"error": <this>}`.
    TokenError(String),
    /// The pushed authorization request endpoint (RFC 9126) answers `400` with
    /// `{"error": <this>}`, such as `"invalid_request"`.
    ParError(String),
    /// The pushed authorization request endpoint answers `500 Internal Server Error`.
    ParServerError,
    /// The pushed authorization request endpoint sleeps this long before answering (the
    /// other endpoints answer at once), for timeout tests.
    ParDelay(Duration),
    /// The revocation endpoint (RFC 7009) answers `500 Internal Server Error` and revokes
    /// nothing.
    RevocationServerError,
    /// The revocation endpoint sleeps this long before answering (and then revokes).
    RevocationDelay(Duration),
    /// These claims are merged into every ID token after all other faults, overriding
    /// existing ones; a `null` value removes the claim. Must be a JSON object.
    IdTokenClaims(Value),
    /// These fields are merged into the discovery document; a `null` value removes the
    /// field. Must be a JSON object.
    DiscoveryExtra(Value),
    /// `/token` and `/introspect` accept only client assertions (`private_key_jwt`,
    /// `client_secret_jwt`) whose `aud` is exactly this value, instead of the issuer or the
    /// token endpoint: a provider that insists on one of them.
    ClientAssertionAudience(String),
    /// With [`dpop_nonce_required`](crate::MockIdpBuilder::dpop_nonce_required): the DPoP
    /// nonce changes between requests. A proof carrying a nonce an earlier request already
    /// used is answered `use_dpop_nonce` with a new nonce; the retry with it is accepted.
    DpopNonceRotated,
    /// `/token` answers a DPoP request with tokens that are not bound (`token_type`
    /// `Bearer`), as a provider that ignores DPoP.
    DpopUnboundToken,
}

/// The active faults, queried by the handlers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults(Vec<Fault>);

impl Faults {
    pub(crate) fn add(&mut self, fault: Fault) {
        let kind = std::mem::discriminant(&fault);
        self.0.retain(|f| std::mem::discriminant(f) != kind);
        self.0.push(fault);
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    pub(crate) fn has(&self, wanted: &Fault) -> bool {
        self.0.contains(wanted)
    }

    /// The first active fault for which `pick` returns something.
    pub(crate) fn find<'a, T>(&'a self, pick: impl FnMut(&'a Fault) -> Option<T>) -> Option<T> {
        self.0.iter().find_map(pick)
    }
}
