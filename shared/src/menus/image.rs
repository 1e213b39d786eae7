//! An item's image: the owner asks for an upload form; the browser uploads to S3; the object-created
//! check accepts the object onto the item, or deletes it.

use aws_sdk_s3::primitives::ByteStream;

use super::{Access, apply};
use crate::app::App;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::images::{self, Rejection, UploadForm, UploadRequest};
use crate::stores;

/// An upload form for the item's next image. The item must exist; the image replaces the current
/// one once the upload passes the check.
pub async fn request_upload(
    app: &App,
    caller: &Caller,
    store_id: &str,
    item_id: &str,
    request: UploadRequest,
) -> Result<UploadForm, ApiError> {
    stores::check_access(app, store_id, caller, Access::Owner).await?;
    let menu = super::load(&app.db, store_id)
        .await?
        .ok_or_else(|| ApiError::not_found("STORE_NOT_FOUND", "no such store"))?;
    if menu.menu.item(item_id).is_none() {
        return Err(ApiError::not_found("ITEM_NOT_FOUND", "no such item"));
    }
    let key = images::image_key(store_id, item_id);
    app.images().upload_form(&key, request.content_type).await
}

/// What the check did with an uploaded object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Deleted(Rejection),
    /// Gone before we looked (a duplicate notification, or already deleted).
    Missing,
}

/// Checks a newly created object: size, content sniffed against its declared type, and that its key
/// names an item that still exists. A good image becomes the item's image (the previous one is
/// deleted); anything else is deleted.
pub async fn check_upload(app: &App, key: &str) -> Result<Verdict, ApiError> {
    let images = app.images();
    let (s3, bucket) = (images.client(), &images.bucket);
    let Some((store_id, item_id)) = images::parse_key(key) else {
        delete(app, key).await?;
        return Ok(Verdict::Deleted(Rejection::NotOurKey));
    };
    let object = match s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .range("bytes=0-15")
        .send()
        .await
    {
        Ok(object) => object,
        Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
            return Ok(Verdict::Missing);
        }
        Err(err) => {
            return Err(ApiError::internal(aws_sdk_s3::error::DisplayErrorContext(
                err,
            )));
        }
    };
    let declared = object.content_type.clone();
    // A ranged GET reports the full size in Content-Range (`bytes 0-15/12345`).
    let size = object
        .content_range
        .as_deref()
        .and_then(|r| r.rsplit('/').next())
        .and_then(|total| total.parse::<u64>().ok())
        .or(object.content_length.and_then(|l| u64::try_from(l).ok()))
        .unwrap_or(0);
    let head = collect(object.body).await?;
    if let Err(rejection) = images::judge(size, declared.as_deref(), &head) {
        tracing::warn!(key, ?rejection, size, "uploaded image refused");
        delete(app, key).await?;
        return Ok(Verdict::Deleted(rejection));
    }
    let attach = apply(app, store_id, |menu| {
        let item = menu
            .items
            .iter_mut()
            .find(|i| i.id == item_id)
            .ok_or_else(|| ApiError::not_found("ITEM_NOT_FOUND", "no such item"))?;
        Ok(item.image_key.replace(key.to_owned()))
    })
    .await;
    match attach {
        Ok((previous, _)) => {
            if let Some(previous) = previous.filter(|p| p != key) {
                delete(app, &previous).await?;
            }
            Ok(Verdict::Accepted)
        }
        Err(err) if err.code == "ITEM_NOT_FOUND" || err.code == "STORE_NOT_FOUND" => {
            delete(app, key).await?;
            Ok(Verdict::Deleted(Rejection::ItemGone))
        }
        Err(err) => Err(err),
    }
}

async fn collect(body: ByteStream) -> Result<Vec<u8>, ApiError> {
    Ok(body
        .collect()
        .await
        .map_err(ApiError::internal)?
        .into_bytes()
        .to_vec())
}

async fn delete(app: &App, key: &str) -> Result<(), ApiError> {
    let images = app.images();
    images
        .client()
        .delete_object()
        .bucket(&images.bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| ApiError::internal(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    Ok(())
}
