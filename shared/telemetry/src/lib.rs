//! Operating the suite's processes: log files and metrics.
//!
//! - [`logging`]: `tracing` output to RocketMQ's log folder
//!   (`~/logs/rocketmqlogs/namesrv.log`, `broker.log`, ...), one file per
//!   component, each rolled daily and by size into `otherdays/` with a
//!   bounded number kept, and to stderr when that is a terminal.
//! - [`metrics`]: a Prometheus text endpoint (`GET /metrics`) over a
//!   `prometheus-client` registry.

pub mod logging;
pub mod metrics;
mod rolling;

pub use rolling::{civil_date, RollingFile, RollingLimits};
