//! The published schema holds every message kind, and refuses what is not a message.

use super::*;
use crate::core::testing::core_with;
use crate::events::{Event, ExecutionId, Priority, TaskStatus};

#[test]
fn every_message_kind_matches_the_published_schema() {
    let schema = schema();
    let client = jsonschema::validator_for(&schema["client"]).unwrap();
    let server = jsonschema::validator_for(&schema["server"]).unwrap();
    let id = ExecutionId::new();
    let client_messages = vec![
        ClientMessage::Hello {
            protocol: PROTOCOL.into(),
            client: "console".into(),
            events: true,
        },
        ClientMessage::Relay {
            via: "ssh".into(),
            peer: Some("10.0.0.1:5555".into()),
        },
        ClientMessage::Request {
            id: 1,
            command: Request::Submit {
                prompt: "p".into(),
                priority: Priority::Low,
                system: None,
                backend: Some("mock".into()),
                model: None,
                tools: Some("none".into()),
                follow: true,
            },
        },
        ClientMessage::Request {
            id: 2,
            command: Request::Undo { seq: None },
        },
    ];
    for m in client_messages {
        let value = serde_json::to_value(&m).unwrap();
        assert!(client.is_valid(&value), "{value}");
    }
    let (core, _ws) = core_with(|_| {});
    let server_messages = vec![
        ServerMessage::Live,
        ServerMessage::Resync {
            reason: "lagged".into(),
            missed: 3,
        },
        ServerMessage::Event {
            event: Event::TaskState {
                id,
                status: TaskStatus::Failed {
                    error: "e".into(),
                    kind: "k".into(),
                    not_retried: None,
                },
                attempt: 1,
                at: chrono::Utc::now(),
            },
        },
        ServerMessage::Event {
            event: Event::LinkChanged {
                link: core.link_status(),
                switched: true,
                at: chrono::Utc::now(),
            },
        },
        ServerMessage::Response {
            id: 1,
            ok: Some(Reply::Submitted { id }),
            error: None,
        },
        ServerMessage::Closing { reason: "r".into() },
    ];
    for m in server_messages {
        let value = serde_json::to_value(&m).unwrap();
        assert!(server.is_valid(&value), "{value}");
    }
    // And it refuses what is not a message.
    assert!(!client.is_valid(&serde_json::json!({"type": "request", "id": 1})));
}
