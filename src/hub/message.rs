//! What the log holds: a message, its author, and the rules a room name and a text
//! must pass before anything is written.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;

/// Who wrote a message. Id 0 is the server itself (directory events written by the
/// CLI or at start-up have no account behind them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Author {
    pub id: i64,
    pub name: String,
}

impl Author {
    pub fn system() -> Self {
        Self {
            id: 0,
            name: "Switchboard".into(),
        }
    }

    pub fn of(user: &crate::directory::model::User) -> Self {
        Self {
            id: user.id,
            name: user.name.clone(),
        }
    }
}

/// One entry of a room's log, as every transport shows it:
/// `{room, id, user: {id, name}, text, ts, timestamp, client_id?, event?}`.
/// `timestamp` (Unix seconds) is what the seed's long-poll clients read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
// Named apart from the `{message}` confirmations in the OpenAPI document.
#[schema(as = ChatMessage)]
pub struct Message {
    pub room: String,
    /// Gapless within the room: 1, 2, 3...
    pub id: i64,
    pub user: Author,
    pub text: String,
    /// RFC 3339, milliseconds, UTC.
    pub ts: String,
    /// Unix seconds with milliseconds (*compat* with the seed's long polling).
    pub timestamp: f64,
    /// Absent rather than null when the sender gave none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub client_id: Option<String>,
    /// A structured event (`{"type": "user_created", "user": {...}}`, a mention...).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object, required = false)]
    pub event: Option<Value>,
}

impl Message {
    /// The message as its JSON text, made once and shared by every subscriber.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a message always serialises")
    }
}

/// A message about to be appended (its id and time are given by the store).
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub room: String,
    pub author: Author,
    pub text: String,
    pub event: Option<Value>,
    pub client_id: Option<String>,
}

/// How a send ended: a new message, or the one an earlier send with the same
/// `client_id` stored.
#[derive(Clone, Debug)]
pub struct Appended {
    pub message: Message,
    pub duplicate: bool,
}

/// Where a room's log stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Position {
    /// The newest message's id (0 for an empty or unknown room).
    pub last_id: i64,
    /// Ids up to here were deleted by retention.
    pub pruned_through: i64,
}

/// The room where directory changes are logged, so pages can follow them.
pub const DIRECTORY_ROOM: &str = "directory";
/// The room the FastAPI-style plain-text chat and Socket.IO's global chat use.
pub const GENERAL_ROOM: &str = "general";
pub const MAX_ROOM_CHARS: usize = 64;
pub const MAX_CLIENT_ID_CHARS: usize = 64;

/// The private room holding one user's notifications. Its name is not a valid
/// client room name, so nobody can join or write it directly.
pub fn notification_room(user_id: i64) -> String {
    format!("user:{user_id}")
}

/// The server's log of created rooms: one `{"type": "room_created"}` event per public
/// room, so every page's room list follows (on every instance) from a position.
pub const ROOM_LIST_ROOM: &str = "rooms";

/// Who is online now: every realtime connection counts its user present here,
/// whatever rooms it follows (see `Hub::online`), so the room's presence is the
/// directory's "online now" dot, across instances like any room's. Nobody writes
/// to it; following it (the directory page does) does not count a second time.
pub const ONLINE_ROOM: &str = "online";

/// The private room of a direct message between two people: `dm:A:B`, the smaller id
/// first, so both find the same room. Like a notification room, its name is not a
/// valid public room name: only the hub's rule below lets its two members in.
pub fn direct_room(a: i64, b: i64) -> String {
    format!("dm:{}:{}", a.min(b), a.max(b))
}

/// The two members of a direct-message room (`None`: not one, or not written as
/// [`direct_room`] writes it, so every room has one spelling).
pub fn direct_members(room: &str) -> Option<(i64, i64)> {
    let (a, b) = room.strip_prefix("dm:")?.split_once(':')?;
    let (a, b): (i64, i64) = (a.parse().ok()?, b.parse().ok()?);
    (a > 0 && a < b && direct_room(a, b) == room).then_some((a, b))
}

/// Checks that `user_id` may name `room`: a public room (see [`check_room`]), their
/// own notification room, or a direct-message room they are one of the two of.
/// `Ok(true)` for a public room (whose members hear of joins and leaves).
pub fn check_room_for(room: &str, user_id: i64) -> Result<bool, ApiError> {
    if room == notification_room(user_id) {
        return Ok(false);
    }
    if let Some((a, b)) = direct_members(room) {
        return if user_id == a || user_id == b {
            Ok(false)
        } else {
            Err(ApiError::forbidden(
                "This conversation is private to its two members",
            ))
        };
    }
    // `dm:` but not as `direct_room` writes it (`dm:2:1`, `dm:0:5`): nobody's
    // conversation, so nobody's to read, the same answer as another's.
    if room.starts_with("dm:") {
        return Err(ApiError::forbidden(
            "This conversation is private to its two members",
        ));
    }
    check_room(room)?;
    Ok(true)
}

