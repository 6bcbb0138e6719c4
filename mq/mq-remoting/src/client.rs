//! The client side: one reused connection per server address.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mq_protocol::{RemotingCommand, DEFAULT_MAX_FRAME_LEN};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::channel::{
    spawn_connection, Channel, DriveConfig, NotSupportedHandler, RequestHandler,
    DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
};
use crate::error::RemotingError;

/// Settings of a [`RemotingClient`].
#[derive(Debug, Clone, Copy)]
pub struct ClientConfig {
    /// Longest wait for a TCP connect (RocketMQ's `connectTimeoutMillis`,
    /// 3 s), further limited by the caller's timeout.
    pub connect_timeout: Duration,
    pub max_frame_len: usize,
    /// Requests from servers handled at once on one connection.
    pub max_in_flight_per_connection: usize,
    /// Wait before reconnecting after the first failed connect; doubles with
    /// each further failure up to `max_backoff`, and resets on success.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(3),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_in_flight_per_connection: DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Sends requests to servers by address (`host:port`), one connection per
/// address, made on first use and made again after it fails. Cheap to
/// clone; clones share the connections. Dropping the last clone closes them.
///
/// Requests that servers send to the client on these connections
/// (CHECK_TRANSACTION_STATE, NOTIFY_CONSUMER_IDS_CHANGED, ...) go to the
/// handler given to [`RemotingClient::with_handler`].
#[derive(Clone)]
pub struct RemotingClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    config: ClientConfig,
    handler: Arc<dyn RequestHandler>,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
}

/// The connection to one address and its reconnect state.
#[derive(Default)]
struct Slot {
    channel: Option<Channel>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: String,
}

impl RemotingClient {
    /// A client that answers requests from servers REQUEST_CODE_NOT_SUPPORTED.
    pub fn new(config: ClientConfig) -> Self {
        Self::with_handler(config, Arc::new(NotSupportedHandler))
    }

    /// A client whose connections hand requests from servers to `handler`.
    pub fn with_handler(config: ClientConfig, handler: Arc<dyn RequestHandler>) -> Self {
        RemotingClient {
            inner: Arc::new(ClientInner {
                config,
                handler,
                slots: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Sends `request` to `addr` and waits for the response; `timeout`
    /// covers connecting too. The response is returned whatever its code
    /// (see [`check_success`](crate::check_success)).
    pub async fn invoke(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, RemotingError> {
        let code = request.code;
        let deadline = Instant::now() + timeout;
        let channel = self.connect(addr, deadline).await?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        channel
            .invoke(request, remaining)
            .await
            .map_err(|error| match error {
                RemotingError::Timeout { .. } => RemotingError::Timeout {
                    addr: addr.to_owned(),
                    code,
                    timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                },
                other => other,
            })
    }

    /// Sends `request` to `addr` as a oneway request.
    pub async fn invoke_oneway(
        &self,
        addr: &str,
        request: RemotingCommand,
    ) -> Result<(), RemotingError> {
        let deadline = Instant::now() + self.inner.config.connect_timeout;
        self.connect(addr, deadline).await?.oneway(request).await
    }

    /// The live connection to `addr`, connecting if there is none.
    pub async fn channel(&self, addr: &str, timeout: Duration) -> Result<Channel, RemotingError> {
        self.connect(addr, Instant::now() + timeout).await
    }

    /// Closes the connection to `addr`, if any; the next call reconnects.
    pub fn close(&self, addr: &str) {
        let slot = self.lock_slots().get(addr).cloned();
        if let Some(slot) = slot {
            if let Ok(slot) = slot.try_lock() {
                if let Some(channel) = &slot.channel {
                    channel.close();
                }
            }
        }
    }

    fn lock_slots(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<Slot>>>> {
        self.inner
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn connect(&self, addr: &str, deadline: Instant) -> Result<Channel, RemotingError> {
        let slot = self
            .lock_slots()
            .entry(addr.to_owned())
            .or_default()
            .clone();
        let timed_out = || RemotingError::ConnectFailed {
            addr: addr.to_owned(),
            reason: "timed out waiting for a connection".into(),
        };
        // One connect per address at a time; others wait for its outcome.
        let mut slot = tokio::time::timeout_at(deadline, slot.lock())
            .await
            .map_err(|_| timed_out())?;
        if let Some(channel) = &slot.channel {
            if !channel.is_closed() {
                return Ok(channel.clone());
            }
            slot.channel = None;
        }
        if let Some(retry_at) = slot.retry_at {
            if retry_at > deadline {
                return Err(RemotingError::ConnectFailed {
                    addr: addr.to_owned(),
                    reason: format!(
                        "backing off after {} failed attempt(s), last: {}",
                        slot.failures, slot.last_error
                    ),
                });
            }
            tokio::time::sleep_until(retry_at).await;
        }
        let config = &self.inner.config;
        let budget = config
            .connect_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let outcome = match tokio::time::timeout(budget, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let drive = DriveConfig {
                    max_frame_len: config.max_frame_len,
                    max_in_flight: config.max_in_flight_per_connection.max(1),
                    read_limits: Default::default(),
                };
                spawn_connection(stream, self.inner.handler.clone(), drive, None)
                    .map(|(channel, _task)| channel)
                    .map_err(|error| error.to_string())
            }
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no connection within {} ms", budget.as_millis())),
        };
        match outcome {
            Ok(channel) => {
                if slot.failures > 0 {
                    info!(addr, failures = slot.failures, "reconnected");
                }
                debug!(addr, channel = channel.id(), "connected");
                slot.failures = 0;
                slot.retry_at = None;
                slot.channel = Some(channel.clone());
                Ok(channel)
            }
            Err(reason) => {
                slot.failures = slot.failures.saturating_add(1);
                let exponent = (slot.failures - 1).min(16);
                let backoff = config
                    .initial_backoff
                    .saturating_mul(1 << exponent)
                    .min(config.max_backoff);
                slot.retry_at = Some(Instant::now() + backoff);
                slot.last_error.clone_from(&reason);
                Err(RemotingError::ConnectFailed {
                    addr: addr.to_owned(),
                    reason,
                })
            }
        }
    }
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        let slots = self
            .slots
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for slot in slots.values() {
            if let Ok(slot) = slot.try_lock() {
                if let Some(channel) = &slot.channel {
                    channel.close();
                }
            }
        }
    }
}
