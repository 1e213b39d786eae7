//! POST /v1/webhooks/toss — Toss's notifications. Nothing in them is believed until Toss confirms it;
//! deliveries are deduplicated on their transmission id; 5xx only when Toss should retry.

use shared::App;
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::payments::webhooks::{self, Webhook};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let transmission_id = req
        .headers()
        .get("tosspayments-webhook-transmission-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let webhook: Webhook = http::json_body(&req)?;
    let outcome = webhooks::receive(app, &transmission_id, webhook).await?;
    http::json(StatusCode::OK, &outcome)
}
