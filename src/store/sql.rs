//! Every statement that reads the same on SQLite and PostgreSQL, written once, as a
//! constant. Each backend runs them through its own driver (SQLite on rusqlite:
//! reads on `sqlite::inline`, writes on `sqlite::writer`; PostgreSQL on sqlx) and
//! maps the rows itself. Statements that differ by dialect (substring search,
//! prefix scans with PostgreSQL's `COLLATE "C"`, the last-admin lock, bulk loads,
//! the prune's n-ary maximum) are in the backend's own files.
//!
//! Parameters are `$1, $2, ...`, numbered in the order they first appear: SQLite
//! reads `$1` as a parameter *named* `$1` and numbers parameters by first appearance,
//! so rusqlite's positional binding then agrees with PostgreSQL's numbering. A
//! test below holds every statement here to that rule.

/// The columns of [`crate::directory::model::User`], in the order
/// `sqlite::rows::user_at` reads them.
macro_rules! user_columns {
    () => {
        "id, name, email, role, created_at, updated_at"
    };
}
pub(crate) use user_columns;

/// [`user_columns!`] qualified, for joins with `users u`.
macro_rules! joined_user {
    () => {
        "u.id, u.name, u.email, u.role, u.created_at, u.updated_at"
    };
}

/// The columns of [`crate::auth::model::ApiToken`].
macro_rules! token_columns {
    () => {
        "id, user_id, name, prefix, created_at, expires_at, last_used_at, revoked_at"
    };
}

/// The columns of a `messages` row ([`super::messages::MessageRow`]).
macro_rules! message_columns {
    () => {
        "room, id, user_id, user_name, text, event, client_id, created_ms"
    };
}

// ---- users ------------------------------------------------------------------------

pub const USER_BY_ID: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");

/// A keyset page of the directory: after id `$1`, at most `$2`.
pub const USER_PAGE: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE id > $1 ORDER BY id LIMIT $2"
);

/// A value [`sorted_page`]'s statement binds, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bind {
    Int(i64),
    Text(String),
}

/// The statement of a [`super::SortedPage`] and its parameters, in the dialect whose
/// byte-order collation is `collate` (`""` on SQLite, whose default is already
/// binary; `COLLATE "C"` on PostgreSQL, as its indexes are built). Each order reads
/// one index range, forwards or backwards: `users_name_key (name_key, id)`,
/// `users_email_key` (SQLite) / `users_email_prefix` (PostgreSQL), the primary key, and
/// with a role their `users_role_*` twins (migration 0011). Rows after the cursor's
/// position are those beyond it in the order: a row-value comparison for names (they
/// tie; the id decides), the key alone for emails (unique), the id for dates.
pub fn sorted_page(page: &super::SortedPage, collate: &str) -> (String, Vec<Bind>) {
    use crate::directory::order::Sort;
    let mut binds = Vec::new();
    let mut next = |value: Bind| {
        binds.push(value);
        format!("${}", binds.len())
    };
    let mut conditions = Vec::new();
    if let Some(role) = page.role {
        conditions.push(format!("role = {}", next(Bind::Text(role.as_str().into()))));
    }
    let (beyond, direction) = if page.order.descending {
        ("<", " DESC")
    } else {
        (">", "")
    };
    if let Some(after) = &page.after {
        let key = || Bind::Text(after.key.clone().unwrap_or_default());
        conditions.push(match page.order.sort {
            Sort::Created => format!("id {beyond} {}", next(Bind::Int(after.id))),
            Sort::Name => {
                let key = next(key());
                let id = next(Bind::Int(after.id));
                format!("(name_key{collate}, id) {beyond} ({key}, {id})")
            }
            Sort::Email => format!("email_key{collate} {beyond} {}", next(key())),
        });
    }
    let order_by = match page.order.sort {
        Sort::Created => format!("id{direction}"),
        Sort::Name => format!("name_key{collate}{direction}, id{direction}"),
        Sort::Email => format!("email_key{collate}{direction}"),
    };
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let limit = next(Bind::Int(page.limit));
    let sql = format!(
        concat!(
            "SELECT ",
            user_columns!(),
            " FROM users{} ORDER BY {} LIMIT {}"
        ),
        filter, order_by, limit
    );
    (sql, binds)
}

/// Kept by triggers (migration 0004): O(1) however many users there are.
pub const USER_COUNT: &str = "SELECT n FROM user_count WHERE id = 1";

