//! Field encryption cost: seal and open per value (32 B and 900 B) with a warm data-key cache, and
//! key-source calls per 1,000 operations under the default cache policy.
//!
//!     cargo bench -p shared --bench crypto
//!
//! The key source here is in-process, so the figures are our own CPU: AES-256-GCM, the format, the
//! cache. KMS round trips are counted, not timed (tests/crypto.rs counts them against KMS itself).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use shared::crypto::{
    CachePolicy, CryptoError, Envelope, KeyBytes, KeyContext, KeySource, Location,
};
use zeroize::Zeroizing;

#[derive(Default)]
struct CountingKeys {
    calls: AtomicU64,
}

impl KeySource for CountingKeys {
    async fn generate(&self, _: &KeyContext) -> Result<(KeyBytes, Vec<u8>), CryptoError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut key = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(key.as_mut()).map_err(|_| CryptoError::Malformed)?;
        // A stand-in for KMS's ~180-byte CiphertextBlob, so values have their real size.
        let mut wrapped = key.to_vec();
        wrapped.resize(184, 0);
        Ok((key, wrapped))
    }

    async fn unwrap(&self, wrapped: &[u8], _: &KeyContext) -> Result<KeyBytes, CryptoError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&wrapped[..32]);
        Ok(key)
    }
}

const ITERATIONS: u32 = 20_000;

/// An order create's response: a latte with an option, picked up.
const ORDER_RESPONSE: &str = r#"{"orderId":"ord_8d073cd10eff41cc8be0260587a3ca96","storeId":"278987d848454479afdcb2c7634b6314","customerId":"fb95a687-50e0-4acb-80b0-0a35e1af1b68","status":"PENDING_PAYMENT","version":1,"lines":[{"itemId":"latte","name":"카페라떼","quantity":2,"unitPrice":5000,"options":[{"groupId":"size","valueId":"large","name":"Large","price":500}],"lineTotal":11000}],"total":11000,"orderName":"카페라떼 외 0건","menuVersion":3,"fulfilment":{"type":"PICKUP"},"phone":"010-1234-5678","createdAt":"2026-12-05T19:30:12.345Z","updatedAt":"2026-12-05T19:30:12.345Z","paymentDueAt":"2026-12-05T19:45:12.345Z"}"#;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!("field encryption, {ITERATIONS} operations each (µs per operation, mean)");
        println!(
            "{:>8} {:>10} {:>10} {:>12}",
            "size", "seal", "open", "sealed size"
        );
        for size in [32usize, 900] {
            let envelope = Envelope::new(CountingKeys::default(), CachePolicy::default());
            let value = vec![b'x'; size];
            let at = Location {
                table: "ordersync-bench",
                pk: "ORDER#0123456789",
                sk: "ORDER",
                field: "note",
            };
            let sealed = envelope.seal(&at, &value).await.expect("seal");

            let start = Instant::now();
            for _ in 0..ITERATIONS {
                black_box(envelope.seal(&at, black_box(&value)).await.expect("seal"));
            }
            let seal = start.elapsed().as_secs_f64() * 1e6 / f64::from(ITERATIONS);

            let start = Instant::now();
            for _ in 0..ITERATIONS {
                black_box(envelope.open(&at, black_box(&sealed)).await.expect("open"));
            }
            let open = start.elapsed().as_secs_f64() * 1e6 / f64::from(ITERATIONS);
            println!(
                "{:>6} B {:>10.2} {:>10.2} {:>10} B",
                size,
                seal,
                open,
                sealed.as_str().len()
            );
        }

        // An order create's response as its idempotency record keeps it: sealed as text (before
        // 2026-12-05), or deflated, sealed and stored as binary (`shared::idempotency`).
        let envelope = Envelope::new(CountingKeys::default(), CachePolicy::default());
        let at = Location {
            table: "ordersync-bench",
            pk: "IDEMPOTENCY#0123456789",
            sk: "IDEMPOTENCY",
            field: "responseBody",
        };
        let response = ORDER_RESPONSE.as_bytes();
        let start = Instant::now();
        let mut text_len = 0;
        for _ in 0..ITERATIONS {
            let sealed = envelope.seal(&at, black_box(response)).await.expect("seal");
            text_len = sealed.as_str().len();
            black_box(sealed);
        }
        let text = start.elapsed().as_secs_f64() * 1e6 / f64::from(ITERATIONS);
        let start = Instant::now();
        let mut binary_len = 0;
        for _ in 0..ITERATIONS {
            let deflated =
                shared::idempotency::deflate(black_box(ORDER_RESPONSE)).expect("deflate");
            let sealed = envelope.seal(&at, &deflated).await.expect("seal");
            let binary = sealed.to_binary().expect("binary");
            binary_len = binary.len();
            black_box(binary);
        }
        let deflated = start.elapsed().as_secs_f64() * 1e6 / f64::from(ITERATIONS);
        let sealed = envelope
            .seal(
                &at,
                &shared::idempotency::deflate(ORDER_RESPONSE).expect("deflate"),
            )
            .await
            .expect("seal");
        let start = Instant::now();
        for _ in 0..ITERATIONS {
            let opened = envelope.open(&at, black_box(&sealed)).await.expect("open");
            black_box(shared::idempotency::inflate(&opened).expect("inflate"));
        }
        let replay = start.elapsed().as_secs_f64() * 1e6 / f64::from(ITERATIONS);
        println!(
            "an order's response ({} B): sealed as text {text:.2} µs ({text_len} B); deflated, \
             sealed, binary {deflated:.2} µs ({binary_len} B); its replay opened and inflated \
             {replay:.2} µs",
            ORDER_RESPONSE.len()
        );

        // KMS calls per 1,000 operations, default policy: a writer instance and a cold reader.
        let writer = Envelope::new(CountingKeys::default(), CachePolicy::default());
        let reader = Envelope::new(CountingKeys::default(), CachePolicy::default());
        let mut sealed = Vec::new();
        for i in 0..1_000 {
            let pk = format!("USER#{i}");
            let at = Location {
                table: "t",
                pk: &pk,
                sk: "PROFILE",
                field: "email",
            };
            sealed.push((
                pk.clone(),
                writer
                    .seal(&at, b"someone@example.com")
                    .await
                    .expect("seal"),
            ));
        }
        for (pk, value) in &sealed {
            let at = Location {
                table: "t",
                pk,
                sk: "PROFILE",
                field: "email",
            };
            reader.open(&at, value).await.expect("open");
        }
        println!(
            "key-source (KMS) calls per 1,000 operations: seal {}, open (cold instance) {}",
            writer.source().calls.load(Ordering::Relaxed),
            reader.source().calls.load(Ordering::Relaxed)
        );
    });
}
