//! A worker thread at low scheduling priority for work no request waits for (lists refreshed
//! after a burst of ratings): on a busy machine it gets the CPU the request path leaves, so
//! refreshing never slows answers; on an idle one it runs at once.

use std::sync::mpsc;

/// The worker's nice value (0 is the default, 19 the lowest): at 10 the scheduler gives it
/// about a tenth of a core that request threads also want, and all of an idle one.
const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// Runs jobs one at a time, in order, on its own low-priority thread; the thread ends when
/// this is dropped.
pub struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Starts the thread, named `name`.
    ///
    /// # Panics
    /// If the OS cannot start a thread.
    pub fn start(name: &str) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                if let Err(error) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE) {
                    tracing::warn!(%error, "could not lower the background worker's priority");
                }
                for job in queue {
                    // A job that panics is that job's bug: the worker goes on with the next.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::error!("a background job panicked");
                    }
                }
            })
            .expect("the OS starts a thread");
        Self { jobs }
    }

    /// Queues `job`.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        // The thread only ends once this sender is dropped, so the send cannot fail.
        let _ = self.jobs.send(Box::new(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_in_order_on_a_thread_with_a_lowered_priority_past_a_panicking_one() {
        let worker = Worker::start("test-worker");
        let (done, results) = mpsc::channel();
        for i in 0..3 {
            let done = done.clone();
            worker.run(move || {
                let nice = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
                done.send((i, nice, std::thread::current().name().map(str::to_owned))).unwrap();
            });
        }
        worker.run(|| panic!("a bug in one job"));
        let done_after = done.clone();
        worker.run(move || done_after.send((3, NICE, Some("test-worker".to_owned()))).unwrap());
        let got: Vec<_> = results.iter().take(4).collect();
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [0, 1, 2, 3], "a panicking job stops nothing");
        assert!(got.iter().all(|g| g.1 >= NICE && g.2.as_deref() == Some("test-worker")), "{got:?}");
    }
}
