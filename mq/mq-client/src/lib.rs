//! A RocketMQ 4.x client for our broker (and any other 4.x broker).
//!
//! Layout:
//! - [`config`]: [`ClientConfig`], settings shared by every producer and
//!   consumer of one client id.
//! - [`credentials`]: [`Credentials`], the account every request is signed
//!   with when set (ACL), and how RocketMQ's tools load it.
//! - `instance`: the client instance those share (RocketMQ's
//!   `MQClientInstance`): one [`mq_remoting::RemotingClient`], the route
//!   cache refreshed every 30 s, heartbeats every 30 s, the registered
//!   groups, and the handler of requests brokers send back (transaction
//!   check-backs, consumer id changes, admin queries about consumers).
//! - [`producer`]: [`Producer`], round-robin queue choice, retries on
//!   another broker, selectors, batches, auto-creation through `TBW102`.
//! - [`transaction`]: [`TransactionProducer`], half messages, local
//!   transactions, check-backs, [`TransactionHandle`] for later outcomes.
//! - [`consumer`]: [`PushConsumer`] (rebalance, long-polling pulls,
//!   concurrent and ordered listeners, send-back, offsets) and
//!   [`PullConsumer`], both subscribing by tag or by SQL92
//!   ([`MessageSelector`]).
//! - [`admin`]: [`AdminClient`], one file per area.
//! - `in_process`: [`InProcessBroker`], a broker in this process that
//!   answers some requests without a connection (Local mode's proxy).
//! - [`message`] and [`id`]: the [`Message`] to send and its unique id.
//! - Shared by several of those: `end_transaction` (the outcome types
//!   and the request, for producers and check-backs), `compress` (message
//!   bodies), `route`
//!   (a route's readable queues), `sync` (locks that survive a panic) and
//!   the error type.
//!
//! Data flow of a send: `Producer::send` → route (cache or name server) →
//! queue → SEND_MESSAGE_V2 to the queue's master → [`SendResult`]. Of a
//! consume: rebalance assigns queues → a pull loop per queue → listener →
//! offset tracker → offset store → UPDATE_CONSUMER_OFFSET.

pub mod admin;
mod compress;
pub mod config;
pub mod consumer;
pub mod credentials;
mod end_transaction;
mod error;
pub mod id;
mod in_process;
mod instance;
pub mod message;
pub mod producer;
mod route;
mod sync;
pub mod time;
pub mod transaction;

pub use admin::{AdminClient, TopicSpec};
pub use config::ClientConfig;
pub use consumer::{
    ConsumeStatus, Listener, MessageListener, MessageSelector, OrderedMessageListener,
    PullConsumer, PullResult, PullStatus, PushConsumer, PushConsumerConfig,
};
pub use credentials::Credentials;
pub use error::{ClientError, Result};
pub use in_process::{InProcess, InProcessBroker};
pub use message::Message;
pub use mq_protocol::body::{ConsumeFromWhere, MessageModel, MessageQueue};
pub use mq_protocol::client_body::SubscriptionGroupConfig;
pub use mq_protocol::MessageExt;
pub use producer::{Producer, ProducerConfig, SendResult, SendStatus};
pub use transaction::{
    LocalTransactionState, TransactionChecker, TransactionHandle, TransactionProducer,
    TransactionSendResult,
};

/// Re-exported so listener and checker implementations use the same macro.
pub use mq_remoting::async_trait;
/// Completes on Ctrl-C or SIGTERM: what a consumer application waits for
/// before it shuts its consumers down.
pub use mq_remoting::shutdown_signal;
