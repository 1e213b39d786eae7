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
use shared::crypto::kms::KmsKeySource;
use shared::crypto::{CachePolicy, Envelope};
use shared::storage::Db;

const ISSUER: &str = "https://ordersync/dev";
const AUDIENCE: &str = "ordersync-api";

struct Forger {
    kms: aws_sdk_kms::Client,
    db: Db,
}

impl Forger {
    async fn new(stack: &Stack) -> Self {
        let aws = stack.aws().await;
        Self {
            kms: aws_sdk_kms::Client::new(&aws),
            db: Db::new(aws_sdk_dynamodb::Client::new(&aws), e2e::TABLE),
        }
    }

    /// The envelope the functions seal signing keys with (the table's data key).
    fn envelope(&self) -> Envelope<KmsKeySource> {
        Envelope::new(
            KmsKeySource::new(self.kms.clone(), "alias/ordersync-dev-data"),
            CachePolicy::default(),
        )
    }

    /// A token service whose root is `key_id` (a KMS key).
    fn service(&self, key_id: &str) -> TokenService {
        self.service_trusting(key_id, &[])
    }

    /// A token service whose root is `key_id` and that still trusts the `previous` roots, as the
    /// functions are configured during a root rotation (`JWT_PREVIOUS_KEY_IDS`).
    fn service_trusting(&self, key_id: &str, previous: &[&str]) -> TokenService {
        let mut trusted_key_ids = vec![key_id.to_owned()];
        trusted_key_ids.extend(previous.iter().map(|id| id.to_string()));
        TokenService::new(
            self.kms.clone(),
            self.db.clone(),
            self.envelope(),
            JwtConfig {
                issuer: ISSUER.into(),
                audience: AUDIENCE.into(),
                signing_key_id: key_id.into(),
                trusted_key_ids,
                access_token_seconds: 900,
            },
        )
    }

    /// A new ES256 key in KMS, as a root would be.
    async fn new_root(&self) -> String {
        self.kms
            .create_key()
            .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
            .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .key_id()
            .to_owned()
    }

    /// Makes the current signing key due: the next signer makes and certifies the next one.
    async fn make_current_key_due(&self) {
        use aws_sdk_dynamodb::types::AttributeValue;
        let past = jiff::Timestamp::now().as_second() - 1;
        self.db
            .client()
            .update_item()
            .table_name(e2e::TABLE)
            .key("PK", AttributeValue::S("CONFIG#TOKEN_KEY".into()))
            .key("SK", AttributeValue::S("CURRENT".into()))
            .update_expression("SET rotateAt = :past")
            .expression_attribute_values(":past", AttributeValue::N(past.to_string()))
            .send()
            .await
            .unwrap();
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
    let forger = Forger::new(&stack).await;
    let key_id = token_signing_root(&forger.kms).await;
    let kms = forger.kms.clone();
    let me = |token: String| {
        let stack = &stack;
        async move { stack.get("/v1/me", Some(&token)).await }
    };
    let base = claims(&user_id, "s-1");
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": key_id});

    // Control: a token made the right way is accepted, by this forger and by the service.
    let genuine = forger.service(&key_id).sign_with_root(&base).await.unwrap();
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
    attacks.push(("expired", service.sign_with_root(&expired).await.unwrap()));
    let foreign = AccessClaims {
        aud: "another-api".into(),
        ..base.clone()
    };
    attacks.push((
        "foreign audience",
        service.sign_with_root(&foreign).await.unwrap(),
    ));
    let other_issuer = AccessClaims {
        iss: "https://evil.example".into(),
        ..base.clone()
    };
    attacks.push((
        "foreign issuer",
        service.sign_with_root(&other_issuer).await.unwrap(),
    ));
    let early = AccessClaims {
        nbf: now + 600,
        ..base.clone()
    };
    attacks.push((
        "not yet valid",
        service.sign_with_root(&early).await.unwrap(),
    ));

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
    let expired_reply = me(service.sign_with_root(&expired).await.unwrap()).await;
    assert_eq!(expired_reply.code(), "TOKEN_EXPIRED");
}

/// The JSON header of a compact JWS.
fn header_of(token: &str) -> Value {
    let first = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(first).unwrap()).unwrap()
}

/// What a certificate says of signing key `kid`, whose public point (uncompressed) is `point`:
/// good from a minute before `now` for an hour.
fn key_claims(kid: &str, point: &[u8], now: i64) -> Value {
    json!({"iss": ISSUER, "aud": "ordersync-token-keys", "sub": kid,
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        "nbf": now - 60, "exp": now + 3600})
}

