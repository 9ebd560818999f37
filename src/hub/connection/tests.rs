//! The connection against a real hub on an in-memory log (`hub::testing`): replays are read
//! one page at a time as the client takes them, live messages and gaps fold into
//! them exactly, duplicates are dropped, a catch-up after lost announcements
//! reaches every subscriber without overflowing a queue, and the budgets and the
//! rooms cap hold.

use std::time::Duration;

use futures_util::FutureExt;

use super::*;
use crate::hub::LogPosition;
use crate::hub::message::NewMessage;

const ROOM: &str = "lobby";

use crate::hub::testing::{connect, hub, user};

/// Appends `n` messages to `room` without announcing them (as if the broker lost
/// their announcements).
async fn store_quietly(hub: &Hub, room: &str, n: usize) {
    for i in 0..n {
        hub.store()
            .append_message(&NewMessage {
                room: room.into(),
                author: Author::system(),
                text: format!("quiet {i}"),
                event: None,
                client_id: None,
            })
            .await
            .unwrap();
    }
}

async fn send(hub: &Hub, room: &str, text: &str) -> i64 {
    hub.send(&user(1), room, text, None, None)
        .await
        .unwrap()
        .message
        .id
}

/// The next message's id, failing on anything else or on a wait.
async fn next_id(connection: &mut Connection) -> i64 {
    match tokio::time::timeout(Duration::from_secs(5), connection.next())
        .await
        .expect("something for the client in time")
        .unwrap()
    {
        Next::Message(delivered) => delivered.message.id,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The ids the connection has ready or can read now, until it would wait.
async fn drain_ids(connection: &mut Connection) -> Vec<i64> {
    let mut ids = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(200), connection.next()).await {
            Ok(Ok(Next::Message(delivered))) => ids.push(delivered.message.id),
            Ok(Ok(Next::Presence(_))) => {}
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => return ids,
        }
    }
}

fn nothing_ready(connection: &mut Connection) -> bool {
    connection.next().now_or_never().is_none()
}

#[tokio::test]
async fn a_replay_is_read_one_page_at_a_time_as_the_client_takes_it() {
    let f = hub(4, 8).await;
    store_quietly(&f.hub, ROOM, 18).await;
    let mut c = connect(&f.hub, 1);

    let joined = c.join(ROOM, Some(0)).await.unwrap();
    assert_eq!((joined.from, joined.position, joined.reset), (0, 18, None));
    assert!(c.page.is_empty(), "the join itself reads no message");

    for expected in 1..=18 {
        assert_eq!(next_id(&mut c).await, expected);
        assert!(c.page.len() < 4, "never more than one page is held");
    }
    assert!(
        nothing_ready(&mut c),
        "the replay ends at the room's position"
    );
}

