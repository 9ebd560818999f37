//! Who is in a room: per user, not per connection (a user with two tabs is present
//! once, and leaves when the last tab does). Counts are exact; member lists are cut
//! to a page, so a join never costs the other members more than one small event.
//!
//! With several instances (`--redis-url`) a user is present while they have a
//! connection in the room on this instance (`here`) or another instance reports them
//! (`elsewhere`, kept up to date by [`super::shared_presence`]). Counts, lists and
//! `user_joined` / `user_left` are therefore the cluster's: a user with a tab on each
//! of two instances is present once, and leaves when their last tab anywhere does.
//! With one instance `elsewhere` stays empty and everything is as it always was.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::message::Author;

#[derive(Default)]
pub(super) struct Members {
    by_user: HashMap<i64, Member>,
}

/// A present user: an entry exists only while `here > 0` or `elsewhere` is not empty.
struct Member {
    name: String,
    /// This instance's connections in the room.
    here: u32,
    /// The other instances where the user has a connection in the room (their ids).
    elsewhere: Vec<Arc<str>>,
}

impl Member {
    fn present(&self) -> bool {
        self.here > 0 || !self.elsewhere.is_empty()
    }
}

/// What a connection arriving or departing changed.
#[derive(Debug)]
pub(super) struct Moved {
    /// The user's presence on this instance changed (their first connection here, or
    /// their last one here gone): the other instances must hear of it.
    pub here: bool,
    /// The user's presence in the room changed: its members hear of it.
    pub change: Option<PresenceChange>,
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
    /// A connection of `user` entered.
    pub fn arrive(&mut self, room: &str, user: &Author) -> Moved {
        let member = self.by_user.entry(user.id).or_insert_with(|| Member {
            name: user.name.clone(),
            here: 0,
            elsewhere: Vec::new(),
        });
        let was_present = member.present();
        member.here += 1;
        let here = member.here == 1;
        Moved {
            here,
            change: (!was_present).then(|| self.change("user_joined", room, user)),
        }
    }

    /// A connection of `user` left.
    pub fn depart(&mut self, room: &str, user: &Author) -> Moved {
        let Some(member) = self.by_user.get_mut(&user.id) else {
            return Moved {
                here: false,
                change: None,
            };
        };
        member.here = member.here.saturating_sub(1);
        if member.here > 0 {
            return Moved {
                here: false,
                change: None,
            };
        }
        let change = if member.present() {
            None
        } else {
            self.by_user.remove(&user.id);
            Some(self.change("user_left", room, user))
        };
        Moved { here: true, change }
    }

    /// `instance` reports `user` present in the room; `Some` when the user was not
    /// present anywhere before.
    pub fn add_remote(
        &mut self,
        room: &str,
        user: &Author,
        instance: &Arc<str>,
    ) -> Option<PresenceChange> {
        let member = self.by_user.entry(user.id).or_insert_with(|| Member {
            name: user.name.clone(),
            here: 0,
            elsewhere: Vec::new(),
        });
        if member.elsewhere.contains(instance) {
            return None;
        }
        let was_present = member.present();
        member.elsewhere.push(instance.clone());
        (!was_present).then(|| self.change("user_joined", room, user))
    }

    /// `instance` no longer has `user_id` in the room; `Some` when that was the
    /// user's last connection anywhere.
    pub fn remove_remote(
        &mut self,
        room: &str,
        user_id: i64,
        instance: &str,
    ) -> Option<PresenceChange> {
        let member = self.by_user.get_mut(&user_id)?;
        let at = member.elsewhere.iter().position(|i| &**i == instance)?;
        member.elsewhere.swap_remove(at);
        if member.present() {
            return None;
        }
        let member = self.by_user.remove(&user_id)?;
        let user = Author {
            id: user_id,
            name: member.name,
        };
        Some(self.change("user_left", room, &user))
    }

