//! Access tokens: ES256 JWTs, signed in the function with a key that KMS keeps, and verified with
//! public keys that the KMS root key certifies.
//!
//! Signing inside KMS (`kms:Sign` per token) costs $15 per million sign-ins, and KMS allows a few
//! hundred ECC signatures a second per account — far below what a busy lunch hour needs. So:
//!
//! - A **signing key** is an ES256 key pair made by the first sign-in that needs one. Its private
//!   half is sealed under a KMS data key (`crate::crypto`; never plaintext at rest) and unsealed
//!   once per instance; tokens are then signed locally, with no KMS call.
//! - Its public half is **certified by the root key** (`JWT_SIGNING_KEY_ID`, an ECC key that never
//!   leaves KMS): one `kms:Sign` per signing key, not per token. The certificate is itself a JWS
//!   (`typ: key+jwt`) naming the key's id, its public point and its validity. A verifier trusts a
//!   signing key only through a certificate from a root it trusts (`JWT_PREVIOUS_KEY_IDS` keeps an
//!   old root trusted while a rotation drains), so write access to the table cannot mint tokens.
//! - Signing keys **rotate daily**: the first signer past the current key's `rotateAt` makes the
//!   next one. A key verifies until two hours past its rotation; tokens live 15 minutes.
//!
//! Items: `TOKEN_KEY#<kid>` / `KEY` (a key: certificate and sealed private half; each key under a
//! partition key of its own, see [`KeyPlace`]) and `CONFIG#TOKEN_KEY` / `CURRENT` (which key
//! signs). Tokens whose `kid` names a root key directly
//! (signed in KMS, as before signing keys existed) are still verified against that root.
//!
//! Verification follows RFC 8725: the algorithm is pinned to ES256 (so `alg: none` and an HMAC token
//! "signed" with the public key are refused), `typ` must be `at+jwt` (RFC 9068), `kid` must name a
//! trusted root or have a signing key's form before anything is fetched, and `iss`, `aud`, `exp`,
//! `nbf` and `sub` are required.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use aws_sdk_kms::Client as KmsClient;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};

use super::Role;
use crate::config::JwtConfig;
use crate::crypto::kms::KmsKeySource;
use crate::crypto::{Envelope, Location, Sealed};
use crate::error::ApiError;
use crate::storage::{Db, StorageError};

/// The explicit type every access token carries and every verifier requires.
pub const TOKEN_TYPE: &str = "at+jwt";
/// The type of a signing key's certificate: never accepted as an access token, nor the reverse.
pub const KEY_CERTIFICATE_TYPE: &str = "key+jwt";
/// The audience of certificates.
const KEY_AUDIENCE: &str = "ordersync-token-keys";
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 30;
/// How long a signing key signs.
pub const SIGNING_KEY_ROTATION_SECONDS: i64 = 24 * 3600;
/// How long past its rotation a signing key still verifies: the last token it signed, and more.
const SIGNING_KEY_GRACE_SECONDS: i64 = 2 * 3600;
const _: () = assert!(
    SIGNING_KEY_GRACE_SECONDS
        > crate::config::MAX_ACCESS_TOKEN_SECONDS as i64 + LEEWAY_SECONDS as i64
);

const KEY_PK: &str = "CONFIG#TOKEN_KEY";
const CURRENT_SK: &str = "CURRENT";
const OWN_KEY_PREFIX: &str = "TOKEN_KEY#";
const OWN_KEY_SK: &str = "KEY";
/// How often an instance may look for a key where releases before 2026-12-07 kept keys.
const SHARED_LOOKUP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
const PRIVATE_KEY_FIELD: &str = "tokenSigningKey";

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

/// What a root key certifies about a signing key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyClaims {
    iss: String,
    aud: String,
    /// The signing key's id.
    sub: String,
    /// Its public point (P-256), base64url.
    x: String,
    y: String,
    nbf: i64,
    exp: i64,
}

#[derive(Serialize)]
struct JwsHeader<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