#[tokio::test]
async fn a_replay_taken_in_pages_gives_every_message_once_in_order() {
    let f = hub(4, 8).await;
    store_quietly(&f.hub, ROOM, 18).await;
    let mut c = connect(&f.hub, 1);
    c.join(ROOM, Some(5)).await.unwrap();
    let mut ids = Vec::new();
    loop {
        let Some(next) = c.try_next() else {
            match tokio::time::timeout(Duration::from_millis(200), c.next()).await {
                Ok(Ok(Next::Message(m))) => {
                    ids.push(m.message.id);
                    continue;
                }
                Ok(other) => panic!("unexpected {other:?}"),
                Err(_) => break,
            }
        };
        assert!(c.page.len() < 4);
        match next {
            Next::Message(m) => ids.push(m.message.id),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ids, (6..=18).collect::<Vec<_>>());
}

#[tokio::test]
async fn live_messages_during_a_replay_follow_it_once_and_in_order() {
    // A queue of 4 and 10 live messages: they are taken (and skipped) while the
    // replay runs, so the queue never overflows and the replay reads them in order.
    let f = hub(3, 4).await;
    store_quietly(&f.hub, ROOM, 10).await;
    let mut c = connect(&f.hub, 1);
    c.join(ROOM, Some(0)).await.unwrap();
    let mut ids = vec![next_id(&mut c).await, next_id(&mut c).await];
    for i in 0..10 {
        send(&f.hub, ROOM, &format!("live {i}")).await;
        ids.push(next_id(&mut c).await);
    }
    ids.extend(drain_ids(&mut c).await);
    assert_eq!(ids, (1..=20).collect::<Vec<_>>());
    assert!(!c.overflow().is_cancelled());
    // Then live again, from the queue.
    send(&f.hub, ROOM, "after").await;
    assert_eq!(next_id(&mut c).await, 21);
    assert!(c.page.is_empty());
}

#[tokio::test]
async fn a_gap_revealed_by_a_live_message_is_read_from_the_store() {
    let f = hub(2, 8).await;
    let mut c = connect(&f.hub, 1);
    c.join(ROOM, None).await.unwrap();
    store_quietly(&f.hub, ROOM, 5).await;
    send(&f.hub, ROOM, "reveals the gap").await;
    assert_eq!(drain_ids(&mut c).await, (1..=6).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_catch_up_reaches_every_subscriber_with_all_it_missed() {
    // Queues of 2, a backlog of 50 in pages of 4: nobody is cut off.
    let f = hub(4, 2).await;
    let mut waited = connect(&f.hub, 1);
    waited.join(ROOM, None).await.unwrap();
    let mut other_user = connect(&f.hub, 2);
    other_user.join(ROOM, None).await.unwrap();
    store_quietly(&f.hub, ROOM, 50).await;
    // A client joins during the outage: it starts at 50, and must not make the
    // others look as if they had 50 too.
    let mut joined_meanwhile = connect(&f.hub, 3);
    joined_meanwhile.join(ROOM, None).await.unwrap();
    assert!(
        drain_ids(&mut waited).await.is_empty(),
        "no announcement yet"
    );

    f.hub.catch_up_all().await;

    for c in [&mut waited, &mut other_user] {
        assert_eq!(drain_ids(c).await, (1..=50).collect::<Vec<_>>());
        assert!(!c.overflow().is_cancelled());
    }
    assert!(drain_ids(&mut joined_meanwhile).await.is_empty());
    send(&f.hub, ROOM, "live again").await;
    for c in [&mut waited, &mut other_user, &mut joined_meanwhile] {
        assert_eq!(drain_ids(c).await, [51]);
    }
}

#[tokio::test]
async fn a_position_announced_by_the_broker_starts_a_replay() {
    let f = hub(4, 2).await;
    let mut c = connect(&f.hub, 1);
    c.join(ROOM, None).await.unwrap();
    store_quietly(&f.hub, ROOM, 9).await;
    f.hub.announce_position(ROOM, 9);
    assert_eq!(drain_ids(&mut c).await, (1..=9).collect::<Vec<_>>());
    // An old position changes nothing.
    f.hub.announce_position(ROOM, 3);
    assert!(drain_ids(&mut c).await.is_empty());
}

#[tokio::test]
async fn a_replay_that_retention_overtook_is_a_reset_then_goes_on_live() {
    let f = hub(4, 8).await;
    store_quietly(&f.hub, ROOM, 12).await;
    let mut c = connect(&f.hub, 1);
    c.join(ROOM, Some(0)).await.unwrap();
    for expected in 1..=4 {
        assert_eq!(next_id(&mut c).await, expected);
    }
    f.hub.store().prune_messages(3, 0).await.unwrap();
    match c.next().await.unwrap() {
        Next::Reset { room, reason } => {
            assert_eq!((room.as_str(), reason), (ROOM, "history_pruned"))
        }
        other => panic!("expected a reset, got {other:?}"),
    }
    send(&f.hub, ROOM, "after the reset").await;
    assert_eq!(drain_ids(&mut c).await, [13]);
}

#[tokio::test]
async fn a_join_from_before_retention_or_ahead_of_the_log_is_a_reset() {
    let f = hub(4, 8).await;
    store_quietly(&f.hub, ROOM, 6).await;
    f.hub.store().prune_messages(3, 0).await.unwrap();
    let mut c = connect(&f.hub, 1);
    let joined = c.join(ROOM, Some(1)).await.unwrap();
    assert_eq!((joined.reset, joined.from), (Some("history_pruned"), 6));
    let joined = c.join(ROOM, Some(99)).await.unwrap();
    assert_eq!((joined.reset, joined.from), (Some("position_ahead"), 6));
    assert!(drain_ids(&mut c).await.is_empty());
    let joined = c.join(ROOM, Some(3)).await.unwrap();
    assert_eq!((joined.reset, joined.from, joined.position), (None, 3, 6));
    assert_eq!(drain_ids(&mut c).await, [4, 5, 6]);
}

#[tokio::test]
async fn leaving_a_room_mid_replay_drops_its_page() {
    let f = hub(4, 8).await;
    store_quietly(&f.hub, ROOM, 10).await;
    store_quietly(&f.hub, "other", 2).await;
    let mut c = connect(&f.hub, 1);
    c.join(ROOM, Some(0)).await.unwrap();
    assert_eq!(next_id(&mut c).await, 1);
    c.leave(ROOM).unwrap();
    assert!(c.page.is_empty());
    c.join("other", Some(0)).await.unwrap();
    assert_eq!(drain_ids(&mut c).await, [1, 2]);
}

#[tokio::test]
async fn rooms_per_connection_are_capped() {
    let f = hub(4, 8).await;
    let mut c = connect(&f.hub, 1);
    for room in ["a", "b", "c"] {
        c.join(room, None).await.unwrap();
    }
    let refused = c.join("d", None).await.unwrap_err();
    assert_eq!(refused.code(), "too_many_rooms");
    c.join("a", Some(0))
        .await
        .expect("rejoining is not one more");
    c.leave("c").unwrap();
    c.join("d", None).await.unwrap();
    assert_eq!(c.rooms.len(), 3);
}

#[tokio::test]
async fn joins_and_leaves_spend_the_control_budget() {
    let f = hub(4, 8).await;
    let mut c = connect(&f.hub, 1);
    let burst = (CONTROL_PER_SECOND * 2) as usize;
    for i in 0..burst {
        if i % 2 == 0 {
            c.join("a", None).await.unwrap();
        } else {
            c.leave("a").unwrap();
        }
    }
    assert_eq!(c.leave("a").unwrap_err().code(), "rate_limited");
    assert_eq!(c.join("a", None).await.unwrap_err().code(), "rate_limited");
    // Sends have a budget of their own.
    c.send(ROOM, "still allowed", None, None).await.unwrap();
}

#[test]
fn a_budget_allows_a_burst_then_refills_with_time() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut budget = Budget::new(5, 10);
        for _ in 0..10 {
            budget.take().unwrap();
        }
        assert!(budget.take().is_err());
        tokio::time::advance(Duration::from_millis(199)).await;
        assert!(budget.take().is_err(), "not a whole token yet");
        tokio::time::advance(Duration::from_millis(2)).await;
        budget.take().unwrap();
        tokio::time::advance(Duration::from_secs(60)).await;
        for _ in 0..10 {
            budget.take().unwrap();
        }
        assert!(budget.take().is_err(), "never more than the burst");
    });
}

