//! Archives a month of the audit trail to S3 as gzip JSON Lines, once: daily on a schedule (the
//! previous month, from its second day), or `{"month": "YYYY-MM"}` when invoked directly.

use shared::audit::{self, Archived};
use shared::lambda_http::Error;
use shared::serde_json::Value;
use shared::{ApiError, App, job};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    job::serve(handler).await
}

async fn handler(app: &'static App, event: Value) -> Result<Option<Archived>, ApiError> {
    let bucket = app
        .config
        .audit_archive_bucket
        .as_deref()
        .ok_or_else(|| ApiError::internal("AUDIT_ARCHIVE_BUCKET is not set"))?;
    let month = match event.get("month").and_then(Value::as_str) {
        Some(month) => month.to_owned(),
        None => match audit::month_due(shared::jiff::Timestamp::now()) {
            Some(month) => month,
            None => return Ok(None),
        },
    };
    // Runs never overlap (an operator's invocation and the schedule's).
    let run = job::exclusive(
        &app.db,
        "audit-archive",
        audit::archive(app, bucket, &month),
    )
    .await?;
    Ok(run)
}