/// Where a signing key is kept. Each under a partition key of its own: a `kid` that no key has —
/// what a forged token names, with no account needed — is then a read anywhere in the table, as
/// any other, not one more on a partition that every key shares (DynamoDB serves 3,000 read
/// units a second per partition key; docs/SECURITY.md, "What a refused request still costs").
#[derive(Debug, Clone, Copy)]
enum KeyPlace {
    /// `TOKEN_KEY#<kid>` / `KEY`.
    Own,
    /// `CONFIG#TOKEN_KEY` / `<kid>`: where releases before 2026-12-07 made their keys. Such a key
    /// signs until its `rotateAt` (a day at most) and verifies two hours more; read here only when
    /// a key is not in its own place, and by a verifier at most once a second.
    Shared,
}

impl KeyPlace {
    fn key(self, kid: &str) -> (String, String) {
        match self {
            Self::Own => (format!("{OWN_KEY_PREFIX}{kid}"), OWN_KEY_SK.to_owned()),
            Self::Shared => (KEY_PK.to_owned(), kid.to_owned()),
        }
    }
}

/// A signing key as stored, at [`KeyPlace::key`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    kid: String,
    certificate: String,
    /// Named as its sealing context's field, as every sealed attribute is: the re-encryption job
    /// opens each attribute at its own name.
    #[serde(rename = "tokenSigningKey")]
    private_key: Sealed,
    rotate_at: i64,
    /// The table's TTL removes a key a day after it stops verifying.
    expires_at: i64,
}

/// `CONFIG#TOKEN_KEY` / `CURRENT`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CurrentRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    kid: String,
    rotate_at: i64,
    version: u64,
}

/// The key this instance signs with, until `rotate_at`.
struct SigningKey {
    kid: String,
    pair: EcdsaKeyPair,
    rotate_at: i64,
}

/// A signing key's public half, as its certificate gave it.
struct VerifyingKey {
    key: DecodingKey,
    not_after: i64,
}

pub struct TokenService {
    kms: KmsClient,
    db: Db,
    sealing: Envelope<KmsKeySource>,
    config: JwtConfig,
    /// Root public keys by KMS key id, fetched once per warm instance.
    roots: RwLock<HashMap<String, Arc<DecodingKey>>>,
    /// Signing keys' public halves by id, certified once per warm instance.
    verifying: RwLock<HashMap<String, Arc<VerifyingKey>>>,
    /// The key this instance signs with; a lock, so one instance makes or unseals it once.
    signing: Mutex<Option<Arc<SigningKey>>>,
    /// Access tokens this instance verified, until they lapse.
    verified: Verified,
    /// When this instance last looked for a key in [`KeyPlace::Shared`].
    shared_lookup: std::sync::Mutex<Option<std::time::Instant>>,
}

/// Past this many remembered tokens the memory starts over (one instance, bounded).
const VERIFIED_MAX_ENTRIES: usize = 1_000;

/// Access tokens verified by this instance: each one's claims and the last second they hold.
#[derive(Default)]
struct Verified(std::sync::Mutex<HashMap<String, (AccessClaims, i64)>>);

impl Verified {
    fn believed(&self, token: &str, now: i64) -> Option<AccessClaims> {
        let verified = self.0.lock().unwrap_or_else(|e| e.into_inner());
        verified
            .get(token)
            .filter(|(_, until)| now <= *until)
            .map(|(claims, _)| claims.clone())
    }

    fn remember(&self, token: &str, claims: &AccessClaims, until: i64, now: i64) {
        let mut verified = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= VERIFIED_MAX_ENTRIES {
            verified.retain(|_, (_, until)| now <= *until);
            if verified.len() >= VERIFIED_MAX_ENTRIES {
                verified.clear();
            }
        }
        verified.insert(token.to_owned(), (claims.clone(), until));
    }
}

fn invalid(message: &'static str) -> ApiError {
    ApiError::unauthorized("INVALID_TOKEN", message)
}

