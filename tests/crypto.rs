//! Field encryption against KMS (moto's): the call budget, context binding, KMS refusals, key
//! rotation with re-encryption, and no personal data in logs.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::{PASSWORD, Stack, StatusCode};
use serde_json::json;
use shared::crypto::kms::KmsKeySource;
use shared::crypto::reencrypt::{self, ReencryptRequest};
use shared::crypto::{CachePolicy, CryptoError, Envelope, KeyContext, KeySource, Location, Sealed};
use shared::sdk_calls::CallCounter;
use shared::storage::Db;

const DATA_KEY: &str = "alias/ordersync-dev-data";

async fn counted_kms(stack: &Stack) -> (aws_sdk_kms::Client, CallCounter) {
    let counter = CallCounter::new();
    let config = aws_sdk_kms::config::Builder::from(&stack.aws().await)
        .interceptor(counter.clone())
        .build();
    (aws_sdk_kms::Client::from_conf(config), counter)
}

fn at<'a>(pk: &'a str, field: &'a str) -> Location<'a> {
    Location {
        table: e2e::TABLE,
        pk,
        sk: "PROFILE",
        field,
    }
}

#[tokio::test]
async fn a_thousand_values_cost_one_kms_call_each_way() {
    let stack = Stack::start();
    let (kms, calls) = counted_kms(&stack).await;
    let key_id = stack.key_id(DATA_KEY).await;
    let writer = Envelope::new(
        KmsKeySource::new(kms.clone(), &key_id),
        CachePolicy::default(),
    );

    let mut sealed = Vec::new();
    for i in 0..1000 {
        let pk = format!("USER#{i}");
        let value = writer
            .seal_str(&at(&pk, "email"), &format!("user{i}@example.com"))
            .await
            .unwrap();
        sealed.push((pk, value));
    }
    assert_eq!(
        calls.get("kms.GenerateDataKey"),
        1,
        "{:?}",
        calls.snapshot()
    );
    assert_eq!(calls.total(), 1);

    // A cold instance reading them all unwraps the one data key once.
    let reader = Envelope::new(KmsKeySource::new(kms, &key_id), CachePolicy::default());
    for (i, (pk, value)) in sealed.iter().enumerate() {
        assert_eq!(
            reader.open_str(&at(pk, "email"), value).await.unwrap(),
            format!("user{i}@example.com")
        );
    }
    assert_eq!(calls.get("kms.Decrypt"), 1, "{:?}", calls.snapshot());
    assert_eq!(reader.cache_stats().misses, 1);
    assert_eq!(reader.cache_stats().hits, 999);
}

#[tokio::test]
async fn kms_binds_data_keys_to_their_field_and_refusals_surface_as_errors() {
    let stack = Stack::start();
    let (kms, _) = counted_kms(&stack).await;
    let key_id = stack.key_id(DATA_KEY).await;
    let source = KmsKeySource::new(kms.clone(), &key_id);

    let (_, wrapped) = source
        .generate(&KeyContext::new(e2e::TABLE, "email"))
        .await
        .unwrap();
    assert!(
        source
            .unwrap(&wrapped, &KeyContext::new(e2e::TABLE, "email"))
            .await
            .is_ok()
    );
    // KMS itself refuses the key under another field's context.
    let swapped = source
        .unwrap(&wrapped, &KeyContext::new(e2e::TABLE, "name"))
        .await;
    assert!(
        matches!(swapped, Err(CryptoError::Integrity)),
        "{swapped:?}"
    );
    // A value sealed for one item does not open at another, even with the data key cached.
    let envelope = Envelope::new(source, CachePolicy::default());
    let sealed = envelope
        .seal_str(&at("USER#1", "email"), "kim@example.com")
        .await
        .unwrap();
    assert!(matches!(
        envelope.open(&at("USER#2", "email"), &sealed).await,
        Err(CryptoError::Integrity)
    ));

    // A data key wrapped by a key other than ours: KMS refuses to unwrap it for us.
    let rogue = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let foreign = Envelope::new(
        KmsKeySource::new(kms.clone(), &rogue),
        CachePolicy::default(),
    );
    let sealed_elsewhere = foreign
        .seal_str(&at("USER#1", "email"), "kim@example.com")
        .await
        .unwrap();
    let cold = Envelope::new(KmsKeySource::new(kms, &key_id), CachePolicy::default());
    let denied = cold.open(&at("USER#1", "email"), &sealed_elsewhere).await;
    assert!(
        matches!(denied, Err(CryptoError::KeyDenied(_))),
        "{denied:?}"
    );
}

