//! Menu images through the local runner and S3: a presigned upload accepted for a small PNG and
//! served back; an oversized or mislabelled upload removed; uploads refused to other people.

use std::time::Duration;

use e2e::{Stack, StatusCode};
use serde_json::{Value, json};

/// A valid 1×1 PNG.
const PNG: [u8; 69] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0x00,
    0x00, 0x03, 0x01, 0x01, 0x00, 0xc9, 0xfe, 0x92, 0xef, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Posts `file` with the form's fields, as a browser would.
async fn upload(stack: &Stack, form: &Value, file: Vec<u8>) -> StatusCode {
    let mut multipart = reqwest::multipart::Form::new();
    for field in form["fields"].as_array().unwrap() {
        multipart = multipart.text(
            field[0].as_str().unwrap().to_owned(),
            field[1].as_str().unwrap().to_owned(),
        );
    }
    multipart = multipart.part(
        "file",
        reqwest::multipart::Part::bytes(file).file_name("upload"),
    );
    let response = stack
        .http()
        .post(form["url"].as_str().unwrap())
        .multipart(multipart)
        .send()
        .await
        .unwrap();
    response.status()
}

async fn object_exists(stack: &Stack, key: &str) -> bool {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&stack.aws().await)
            .force_path_style(true)
            .build(),
    );
    s3.head_object()
        .bucket("ordersync-local-menuimagesbucket")
        .key(key)
        .send()
        .await
        .is_ok()
}

/// Waits (bounded) until `check` holds.
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..60 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

async fn menu_item(stack: &Stack, store: &str, item: &str) -> Value {
    let menu = stack.get(&format!("/v1/stores/{store}/menu"), None).await;
    menu.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == item)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_png_upload_becomes_the_items_image_and_bad_uploads_are_removed() {
    let stack = Stack::start_with(&["MenuCacheSeconds=1"]);
    let (_, owner, _) = stack.account("photo@example.com", "OWNER").await;
    let store = stack.store(&owner, json!({})).await;
    let base = format!("/v1/stores/{store}/menu");
    stack
        .put(
            &format!("{base}/categories/rolls"),
            &json!({"name": "Rolls"}),
            Some(&owner),
        )
        .await;
    for id in ["kimbap", "ramyeon", "tteok"] {
        let item = json!({"categoryId": "rolls", "name": id, "price": 3000});
        assert_eq!(
            stack
                .put(&format!("{base}/items/{id}"), &item, Some(&owner))
                .await
                .status,
            StatusCode::CREATED
        );
    }
    let form_for = |item: &'static str, content_type: &'static str| {
        let stack = &stack;
        let (owner, base) = (owner.clone(), base.clone());
        async move {
            let reply = stack
                .post(
                    &format!("{base}/items/{item}/image"),
                    &json!({"contentType": content_type}),
                    Some(&owner),
                )
                .await;
            assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
            reply.body
        }
    };

    // A small PNG: accepted by S3, accepted by the check, served back through a signed URL.
    let form = form_for("kimbap", "image/png").await;
    assert_eq!(form["maxBytes"], 5 * 1024 * 1024);
    let key = form["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&format!("stores/{store}/items/kimbap/")));
    let policy = form["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f[0] == "policy")
        .unwrap()[1]
        .clone();
    let policy = String::from_utf8(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            policy.as_str().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(
        policy.contains("content-length-range") && policy.contains("image/png"),
        "{policy}"
    );
    assert!(upload(&stack, &form, PNG.to_vec()).await.is_success());
    assert!(
        eventually(async || menu_item(&stack, &store, "kimbap")
            .await
            .get("imageUrl")
            .is_some())
        .await,
        "the image never reached the menu"
    );
    let item = menu_item(&stack, &store, "kimbap").await;
    assert_eq!(item["imageKey"], key.as_str());
    let served = stack
        .http()
        .get(item["imageUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(served.bytes().await.unwrap().as_ref(), PNG.as_slice());

    // Over 5 MiB (the local S3 does not enforce the policy): the check removes it.
    let form = form_for("ramyeon", "image/png").await;
    let big_key = form["key"].as_str().unwrap().to_owned();
    let mut big = PNG.to_vec();
    big.resize(5 * 1024 * 1024 + 1, 0);
    assert!(
        upload(&stack, &form, big).await.is_success(),
        "the emulator accepts it"
    );
    assert!(
        eventually(async || !object_exists(&stack, &big_key).await).await,
        "oversized upload kept"
    );

    // Labelled PNG, but a GIF: removed.
    let form = form_for("tteok", "image/png").await;
    let fake_key = form["key"].as_str().unwrap().to_owned();
    assert!(
        upload(&stack, &form, b"GIF89a\x01\x00\x01\x00".to_vec())
            .await
            .is_success()
    );
    assert!(
        eventually(async || !object_exists(&stack, &fake_key).await).await,
        "mislabelled upload kept"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        menu_item(&stack, &store, "ramyeon")
            .await
            .get("imageUrl")
            .is_none()
    );
    assert!(
        menu_item(&stack, &store, "tteok")
            .await
            .get("imageUrl")
            .is_none()
    );
    // The good image is untouched by the bad ones.
    assert!(object_exists(&stack, &key).await);

    // Replacing an item keeps its image; a second image replaces the first, which is deleted.
    let item = json!({"categoryId": "rolls", "name": "kimbap", "price": 3200});
    stack
        .put(&format!("{base}/items/kimbap"), &item, Some(&owner))
        .await;
    let form = form_for("kimbap", "image/png").await;
    let second = form["key"].as_str().unwrap().to_owned();
    assert!(upload(&stack, &form, PNG.to_vec()).await.is_success());
    assert!(
        eventually(async || !object_exists(&stack, &key).await).await,
        "the old image stays"
    );
    assert!(
        eventually(
            async || menu_item(&stack, &store, "kimbap").await["imageKey"] == second.as_str()
        )
        .await
    );
}

#[tokio::test]
async fn uploads_are_only_for_the_stores_owner_and_known_types() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("photo-owner@example.com", "OWNER").await;
    let (_, other, _) = stack.account("photo-other@example.com", "OWNER").await;
    let (_, customer, _) = stack.account("photo-eater@example.com", "CUSTOMER").await;
    let store = stack.store(&owner, json!({})).await;
    let base = format!("/v1/stores/{store}/menu");
    stack
        .put(
            &format!("{base}/categories/rolls"),
            &json!({"name": "Rolls"}),
            Some(&owner),
        )
        .await;
    stack
        .put(
            &format!("{base}/items/kimbap"),
            &json!({"categoryId": "rolls", "name": "K", "price": 1}),
            Some(&owner),
        )
        .await;
    let path = format!("{base}/items/kimbap/image");
    let png = json!({"contentType": "image/png"});
    assert_eq!(
        stack.post(&path, &png, Some(&other)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        stack.post(&path, &png, Some(&customer)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        stack.post(&path, &png, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let gif = stack
        .post(&path, &json!({"contentType": "image/gif"}), Some(&owner))
        .await;
    assert_eq!(
        (gif.status.as_u16(), gif.code()),
        (422, "VALIDATION_FAILED")
    );
    let ghost = stack
        .post(&format!("{base}/items/ghost/image"), &png, Some(&owner))
        .await;
    assert_eq!(
        (ghost.status.as_u16(), ghost.code()),
        (404, "ITEM_NOT_FOUND")
    );
}