/// An access token for `user_id` naming signing key `kid`, signed (ES256) with `key`.
fn signed_with(key: &aws_lc_rs::signature::EcdsaKeyPair, kid: &str, user_id: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "typ": "at+jwt", "kid": kid}).to_string()),
        URL_SAFE_NO_PAD.encode(json!(claims(user_id, "s-1")).to_string())
    );
    let signature = key
        .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
        .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

fn fresh_key_id() -> String {
    format!("tk_{}", uuid::Uuid::new_v4().simple())
}

/// A sign-in's token is signed by a signing key that the KMS root certified. A key the table holds
/// without such a certificate — planted by someone who can write the table but cannot use the root
/// — makes nothing that is believed. Keys rotate, and the previous key's tokens stay good.
#[tokio::test]
async fn signing_keys_are_believed_only_through_the_roots_certificate() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use aws_sdk_dynamodb::types::AttributeValue;

    let stack = Stack::start();
    let (user_id, access, _) = stack.account("keys@example.com", "CUSTOMER").await;
    let me = |token: String| {
        let stack = &stack;
        async move { stack.get("/v1/me", Some(&token)).await }
    };
    assert_eq!(me(access.clone()).await.status, StatusCode::OK);
    let kid = header_of(&access)["kid"].as_str().unwrap().to_owned();
    assert!(
        kid.starts_with("tk_"),
        "signed by a signing key, not in KMS: {kid}"
    );

    // The key as stored: its certificate, and its private half sealed — never in the clear.
    let items = stack.scan().await;
    let record = items
        .iter()
        .find(|i| {
            i["PK"]
                .as_s()
                .is_ok_and(|pk| *pk == format!("TOKEN_KEY#{kid}"))
                && i["SK"].as_s().is_ok_and(|sk| sk == "KEY")
        })
        .expect("the signing key's item");
    assert!(
        record["tokenSigningKey"]
            .as_s()
            .unwrap()
            .starts_with("enc1:")
    );
    let certificate = record["certificate"].as_s().unwrap().clone();
    assert_eq!(header_of(&certificate)["typ"], "key+jwt");
    // A certificate is not an access token.
    assert_eq!(
        me(certificate.clone()).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Someone who can write the table plants keys of their own.
    let aws = stack.aws().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let forger = Forger::new(&stack).await;
    let rogue_root = forger.new_root().await;
    let attacker = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = attacker.public_key().as_ref().to_vec();
    let now = jiff::Timestamp::now().as_second();
    let plant = |kid: String, certificate: String| {
        let dynamodb = dynamodb.clone();
        async move {
            dynamodb
                .put_item()
                .table_name(e2e::TABLE)
                .item("PK", AttributeValue::S(format!("TOKEN_KEY#{kid}")))
                .item("SK", AttributeValue::S("KEY".into()))
                .item("kid", AttributeValue::S(kid))
                .item("certificate", AttributeValue::S(certificate))
                .item("tokenSigningKey", AttributeValue::S("enc1:AAAA".into()))
                .item("rotateAt", AttributeValue::N((now + 3600).to_string()))
                .item("expiresAt", AttributeValue::N((now + 86400).to_string()))
                .send()
                .await
                .unwrap();
        }
    };
    let by_attacker = |kid: &str| signed_with(&attacker, kid, &user_id);

    let mut attacks: Vec<(&str, String)> = Vec::new();
    // Certified by a root this deployment does not trust.
    let untrusted = fresh_key_id();
    let header = json!({"alg": "ES256", "typ": "key+jwt", "kid": rogue_root});
    plant(
        untrusted.clone(),
        forger
            .es256(&rogue_root, &header, &key_claims(&untrusted, &point, now))
            .await,
    )
    .await;
    attacks.push(("certified by an untrusted root", by_attacker(&untrusted)));
    // The genuine key's certificate, copied onto the planted key.
    let copied = fresh_key_id();
    plant(copied.clone(), certificate.clone()).await;
    attacks.push(("another key's certificate", by_attacker(&copied)));
    // No certificate at all.
    let uncertified = fresh_key_id();
    plant(uncertified.clone(), "not.a.certificate".into()).await;
    attacks.push(("no certificate", by_attacker(&uncertified)));
    // The genuine key's id, the attacker's signature; and a key that does not exist.
    attacks.push(("the genuine kid, another signature", by_attacker(&kid)));
    attacks.push(("a key that is not there", by_attacker(&fresh_key_id())));
    for (label, token) in attacks {
        let reply = me(token).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNAUTHORIZED, "INVALID_TOKEN"),
            "{label}: {:?}",
            reply.body
        );
    }

    // The current key falls due. The next sign-in (in a fresh instance) makes and certifies the
    // next key; the previous key's tokens stay good until they expire.
    forger.make_current_key_due().await;
    stack.crash("AuthLoginFunction").await;
    let login = stack.login("keys@example.com", e2e::PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{:?}", login.body);
    let rotated = login.body["accessToken"].as_str().unwrap().to_owned();
    let next_kid = header_of(&rotated)["kid"].as_str().unwrap().to_owned();
    assert!(next_kid.starts_with("tk_") && next_kid != kid, "{next_kid}");
    assert_eq!(me(rotated).await.status, StatusCode::OK);
    assert_eq!(
        me(access).await.status,
        StatusCode::OK,
        "the previous key's token"
    );
}

