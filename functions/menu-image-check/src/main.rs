//! On every object created in the images bucket (S3 event): accept it as its item's image if it is a
//! JPEG, PNG or WebP of at most 5 MiB that is what it claims to be; delete it otherwise.

use shared::App;
use shared::images::event_key;
use shared::lambda_http::Error;
use shared::lambda_http::aws_lambda_events::s3::S3Event;
use shared::menus::image;
use shared::{ApiError, job};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    job::serve(handler).await
}

async fn handler(app: &'static App, event: S3Event) -> Result<Vec<String>, ApiError> {
    let mut verdicts = Vec::with_capacity(event.records.len());
    for record in event.records {
        let Some(key) = record.s3.object.key.as_deref().map(event_key) else {
            continue;
        };
        let verdict = image::check_upload(app, &key).await?;
        shared::lambda_http::tracing::info!(key, ?verdict, "image checked");
        verdicts.push(format!("{key}: {verdict:?}"));
    }
    Ok(verdicts)
}
