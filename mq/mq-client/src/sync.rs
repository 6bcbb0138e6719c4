//! Locking that survives a panic: a listener or checker that panicked while
//! a table was locked must not stop the client, and every table here stays
//! consistent between statements, so a poisoned lock is used as it is.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, taking over a poisoned lock.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