/// Whether `user_id` may write to `room` (after [`check_room_for`]): public rooms
/// the server does not keep to itself, and their direct messages.
pub fn check_writable(room: &str, user_id: i64) -> Result<(), ApiError> {
    let public = check_room_for(room, user_id)?;
    if (public && !is_read_only(room)) || direct_members(room).is_some() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "This room is written by the server only",
        ))
    }
}

/// A room name clients may use: 1-64 of `A-Z a-z 0-9 _ - .`, starting with a letter
/// or digit.
pub fn check_room(room: &str) -> Result<(), ApiError> {
    let valid = !room.is_empty()
        && room.len() <= MAX_ROOM_CHARS
        && room
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && room
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_room",
            "A room name is 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit",
        ))
    }
}

/// Rooms written only by the server: clients may read them, never send to them.
pub fn is_read_only(room: &str) -> bool {
    room == DIRECTORY_ROOM || room == ROOM_LIST_ROOM || room == ONLINE_ROOM
}

/// Trims the text and checks it: not empty, at most `max_chars`, no control
/// characters other than newline and tab.
pub fn clean_text(text: &str, max_chars: usize) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::validation("text", "is required"));
    }
    if text.chars().count() > max_chars {
        return Err(ApiError::validation(
            "text",
            &format!("must be at most {max_chars} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ApiError::validation(
            "text",
            "must not contain control characters",
        ));
    }
    Ok(text.to_owned())
}

/// A client's idempotency key: 1-64 printable ASCII characters.
pub fn check_client_id(client_id: &str) -> Result<(), ApiError> {
    if !client_id.is_empty()
        && client_id.len() <= MAX_CLIENT_ID_CHARS
        && client_id.bytes().all(|b| b.is_ascii_graphic())
    {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_client_id",
            "client_id is 1-64 printable ASCII characters",
        ))
    }
}

/// Longest name a bracketed mention may hold (a user's name is at most 100).
const MAX_MENTION_CHARS: usize = 100;

/// The `@handles` a text mentions, lower-cased, at most `limit` distinct ones.
/// A handle is a user's name (when it is one word) or the part of their email
/// before the `@`; `@[Full Name]` names anyone by their whole name (what the chat's
/// `@` autocomplete inserts, since names have spaces).
pub fn mentions(text: &str, limit: usize) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for (at, _) in text.match_indices('@') {
        // `bob@example.com` is an address, not a mention.
        if text[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric())
        {
            continue;
        }
        let rest = &text[at + 1..];
        let handle = match rest.strip_prefix('[') {
            Some(bracketed) => match bracketed.split_once(']') {
                Some((name, _))
                    if name.chars().count() <= MAX_MENTION_CHARS && !name.contains('\n') =>
                {
                    name.trim().to_lowercase()
                }
                _ => continue,
            },
            None => {
                let handle: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
                    .collect();
                handle.trim_end_matches('.').to_lowercase()
            }
        };
        if !handle.is_empty() && !found.contains(&handle) {
            found.push(handle);
            if found.len() == limit {
                break;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_checked() {
        for good in ["general", "a", "room-1", "Team_2.x"] {
            assert!(check_room(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "user:1", "a b", "é", &"x".repeat(65)] {
            assert!(check_room(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert_eq!(clean_text("  hi \n", 10).unwrap(), "hi");
        assert!(clean_text("   ", 10).is_err());
        assert!(clean_text(&"é".repeat(11), 10).is_err());
        assert!(clean_text("a\u{0}b", 10).is_err());
        assert_eq!(clean_text("a\nb", 10).unwrap(), "a\nb");
    }

    #[test]
    fn mentions_skip_addresses_and_repeat() {
        assert_eq!(
            mentions("hi @Alice and @bob.smith, @alice again; mail x@y.z", 5),
            vec!["alice", "bob.smith"]
        );
        assert_eq!(mentions("@a @b @c", 2), vec!["a", "b"]);
    }

    #[test]
    fn bracketed_mentions_name_people_with_spaces() {
        assert_eq!(
            mentions("hi @[Dana Scully], and @[ Fox Mulder ] too", 5),
            vec!["dana scully", "fox mulder"]
        );
        // Unclosed or spanning lines: not a mention.
        assert!(mentions("@[Dana", 5).is_empty());
        assert!(mentions("@[Dana\nScully]", 5).is_empty());
    }

    #[test]
    fn direct_rooms_have_one_spelling_and_two_members() {
        assert_eq!(direct_room(7, 3), "dm:3:7");
        assert_eq!(direct_members("dm:3:7"), Some((3, 7)));
        for bad in [
            "dm:7:3", "dm:3:3", "dm:03:7", "dm:3", "dm:0:1", "dm:-1:2", "general",
        ] {
            assert_eq!(direct_members(bad), None, "{bad}");
        }
        assert!(!check_room_for("dm:3:7", 3).unwrap());
        assert!(!check_room_for("dm:3:7", 7).unwrap());
        assert!(check_room_for("dm:3:7", 4).is_err());
        assert!(check_writable("dm:3:7", 7).is_ok());
        assert!(check_writable("user:7", 7).is_err());
        assert!(check_writable("rooms", 7).is_err());
        assert!(check_writable("general", 7).is_ok());
    }
}
