//! Sign-in sessions and their refresh tokens.
//!
//! A session is a family of refresh tokens: each refresh spends the presented token and issues its
//! successor. Presenting a spent token again means it was copied — by an attacker or from a stolen
//! device — so the whole family is revoked (OAuth 2.0 Security BCP, refresh token rotation).
//!
//! A token names its session and its generation and carries a MAC over both, under a key derived
//! from the KMS-sealed blind-index secret ([`BlindIndex::refresh_token_key`]). The session item
//! keeps the one generation it accepts next: a refresh is one conditional write to it, and a token
//! of an earlier generation, which only the MAC's key could have made, is one that was spent. The
//! table holds no token, nor anything from which one can be made without KMS.

use aws_lc_rs::{constant_time, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::crypto::blind_index::BlindIndex;
use crate::events::{SessionEnd, SignIn};

/// A session ends 30 days after sign-in, however often it is refreshed.
pub const SESSION_SECONDS: i64 = 30 * 24 * 3600;
pub const SESSION_SK: &str = "SESSION";

/// `SESSION#<sessionId>` / `SESSION`. Its creation is the sign-in's event, read off the table's
/// stream (`crate::events::Event::of_session`), and its revocation its end's
/// (`crate::events::Event::of_session_end`); its refreshes are changes, which no reader takes.
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
    /// How it ended, written with `revokedAt` (absent from sessions ended before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<SessionEnd>,
    /// The request that signed in (absent from sessions made before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_in: Option<SignIn>,
    /// The generation of the one refresh token this session accepts (absent from sessions made
    /// before tokens had generations: they accept none, and their holders sign in again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_generation: Option<u64>,
}

pub fn session_pk(session_id: &str) -> String {
    format!("SESSION#{session_id}")
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
        ended: None,
        signed_in: Some(signed_in),
        refresh_generation: Some(0),
    }
}

/// A refresh token: `<sessionId>.<generation>.<MAC>` as the client holds it, opaque to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub session_id: String,
    pub generation: u64,
}

/// Longer than any token made here (36 + 1 + 20 + 1 + 43): refused before any work.
const MAX_TOKEN_CHARS: usize = 128;

impl RefreshToken {
    /// The token a new session's sign-in hands out.
    pub fn first(session: &SessionRecord) -> Self {
        Self {
            session_id: session.session_id.clone(),
            generation: session.refresh_generation.unwrap_or(0),
        }
    }

    /// The token that succeeds this one. (Saturating, so that no request can make it overflow: the
    /// last generation is 2^64 refreshes away, out of a 30-day session's reach.)
    pub fn successor(&self) -> Self {
        Self {
            session_id: self.session_id.clone(),
            generation: self.generation.saturating_add(1),
        }
    }

    /// The token's text, MACed under `key`.
    pub fn to_text(&self, key: &hmac::Key) -> String {
        format!(
            "{}.{}.{}",
            self.session_id,
            self.generation,
            URL_SAFE_NO_PAD.encode(self.mac(key))
        )
    }

