//! Every forged, stale or misdirected access token is refused with 401, and a correctly made one is
//! accepted — so the forging here is real, and the refusals are the verifier's doing.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use e2e::{Stack, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use shared::auth::Role;
use shared::auth::tokens::{AccessClaims, TokenService};
use shared::config::JwtConfig;

const ISSUER: &str = "https://ordersync/dev";
const AUDIENCE: &str = "ordersync-api";

struct Forger {
    kms: aws_sdk_kms::Client,
}

impl Forger {
    fn service(&self, key_id: &str) -> TokenService {
        TokenService::new(
            self.kms.clone(),
            JwtConfig {
                issuer: ISSUER.into(),
                audience: AUDIENCE.into(),
                signing_key_id: key_id.into(),
                trusted_key_ids: vec![key_id.into()],
            },
        )
    }

    /// A token with any header and claims, signed (ES256) by `key_id` through KMS.
    async fn es256(&self, key_id: &str, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .service(key_id)
            .sign_bytes(input.as_bytes())
            .await
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

fn claims(user_id: &str, session_id: &str) -> AccessClaims {
    let now = jiff::Timestamp::now().as_second();
    AccessClaims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: user_id.into(),
        exp: now + 600,
        nbf: now,
        iat: now,
        jti: uuid::Uuid::new_v4().to_string(),
        role: Role::Customer,
        sid: session_id.into(),
    }
}

#[tokio::test]
async fn forged_expired_and_foreign_tokens_are_refused() {
    let stack = Stack::start();
    let (user_id, access, _) = stack.account("attack@example.com", "CUSTOMER").await;
    let kms = aws_sdk_kms::Client::new(&stack.aws().await);
    let aliases = kms.list_aliases().send().await.unwrap();
    let key_id = aliases
        .aliases()
        .iter()
        .find(|a| a.alias_name() == Some("alias/ordersync-dev-token-signing"))
        .and_then(|a| a.target_key_id())
        .expect("the template's signing key")
        .to_owned();
    let forger = Forger { kms: kms.clone() };
    let me = |token: String| {
        let stack = &stack;
        async move { stack.get("/v1/me", Some(&token)).await }
    };
    let base = claims(&user_id, "s-1");
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": key_id});

    // Control: a token made the right way is accepted, by this forger and by the service.
    let genuine = forger.service(&key_id).sign(&base).await.unwrap();
    assert_eq!(me(genuine.clone()).await.status, StatusCode::OK);
    assert_eq!(me(access.clone()).await.status, StatusCode::OK);
    let made_by_hand = forger.es256(&key_id, &header, &json!(base)).await;
    assert_eq!(me(made_by_hand).await.status, StatusCode::OK);

    let mut attacks: Vec<(&str, String)> = Vec::new();

    // `alg: none`, unsigned.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "at+jwt", "kid": key_id}).to_string()),
        URL_SAFE_NO_PAD.encode(json!(base).to_string())
    );
    attacks.push(("alg none", none));

    // HS256 "signed" with the public key (as PEM and as DER): the classic algorithm confusion.
    let public = kms.get_public_key().key_id(&key_id).send().await.unwrap();
    let der = public.public_key().unwrap().as_ref().to_vec();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(&der)
    );
    for (label, secret) in [
        ("HS256 with the PEM public key", pem.into_bytes()),
        ("HS256 with the DER public key", der),
    ] {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD
                .encode(json!({"alg": "HS256", "typ": "at+jwt", "kid": key_id}).to_string()),
            URL_SAFE_NO_PAD.encode(json!(base).to_string())
        );
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&secret).unwrap();
        mac.update(input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        attacks.push((label, format!("{input}.{sig}")));
    }

    let now = jiff::Timestamp::now().as_second();
    let service = forger.service(&key_id);
    let expired = AccessClaims {
        exp: now - 3600,
        nbf: now - 4500,
        iat: now - 4500,
        ..base.clone()
    };
    attacks.push(("expired", service.sign(&expired).await.unwrap()));
    let foreign = AccessClaims {
        aud: "another-api".into(),
        ..base.clone()
    };
    attacks.push(("foreign audience", service.sign(&foreign).await.unwrap()));
    let other_issuer = AccessClaims {
        iss: "https://evil.example".into(),
        ..base.clone()
    };
    attacks.push(("foreign issuer", service.sign(&other_issuer).await.unwrap()));
    let early = AccessClaims {
        nbf: now + 600,
        ..base.clone()
    };
    attacks.push(("not yet valid", service.sign(&early).await.unwrap()));

    // Tampered: the payload of a genuine token changed to claim ADMIN, signature kept.
    let parts: Vec<&str> = genuine.split('.').collect();
    let promoted = AccessClaims {
        role: Role::Admin,
        ..base.clone()
    };
    attacks.push((
        "tampered payload",
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(json!(promoted).to_string()),
            parts[2]
        ),
    ));
    attacks.push(("truncated", format!("{}.{}", parts[0], parts[1])));
    attacks.push(("garbage", "not.a.token".into()));

    // Correctly signed, but the wrong type, or no type.
    let typ_jwt = json!({"alg": "ES256", "typ": "JWT", "kid": key_id});
    attacks.push((
        "typ JWT",
        forger.es256(&key_id, &typ_jwt, &json!(base)).await,
    ));
    let untyped = json!({"alg": "ES256", "kid": key_id});
    attacks.push((
        "no typ",
        forger.es256(&key_id, &untyped, &json!(base)).await,
    ));

    // Correctly signed by a key this deployment does not trust (and with a kid pointing to it).
    let rogue = kms
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    let rogue_id = rogue.key_metadata().unwrap().key_id().to_owned();
    let rogue_header = json!({"alg": "ES256", "typ": "at+jwt", "kid": rogue_id});
    attacks.push((
        "untrusted key",
        forger.es256(&rogue_id, &rogue_header, &json!(base)).await,
    ));
    // …and the rogue key's signature presented under the trusted kid.
    attacks.push((
        "signature by another key",
        forger.es256(&rogue_id, &header, &json!(base)).await,
    ));

    for (label, token) in attacks {
        let reply = me(token).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{label}: {:?}",
            reply.body
        );
        let code = reply.code();
        assert!(
            code == "INVALID_TOKEN" || code == "TOKEN_EXPIRED",
            "{label}: {code}"
        );
    }
    let expired_reply = me(service.sign(&expired).await.unwrap()).await;
    assert_eq!(expired_reply.code(), "TOKEN_EXPIRED");
}
