//! What a push consumer hands messages to.

use std::future::Future;
use std::sync::Arc;

use mq_protocol::MessageExt;
use tracing::warn;

/// The verdict on a batch of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeStatus {
    /// Done: the offset may move past them.
    Success,
    /// Try again later: concurrently consumed messages go back to the broker
    /// (`%RETRY%<group>`, with a growing delay); an ordered queue pauses and
    /// retries the same message locally.
    ReconsumeLater,
}

/// Consumes messages of any queue, many batches at once.
#[mq_remoting::async_trait]
pub trait MessageListener: Send + Sync + 'static {
    async fn consume(&self, msgs: &[MessageExt]) -> ConsumeStatus;
}

/// Consumes the messages of each queue one batch at a time, in queue order.
#[mq_remoting::async_trait]
pub trait OrderedMessageListener: Send + Sync + 'static {
    async fn consume(&self, msgs: &[MessageExt]) -> ConsumeStatus;
}

/// The listener of a push consumer.
#[derive(Clone)]
pub enum Listener {
    Concurrent(Arc<dyn MessageListener>),
    Ordered(Arc<dyn OrderedMessageListener>),
}

impl Listener {
    /// A concurrent listener from an async closure.
    pub fn concurrent<F, Fut>(f: F) -> Listener
    where
        F: Fn(Vec<MessageExt>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ConsumeStatus> + Send + 'static,
    {
        Listener::Concurrent(Arc::new(FnListener(f)))
    }

    /// An ordered listener from an async closure.
    pub fn ordered<F, Fut>(f: F) -> Listener
    where
        F: Fn(Vec<MessageExt>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ConsumeStatus> + Send + 'static,
    {
        Listener::Ordered(Arc::new(FnListener(f)))
    }

    pub fn is_ordered(&self) -> bool {
        matches!(self, Listener::Ordered(_))
    }

    pub(crate) async fn consume(&self, msgs: &[MessageExt]) -> ConsumeStatus {
        match self {
            Listener::Concurrent(l) => l.consume(msgs).await,
            Listener::Ordered(l) => l.consume(msgs).await,
        }
    }

    /// Calls the listener in a task of its own so that a panic counts as
    /// ReconsumeLater instead of losing the messages.
    pub(crate) async fn consume_guarded(&self, msgs: Vec<MessageExt>) -> ConsumeStatus {
        let listener = self.clone();
        tokio::spawn(async move { listener.consume(&msgs).await })
            .await
            .unwrap_or_else(|error| {
                warn!(%error, "listener panicked");
                ConsumeStatus::ReconsumeLater
            })
    }
}

struct FnListener<F>(F);

#[mq_remoting::async_trait]
impl<F, Fut> MessageListener for FnListener<F>
where
    F: Fn(Vec<MessageExt>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ConsumeStatus> + Send + 'static,
{
    async fn consume(&self, msgs: &[MessageExt]) -> ConsumeStatus {
        (self.0)(msgs.to_vec()).await
    }
}

#[mq_remoting::async_trait]
impl<F, Fut> OrderedMessageListener for FnListener<F>
where
    F: Fn(Vec<MessageExt>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ConsumeStatus> + Send + 'static,
{
    async fn consume(&self, msgs: &[MessageExt]) -> ConsumeStatus {
        (self.0)(msgs.to_vec()).await
    }
}
