//! Logging for Basalt's services.
//!
//! Every process logs to stderr through `tracing`, one line per event, with the
//! service name on each line. `RUST_LOG` filters as usual (default `info`), and
//! `BASALT_LOG_FORMAT=json` switches to JSON lines for log shippers. Decisions an
//! auditor must be able to find (issuance, revocation, refusals) are events with
//! `target: "audit"`, so they can be routed apart from the rest.
//!
//! When `BASALT_AUDIT_LOG` names a file, every audit event is also appended to it
//! as one JSON object per line, whatever `RUST_LOG` says:
//!
//! ```text
//! {"timestamp":"2025-06-15T15:06:40Z","level":"INFO","service":"ra","event":"certificate_revoked","message":"certificate revoked","serial":"4a0001","reason":1}
//! ```
//!
//! `timestamp` (RFC 3339, UTC), `level`, `service`, `event` and `message` come
//! first and are always present (`event` and `message` are `null` when the event
//! has none); every other field of the event follows at the top level, under its
//! own name. A field that would take one of the first three names is written as
//! `field_<name>` instead. Span data is never written. The catalogue of events is
//! `docs/audit.md`.
//!
//! Beside the log, a service is observed through `[telemetry]` of its config
//! ([`TelemetryConfig`]): Prometheus metrics ([`metrics`]) and health checks on
//! the debug listener ([`DebugServer`]), and OpenTelemetry traces exported over
//! OTLP ([`trace`]), whose context every gRPC call carries to the next process.
#![warn(missing_docs)]

mod debug;
mod http;
pub mod metrics;
pub mod trace;

use std::fs::File;
use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;

use basalt_config::TelemetryConfig;
use basalt_core::Clock;
use basalt_core::Error;
use basalt_core::SystemClock;
use serde_json::Value;
use time::UtcOffset;
use time::format_description::well_known::Rfc3339;
use tracing::Event;
use tracing::Metadata;
use tracing::Subscriber;
use tracing::field::Field;
use tracing::field::Visit;
use tracing::subscriber::Interest;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

pub use crate::debug::DebugServer;
pub use crate::debug::ReadinessCheck;
pub use crate::debug::start_draining;
pub use crate::http::instrument as instrument_http;

/// The `tracing` target of audit events.
pub const AUDIT_TARGET: &str = "audit";

/// The environment variable naming the audit log file.
pub const AUDIT_LOG_ENV: &str = "BASALT_AUDIT_LOG";

/// The names the audit log gives its own fields; an event field with one of them
/// is renamed `field_<name>`. (`event` and `message` are the event's own fields.)
const RESERVED_FIELDS: [&str; 3] = ["timestamp", "level", "service"];

/// What [`init`] started that must be stopped in order: the trace exporter, whose
/// last spans are flushed by [`TelemetryGuard::shutdown`].
#[must_use = "call shutdown() at exit, or the last spans are lost"]
pub struct TelemetryGuard {
    traces: Option<trace::Traces>,
}

impl TelemetryGuard {
    /// Exports the spans still queued (if traces are exported at all).
    pub async fn shutdown(self) {
        if let Some(traces) = self.traces {
            traces.shutdown().await;
        }
    }
}

/// Installs the global subscriber for `service`: the log, the audit file, and
/// the trace exporter when `telemetry.otlp_endpoint` is set. Call once, first
/// thing in the service, inside the Tokio runtime.
///
/// If `BASALT_AUDIT_LOG` names a file that cannot be opened, this says so on stderr
/// and in the log, and the service runs on without an audit file: its audit events
/// still reach stderr with the rest of the log. A trace exporter that cannot be
/// made is reported the same way, and the service runs without traces.
pub fn init(service: &str, telemetry: &TelemetryConfig) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("BASALT_LOG_FORMAT").is_ok_and(|format| format == "json");
    let audit_path = std::env::var_os(AUDIT_LOG_ENV).filter(|path| !path.is_empty());
    let (audit, audit_error) = match &audit_path {
        None => (None, None),
        Some(path) => match AuditLayer::open(Path::new(path), service, Arc::new(SystemClock)) {
            Ok(layer) => (Some(layer), None),
            Err(err) => {
                // Said here as well as below: the subscriber may not be ours (a
                // second init keeps the first), and stderr is always read.
                eprintln!(
                    "{service}: {}; audit events are not written to a file",
                    err.detail
                );
                (None, Some(err))
            }
        },
    };
    let (trace_layer, traces, trace_error) = match trace::layer(service, telemetry) {
        Ok(Some((layer, traces))) => (Some(layer), Some(traces), None),
        Ok(None) => (None, None, None),
        Err(err) => {
            eprintln!("{service}: {err}; traces are not exported");
            (None, None, Some(err))
        }
    };
    let ansi = std::io::stderr().is_terminal();
    // A second init (tests) keeps the first subscriber; that is harmless.
    let _ = subscriber(filter, json, ansi, std::io::stderr, audit, trace_layer).try_init();
    let audit_log = audit_path
        .as_deref()
        .filter(|_| audit_error.is_none())
        .map(|path| Path::new(path).display().to_string());
    tracing::info!(
        service,
        version = env!("CARGO_PKG_VERSION"),
        audit_log,
        otlp_endpoint = telemetry.otlp_endpoint.as_deref(),
        "starting"
    );
    if let Some(err) = audit_error {
        tracing::error!(
            error = %err.detail,
            "audit log unavailable: audit events go to the service log only"
        );
    }
    if let Some(err) = trace_error {
        tracing::error!(error = %err, "trace export unavailable: no traces are exported");
    }
    TelemetryGuard { traces }
}

