//! User accounts as stored: a profile item per user and an e-mail item that makes addresses unique and
//! finds the account at sign-in. The address and the name are sealed (`crate::crypto`); the e-mail
//! item is keyed by the address's blind index, so sign-in finds an account without the table ever
//! holding an address.

use serde::{Deserialize, Serialize};

use super::Role;
use crate::app::App;
use crate::crypto::blind_index::{self, BlindIndex};
use crate::crypto::{Location, Sealed};
use crate::error::ApiError;
use crate::storage::{Db, StorageError};

pub const MAX_NAME_CHARS: usize = 100;

/// `USER#<userId>` / `PROFILE`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub user_id: String,
    pub email: Sealed,
    pub name: Sealed,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Sealed>,
    /// Blind index of the phone number, for finding a customer by phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_index: Option<String>,
    pub role: Role,
    pub password_hash: String,
    pub created_at: String,
    /// When the password was last changed: sessions that began before it are ended at their next
    /// refresh (absent until the password is first changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_from: Option<String>,
}

/// `EMAIL#<email key>` / `EMAIL`: exists while the address has an account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub user_id: String,
}

/// What a client sees of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub user_id: String,
    pub email: String,
    pub name: String,
    /// Normalised (`01012345678`, or `+<country><number>` outside Korea).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub role: Role,
    pub created_at: String,
}

impl UserRecord {
    /// Where each sealed attribute of this user lives.
    pub fn location<'a>(table: &'a str, pk: &'a str, field: &'a str) -> Location<'a> {
        Location {
            table,
            pk,
            sk: PROFILE_SK,
            field,
        }
    }

    /// The profile, with the sealed fields opened.
    pub async fn profile(&self, app: &App) -> Result<Profile, ApiError> {
        let table = app.db.table();
        let email = app
            .crypto()
            .open_str(&Self::location(table, &self.pk, "email"), &self.email)
            .await?;
        let name = app
            .crypto()
            .open_str(&Self::location(table, &self.pk, "name"), &self.name)
            .await?;
        let phone = match &self.phone {
            Some(sealed) => Some(
                app.crypto()
                    .open_str(&Self::location(table, &self.pk, "phone"), sealed)
                    .await?,
            ),
            None => None,
        };
        Ok(Profile {
            user_id: self.user_id.clone(),
            email,
            name,
            phone,
            role: self.role,
            created_at: self.created_at.clone(),
        })
    }
}

impl UserRecord {
    /// Whether a session that began at `created_at` is still the account's: none that began before
    /// the password last changed is (nor one whose time cannot be read).
    pub fn keeps_session_of(&self, created_at: &str) -> bool {
        let Some(from) = &self.sessions_from else {
            return true;
        };
        match (
            created_at.parse::<jiff::Timestamp>(),
            from.parse::<jiff::Timestamp>(),
        ) {
            (Ok(created), Ok(from)) => created >= from,
            _ => false,
        }
    }
}

pub fn user_pk(user_id: &str) -> String {
    format!("USER#{user_id}")
}

pub const PROFILE_SK: &str = "PROFILE";
/// The sort key of an address's claim (`EMAIL#<email key>`).
pub const EMAIL_SK: &str = "EMAIL";

/// The key an address is looked up by: its blind index, never the address.
pub fn email_key(index: &BlindIndex, email: &str) -> String {
    format!("EMAIL#{}", index.email(email))
}

pub fn validate_email(email: &str) -> Result<String, ApiError> {
    let normalized = blind_index::normalize_email(email);
    if normalized.len() > 254 || !email_address::EmailAddress::is_valid(&normalized) {
        return Err(ApiError::validation("email", "not a valid e-mail address"));
    }
    Ok(normalized)
}

pub fn validate_phone(phone: &str) -> Result<String, ApiError> {
    blind_index::normalize_phone(phone)
        .ok_or_else(|| ApiError::validation("phone", "not a phone number"))
}

pub fn validate_name(name: &str) -> Result<String, ApiError> {
    crate::text::text("name", name, 1..=MAX_NAME_CHARS, crate::text::Lines::One)
}

/// The account whose e-mail item has `email_key` (see [`email_key`]).
pub async fn find_by_email_key(
    db: &Db,
    email_key: &str,
) -> Result<Option<UserRecord>, StorageError> {
    let Some(email) = db.get::<EmailRecord>(email_key, EMAIL_SK).await? else {
        return Ok(None);
    };
    find_by_id(db, &email.user_id).await
}

pub async fn find_by_id(db: &Db, user_id: &str) -> Result<Option<UserRecord>, StorageError> {
    db.get(user_pk(user_id), PROFILE_SK).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            validate_email("  Kim@Example.COM ").unwrap(),
            "kim@example.com"
        );
        for bad in [
            "",
            "kim",
            "kim@",
            "@example.com",
            "kim @example.com",
            "a@b@c",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(validate_email(&long).is_err());
    }

    #[test]
    fn sessions_that_began_before_the_password_changed_are_not_kept() {
        let mut user: UserRecord = serde_json::from_value(serde_json::json!({
            "PK": "USER#u1", "SK": "PROFILE", "userId": "u1", "email": "enc1:x", "name": "enc1:y",
            "role": "CUSTOMER", "passwordHash": "$argon2id$…", "createdAt": "2026-12-01T00:00:00Z"
        }))
        .unwrap();
        assert!(
            user.keeps_session_of("2026-12-01T00:00:00Z"),
            "never changed"
        );
        user.sessions_from = Some("2026-12-07T10:00:04.8Z".into());
        // Times are compared as instants, not as text: `04.81Z` is after `04.8Z`, though it sorts
        // before it.
        assert!(user.keeps_session_of("2026-12-07T10:00:04.81Z"));
        assert!(
            user.keeps_session_of("2026-12-07T10:00:04.8Z"),
            "the change's own"
        );
        assert!(!user.keeps_session_of("2026-12-07T10:00:04.79999Z"));
        assert!(!user.keeps_session_of("2026-12-06T23:00:00Z"));
        assert!(!user.keeps_session_of("yesterday"), "unreadable: not kept");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(validate_name("  김민수 ").unwrap(), "김민수");
        assert!(validate_name("   ").is_err());
        assert!(validate_name(&"가".repeat(101)).is_err());
        assert!(validate_name("a\u{0}b").is_err());
    }
}
