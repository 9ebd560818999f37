//! Presence across instances (`--redis-url`): who is in which room is the same on
//! every instance, and a dead instance's members are gone within seconds.
//!
//! Each instance keeps its members in one Redis hash, `{prefix}presence:{instance}`
//! (field `{user id}:{room}`, value the user's name; field `v` a version that every
//! write raises), listed in the set `{prefix}presence:instances` (which expires
//! like the hashes once no instance refreshes it). The hash expires
//! [`TTL`] after its instance last refreshed it, which it does every [`HEARTBEAT`]:
//! a killed instance's members expire with its hash. A change (a user's first
//! connection in a room on this instance, or their last one here gone) is written
//! and published on the broker's channel in one transaction by one task, together
//! with whatever else changed meanwhile; the hub only notes it
//! ([`SharedPresence::note`]), so no join ever waits for Redis.
//!
//! Every other instance applies what was published to its own view of the room
//! ([`PresenceNews`], applied by [`Hub::apply_presence`]), and tells its clients
//! (`user_joined` / `user_left` with the count across instances). Pub/sub may lose a
//! change, so every [`HEARTBEAT`] each instance also reads the others' versions (one
//! round trip): an instance at a version other than the one applied here is read
//! whole, and one whose hash is gone has left (its members leave everywhere). An
//! instance that stops cleanly deletes its hash and says so at once.
//!
//! While Redis is down every call fails at once (the breaker). This instance's
//! changes are kept and written whole once Redis answers; after [`TTL`] without an
//! answer the other instances' members are dropped here, as they would be had those
//! instances died, so presence falls back to this instance's own, and the others come
//! back (with `user_joined`) when Redis does.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::broker::Announcement;
use super::message::Author;
use super::{Delivery, Hub, PresenceChange, broadcast as offer};
use crate::breaker::Breaker;
use crate::sync::lock;

/// How often an instance refreshes its hash and reads the others' versions.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a hash outlives its instance's last refresh: a killed instance's members
/// leave the others' rooms between `TTL` and `TTL + HEARTBEAT` after it died.
pub const TTL: Duration = Duration::from_secs(5);
/// Presence changes of one room that one piece of news announces one by one; past
/// this only the last goes out (its count is exact), so that an instance dying with
/// thousands of members in a room does not fill, and cut off, every client's queue.
const NOTICES_AT_ONCE: usize = 32;

/// What other instances' presence did, for the hub to apply to its rooms.
#[derive(Debug)]
pub enum PresenceNews {
    /// Changes one instance published.
    Changed {
        instance: Arc<str>,
        joined: Vec<(String, Author)>,
        left: Vec<(String, i64)>,
    },
    /// Everything one instance has present: replaces what was known of it (an empty
    /// list when it has stopped or died).
    Whole {
        instance: Arc<str>,
        present: Vec<(String, Author)>,
    },
    /// Redis has not answered for [`TTL`]: forget every other instance's members.
    Alone,
}

/// A change as it travels on the broker's channel (the `presence` of its envelope).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Delta {
    /// The sender's version after this change.
    pub v: u64,
    /// (room, user id, name)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joined: Vec<(String, i64, String)>,
    /// (room, user id)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left: Vec<(String, i64)>,
    /// The sender stopped: its members are gone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gone: bool,
}

pub struct SharedPresence {
    instance: Arc<str>,
    prefix: String,
    /// The broker's channel, where changes are published.
    channel: String,
    redis: ConnectionManager,
    breaker: Arc<Breaker>,
    /// The pump's channel: news goes to the hub through it, in order with the rest.
    local: broadcast::Sender<Announcement>,
    /// This instance's changes not written yet, the newest per (room, user id):
    /// `Some(name)` present, `None` gone.
    pending: Mutex<HashMap<(String, i64), Option<String>>>,
    wake: Notify,
    /// Per other instance, the version of it the hub has been sent (in sequence
    /// from its deltas, or read whole). Locked while news is sent, so the order of
    /// the pump's channel matches.
    applied: Mutex<HashMap<Arc<str>, u64>>,
}

/// What the writing task knows of this instance's own hash.
struct Mine {
    /// (room, user id) -> name: what Redis should hold.
    members: HashMap<(String, i64), String>,
    version: u64,
    /// Redis may not hold `members` (a write failed, the hash expired): write it whole.
    dirty: bool,
}

