//! Chat rooms as each person keeps them (issue 21): the list with read state,
//! opening (or creating) a room by name without regard to case, leaving it, direct
//! messages, and how far someone has read a room.
//!
//! **Read positions** are the notifications' (issue 20, [`crate::account`]): one
//! `read_positions` row per (user, room). Marking a room read also appends
//! `{"type": "read", "room": R, "through": N}`, written by the reader, to their own
//! notification room, so every tab and device following it hears it live (any
//! instance, any transport) and one that reconnects replays it. The bell already
//! treats `read` markers as "read state changed, ask again" and never counts or
//! lists them.
//!
//! **Mentions** are the notifications `notify_mentions` writes (`{"type":
//! "mention", room, message_id}`): a room's mention count is those of the newest
//! [`MENTIONS_SCANNED`] notifications that point after the room's read position.
//!
//! **Created rooms** are announced in [`ROOM_LIST_ROOM`], a log only the server
//! writes: a page draws `GET /api/rooms` (whose `position` is read first) and
//! follows that room from there, so a room created anywhere after it is heard, and
//! none is missed. The event is appended after the room's insert, not in its
//! transaction: an instance that dies between the two loses the live event (the
//! next list shows the room).

use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;

use super::Hub;
use super::message::{
    self, Author, NewMessage, ROOM_LIST_ROOM, direct_members, direct_room, notification_room,
};
use crate::error::ApiError;

/// Notifications read to count each room's unread mentions.
pub const MENTIONS_SCANNED: i64 = 200;

/// Room names remembered by their folded form (the most the cache holds before it
/// starts again; rooms are never renamed or deleted, so an entry never goes stale).
const NAMES_CACHED: usize = 10_000;

/// A room in a person's list.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RoomEntry {
    /// The room's name as first written (`dm:A:B` for a direct message).
    pub name: String,
    /// `room` or `direct`.
    #[schema(value_type = String, pattern = "^(room|direct)$")]
    pub kind: &'static str,
    /// A direct message's other person.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub peer: Option<Author>,
    /// The id of the room's newest message.
    pub last_id: i64,
    /// Members present now (on every instance, when they share a Redis).
    pub present: usize,
    /// Whether the room is in the caller's list (opened and not left).
    pub member: bool,
    /// The id of the last message the caller read (0: none).
    pub read_id: i64,
    /// Messages after `read_id` written by others (counted up to 200).
    pub unread: i64,
    /// Unread messages that mention the caller.
    pub mentions: i64,
}

/// `GET /api/rooms`: the caller's rooms (the body) and where the created-rooms log
/// and their notification room stood (headers).
#[derive(Clone, Debug)]
pub struct RoomList {
    pub rooms: Vec<RoomEntry>,
    /// Follow the `rooms` log from here to hear of rooms created after this list.
    pub position: i64,
    /// Follow your notification room (`user:{id}`) from here to hear read markers,
    /// mentions and new direct messages after this list.
    pub notifications_position: i64,
}

/// How far someone has read a room.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RoomRead {
    pub room: String,
    pub read_id: i64,
    pub last_id: i64,
    pub unread: i64,
    pub mentions: i64,
}

/// What opening a room by name did.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Opened {
    /// The room's name as first written.
    pub name: String,
    /// Whether this request created it.
    pub created: bool,
}

fn now_ms() -> i64 {
    crate::store::messages::now_ms()
}

impl Hub {
    /// The room `name` is written as (first written, without regard to case), or
    /// `name` itself for a room nobody created yet. Private rooms have one spelling.
    pub async fn canonical_room(&self, name: &str) -> Result<String, ApiError> {
        if name.contains(':') {
            return Ok(name.to_owned());
        }
        let key = name.to_ascii_lowercase();
        if let Some(known) = crate::sync::lock(&self.room_names).get(&key) {
            return Ok(known.clone());
        }
        let Some(found) = self.store.find_room(name).await? else {
            return Ok(name.to_owned());
        };
        let mut names = crate::sync::lock(&self.room_names);
        if names.len() >= NAMES_CACHED {
            names.clear();
        }
        names.insert(key, found.clone());
        Ok(found)
    }

    /// The caller's room list: every public room (those they opened are `member`),
    /// and their direct messages, with read state and unread mentions.
    pub async fn room_list(&self, user: &Author) -> Result<RoomList, ApiError> {
        // Positions first: an event after them is heard by a page following from
        // them, even if the list below already shows its effect.
        let position = self.position(ROOM_LIST_ROOM).await?.last_id;
        let notifications_position = self.position(&notification_room(user.id)).await?.last_id;
        let rows = self.store.rooms_for(user.id).await?;
        let mentions = self.unread_mentions(user.id).await?;
        let peers: Vec<i64> = rows
            .iter()
            .filter_map(|row| direct_members(&row.name))
            .map(|(a, b)| if a == user.id { b } else { a })
            .collect();
        let names: HashMap<i64, String> =
            self.store.user_names(&peers).await?.into_iter().collect();
        let rooms = rows
            .into_iter()
            .filter(|row| !message::is_read_only(&row.name))
            .map(|row| {
                let peer = direct_members(&row.name).map(|(a, b)| {
                    let id = if a == user.id { b } else { a };
                    Author {
                        id,
                        name: names
                            .get(&id)
                            .cloned()
                            .unwrap_or_else(|| "Deleted user".into()),
                    }
                });
                let mentioned = mentions
                    .iter()
                    .filter(|(room, id)| *room == row.name && *id > row.read_id)
                    .count() as i64;
                RoomEntry {
                    kind: if peer.is_some() { "direct" } else { "room" },
                    peer,
                    present: self.presence_count(&row.name),
                    last_id: row.last_id,
                    member: row.member,
                    read_id: row.read_id,
                    unread: row.unread,
                    mentions: mentioned,
                    name: row.name,
                }
            })
            .collect();
        Ok(RoomList {
            rooms,
            position,
            notifications_position,
        })
    }

