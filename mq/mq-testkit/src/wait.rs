//! Waiting for conditions instead of for time: a test polls what it expects
//! until it holds, with a generous bound so a loaded CI machine only makes it
//! slower, and a panic that names what never happened.

use std::future::Future;
use std::time::Duration;

/// Upper bound for anything a test waits on; generous for a loaded 2-core CI box.
pub const WAIT: Duration = Duration::from_secs(60);

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(50);

/// Polls `probe` until it yields a value; panics naming `what` after [`WAIT`].
pub async fn wait_for<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_for_within(what, WAIT, probe).await
}

/// Polls `probe` until it yields a value; panics naming `what` after `limit`.
pub async fn wait_for_within<T, F, Fut>(what: &str, limit: Duration, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_explained(what, limit, String::new, probe).await
}

/// Polls `check` until it holds; panics naming `what` after `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for_within(what, limit, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await;
}

/// Polls `probe` until it yields a value; after `limit` panics naming `what`
/// followed by what `explain` says (a server's log, say).
pub async fn wait_explained<T, F, Fut>(
    what: &str,
    limit: Duration,
    explain: impl FnOnce() -> String,
    mut probe: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "timed out after {limit:?} waiting for {what}\n{}",
                explain()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Runs `future` with the [`WAIT`] bound, naming the step on timeout.
pub async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?}: {what}"))
}

/// Gives the system under test `window` to do something it must not do.
///
/// Only for absences nothing can observe: when there is no state to poll
/// that says "it will not happen" (a long-polled pull that the broker holds
/// shows nowhere until it answers), a test can only watch for a while. Every
/// caller says in a comment why no condition exists.
pub async fn watch_for_absence(window: Duration) {
    tokio::time::sleep(window).await;
}
