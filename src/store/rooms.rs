//! Chat rooms as people keep them (issue 21): which rooms a person has in their list
//! (`room_members`), how far they have read each one (0008's `read_positions`, the
//! same rows as the notifications' read position), and room names that are unique
//! without regard to case (0009's `rooms_name_key`). The trait is here with the SQL
//! both dialects share; each backend implements it in its own `rooms.rs`.

use async_trait::async_trait;

use super::StoreResult;

/// Unread messages are counted within this many ids after the read position: the
/// count is a range scan of the primary key, however far behind the reader is, and
/// the list shows "99+" long before it.
pub const UNREAD_WINDOW: i64 = 200;
// (Written out as 200 in [`ROOMS_FOR`].)

/// A room in one person's list, with their read state.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RoomRow {
    pub name: String,
    pub last_id: i64,
    /// The id of the last message the person read (0: none).
    pub read_id: i64,
    /// Messages after `read_id` written by someone else (at most [`UNREAD_WINDOW`]).
    pub unread: i64,
    /// Whether the room is in the person's list (opened and not left).
    pub member: bool,
}

/// What [`RoomStore::create_room`] found or made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedRoom {
    /// The room's name as first written (`General` opened as `general` is `General`).
    pub name: String,
    /// True when this call created the room.
    pub created: bool,
}

#[async_trait]
pub trait RoomStore: Send + Sync {
    /// The chat rooms `user_id` may see, by name, with their read state: every
    /// public room (`member` says which are in their list) and the direct-message
    /// rooms they are a member of. Not notification rooms, not the server's rooms.
    async fn rooms_for(&self, user_id: i64) -> StoreResult<Vec<RoomRow>>;
    /// The room named `name` without regard to case, as first written.
    async fn find_room(&self, name: &str) -> StoreResult<Option<String>>;
    /// Finds `name` (without regard to case) or creates it, and puts it in the list
    /// of each of `members`.
    async fn create_room(
        &self,
        name: &str,
        members: &[i64],
        now_ms: i64,
    ) -> StoreResult<OpenedRoom>;
    /// Takes `room` out of `user_id`'s list; false when it was not in it.
    async fn leave_room(&self, user_id: i64, room: &str) -> StoreResult<bool>;
    /// Moves `user_id`'s read position in `room` forward to `through` (never back);
    /// the position after. The notifications' [`super::account::AccountStore::mark_read`].
    async fn mark_room_read(
        &self,
        user_id: i64,
        room: &str,
        through: i64,
        now_ms: i64,
    ) -> StoreResult<i64>;
    /// Messages in `room` after `after_id` written by someone other than `user_id`
    /// (at most [`UNREAD_WINDOW`]).
    async fn count_room_unread(&self, user_id: i64, room: &str, after_id: i64) -> StoreResult<i64>;
    /// The names of these users (those that exist), for direct-message rooms.
    async fn user_names(&self, ids: &[i64]) -> StoreResult<Vec<(i64, String)>>;
}

/// `rooms_for`. `case_duplicate = 0` is written as the partial index
/// `rooms_name_key` is, so the index can serve it.
pub(crate) const ROOMS_FOR: &str =
    "SELECT r.name, r.last_id, coalesce(p.last_read_id, 0) AS read_id,
        (SELECT count(*) FROM messages x
          WHERE x.room = r.name
            AND x.id > coalesce(p.last_read_id, 0)
            AND x.id <= coalesce(p.last_read_id, 0) + 200
            AND (x.user_id IS NULL OR x.user_id <> $1)) AS unread,
        (m.user_id IS NOT NULL) AS member
 FROM rooms r
 LEFT JOIN room_members m ON m.room = r.name AND m.user_id = $1
 LEFT JOIN read_positions p ON p.room = r.name AND p.user_id = $1
 WHERE r.case_duplicate = 0
   AND r.name NOT LIKE 'user:%'
   AND (r.name NOT LIKE 'dm:%' OR m.user_id IS NOT NULL)
 ORDER BY r.name";

pub(crate) const COUNT_UNREAD: &str = "SELECT count(*) FROM messages
     WHERE room = $1 AND id > $2 AND id <= $2 + $4 AND (user_id IS NULL OR user_id <> $3)";

pub(crate) const ADD_MEMBER: &str = "INSERT INTO room_members (user_id, room, joined_ms)
     VALUES ($1, $2, $3) ON CONFLICT (user_id, room) DO NOTHING";

pub(crate) const LEAVE: &str = "DELETE FROM room_members WHERE user_id = $1 AND room = $2";

/// A conflict on either the name or its folded form leaves the room as it was.
pub(crate) const INSERT_ROOM: &str =
    "INSERT INTO rooms (name, last_id, pruned_through, created_ms) VALUES ($1, 0, 0, $2)
     ON CONFLICT DO NOTHING";

/// `find_room` (see [`ROOMS_FOR`] for the index).
pub(crate) const FIND_ROOM: &str =
    "SELECT name FROM rooms WHERE lower(name) = lower($1) AND case_duplicate = 0";
