//! The store: the only code that speaks SQL. One set of traits, one per area of the
//! domain, implemented twice: [`sqlite`] (the embedded default) and [`postgres`] (for
//! running several instances). Handlers hold an `Arc<dyn Store>` and never learn which
//! one they have; the same test suite runs against both.
//!
//! Two implementations rather than one generic one: the dialects differ exactly where
//! it matters (full-text search, write locking, bulk loading), and the drivers too
//! (SQLite on rusqlite, for its single writer thread and its inline readers;
//! PostgreSQL on sqlx). What the dialects agree on is written once, in [`sql`].

pub mod account;
pub mod constraints;
pub(crate) mod messages;
pub mod postgres;
pub mod rooms;
pub mod sql;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::auth::model::{ApiToken, LoginRecord, NewSession, NewToken, SessionRecord, TokenRecord};
use crate::directory::model::{NewUser, Settings, User, UserChanges};
use crate::hub::message::{Appended, Message, NewMessage, Position};

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The unique index on the folded email refused the write: a duplicate, even when
    /// two requests raced (the index decides, not a check before the insert). Which
    /// index means what is [`constraints`]' table.
    #[error("email already taken")]
    EmailTaken,
    /// Another unique index refused the write (see [`constraints`]).
    #[error("duplicate {0:?}")]
    Duplicate(Unique),
    /// PostgreSQL cannot store a NUL character in text (SQLite can): input that
    /// reached the store with one is the client's mistake, not a server error.
    #[error("text contains a NUL character")]
    NulInText,
    /// The write would leave no admin (demoting or deleting the last one). Decided
    /// inside the write's transaction, so two admins demoting each other at the same
    /// moment cannot both succeed.
    #[error("this is the only admin")]
    LastAdmin,
    /// The database cannot be reached (or its pool is exhausted/closed): a 503.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err.into()),
            // PostgreSQL names the index; SQLite lists its columns in the message.
            sqlx::Error::Database(db) if db.is_unique_violation() => match db.constraint() {
                Some(name) => constraints::unique_violation(name),
                None => constraints::sqlite_unique_violation(db.message()),
            },
            // 22021 character_not_in_repertoire: "invalid byte sequence ... 0x00".
            sqlx::Error::Database(db) if db.code().as_deref() == Some("22021") => {
                StoreError::NulInText
            }
            _ => StoreError::Other(err.into()),
        }
    }
}

/// A unique index other than the email's, so each duplicate gets its own answer
/// (they were all once reported as a taken email): see [`constraints`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unique {
    /// Two API tokens with the same hash (a random 256-bit token: a bug, or a replay).
    TokenHash,
    /// Two sessions with the same id.
    SessionId,
    /// The same author's `client_id` in a room twice: the idempotency key.
    MessageClientId,
    /// Two messages took the same position in a room's sequence.
    MessagePosition,
    /// An index not named here, as the database named it.
    Other(String),
}

/// Which database a store talks to (for logs, `/readyz` and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One page of the user list: keyset pagination on `id`, optionally filtered.
#[derive(Clone, Debug, Default)]
pub struct UserPage {
    /// Folded search text (see [`crate::directory::model::match_key`]); matched as a
    /// substring of the name key or the email key.
    pub search: Option<String>,
    /// Only users with an id greater than this (the cursor).
    pub after_id: i64,
    pub limit: i64,
}

/// One page of the directory list without a search: in `order`, of one `role` or
/// everyone, after the position `after` (the first page: `None`). Keyset pages
/// through an index for every order (`sql::sorted_page`).
#[derive(Clone, Debug, Default)]
pub struct SortedPage {
    pub order: crate::directory::order::ListOrder,
    pub role: Option<crate::directory::model::Role>,
    pub after: Option<crate::directory::order::Position>,
    pub limit: i64,
}

/// What a password change ended: every session of the account and its live API
/// tokens (all but the one that made the change, if a token did). The auth code logs
/// it, answers with the counts, and tells the realtime hub which connections were
/// opened with credentials that no longer exist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndedCredentials {
    pub user_id: i64,
    /// The `id_hash` of each session deleted.
    pub sessions: Vec<String>,
    /// The id of each token revoked.
    pub tokens: Vec<i64>,
}

/// A new password hash for a user, with the token that may live on (the one that
/// made the change, whose caller just proved the current password).
#[derive(Clone, Debug)]
pub struct NewPassword {
    /// An argon2 PHC string.
    pub hash: String,
    pub keep_token: Option<i64>,
}