/// Whether a look that was last made at `last` may be made again at `now` (and if so, it is).
fn may_look_again(last: &mut Option<std::time::Instant>, now: std::time::Instant) -> bool {
    if last.is_some_and(|at| now.saturating_duration_since(at) < SHARED_LOOKUP_INTERVAL) {
        return false;
    }
    *last = Some(now);
    true
}

/// Whether `kid` has the form of a signing key's id (`tk_` and 32 hex digits).
fn is_signing_key_id(kid: &str) -> bool {
    kid.strip_prefix("tk_")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Where a key's private half is sealed: its item's own key (part of what it is sealed with).
fn private_key_location<'a>(db: &'a Db, pk: &'a str, sk: &'a str) -> Location<'a> {
    Location {
        table: db.table(),
        pk,
        sk,
        field: PRIVATE_KEY_FIELD,
    }
}

impl TokenService {
    /// `sealing` seals signing keys' private halves (a KMS data key under the table's data key).
    pub fn new(kms: KmsClient, db: Db, sealing: Envelope<KmsKeySource>, config: JwtConfig) -> Self {
        Self {
            kms,
            db,
            sealing,
            config,
            roots: RwLock::new(HashMap::new()),
            verifying: RwLock::new(HashMap::new()),
            signing: Mutex::new(None),
            verified: Verified::default(),
            shared_lookup: std::sync::Mutex::new(None),
        }
    }