/// The service's subscriber: the log on `writer`, filtered by `filter`, the
/// audit file (if any), which receives every audit event whatever `filter` says,
/// and the trace exporter (if any).
fn subscriber<W>(
    filter: EnvFilter,
    json: bool,
    ansi: bool,
    writer: W,
    audit: Option<AuditLayer>,
    traces: Option<trace::TraceLayer>,
) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let log = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(true)
        .with_ansi(ansi);
    // Per-layer filters: the log's filter must not hide audit events from the file.
    let log = if json {
        log.json().flatten_event(true).with_filter(filter).boxed()
    } else {
        log.with_filter(filter).boxed()
    };
    tracing_subscriber::registry()
        .with(traces)
        .with(log)
        .with(audit.map(AuditLayer::only_audit_events))
}

/// The audit file for `service` at `path` (created if missing, appended to), as a
/// layer that sees only events with target `audit`. Its timestamps come from
/// `clock`.
pub fn audit_layer<S>(
    path: &Path,
    service: &str,
    clock: Arc<dyn Clock>,
) -> Result<impl Layer<S> + Send + Sync + 'static, Error>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    AuditLayer::open(path, service, clock).map(AuditLayer::only_audit_events)
}

/// Whether an event is an audit event.
/// A per-layer filter decided by a callsite's metadata alone, so each callsite is
/// asked once and then cached as always or never.
///
/// `filter_fn` cannot promise that, so with it every span and event of every
/// crate (h2's and hyper's trace-level ones included) is filtered again each time
/// it is hit, on every request.
#[derive(Clone, Copy)]
pub(crate) struct StaticFilter(pub(crate) fn(&Metadata<'_>) -> bool);

impl<S> tracing_subscriber::layer::Filter<S> for StaticFilter {
    fn enabled(&self, metadata: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        (self.0)(metadata)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        if (self.0)(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }
}

fn is_audit(metadata: &Metadata<'_>) -> bool {
    // Exactly the target: a `Targets` filter would also take "audit_x" or "audit::x".
    metadata.target() == AUDIT_TARGET
}

/// Writes each event it sees to a file as one JSON line.
struct AuditLayer {
    service: String,
    clock: Arc<dyn Clock>,
    file: Mutex<File>,
    /// Whether the last write failed, so a failing disk is reported once, not once
    /// per event.
    failing: AtomicBool,
}

impl AuditLayer {
    fn open(path: &Path, service: &str, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Audit records are for operators, not every local user.
            options.mode(0o640);
        }
        let file = options.open(path).map_err(|err| {
            Error::internal(format!(
                "cannot open the audit log {}: {err}",
                path.display()
            ))
        })?;
        Ok(Self {
            service: service.to_owned(),
            clock,
            file: Mutex::new(file),
            failing: AtomicBool::new(false),
        })
    }

    /// This layer, seeing only audit events.
    fn only_audit_events<S>(self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.with_filter(StaticFilter(is_audit))
    }

    /// The JSON line of `event`, without the newline.
    fn render(&self, event: &Event<'_>) -> String {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let now = self.clock.now().to_offset(UtcOffset::UTC);
        let timestamp = now.format(&Rfc3339).unwrap_or_else(|_| now.to_string());
        let mut line = String::from("{");
        push_field(&mut line, "timestamp", &Value::String(timestamp));
        push_field(
            &mut line,
            "level",
            &Value::String(event.metadata().level().to_string()),
        );
        push_field(&mut line, "service", &Value::String(self.service.clone()));
        push_field(&mut line, "event", &fields.event.unwrap_or(Value::Null));
        push_field(&mut line, "message", &fields.message.unwrap_or(Value::Null));
        for (name, value) in &fields.others {
            if RESERVED_FIELDS.contains(name) {
                push_field(&mut line, &format!("field_{name}"), value);
            } else {
                push_field(&mut line, name, value);
            }
        }
        line.push('}');
        line
    }

    /// Appends `line` and a newline in one write, so that lines from several
    /// threads never interleave and a reader sees whole lines at once.
    fn append(&self, line: String) {
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let written = file.write_all(&bytes).and_then(|()| file.flush());
        match written {
            Ok(()) => self.failing.store(false, Ordering::Relaxed),
            // Not through tracing: this runs inside the subscriber.
            Err(err) if !self.failing.swap(true, Ordering::Relaxed) => {
                eprintln!(
                    "{}: cannot write to the audit log: {err}; audit events are being lost",
                    self.service
                );
            }
            Err(_) => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for AuditLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        self.append(self.render(event));
    }
}

/// Appends `"name":value` to a JSON object being written.
fn push_field(line: &mut String, name: &str, value: &Value) {
    if line.len() > 1 {
        line.push(',');
    }
    line.push_str(&Value::String(name.to_owned()).to_string());
    line.push(':');
    line.push_str(&value.to_string());
}

/// An event's fields as JSON values: numbers and booleans as such, everything
/// else (`%` and `?` values) as the string it formats to.
#[derive(Default)]
struct Fields {
    event: Option<Value>,
    message: Option<Value>,
    others: Vec<(&'static str, Value)>,
}

impl Fields {
    fn set(&mut self, field: &Field, value: Value) {
        match field.name() {
            "event" => self.event = Some(value),
            "message" => self.message = Some(value),
            name => self.others.push((name, value)),
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value)
            .map_or_else(|| Value::String(value.to_string()), Value::Number);
        self.set(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field, value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.set(field, value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.set(field, format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::AtomicU32;

    use basalt_core::FixedClock;
    use time::OffsetDateTime;
    use tracing::info;
    use tracing::warn;

    use super::*;

    /// A file name in the temporary directory, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new() -> Self {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            Self(std::env::temp_dir().join(format!(
                "basalt-audit-{}-{}.jsonl",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            )))
        }

        fn lines(&self) -> Vec<serde_json::Map<String, Value>> {
            std::fs::read_to_string(&self.0)
                .unwrap()
                .lines()
                .map(|line| match serde_json::from_str(line) {
                    Ok(Value::Object(object)) => object,
                    other => panic!("not a JSON object: {line:?} ({other:?})"),
                })
                .collect()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn clock() -> Arc<dyn Clock> {
        Arc::new(FixedClock::new(
            OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap(),
        ))
    }

    #[test]
    fn audit_events_are_appended_as_json_lines() {
        let file = TempFile::new();
        let layer = audit_layer(&file.0, "ra", clock()).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            info!(account_id = 7, "not an audit event");
            info!(
                target: "audit",
                event = "certificate_revoked",
                serial = %"4a0001",
                reason = 1u8,
                reused = false,
                names = ?["a.example"],
                level = "spoofed",
                "certificate revoked"
            );
            warn!(target: "auditor", event = "lookalike", "a target that only starts with audit");
        });
        let lines = file.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        let expected = serde_json::json!({
            "timestamp": "2025-06-15T15:06:40Z",
            "level": "INFO",
            "service": "ra",
            "event": "certificate_revoked",
            "message": "certificate revoked",
            "serial": "4a0001",
            "reason": 1,
            "reused": false,
            "names": "[\"a.example\"]",
            "field_level": "spoofed",
        });
        assert_eq!(Value::Object(line.clone()), expected);
        // The fixed fields lead each line, for people reading it with `tail`.
        let text = std::fs::read_to_string(&file.0).unwrap();
        assert!(
            text.starts_with(r#"{"timestamp":"2025-06-15T15:06:40Z","level":"INFO","service":"ra","event":"certificate_revoked","message":"certificate revoked","#),
            "{text}"
        );
    }

    #[test]
    fn the_file_is_appended_to_and_gets_every_audit_event_whatever_rust_log_says() {
        let file = TempFile::new();
        std::fs::write(&file.0, "{\"earlier\":true}\n").unwrap();
        let audit = AuditLayer::open(&file.0, "wfe", clock()).unwrap();
        // The service log shows only errors; the audit file still gets info events.
        let subscriber = subscriber(
            EnvFilter::new("error"),
            true,
            false,
            std::io::sink,
            Some(audit),
            None,
        );
        tracing::subscriber::with_default(subscriber, || {
            info!(target: "audit", event = "account_created", account_id = 3, "account created");
            info!(target: "audit", "no event name");
            info!("not audited");
        });
        let lines = file.lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0]["earlier"], true);
        assert_eq!(lines[1]["event"], "account_created");
        assert_eq!(lines[1]["account_id"], 3);
        assert_eq!(lines[1]["service"], "wfe");
        assert_eq!(lines[2]["event"], Value::Null);
        assert_eq!(lines[2]["message"], "no event name");
    }

    #[test]
    fn an_unopenable_file_is_an_error_naming_it() {
        let path = std::env::temp_dir()
            .join(format!("basalt-no-such-dir-{}", std::process::id()))
            .join("audit.jsonl");
        let Err(err) = AuditLayer::open(&path, "ra", clock()) else {
            panic!("opened {}", path.display());
        };
        assert_eq!(err.kind, basalt_core::ErrorKind::Internal);
        assert!(
            err.detail.contains(&path.display().to_string()),
            "{}",
            err.detail
        );
    }
}