/// `$7` is both timestamps.
pub const INSERT_USER: &str = concat!(
    "INSERT INTO users (name, email, name_key, email_key, role, password_hash, created_at, updated_at)",
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING ",
    user_columns!()
);

/// Each `NULL` field keeps its value; `$6` is the new `updated_at`, `$7` the id.
pub const UPDATE_USER: &str = concat!(
    "UPDATE users SET name = coalesce($1, name), name_key = coalesce($2, name_key),",
    " email = coalesce($3, email), email_key = coalesce($4, email_key),",
    " role = coalesce($5, role), updated_at = $6 WHERE id = $7 RETURNING ",
    user_columns!()
);

pub const DELETE_USER: &str = concat!(
    "DELETE FROM users WHERE id = $1 RETURNING ",
    user_columns!()
);

/// The three statements of a password change (`set_password`, and `update_user`
/// with a password): the hash, then the sessions, then the live tokens but `$3`.
pub const SET_PASSWORD_HASH: &str = "UPDATE users SET password_hash = $1 WHERE id = $2";
pub const END_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1 RETURNING id_hash";
pub const REVOKE_LIVE_TOKENS: &str = "UPDATE api_tokens SET revoked_at = $1
     WHERE user_id = $2 AND revoked_at IS NULL AND id IS DISTINCT FROM $3
       AND (expires_at IS NULL OR expires_at > $1)
     RETURNING id";

/// Users a mention `@handle` names: folded name `$1`, or an email starting with the
/// escaped pattern `$2` ([`like_escape`]`(handle) + "@%"`).
pub const USERS_BY_HANDLE: &str = "SELECT id FROM users WHERE name_key = $1
     OR email_key LIKE $2 ESCAPE '\\' ORDER BY id LIMIT $3";

pub const GET_SETTINGS: &str =
    "SELECT theme, notify_mentions, notify_admin_changes FROM users WHERE id = $1";

/// COALESCE: a field not given keeps its value, in one statement.
pub const UPDATE_SETTINGS: &str = "UPDATE users SET theme = COALESCE($1, theme),
         notify_mentions = COALESCE($2, notify_mentions),
         notify_admin_changes = COALESCE($3, notify_admin_changes)
     WHERE id = $4
     RETURNING theme, notify_mentions, notify_admin_changes";

// ---- accounts, sessions, tokens, secrets ------------------------------------------

pub const FIND_LOGIN: &str = concat!(
    "SELECT u.password_hash, ",
    joined_user!(),
    " FROM users u WHERE u.email_key = $1"
);

pub const COUNT_ADMINS: &str = "SELECT count(*) FROM users WHERE role = 'admin'";

pub const LIST_ACCOUNTS: &str = concat!(
    "SELECT ",
    joined_user!(),
    " FROM users u WHERE u.password_hash IS NOT NULL ORDER BY u.id"
);

/// `$3` is both the creation and the last use.
pub const INSERT_SESSION: &str = "INSERT INTO sessions
     (id_hash, user_id, created_at, last_seen_at, expires_at, user_agent, client_ip)
     VALUES ($1, $2, $3, $3, $4, $5, $6)";

/// The session behind an id hash, with its user: [`crate::auth::model::SessionRecord`].
pub const SESSION_LOOKUP: &str = concat!(
    "SELECT s.last_seen_at, s.expires_at, ",
    joined_user!(),
    " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1"
);

pub const TOUCH_SESSION: &str = "UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2";
pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id_hash = $1";
pub const PRUNE_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at < $2";

pub const INSERT_TOKEN: &str = concat!(
    "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at, expires_at)",
    " VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
    token_columns!()
);

/// The token behind a token hash, with its user: [`crate::auth::model::TokenRecord`].
pub const TOKEN_LOOKUP: &str = concat!(
    "SELECT t.id AS token_id, t.expires_at AS token_expires_at,",
    " t.revoked_at AS token_revoked_at, t.last_used_at AS token_last_used_at, ",
    joined_user!(),
    " FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1"
);

pub const TOUCH_TOKEN: &str = "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2";

/// Tokens of user `$1`, or of everyone when it is `NULL`; newest first.
pub const LIST_TOKENS: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM api_tokens WHERE ($1 IS NULL OR user_id = $1) ORDER BY id DESC"
);

pub const GET_TOKEN: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM api_tokens WHERE id = $1"
);

pub const REVOKE_TOKEN: &str =
    "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";

/// A shared secret is created once ([`SECRET_INSERT`]), then read ([`SECRET_GET`]).
pub const SECRET_INSERT: &str = "INSERT INTO server_secrets (name, value, created_at)
     VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";
