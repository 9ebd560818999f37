//! What accounts, sessions and API tokens look like to the rest of the server.
//! Times are Unix seconds (see `migrations/*/0002_auth.sql` for why).

use serde::Serialize;

use crate::directory::model::User;

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A user and their password hash, for checking a login.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LoginRecord {
    pub password_hash: Option<String>,
    #[sqlx(flatten)]
    pub user: User,
}

/// A session about to be stored: the hash of its id, never the id.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub id_hash: String,
    pub user_id: i64,
    pub created_at: i64,
    /// The absolute expiry: no activity extends a session past it.
    pub expires_at: i64,
    /// Where it was opened from, for its owner's list of sessions.
    pub device: Device,
}

/// What a login tells about the client: shown on the account page so people can
/// tell their sessions apart (never used to decide anything).
#[derive(Clone, Debug, Default)]
pub struct Device {
    /// The `User-Agent` header, cut to [`Device::MAX_AGENT_CHARS`].
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
}

impl Device {
    pub const MAX_AGENT_CHARS: usize = 512;

    pub fn new(user_agent: Option<&str>, client_ip: std::net::IpAddr) -> Self {
        Self {
            // Control characters (a NUL would fail PostgreSQL) are no part of a device.
            user_agent: user_agent.map(|agent| {
                agent
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(Self::MAX_AGENT_CHARS)
                    .collect()
            }),
            client_ip: Some(client_ip.to_string()),
        }
    }
}

/// A stored session and whose it is.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRecord {
    pub last_seen_at: i64,
    pub expires_at: i64,
    #[sqlx(flatten)]
    pub user: User,
}

/// An API token as listed (the token itself is shown once, at creation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// The token's first characters, to tell tokens apart.
    pub prefix: String,
    // Kept in Unix seconds, shown in the wire form of every timestamp.
    #[serde(serialize_with = "crate::timefmt::serialize_unix")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    // Always present, null when unset.
    #[serde(serialize_with = "crate::timefmt::serialize_unix_opt")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub expires_at: Option<i64>,
    #[serde(serialize_with = "crate::timefmt::serialize_unix_opt")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub last_used_at: Option<i64>,
    #[serde(serialize_with = "crate::timefmt::serialize_unix_opt")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub revoked_at: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct NewToken {
    pub user_id: i64,
    pub name: String,
    pub token_hash: String,
    pub prefix: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// A token presented by a client, with its owner.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TokenRecord {
    pub token_id: i64,
    pub token_expires_at: Option<i64>,
    pub token_revoked_at: Option<i64>,
    pub token_last_used_at: Option<i64>,
    #[sqlx(flatten)]
    pub user: User,
}
