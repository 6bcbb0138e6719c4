//! The HTTP/1.1 server of every service: `axum::serve` with a header read
//! timeout, which `axum::serve` cannot be given. It accepts connections
//! until the shutdown future completes, then stops accepting and lets the
//! requests in flight finish, as `axum::serve`'s graceful shutdown does.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Serves `router` on `listener` until `shutdown` completes; a connection
/// whose request head takes longer than `header_read_timeout` is closed.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            // A client that goes away or times out is no error of ours.
            if let Err(error) = connection.await {
                tracing::debug!(%error, "HTTP connection ended");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

/// After a failed accept: a connection that failed before it was accepted
/// is skipped; anything else (out of file descriptors) is logged and
/// retried after a pause rather than spinning, as `axum::serve` does.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting an HTTP connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
