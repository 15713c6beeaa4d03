//! Independent steps of one long test: a failing step is recorded and the test
//! goes on with the next one, so one run reports every broken feature; the test
//! fails at the end if any step did.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::panic::catch_unwind;

/// The steps that failed so far, each with its panic message.
#[derive(Default)]
pub(crate) struct Steps {
    failed: Vec<String>,
}

impl Steps {
    /// Runs `step` on this thread; `None` (and a recorded failure) if it panics.
    pub(crate) fn run<T>(&mut self, name: &str, step: impl FnOnce() -> T) -> Option<T> {
        match catch_unwind(AssertUnwindSafe(step)) {
            Ok(value) => Some(value),
            Err(payload) => {
                self.record(name, &*payload);
                None
            }
        }
    }

    /// Runs `step` as its own tokio task; `None` (and a recorded failure) if it panics.
    pub(crate) async fn run_async<T, F>(&mut self, name: &str, step: F) -> Option<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        match tokio::spawn(step).await {
            Ok(value) => Some(value),
            Err(err) if err.is_panic() => {
                self.record(name, &*err.into_panic());
                None
            }
            Err(err) => {
                self.failed.push(format!("{name}: task failed: {err}"));
                None
            }
        }
    }

    /// Records that `name` could not run because an earlier step failed.
    pub(crate) fn skipped(&mut self, name: &str, because: &str) {
        self.failed
            .push(format!("{name}: not run, because {because} failed"));
    }

    fn record(&mut self, name: &str, payload: &(dyn Any + Send)) {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        eprintln!("step {name:?} FAILED");
        self.failed.push(format!("{name}: {message}"));
    }

    /// Panics with every failed step, if any.
    pub(crate) fn finish(self) {
        assert!(
            self.failed.is_empty(),
            "{} step(s) failed:\n\n{}",
            self.failed.len(),
            self.failed.join("\n\n")
        );
    }
}
