//! Sign-in sessions and their refresh tokens.
//!
//! A session is a family of refresh tokens: each refresh spends the presented token and issues its
//! successor. Presenting a spent token again means it was copied — by an attacker or from a stolen
//! device — so the whole family is revoked (OAuth 2.0 Security BCP, refresh token rotation). Tokens
//! are stored only as SHA-256 digests: a read of the table yields nothing that can be presented.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::events::SignIn;

/// A session ends 30 days after sign-in, however often it is refreshed.
pub const SESSION_SECONDS: i64 = 30 * 24 * 3600;
pub const SESSION_SK: &str = "SESSION";
pub const REFRESH_SK: &str = "REFRESH";

/// `SESSION#<sessionId>` / `SESSION`. Its creation is the sign-in's event, read off the table's
/// stream (`crate::events::Event::of_session`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub session_id: String,
    pub user_id: String,
    pub created_at: String,
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// The request that signed in (absent from sessions made before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_in: Option<SignIn>,
}

/// `REFRESH#<sha256(token)>` / `REFRESH`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub session_id: String,
    pub user_id: String,
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_at: Option<String>,
}

pub fn session_pk(session_id: &str) -> String {
    format!("SESSION#{session_id}")
}

pub fn refresh_pk(token: &str) -> String {
    format!("REFRESH#{:x}", Sha256::digest(token.as_bytes()))
}

pub fn new_session(user_id: &str, now: jiff::Timestamp, signed_in: SignIn) -> SessionRecord {
    let session_id = uuid::Uuid::new_v4().to_string();
    SessionRecord {
        pk: session_pk(&session_id),
        sk: SESSION_SK.to_owned(),
        session_id,
        user_id: user_id.to_owned(),
        created_at: now.to_string(),
        expires_at: now.as_second() + SESSION_SECONDS,
        revoked_at: None,
        signed_in: Some(signed_in),
    }
}

/// A fresh refresh token (256 random bits) and the record that stores its digest. It expires with
/// its session.
pub fn new_refresh_token(
    session_id: &str,
    user_id: &str,
    expires_at: i64,
) -> (String, RefreshRecord) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let record = RefreshRecord {
        pk: refresh_pk(&token),
        sk: REFRESH_SK.to_owned(),
        session_id: session_id.to_owned(),
        user_id: user_id.to_owned(),
        expires_at,
        used_at: None,
    };
    (token, record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_only_as_digests() {
        let session = new_session("u1", jiff::Timestamp::now(), SignIn::default());
        let (a, record) = new_refresh_token(&session.session_id, "u1", session.expires_at);
        let (b, _) = new_refresh_token(&session.session_id, "u1", session.expires_at);
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(!record.pk.contains(&a));
        assert_eq!(record.pk, refresh_pk(&a));
        assert_eq!(record.pk.len(), "REFRESH#".len() + 64);
        assert_eq!(record.expires_at, session.expires_at);
    }

    #[test]
    fn a_new_session_tells_of_its_sign_in() {
        assert_eq!(SESSION_SK, crate::events::SESSION_SK);
        let stamp = SignIn {
            request_id: Some("req-1".into()),
            source_ip: Some("203.0.113.7".into()),
        };
        let session = new_session("u1", jiff::Timestamp::now(), stamp.clone());
        let item = crate::storage::to_item(&session).unwrap();
        let image: crate::events::SessionImage = crate::storage::from_item(item).unwrap();
        let event = crate::events::Event::of_session(&image).expect("a stamped session");
        assert_eq!(event.kind, crate::events::EventType::UserSignedIn);
        assert_eq!(event.event_id, format!("{}.signed_in", session.session_id));
        assert_eq!(event.at, session.created_at);
        assert_eq!(event.actor.id.as_deref(), Some("u1"));
        assert_eq!(event.request_id, stamp.request_id);
        let user = event.user.unwrap();
        assert_eq!(user.subject, crate::auth::users::user_pk("u1"));
        assert_eq!(user.source_ip, stamp.source_ip);
    }
}