/// A stored message of `room`, as a delivery would carry it.
fn delivery(room: &str, id: i64) -> Delivery {
    Delivery::Message(Delivered::new(Message {
        room: room.into(),
        id,
        user: user(1),
        text: format!("m{id}"),
        ts: "2026-01-01T00:00:00.000Z".into(),
        timestamp: 1_767_225_600.0,
        client_id: None,
        event: None,
    }))
}

fn accepted_id(next: Option<Next>) -> Option<i64> {
    match next {
        Some(Next::Message(delivered)) => Some(delivered.message.id),
        None => None,
        Some(other) => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test]
async fn accept_gives_the_next_message_once_and_drops_repeats_and_strangers() {
    let f = hub(4, 8).await;
    let mut c = connect(&f.hub, 1);
    c.join(ROOM, None).await.unwrap();
    assert_eq!(accepted_id(c.accept(delivery(ROOM, 1))), Some(1));
    // The same announcement twice (a broker may repeat one), or an older one.
    assert_eq!(accepted_id(c.accept(delivery(ROOM, 1))), None);
    assert_eq!(accepted_id(c.accept(delivery(ROOM, 0))), None);
    // A room the connection does not follow.
    assert_eq!(accepted_id(c.accept(delivery("elsewhere", 2))), None);
    assert_eq!(accepted_id(c.accept(delivery(ROOM, 2))), Some(2));
    let followed = c.rooms[ROOM];
    assert_eq!((followed.given, followed.replay_to), (2, 2));
}

#[tokio::test]
async fn accept_turns_a_gap_into_a_replay_and_skips_live_copies_behind_it() {
    let f = hub(4, 8).await;
    let mut c = connect(&f.hub, 1);
    c.join(ROOM, None).await.unwrap();
    // 3 arrives before 1 and 2: nothing goes out, the replay runs to 3.
    assert_eq!(accepted_id(c.accept(delivery(ROOM, 3))), None);
    let followed = c.rooms[ROOM];
    assert_eq!((followed.given, followed.replay_to), (0, 3));
    // 1 arriving live now is skipped too: the replay reads it, in order.
    assert_eq!(accepted_id(c.accept(delivery(ROOM, 1))), None);
    assert_eq!(c.rooms[ROOM].given, 0);
}

#[tokio::test]
async fn a_position_announcement_only_ever_raises_the_replay_mark() {
    let f = hub(4, 8).await;
    let mut c = connect(&f.hub, 1);
    c.join(ROOM, None).await.unwrap();
    let position = |last_id| {
        Delivery::Position(Arc::new(LogPosition {
            room: ROOM.into(),
            last_id,
        }))
    };
    assert!(c.accept(position(5)).is_none());
    assert_eq!(c.rooms[ROOM].replay_to, 5);
    assert!(c.accept(position(2)).is_none());
    assert_eq!(c.rooms[ROOM].replay_to, 5);
}

#[tokio::test]
async fn the_control_budget_refills_with_time() {
    let f = hub(4, 8).await;
    let mut c = connect(&f.hub, 1);
    // Paused once the store is open: only the budget's clock is driven by hand.
    tokio::time::pause();
    // Leaving a room not followed still costs a request.
    let burst = (CONTROL_PER_SECOND * 2) as usize;
    for _ in 0..burst {
        c.leave("a").unwrap();
    }
    assert_eq!(c.leave("a").unwrap_err().code(), "rate_limited");
    tokio::time::advance(Duration::from_millis(150)).await;
    assert!(c.leave("a").is_err(), "not a whole request yet");
    tokio::time::advance(Duration::from_millis(60)).await;
    c.leave("a").expect("one request a fifth of a second");
}

/// Every chat page follows the created-rooms log; nobody is "present" there, so
/// pages are not told of each other's arrivals.
#[tokio::test]
async fn nobody_is_present_in_the_created_rooms_log() {
    let fixture = hub(8, 16).await;
    let mut a = connect(&fixture.hub, 1);
    let mut b = connect(&fixture.hub, 2);
    a.join(message::ROOM_LIST_ROOM, None).await.unwrap();
    let joined = b.join(message::ROOM_LIST_ROOM, None).await.unwrap();
    assert_eq!(joined.presence.count, 0);
    assert_eq!(fixture.hub.presence_count(message::ROOM_LIST_ROOM), 0);
    assert!(
        a.try_next().is_none(),
        "no presence change reached the first page"
    );
    // A chat room still counts both.
    a.join("general", None).await.unwrap();
    b.join("general", None).await.unwrap();
    assert_eq!(fixture.hub.presence_count("general"), 2);
}

#[tokio::test]
async fn a_rejoin_never_gives_an_id_twice_and_keeps_ids_in_order() {
    let f = hub(4, 16).await;
    store_quietly(&f.hub, ROOM, 8).await;
    let mut c = connect(&f.hub, 1);
    c.join(ROOM, None).await.unwrap();
    // Live from now: 9 arrives (README's Socket.IO snippet: a buffered send).
    send(&f.hub, ROOM, "nine").await;
    assert_eq!(next_id(&mut c).await, 9);

    // `since: 0` for a room it follows: 1..8 would come after 9, 9 again.
    let joined = c.join(ROOM, Some(0)).await.unwrap();
    assert_eq!((joined.from, joined.position, joined.reset), (9, 9, None));
    assert_eq!(drain_ids(&mut c).await, Vec::<i64>::new());
    assert_eq!(f.hub.presence_count(ROOM), 1, "still present once");

    // Without a position: the same place.
    send(&f.hub, ROOM, "ten").await;
    let joined = c.join(ROOM, None).await.unwrap();
    assert_eq!(joined.from, 9, "10 is still to come");
    assert_eq!(drain_ids(&mut c).await, [10]);

    // A position further on than what was given moves it on, in order.
    store_quietly(&f.hub, ROOM, 5).await; // 11..15, unannounced
    let joined = c.join(ROOM, Some(12)).await.unwrap();
    assert_eq!((joined.from, joined.position), (12, 15));
    send(&f.hub, ROOM, "sixteen").await;
    assert_eq!(drain_ids(&mut c).await, [13, 14, 15, 16]);

    // Mid-replay: a rejoin from an earlier position neither repeats nor skips.
    store_quietly(&f.hub, ROOM, 10).await; // 17..26
    let mut d = connect(&f.hub, 2);
    d.join(ROOM, Some(16)).await.unwrap();
    assert_eq!(next_id(&mut d).await, 17);
    let joined = d.join(ROOM, Some(3)).await.unwrap();
    assert_eq!((joined.from, joined.position), (17, 26));
    assert_eq!(drain_ids(&mut d).await, (18..=26).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_rejoin_before_anything_was_given_resumes_from_since() {
    // Socket.IO's `general` is followed from connect; `join_room {since}` resumes it.
    let f = hub(4, 16).await;
    store_quietly(&f.hub, ROOM, 6).await;
    let mut c = connect(&f.hub, 1);
    c.join(ROOM, None).await.unwrap();
    let joined = c.join(ROOM, Some(2)).await.unwrap();
    assert_eq!((joined.from, joined.position, joined.reset), (2, 6, None));
    assert_eq!(drain_ids(&mut c).await, [3, 4, 5, 6]);
    // Now that 3..6 were given, it never goes back.
    let joined = c.join(ROOM, Some(0)).await.unwrap();
    assert_eq!(joined.from, 6);
    assert_eq!(drain_ids(&mut c).await, Vec::<i64>::new());
}

/// Every connection counts its user online, whatever it follows; following the
/// online room (the directory page) hears who comes and goes, and does not count
/// twice. A user with two connections goes offline with the last.
#[tokio::test]
async fn every_connection_counts_its_user_online() {
    let fixture = hub(8, 16).await;
    let mut page = connect(&fixture.hub, 1);
    let joined = page.join(message::ONLINE_ROOM, None).await.unwrap();
    assert_eq!(joined.presence.count, 1, "the page's own user");
    let first = connect(&fixture.hub, 2);
    let second = connect(&fixture.hub, 2);
    assert_eq!(fixture.hub.presence_count(message::ONLINE_ROOM), 2);
    match page.try_next() {
        Some(Next::Presence(change)) => {
            assert_eq!((change.kind, change.user.id), ("user_joined", 2));
        }
        other => panic!("expected user 2 online, got {other:?}"),
    }
    assert!(page.try_next().is_none(), "a second tab is no news");
    drop(first);
    assert!(page.try_next().is_none(), "still online in the other tab");
    drop(second);
    match page.try_next() {
        Some(Next::Presence(change)) => {
            assert_eq!((change.kind, change.user.id), ("user_left", 2));
        }
        other => panic!("expected user 2 offline, got {other:?}"),
    }
    assert_eq!(fixture.hub.presence_count(message::ONLINE_ROOM), 1);
    // Nobody writes to it.
    let refused = page.send(message::ONLINE_ROOM, "hi", None, None).await;
    assert_eq!(refused.unwrap_err().code(), "forbidden");
    drop(page);
    assert_eq!(fixture.hub.presence_count(message::ONLINE_ROOM), 0);
}

/// A re-join of the online room lists as many members as the first join did (the
/// directory page marks the rows of those it lists).
#[tokio::test]
async fn a_rejoin_of_the_online_room_lists_its_whole_page() {
    let fixture = hub(8, 16).await;
    let mut page = connect(&fixture.hub, 1);
    // One address each: the hub caps connections per address.
    let others: Vec<Connection> = (2..=260)
        .map(|id| {
            let ip = std::net::IpAddr::from([10, 0, (id / 256) as u8, (id % 256) as u8]);
            let credential = crate::auth::Credential::Token { id };
            fixture.hub.connect(user(id), credential, ip).unwrap()
        })
        .collect();
    let first = page.join(message::ONLINE_ROOM, None).await.unwrap();
    assert_eq!(
        (first.presence.count, first.presence.users.len()),
        (260, 260)
    );
    let again = page.join(message::ONLINE_ROOM, None).await.unwrap();
    assert_eq!(again.presence.users.len(), 260);
    drop(others);
}
