//! Interop tests, nothing else: `tests/interop.rs` drives the third-party
//! `rocketmq-client-rust` crate (crates.io, not written by this project)
//! against our name server and broker started in-process on port 0, so that
//! compatibility with RocketMQ clients is shown by a client we did not write.
//!
//! Layout: `tests/support` starts the servers, owns the third-party client's
//! runtime and reads offsets from the broker with our own raw frames;
//! `tests/interop.rs` holds the scenarios (sync send and pull, tag-filtered
//! push consumption, a clustering group of two, transactions with check-back,
//! batch and oneway sends, retry through `%RETRY%`, orderly consumption).
