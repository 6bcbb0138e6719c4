//! `mq-console`: the web console of the message queue, rocketmq-dashboard's
//! pages rendered by the server.
//!
//! Layout:
//! - [`config`]: [`ConsoleConfig`] from the dashboard's
//!   `application.properties` keys and `users.properties` accounts.
//! - [`session`]: sessions, CSRF tokens, constant-time comparisons.
//! - [`i18n`]: English and Chinese texts, checked complete at compile time.
//! - `web`: the request plumbing every page shares: the per-request
//!   [`web::Ctx`] (viewer, language, name server), checked forms, the error
//!   type, and the middleware (sessions, log-in, security headers, limits).
//! - `layout`: the page frame (navigation, name server switch, language
//!   switch, flash messages) and small rendering helpers.
//! - `pages/`: one file per area (log-in, cluster and brokers, topics,
//!   consumers, producers, messages), each a set of handlers that call the
//!   client crate's [`mq_client::AdminClient`] (the same calls `mqadmin`
//!   makes) and render with maud, which HTML-escapes every value.
//! - `cluster`: the admin client and test producer of each name server.
//! - [`shop`]: the shop services' operator API (orders, ledgers, payments,
//!   logs, points) for the order, saga timeline and invariant pages.
//! - [`audit`]: the durable log of operator actions, written by the
//!   `web` layer after every form that may change something.
//! - [`series`]: the dashboard's time series (messages in and out per
//!   broker and topic), sampled by a background task of [`serve`].
//!
//! Data flow: a request passes the limits (in-flight bound, body size,
//! timeout), the session layer (which finds or creates the session and
//! sends to the log-in page when one is needed), then its handler; a form
//! handler checks the CSRF token and, for a change, that the operator is an
//! admin, parses every field (names through [`mq_protocol::name`]), calls
//! the cluster, leaves the outcome as a flash message and redirects back
//! (POST/redirect/GET). The console only talks to name servers it was
//! configured with and to brokers those name servers list: no address from
//! a request is ever dialled.
//!
//! For embedding (the all-in-one shop): build a [`ConsoleConfig`], bind a
//! listener and call [`serve`]:
//!
//! ```no_run
//! # async fn shop(namesrv: String, shutdown: impl std::future::Future<Output = ()> + Send + 'static)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use mq_console::{ConsoleConfig, User, Users};
//! let config = ConsoleConfig::new(vec![namesrv])
//!     // Operators (admin = may change the cluster), or Users::File(path)
//!     // for a users.properties read again at each log-in.
//!     .with_users(Users::Fixed(vec![User::new("operator", "generated-secret", true)]))
//!     // The admin account the console signs with when ACL is on.
//!     .with_credentials(mq_client::Credentials::new("shop-operator", "its-secret"));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! mq_console::serve(listener, config, shutdown).await?;
//! # Ok(()) }
//! ```

pub mod audit;
pub mod config;
pub mod i18n;
pub mod series;
pub mod session;
pub mod shop;

mod cluster;
mod layout;
mod pages;
mod time;
mod web;

use std::future::Future;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

pub use config::{ConfigError, ConsoleConfig, User, Users};
pub use shop::ShopConfig;

/// A connection whose request head is not complete by then is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the console on `listener` until `shutdown` completes, then lets
/// the requests in flight finish and closes its cluster clients. Fails at
/// once when the configuration does not pass [`ConsoleConfig::check`]
/// (no name server; log-in required but no account).
pub async fn serve(
    listener: TcpListener,
    config: ConsoleConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ConfigError> {
    config.check()?;
    let app = web::App::new(config)?;
    let router = web::router(app.clone());
    let (stop_sampler, sampler_stopped) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(series::run_sampler(
        app.clone(),
        app.config.sample_interval,
        sampler_stopped,
    ));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
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
            if let Err(error) = connection.await {
                tracing::debug!(%error, "console connection ended");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
    let _ = stop_sampler.send(true);
    let _ = sampler.await;
    app.cluster.shutdown().await;
    Ok(())
}

/// A failed accept: skip a connection that failed before it was accepted;
/// anything else (out of file descriptors) is logged and retried after a
/// pause instead of spinning.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a console connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
