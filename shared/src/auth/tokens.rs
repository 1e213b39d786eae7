//! Access tokens: ES256 JWTs signed inside KMS and verified with the key's public half.
//!
//! Verification follows RFC 8725: the algorithm is pinned to ES256 (so `alg: none` and an HMAC token
//! "signed" with the public key are refused), `typ` must be `at+jwt` (RFC 9068), `kid` must name a
//! trusted key before any key is fetched, and `iss`, `aud`, `exp`, `nbf` and `sub` are required.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_kms::Client as KmsClient;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use super::Role;
use crate::config::JwtConfig;
use crate::error::ApiError;

/// Lifetime of an access token.
pub const ACCESS_TOKEN_SECONDS: i64 = 15 * 60;
/// The explicit type every access token carries and every verifier requires.
pub const TOKEN_TYPE: &str = "at+jwt";
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub role: Role,
    /// The sign-in session (refresh-token family) the token was issued under.
    pub sid: String,
}

#[derive(Serialize)]
struct JwsHeader<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

pub struct TokenService {
    kms: KmsClient,
    config: JwtConfig,
    /// Public keys by key id, fetched from KMS once per warm instance.
    keys: RwLock<HashMap<String, Arc<DecodingKey>>>,
}

fn invalid(message: &'static str) -> ApiError {
    ApiError::unauthorized("INVALID_TOKEN", message)
}

impl TokenService {
    pub fn new(kms: KmsClient, config: JwtConfig) -> Self {
        Self {
            kms,
            config,
            keys: RwLock::new(HashMap::new()),
        }
    }

    /// Signs a new access token for `user_id` in session `session_id`.
    pub async fn issue(
        &self,
        user_id: &str,
        role: Role,
        session_id: &str,
    ) -> Result<String, ApiError> {
        let now = jiff::Timestamp::now().as_second();
        self.sign(&AccessClaims {
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            sub: user_id.to_owned(),
            exp: now + ACCESS_TOKEN_SECONDS,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            role,
            sid: session_id.to_owned(),
        })
        .await
    }

    /// Signs `claims` as given, with this service's key, as an ES256 `at+jwt`.
    pub async fn sign(&self, claims: &AccessClaims) -> Result<String, ApiError> {
        let header = JwsHeader {
            alg: "ES256",
            typ: TOKEN_TYPE,
            kid: &self.config.signing_key_id,
        };
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(ApiError::internal)?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).map_err(ApiError::internal)?),
        );
        let signature = self.sign_bytes(signing_input.as_bytes()).await?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    /// The JWS (`r || s`) ES256 signature of `input`, made by KMS.
    pub async fn sign_bytes(&self, input: &[u8]) -> Result<[u8; 64], ApiError> {
        // RAW: KMS hashes the input itself (it is far below the 4 KiB limit).
        let signed = self
            .kms
            .sign()
            .key_id(&self.config.signing_key_id)
            .message(Blob::new(input))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| ApiError::internal(aws_sdk_kms::error::DisplayErrorContext(e)))?;
        let der = signed
            .signature
            .ok_or_else(|| ApiError::internal("KMS Sign returned no signature"))?;
        ecdsa_der_to_jws(der.as_ref()).map_err(ApiError::internal)
    }

    /// Verifies a token and returns its claims; every failure is 401 `INVALID_TOKEN`.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed token"))?;
        if header.alg != Algorithm::ES256 {
            return Err(invalid("unexpected signing algorithm"));
        }
        if header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(invalid("not an access token"));
        }
        let kid = header.kid.ok_or_else(|| invalid("token names no key"))?;
        if !self.config.trusted_key_ids.contains(&kid) {
            return Err(invalid("token signed by an unknown key"));
        }
        let key = self.decoding_key(&kid).await?;

        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|err| {
                use jsonwebtoken::errors::ErrorKind;
                match err.kind() {
                    ErrorKind::ExpiredSignature => {
                        ApiError::unauthorized("TOKEN_EXPIRED", "the access token has expired")
                    }
                    _ => invalid("the access token is not valid"),
                }
            })
    }

    async fn decoding_key(&self, kid: &str) -> Result<Arc<DecodingKey>, ApiError> {
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(key.clone());
        }
        let out = self
            .kms
            .get_public_key()
            .key_id(kid)
            .send()
            .await
            .map_err(|e| ApiError::internal(aws_sdk_kms::error::DisplayErrorContext(e)))?;
        // The property that matters: the key signs with ECDSA P-256/SHA-256, i.e. ES256.
        if !out
            .signing_algorithms()
            .contains(&SigningAlgorithmSpec::EcdsaSha256)
        {
            return Err(ApiError::internal(format!(
                "key {kid} does not sign with ECDSA_SHA_256"
            )));
        }
        let der = out
            .public_key
            .ok_or_else(|| ApiError::internal("KMS GetPublicKey returned no key"))?;
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(der.as_ref())
        );
        let key = Arc::new(DecodingKey::from_ec_pem(pem.as_bytes()).map_err(ApiError::internal)?);
        self.keys.write().await.insert(kid.to_owned(), key.clone());
        Ok(key)
    }
}

