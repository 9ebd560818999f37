//! The events directory writes leave in the `directory` room of the hub's log, so
//! open pages can follow changes live (`applyDirectoryEvent` in web/static/directory.js
//! reads exactly this shape: `{"type": "user_created" | "user_updated" |
//! "user_deleted", "user": {...}}`).

use serde_json::json;

use super::model::User;
use crate::hub::message::{Author, DIRECTORY_ROOM, NewMessage};
use crate::store::EventOf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Deleted,
}

impl Change {
    fn kind(self) -> &'static str {
        match self {
            Change::Created => "user_created",
            Change::Updated => "user_updated",
            Change::Deleted => "user_deleted",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Change::Created => "added",
            Change::Updated => "updated",
            Change::Deleted => "removed",
        }
    }
}

/// What a user write appends to the log for `change`, made by `actor` (the store
/// calls it with the user as the write left it).
pub fn event_of(change: Change, actor: Author) -> EventOf {
    Box::new(move |user| change_event(change, user, &actor))
}

/// The log entry for `change` to `user`, made by `actor`.
pub fn change_event(change: Change, user: &User, actor: &Author) -> NewMessage {
    let user_json = match change {
        // A deleted entry's id is all a page needs to drop its row.
        Change::Deleted => json!({ "id": user.id, "name": user.name }),
        _ => serde_json::to_value(user).expect("a user always serialises"),
    };
    NewMessage {
        room: DIRECTORY_ROOM.to_owned(),
        author: actor.clone(),
        text: format!("{} {} {}", actor.name, change.verb(), user.name),
        event: Some(json!({ "type": change.kind(), "user": user_json })),
        client_id: None,
    }
}