pub const SECRET_GET: &str = "SELECT value FROM server_secrets WHERE name = $1";

/// A session as its owner's list shows it ([`super::account::SessionInfo`]); the
/// `16` is [`super::account::SESSION_ID_CHARS`].
pub const LIST_SESSIONS: &str = "SELECT substr(id_hash, 1, 16) AS id, created_at, last_seen_at,
         expires_at, user_agent, client_ip
     FROM sessions WHERE user_id = $1 ORDER BY last_seen_at DESC, created_at DESC";

pub const FIND_SESSION_HASH: &str =
    "SELECT id_hash FROM sessions WHERE user_id = $1 AND substr(id_hash, 1, 16) = $2";

pub const DESCRIBE_SESSION: &str =
    "UPDATE sessions SET user_agent = $1, client_ip = $2 WHERE id_hash = $3";

// ---- the message log --------------------------------------------------------------

/// The append, four statements in one write transaction (see `store::messages`):
/// the room row if missing, then the next id, then the earlier message with the
/// same `client_id`, then the insert.
pub const ENSURE_ROOM: &str = "INSERT INTO rooms (name, last_id, pruned_through, created_ms)
     VALUES ($1, 0, 0, $2) ON CONFLICT (name) DO NOTHING";
pub const NEXT_MESSAGE_ID: &str =
    "UPDATE rooms SET last_id = last_id + 1 WHERE name = $1 RETURNING last_id";
pub const MESSAGE_BY_CLIENT_ID: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE room = $1 AND user_id = $2 AND client_id = $3"
);
pub const INSERT_MESSAGE: &str = concat!(
    "INSERT INTO messages (",
    message_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
    message_columns!()
);

/// A room's position: `last_id, pruned_through` (no row: a room nobody wrote to).
pub const ROOM_POSITION: &str = "SELECT last_id, pruned_through FROM rooms WHERE name = $1";

pub const MESSAGES_AFTER: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE room = $1 AND id > $2 ORDER BY id LIMIT $3"
);

/// Newest first (the caller turns the page around).
pub const LATEST_MESSAGES: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE room = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
);

/// Public rooms: notification rooms are `user:N`, which no public room name can be.
pub const LIST_ROOMS: &str =
    "SELECT name, last_id FROM rooms WHERE name NOT LIKE 'user:%' ORDER BY name";

/// The prune's second step, once each room's `pruned_through` is set.
pub const PRUNE_MESSAGES: &str = "DELETE FROM messages
     WHERE id <= (SELECT r.pruned_through FROM rooms r WHERE r.name = messages.room)";

/// Messages `$1` sent to public rooms (not notifications, not directory changes).
pub const COUNT_POSTS: &str = "SELECT count(*) FROM messages
     WHERE user_id = $1 AND room <> 'directory' AND room NOT LIKE 'user:%'";

/// Moves a read position forward only.
pub const MARK_READ: &str = "INSERT INTO read_positions (user_id, room, last_read_id, updated_ms)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (user_id, room) DO UPDATE
     SET last_read_id = excluded.last_read_id, updated_ms = excluded.updated_ms
     WHERE excluded.last_read_id > read_positions.last_read_id";

pub const READ_POSITION: &str =
    "SELECT last_read_id FROM read_positions WHERE user_id = $1 AND room = $2";

/// Messages in room `$1` after `$2` that someone other than `$3` wrote.
pub const COUNT_UNREAD: &str = "SELECT count(*) FROM messages
     WHERE room = $1 AND id > $2 AND (user_id IS NULL OR user_id <> $3)";