/// What [`UserStore::update_user`] did.
#[derive(Clone, Debug)]
pub struct UserUpdate {
    pub user: User,
    /// The directory event, when a field others see changed (not for a password).
    pub event: Option<Message>,
    /// When a password was set: the credentials that ended with the old one.
    pub ended: Option<EndedCredentials>,
}

/// The log entry a user write appends, made from the user as the write left it (its
/// new id, its new fields). The caller's, because what a directory event says is
/// the directory's business (`crate::directory::events`), not the store's.
pub type EventOf = Box<dyn Fn(&User) -> NewMessage + Send + Sync>;

/// Everything the server persists, as one object.
pub trait Store:
    UserStore + AuthStore + MessageStore + account::AccountStore + Send + Sync + 'static
{
}
impl<T: UserStore + AuthStore + MessageStore + account::AccountStore + Send + Sync + 'static> Store
    for T
{
}

/// Housekeeping common to both backends.
#[async_trait]
pub trait Lifecycle {
    fn backend(&self) -> Backend;
    /// Applies the embedded migrations (idempotent).
    async fn migrate(&self) -> StoreResult<()>;
    /// A round trip to the database, for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
    /// Closes the pools (waits for checked-out connections to come back).
    async fn close(&self);
}

/// The user directory.
#[async_trait]
pub trait UserStore: Lifecycle {
    async fn list_users(&self, page: &UserPage) -> StoreResult<Vec<User>>;
    /// A page of the list without a search, in any order (see [`SortedPage`]).
    async fn list_sorted(&self, page: &SortedPage) -> StoreResult<Vec<User>>;
    async fn count_users(&self) -> StoreResult<i64>;
    async fn get_user(&self, id: i64) -> StoreResult<Option<User>>;
    // The three writes below also append their event to the `directory` room, in
    // the same transaction (DESIGN.md, "the position contract"), and return it for
    // the hub to announce once committed. The caller says what the event is
    // ([`EventOf`]); the store only appends it.
    async fn insert_user(&self, user: &NewUser, event: EventOf) -> StoreResult<(User, Message)>;
    /// Applies `changes` and, when given, a new password (which ends the user's
    /// credentials as [`AuthStore::set_password`] does), all in one transaction.
    /// `None` when no user has this id; [`StoreError::LastAdmin`] when it would demote
    /// the last admin.
    async fn update_user(
        &self,
        id: i64,
        changes: &UserChanges,
        password: Option<&NewPassword>,
        event: EventOf,
    ) -> StoreResult<Option<UserUpdate>>;
    /// `None` when no user had this id; [`StoreError::LastAdmin`] for the last admin.
    async fn delete_user(&self, id: i64, event: EventOf) -> StoreResult<Option<Message>>;
    /// Names whose folded form starts with `prefix_key`, in name order.
    async fn autocomplete_names(&self, prefix_key: &str, limit: i64) -> StoreResult<Vec<String>>;
    /// Up to `limit` users whose name key starts with `prefix_key`, in key order (so
    /// an exact name comes first): a range of the name index. One of the candidate
    /// queries `/api/search` merges ([`crate::directory::search`]).
    async fn users_by_name_prefix(&self, prefix_key: &str, limit: i64) -> StoreResult<Vec<User>>;
    /// Up to `limit` users whose email key starts with `prefix_key`, in key order: a
    /// range of an email index.
    async fn users_by_email_prefix(&self, prefix_key: &str, limit: i64) -> StoreResult<Vec<User>>;
    /// Inserts many users in one transaction, skipping emails that exist; returns how
    /// many were added. For `switchboard seed`, so it may trade per-row work for speed.
    async fn insert_users_bulk(&self, users: &[NewUser]) -> StoreResult<u64>;
}

/// Accounts, sessions, API tokens and server secrets. Session ids and tokens arrive
/// here already hashed: the store never sees a usable credential.
#[async_trait]
pub trait AuthStore: Lifecycle {
    /// The user with this folded email and their password hash.
    async fn find_login(&self, email_key: &str) -> StoreResult<Option<LoginRecord>>;
    /// Sets a password hash, deletes every session of the user and revokes their
    /// live API tokens (but `keep_token`), in one transaction; `None` when no user has
    /// this id.
    async fn set_password(
        &self,
        user_id: i64,
        password: &NewPassword,
    ) -> StoreResult<Option<EndedCredentials>>;
    async fn count_admins(&self) -> StoreResult<i64>;
    /// Users who can log in (have a password), by id.
    async fn list_accounts(&self) -> StoreResult<Vec<User>>;

