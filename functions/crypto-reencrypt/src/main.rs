//! Re-encrypts sealed values whose data key predates a cut-off (after a key rotation or a suspected
//! exposure). Invoked directly with `{"cutoff": "…", "cursor"?: "…", "maxItems"?: n}`; returns a report
//! with a `cursor` while there is more to do. See docs/SECURITY.md.

use shared::App;
use shared::crypto::reencrypt::{self, ReencryptReport, ReencryptRequest};
use shared::lambda_http::Error;
use shared::{ApiError, job};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    job::serve(handler).await
}

async fn handler(
    app: &'static App,
    request: ReencryptRequest,
) -> Result<ReencryptReport, ApiError> {
    reencrypt::run(&app.db, &app.fresh_crypto(), &request).await
}
