//! Which unique index refused a write, by the name the migrations give it, and what
//! that refusal means: one table for both backends.
//!
//! PostgreSQL names the index in its error (`users_email_key`; a primary key is
//! `<table>_pkey`). SQLite does not: its message lists the index's columns
//! (`UNIQUE constraint failed: users.email_key`), so the table also says which
//! columns each index has there, and a SQLite failure is first turned into the name.

use super::{StoreError, Unique};

/// What a refusal by one index means to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Meaning {
    /// The folded email is taken (a duplicate, even when two requests raced: the
    /// index decides, not a check before the insert).
    EmailTaken,
    Duplicate(Kind),
}

/// [`Unique`] without its `Other` case, so that the table can be a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    TokenHash,
    SessionId,
    MessageClientId,
    MessagePosition,
}

/// A unique index of the migrations (both sets name them alike).
struct UniqueIndex {
    /// As PostgreSQL reports it (and, but for primary keys, as SQLite's schema names it).
    name: &'static str,
    /// The columns SQLite's message lists for it.
    sqlite_columns: &'static str,
    meaning: Meaning,
}

const UNIQUE_INDEXES: &[UniqueIndex] = &[
    UniqueIndex {
        name: "users_email_key",
        sqlite_columns: "users.email_key",
        meaning: Meaning::EmailTaken,
    },
    UniqueIndex {
        name: "api_tokens_token_hash",
        sqlite_columns: "api_tokens.token_hash",
        meaning: Meaning::Duplicate(Kind::TokenHash),
    },
    UniqueIndex {
        name: "sessions_pkey",
        sqlite_columns: "sessions.id_hash",
        meaning: Meaning::Duplicate(Kind::SessionId),
    },
    UniqueIndex {
        name: "messages_client_id",
        sqlite_columns: "messages.room, messages.user_id, messages.client_id",
        meaning: Meaning::Duplicate(Kind::MessageClientId),
    },
    UniqueIndex {
        name: "messages_pkey",
        sqlite_columns: "messages.room, messages.id",
        meaning: Meaning::Duplicate(Kind::MessagePosition),
    },
];

/// The error for the unique index called `name` refusing a write. An index not in
/// the table is reported as [`Unique::Other`] under the name given.
pub fn unique_violation(name: &str) -> StoreError {
    let Some(index) = UNIQUE_INDEXES.iter().find(|i| i.name == name) else {
        return StoreError::Duplicate(Unique::Other(name.to_owned()));
    };
    match index.meaning {
        Meaning::EmailTaken => StoreError::EmailTaken,
        Meaning::Duplicate(kind) => StoreError::Duplicate(match kind {
            Kind::TokenHash => Unique::TokenHash,
            Kind::SessionId => Unique::SessionId,
            Kind::MessageClientId => Unique::MessageClientId,
            Kind::MessagePosition => Unique::MessagePosition,
        }),
    }
}

/// The error for SQLite's message about a `UNIQUE` or `PRIMARY KEY` failure
/// (`UNIQUE constraint failed: users.email_key`): its columns, named as the table
/// names them. Columns of no index in the table are reported as they were listed.
pub fn sqlite_unique_violation(message: &str) -> StoreError {
    let columns = message
        .strip_prefix("UNIQUE constraint failed: ")
        .unwrap_or(message);
    match UNIQUE_INDEXES.iter().find(|i| i.sqlite_columns == columns) {
        Some(index) => unique_violation(index.name),
        None => StoreError::Duplicate(Unique::Other(columns.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meaning(err: StoreError) -> String {
        format!("{err:?}")
    }

    #[test]
    fn each_index_is_mapped_by_its_name_and_by_its_sqlite_columns() {
        let expected = [
            ("users_email_key", "EmailTaken"),
            ("api_tokens_token_hash", "Duplicate(TokenHash)"),
            ("sessions_pkey", "Duplicate(SessionId)"),
            ("messages_client_id", "Duplicate(MessageClientId)"),
            ("messages_pkey", "Duplicate(MessagePosition)"),
        ];
        for (name, error) in expected {
            assert_eq!(meaning(unique_violation(name)), error, "{name}");
            let index = UNIQUE_INDEXES.iter().find(|i| i.name == name).unwrap();
            let message = format!("UNIQUE constraint failed: {}", index.sqlite_columns);
            assert_eq!(meaning(sqlite_unique_violation(&message)), error, "{name}");
        }
        assert_eq!(
            expected.len(),
            UNIQUE_INDEXES.len(),
            "every index is tested"
        );
    }

    /// Only the email's index means a taken email (every duplicate once did).
    #[test]
    fn an_unknown_index_is_reported_under_its_own_name() {
        assert!(matches!(
            unique_violation("rooms_pkey"),
            StoreError::Duplicate(Unique::Other(name)) if name == "rooms_pkey"
        ));
        assert!(matches!(
            sqlite_unique_violation("UNIQUE constraint failed: rooms.name"),
            StoreError::Duplicate(Unique::Other(columns)) if columns == "rooms.name"
        ));
    }

    /// The names are those the PostgreSQL migrations create (a renamed index would
    /// otherwise fall through to `Other` unnoticed); primary keys by their table.
    #[test]
    fn the_names_are_the_postgres_migrations_names() {
        let migrations: String = std::fs::read_dir("migrations/postgres")
            .unwrap()
            .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
            .collect();
        for index in UNIQUE_INDEXES {
            let declared = match index.name.strip_suffix("_pkey") {
                Some(table) => migrations.contains(&format!("CREATE TABLE {table} (")),
                None => migrations.contains(&format!("CREATE UNIQUE INDEX {} ON", index.name)),
            };
            assert!(declared, "{} is not in migrations/postgres", index.name);
        }
    }
}