    async fn insert_session(&self, session: &NewSession) -> StoreResult<()>;
    async fn find_session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>>;
    async fn touch_session(&self, id_hash: &str, now: i64) -> StoreResult<()>;
    async fn delete_session(&self, id_hash: &str) -> StoreResult<()>;
    /// Deletes sessions that expired absolutely, or have been idle since before
    /// `idle_cutoff`; returns how many.
    async fn prune_sessions(&self, now: i64, idle_cutoff: i64) -> StoreResult<u64>;

    async fn insert_token(&self, token: &NewToken) -> StoreResult<ApiToken>;
    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>>;
    async fn touch_token(&self, token_id: i64, now: i64) -> StoreResult<()>;
    /// Tokens of one user, or of everyone when `user_id` is `None`; newest first.
    async fn list_tokens(&self, user_id: Option<i64>) -> StoreResult<Vec<ApiToken>>;
    async fn get_token(&self, token_id: i64) -> StoreResult<Option<ApiToken>>;
    /// Marks a token revoked; `false` when there is no such unrevoked token.
    async fn revoke_token(&self, token_id: i64, now: i64) -> StoreResult<bool>;

    /// The secret called `name`, created from `candidate` if it does not exist yet, so
    /// every instance sharing the database uses the same one.
    async fn shared_secret(&self, name: &str, candidate: &str) -> StoreResult<String>;
}

/// A room as `GET /api/rooms` lists it.
#[derive(Clone, Debug, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RoomSummary {
    pub name: String,
    pub last_id: i64,
}

/// The realtime hub's persisted message log: one gapless sequence per room.
#[async_trait]
pub trait MessageStore: Lifecycle + rooms::RoomStore + Send + Sync {
    /// Appends a message with the room's next id, or returns the earlier message
    /// when the author already sent this `client_id` to this room.
    async fn append_message(&self, new: &NewMessage) -> StoreResult<Appended>;
    /// Up to `limit` messages with an id above `after_id`, oldest first.
    async fn messages_after(
        &self,
        room: &str,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<Message>>;
    /// The newest `limit` messages (below `before_id` when given), oldest first.
    async fn latest_messages(
        &self,
        room: &str,
        before_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<Message>>;
    /// Where the room's log stands (zeros for a room nobody wrote to yet).
    async fn room_position(&self, room: &str) -> StoreResult<Position>;
    /// Public rooms (not the per-user notification rooms), by name.
    async fn list_rooms(&self) -> StoreResult<Vec<RoomSummary>>;
    /// Retention: keeps at most `keep_per_room` messages per room and none older
    /// than `older_than_ms` (Unix ms); returns how many were deleted.
    async fn prune_messages(&self, keep_per_room: i64, older_than_ms: i64) -> StoreResult<u64>;
    /// Users a mention `@handle` names: by whole (folded) name or by the part of
    /// their email before the `@`.
    async fn users_by_handle(&self, handle: &str, limit: i64) -> StoreResult<Vec<i64>>;
    /// A user's settings (`None`: no such user). Here rather than with the users
    /// because the hub reads them: a notification honours its recipient's choices.
    async fn get_settings(&self, id: i64) -> StoreResult<Option<Settings>>;
    /// Where `user_id` has read `room` up to (0: nothing read; written by
    /// [`account::AccountStore::mark_read`]). A position just marked is seen: a
    /// write returns once committed.
    async fn read_position(&self, user_id: i64, room: &str) -> StoreResult<i64>;
}

/// Opens the store a URL names: `sqlite://path` (or a bare path) or `postgres://...`.
/// Whether a `--database-url` names PostgreSQL (anything else is a SQLite file).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Arc<dyn Store>> {
    connect_with(url, max_connections, postgres::DEFAULT_ACQUIRE_TIMEOUT).await
}

/// [`connect`], with how long a PostgreSQL request waits for a pooled connection
/// (`--db-acquire-timeout-ms`; SQLite's pool is local and ignores it).
pub async fn connect_with(
    url: &str,
    max_connections: u32,
    acquire_timeout: std::time::Duration,
) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if is_postgres_url(url) {
        Arc::new(postgres::PgStore::connect(url, max_connections, acquire_timeout).await?)
    } else {
        Arc::new(sqlite::SqliteStore::connect(url, max_connections).await?)
    };
    Ok(store)
}

/// `'abc'` -> `abc\u{10FFFF}`: the exclusive upper bound of a prefix range scan. Every
/// string starting with the prefix sorts below it in binary (code point) order, so
/// `key >= prefix AND key < upper` is a prefix match an ordinary B-tree can serve.
pub(crate) fn prefix_upper_bound(prefix: &str) -> String {
    let mut upper = String::with_capacity(prefix.len() + 4);
    upper.push_str(prefix);
    upper.push(char::MAX);
    upper
}
