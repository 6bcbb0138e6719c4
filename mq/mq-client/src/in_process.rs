//! A broker in the client's own process (RocketMQ 5's Local mode: the
//! proxy lives inside the broker). Requests to its address that it chooses
//! to serve skip the connection: no frame is encoded, written, read and
//! decoded, and no task hands the answer back.

use std::fmt;
use std::sync::Arc;

use mq_protocol::RemotingCommand;

/// What the in-process broker serves directly.
#[async_trait::async_trait]
pub trait InProcessBroker: Send + Sync + 'static {
    /// The answer to `request`, or the request back (`Err`) when it has to
    /// travel over the connection like any other (requests whose answer
    /// depends on the connection, such as heartbeats). Requests served here
    /// come from code in the broker's own process, which has checked its
    /// callers already: they are not signed and not checked against ACL.
    async fn serve(&self, request: RemotingCommand) -> Result<RemotingCommand, RemotingCommand>;
}

/// The address the broker registers with the name servers and its
/// in-process server.
#[derive(Clone)]
pub struct InProcess {
    pub addr: String,
    pub broker: Arc<dyn InProcessBroker>,
}

impl InProcess {
    pub fn new(addr: impl Into<String>, broker: Arc<dyn InProcessBroker>) -> Self {
        InProcess {
            addr: addr.into(),
            broker,
        }
    }
}

impl fmt::Debug for InProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcess")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
