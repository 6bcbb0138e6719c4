//! The tokio networking layer shared by the name server, the broker and the
//! client: RocketMQ remoting connections, full duplex.
//!
//! Layout:
//! - [`connection`]: [`Connection`] owns a socket and its buffers and reads
//!   and writes whole frames ([`mq_protocol::RemotingCommand`]), checking the
//!   length prefix against the frame limit before allocating for a frame.
//! - [`channel`]: the driver of one connection, the same on both ends. It
//!   reads frames in one task and writes in another; each request is first
//!   polled in the read loop through a [`RequestHandler`] and moves to a
//!   task of its own only if it does not finish there, and each response is
//!   matched by opaque to the [`Channel::invoke`] awaiting it. A [`Channel`]
//!   is the cloneable handle on a connection: peer address, id, `invoke`,
//!   `oneway`, `close`, `closed`.
//! - [`server`]: [`serve`] accepts connections from an already-bound
//!   listener until a shutdown future completes, then drains them; it holds
//!   at most [`ServerConfig::max_connections`] and refuses more at once.
//! - [`deadline`]: the read limits of server connections (idle time, time
//!   to complete a started frame).
//! - [`fdlimit`]: raising the open-file limit at server start.
//! - [`client`]: [`RemotingClient`] keeps one connection per address,
//!   reconnects with backoff, and hands requests that servers send back to
//!   its own [`RequestHandler`].
//! - [`error`]: the typed [`RemotingError`].
//!
//! Data flow of a request to a server: `RemotingClient::invoke` → the
//! channel assigns an opaque and parks a waiter → writer task → socket →
//! server reader task, which runs the handler (a task of its own only when
//! it has to wait) → writer task, one write for the answers of one read →
//! client reader task → waiter. The broker's call-backs into clients take the same path the other
//! way round, over the same connection.

pub mod channel;
pub mod client;
pub mod connection;
pub mod deadline;
pub mod error;
pub mod fdlimit;
pub mod server;
pub mod signal;

pub use channel::{
    not_supported, Channel, NotSupportedHandler, RequestHandler,
    DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
};
pub use client::{ClientConfig, RemotingClient};
pub use connection::{Connection, FrameReader, FrameWriter};
pub use deadline::{ReadLimit, ReadLimits};
pub use error::{check_success, HandlerError, RemotingError};
pub use fdlimit::raise_fd_limit;
pub use server::{
    serve, serve_with, ServerConfig, DEFAULT_BACKLOG, DEFAULT_FRAME_READ_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, MAX_CONNECTIONS,
};
pub use signal::shutdown_signal;

/// Re-exported so handler implementations need not depend on `async-trait`
/// under another version.
pub use async_trait::async_trait;
