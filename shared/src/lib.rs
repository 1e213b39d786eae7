//! The common crate of OrderSync's Lambda functions: configuration, errors, HTTP plumbing, storage,
//! and the business rules of each domain. Function crates stay thin: they parse the event, call in
//! here, and shape the response.

pub mod accounts;
pub mod app;
pub mod audit;
pub mod auth;
pub mod aws;
pub mod config;
pub mod consumer;
pub mod counters;
pub mod crypto;
pub mod deadline;
pub mod error;
pub mod events;
pub mod heap;
pub mod http;
pub mod idempotency;
pub mod images;
pub mod job;
pub mod limits;
pub mod menus;
pub mod orders;
pub mod paging;
pub mod payments;
pub mod realtime;
pub mod recording;
pub mod replay;
pub mod reports;
pub mod sdk_calls;
pub mod storage;
pub mod stores;
pub mod telemetry;
pub mod text;
pub mod tls;

pub use app::App;
pub use aws_lambda_events;
pub use error::ApiError;
pub use jiff;
pub use lambda_http;
pub use serde_json;
