//! Who may call what: the admin token, and who may act as a buyer (`auth.mode`).
//!
//! - Admin routes need `Authorization: Bearer <admin.token>`, compared in constant time; with
//!   no token configured the admin API does not exist (404).
//! - Buyer routes in `none` mode trust the `user_id` they are given (a gateway authenticated
//!   the buyer). In `jwt` mode they need a bearer JWT, verified with the `jsonwebtoken` crate:
//!   HS256 with `auth.jwt_secret`, or RS256/EdDSA with the PEM at `auth.jwt_public_key_path`
//!   (exactly one algorithm is accepted, so `alg: none` or a swapped algorithm never passes);
//!   `exp` and `sub` are required, `exp` and `nbf` are checked with `auth.leeway`, `iss` and
//!   `aud` when configured. `sub` is the user id, in canonical decimal.
//!
//! A missing or bad token is 401 UNAUTHORIZED (with `WWW-Authenticate: Bearer`, added to every
//! 401 by `ApiError`); acting as another user is 403 FORBIDDEN; another user's order is 404.
//! Tokens are never logged.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use warp::{Filter, Rejection};

use super::error::ApiError;
use crate::config::{AuthMode, AuthSettings};

/// How buyers are authenticated.
#[derive(Clone, Default)]
pub enum BuyerAuth {
    /// `auth.mode = "none"`: the user id in the request is trusted.
    #[default]
    Trusted,
    /// `auth.mode = "jwt"`.
    Jwt(Arc<JwtVerifier>),
}

impl std::fmt::Debug for BuyerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuyerAuth::Trusted => f.write_str("Trusted"),
            BuyerAuth::Jwt(verifier) => write!(f, "Jwt({:?})", verifier.validation.algorithms),
        }
    }
}

impl BuyerAuth {
    /// The authentication the settings describe; a key that cannot be read is an error.
    pub fn from_settings(settings: &AuthSettings) -> Result<BuyerAuth, String> {
        match settings.mode {
            AuthMode::None => Ok(BuyerAuth::Trusted),
            AuthMode::Jwt => Ok(BuyerAuth::Jwt(Arc::new(JwtVerifier::new(settings)?))),
        }
    }
}

/// Verifies buyers' tokens.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

/// The claims we read; `exp`, `nbf`, `iss` and `aud` are checked by `jsonwebtoken` itself.
#[derive(Deserialize)]
struct Claims {
    sub: String,
}

impl JwtVerifier {
    pub fn new(settings: &AuthSettings) -> Result<JwtVerifier, String> {
        let secret = !settings.jwt_secret.is_empty();
        let public_key = !settings.jwt_public_key_path.is_empty();
        let (key, algorithm) = match (secret, public_key) {
            (true, false) => (
                DecodingKey::from_secret(settings.jwt_secret.as_bytes()),
                Algorithm::HS256,
            ),
            (false, true) => public_key_of(&settings.jwt_public_key_path)?,
            _ => {
                return Err(
                    "invalid configuration: auth.mode = \"jwt\" needs exactly one of \
                            auth.jwt_secret and auth.jwt_public_key_path"
                        .into(),
                );
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = settings.leeway.as_secs();
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if !settings.issuer.is_empty() {
            validation.set_issuer(&[&settings.issuer]);
            required.push("iss");
        }
        if settings.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&[&settings.audience]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        Ok(JwtVerifier { key, validation })
    }

    /// The user id `token` proves, or why it proves nothing (for the client: no secrets in it).
    pub fn user_of(&self, token: &str) -> Result<u64, String> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|error| describe(error.kind()))?
            .claims;
        canonical_user_id(&claims.sub)
            .ok_or_else(|| "the token's `sub` is not a user id (a positive decimal integer)".into())
    }
}

/// A public key in PEM: RSA (RS256) or Ed25519 (EdDSA).
fn public_key_of(path: &str) -> Result<(DecodingKey, Algorithm), String> {
    let pem = std::fs::read(path).map_err(|error| {
        format!("invalid configuration: auth.jwt_public_key_path {path}: {error}")
    })?;
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((key, Algorithm::RS256));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(&pem) {
        return Ok((key, Algorithm::EdDSA));
    }
    Err(format!(
        "invalid configuration: auth.jwt_public_key_path {path} holds no RSA or Ed25519 public \
         key in PEM"
    ))
}

/// Plain words for why a token was refused.
fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm => "the token's algorithm is not accepted".into(),
        ErrorKind::InvalidIssuer => "the token's issuer (iss) is not accepted".into(),
        ErrorKind::InvalidAudience => "the token's audience (aud) is not accepted".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the token's `{claim}` claim is malformed"),
        _ => "the token is malformed".into(),
    }
}

/// A user id written as `sub`: canonical decimal, positive.
fn canonical_user_id(sub: &str) -> Option<u64> {
    let canonical = !sub.is_empty() && sub.bytes().all(|byte| byte.is_ascii_digit());
    match sub.parse::<u64>() {
        Ok(id) if canonical && id > 0 && !sub.starts_with('0') => Some(id),
        _ => None,
    }
}

/// Who is calling a buyer route: anyone (`none` mode) or the user a token proved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller(Option<u64>);

impl Caller {
    /// 403 FORBIDDEN unless the caller may act as `user_id`.
    pub fn acts_as(self, user_id: u64) -> Result<(), ApiError> {
        match self.0 {
            Some(proved) if proved != user_id => Err(ApiError::forbidden(user_id)),
            _ => Ok(()),
        }
    }

    /// Whether the caller may see what `owner` owns (an order).
    pub fn may_see(self, owner: u64) -> bool {
        self.0.is_none_or(|proved| proved == owner)
    }
}

/// The caller of a buyer route; in `jwt` mode a request without a valid token is rejected
/// with 401 here.
pub fn caller(auth: BuyerAuth) -> impl Filter<Extract = (Caller,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization").and_then(move |header: Option<String>| {
        let auth = auth.clone();
        async move {
            let BuyerAuth::Jwt(verifier) = auth else {
                return Ok(Caller(None));
            };
            let Some(token) = header.as_deref().and_then(bearer) else {
                return Err(warp::reject::custom(ApiError::unauthorized(
                    "an `Authorization: Bearer <JWT>` header is required",
                )));
            };
            match verifier.user_of(token) {
                Ok(user_id) => Ok(Caller(Some(user_id))),
                Err(why) => Err(warp::reject::custom(ApiError::unauthorized(why))),
            }
        }
    })
}

/// Passes requests carrying `Authorization: Bearer <admin token>`. With no token configured
/// the admin API does not exist (404).
pub fn admin(token: Arc<str>) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and_then(move |header: Option<String>| {
            let token = token.clone();
            async move {
                if token.is_empty() {
                    return Err(warp::reject::not_found());
                }
                let presented = header.as_deref().and_then(bearer).unwrap_or("");
                match bool::from(presented.as_bytes().ct_eq(token.as_bytes())) {
                    true => Ok(()),
                    false => Err(warp::reject::custom(ApiError::unauthorized(
                        "a valid admin bearer token is required",
                    ))),
                }
            }
        })
        .untuple_one()
}

/// The credentials of an `Authorization: Bearer <token>` header; the scheme is
/// case-insensitive (RFC 7235).
fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_positive_decimals_are_user_ids() {
        assert_eq!(canonical_user_id("42"), Some(42));
        for bad in [
            "",
            "0",
            "042",
            "+42",
            "-1",
            "4 2",
            "abc",
            "18446744073709551616",
        ] {
            assert_eq!(canonical_user_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bEaReR abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }
}
