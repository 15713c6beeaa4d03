//! The debug listener (`[telemetry] debug_listen`): plain HTTP for Prometheus and
//! for orchestrators' probes, on an internal address.
//!
//! - `GET /metrics`: every metric of the process ([`crate::metrics::render`]).
//! - `GET /health/live`: 200 for as long as the process serves at all.
//! - `GET /health/ready`: 200 when every dependency of the service answers its
//!   check and the service is not stopping; 503 otherwise, with one line naming
//!   each thing that is not ready. A stopping service (SIGTERM) is not ready from
//!   the moment it is asked to stop, so load balancers send it nothing new while
//!   it drains.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use basalt_core::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::task::JoinSet;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Set once the process is asked to stop: it is draining, and not ready.
static DRAINING: AtomicBool = AtomicBool::new(false);

/// Marks the process as stopping: `/health/ready` answers 503 from now on.
pub fn start_draining() {
    DRAINING.store(true, Ordering::Relaxed);
}

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One dependency `/health/ready` asks about, e.g. the SA a service calls.
#[derive(Clone)]
pub struct ReadinessCheck {
    name: String,
    check: Arc<dyn Fn() -> CheckFuture + Send + Sync>,
}

impl ReadinessCheck {
    /// The dependency `name`, ready when `check` returns `Ok`; its `Err` says why
    /// not.
    pub fn new<F, Fut>(name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name: name.into(),
            check: Arc::new(move || Box::pin(check())),
        }
    }
}

/// What `/health/ready` looks at.
struct Readiness {
    checks: Vec<ReadinessCheck>,
    draining: &'static AtomicBool,
}

impl Readiness {
    /// `None` when ready; otherwise one line per thing that is not.
    async fn problems(&self) -> Option<String> {
        if self.draining.load(Ordering::Relaxed) {
            return Some("draining: the service is stopping\n".to_owned());
        }
        let mut running = JoinSet::new();
        for (index, check) in self.checks.iter().enumerate() {
            let run = (check.check)();
            running.spawn(async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, run).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
                };
                (index, outcome)
            });
        }
        let mut failed: Vec<(usize, String)> = Vec::new();
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok((_, Ok(()))) => {}
                Ok((index, Err(why))) => failed.push((index, why)),
                Err(err) => failed.push((usize::MAX, format!("check failed: {err}"))),
            }
        }
        if failed.is_empty() {
            return None;
        }
        failed.sort();
        let lines = failed
            .into_iter()
            .map(|(index, why)| {
                let name = self.checks.get(index).map_or("check", |c| c.name.as_str());
                // One line each, whatever the error says.
                format!("{name}: {}\n", why.replace(['\r', '\n'], " "))
            })
            .collect();
        Some(lines)
    }
}

/// A running debug listener; dropping it stops it.
pub struct DebugServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl DebugServer {
    /// Listens on `listen` and serves `/metrics` and `/health/*` in the background;
    /// `/health/ready` runs `checks`. Fails only if the address cannot be bound.
    pub async fn start(listen: SocketAddr, checks: Vec<ReadinessCheck>) -> Result<Self, Error> {
        Self::start_with(listen, checks, &DRAINING).await
    }

    async fn start_with(
        listen: SocketAddr,
        checks: Vec<ReadinessCheck>,
        draining: &'static AtomicBool,
    ) -> Result<Self, Error> {
        let listener = TcpListener::bind(listen).await.map_err(|err| {
            Error::internal(format!(
                "telemetry.debug_listen: cannot listen on {listen}: {err}"
            ))
        })?;
        let local_addr = listener
            .local_addr()
            .map_err(|err| Error::internal(format!("debug listener address: {err}")))?;
        let router = router(Arc::new(Readiness { checks, draining }));
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                tracing::error!(error = %err, "debug listener failed");
            }
        });
        tracing::info!(listen = %local_addr, "serving metrics and health checks over HTTP");
        Ok(Self { local_addr, task })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for DebugServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(readiness: Arc<Readiness>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(|| async { "live\n" }))
        .route("/health/ready", get(ready))
        .with_state(readiness)
}

async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::render(),
    )
        .into_response()
}

async fn ready(State(readiness): State<Arc<Readiness>>) -> Response {
    match readiness.problems().await {
        None => "ready\n".into_response(),
        Some(problems) => (StatusCode::SERVICE_UNAVAILABLE, problems).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use tokio::io::AsyncReadExt;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    use super::*;

    /// `GET path` over HTTP/1.1; the status code and the body.
    async fn get(address: SocketAddr, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {response}"));
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    #[tokio::test]
    async fn metrics_liveness_and_readiness_are_served() {
        static DRAINING: AtomicBool = AtomicBool::new(false);
        let sa_up = Arc::new(AtomicBool::new(true));
        let asked = Arc::new(AtomicU32::new(0));
        let checks = vec![
            ReadinessCheck::new("sa", {
                let sa_up = sa_up.clone();
                let asked = asked.clone();
                move || {
                    asked.fetch_add(1, Ordering::Relaxed);
                    let up = sa_up.load(Ordering::Relaxed);
                    async move {
                        if up {
                            Ok(())
                        } else {
                            Err("connection refused\nretrying".to_owned())
                        }
                    }
                }
            }),
            ReadinessCheck::new("ca", || async { Ok(()) }),
        ];
        let server = DebugServer::start_with("127.0.0.1:0".parse().unwrap(), checks, &DRAINING)
            .await
            .unwrap();
        let address = server.local_addr();

        let (status, body) = get(address, "/metrics").await;
        assert_eq!(status, 200);
        assert!(body.ends_with("# EOF\n"), "{body}");
        assert_eq!(
            get(address, "/health/live").await,
            (200, "live\n".to_owned())
        );
        assert_eq!(
            get(address, "/health/ready").await,
            (200, "ready\n".to_owned())
        );
        assert_eq!(asked.load(Ordering::Relaxed), 1);

        sa_up.store(false, Ordering::Relaxed);
        let (status, body) = get(address, "/health/ready").await;
        assert_eq!(status, 503);
        assert_eq!(body, "sa: connection refused retrying\n");

        sa_up.store(true, Ordering::Relaxed);
        DRAINING.store(true, Ordering::Relaxed);
        let (status, body) = get(address, "/health/ready").await;
        assert_eq!(status, 503);
        assert!(body.starts_with("draining"), "{body}");
        // Still alive while draining.
        assert_eq!(get(address, "/health/live").await.0, 200);
        assert_eq!(get(address, "/nothing").await.0, 404);
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_hangs_is_not_ready() {
        static DRAINING: AtomicBool = AtomicBool::new(false);
        let readiness = Readiness {
            checks: vec![ReadinessCheck::new("va", std::future::pending)],
            draining: &DRAINING,
        };
        let problems = readiness.problems().await.unwrap();
        assert!(problems.starts_with("va: no answer within"), "{problems}");
    }

    #[tokio::test]
    async fn a_taken_address_is_an_error_naming_the_field() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = taken.local_addr().unwrap();
        let Err(err) = DebugServer::start(address, Vec::new()).await else {
            panic!("bound {address} twice");
        };
        assert!(
            err.detail.contains("telemetry.debug_listen"),
            "{}",
            err.detail
        );
    }
}
