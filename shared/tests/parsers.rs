//! Fuzzing of every parser that faces the internet (property-based: `cargo fuzz` needs a nightly
//! toolchain). For any input: no panic, and a refusal is a 4xx — never a 5xx. JSON bodies are tried as
//! raw bytes and as JSON built from the real field names (to get past the syntax into the shapes);
//! ids, keys, headers and query values as arbitrary strings; sealed values and tokens as arbitrary
//! text.
//!
//! `FUZZ_CASES` sets the cases per target (default 1,000: a few seconds in CI).

use std::time::Duration;

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use shared::lambda_http::http::header::{AUTHORIZATION, CONTENT_TYPE};
use shared::lambda_http::{Body, Request};
use shared::{ApiError, http};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1_000)
}

fn request(content_type: &str, body: Vec<u8>) -> Request {
    let mut req = Request::new(Body::Binary(body));
    if let Ok(value) = content_type.parse() {
        req.headers_mut().insert(CONTENT_TYPE, value);
    }
    req
}

/// A refusal, if any, is the client's fault: 4xx with a code.
fn refused_well<T>(what: &str, result: Result<T, ApiError>) -> Result<(), TestCaseError> {
    if let Err(err) = result {
        prop_assert!(
            err.status.is_client_error() && !err.code.is_empty(),
            "{what}: {} {}",
            err.status,
            err.code
        );
    }
    Ok(())
}

/// Every request body the API parses, parsed from `req`. A body that is JSON is never called
/// malformed: if it is refused, it is for its shape, and the refusal names the field.
fn every_body(req: &Request, is_json: bool) -> Result<(), TestCaseError> {
    let one = |what: &str, result: Result<(), ApiError>| {
        if let (true, Err(err)) = (is_json, &result) {
            prop_assert_eq!(
                (err.status.as_u16(), err.code),
                (422, "VALIDATION_FAILED"),
                "{}: {}",
                what,
                err.message
            );
        }
        refused_well(what, result)
    };
    fn read<T: DeserializeOwned>(req: &Request) -> Result<(), ApiError> {
        http::json_body::<T>(req).map(drop)
    }
    one("signup", read::<shared::auth::service::SignupRequest>(req))?;
    one("login", read::<shared::auth::service::LoginRequest>(req))?;
    one(
        "refresh",
        read::<shared::auth::service::RefreshRequest>(req),
    )?;
    one("store", read::<shared::stores::CreateStore>(req))?;
    one("store patch", read::<shared::stores::PatchStore>(req))?;
    one("category", read::<shared::menus::model::CategoryInput>(req))?;
    one("item", read::<shared::menus::model::ItemInput>(req))?;
    one(
        "option group",
        read::<shared::menus::model::OptionGroupInput>(req),
    )?;
    one(
        "availability",
        read::<shared::menus::AvailabilityInput>(req),
    )?;
    one("order", read::<shared::orders::CreateOrder>(req))?;
    one("move", read::<shared::orders::MoveRequest>(req))?;
    one("confirm", read::<shared::payments::ConfirmRequest>(req))?;
    one(
        "refund",
        read::<shared::payments::refunds::RefundRequest>(req),
    )?;
    one("webhook", read::<shared::payments::webhooks::Webhook>(req))?;
    one("upload", read::<shared::images::UploadRequest>(req))?;
    Ok(())
}