/// A token naming a signing key that is not there costs a read before it is refused, and anyone can
/// send one. Each such read lands in a partition of its own (`TOKEN_KEY#<kid>`), spread over the
/// table as any other read; the one partition where earlier releases kept every key is looked in
/// at most once a second per instance, however many such tokens come.
#[tokio::test]
async fn forged_key_ids_spread_their_reads_over_the_table() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

    let stack = Stack::start();
    let (user_id, _, _) = stack.account("spread@example.com", "CUSTOMER").await;
    let attacker = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let forged: Vec<String> = (0..20)
        .map(|_| signed_with(&attacker, &fresh_key_id(), &user_id))
        .collect();
    stack.crash("MeFunction").await;
    let reading = stack
        .metered(async {
            for token in &forged {
                let reply = stack.get("/v1/me", Some(token)).await;
                assert_eq!(
                    (reply.status, reply.code()),
                    (StatusCode::UNAUTHORIZED, "INVALID_TOKEN"),
                    "{:?}",
                    reply.body
                );
            }
        })
        .await;
    let reads = reading["readUnitsByPartition"]
        .as_object()
        .expect("read units by partition");
    let own = reads
        .keys()
        .filter(|place| place.starts_with(&format!("{}|TOKEN_KEY#tk_", e2e::TABLE)))
        .count();
    assert_eq!(
        own, 20,
        "one read in each forged key's own place: {reads:?}"
    );
    let shared = reads
        .get(&format!("{}|CONFIG#TOKEN_KEY", e2e::TABLE))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    // Twenty tokens, one after another, in an instance or two: a read a second each at most.
    assert!(
        (1.0..=5.0).contains(&shared),
        "{shared} read units on the shared place: {reads:?}"
    );
}

