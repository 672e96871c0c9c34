//! Runtimes that run the front ends' connections: one thread each, each its own reactor and no
//! work stealing, so a connection's wake-ups stay on one thread. On the shared work-stealing
//! runtime a request costs about twice the context switches (profiles showed 15-20 % of the
//! server's CPU in cross-thread wake-ups).

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A set of single-thread runtimes; connections are handed to them round robin. Dropping the
/// pool stops them (tasks still running get a second to finish).
pub struct WorkerPool {
    handles: Vec<tokio::runtime::Handle>,
    /// Where the next connection goes.
    next: usize,
    /// Cancelled on drop: each worker thread then shuts its runtime down.
    stop: CancellationToken,
}

impl WorkerPool {
    /// `n` worker runtimes (0: one per CPU), their threads named `NAME-worker-I`. With none
    /// startable, the caller's runtime serves alone (so this must be called inside a runtime).
    pub fn start(name: &str, n: usize) -> WorkerPool {
        let n = match n {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let stop = CancellationToken::new();
        let mut handles = Vec::new();
        for i in 0..n {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name(format!("{name}-worker-io"))
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start a {name} worker runtime");
                    break;
                }
            };
            let handle = runtime.handle().clone();
            let stop = stop.clone();
            let started = std::thread::Builder::new()
                .name(format!("{name}-worker-{i}"))
                .spawn(move || {
                    runtime.block_on(stop.cancelled());
                    runtime.shutdown_timeout(Duration::from_secs(1));
                });
            match started {
                Ok(_) => handles.push(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start a {name} worker thread");
                    break;
                }
            }
        }
        if handles.is_empty() {
            handles.push(tokio::runtime::Handle::current());
        }
        WorkerPool {
            handles,
            next: 0,
            stop,
        }
    }

    /// How many runtimes serve.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Never true: a pool always has at least the caller's runtime.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The runtime for the next connection (round robin).
    pub fn pick(&mut self) -> tokio::runtime::Handle {
        let i = self.next % self.handles.len();
        self.next = self.next.wrapping_add(1);
        self.handles[i].clone()
    }

    /// Runs `serve` on the next worker runtime with `stream`, as a task of `tracker`. The
    /// socket leaves the caller's reactor here and joins the worker's inside the task; if
    /// either step fails, the connection is dropped (and `serve` with what it holds).
    pub fn spawn_connection<F, Fut>(&mut self, tracker: &TaskTracker, stream: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "cannot hand a connection over to a worker");
                return;
            }
        };
        tracker.spawn_on(
            async move {
                match TcpStream::from_std(stream) {
                    Ok(stream) => serve(stream).await,
                    Err(e) => tracing::debug!(error = %e, "cannot register a connection"),
                }
            },
            &self.pick(),
        );
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_the_workers_round_robin() {
        let mut pool = WorkerPool::start("t", 2);
        assert_eq!(pool.len(), 2);
        let mut names = Vec::new();
        for _ in 0..4 {
            let h = pool.pick();
            let name = h
                .spawn(async { std::thread::current().name().map(str::to_owned) })
                .await
                .unwrap();
            names.push(name.unwrap());
        }
        assert_eq!(
            names,
            ["t-worker-0", "t-worker-1", "t-worker-0", "t-worker-1"]
        );
    }
}
