//! Connection threads: every accepted connection is served, start to end, by one of a few
//! threads that each run their own single-threaded runtime with its own epoll, the way nginx's
//! worker processes do.
//!
//! Why: on the shared multi-threaded runtime a warm request's wake-ups crossed threads (one
//! worker polls epoll and wakes another to run the task): perf showed the time in the kernel's
//! task switching and rescheduling interrupts, and warm `.info` at 32 connections went from
//! about 66k to 80k requests/s on 2 cores with one worker instead of two. A connection's tasks
//! (hyper's, a handler's, a fill it starts) stay on its thread; blocking work still goes to
//! that runtime's blocking pool, and everything else (the accept loop, reloaders, the metrics
//! listener) stays on the main runtime.

use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::runtime::{Builder, Handle};

/// The threads, each as a handle to spawn connections on; they run until the process exits.
pub struct ConnThreads {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

impl ConnThreads {
    /// Starts `n` threads (at least one).
    pub fn start(n: usize) -> std::io::Result<Self> {
        let mut handles = Vec::new();
        for i in 0..n.max(1) {
            let rt = Builder::new_current_thread().enable_all().build()?;
            handles.push(rt.handle().clone());
            std::thread::Builder::new()
                .name(format!("conn-{i}"))
                // `block_on` drives the runtime: it runs whatever the handle is given.
                .spawn(move || rt.block_on(std::future::pending::<()>()))?;
        }
        Ok(Self {
            handles,
            next: AtomicUsize::new(0),
        })
    }

    /// As many threads as the process may use CPUs (cgroup quotas included).
    pub fn for_this_machine() -> std::io::Result<Self> {
        Self::start(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// The thread for the next connection: round robin.
    pub fn pick(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_take_turns_and_tasks_run() {
        let threads = ConnThreads::start(2).unwrap();
        let names: Vec<String> = (0..4)
            .map(|_| {
                let (tx, rx) = std::sync::mpsc::channel();
                threads.pick().spawn(async move {
                    tokio::task::yield_now().await;
                    let _ = tx.send(std::thread::current().name().unwrap_or("").to_string());
                });
                rx.recv().unwrap()
            })
            .collect();
        assert_eq!(names, ["conn-0", "conn-1", "conn-0", "conn-1"]);
    }
}
