//! The process's Prometheus metrics: one registry per process with every family,
//! and one recording function per event. A family appears in `/metrics` from
//! its first sample on: each process shows the families of what it does.
//!
//! Every name starts with `basalt_`. Label values come from a closed set chosen by
//! the code (method and route names, outcomes, reasons), never from request data,
//! so the number of series stays bounded.

use std::sync::LazyLock;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The media type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets in seconds, from a quick RPC to a slow validation.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

type Latencies<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcServerCall {
    service: String,
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcServerMethod {
    service: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcClientCall {
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcClientMethod {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRequest {
    endpoint: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpEndpoint {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Validation {
    challenge_type: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChallengeType {
    challenge_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Issuance {
    profile: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RateLimitDecision {
    limit: String,
    decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolState {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OcspStatus {
    status: String,
}

/// A function run before every scrape, to sample a value (a pool's size) into
/// a gauge.
type ScrapeHook = Box<dyn Fn() + Send + Sync>;

/// Every family, and the registry that renders them.
struct Metrics {
    registry: Registry,
    scrape_hooks: Mutex<Vec<ScrapeHook>>,
    grpc_server_requests: Family<GrpcServerCall, Counter>,
    grpc_server_duration: Latencies<GrpcServerMethod>,
    grpc_client_requests: Family<GrpcClientCall, Counter>,
    grpc_client_duration: Latencies<GrpcClientMethod>,
    http_requests: Family<HttpRequest, Counter>,
    http_duration: Latencies<HttpEndpoint>,
    validations: Family<Validation, Counter>,
    validation_duration: Latencies<ChallengeType>,
    issuances: Family<Issuance, Counter>,
    revocations: Family<Reason, Counter>,
    rate_limit_decisions: Family<RateLimitDecision, Counter>,
    db_pool_connections: Family<PoolState, Gauge>,
    ocsp_responses: Family<OcspStatus, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let mut metrics = Self {
            registry: Registry::with_prefix("basalt"),
            scrape_hooks: Mutex::new(Vec::new()),
            grpc_server_requests: Family::default(),
            grpc_server_duration: latencies(),
            grpc_client_requests: Family::default(),
            grpc_client_duration: latencies(),
            http_requests: Family::default(),
            http_duration: latencies(),
            validations: Family::default(),
            validation_duration: latencies(),
            issuances: Family::default(),
            revocations: Family::default(),
            rate_limit_decisions: Family::default(),
            db_pool_connections: Family::default(),
            ocsp_responses: Family::default(),
        };
        // Counters are rendered with a `_total` suffix.
        let registry = &mut metrics.registry;
        registry.register(
            "grpc_server_requests",
            "gRPC calls this server answered, by service, method and status code",
            metrics.grpc_server_requests.clone(),
        );
        registry.register(
            "grpc_server_request_duration_seconds",
            "How long this server took to answer gRPC calls",
            metrics.grpc_server_duration.clone(),
        );
        registry.register(
            "grpc_client_requests",
            "gRPC calls this process made, by method (service/method) and status code",
            metrics.grpc_client_requests.clone(),
        );
        registry.register(
            "grpc_client_request_duration_seconds",
            "How long the gRPC calls this process made took, to the end of the answer",
            metrics.grpc_client_duration.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by endpoint (route) and status",
            metrics.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "How long HTTP requests took to answer, by endpoint (route)",
            metrics.http_duration.clone(),
        );
        registry.register(
            "validations",
            "Challenge validations this VA performed, by challenge type and result",
            metrics.validations.clone(),
        );
        registry.register(
            "validation_duration_seconds",
            "How long challenge validations took, CAA included",
            metrics.validation_duration.clone(),
        );
        registry.register(
            "issuances",
            "Certificates signed, by profile and kind (precertificate or certificate)",
            metrics.issuances.clone(),
        );
        registry.register(
            "revocations",
            "Certificates revoked, by reason",
            metrics.revocations.clone(),
        );
        registry.register(
            "rate_limit_decisions",
            "Rate limit decisions, by limit and decision (allowed or denied)",
            metrics.rate_limit_decisions.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections, by state (idle or in_use), sampled at each scrape",
            metrics.db_pool_connections.clone(),
        );
        registry.register(
            "ocsp_responses",
            "OCSP responses served, by response status",
            metrics.ocsp_responses.clone(),
        );
        metrics
    }
}

/// A family of latency histograms with [`LATENCY_BUCKETS`].
fn latencies<L: Clone + std::hash::Hash + Eq>() -> Latencies<L> {
    Family::new_with_constructor(latency_histogram)
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Every family in the Prometheus (OpenMetrics) text format, after the scrape
/// hooks have sampled their values.
pub fn render() -> String {
    let metrics = &*METRICS;
    for hook in metrics
        .scrape_hooks
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        hook();
    }
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &metrics.registry);
    text
}

/// Runs `hook` before every [`render`], e.g. to sample a pool's size.
pub fn on_scrape(hook: impl Fn() + Send + Sync + 'static) {
    METRICS
        .scrape_hooks
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Box::new(hook));
}

/// A gRPC call this server answered: `service` is its full name
/// (`basalt.sa.Storage`), `method` the method's (`NewOrder`), `code` the status
/// code's name (`OK`, `NotFound`…).
pub fn grpc_server_request(service: &str, method: &str, code: &str, elapsed: Duration) {
    let metrics = &*METRICS;
    metrics
        .grpc_server_requests
        .get_or_create(&GrpcServerCall {
            service: service.to_owned(),
            method: method.to_owned(),
            code: code.to_owned(),
        })
        .inc();
    metrics
        .grpc_server_duration
        .get_or_create(&GrpcServerMethod {
            service: service.to_owned(),
            method: method.to_owned(),
        })
        .observe(elapsed.as_secs_f64());
}

/// A gRPC call this process made: `method` is `service/method`
/// (`basalt.sa.Storage/NewOrder`), `code` the status code's name.
pub fn grpc_client_request(method: &str, code: &str, elapsed: Duration) {
    let metrics = &*METRICS;
    metrics
        .grpc_client_requests
        .get_or_create(&GrpcClientCall {
            method: method.to_owned(),
            code: code.to_owned(),
        })
        .inc();
    metrics
        .grpc_client_duration
        .get_or_create(&GrpcClientMethod {
            method: method.to_owned(),
        })
        .observe(elapsed.as_secs_f64());
}

/// An HTTP request answered: `endpoint` is the route that took it (e.g.
/// `/acme/order/{id}`), never the URL with its identifiers.
pub fn http_request(endpoint: &str, status: u16, elapsed: Duration) {
    let metrics = &*METRICS;
    metrics
        .http_requests
        .get_or_create(&HttpRequest {
            endpoint: endpoint.to_owned(),
            status: status.to_string(),
        })
        .inc();
    metrics
        .http_duration
        .get_or_create(&HttpEndpoint {
            endpoint: endpoint.to_owned(),
        })
        .observe(elapsed.as_secs_f64());
}

/// A challenge validation: `challenge_type` as RFC 8555 spells it (`http-01`),
/// `result` `valid` or `invalid`.
pub fn validation(challenge_type: &str, result: &str, elapsed: Duration) {
    let metrics = &*METRICS;
    metrics
        .validations
        .get_or_create(&Validation {
            challenge_type: challenge_type.to_owned(),
            result: result.to_owned(),
        })
        .inc();
    metrics
        .validation_duration
        .get_or_create(&ChallengeType {
            challenge_type: challenge_type.to_owned(),
        })
        .observe(elapsed.as_secs_f64());
}

/// What the CA signed for a certificate of `profile`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssuanceKind {
    /// The precertificate (linting certificate) was recorded.
    Precertificate,
    /// The certificate itself was signed and stored.
    Certificate,
}

impl IssuanceKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Certificate => "certificate",
            Self::Precertificate => "precertificate",
        }
    }
}

/// The CA signed (`kind`) under `profile`.
pub fn issuance(profile: &str, kind: IssuanceKind) {
    METRICS
        .issuances
        .get_or_create(&Issuance {
            profile: profile.to_owned(),
            kind: kind.as_str().to_owned(),
        })
        .inc();
}

/// The RA revoked a certificate for `reason` (RFC 5280 name, e.g. `keyCompromise`).
pub fn revocation(reason: &str) {
    METRICS
        .revocations
        .get_or_create(&Reason {
            reason: reason.to_owned(),
        })
        .inc();
}

/// The RA's rate limiter decided on `limit`: `allowed` or `denied`.
pub fn rate_limit_decision(limit: &str, decision: &str) {
    METRICS
        .rate_limit_decisions
        .get_or_create(&RateLimitDecision {
            limit: limit.to_owned(),
            decision: decision.to_owned(),
        })
        .inc();
}

/// The SA's database pool now: `idle` connections and `in_use` ones.
pub fn db_pool_connections(idle: u32, in_use: u32) {
    let metrics = &*METRICS;
    for (state, count) in [("idle", idle), ("in_use", in_use)] {
        metrics
            .db_pool_connections
            .get_or_create(&PoolState {
                state: state.to_owned(),
            })
            .set(i64::from(count));
    }
}

/// The OCSP responder answered with response status `status` (`successful`,
/// `malformedRequest`…, RFC 6960 §4.2.1).
pub fn ocsp_response(status: &str) {
    METRICS
        .ocsp_responses
        .get_or_create(&OcspStatus {
            status: status.to_owned(),
        })
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `name{labels}` in `text`, labels in any order.
    fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        text.lines().find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, rest) = series.split_once('{').unwrap_or((series, "}"));
            let rest = rest.strip_suffix('}')?;
            let matches = series_name == name
                && labels.iter().all(|(key, value)| {
                    rest.split(',')
                        .any(|pair| pair == format!("{key}=\"{value}\""))
                });
            matches.then(|| value.parse().ok()).flatten()
        })
    }

    #[test]
    fn every_family_is_rendered_with_its_name() {
        let quick = Duration::from_millis(1);
        grpc_server_request("unit.test.Service", "Call", "OK", quick);
        grpc_client_request("unit.test.Service/Call", "OK", quick);
        http_request("/unit-test", 200, quick);
        validation("unit-test-01", "invalid", quick);
        issuance("unit-test", IssuanceKind::Certificate);
        revocation("unitTest");
        rate_limit_decision("unit_test", "allowed");
        db_pool_connections(1, 0);
        ocsp_response("successful");
        let text = render();
        for family in [
            "basalt_grpc_server_requests",
            "basalt_grpc_server_request_duration_seconds",
            "basalt_grpc_client_requests",
            "basalt_grpc_client_request_duration_seconds",
            "basalt_http_requests",
            "basalt_http_request_duration_seconds",
            "basalt_validations",
            "basalt_validation_duration_seconds",
            "basalt_issuances",
            "basalt_revocations",
            "basalt_rate_limit_decisions",
            "basalt_db_pool_connections",
            "basalt_ocsp_responses",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} missing:\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn recorded_values_appear_with_their_labels() {
        validation("tls-alpn-01", "valid", Duration::from_millis(30));
        validation("tls-alpn-01", "valid", Duration::from_millis(70));
        issuance("unit-test-profile", IssuanceKind::Precertificate);
        http_request("/acme/order/{id}", 200, Duration::from_millis(5));
        rate_limit_decision("unit_test_limit", "denied");
        let polled = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        on_scrape({
            let polled = polled.clone();
            move || {
                let n = polled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                db_pool_connections(3, n + 1);
            }
        });
        let text = render();
        let labels = [("challenge_type", "tls-alpn-01"), ("result", "valid")];
        assert_eq!(
            sample(&text, "basalt_validations_total", &labels),
            Some(2.0)
        );
        let latency = [("challenge_type", "tls-alpn-01")];
        assert_eq!(
            sample(&text, "basalt_validation_duration_seconds_count", &latency),
            Some(2.0)
        );
        let sum = sample(&text, "basalt_validation_duration_seconds_sum", &latency).unwrap();
        assert!((sum - 0.1).abs() < 1e-9, "{sum}");
        let bucket = [("challenge_type", "tls-alpn-01"), ("le", "0.05")];
        assert_eq!(
            sample(&text, "basalt_validation_duration_seconds_bucket", &bucket),
            Some(1.0)
        );
        let issued = [("profile", "unit-test-profile"), ("kind", "precertificate")];
        assert_eq!(sample(&text, "basalt_issuances_total", &issued), Some(1.0));
        let http = [("endpoint", "/acme/order/{id}"), ("status", "200")];
        assert!(sample(&text, "basalt_http_requests_total", &http).unwrap() >= 1.0);
        let limit = [("limit", "unit_test_limit"), ("decision", "denied")];
        assert_eq!(
            sample(&text, "basalt_rate_limit_decisions_total", &limit),
            Some(1.0)
        );
        // The gauge is sampled at the scrape.
        assert_eq!(
            sample(&text, "basalt_db_pool_connections", &[("state", "idle")]),
            Some(3.0)
        );
        assert!(polled.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    }
}
