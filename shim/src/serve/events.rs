//! Event publishing: `containerd.services.events.ttrpc.v1.Events/Forward`
//! on containerd's ttrpc socket (`TTRPC_ADDRESS`), through one bounded
//! queue drained by one task, so events leave in the order they were
//! queued. Queuing never waits (a full queue drops the event with a
//! warning), which is what lets a handler queue TaskStart before the
//! reaper can queue the matching TaskExit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::shim_async::{Client, EventsClient};
use containerd_shim_protos::topics;
use containerd_shim_protos::ttrpc;
use tokio::sync::mpsc;

/// Queue capacity (the Go shim's is 2048).
const QUEUE: usize = 2048;
/// Attempts per event before it is dropped.
const ATTEMPTS: u32 = 5;

/// One queued event.
struct Item {
    topic: &'static str,
    event: Any,
    at: Timestamp,
}

/// The sending side, shared by the handlers and the reaper.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Item>,
    pending: Arc<AtomicUsize>,
}

/// Something that goes out as an event: its topic and its protobuf type
/// name (the `Any` type URL). The name is a constant rather than
/// `MessageFull::descriptor()`: building the reflection descriptors costs
/// every shim a few hundred KB of heap.
pub trait Event: Message {
    const TOPIC: &'static str;
    const TYPE_URL: &'static str;
}

macro_rules! event {
    ($t:ty, $topic:ident, $name:literal) => {
        impl Event for $t {
            const TOPIC: &'static str = topics::$topic;
            const TYPE_URL: &'static str = concat!("containerd.events.", $name);
        }
    };
}

event!(TaskCreate, TASK_CREATE_EVENT_TOPIC, "TaskCreate");
event!(TaskStart, TASK_START_EVENT_TOPIC, "TaskStart");
event!(TaskExit, TASK_EXIT_EVENT_TOPIC, "TaskExit");
event!(TaskDelete, TASK_DELETE_EVENT_TOPIC, "TaskDelete");
event!(TaskExecAdded, TASK_EXEC_ADDED_EVENT_TOPIC, "TaskExecAdded");
event!(TaskOOM, TASK_OOM_EVENT_TOPIC, "TaskOOM");
event!(
    TaskExecStarted,
    TASK_EXEC_STARTED_EVENT_TOPIC,
    "TaskExecStarted"
);
event!(TaskPaused, TASK_PAUSED_EVENT_TOPIC, "TaskPaused");
event!(TaskResumed, TASK_RESUMED_EVENT_TOPIC, "TaskResumed");

impl Publisher {
    /// Starts the forwarding task on the current runtime. `address` is
    /// containerd's ttrpc socket (None: events are dropped).
    pub fn spawn(address: Option<String>, namespace: String) -> Publisher {
        let (tx, rx) = mpsc::channel(QUEUE);
        let pending = Arc::new(AtomicUsize::new(0));
        tokio::spawn(forward(rx, address, namespace, pending.clone()));
        Publisher { tx, pending }
    }

    /// Queues `event` without waiting.
    pub fn publish<E: Event>(&self, event: E) {
        let value = match event.write_to_bytes() {
            Ok(v) => v,
            Err(e) => {
                log::warn!("encode {} event: {e}", E::TOPIC);
                return;
            }
        };
        let any = Any {
            type_url: E::TYPE_URL.to_string(),
            value,
            ..Default::default()
        };
        let item = Item {
            topic: E::TOPIC,
            event: any,
            at: Timestamp::now(),
        };
        self.pending.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.tx.try_send(item) {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            log::warn!("drop {} event: {e}", E::TOPIC);
        }
    }

    /// Waits (at most `limit`) until every queued event was handled.
    pub async fn flush(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.pending.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn forward(
    mut rx: mpsc::Receiver<Item>,
    address: Option<String>,
    namespace: String,
    pending: Arc<AtomicUsize>,
) {
    let mut client: Option<EventsClient> = None;
    while let Some(item) = rx.recv().await {
        if let Some(address) = &address {
            let req = ForwardRequest {
                envelope: MessageField::some(Envelope {
                    timestamp: MessageField::some(item.at.clone()),
                    namespace: namespace.clone(),
                    topic: item.topic.to_string(),
                    event: MessageField::some(item.event.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let mut sent = false;
            for attempt in 1..=ATTEMPTS {
                if client.is_none() {
                    client = connect(address).await;
                }
                if let Some(c) = &client {
                    match c.forward(ttrpc::context::with_timeout(0), &req).await {
                        Ok(_) => {
                            sent = true;
                            break;
                        }
                        Err(e) => {
                            log::warn!("forward {} event (attempt {attempt}): {e}", item.topic);
                            // Reconnect next time: the connection may be gone.
                            client = None;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            if !sent {
                log::warn!("dropped {} event after {ATTEMPTS} attempts", item.topic);
            }
        }
        pending.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connect(address: &str) -> Option<EventsClient> {
    let addr = if address.contains("://") {
        address.to_string()
    } else {
        format!("unix://{address}")
    };
    match Client::connect(&addr).await {
        Ok(c) => Some(EventsClient::new(c)),
        Err(e) => {
            log::warn!("connect to containerd at {addr}: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::protobuf::MessageFull;

    fn check<E: Event + MessageFull>() {
        assert_eq!(E::TYPE_URL, E::descriptor().full_name());
    }

    #[test]
    fn event_names_are_the_protobuf_names() {
        check::<TaskCreate>();
        check::<TaskStart>();
        check::<TaskExit>();
        check::<TaskDelete>();
        check::<TaskExecAdded>();
        check::<TaskExecStarted>();
        check::<TaskOOM>();
        check::<TaskPaused>();
        check::<TaskResumed>();
    }
}