impl SharedPresence {
    /// Starts the task that writes this instance's presence and reads the others'
    /// (until `shutdown`, when it deletes this instance's hash).
    pub fn start(
        instance: &str,
        redis: ConnectionManager,
        breaker: Arc<Breaker>,
        prefix: &str,
        channel: &str,
        local: broadcast::Sender<Announcement>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let shared = Arc::new(Self {
            instance: instance.into(),
            prefix: prefix.to_owned(),
            channel: channel.to_owned(),
            redis,
            breaker,
            local,
            pending: Mutex::default(),
            wake: Notify::new(),
            applied: Mutex::default(),
        });
        tokio::spawn(shared.clone().run(shutdown));
        shared
    }

    /// `user`'s first connection in `room` on this instance arrived (`present`), or
    /// their last one here left. Does not wait: the writing task takes it.
    pub fn note(&self, room: &str, user: &Author, present: bool) {
        lock(&self.pending).insert(
            (room.to_owned(), user.id),
            present.then(|| user.name.clone()),
        );
        self.wake.notify_one();
    }

    /// Another instance published `delta`: passes it on to the hub.
    pub fn received(&self, origin: &str, delta: Delta) {
        let instance: Arc<str> = origin.into();
        let mut applied = lock(&self.applied);
        if delta.gone {
            applied.remove(&instance);
            self.tell(PresenceNews::Whole {
                instance,
                present: Vec::new(),
            });
            return;
        }
        // Out of sequence (a delta was lost, or the sender rewrote its hash): applied
        // all the same, and the next look reads the sender whole.
        if let Some(version) = applied.get_mut(&instance)
            && *version + 1 == delta.v
        {
            *version = delta.v;
        }
        let joined = delta
            .joined
            .into_iter()
            .map(|(room, id, name)| (room, Author { id, name }))
            .collect();
        self.tell(PresenceNews::Changed {
            instance,
            joined,
            left: delta.left,
        });
    }

    /// The hub may have missed news: read every other instance whole again (kept
    /// by id, so that one whose hash is gone meanwhile still leaves).
    pub fn forget_versions(&self) {
        for version in lock(&self.applied).values_mut() {
            *version = u64::MAX;
        }
    }

    fn tell(&self, news: PresenceNews) {
        // No receiver: the pump stopped at shutdown.
        let _ = self.local.send(Announcement::Presence(Arc::new(news)));
    }

    fn key(&self, instance: &str) -> String {
        format!("{}presence:{instance}", self.prefix)
    }

    fn registry(&self) -> String {
        format!("{}presence:instances", self.prefix)
    }

