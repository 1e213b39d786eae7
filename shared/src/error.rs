//! The one error type every route returns, and the body a client sees:
//! `{"error": {"code": "STABLE_CODE", "message": "...", "requestId": "..."}}`.
//!
//! Codes are part of the API: clients branch on them, so they never change once published. Messages are
//! for people and may.

use std::borrow::Cow;
use std::fmt;

use http::StatusCode;
use lambda_http::http;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Cow<'static, str>,
    /// Seconds, sent as `Retry-After` with 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422: the request is well-formed JSON but breaks a rule. `field` names what to fix.
    pub fn validation(field: &str, message: impl fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
            format!("{field}: {message}"),
        )
    }

    pub fn too_many_requests(message: impl Into<Cow<'static, str>>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", message)
        }
    }

    /// A backend said "slow down" or was unreachable: the client may retry.
    pub fn unavailable() -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "the service is busy; retry shortly",
            )
        }
    }

    /// An unexpected failure. The cause is logged here, with the request, and never shown to the client.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "an unexpected error occurred",
        )
    }

    /// The JSON body, with the request id the client can quote to support.
    pub fn body(&self, request_id: &str) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "requestId": request_id,
            }
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_code_message_and_request_id() {
        let err = ApiError::conflict("EMAIL_TAKEN", "an account with this e-mail exists");
        assert_eq!(
            err.body("req-1"),
            serde_json::json!({"error": {"code": "EMAIL_TAKEN",
                "message": "an account with this e-mail exists", "requestId": "req-1"}})
        );
    }

    #[test]
    fn throttling_always_carries_a_positive_retry_after() {
        assert_eq!(
            ApiError::too_many_requests("slow down", 0).retry_after,
            Some(1)
        );
        assert_eq!(ApiError::unavailable().retry_after, Some(1));
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = ApiError::internal("table ordersync-dev is missing");
        assert_eq!(err.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!err.message.contains("ordersync-dev"));
    }
}