/// `al_x` -> `al\_x`: `text` matched literally by `LIKE ... ESCAPE '\'` (both
/// dialects), for the caller to add its wildcards around.
pub fn like_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[&str] = &[
        USER_BY_ID,
        USER_PAGE,
        USER_COUNT,
        INSERT_USER,
        UPDATE_USER,
        DELETE_USER,
        SET_PASSWORD_HASH,
        END_SESSIONS,
        REVOKE_LIVE_TOKENS,
        USERS_BY_HANDLE,
        GET_SETTINGS,
        UPDATE_SETTINGS,
        FIND_LOGIN,
        COUNT_ADMINS,
        LIST_ACCOUNTS,
        INSERT_SESSION,
        SESSION_LOOKUP,
        TOUCH_SESSION,
        DELETE_SESSION,
        PRUNE_SESSIONS,
        INSERT_TOKEN,
        TOKEN_LOOKUP,
        TOUCH_TOKEN,
        LIST_TOKENS,
        GET_TOKEN,
        REVOKE_TOKEN,
        SECRET_INSERT,
        SECRET_GET,
        LIST_SESSIONS,
        FIND_SESSION_HASH,
        DESCRIBE_SESSION,
        ENSURE_ROOM,
        NEXT_MESSAGE_ID,
        MESSAGE_BY_CLIENT_ID,
        INSERT_MESSAGE,
        ROOM_POSITION,
        MESSAGES_AFTER,
        LATEST_MESSAGES,
        LIST_ROOMS,
        PRUNE_MESSAGES,
        COUNT_POSTS,
        MARK_READ,
        READ_POSITION,
        COUNT_UNREAD,
    ];

    /// The `$n` of `sql`, in order of first appearance.
    fn first_appearances(sql: &str) -> Vec<u32> {
        let mut seen = Vec::new();
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            rest = &rest[at + 1..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse()
                && !seen.contains(&n)
            {
                seen.push(n);
            }
        }
        seen
    }

    #[test]
    fn parameters_are_numbered_in_the_order_they_first_appear() {
        for sql in ALL {
            let seen = first_appearances(sql);
            let expected: Vec<u32> = (1..=seen.len() as u32).collect();
            assert_eq!(seen, expected, "{sql}");
        }
        // The rule catches what it is for.
        assert_eq!(first_appearances("SET a = $2 WHERE b = $1"), [2, 1]);
    }

    /// Each statement prepares on the migrated SQLite schema (PostgreSQL prepares
    /// them in tests/api, which run every store method on both).
    #[tokio::test]
    async fn every_statement_prepares_on_sqlite() {
        use crate::store::Lifecycle;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sql.db");
        let store = crate::store::sqlite::SqliteStore::connect(path.to_str().unwrap(), 1)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store.close().await;
        let conn = rusqlite::Connection::open(&path).unwrap();
        for sql in ALL {
            if let Err(err) = conn.prepare(sql) {
                panic!("{sql}: {err}");
            }
        }
    }

    /// Every order of the directory list, with and without a role and a cursor.
    pub(crate) fn sorted_pages() -> Vec<super::super::SortedPage> {
        use crate::directory::model::Role;
        use crate::directory::order::{ListOrder, Position, Sort};
        let mut pages = Vec::new();
        for sort in [Sort::Created, Sort::Name, Sort::Email] {
            for descending in [false, true] {
                for role in [None, Some(Role::Admin)] {
                    for after in [
                        None,
                        Some(Position {
                            id: 5,
                            key: Some("m".into()),
                        }),
                    ] {
                        pages.push(super::super::SortedPage {
                            order: ListOrder { sort, descending },
                            role,
                            after,
                            limit: 51,
                        });
                    }
                }
            }
        }
        pages
    }

    /// On SQLite every order of the list reads an index range (or the primary key)
    /// and never sorts: no table scan, no temporary B-tree, whatever the size.
    #[tokio::test]
    async fn sorted_pages_read_an_index_on_sqlite() {
        use crate::store::Lifecycle;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sorted.db");
        let store = crate::store::sqlite::SqliteStore::connect(path.to_str().unwrap(), 1)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store.close().await;
        let conn = rusqlite::Connection::open(&path).unwrap();
        for page in sorted_pages() {
            let (sql, binds) = sorted_page(&page, "");
            let values = binds.into_iter().map(|bind| match bind {
                Bind::Int(n) => rusqlite::types::Value::Integer(n),
                Bind::Text(text) => rusqlite::types::Value::Text(text),
            });
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(rusqlite::params_from_iter(values), |row| row.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("\n");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}:\n{plan}");
            // A first page by date with everyone walks the table itself, in rowid
            // (id) order.
            let rowid_walk =
                page.order.sort == crate::directory::order::Sort::Created && plan == "SCAN users";
            assert!(
                plan.contains("INDEX") || plan.contains("INTEGER PRIMARY KEY") || rowid_walk,
                "{sql}:\n{plan}"
            );
            // Role pages read the role's own index, not the whole list filtered.
            if page.role.is_some() {
                assert!(plan.contains("users_role_"), "{sql}:\n{plan}");
            }
        }
    }

    #[test]
    fn like_escape_makes_wildcards_literal() {
        assert_eq!(like_escape("al_x%y\\z"), "al\\_x\\%y\\\\z");
        assert_eq!(like_escape("plain"), "plain");
    }
}