    async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut mine = Mine {
            members: HashMap::new(),
            version: 0,
            dirty: true,
        };
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut answered = Instant::now();
        let mut alone = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => self.write(&mut mine).await,
                _ = tick.tick() => {
                    self.heartbeat(&mut mine).await;
                    if self.look().await.is_some() {
                        answered = Instant::now();
                        alone = false;
                    } else if answered.elapsed() >= TTL && !alone {
                        alone = true;
                        let mut applied = lock(&self.applied);
                        applied.clear();
                        self.tell(PresenceNews::Alone);
                    }
                }
            }
        }
        self.goodbye(&mine).await;
    }

    /// Writes the changes noted since the last write, and publishes them.
    async fn write(&self, mine: &mut Mine) {
        let noted = std::mem::take(&mut *lock(&self.pending));
        let mut delta = Delta::default();
        for ((room, id), name) in noted {
            match name {
                Some(name) => {
                    let entry = (room, id);
                    if mine.members.get(&entry) != Some(&name) {
                        mine.members.insert(entry.clone(), name.clone());
                        delta.joined.push((entry.0, id, name));
                    }
                }
                None => {
                    if mine.members.remove(&(room.clone(), id)).is_some() {
                        delta.left.push((room, id));
                    }
                }
            }
        }
        if delta.joined.is_empty() && delta.left.is_empty() {
            return;
        }
        if mine.dirty {
            return self.rewrite(mine).await;
        }
        // Raised even if the write fails: it may have happened all the same, and the
        // next version must differ from one the others may have seen.
        mine.version += 1;
        delta.v = mine.version;
        let key = self.key(&self.instance);
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("EXISTS").arg(&key);
        let mut set = redis::cmd("HSET");
        set.arg(&key).arg("v").arg(mine.version);
        for (room, id, name) in &delta.joined {
            set.arg(field(room, *id)).arg(name);
        }
        pipe.add_command(set).ignore();
        if !delta.left.is_empty() {
            let mut delete = redis::cmd("HDEL");
            delete.arg(&key);
            for (room, id) in &delta.left {
                delete.arg(field(room, *id));
            }
            pipe.add_command(delete).ignore();
        }
        pipe.cmd("PEXPIRE").arg(&key).arg(ttl_ms()).ignore();
        let payload = serde_json::json!({ "origin": &*self.instance, "presence": delta });
        pipe.cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload.to_string())
            .ignore();
        let mut connection = self.redis.clone();
        match self
            .breaker
            .call(pipe.query_async::<(i64,)>(&mut connection))
            .await
        {
            Ok((1,)) => {}
            // The hash had expired: it now holds only this change.
            Ok(_) => self.rewrite(mine).await,
            Err(_) => mine.dirty = true,
        }
    }

    /// Replaces this instance's hash with everything it has present.
    async fn rewrite(&self, mine: &mut Mine) {
        mine.version += 1;
        let key = self.key(&self.instance);
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("DEL").arg(&key).ignore();
        let mut set = redis::cmd("HSET");
        set.arg(&key).arg("v").arg(mine.version);
        for ((room, id), name) in &mine.members {
            set.arg(field(room, *id)).arg(name);
        }
        pipe.add_command(set).ignore();
        pipe.cmd("PEXPIRE").arg(&key).arg(ttl_ms()).ignore();
        pipe.cmd("SADD")
            .arg(self.registry())
            .arg(&*self.instance)
            .ignore();
        pipe.cmd("PEXPIRE")
            .arg(self.registry())
            .arg(ttl_ms())
            .ignore();
        let mut connection = self.redis.clone();
        mine.dirty = self
            .breaker
            .call(pipe.query_async::<()>(&mut connection))
            .await
            .is_err();
    }

    /// Keeps this instance's hash alive (writing it whole if Redis lost it).
    async fn heartbeat(&self, mine: &mut Mine) {
        if !mine.dirty {
            let mut pipe = redis::pipe();
            pipe.cmd("PEXPIRE")
                .arg(self.key(&self.instance))
                .arg(ttl_ms())
                .cmd("SADD")
                .arg(self.registry())
                .arg(&*self.instance)
                .ignore()
                .cmd("PEXPIRE")
                .arg(self.registry())
                .arg(ttl_ms())
                .ignore();
            let mut connection = self.redis.clone();
            match self
                .breaker
                .call(pipe.query_async::<(i64,)>(&mut connection))
                .await
            {
                Ok((1,)) | Err(_) => return,
                // Expired (this instance stalled) or lost (Redis restarted).
                Ok(_) => mine.dirty = true,
            }
        }
        self.rewrite(mine).await;
    }

    /// Reads the other instances' versions, and whole those that are not at the
    /// version applied here; the ones whose hash is gone leave. `None` when Redis
    /// did not answer.
    async fn look(&self) -> Option<()> {
        let mut connection = self.redis.clone();
        let registered: Vec<String> = self
            .breaker
            .call(
                redis::cmd("SMEMBERS")
                    .arg(self.registry())
                    .query_async(&mut connection),
            )
            .await
            .ok()?;
        let mut others: Vec<Arc<str>> = registered
            .into_iter()
            .filter(|id| *id != *self.instance)
            .map(Arc::from)
            .collect();
        for known in lock(&self.applied).keys() {
            if !others.contains(known) {
                others.push(known.clone());
            }
        }
        if others.is_empty() {
            return Some(());
        }
        let mut pipe = redis::pipe();
        for id in &others {
            pipe.cmd("HGET").arg(self.key(id)).arg("v");
        }
        let versions: Vec<Option<u64>> = self
            .breaker
            .call(pipe.query_async(&mut connection))
            .await
            .ok()?;
        for (id, version) in others.into_iter().zip(versions) {
            match version {
                Some(version) if lock(&self.applied).get(&id) == Some(&version) => {}
                Some(_) => {
                    let fields: HashMap<String, String> = self
                        .breaker
                        .call(
                            redis::cmd("HGETALL")
                                .arg(self.key(&id))
                                .query_async(&mut connection),
                        )
                        .await
                        .ok()?;
                    let (version, present) = parse(fields);
                    self.replace(id, version, present);
                }
                None => {
                    // Expired (it died) or deleted (it stopped): its members leave.
                    let _ = self
                        .breaker
                        .call(
                            redis::cmd("SREM")
                                .arg(self.registry())
                                .arg(&*id)
                                .query_async::<()>(&mut connection),
                        )
                        .await;
                    self.replace(id, None, Vec::new());
                }
            }
        }
        Some(())
    }

    fn replace(&self, instance: Arc<str>, version: Option<u64>, present: Vec<(String, Author)>) {
        let mut applied = lock(&self.applied);
        match version {
            Some(version) => applied.insert(instance.clone(), version),
            None => applied.remove(&instance),
        };
        self.tell(PresenceNews::Whole { instance, present });
    }

    /// At shutdown: this instance's members leave every other instance at once.
    async fn goodbye(&self, mine: &Mine) {
        let delta = Delta {
            v: mine.version + 1,
            gone: true,
            ..Delta::default()
        };
        let payload = serde_json::json!({ "origin": &*self.instance, "presence": delta });
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(self.key(&self.instance))
            .ignore()
            .cmd("SREM")
            .arg(self.registry())
            .arg(&*self.instance)
            .ignore()
            .cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload.to_string())
            .ignore();
        let mut connection = self.redis.clone();
        let _ = self
            .breaker
            .call(pipe.query_async::<()>(&mut connection))
            .await;
    }
}