/// KMS returns ECDSA signatures DER-encoded (`SEQUENCE { INTEGER r, INTEGER s }`); JWS wants the
/// 64-byte `r || s` (RFC 7518 §3.4).
pub(crate) fn ecdsa_der_to_jws(der: &[u8]) -> Result<[u8; 64], &'static str> {
    const BAD: &str = "malformed DER ECDSA signature";
    fn integer(input: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
        match input {
            [0x02, len, rest @ ..] if usize::from(*len) <= rest.len() && *len > 0 => {
                Ok(rest.split_at(usize::from(*len)))
            }
            _ => Err(BAD),
        }
    }
    let body = match der {
        [0x30, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        _ => return Err(BAD),
    };
    let (r, rest) = integer(body)?;
    let (s, rest) = integer(rest)?;
    if !rest.is_empty() {
        return Err(BAD);
    }
    let mut out = [0u8; 64];
    let (r_out, s_out) = out.split_at_mut(32);
    for (value, slot) in [(r, r_out), (s, s_out)] {
        // DER integers are minimal and signed: a leading 0x00 keeps a high bit from reading as negative.
        let value = match value {
            [0, rest @ ..] => rest,
            v => v,
        };
        if value.len() > 32 {
            return Err(BAD);
        }
        slot[32 - value.len()..].copy_from_slice(value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_signatures_become_fixed_width() {
        // r with a sign byte (33 bytes), s short (31 bytes): both land right-aligned in 32.
        let r: Vec<u8> = std::iter::once(0x00).chain([0x80; 32]).collect();
        let s = vec![0x11; 31];
        let mut der = vec![0x30, (2 + r.len() + 2 + s.len()) as u8];
        der.extend([0x02, r.len() as u8]);
        der.extend(&r);
        der.extend([0x02, s.len() as u8]);
        der.extend(&s);
        let raw = ecdsa_der_to_jws(&der).unwrap();
        assert_eq!(&raw[..32], &[0x80; 32]);
        assert_eq!(raw[32], 0);
        assert_eq!(&raw[33..], &[0x11; 31]);
    }

    #[test]
    fn malformed_der_is_refused() {
        assert!(ecdsa_der_to_jws(&[]).is_err());
        assert!(ecdsa_der_to_jws(&[0x30, 0x02, 0x02, 0x00]).is_err());
        assert!(ecdsa_der_to_jws(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00]).is_err());
        let too_long: Vec<u8> = [0x30, 38, 0x02, 34]
            .into_iter()
            .chain([0x01; 34])
            .chain([0x02, 0x00])
            .collect();
        assert!(ecdsa_der_to_jws(&too_long).is_err());
    }
}