    /// How long the access tokens [`Self::issue`] signs last, in seconds.
    pub fn access_token_seconds(&self) -> i64 {
        self.config.access_token_seconds
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
            exp: now + self.config.access_token_seconds,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            role,
            sid: session_id.to_owned(),
        })
        .await
    }

    /// Signs `claims` as given, as an ES256 `at+jwt`, with the current signing key.
    pub async fn sign(&self, claims: &AccessClaims) -> Result<String, ApiError> {
        let key = self.signing_key().await?;
        let signing_input = signing_input(&key.kid, TOKEN_TYPE, claims)?;
        let signature = key
            .pair
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| ApiError::internal("ECDSA signing failed"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// Signs `claims` in KMS with the root key itself (`kid` = the root's id): what tokens were
    /// before signing keys, still verified; for tests and tools.
    pub async fn sign_with_root(&self, claims: &AccessClaims) -> Result<String, ApiError> {
        self.sign_in_kms(TOKEN_TYPE, claims).await
    }

    async fn sign_in_kms<T: Serialize>(
        &self,
        typ: &'static str,
        claims: &T,
    ) -> Result<String, ApiError> {
        let signing_input = signing_input(&self.config.signing_key_id, typ, claims)?;
        let signature = self.sign_bytes(signing_input.as_bytes()).await?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    /// The JWS (`r || s`) ES256 signature of `input`, made by the root key in KMS.
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

    /// The key to sign with: this instance's, until it is due to rotate; then the table's current
    /// one, made (and certified) first if it is missing or due.
    async fn signing_key(&self) -> Result<Arc<SigningKey>, ApiError> {
        let now = jiff::Timestamp::now().as_second();
        let mut slot = self.signing.lock().await;
        if let Some(key) = slot.as_ref().filter(|key| now < key.rotate_at) {
            return Ok(key.clone());
        }
        let key = Arc::new(self.current_or_next(now).await?);
        *slot = Some(key.clone());
        Ok(key)
    }

    async fn current_or_next(&self, now: i64) -> Result<SigningKey, ApiError> {
        // Racing instances agree through the conditional write of CURRENT: one wins, the others
        // read its key (what they made is never used and expires).
        for _ in 0..3 {
            let current = self.db.get::<CurrentRecord>(KEY_PK, CURRENT_SK).await?;
            if let Some(current) = current.as_ref().filter(|c| now < c.rotate_at) {
                return self.unseal(&current.kid).await;
            }
            let next = self.make_key(now).await?;
            let pointer = CurrentRecord {
                pk: KEY_PK.to_owned(),
                sk: CURRENT_SK.to_owned(),
                kid: next.kid.clone(),
                rotate_at: next.rotate_at,
                version: current.as_ref().map_or(1, |c| c.version + 1),
            };
            let written = match &current {
                None => self.db.put_if_absent(&pointer).await,
                Some(seen) => self.db.put_if_version(&pointer, seen.version).await,
            };
            match written {
                Ok(()) => {
                    tracing::info!(kid = %next.kid, "a new token-signing key signs from now on");
                    return Ok(next);
                }
                Err(StorageError::ConditionFailed) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(ApiError::internal(
            "no token-signing key could be agreed on",
        ))
    }

    /// A new signing key: generated here, certified by the root in KMS, its private half sealed.
    async fn make_key(&self, now: i64) -> Result<SigningKey, ApiError> {
        let kid = format!("tk_{}", uuid::Uuid::new_v4().simple());
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| ApiError::internal("could not generate a signing key"))?;
        let point = pair.public_key().as_ref();
        // An uncompressed P-256 point: 0x04, then x and y, 32 bytes each.
        if point.len() != 65 || point[0] != 4 {
            return Err(ApiError::internal("unexpected public key encoding"));
        }
        let rotate_at = now + SIGNING_KEY_ROTATION_SECONDS;
        let certificate = self
            .sign_in_kms(
                KEY_CERTIFICATE_TYPE,
                &KeyClaims {
                    iss: self.config.issuer.clone(),
                    aud: KEY_AUDIENCE.to_owned(),
                    sub: kid.clone(),
                    x: URL_SAFE_NO_PAD.encode(&point[1..33]),
                    y: URL_SAFE_NO_PAD.encode(&point[33..]),
                    nbf: now - LEEWAY_SECONDS as i64,
                    exp: rotate_at + SIGNING_KEY_GRACE_SECONDS,
                },
            )
            .await?;
        let pkcs8 = pair
            .to_pkcs8v1()
            .map_err(|_| ApiError::internal("could not encode a signing key"))?;
        let (pk, sk) = KeyPlace::Own.key(&kid);
        let private_key = self
            .sealing
            .seal(&private_key_location(&self.db, &pk, &sk), pkcs8.as_ref())
            .await?;
        self.db
            .put_if_absent(&KeyRecord {
                pk,
                sk,
                kid: kid.clone(),
                certificate,
                private_key,
                rotate_at,
                expires_at: rotate_at + SIGNING_KEY_GRACE_SECONDS + 24 * 3600,
            })
            .await?;
        Ok(SigningKey {
            kid,
            pair,
            rotate_at,
        })
    }

    async fn unseal(&self, kid: &str) -> Result<SigningKey, ApiError> {
        let record = self
            .find_key(kid, || true)
            .await?
            .ok_or_else(|| ApiError::internal("the current token-signing key is missing"))?;
        let pkcs8 = self
            .sealing
            .open(
                &private_key_location(&self.db, &record.pk, &record.sk),
                &record.private_key,
            )
            .await?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
            .map_err(|_| ApiError::internal("the token-signing key does not parse"))?;
        Ok(SigningKey {
            kid: record.kid,
            pair,
            rotate_at: record.rotate_at,
        })
    }

    /// Verifies a token and returns its claims; every failure is 401 `INVALID_TOKEN` (or
    /// `TOKEN_EXPIRED`). A token this instance verified before is believed again until it lapses
    /// (its `exp` with the leeway, or its signing key's retirement), without a second signature
    /// check: a board sends the same token with every request for its whole life, and an ES256
    /// check is most of a request's own CPU after the AWS calls (docs/PERFORMANCE.md).
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, ApiError> {
        let now = jiff::Timestamp::now().as_second();
        if let Some(claims) = self.verified.believed(token, now) {
            return Ok(claims);
        }
        let (claims, until) = self.verify_signature(token).await?;
        self.verified.remember(token, &claims, until, now);
        Ok(claims)
    }

    /// [`Self::verify`]'s full check; with the claims, the last second they hold.
    async fn verify_signature(&self, token: &str) -> Result<(AccessClaims, i64), ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed token"))?;
        if header.alg != Algorithm::ES256 {
            return Err(invalid("unexpected signing algorithm"));
        }
        if header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(invalid("not an access token"));
        }
        let kid = header.kid.ok_or_else(|| invalid("token names no key"))?;
        let key = if self.config.trusted_key_ids.contains(&kid) {
            self.root_key(&kid).await?
        } else if is_signing_key_id(&kid) {
            let key = self.verifying_key(&kid).await?;
            if jiff::Timestamp::now().as_second() > key.not_after {
                return Err(invalid("token signed by a retired key"));
            }
            let claims = self.decode_access(token, &key.key)?;
            let until = (claims.exp + LEEWAY_SECONDS as i64).min(key.not_after);
            return Ok((claims, until));
        } else {
            return Err(invalid("token signed by an unknown key"));
        };
        let claims = self.decode_access(token, &key)?;
        let until = claims.exp + LEEWAY_SECONDS as i64;
        Ok((claims, until))
    }

    /// What every JWS we verify must hold (RFC 8725): ES256 only, our issuer, `audience`, and
    /// `exp`, `nbf` and `sub` present and in force.
    fn validation(&self, audience: &str) -> Validation {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        validation
    }

    fn decode_access(&self, token: &str, key: &DecodingKey) -> Result<AccessClaims, ApiError> {
        decode::<AccessClaims>(token, key, &self.validation(&self.config.audience)).map_err(|err| {
            use jsonwebtoken::errors::ErrorKind;
            match err.kind() {
                ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized("TOKEN_EXPIRED", "the access token has expired")
                }
                _ => invalid("the access token is not valid"),
            }
        })
    }

    /// A signing key's public half, believed only as a trusted root's certificate states it.
    async fn verifying_key(&self, kid: &str) -> Result<Arc<VerifyingKey>, ApiError> {
        if let Some(key) = self.verifying.read().await.get(kid) {
            return Ok(key.clone());
        }
        let record = self
            .find_key(kid, || self.may_look_in_shared_place())
            .await?
            .ok_or_else(|| invalid("token signed by an unknown key"))?;
        let header = jsonwebtoken::decode_header(&record.certificate)
            .map_err(|_| invalid("the signing key's certificate is malformed"))?;
        let root = header
            .kid
            .filter(|root| self.config.trusted_key_ids.contains(root))
            .ok_or_else(|| invalid("the signing key is not certified by a trusted key"))?;
        if header.alg != Algorithm::ES256 || header.typ.as_deref() != Some(KEY_CERTIFICATE_TYPE) {
            return Err(invalid("the signing key's certificate is not one"));
        }
        let claims: KeyClaims = decode(
            &record.certificate,
            &*self.root_key(&root).await?,
            &self.validation(KEY_AUDIENCE),
        )
        .map_err(|_| invalid("the signing key's certificate does not hold"))?;
        if claims.sub != kid {
            return Err(invalid("the certificate is another key's"));
        }
        let key = Arc::new(VerifyingKey {
            key: DecodingKey::from_ec_components(&claims.x, &claims.y)
                .map_err(|_| invalid("the certified key is not a P-256 point"))?,
            not_after: claims.exp,
        });
        self.verifying
            .write()
            .await
            .insert(kid.to_owned(), key.clone());
        Ok(key)
    }

    /// A key's record: in its own place, else where earlier releases kept keys if `shared` says
    /// it may be looked for there now.
    async fn find_key(
        &self,
        kid: &str,
        shared: impl FnOnce() -> bool,
    ) -> Result<Option<KeyRecord>, ApiError> {
        let read = |place: KeyPlace| {
            let (pk, sk) = place.key(kid);
            self.db.get::<KeyRecord>(pk, sk)
        };
        if let Some(record) = read(KeyPlace::Own).await? {
            return Ok(Some(record));
        }
        if !shared() {
            return Ok(None);
        }
        Ok(read(KeyPlace::Shared).await?)
    }

    /// Whether a verifier may look in [`KeyPlace::Shared`] now: once a second per instance, so
    /// that forged `kid`s cannot pile reads onto its one partition. A real key found there is kept
    /// by the instance, which does not look for it again.
    fn may_look_in_shared_place(&self) -> bool {
        let mut last = self.shared_lookup.lock().unwrap_or_else(|e| e.into_inner());
        may_look_again(&mut last, std::time::Instant::now())
    }

    async fn root_key(&self, kid: &str) -> Result<Arc<DecodingKey>, ApiError> {
        if let Some(key) = self.roots.read().await.get(kid) {
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
        self.roots.write().await.insert(kid.to_owned(), key.clone());
        Ok(key)
    }
}

fn decode<T: DeserializeOwned>(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<T, jsonwebtoken::errors::Error> {
    jsonwebtoken::decode::<T>(token, key, validation).map(|data| data.claims)
}

/// `<header>.<claims>`, base64url, of a JWS to be signed by `kid`.
fn signing_input<T: Serialize>(
    kid: &str,
    typ: &'static str,
    claims: &T,
) -> Result<String, ApiError> {
    let header = JwsHeader {
        alg: "ES256",
        typ,
        kid,
    };
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(ApiError::internal)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).map_err(ApiError::internal)?),
    ))
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

    fn claims(sub: &str) -> AccessClaims {
        AccessClaims {
            iss: "i".into(),
            aud: "a".into(),
            sub: sub.into(),
            exp: 1_000,
            nbf: 0,
            iat: 0,
            jti: "j".into(),
            role: Role::Customer,
            sid: "s".into(),
        }
    }

    #[test]
    fn a_verified_token_is_believed_until_it_lapses_and_only_itself() {
        let verified = Verified::default();
        verified.remember("token-a", &claims("a"), 1_030, 100);
        assert_eq!(verified.believed("token-a", 1_030), Some(claims("a")));
        assert_eq!(verified.believed("token-a", 1_031), None);
        assert_eq!(verified.believed("token-a-but-longer", 500), None);
        assert_eq!(verified.believed("token-b", 500), None);
    }

    #[test]
    fn the_memory_of_verified_tokens_is_bounded() {
        let verified = Verified::default();
        for i in 0..VERIFIED_MAX_ENTRIES + 10 {
            verified.remember(&format!("t{i}"), &claims("a"), 1_000, 100);
        }
        let held = verified.0.lock().unwrap().len();
        assert!(held <= VERIFIED_MAX_ENTRIES, "{held}");
        // Lapsed tokens go first.
        verified.remember("late", &claims("a"), 2_000, 1_500);
        assert_eq!(verified.believed("late", 1_600), Some(claims("a")));
    }

    #[test]
    fn only_signing_key_ids_of_their_form_are_looked_up() {
        assert!(is_signing_key_id("tk_0123456789abcdef0123456789abcdef"));
        for kid in [
            "",
            "tk_",
            "tk_0123456789abcdef0123456789abcde",
            "tk_0123456789abcdef0123456789abcdefa",
            "tk_0123456789abcdef0123456789abcdeg",
            "TK_0123456789abcdef0123456789abcdef",
            "tk_../../0123456789abcdef0123456789",
        ] {
            assert!(!is_signing_key_id(kid), "{kid}");
        }
    }

    #[test]
    fn the_shared_place_is_looked_in_at_most_once_a_second() {
        let start = std::time::Instant::now();
        let mut last = None;
        assert!(may_look_again(&mut last, start));
        for later_ms in [0, 1, 500, 999] {
            let at = start + std::time::Duration::from_millis(later_ms);
            assert!(!may_look_again(&mut last, at), "{later_ms} ms later");
        }
        // A refused look does not push the next one back.
        assert!(may_look_again(&mut last, start + SHARED_LOOKUP_INTERVAL));
        assert!(!may_look_again(
            &mut last,
            start + SHARED_LOOKUP_INTERVAL + std::time::Duration::from_millis(10)
        ));
    }

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