    /// The token `text` is, if `key` made it; `None` for anything else (malformed, forged, or
    /// altered), all alike.
    pub fn from_text(text: &str, key: &hmac::Key) -> Option<Self> {
        if text.len() > MAX_TOKEN_CHARS {
            return None;
        }
        let mut parts = text.split('.');
        let (session_id, generation, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let token = Self {
            session_id: uuid::Uuid::try_parse(session_id).ok()?.to_string(),
            generation: generation.parse().ok()?,
        };
        // The text must be the one we make: no other spelling of the id or the number.
        if token.session_id != session_id || token.generation.to_string() != generation {
            return None;
        }
        let presented = URL_SAFE_NO_PAD.decode(mac).ok()?;
        constant_time::verify_slices_are_equal(&presented, token.mac(key).as_ref())
            .ok()
            .map(|()| token)
    }

    fn mac(&self, key: &hmac::Key) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(b"refresh\0");
        ctx.update(self.session_id.as_bytes());
        ctx.update(b"\0");
        ctx.update(&self.generation.to_be_bytes());
        ctx.sign()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> hmac::Key {
        crate::crypto::blind_index::BlindIndex::from_secret(&[byte; 32])
            .refresh_token_key()
            .clone()
    }

    #[test]
    fn a_token_opens_only_as_it_was_made_and_under_its_key() {
        let session = new_session("u1", jiff::Timestamp::now(), SignIn::default());
        let first = RefreshToken::first(&session);
        assert_eq!(first.generation, 0);
        let next = first.successor();
        assert_eq!(
            (next.session_id.as_str(), next.generation),
            (session.session_id.as_str(), 1)
        );
        let text = next.to_text(&key(7));
        assert_eq!(text.len(), 36 + 1 + 1 + 1 + 43);
        assert_eq!(RefreshToken::from_text(&text, &key(7)), Some(next.clone()));
        // Another key, another generation, another session, or any other spelling: nothing.
        assert_eq!(RefreshToken::from_text(&text, &key(8)), None);
        let mac = text.rsplit('.').next().unwrap();
        let other = new_session("u1", jiff::Timestamp::now(), SignIn::default());
        let upper = session.session_id.to_uppercase();
        for forged in [
            format!("{}.2.{mac}", session.session_id),
            format!("{}.1.{mac}", other.session_id),
            format!("{}.01.{mac}", session.session_id),
            format!("{}.+1.{mac}", session.session_id),
            format!("{upper}.1.{mac}"),
            format!("{}.1.{mac}.", session.session_id),
            format!("{}.1.{mac}=", session.session_id),
            format!("{}.1", session.session_id),
            format!("{}.1.", session.session_id),
            text[..text.len() - 1].to_owned(),
            format!("{text}{}", "A".repeat(200)),
            String::new(),
            "not-a-token".to_owned(),
        ] {
            assert_eq!(RefreshToken::from_text(&forged, &key(7)), None, "{forged}");
        }
    }

    #[test]
    fn the_refresh_key_is_not_the_index_and_follows_the_secret() {
        use crate::crypto::blind_index::BlindIndex;
        let index = BlindIndex::from_secret(&[7; 32]);
        let token = RefreshToken {
            session_id: uuid::Uuid::new_v4().to_string(),
            generation: 0,
        };
        assert_eq!(
            token.to_text(&key(7)),
            token.to_text(index.refresh_token_key())
        );
        assert_ne!(token.to_text(&key(7)), token.to_text(&key(8)));
        // The derived key is not the secret's: a MAC under it is no index value.
        let plain = hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]);
        assert_ne!(token.to_text(&key(7)), token.to_text(&plain));
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

    #[test]
    fn an_ended_session_tells_of_its_end_once() {
        use crate::events::{ActorKind, Ending, Event, EventType, SessionImage};
        let mut session = new_session("u1", jiff::Timestamp::now(), SignIn::default());
        let image = |session: &SessionRecord| -> SessionImage {
            crate::storage::from_item(crate::storage::to_item(session).unwrap()).unwrap()
        };
        assert_eq!(Event::of_session_end(&image(&session)), None);
        session.revoked_at = Some("2026-12-07T10:00:00Z".into());
        session.ended = Some(SessionEnd {
            how: Ending::SignedOut,
            request_id: Some("req-2".into()),
            source_ip: Some("203.0.113.8".into()),
        });
        let out = Event::of_session_end(&image(&session)).expect("an ended session");
        assert_eq!(out.kind, EventType::UserSignedOut);
        assert_eq!(out.event_id, format!("{}.signed_out", session.session_id));
        assert_eq!(out.at, "2026-12-07T10:00:00Z");
        assert_eq!(
            (out.actor.kind, out.actor.id.as_deref()),
            (ActorKind::User, Some("u1"))
        );
        assert_eq!(out.request_id.as_deref(), Some("req-2"));
        let user = out.user.unwrap();
        assert_eq!(user.subject, crate::auth::users::user_pk("u1"));
        assert_eq!(user.source_ip.as_deref(), Some("203.0.113.8"));

        // A reused refresh token: whoever presented it is not known to be the user.
        session.ended.as_mut().unwrap().how = Ending::RefreshReused;
        let reused = Event::of_session_end(&image(&session)).unwrap();
        assert_eq!(reused.kind, EventType::UserRefreshReused);
        assert_eq!(
            reused.event_id,
            format!("{}.refresh_reused", session.session_id)
        );
        assert_eq!(
            (reused.actor.kind, reused.actor.id),
            (ActorKind::Anonymous, None)
        );
    }
}
