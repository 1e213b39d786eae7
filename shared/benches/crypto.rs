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
