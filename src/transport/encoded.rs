//! Wire encodings of hub messages, made once per message for all the subscribers of
//! a transport. The hub hands every subscriber of a room the same
//! `Arc<Delivered>` (the message and its JSON) and knows no wire format; a
//! transport whose frame differs from that JSON (the WebSocket `message` frame, the
//! Socket.IO `message` event) keeps its encoding in one of the message's wire
//! slots ([`Delivered::wire`]), named here. A fan-out to 1,000 sockets then encodes
//! once and clones a reference count 999 times, instead of building 1,000 frames,
//! however far behind some of them read (a cache of the newest few messages, tried
//! first, missed for every subscriber more than a few messages behind during a
//! burst: a third of the Socket.IO fan-out rate at 1,000 clients).
//!
//! A replayed message (each connection reads its own copy from the store) is
//! encoded for its one client, as it must be anyway.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::hub::message::Message;
use crate::hub::{Delivered, WIRE_SLOTS};

/// The WebSocket `message` frame.
pub const WEBSOCKET_FRAME: usize = 0;
/// The Socket.IO `message` event's payload.
pub const SOCKETIO_PAYLOAD: usize = 1;
const _: () = assert!(SOCKETIO_PAYLOAD < WIRE_SLOTS && WEBSOCKET_FRAME < WIRE_SLOTS);

/// One transport's encoding of type `T`, kept in `slot` of every message.
pub struct Encoded<T> {
    slot: usize,
    kind: PhantomData<fn() -> T>,
}

impl<T: Clone + Send + Sync + 'static> Encoded<T> {
    pub const fn new(slot: usize) -> Self {
        Self {
            slot,
            kind: PhantomData,
        }
    }

    /// `delivered`'s encoding: the one made for an earlier subscriber, else
    /// `encode`'s (kept with the message for the next).
    pub fn get(&self, delivered: &Arc<Delivered>, encode: impl FnOnce(&Message) -> T) -> T {
        delivered.wire(self.slot, encode)
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
        let cache: Encoded<String> = Encoded::new(WEBSOCKET_FRAME);
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
        // another delivery, encoded for itself.
        let copy = delivered(1);
        assert_eq!(cache.get(&copy, encode), "m1");
        assert_eq!(calls.get(), 2);
    }

    /// A subscriber far behind a burst still finds the encoding the first one made
    /// (the cache this replaced kept only the newest 16 messages).
    #[test]
    fn a_burst_is_encoded_once_per_message_however_far_behind_a_reader_is() {
        let cache: Encoded<i64> = Encoded::new(SOCKETIO_PAYLOAD);
        let calls = Cell::new(0);
        let burst: Vec<_> = (0..300).map(delivered).collect();
        for d in &burst {
            cache.get(d, |m| {
                calls.set(calls.get() + 1);
                m.id
            });
        }
        for d in &burst {
            assert_eq!(
                cache.get(d, |_| unreachable!("encoded again")),
                d.message.id
            );
        }
        assert_eq!(calls.get(), 300);
    }

    #[test]
    fn transports_keep_their_own_encodings_side_by_side() {
        let frames: Encoded<String> = Encoded::new(WEBSOCKET_FRAME);
        let payloads: Encoded<i64> = Encoded::new(SOCKETIO_PAYLOAD);
        let d = delivered(7);
        assert_eq!(frames.get(&d, |m| m.text.clone()), "m7");
        assert_eq!(payloads.get(&d, |m| m.id * 2), 14);
        assert_eq!(frames.get(&d, |_| unreachable!()), "m7");
    }
}
