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

/// Default cap on open connections. Each costs a file descriptor and its
/// buffers; past the cap the server stops accepting until one closes, so the
/// process never dies of descriptor exhaustion. Brokers see one connection
/// per client process, so this is far above what a deployment needs.
pub const MAX_CONNECTIONS: usize = 10_000;

/// After an accept error (e.g. out of descriptors) wait this long before
/// accepting again instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Limits of a server.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    /// Frames whose length prefix is larger close their connection.
    pub max_frame_len: usize,
    /// Open connections at most; see [`MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// Requests of one connection handled at once; more are answered
    /// SYSTEM_BUSY.
    pub max_in_flight_per_connection: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_connections: MAX_CONNECTIONS,
            max_in_flight_per_connection: DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
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
pub async fn serve_with(
    listener: TcpListener,
    handler: Arc<dyn RequestHandler>,
    config: ServerConfig,
    shutdown: impl Future,
) {
    let local = listener.local_addr().ok();
    let drive = DriveConfig {
        max_frame_len: config.max_frame_len,
        max_in_flight: config.max_in_flight_per_connection.max(1),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => permit.expect("the connection semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, peer)) => {
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