/// JSON built from the names the API's bodies use, so that generated documents reach the shapes.
fn json_value() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "email",
        "password",
        "name",
        "role",
        "refreshToken",
        "phone",
        "address",
        "timeZone",
        "weeklyHours",
        "mon",
        "open",
        "close",
        "exceptions",
        "date",
        "closed",
        "acceptingOrders",
        "prepMinutes",
        "minOrderAmount",
        "maxQueuedOrders",
        "categoryId",
        "price",
        "available",
        "optionGroupIds",
        "kind",
        "required",
        "min",
        "max",
        "values",
        "id",
        "storeId",
        "items",
        "itemId",
        "quantity",
        "options",
        "groupId",
        "valueIds",
        "fulfilment",
        "type",
        "note",
        "to",
        "etaMinutes",
        "reason",
        "orderId",
        "paymentKey",
        "amount",
        "eventType",
        "createdAt",
        "data",
        "status",
        "secret",
        "contentType",
        "size",
        "sortOrder",
        "description",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        prop::sample::select(vec![
            "",
            "OWNER",
            "CUSTOMER",
            "PICKUP",
            "DELIVERY",
            "PAID",
            "ACCEPTED",
            "REJECTED",
            "SINGLE_CHOICE",
            "QUANTITY",
            "00:00",
            "24:00",
            "2026-02-30",
            "Asia/Seoul",
            "010-1234-5678",
            "image/png",
            "../x",
            "PAYMENT_STATUS_CHANGED",
            "DEPOSIT_CALLBACK",
        ])
        .prop_map(|s| json!(s)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((names.clone(), inner), 0..8).prop_map(|fields| Value::Object(
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

fn tokens() -> shared::auth::tokens::TokenService {
    let kms = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::new()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new("ap-northeast-2"))
            .build(),
    );
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::new()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("ap-northeast-2"))
            .build(),
    );
    // No endpoint answers: a token whose key would have to be fetched fails, never hangs (the
    // property's time-out), and random tokens are refused before any fetch.
    shared::auth::tokens::TokenService::new(
        kms.clone(),
        shared::storage::Db::new(dynamodb, "ordersync-test"),
        shared::crypto::Envelope::new(
            shared::crypto::kms::KmsKeySource::new(kms, "key-1"),
            shared::crypto::CachePolicy::default(),
        ),
        shared::config::JwtConfig {
            issuer: "https://ordersync/test".into(),
            audience: "ordersync-api".into(),
            signing_key_id: "key-1".into(),
            trusted_key_ids: vec!["key-1".into()],
            access_token_seconds: 900,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_as_a_body(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let is_json = serde_json::from_slice::<Value>(&bytes).is_ok();
        every_body(&request("application/json", bytes.clone()), is_json)?;
        every_body(&request("text/plain", bytes), false)?;
    }

    #[test]
    fn any_json_as_a_body(value in json_value()) {
        every_body(&request("application/json; charset=utf-8", value.to_string().into_bytes()), true)?;
    }

    #[test]
    fn any_header_and_query_value(value in ".{0,300}") {
        let mut req = request("application/json", Vec::new());
        if let Ok(header) = value.parse() {
            req.headers_mut().insert("idempotency-key", header);
        }
        if let Ok(header) = format!("Bearer {value}").parse() {
            req.headers_mut().insert(AUTHORIZATION, header);
        }
        if let Ok(key) = http::idempotency_key(&req) {
            refused_well("idempotency key", shared::idempotency::validate_key(&key))?;
        }
        let _ = http::bearer_token(&req);
        refused_well("limit", shared::paging::limit(value.parse().ok(), 20, 100))?;
        let _ = http::matches_etag(&value, "\"v1\"");
    }

    #[test]
    fn any_id_that_would_reach_toss_stays_in_its_path_segment(value in ".{0,220}") {
        if shared::payments::is_toss_id(&value) {
            let segment = shared::payments::toss::path_segment(&value).unwrap();
            prop_assert_eq!(&segment, &value, "a valid id needs no encoding");
        }
        if let Ok(segment) = shared::payments::toss::path_segment(&value) {
            prop_assert!(!segment.contains('/') && !segment.contains('?') && !segment.contains('#'));
            prop_assert!(segment != "." && segment != "..");
        }
    }

    #[test]
    fn any_text_as_a_sealed_value(text in ".{0,300}", bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Some(sealed) = shared::crypto::Sealed::from_stored(&text) {
            let _ = sealed.key_time();
        }
        let _ = shared::crypto::format::parse(&bytes);
    }

    #[test]
    fn any_text_as_a_cursor(text in "[A-Za-z0-9_-]{0,400}|.{0,300}") {
        let key = shared::crypto::cursors::CursorKey::from_secret(&[7; 32]).unwrap();
        prop_assert_eq!(key.open("LIST#CUSTOMER#u", &text), None);
    }

    #[test]
    fn any_text_as_an_access_token(token in "[A-Za-z0-9_.=-]{0,400}") {
        let service = tokens();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let verified = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), service.verify(&token)).await
        });
        prop_assert!(verified.is_ok(), "verification waited on something");
        match verified.unwrap() {
            Ok(_) => prop_assert!(false, "a random token was accepted"),
            Err(err) => prop_assert_eq!(err.status.as_u16(), 401),
        }
    }
}