/// Replaces the sealed `email` of the user's profile item.
async fn replace_email(stack: &Stack, user_id: &str, value: &str) {
    let ddb = aws_sdk_dynamodb::Client::new(&stack.aws().await);
    ddb.update_item()
        .table_name(e2e::TABLE)
        .key("PK", AttributeValue::S(format!("USER#{user_id}")))
        .key("SK", AttributeValue::S("PROFILE".into()))
        .update_expression("SET email = :v")
        .expression_attribute_values(":v", AttributeValue::S(value.into()))
        .send()
        .await
        .unwrap();
}

async fn stored_email(stack: &Stack, user_id: &str) -> String {
    let items = stack.scan().await;
    let profile = items
        .iter()
        .find(|i| i["PK"].as_s().unwrap() == &format!("USER#{user_id}"))
        .unwrap();
    profile["email"].as_s().unwrap().clone()
}

#[tokio::test]
async fn tampered_values_and_kms_refusals_are_500s_that_reveal_nothing() {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    let stack = Stack::start();
    let (user_id, access, _) = stack.account("victim@example.com", "CUSTOMER").await;
    let original = stored_email(&stack, &user_id).await;
    assert_eq!(
        stack.get("/v1/me", Some(&access)).await.status,
        StatusCode::OK
    );

    let assert_opaque_500 = |reply: e2e::Reply| {
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (500, "INTERNAL_ERROR")
        );
        let body = reply.body.to_string().to_lowercase();
        for leak in ["kms", "cipher", "victim", "enc1", "seal"] {
            assert!(!body.contains(leak), "{body}");
        }
    };

    // One flipped bit in the stored ciphertext.
    let mut bytes = STANDARD
        .decode(original.trim_start_matches("enc1:"))
        .unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    replace_email(
        &stack,
        &user_id,
        &format!("enc1:{}", STANDARD.encode(&bytes)),
    )
    .await;
    assert_opaque_500(stack.get("/v1/me", Some(&access)).await);
    assert!(
        stack
            .logs_with("SEALED_VALUE_INTEGRITY")
            .await
            .contains("SEALED_VALUE_INTEGRITY")
    );

    // Another user's sealed address pasted into this profile.
    let (other_id, _, _) = stack.account("other@example.com", "CUSTOMER").await;
    replace_email(&stack, &user_id, &stored_email(&stack, &other_id).await).await;
    assert_opaque_500(stack.get("/v1/me", Some(&access)).await);

    // A value whose data key another KMS key wrapped: KMS denies our function the unwrap.
    let kms = aws_sdk_kms::Client::new(&stack.aws().await);
    let rogue = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let foreign = Envelope::new(KmsKeySource::new(kms, &rogue), CachePolicy::default());
    let pk = format!("USER#{user_id}");
    let sealed = foreign
        .seal_str(&at(&pk, "email"), "victim@example.com")
        .await
        .unwrap();
    replace_email(&stack, &user_id, sealed.as_str()).await;
    assert_opaque_500(stack.get("/v1/me", Some(&access)).await);
    assert!(stack.logs_with("KMS_DENIED").await.contains("KMS_DENIED"));

    // Restored, it reads again.
    replace_email(&stack, &user_id, &original).await;
    let me = stack.get("/v1/me", Some(&access)).await;
    assert_eq!(me.body["email"], "victim@example.com");
}