    /// (room, message id) of each mention among `user_id`'s newest notifications.
    async fn unread_mentions(&self, user_id: i64) -> Result<Vec<(String, i64)>, ApiError> {
        let recent = self
            .store
            .latest_messages(&notification_room(user_id), None, MENTIONS_SCANNED)
            .await?;
        Ok(recent
            .into_iter()
            .filter_map(|m| {
                let event = m.event?;
                (event["type"] == "mention").then_some(())?;
                Some((
                    event["room"].as_str()?.to_owned(),
                    event["message_id"].as_i64()?,
                ))
            })
            .collect())
    }

    /// Opens public room `name` for `user`: found without regard to case, or
    /// created (and announced to every page, on every instance); either way it is
    /// in their list until they leave it.
    pub async fn open_room(&self, user: &Author, name: &str) -> Result<Opened, ApiError> {
        message::check_room(name)?;
        if message::is_read_only(name) {
            return Err(ApiError::forbidden(
                "This room is written by the server only",
            ));
        }
        let opened = self.store.create_room(name, &[user.id], now_ms()).await?;
        if opened.created {
            let appended = self
                .store
                .append_message(&NewMessage {
                    room: ROOM_LIST_ROOM.to_owned(),
                    author: user.clone(),
                    text: format!("{} created #{}", user.name, opened.name),
                    event: Some(json!({"type": "room_created", "room": opened.name})),
                    client_id: None,
                })
                .await?;
            self.publish(appended.message).await;
        }
        Ok(Opened {
            name: opened.name,
            created: opened.created,
        })
    }

    /// Opens the direct-message room of `user` and `other` (created on first use,
    /// in both lists); the other person hears of a new one in their notification
    /// room (`{"type": "direct_created", room}`), live on every instance.
    pub async fn open_direct(&self, user: &Author, other: i64) -> Result<Opened, ApiError> {
        // A 403, not a 422: the request is well formed (any id is), this one is not
        // allowed.
        if other == user.id {
            return Err(ApiError::forbidden(
                "A direct message is with someone other than you",
            ));
        }
        if other <= 0 || self.store.user_names(&[other]).await?.is_empty() {
            return Err(ApiError::not_found("User"));
        }
        let room = direct_room(user.id, other);
        let opened = self
            .store
            .create_room(&room, &[user.id, other], now_ms())
            .await?;
        if opened.created {
            for member in [user.id, other] {
                let event = json!({"type": "direct_created", "room": room, "with": user});
                self.notify(
                    member,
                    user,
                    format!("{} opened a direct message", user.name),
                    event,
                )
                .await?;
            }
        }
        Ok(Opened {
            name: opened.name,
            created: opened.created,
        })
    }

    /// Takes `room` out of `user`'s list; false when it was not in it.
    pub async fn leave_room(&self, user: &Author, room: &str) -> Result<bool, ApiError> {
        message::check_room_for(room, user.id)?;
        Ok(self.store.leave_room(user.id, room).await?)
    }

    /// How far `user` has read `room`.
    pub async fn room_read(&self, user: &Author, room: &str) -> Result<RoomRead, ApiError> {
        message::check_room_for(room, user.id)?;
        let last_id = self.position(room).await?.last_id;
        let read_id = self.store.read_position(user.id, room).await?;
        let unread = self.store.count_room_unread(user.id, room, read_id).await?;
        let mentions = self
            .unread_mentions(user.id)
            .await?
            .into_iter()
            .filter(|(r, id)| r == room && *id > read_id)
            .count() as i64;
        Ok(RoomRead {
            room: room.to_owned(),
            read_id,
            last_id,
            unread,
            mentions,
        })
    }

    /// Marks `room` read by `user` through `through` (all of it when `None`; never
    /// back, never past its newest message) and tells their other tabs and devices.
    pub async fn mark_room_read(
        &self,
        user: &Author,
        room: &str,
        through: Option<i64>,
    ) -> Result<RoomRead, ApiError> {
        let before = self.room_read(user, room).await?;
        let through = through.unwrap_or(before.last_id).min(before.last_id);
        if through <= before.read_id {
            return Ok(before);
        }
        self.store
            .mark_room_read(user.id, room, through, now_ms())
            .await?;
        self.notify(
            user.id,
            user,
            format!("Read {room} through #{through}"),
            json!({"type": "read", "room": room, "through": through}),
        )
        .await?;
        self.room_read(user, room).await
    }
}