/// Releases before 2026-12-07 kept every signing key at `CONFIG#TOKEN_KEY` / `<kid>`, one partition
/// for all. A deployment that upgrades signs with the key current then, and its tokens verify in
/// fresh instances, until it rotates; the next key is kept under a partition key of its own.
#[tokio::test]
async fn a_key_kept_where_earlier_releases_kept_keys_signs_and_verifies_until_it_rotates() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use aws_sdk_dynamodb::types::AttributeValue;

    let stack = Stack::start();
    stack.account("earlier@example.com", "CUSTOMER").await;
    let forger = Forger::new(&stack).await;
    let root = token_signing_root(&forger.kms).await;
    let dynamodb = forger.db.client().clone();

    // A key as an earlier release made it: certified by the root, its private half sealed at its
    // place there, and named current.
    let kid = fresh_key_id();
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    let now = jiff::Timestamp::now().as_second();
    let certificate = forger
        .es256(
            &root,
            &json!({"alg": "ES256", "typ": "key+jwt", "kid": root}),
            &key_claims(&kid, &point, now),
        )
        .await;
    let sealed = forger
        .envelope()
        .seal(
            &shared::crypto::Location {
                table: e2e::TABLE,
                pk: "CONFIG#TOKEN_KEY",
                sk: &kid,
                field: "tokenSigningKey",
            },
            pair.to_pkcs8v1().unwrap().as_ref(),
        )
        .await
        .unwrap();
    dynamodb
        .put_item()
        .table_name(e2e::TABLE)
        .item("PK", AttributeValue::S("CONFIG#TOKEN_KEY".into()))
        .item("SK", AttributeValue::S(kid.clone()))
        .item("kid", AttributeValue::S(kid.clone()))
        .item("certificate", AttributeValue::S(certificate))
        .item("tokenSigningKey", AttributeValue::S(sealed.as_str().into()))
        .item("rotateAt", AttributeValue::N((now + 3600).to_string()))
        .item("expiresAt", AttributeValue::N((now + 86400).to_string()))
        .send()
        .await
        .unwrap();
    dynamodb
        .update_item()
        .table_name(e2e::TABLE)
        .key("PK", AttributeValue::S("CONFIG#TOKEN_KEY".into()))
        .key("SK", AttributeValue::S("CURRENT".into()))
        .update_expression("SET kid = :kid, rotateAt = :at, version = version + :one")
        .expression_attribute_values(":kid", AttributeValue::S(kid.clone()))
        .expression_attribute_values(":at", AttributeValue::N((now + 3600).to_string()))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();

    // Fresh instances sign with it and believe what it signed.
    stack.crash("AuthLoginFunction").await;
    stack.crash("MeFunction").await;
    let login = stack.login("earlier@example.com", e2e::PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{:?}", login.body);
    let token = login.body["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(header_of(&token)["kid"], kid.as_str());
    let me = stack.get("/v1/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);

    // It falls due: the next key is kept in a place of its own, and the earlier key's token is
    // still good.
    forger.make_current_key_due().await;
    stack.crash("AuthLoginFunction").await;
    let login = stack.login("earlier@example.com", e2e::PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{:?}", login.body);
    let rotated = login.body["accessToken"].as_str().unwrap().to_owned();
    let next_kid = header_of(&rotated)["kid"].as_str().unwrap().to_owned();
    assert_ne!(next_kid, kid);
    let places: Vec<(String, String)> = stack
        .scan()
        .await
        .iter()
        // The key's item (the current pointer names it too, with no certificate).
        .filter(|i| {
            i.contains_key("certificate")
                && i.get("kid").and_then(|k| k.as_s().ok()) == Some(&next_kid)
        })
        .map(|i| {
            (
                i["PK"].as_s().unwrap().clone(),
                i["SK"].as_s().unwrap().clone(),
            )
        })
        .collect();
    assert_eq!(
        places,
        vec![(format!("TOKEN_KEY#{next_kid}"), "KEY".to_owned())]
    );
    stack.crash("MeFunction").await;
    assert_eq!(
        stack.get("/v1/me", Some(&rotated)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        stack.get("/v1/me", Some(&token)).await.status,
        StatusCode::OK,
        "the earlier key's token"
    );
}

/// Rotating the root (SECURITY.md, "Rotating the root key"): while the old root is named previous,
/// tokens it certified stay good and the next signing key is certified by the new root; once the
/// old root is dropped, only the old root's tokens are refused.
#[tokio::test]
async fn a_root_rotation_keeps_tokens_in_flight_good_until_the_old_root_is_dropped() {
    let stack = Stack::start();
    let (user_id, in_flight, _) = stack.account("rotation@example.com", "CUSTOMER").await;
    let old_kid = header_of(&in_flight)["kid"].as_str().unwrap().to_owned();
    let forger = Forger::new(&stack).await;
    let old_root = token_signing_root(&forger.kms).await;
    let new_root = forger.new_root().await;

    // The first deploy: the new root signs, the old one is still trusted.
    let rotating = forger.service_trusting(&new_root, &[&old_root]);
    let verified = rotating
        .verify(&in_flight)
        .await
        .expect("a token in flight");
    assert_eq!(verified.sub, user_id);
    // The current signing key falls due; the next one is certified by the new root.
    forger.make_current_key_due().await;
    let issued = rotating.sign(&claims(&user_id, "s-1")).await.unwrap();
    let new_kid = header_of(&issued)["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert!(rotating.verify(&issued).await.is_ok());

    // The second deploy drops the old root: what it certified is refused, the rest stays good.
    let drained = forger.service(&new_root);
    assert!(
        drained.verify(&issued).await.is_ok(),
        "certified by the new root"
    );
    let refused = drained.verify(&in_flight).await.unwrap_err();
    assert_eq!(
        (refused.status.as_u16(), refused.code),
        (401, "INVALID_TOKEN")
    );
}

/// The template's token-signing root, found by its alias.
async fn token_signing_root(kms: &aws_sdk_kms::Client) -> String {
    kms.list_aliases()
        .send()
        .await
        .unwrap()
        .aliases()
        .iter()
        .find(|a| a.alias_name() == Some("alias/ordersync-dev-token-signing"))
        .and_then(|a| a.target_key_id())
        .expect("the template's signing key")
        .to_owned()
}