    /// Forgets what every other instance reported; returns who left the room by it.
    pub fn forget_remote(&mut self, room: &str) -> Vec<PresenceChange> {
        let mut gone = Vec::new();
        for (id, member) in &mut self.by_user {
            member.elsewhere.clear();
            if member.here == 0 {
                gone.push(*id);
            }
        }
        gone.into_iter()
            .filter_map(|id| {
                let member = self.by_user.remove(&id)?;
                let user = Author {
                    id,
                    name: member.name,
                };
                Some(self.change("user_left", room, &user))
            })
            .collect()
    }

    /// The users `instance` reports present in the room.
    pub fn reported_by(&self, instance: &str) -> Vec<i64> {
        self.by_user
            .iter()
            .filter(|(_, m)| m.elsewhere.iter().any(|i| &**i == instance))
            .map(|(id, _)| *id)
            .collect()
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

    pub fn is_empty(&self) -> bool {
        self.by_user.is_empty()
    }

    pub fn snapshot(&self, room: &str, limit: usize) -> PresenceSnapshot {
        let mut users: Vec<Author> = self
            .by_user
            .iter()
            .map(|(id, member)| Author {
                id: *id,
                name: member.name.clone(),
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
        let first = members.arrive("r", &user(1));
        assert!(first.here);
        assert_eq!(first.change.unwrap().count, 1);
        let second = members.arrive("r", &user(1));
        assert!(!second.here && second.change.is_none());
        assert_eq!(members.arrive("r", &user(2)).change.unwrap().count, 2);
        let one_tab = members.depart("r", &user(1));
        assert!(!one_tab.here && one_tab.change.is_none());
        let left = members.depart("r", &user(1));
        assert!(left.here);
        let left = left.change.unwrap();
        assert_eq!((left.kind, left.count), ("user_left", 1));
        assert_eq!(members.snapshot("r", 10).users, vec![user(2)]);
    }

    #[test]
    fn a_user_on_several_instances_is_present_once_until_the_last_one_leaves() {
        let mut members = Members::default();
        let (b, c): (Arc<str>, Arc<str>) = ("b".into(), "c".into());
        // Present on B first: joined, counted across instances.
        let joined = members.add_remote("r", &user(1), &b).unwrap();
        assert_eq!((joined.kind, joined.count), ("user_joined", 1));
        assert!(
            members.add_remote("r", &user(1), &b).is_none(),
            "reported twice"
        );
        assert!(members.add_remote("r", &user(1), &c).is_none());
        // A tab here: this instance must tell the others, the room hears nothing.
        let here = members.arrive("r", &user(1));
        assert!(here.here && here.change.is_none());
        assert_eq!(members.count(), 1);
        assert_eq!(members.arrive("r", &user(2)).change.unwrap().count, 2);
        // The tab here goes: still on B and C.
        let gone_here = members.depart("r", &user(1));
        assert!(gone_here.here && gone_here.change.is_none());
        assert!(members.remove_remote("r", 1, "b").is_none());
        assert_eq!(members.reported_by("c"), vec![1]);
        assert!(
            members.remove_remote("r", 1, "b").is_none(),
            "B had no more"
        );
        let left = members.remove_remote("r", 1, "c").unwrap();
        assert_eq!(
            (left.kind, left.count, left.user.clone()),
            ("user_left", 1, user(1))
        );
        assert!(
            members.remove_remote("r", 2, "c").is_none(),
            "C never had user 2"
        );
        assert_eq!(members.snapshot("r", 10).users, vec![user(2)]);
        assert!(members.depart("r", &user(2)).change.is_some());
        assert!(members.is_empty());
    }

    #[test]
    fn forgetting_the_other_instances_keeps_this_ones_members() {
        let mut members = Members::default();
        let b: Arc<str> = "b".into();
        members.add_remote("r", &user(1), &b);
        members.add_remote("r", &user(2), &b);
        members.arrive("r", &user(2));
        members.add_remote("r", &user(3), &b);
        let mut left: Vec<i64> = members
            .forget_remote("r")
            .into_iter()
            .map(|c| c.user.id)
            .collect();
        left.sort();
        assert_eq!(left, vec![1, 3]);
        assert_eq!(members.snapshot("r", 10).users, vec![user(2)]);
        assert!(members.reported_by("b").is_empty());
    }
}
