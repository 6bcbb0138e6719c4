//! The 5.x clients the proxy knows: each client id's telemetry stream (the
//! way to send it commands), its last settings, and the topics it
//! publishes, so a check-back for a topic finds a producer of it.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use tokio::sync::mpsc;
use tracing::debug;

use crate::pb::{settings::PubSub, ClientType, Settings, TelemetryCommand};

/// What the proxy sends down a telemetry stream.
pub(crate) type Outbox = mpsc::Sender<Result<TelemetryCommand, tonic::Status>>;

/// Commands a telemetry stream holds before its writer waits.
pub(crate) const OUTBOX_LEN: usize = 64;

struct Session {
    /// Tells one stream of a client id from a later one.
    generation: u64,
    outbox: Outbox,
    settings: Option<Settings>,
    /// Topics of the settings plus those of its transactional sends.
    topics: HashSet<String>,
}

#[derive(Default)]
pub(crate) struct Sessions {
    inner: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_generation: u64,
    by_client: HashMap<String, Session>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new telemetry stream of `client_id`; returns its
    /// generation for [`Sessions::close`].
    pub fn open(&self, client_id: &str, outbox: Outbox) -> u64 {
        let mut state = self.lock();
        state.next_generation += 1;
        let generation = state.next_generation;
        let topics = state
            .by_client
            .remove(client_id)
            .map(|old| old.topics)
            .unwrap_or_default();
        state.by_client.insert(
            client_id.to_owned(),
            Session {
                generation,
                outbox,
                settings: None,
                topics,
            },
        );
        generation
    }

    /// Forgets the stream of `generation` (a newer one stays).
    pub fn close(&self, client_id: &str, generation: u64) {
        let mut state = self.lock();
        if state
            .by_client
            .get(client_id)
            .is_some_and(|s| s.generation == generation)
        {
            state.by_client.remove(client_id);
            debug!(client_id, "telemetry session closed");
        }
    }

    /// Forgets `client_id` (NotifyClientTermination).
    pub fn terminate(&self, client_id: &str) {
        self.lock().by_client.remove(client_id);
    }

    pub fn close_all(&self) {
        self.lock().by_client.clear();
    }

    /// Keeps the settings a client reported.
    pub fn set_settings(&self, client_id: &str, settings: Settings) {
        let mut state = self.lock();
        if let Some(session) = state.by_client.get_mut(client_id) {
            if let Some(PubSub::Publishing(publishing)) = &settings.pub_sub {
                session
                    .topics
                    .extend(publishing.topics.iter().map(|t| t.name.clone()));
            }
            session.settings = Some(settings);
        }
    }

    /// Whether `client_id` said it consumes in FIFO order.
    pub fn is_fifo_consumer(&self, client_id: &str) -> bool {
        self.lock()
            .by_client
            .get(client_id)
            .and_then(|s| s.settings.as_ref())
            .and_then(|s| match &s.pub_sub {
                Some(PubSub::Subscription(sub)) => sub.fifo,
                _ => None,
            })
            .unwrap_or(false)
    }

    /// Notes that `client_id` publishes `topic`.
    pub fn add_topic(&self, client_id: &str, topic: &str) {
        if let Some(session) = self.lock().by_client.get_mut(client_id) {
            session.topics.insert(topic.to_owned());
        }
    }

    /// The outboxes of producers publishing `topic`, most recent first.
    pub fn producers_of(&self, topic: &str) -> Vec<Outbox> {
        let state = self.lock();
        let mut found: Vec<(u64, Outbox)> = state
            .by_client
            .values()
            .filter(|s| s.topics.contains(topic))
            .filter(|s| {
                s.settings.as_ref().is_none_or(|settings| {
                    settings.client_type() == ClientType::Producer || settings.client_type.is_none()
                })
            })
            .map(|s| (s.generation, s.outbox.clone()))
            .collect();
        found.sort_by_key(|s| std::cmp::Reverse(s.0));
        found.into_iter().map(|(_, outbox)| outbox).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{Publishing, Resource};

    fn publishing(topics: &[&str]) -> Settings {
        Settings {
            client_type: Some(ClientType::Producer as i32),
            pub_sub: Some(PubSub::Publishing(Publishing {
                topics: topics
                    .iter()
                    .map(|t| Resource {
                        resource_namespace: String::new(),
                        name: (*t).into(),
                    })
                    .collect(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn producers_are_found_by_topic_and_a_newer_stream_wins() {
        let sessions = Sessions::default();
        let (tx1, _rx1) = mpsc::channel(1);
        let (tx2, _rx2) = mpsc::channel(1);
        let first = sessions.open("c1", tx1);
        sessions.set_settings("c1", publishing(&["T1"]));
        assert_eq!(sessions.producers_of("T1").len(), 1);
        assert!(sessions.producers_of("T2").is_empty());
        sessions.add_topic("c1", "T2");
        assert_eq!(sessions.producers_of("T2").len(), 1);
        // A reconnect keeps the topics; the old stream's close is ignored.
        sessions.open("c1", tx2);
        sessions.close("c1", first);
        assert_eq!(sessions.producers_of("T1").len(), 1);
        sessions.terminate("c1");
        assert!(sessions.producers_of("T1").is_empty());
    }
}
