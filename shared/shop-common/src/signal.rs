//! Process signals every binary stops on: the broker's and the name server's
//! own (Ctrl-C or SIGTERM), so that the whole suite stops the same way.

/// Completes on Ctrl-C or SIGTERM.
pub use mq_client::shutdown_signal as shutdown;
