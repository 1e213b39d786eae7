//! Audit records: who did what, to what, from where. Stored as items now; the audit issue serves and
//! archives them.

use serde::{Deserialize, Serialize};

use crate::http::RequestMeta;

/// Sign-in records are kept at least a year (PIPA's access-log rule); 400 days leaves a margin.
pub const AUTH_RETENTION_SECONDS: i64 = 400 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditAction {
    SignedUp,
    SignedIn,
    SignInFailed,
    SignInLocked,
    RefreshReused,
    SignedOut,
}

/// `AUDIT#<subject>` / `<time>#<eventId>`: a subject's history reads newest-first with one query.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub event_id: String,
    pub action: AuditAction,
    /// The user who acted, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// What was acted on: `USER#<id>`, or `EMAIL#<digest>` for an address with no account.
    pub subject: String,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    pub at: String,
    pub expires_at: i64,
}

impl AuditRecord {
    pub fn new(
        action: AuditAction,
        actor: Option<&str>,
        subject: String,
        meta: &RequestMeta,
    ) -> Self {
        let now = jiff::Timestamp::now();
        let event_id = uuid::Uuid::now_v7().to_string();
        Self {
            pk: format!("AUDIT#{subject}"),
            sk: format!("{now}#{event_id}"),
            event_id,
            action,
            actor: actor.map(String::from),
            subject,
            request_id: meta.request_id.clone(),
            source_ip: meta.source_ip.clone(),
            at: now.to_string(),
            expires_at: now.as_second() + AUTH_RETENTION_SECONDS,
        }
    }
}
