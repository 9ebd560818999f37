//! Who is in a room: per user, not per connection (a user with two tabs is present
//! once, and leaves when the last tab does). Counts are exact; member lists are cut
//! to a page, so a join never costs the other members more than one small event.

use std::collections::HashMap;

use serde::Serialize;

use super::message::Author;

#[derive(Default)]
pub(super) struct Members {
    /// user id -> (name, open connections in the room)
    by_user: HashMap<i64, (String, u32)>,
}

/// `user_joined` / `user_left`, sent to the room's other members.
#[derive(Clone, Debug, Serialize)]
pub struct PresenceChange {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub room: String,
    pub user: Author,
    /// Members present after the change.
    pub count: usize,
}

/// `presence`: the room's members when a connection joins.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PresenceSnapshot {
    pub room: String,
    pub count: usize,
    /// The first members by name (at most the page size asked for).
    pub users: Vec<Author>,
}

impl PresenceSnapshot {
    pub fn empty(room: &str) -> Self {
        Self {
            room: room.to_owned(),
            count: 0,
            users: Vec::new(),
        }
    }
}

impl Members {
    /// A connection of `user` entered; `Some` when the user was not present before.
    pub fn arrive(&mut self, room: &str, user: &Author) -> Option<PresenceChange> {
        let entry = self
            .by_user
            .entry(user.id)
            .or_insert_with(|| (user.name.clone(), 0));
        entry.1 += 1;
        (entry.1 == 1).then(|| self.change("user_joined", room, user))
    }

    /// A connection of `user` left; `Some` when it was the user's last one.
    pub fn depart(&mut self, room: &str, user: &Author) -> Option<PresenceChange> {
        let entry = self.by_user.get_mut(&user.id)?;
        entry.1 -= 1;
        if entry.1 > 0 {
            return None;
        }
        self.by_user.remove(&user.id);
        Some(self.change("user_left", room, user))
    }

    fn change(&self, kind: &'static str, room: &str, user: &Author) -> PresenceChange {
        PresenceChange {
            kind,
            room: room.to_owned(),
            user: user.clone(),
            count: self.by_user.len(),
        }
    }

    pub fn count(&self) -> usize {
        self.by_user.len()
    }

    pub fn snapshot(&self, room: &str, limit: usize) -> PresenceSnapshot {
        let mut users: Vec<Author> = self
            .by_user
            .iter()
            .map(|(id, (name, _))| Author {
                id: *id,
                name: name.clone(),
            })
            .collect();
        users.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        users.truncate(limit);
        PresenceSnapshot {
            room: room.to_owned(),
            count: self.by_user.len(),
            users,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64) -> Author {
        Author {
            id,
            name: format!("u{id}"),
        }
    }

    #[test]
    fn a_user_is_present_once_until_their_last_connection_leaves() {
        let mut members = Members::default();
        assert_eq!(members.arrive("r", &user(1)).unwrap().count, 1);
        assert!(members.arrive("r", &user(1)).is_none());
        assert_eq!(members.arrive("r", &user(2)).unwrap().count, 2);
        assert!(members.depart("r", &user(1)).is_none());
        let left = members.depart("r", &user(1)).unwrap();
        assert_eq!((left.kind, left.count), ("user_left", 1));
        assert_eq!(members.snapshot("r", 10).users, vec![user(2)]);
    }
}
