//! A connection lives no longer than the credential it was opened with.
//!
//! Every [`super::Connection`] is tied to the account and the credential (a session
//! or an API token) that authenticated it. When auth code ends a credential
//! (logout, a password change, a revoked token, a deleted account) or changes what
//! it allows (a role change), it calls [`super::Hub::end_credential`] with an
//! [`Ending`]: the hub ends the matching connections of this instance at once, and
//! the broker carries the same announcement to every other instance. Each transport
//! watches its connection's [`Tie::ended`] token and tells its client why, in its own
//! protocol (WebSocket close 4401, SSE `event: error`, Socket.IO `error {code}` then
//! a disconnect, a long poll's 401); a send that races the ending is refused.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::auth::Credential;
use crate::error::ApiError;

/// Which connections an ending takes with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revoked {
    /// Those opened with one session (its id's hash, as stored).
    Session { id_hash: String },
    /// Those opened with one API token.
    Token { id: i64 },
    /// Every connection of an account.
    User { user_id: i64 },
}

impl Revoked {
    /// Whether a connection of `user_id` opened with `credential` is one of these.
    pub fn covers(&self, user_id: i64, credential: &Credential) -> bool {
        match (self, credential) {
            (Self::Session { id_hash }, Credential::Session { id_hash: held }) => held == id_hash,
            (Self::Token { id }, Credential::Token { id: held }) => held == id,
            (Self::User { user_id: ended }, _) => *ended == user_id,
            _ => false,
        }
    }
}

/// Why connections end: the code the client is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The session was ended (logout, or a new login replaced it).
    SessionEnded,
    /// The account's password changed: its other sessions (and tokens) ended.
    PasswordChanged,
    TokenRevoked,
    AccountDeleted,
    /// The account's role changed: the credential still works, and a reconnect
    /// gets a connection with the new role's rights.
    RoleChanged,
}

impl EndReason {
    pub fn code(self) -> &'static str {
        match self {
            Self::SessionEnded => "session_ended",
            Self::PasswordChanged => "password_changed",
            Self::TokenRevoked => "token_revoked",
            Self::AccountDeleted => "account_deleted",
            Self::RoleChanged => "role_changed",
        }
    }

    /// Whether the credential is gone (a reconnect with it gets 401), as opposed to
    /// changed (a reconnect works).
    pub fn credential_gone(self) -> bool {
        self != Self::RoleChanged
    }

    /// What a request that raced the ending gets.
    pub fn error(self) -> ApiError {
        if self.credential_gone() {
            ApiError::Unauthenticated
        } else {
            ApiError::Forbidden {
                code: "role_changed",
                message: "Your role changed; reconnect".into(),
            }
        }
    }

    /// A sentence for the client.
    pub fn message(self) -> &'static str {
        match self {
            Self::SessionEnded => "Your session ended; log in again",
            Self::PasswordChanged => "Your password was changed; log in again",
            Self::TokenRevoked => "The API token of this connection was revoked",
            Self::AccountDeleted => "Your account was deleted",
            Self::RoleChanged => "Your role changed; reconnect",
        }
    }
}

/// One announcement: these connections end, for this reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ending {
    pub revoked: Revoked,
    pub reason: EndReason,
}

/// A connection's tie to its credential, shared by the connection and the hub's
/// registry of live connections.
#[derive(Debug)]
pub struct Tie {
    pub user_id: i64,
    pub credential: Credential,
    ended: CancellationToken,
    reason: OnceLock<EndReason>,
}

impl Tie {
    pub(super) fn new(user_id: i64, credential: Credential) -> Self {
        Self {
            user_id,
            credential,
            ended: CancellationToken::new(),
            reason: OnceLock::new(),
        }
    }

    /// Ends the connection when `ending` covers it; the first reason stays.
    pub(super) fn end_if_covered(&self, ending: &Ending) -> bool {
        if !ending.revoked.covers(self.user_id, &self.credential) {
            return false;
        }
        let _ = self.reason.set(ending.reason);
        self.ended.cancel();
        true
    }

    /// Cancelled when the connection's credential ended: close with [`Tie::reason`].
    pub fn ended(&self) -> &CancellationToken {
        &self.ended
    }

    /// Why the connection ended, once it has.
    pub fn reason(&self) -> Option<EndReason> {
        self.reason.get().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(hash: &str) -> Credential {
        Credential::Session {
            id_hash: hash.into(),
        }
    }

    #[test]
    fn each_revocation_covers_only_its_connections() {
        let s = Revoked::Session {
            id_hash: "a".into(),
        };
        assert!(s.covers(1, &session("a")));
        assert!(!s.covers(1, &session("b")));
        assert!(!s.covers(1, &Credential::Token { id: 1 }));

        let t = Revoked::Token { id: 7 };
        assert!(t.covers(1, &Credential::Token { id: 7 }));
        assert!(!t.covers(1, &Credential::Token { id: 8 }));
        assert!(!t.covers(7, &session("a")));

        let u = Revoked::User { user_id: 3 };
        assert!(u.covers(3, &session("a")) && u.covers(3, &Credential::Token { id: 1 }));
        assert!(!u.covers(4, &session("a")));
    }

    #[test]
    fn a_tie_ends_once_with_the_first_reason() {
        let tie = Tie::new(3, session("a"));
        let other = Ending {
            revoked: Revoked::User { user_id: 4 },
            reason: EndReason::AccountDeleted,
        };
        assert!(!tie.end_if_covered(&other));
        assert!(!tie.ended().is_cancelled() && tie.reason().is_none());
        let logout = Ending {
            revoked: Revoked::Session {
                id_hash: "a".into(),
            },
            reason: EndReason::SessionEnded,
        };
        assert!(tie.end_if_covered(&logout));
        let deleted = Ending {
            revoked: Revoked::User { user_id: 3 },
            reason: EndReason::AccountDeleted,
        };
        tie.end_if_covered(&deleted);
        assert!(tie.ended().is_cancelled());
        assert_eq!(tie.reason(), Some(EndReason::SessionEnded));
    }

    #[test]
    fn endings_cross_the_broker_as_json() {
        let ending = Ending {
            revoked: Revoked::Session {
                id_hash: "a".into(),
            },
            reason: EndReason::PasswordChanged,
        };
        let text = serde_json::to_string(&ending).unwrap();
        assert_eq!(serde_json::from_str::<Ending>(&text).unwrap(), ending);
        assert!(text.contains("\"password_changed\""));
    }
}
