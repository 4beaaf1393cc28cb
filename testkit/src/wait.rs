//! Waiting for a condition with a deadline, instead of sleeping for a guessed time.
//!
//! A check returns `Ok(value)` when the condition holds, or `Err(status)`: what it saw instead
//! (the latest status is what a timeout reports). Checks run back to back with
//! [`POLL_INTERVAL`] between them, and once more at the deadline.
//!
//! - [`wait_until`] / [`wait_until_blocking`]: the value, or a panic naming what was awaited and
//!   the last status.
//! - [`poll_until`] / [`poll_until_blocking`]: the value, or the last status as `Err` (for
//!   callers that do something else on a timeout, e.g. kill a child process).

use std::future::Future;
use std::time::{Duration, Instant};

/// The pause between two checks.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Runs `check` until it returns `Ok`, for at most `timeout` (plus one check); returns its
/// value, or its last `Err` when the deadline passed.
pub async fn poll_until<T, F, Fut>(timeout: Duration, mut check: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let status = match check().await {
            Ok(value) => return Ok(value),
            Err(status) => status,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(status);
        }
        tokio::time::sleep(POLL_INTERVAL.min(left)).await;
    }
}

/// Runs `check` until it returns `Ok` and returns its value.
///
/// # Panics
/// When `timeout` passes first: the message names `what` and the last status.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    poll_until(timeout, check).await.unwrap_or_else(|status| timed_out(what, timeout, &status))
}

/// [`poll_until`] for synchronous checks: blocks the calling thread between them.
pub fn poll_until_blocking<T>(timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = match check() {
            Ok(value) => return Ok(value),
            Err(status) => status,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(status);
        }
        std::thread::sleep(POLL_INTERVAL.min(left));
    }
}

/// [`wait_until`] for synchronous checks: blocks the calling thread between them.
///
/// # Panics
/// When `timeout` passes first: the message names `what` and the last status.
pub fn wait_until_blocking<T>(what: &str, timeout: Duration, check: impl FnMut() -> Result<T, String>) -> T {
    poll_until_blocking(timeout, check).unwrap_or_else(|status| timed_out(what, timeout, &status))
}

fn timed_out(what: &str, timeout: Duration, status: &str) -> ! {
    panic!("timed out after {timeout:?} waiting for {what}; last status: {status}")
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::*;

    /// `Err("try n")` for the first `n` calls, then `Ok(n)`.
    fn ready_after(n: u32, calls: &Cell<u32>) -> Result<u32, String> {
        calls.set(calls.get() + 1);
        if calls.get() > n { Ok(calls.get()) } else { Err(format!("try {}", calls.get())) }
    }

    fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn wait_until_returns_the_value_of_the_first_ok() {
        let calls = Cell::new(0);
        let value = wait_until("the third try", Duration::from_secs(5), || async { ready_after(2, &calls) }).await;
        assert_eq!((value, calls.get()), (3, 3));
        let started = Instant::now();
        let value = wait_until("nothing", Duration::from_secs(5), || async { Ok::<_, String>("at once") }).await;
        assert_eq!(value, "at once");
        assert!(started.elapsed() < POLL_INTERVAL, "an Ok on the first check does not wait");
    }

    #[test]
    fn wait_until_panics_at_the_deadline_with_what_and_the_last_status() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let calls = Cell::new(0);
        let started = Instant::now();
        let payload = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(wait_until("the moon", Duration::from_millis(300), || async { ready_after(u32::MAX, &calls) }))
        }))
        .expect_err("never ready: it panics");
        let elapsed = started.elapsed();
        let message = panic_message(&*payload);
        assert!(message.contains("the moon"), "{message}");
        assert!(message.contains("300ms"), "{message}");
        assert!(message.ends_with(&format!("last status: try {}", calls.get())), "{message}");
        assert!(calls.get() >= 3, "it kept polling: {} checks", calls.get());
        assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(5), "{elapsed:?}");
    }

    #[tokio::test]
    async fn poll_until_gives_the_last_status_back_at_the_deadline() {
        let calls = Cell::new(0);
        let result = poll_until(Duration::from_millis(200), || async { ready_after(u32::MAX, &calls) }).await;
        assert_eq!(result, Err(format!("try {}", calls.get())));
        let calls = Cell::new(0);
        assert_eq!(poll_until(Duration::from_secs(5), || async { ready_after(1, &calls) }).await, Ok(2));
    }

    #[test]
    fn the_blocking_twins_behave_the_same() {
        let calls = Cell::new(0);
        assert_eq!(wait_until_blocking("the second try", Duration::from_secs(5), || ready_after(1, &calls)), 2);
        let calls = Cell::new(0);
        let result = poll_until_blocking(Duration::from_millis(200), || ready_after(u32::MAX, &calls));
        assert_eq!(result, Err(format!("try {}", calls.get())));
        let calls = Cell::new(0);
        let payload = catch_unwind(AssertUnwindSafe(|| {
            wait_until_blocking("the sun", Duration::from_millis(200), || ready_after(u32::MAX, &calls))
        }))
        .expect_err("never ready: it panics");
        let message = panic_message(&*payload);
        assert!(message.contains("the sun"), "{message}");
        assert!(message.ends_with(&format!("last status: try {}", calls.get())), "{message}");
    }
}
