//! Transactional messages: a half message, the local transaction, then
//! END_TRANSACTION with its outcome; check-backs from the broker answered by
//! a [`TransactionChecker`] (through the client instance's callback
//! handler).
//!
//! - `outcome`: [`LocalTransactionState`], [`TransactionChecker`],
//!   [`TransactionHandle`] and the END_TRANSACTION request.
//! - `producer`: [`TransactionProducer`] and [`TransactionSendResult`].

pub(crate) mod outcome;
mod producer;

pub use outcome::{LocalTransactionState, TransactionChecker, TransactionHandle};
pub use producer::{TransactionProducer, TransactionSendResult};
