//! Consumers: push (rebalanced, listener-driven) and pull (explicit).

pub mod allocate;
pub(crate) mod api;
pub mod listener;
pub(crate) mod offset_store;
pub mod pull;
pub mod push;
pub mod selector;
pub mod tracker;

pub use allocate::allocate_averagely;
pub use api::{PullResult, PullStatus};
pub use listener::{ConsumeStatus, Listener, MessageListener, OrderedMessageListener};
pub use pull::PullConsumer;
pub use push::{PushConsumer, PushConsumerConfig};
pub use selector::MessageSelector;
pub use tracker::OffsetTracker;
