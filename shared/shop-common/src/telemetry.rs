//! Tracing setup shared by every binary: `RUST_LOG` (or the given default
//! filter) to stderr.

use tracing_subscriber::EnvFilter;

/// Installs a stderr subscriber once; later calls are no-ops (tests call it
/// from many places).
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
