//! The process's open-file limit (`RLIMIT_NOFILE`). Every connection is a
//! descriptor, and distributions start processes with a soft limit of 1024
//! while allowing far more, so servers raise the soft limit to the hard one
//! at start, as the JVM does for RocketMQ.

use std::sync::OnceLock;

/// Raises the soft open-file limit to the hard limit (once per process) and
/// returns the soft limit then in force; `None` where it cannot be read.
pub fn raise_fd_limit() -> Option<u64> {
    static RAISED: OnceLock<Option<u64>> = OnceLock::new();
    *RAISED.get_or_init(raise)
}

#[cfg(unix)]
fn raise() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call's duration.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; a refusal leaves the old limit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    // `rlim_t` is u64 on Linux but not on every Unix.
    #[allow(clippy::useless_conversion)]
    let soft = u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX);
    Some(soft)
}

#[cfg(not(unix))]
fn raise() -> Option<u64> {
    None
}

/// Connections a server may hold within `fd_limit` descriptors, keeping a
/// tenth (64 to 4096) for files, the store and outgoing connections, so
/// accept never fails for want of a descriptor.
pub(crate) fn connections_within(fd_limit: u64) -> usize {
    let reserve = (fd_limit / 10).clamp(64, 4096);
    usize::try_from(fd_limit.saturating_sub(reserve))
        .unwrap_or(usize::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_raised_and_leaves_a_reserve() {
        let limit = raise_fd_limit().expect("RLIMIT_NOFILE is readable");
        assert!(limit >= 64, "{limit}");
        assert_eq!(connections_within(1024), 1024 - 102);
        assert_eq!(connections_within(1_048_576), 1_048_576 - 4096);
        assert_eq!(connections_within(10), 1);
    }
}
