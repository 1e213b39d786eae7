//! `$connect` of the WebSocket API: authenticates the access token and subscribes the connection to
//! its channel. Anything but 200 refuses the connection.

use shared::aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use shared::aws_lambda_events::encodings::Body;
use shared::lambda_http::Error;
use shared::{ApiError, App, job, realtime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    job::serve(handler).await
}

async fn handler(
    app: &'static App,
    request: ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, ApiError> {
    let request_id = request
        .request_context
        .request_id
        .clone()
        .unwrap_or_default();
    let mut response = ApiGatewayProxyResponse::default();
    match realtime::on_connect(app, &request).await {
        Ok(_channel) => response.status_code = 200,
        Err(err) => {
            response.status_code = i64::from(err.status.as_u16());
            response.body = Some(Body::Text(err.body(&request_id).to_string()));
        }
    }
    Ok(response)
}
