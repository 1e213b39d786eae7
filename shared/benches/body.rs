//! Reading a request body into its route's type: an order create's, as the customer app sends it.
//!
//!     cargo bench -p shared --bench body

use std::hint::black_box;
use std::time::{Duration, Instant};

use lambda_http::{Body, Request};
use shared::http::json_body;
use shared::orders::CreateOrder;

const ITERATIONS: u32 = 200_000;

fn main() {
    let body = r#"{"storeId": "3b5df6a81dbb4457b98484c6f2028a88",
        "items": [{"itemId": "kimbap", "quantity": 2},
                  {"itemId": "latte", "quantity": 1, "options": [{"groupId": "size", "valueIds": ["large"]}]}],
        "fulfilment": {"type": "PICKUP"}, "phone": "010-1234-5678", "note": "no onions, please"}"#;
    let request: Request = lambda_http::http::Request::builder()
        .method("POST")
        .uri("/v1/orders")
        .header("content-type", "application/json")
        .body(Body::Text(body.to_owned()))
        .unwrap();
    json_body::<CreateOrder>(&request).expect("the sample body is read");
    // The floor: serde_json's typed reading of the same bytes, which takes a struct from an array
    // of its fields too and a field named twice as the last; the least of five rounds of each.
    let floor = least(|| {
        serde_json::from_slice::<CreateOrder>(black_box(body.as_bytes())).unwrap();
    });
    let ours = least(|| {
        json_body::<CreateOrder>(black_box(&request)).unwrap();
    });
    println!(
        "an order create's body ({} bytes): {ours:?}, serde_json's typed reading alone {floor:?}",
        body.len()
    );
}

fn least(mut read: impl FnMut()) -> Duration {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ITERATIONS {
                read();
            }
            start.elapsed() / ITERATIONS
        })
        .min()
        .unwrap_or_default()
}