#[tokio::test]
async fn after_rotation_everything_is_reencrypted_and_still_reads() {
    let stack = Stack::start();
    let mut accounts = Vec::new();
    for i in 0..5 {
        let email = format!("rotate{i}@example.com");
        let (_, access, _) = stack.account(&email, "OWNER").await;
        accounts.push((email, access));
    }
    // And a customer's delivery order with a note (its owner and customer are two accounts more):
    // its contact is sealed as binary.
    let delivery = json!({"type": "DELIVERY", "address": "서울 마포구 월드컵북로 396"});
    let latte = stack
        .latte_order_with("rotate", delivery, Some("벨 누르지 마세요"))
        .await;
    let order_path = format!("/v1/orders/{}", latte.order);
    let sealed_values =
        |items: &[std::collections::HashMap<String, AttributeValue>]| -> Vec<Sealed> {
            items
                .iter()
                .flat_map(|i| i.values())
                .filter_map(|v| match v {
                    AttributeValue::S(text) => Sealed::from_stored(text),
                    AttributeValue::B(bytes) => Sealed::from_binary(bytes.as_ref()),
                    _ => None,
                })
                .collect()
        };
    // An address and a name per account (seven), the private half of the token-signing key and the
    // order's contact.
    let sealed = 7 * 2 + 1 + 1;
    let before = sealed_values(&stack.scan().await);
    assert_eq!(before.len(), sealed);

    let aws = stack.aws().await;
    let kms = aws_sdk_kms::Client::new(&aws);
    let key_id = stack.key_id(DATA_KEY).await;
    kms.rotate_key_on_demand()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = jiff::Timestamp::now();

    // In small steps, resuming from the cursor each time, as an operator's loop would.
    let db = Db::new(aws_sdk_dynamodb::Client::new(&aws), e2e::TABLE);
    let mut request = ReencryptRequest {
        cutoff,
        cursor: None,
        max_items: 4,
    };
    let (mut runs, mut reencrypted) = (0, 0);
    loop {
        let fresh = Envelope::new(
            KmsKeySource::new(kms.clone(), &key_id),
            CachePolicy::default(),
        );
        let report = reencrypt::run(&db, &fresh, &request).await.unwrap();
        runs += 1;
        reencrypted += report.values_reencrypted;
        assert_eq!(report.items_changed, 0);
        match report.cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
        assert!(runs < 50, "the job does not converge");
    }
    assert!(runs > 1, "the job was resumed");
    assert_eq!(reencrypted, sealed as u64);

    let after = sealed_values(&stack.scan().await);
    assert_eq!(after.len(), sealed);
    let cutoff_ms = cutoff.as_millisecond() as u64;
    for value in &after {
        assert!(value.key_time().unwrap() >= cutoff_ms);
        assert!(!before.contains(value));
    }

    // Everything still reads, through the API.
    for (email, access) in &accounts {
        let me = stack.get("/v1/me", Some(access)).await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(me.body["email"], email.as_str());
        assert_eq!(me.body["name"], "Test User");
    }
    let read = stack.get(&order_path, Some(&latte.customer)).await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    assert_eq!(read.body["phone"], "01022223333");
    assert_eq!(read.body["address"], "서울 마포구 월드컵북로 396");
    assert_eq!(read.body["note"], "벨 누르지 마세요");
    // The deployed job, under its own KMS grants (every stored field): a later cut-off
    // re-encrypts every value once more, and a second pass finds nothing left to do.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let later = json!({"cutoff": jiff::Timestamp::now().to_string(), "maxItems": 1000});
    let job = stack.invoke("CryptoReencryptFunction", &later).await;
    assert_eq!(job["valuesReencrypted"], json!(sealed), "{job}");
    let again = stack.invoke("CryptoReencryptFunction", &later).await;
    assert_eq!(again["valuesReencrypted"], json!(0), "{again}");

    // Sign-in still finds every account by its blind index, and a fresh instance unseals the
    // re-encrypted token-signing key.
    stack.crash("AuthLoginFunction").await;
    for (email, _) in &accounts {
        assert_eq!(stack.login(email, PASSWORD).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn logs_of_a_whole_session_hold_no_personal_data_or_secrets() {
    let stack = Stack::start();
    let email = "private.person@example.com";
    let signup = stack
        .post(
            "/v1/auth/signup",
            &json!({"email": email, "password": PASSWORD, "name": "비밀스러운 이름", "role": "CUSTOMER"}),
            None,
        )
        .await;
    assert_eq!(signup.status, StatusCode::CREATED);
    assert_eq!(
        stack.login(email, "a wrong password").await.status,
        StatusCode::UNAUTHORIZED
    );
    let login = stack.login(email, PASSWORD).await;
    let access = login.body["accessToken"].as_str().unwrap().to_owned();
    let refresh = login.body["refreshToken"].as_str().unwrap().to_owned();
    assert_eq!(
        stack.get("/v1/me", Some(&access)).await.status,
        StatusCode::OK
    );
    let rotated = stack
        .post("/v1/auth/refresh", &json!({"refreshToken": refresh}), None)
        .await;
    let next = rotated.body["refreshToken"].as_str().unwrap().to_owned();
    stack
        .post("/v1/auth/logout", &json!({}), Some(&access))
        .await;

    let logs = stack.settled_logs().await;
    assert!(
        logs.contains("POST /v1/auth/signup"),
        "the log was captured"
    );
    for secret in [
        email,
        "비밀스러운 이름",
        PASSWORD,
        "a wrong password",
        &access,
        &refresh,
        &next,
    ] {
        assert!(!logs.contains(secret), "the logs contain {secret}");
    }
}
