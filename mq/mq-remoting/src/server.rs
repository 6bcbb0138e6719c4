//! The accept loop shared by the name server and the broker.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mq_protocol::DEFAULT_MAX_FRAME_LEN;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::channel::{
    spawn_connection, DriveConfig, RequestHandler, DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
};
use crate::deadline::ReadLimits;
use crate::fdlimit::{connections_within, raise_fd_limit};

/// Default cap on open connections (`serverMaxConnections`). Brokers see one
/// connection per client process, so this is far above what a deployment
/// needs; it only stops a flood. The server also stays below the process's
/// open-file limit.
pub const MAX_CONNECTIONS: usize = 65_536;

/// Default `serverChannelMaxIdleTimeSeconds`, RocketMQ's: a connection that
/// completes no frame for this long is closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Default `serverFrameReadTimeoutMillis`: a frame whose first byte arrived
/// must be complete within this long.
pub const DEFAULT_FRAME_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Default `serverSocketBacklog`, RocketMQ's. Listeners bound through the
/// standard library get 128, which a burst of reconnecting clients (or a
/// scheduling hiccup during one) overflows, costing each dropped connect a
/// one-second SYN retransmission.
pub const DEFAULT_BACKLOG: u32 = 1024;

/// After an accept error (e.g. out of descriptors) wait this long before
/// accepting again instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Limits of a server.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    /// Frames whose length prefix is larger close their connection.
    pub max_frame_len: usize,
    /// Open connections at most; past it new ones are closed at once (and
    /// the refusal logged once per burst). See [`MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// Requests of one connection handled at once; more are answered
    /// SYSTEM_BUSY.
    pub max_in_flight_per_connection: usize,
    /// A connection that completes no frame for this long, with no request
    /// of it in flight, is closed; `None` never. See [`DEFAULT_IDLE_TIMEOUT`].
    pub idle_timeout: Option<Duration>,
    /// A frame whose first byte arrived must be complete within this long or
    /// its connection is closed; `None` no bound. See
    /// [`DEFAULT_FRAME_READ_TIMEOUT`].
    pub frame_read_timeout: Option<Duration>,
    /// Connections the kernel queues until they are accepted
    /// (`serverSocketBacklog`, RocketMQ's 1024; the system caps it at
    /// `net.core.somaxconn`). Applied to the listener when serving starts,
    /// whatever it was bound with.
    pub backlog: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_connections: MAX_CONNECTIONS,
            max_in_flight_per_connection: DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            frame_read_timeout: Some(DEFAULT_FRAME_READ_TIMEOUT),
            backlog: DEFAULT_BACKLOG,
        }
    }
}

impl ServerConfig {
    /// The limits from RocketMQ-style keys: `serverChannelMaxIdleTimeSeconds`
    /// and `serverFrameReadTimeoutMillis`, where 0 means no limit (as a zero
    /// idle time disables Netty's idle handler).
    pub fn with_timeouts(self, idle_seconds: u64, frame_millis: u64) -> Self {
        ServerConfig {
            idle_timeout: (idle_seconds > 0).then(|| Duration::from_secs(idle_seconds)),
            frame_read_timeout: (frame_millis > 0).then(|| Duration::from_millis(frame_millis)),
            ..self
        }
    }
}

/// Serves connections from `listener` with `handler` until `shutdown`
/// completes, with the default [`ServerConfig`].
pub async fn serve(listener: TcpListener, handler: Arc<dyn RequestHandler>, shutdown: impl Future) {
    serve_with(listener, handler, ServerConfig::default(), shutdown).await;
}

/// Serves connections from `listener` until `shutdown` completes; then stops
/// accepting, lets every connection finish the requests it is handling and
/// send their responses, closes the connections and returns.
///
/// Raises the process's open-file limit first (see [`raise_fd_limit`]).
pub async fn serve_with(
    listener: TcpListener,
    handler: Arc<dyn RequestHandler>,
    config: ServerConfig,
    shutdown: impl Future,
) {
    let local = listener.local_addr().ok();
    set_backlog(&listener, config.backlog);
    let drive = DriveConfig {
        max_frame_len: config.max_frame_len,
        max_in_flight: config.max_in_flight_per_connection.max(1),
        read_limits: ReadLimits {
            idle: config.idle_timeout,
            frame: config.frame_read_timeout,
        },
    };
    let max_connections = effective_max_connections(config.max_connections);
    let (stop_tx, stop_rx) = watch::channel(false);
    let limit = Arc::new(Semaphore::new(max_connections));
    let mut refusals = Refusals::default();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        // Accept always, even when full: a connection left in the backlog
        // would wait unanswered, while a refused one learns at once.
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    refusals.refused(max_connections);
                    drop(stream);
                    continue;
                };
                refusals.accepted();
                match spawn_connection(stream, handler.clone(), drive, Some(stop_rx.clone())) {
                    Ok((channel, task)) => {
                        debug!(%peer, channel = channel.id(), "connection accepted");
                        connections.spawn(async move {
                            let _ = task.await;
                            drop(permit);
                        });
                    }
                    Err(error) => debug!(%peer, %error, "connection lost while being set up"),
                }
            }
            Err(error) => {
                warn!(%error, "accept failed");
                tokio::select! {
                    _ = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                    _ = &mut shutdown => break,
                }
            }
        }
    }
    drop(listener);
    info!(addr = ?local, connections = connections.len(), "shutting down: finishing requests in flight");
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
    info!(addr = ?local, "server stopped");
}

/// Sets the accept queue length of an already listening socket: `listen`
/// again only updates it (Linux and the BSDs).
#[cfg(unix)]
fn set_backlog(listener: &TcpListener, backlog: u32) {
    use std::os::fd::AsRawFd;
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    // SAFETY: the descriptor is the listener's own and stays open for the
    // duration of the call.
    if unsafe { libc::listen(listener.as_raw_fd(), backlog) } != 0 {
        warn!(error = %std::io::Error::last_os_error(), backlog, "cannot set the listen backlog");
    }
}

#[cfg(not(unix))]
fn set_backlog(_listener: &TcpListener, _backlog: u32) {}

/// `configured`, lowered to what the open-file limit (raised first) allows.
fn effective_max_connections(configured: usize) -> usize {
    let configured = configured.max(1);
    let Some(fd_limit) = raise_fd_limit() else {
        return configured;
    };
    let within = connections_within(fd_limit);
    if within < configured {
        info!(
            configured,
            allowed = within,
            fd_limit,
            "serverMaxConnections lowered to stay within the open-file limit (RLIMIT_NOFILE)"
        );
        within
    } else {
        configured
    }
}

/// Logs refused connections once per burst: when the first is refused, and
/// how many were when connections are accepted again.
#[derive(Debug, Default)]
struct Refusals {
    count: u64,
}

impl Refusals {
    fn refused(&mut self, max_connections: usize) {
        if self.count == 0 {
            warn!(
                max_connections,
                "refusing new connections: serverMaxConnections reached"
            );
        }
        self.count += 1;
    }

    fn accepted(&mut self) {
        if self.count > 0 {
            info!(refused = self.count, "accepting connections again");
            self.count = 0;
        }
    }
}
