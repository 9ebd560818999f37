//! The wire shapes: the events' payloads as clients send them, and hub messages as
//! the Flask chat's `message` event.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::hub::Delivered;
use crate::hub::message::Message;
use crate::transport::encoded::{Encoded, SOCKETIO_PAYLOAD};

#[derive(Deserialize)]
pub(super) struct JoinData {
    pub(super) username: String,
}

#[derive(Deserialize)]
pub(super) struct MessageData {
    pub(super) message: String,
    pub(super) room: Option<String>,
    pub(super) client_id: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RoomData {
    pub(super) room: String,
    #[serde(default, deserialize_with = "position")]
    pub(super) since: Option<i64>,
}

/// A position as clients send it: a number, a numeric string, or nothing.
pub(super) fn position<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(|n| Some(n.max(0)))
            .ok_or_else(|| serde::de::Error::custom("a position is a message id")),
        Some(Value::String(s)) => crate::transport::parse_position(Some(&s))
            .map_err(|e| serde::de::Error::custom(e.to_string())),
        Some(_) => Err(serde::de::Error::custom("a position is a message id")),
    }
}

/// A hub message as the Flask chat's `message` event, with the log's fields beside:
/// `username` is the sender's nickname when it gave one, else its account name.
pub(super) fn flask_message(message: &Message) -> Value {
    let username = message
        .event
        .as_ref()
        .and_then(|e| e.get("nickname"))
        .and_then(Value::as_str)
        .unwrap_or(&message.user.name);
    json!({
        "username": username,
        "message": message.text,
        "timestamp": message.timestamp,
        "id": message.id,
        "room": message.room,
        "user": message.user,
        "ts": message.ts,
    })
}

/// [`flask_message`] as JSON text, made once per message for all its sockets (each
/// socket's emit then copies it instead of building and serialising it again).
pub(super) fn flask_payload(delivered: &Arc<Delivered>) -> Arc<RawValue> {
    static PAYLOADS: Encoded<Arc<RawValue>> = Encoded::new(SOCKETIO_PAYLOAD);
    PAYLOADS.get(delivered, |message| {
        RawValue::from_string(flask_message(message).to_string())
            .expect("a JSON value serialises to JSON")
            .into()
    })
}

pub(super) fn error_body(error: &ApiError) -> Value {
    json!({ "code": error.code(), "error": error.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::message::Author;
    use crate::transport::socketio::admission::ConnectAuth;

    fn message(event: Option<Value>) -> Message {
        Message {
            room: "general".into(),
            id: 7,
            user: Author {
                id: 3,
                name: "Ada".into(),
            },
            text: "hi".into(),
            ts: "2026-01-01T00:00:00.000Z".into(),
            timestamp: 1_767_225_600.0,
            client_id: None,
            event,
        }
    }

    #[test]
    fn messages_show_the_nickname_else_the_account_name() {
        let plain = flask_message(&message(None));
        assert_eq!(plain["username"], "Ada");
        assert_eq!(plain["message"], "hi");
        assert_eq!(plain["timestamp"], 1_767_225_600.0);
        assert_eq!(
            (plain["id"].as_i64(), plain["room"].as_str()),
            (Some(7), Some("general"))
        );
        let nick = flask_message(&message(Some(
            json!({ "type": "chat", "nickname": "ada99" }),
        )));
        assert_eq!(nick["username"], "ada99");
        assert_eq!(nick["user"]["name"], "Ada");
    }

    #[test]
    fn positions_are_numbers_numeric_strings_or_absent() {
        let since = |v: Value| serde_json::from_value::<RoomData>(v).map(|d| d.since);
        assert_eq!(since(json!({ "room": "a" })).unwrap(), None);
        assert_eq!(since(json!({ "room": "a", "since": null })).unwrap(), None);
        assert_eq!(
            since(json!({ "room": "a", "since": 12 })).unwrap(),
            Some(12)
        );
        assert_eq!(
            since(json!({ "room": "a", "since": "12" })).unwrap(),
            Some(12)
        );
        assert_eq!(since(json!({ "room": "a", "since": -3 })).unwrap(), Some(0));
        assert!(since(json!({ "room": "a", "since": "x" })).is_err());
        assert!(since(json!({ "room": "a", "since": [1] })).is_err());
        let auth: ConnectAuth =
            serde_json::from_value(json!({ "token": "sb_x", "since": 4 })).unwrap();
        assert_eq!((auth.token.as_deref(), auth.since), (Some("sb_x"), Some(4)));
    }
}
