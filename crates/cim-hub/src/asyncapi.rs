//! The AsyncAPI 3.0 document of the hub's NATS side: the event subjects it
//! reads and appends to (`<namespace>.events.<type>.<id>`, headers
//! included) and its request/reply endpoints. Built from the same constants
//! the service and its clients use (`cim_hub_api`'s endpoints, the store's
//! subject names), so it cannot name a subject the code does not serve.

use serde_json::{Value, json};

use crate::hub::Hub;

/// One request/reply endpoint: its subject, name and summary.
fn endpoints() -> Vec<(String, &'static str, &'static str)> {
    use cim_hub_api as api;
    vec![
        (api::TOKEN_CREATE.subject(), api::TOKEN_CREATE.name(), "Create an API token (shown once)"),
        (api::TOKEN_LIST.subject(), api::TOKEN_LIST.name(), "List API tokens"),
        (api::TOKEN_REVOKE.subject(), api::TOKEN_REVOKE.name(), "Revoke an API token"),
        (api::WEBHOOK_CREATE.subject(), api::WEBHOOK_CREATE.name(), "Subscribe a URL to events"),
        (api::WEBHOOK_LIST.subject(), api::WEBHOOK_LIST.name(), "List webhook subscriptions"),
        (api::WEBHOOK_DELETE.subject(), api::WEBHOOK_DELETE.name(), "Delete a webhook subscription"),
        (api::WEBHOOK_RESUME.subject(), api::WEBHOOK_RESUME.name(), "Resume a paused subscription"),
        (api::DELIVERIES.subject(), api::DELIVERIES.name(), "Query the delivery log"),
        (api::INBOUND_CREATE.subject(), api::INBOUND_CREATE.name(), "Create an inbound webhook endpoint"),
        (api::INBOUND_LIST.subject(), api::INBOUND_LIST.name(), "List inbound webhook endpoints"),
        (api::INBOUND_DELETE.subject(), api::INBOUND_DELETE.name(), "Delete an inbound webhook endpoint"),
    ]
}

/// The document for a store namespace (`cim` by default).
pub fn document_for(events_prefix: &str) -> Value {
    let mut channels = serde_json::Map::new();
    let mut operations = serde_json::Map::new();
    channels.insert(
        "events".to_owned(),
        json!({
            "address": format!("{events_prefix}.{{aggregate_type}}.{{aggregate_id}}"),
            "title": "The event stream: one subject per aggregate",
            "description": "Each message is one event: its canonical DAG-CBOR envelope (docs/spec/event-envelope.md), \
                            stored in JetStream (docs/spec/jetstream.md). The hub reads it (feed, webhooks) and appends \
                            to aggregates of types no other component owns.",
            "parameters": {
                "aggregate_type": {"description": "1-64 of A-Z a-z 0-9 _ -"},
                "aggregate_id": {"description": "1-128 of A-Z a-z 0-9 _ - : @ ="}
            },
            "messages": {"event": {"$ref": "#/components/messages/event"}}
        }),
    );
    operations.insert(
        "appendEvent".to_owned(),
        json!({"action": "send", "channel": {"$ref": "#/channels/events"}, "summary": "Append (JetStream publish with Nats-Expected-Last-Subject-Sequence)"}),
    );
    operations.insert(
        "readEvents".to_owned(),
        json!({"action": "receive", "channel": {"$ref": "#/channels/events"}, "summary": "Read and follow (ordered consumers)"}),
    );
    for (subject, name, summary) in endpoints() {
        let key = name.replace('.', "-");
        channels.insert(
            key.clone(),
            json!({
                "address": subject,
                "description": format!("{summary}: a NATS micro service endpoint of service `cim-hub` (docs/spec/subjects.md)"),
                "messages": {
                    "request": {"$ref": "#/components/messages/jsonRequest"},
                    "reply": {"$ref": "#/components/messages/jsonReply"}
                }
            }),
        );
        operations.insert(
            key.clone(),
            json!({
                "action": "receive",
                "channel": {"$ref": format!("#/channels/{key}")},
                "summary": summary,
                "messages": [{"$ref": format!("#/channels/{key}/messages/request")}],
                "reply": {"channel": {"$ref": format!("#/channels/{key}")}, "messages": [{"$ref": format!("#/channels/{key}/messages/reply")}]}
            }),
        );
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "CIM Integration Hub (NATS)",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The subjects the Integration Hub serves and the event subjects it reads and writes."
        },
        "defaultContentType": "application/json",
        "servers": {"nats": {"host": "127.0.0.1:4222", "protocol": "nats"}},
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {
                "event": {
                    "contentType": "application/vnd.ipld.dag-cbor",
                    "headers": {
                        "type": "object",
                        "properties": {
                            "Nats-Msg-Id": {"type": "string", "description": "The event's CID"},
                            "Cim-Caller": {"type": "string", "description": "Who appended it (operational metadata, outside the CID)"}
                        },
                        "required": ["Nats-Msg-Id"]
                    },
                    "payload": {"description": "The event envelope, canonical DAG-CBOR (format cim-event-v1)"}
                },
                "jsonRequest": {"payload": {"type": "object"}},
                "jsonReply": {
                    "payload": {"type": "object"},
                    "headers": {
                        "type": "object",
                        "properties": {
                            "Nats-Service-Error": {"type": "string"},
                            "Nats-Service-Error-Code": {"type": "string"}
                        }
                    }
                }
            }
        }
    })
}

/// The document for the hub's store.
pub fn document(hub: &Hub) -> Value {
    document_for(&hub.store().names().events_prefix)
}
