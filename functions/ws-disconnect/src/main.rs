//! `$disconnect` of the WebSocket API: forgets the connection and its subscription.

use shared::aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
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
    if let Some(connection_id) = &request.request_context.connection_id {
        realtime::disconnect(app, connection_id).await?;
    }
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = 200;
    Ok(response)
}
