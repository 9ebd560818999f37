//! A hub on an in-memory message log ([`FakeLog`]), for the unit tests of the hub
//! and of the transports' socket loops. The integration suite (`tests/api`) runs
//! the same paths on SQLite and PostgreSQL.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::message::{Appended, Author, Message, NewMessage, Position};
use super::{Connection, Hub, InProcessBroker};
use crate::directory::model::Settings;
use crate::store::{Backend, Lifecycle, MessageStore, RoomSummary, StoreResult};
use crate::sync::lock;

pub struct Fixture {
    pub hub: Arc<Hub>,
}

/// A hub whose replays read `page` messages at a time, with queues of `queue`.
pub async fn hub(page: i64, queue: usize) -> Fixture {
    let mut settings = crate::config::Config::defaults().realtime;
    settings.max_message_chars = 100;
    settings.send_per_second = 10_000;
    settings.connections_per_user = 100;
    settings.connections_per_ip = 100;
    settings.queue = queue;
    settings.rooms_per_connection = 3;
    let hub = Hub::start_paged(
        Arc::new(FakeLog::default()),
        Arc::new(InProcessBroker::default()),
        settings,
        page,
        CancellationToken::new(),
    );
    Fixture { hub }
}

pub fn user(id: i64) -> Author {
    Author {
        id,
        name: format!("u{id}"),
    }
}

/// A connection of user `id`, opened with an API token of the same number.
pub fn connect(hub: &Arc<Hub>, id: i64) -> Connection {
    let credential = crate::auth::Credential::Token { id };
    hub.connect(user(id), credential, "127.0.0.1".parse().unwrap())
        .unwrap()
}

/// The message log in memory, with the store's rules: gapless ids per room, a
/// repeated `client_id` returns the first copy, retention keeps the newest
/// `keep_per_room` (the age limit is not modelled).
#[derive(Default)]
pub struct FakeLog {
    rooms: Mutex<BTreeMap<String, FakeRoom>>,
}

#[derive(Default)]
struct FakeRoom {
    messages: Vec<Message>,
    position: Position,
}

/// Where a real store would wait on I/O: other tasks (the hub's pump) run.
async fn io() {
    tokio::task::yield_now().await;
}

#[async_trait]
impl Lifecycle for FakeLog {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn close(&self) {}
}

#[async_trait]
impl MessageStore for FakeLog {
    async fn append_message(&self, new: &NewMessage) -> StoreResult<Appended> {
        io().await;
        let mut rooms = lock(&self.rooms);
        let room = rooms.entry(new.room.clone()).or_default();
        if let Some(first) = room.messages.iter().find(|m| {
            new.client_id.is_some() && m.client_id == new.client_id && m.user.id == new.author.id
        }) {
            return Ok(Appended {
                message: first.clone(),
                duplicate: true,
            });
        }
        room.position.last_id += 1;
        let message = Message {
            room: new.room.clone(),
            id: room.position.last_id,
            user: new.author.clone(),
            text: new.text.clone(),
            ts: "2026-01-01T00:00:00.000Z".into(),
            timestamp: 1_767_225_600.0,
            client_id: new.client_id.clone(),
            event: new.event.clone(),
        };
        room.messages.push(message.clone());
        Ok(Appended {
            message,
            duplicate: false,
        })
    }

    async fn messages_after(
        &self,
        room: &str,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        io().await;
        let rooms = lock(&self.rooms);
        Ok(rooms.get(room).map_or_else(Vec::new, |r| {
            r.messages
                .iter()
                .filter(|m| m.id > after_id)
                .take(limit as usize)
                .cloned()
                .collect()
        }))
    }

    async fn latest_messages(
        &self,
        room: &str,
        before_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        io().await;
        let rooms = lock(&self.rooms);
        let mut newest: Vec<Message> = rooms.get(room).map_or_else(Vec::new, |r| {
            r.messages
                .iter()
                .rev()
                .filter(|m| before_id.is_none_or(|before| m.id < before))
                .take(limit as usize)
                .cloned()
                .collect()
        });
        newest.reverse();
        Ok(newest)
    }

    async fn room_position(&self, room: &str) -> StoreResult<Position> {
        io().await;
        let rooms = lock(&self.rooms);
        Ok(rooms.get(room).map(|r| r.position).unwrap_or_default())
    }

    async fn list_rooms(&self) -> StoreResult<Vec<RoomSummary>> {
        io().await;
        let rooms = lock(&self.rooms);
        Ok(rooms
            .iter()
            .filter(|(name, _)| !name.starts_with("user:"))
            .map(|(name, r)| RoomSummary {
                name: name.clone(),
                last_id: r.position.last_id,
            })
            .collect())
    }

    async fn prune_messages(&self, keep_per_room: i64, _older_than_ms: i64) -> StoreResult<u64> {
        io().await;
        let mut rooms = lock(&self.rooms);
        let mut deleted = 0;
        for room in rooms.values_mut() {
            let through = room.position.last_id - keep_per_room;
            room.position.pruned_through = room.position.pruned_through.max(through);
            let before = room.messages.len();
            room.messages
                .retain(|m| m.id > room.position.pruned_through);
            deleted += (before - room.messages.len()) as u64;
        }
        Ok(deleted)
    }

    async fn users_by_handle(&self, _handle: &str, _limit: i64) -> StoreResult<Vec<i64>> {
        io().await;
        Ok(Vec::new())
    }

    /// Nobody has read anything.
    async fn read_position(&self, _user_id: i64, _room: &str) -> StoreResult<i64> {
        io().await;
        Ok(0)
    }

    /// Everyone wants every notification.
    async fn get_settings(&self, _id: i64) -> StoreResult<Option<Settings>> {
        io().await;
        Ok(Some(Settings::new("system".to_owned(), true, true)))
    }
}

/// Rooms as people keep them are the integration suite's (`tests/api/chat_rooms.rs`):
/// the fake keeps no lists, no read positions and no folded names.
#[async_trait]
impl crate::store::rooms::RoomStore for FakeLog {
    async fn rooms_for(&self, _: i64) -> StoreResult<Vec<crate::store::rooms::RoomRow>> {
        Ok(Vec::new())
    }

    async fn find_room(&self, _: &str) -> StoreResult<Option<String>> {
        Ok(None)
    }

    async fn create_room(
        &self,
        name: &str,
        _: &[i64],
        _: i64,
    ) -> StoreResult<crate::store::rooms::OpenedRoom> {
        Ok(crate::store::rooms::OpenedRoom {
            name: name.to_owned(),
            created: false,
        })
    }

    async fn leave_room(&self, _: i64, _: &str) -> StoreResult<bool> {
        Ok(false)
    }

    async fn mark_room_read(&self, _: i64, _: &str, through: i64, _: i64) -> StoreResult<i64> {
        Ok(through)
    }

    async fn count_room_unread(&self, _: i64, _: &str, _: i64) -> StoreResult<i64> {
        Ok(0)
    }

    async fn user_names(&self, _: &[i64]) -> StoreResult<Vec<(i64, String)>> {
        Ok(Vec::new())
    }
}
