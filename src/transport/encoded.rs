//! Wire encodings of hub messages, made once per message for all the subscribers of
//! a transport. The hub hands every subscriber of a room the same
//! `Arc<Delivered>` (the message and its JSON), and knows no wire format; a
//! transport whose frame differs from that JSON (the WebSocket `message` frame, the
//! Socket.IO `message` event) keeps its encodings here, keyed on the `Delivered`
//! itself. A fan-out to 1,000 sockets then encodes once and clones a reference
//! count 999 times, instead of building 1,000 frames.
//!
//! The cache holds the most recent few messages: a fan-out delivers one message to
//! every subscriber in quick succession, so the newest entry is nearly always the
//! one asked for. A replayed message (each connection reads its own copy from the
//! store) misses and is encoded for its one client, as it must be anyway.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::hub::Delivered;
use crate::hub::message::Message;

/// Messages whose encodings are kept.
const KEPT: usize = 16;

pub struct Encoded<T> {
    /// Newest first. The `Weak` is the key: while it lives, its allocation is not
    /// reused, so a pointer match is the same message, never a later one at the
    /// same address.
    recent: Mutex<VecDeque<(Weak<Delivered>, T)>>,
}

impl<T: Clone> Encoded<T> {
    pub const fn new() -> Self {
        Self {
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// `delivered`'s encoding: the one made for an earlier subscriber, else
    /// `encode`'s (kept for the next).
    pub fn get(&self, delivered: &Arc<Delivered>, encode: impl FnOnce(&Message) -> T) -> T {
        let key = Arc::as_ptr(delivered);
        if let Some((_, encoded)) = self.lock().iter().find(|(k, _)| k.as_ptr() == key) {
            return encoded.clone();
        }
        // Encoded outside the lock: two subscribers racing both encode, which is
        // cheaper than making the others wait.
        let encoded = encode(&delivered.message);
        let mut recent = self.lock();
        recent.push_front((Arc::downgrade(delivered), encoded.clone()));
        recent.truncate(KEPT);
        encoded
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Weak<Delivered>, T)>> {
        // A cache: whatever a panic left in it is still a valid entry or none.
        self.recent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Clone> Default for Encoded<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::hub::message::Author;

    fn delivered(id: i64) -> Arc<Delivered> {
        Delivered::new(Message {
            room: "general".into(),
            id,
            user: Author {
                id: 1,
                name: "Ada".into(),
            },
            text: format!("m{id}"),
            ts: "2026-01-01T00:00:00.000Z".into(),
            timestamp: 1_767_225_600.0,
            client_id: None,
            event: None,
        })
    }

    #[test]
    fn a_message_is_encoded_once_for_all_its_subscribers() {
        let cache = Encoded::new();
        let calls = Cell::new(0);
        let encode = |m: &Message| {
            calls.set(calls.get() + 1);
            m.text.clone()
        };
        let first = delivered(1);
        for _ in 0..5 {
            assert_eq!(cache.get(&first, encode), "m1");
        }
        assert_eq!(calls.get(), 1);
        // Another message with the same id (another room, a replayed copy) is
        // another entry: the key is the delivery, not the id.
        let copy = delivered(1);
        assert_eq!(cache.get(&copy, encode), "m1");
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn only_the_newest_messages_are_kept() {
        let cache = Encoded::new();
        let all: Vec<_> = (0..KEPT as i64 + 4).map(delivered).collect();
        for d in &all {
            cache.get(d, |m| m.id);
        }
        assert_eq!(cache.lock().len(), KEPT);
        let encoded_again = Cell::new(false);
        cache.get(&all[0], |m| {
            encoded_again.set(true);
            m.id
        });
        assert!(encoded_again.get(), "the oldest was dropped");
    }
}