fn ttl_ms() -> u64 {
    TTL.as_millis() as u64
}

/// The hash field of `user_id` in `room` (a room name may hold `:`, a number not).
fn field(room: &str, user_id: i64) -> String {
    format!("{user_id}:{room}")
}

/// An instance's hash: its version (`None` when the hash is gone) and members.
fn parse(fields: HashMap<String, String>) -> (Option<u64>, Vec<(String, Author)>) {
    let mut version = None;
    let mut present = Vec::with_capacity(fields.len());
    for (field, value) in fields {
        if field == "v" {
            version = value.parse().ok();
        } else if let Some((id, room)) = field.split_once(':')
            && let Ok(id) = id.parse()
        {
            present.push((room.to_owned(), Author { id, name: value }));
        }
    }
    (version, present)
}

impl Hub {
    /// Applies another instance's presence to the local rooms, and tells their
    /// subscribers who joined or left the room (with the count across instances).
    pub(super) fn apply_presence(&self, news: &PresenceNews) {
        let mut rooms = lock(&self.rooms);
        let mut changes: HashMap<String, Vec<PresenceChange>> = HashMap::new();
        let mut note = |change: Option<PresenceChange>| {
            if let Some(change) = change {
                changes.entry(change.room.clone()).or_default().push(change);
            }
        };
        match news {
            PresenceNews::Changed {
                instance,
                joined,
                left,
            } => {
                for (room, user_id) in left {
                    if let Some(local) = rooms.get_mut(room) {
                        note(local.presence.remove_remote(room, *user_id, instance));
                    }
                }
                for (room, user) in joined {
                    let local = rooms.entry(room.clone()).or_default();
                    note(local.presence.add_remote(room, user, instance));
                }
            }
            PresenceNews::Whole { instance, present } => {
                let wanted: HashSet<(&str, i64)> = present
                    .iter()
                    .map(|(room, user)| (room.as_str(), user.id))
                    .collect();
                for (room, local) in rooms.iter_mut() {
                    for user_id in local.presence.reported_by(instance) {
                        if !wanted.contains(&(room.as_str(), user_id)) {
                            note(local.presence.remove_remote(room, user_id, instance));
                        }
                    }
                }
                for (room, user) in present {
                    let local = rooms.entry(room.clone()).or_default();
                    note(local.presence.add_remote(room, user, instance));
                }
            }
            PresenceNews::Alone => {
                for (room, local) in rooms.iter_mut() {
                    for change in local.presence.forget_remote(room) {
                        note(Some(change));
                    }
                }
            }
        }
        for (room, mut announced) in changes {
            let Some(local) = rooms.get(&room) else {
                continue;
            };
            if announced.len() > NOTICES_AT_ONCE {
                announced.drain(..announced.len() - 1);
            }
            for change in announced {
                let sent = offer(local, Delivery::Presence(Arc::new(change)), None);
                self.stats
                    .slow_consumers
                    .fetch_add(sent.1, std::sync::atomic::Ordering::Relaxed);
            }
            if local.subscribers.is_empty() && local.presence.is_empty() {
                rooms.remove(&room);
            }
        }
    }
}
