//! Observing a running CA: every process of `basalt dev` serves Prometheus metrics
//! and health checks on a debug port of its own, and with `--otlp-endpoint` it
//! exports its traces to an OpenTelemetry collector.
//!
//! After one certificate is issued through instant-acme, each process's
//! `/metrics` shows what it did (the WFE's HTTP requests and its calls to the RA,
//! the RA's calls and rate limit decisions, the VA's validations, the CA's
//! issuances, the SA's calls and database pool, the OCSP responder's calls and
//! requests, the nonce service's calls), with latencies above zero, and
//! `/health/live` and `/health/ready` answer 200. Then, against a collector this
//! test runs itself (OTLP over gRPC, plaintext), one issuance is one trace: the
//! finalize request's spans from the WFE, RA, VA (the CAA recheck at finalize,
//! `--caa-recheck-after 0s`), CA and SA share a trace id.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use instant_acme::RetryPolicy;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
use opentelemetry_proto::tonic::common::v1::any_value;

use crate::harness::DevCa;
use crate::harness::random_u64;
use crate::instant_acme::Http01;
use crate::instant_acme::cert_csr;
use crate::instant_acme::new_account;
use crate::instant_acme::ready_order;

/// How long instant-acme polls an order for its certificate.
const POLL_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the spans of an issuance may take to reach the collector: the batch
/// exporters send every 5 s.
const SPANS_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a value that a background task records (the OCSP responder's
/// status feed) may take to appear.
const METRIC_TIMEOUT: Duration = Duration::from_secs(30);

/// Issues one certificate for two fresh names through instant-acme.
async fn issue_one(ca: &DevCa, http01: &Http01, label: &str) {
    let tag = format!("{:x}", random_u64());
    let names = [
        format!("{label}-one-{tag}.example.com"),
        format!("{label}-two-{tag}.example.com"),
    ];
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (account, _) = new_account(ca, &[]).await;
    let mut order = ready_order(&account, http01, &names).await;
    let (csr, _) = cert_csr(&names);
    order.finalize_csr(&csr).await.expect("finalize");
    order
        .poll_certificate(&RetryPolicy::new().timeout(POLL_TIMEOUT))
        .await
        .expect("poll the certificate");
}

/// A plain-HTTP client for the debug listeners.
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build the http client")
}

/// `GET url`: the status and the body.
async fn get(http: &reqwest::Client, url: &str) -> (u16, String) {
    let response = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|err| panic!("GET {url}: {err}"));
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    (status, body)
}

/// One process's metrics, as its `/metrics` rendered them.
struct Metrics {
    process: String,
    text: String,
}

impl Metrics {
    async fn scrape(http: &reqwest::Client, ca: &DevCa, process: &str) -> Self {
        let url = format!("http://127.0.0.1:{}/metrics", ca.debug_port(process));
        let (status, text) = get(http, &url).await;
        assert_eq!(status, 200, "{url}: {text}");
        assert!(
            text.ends_with("# EOF\n"),
            "{url} is not OpenMetrics text:\n{text}"
        );
        Self {
            process: process.to_owned(),
            text,
        }
    }

    /// The sum of the samples of `name` whose labels include `labels`, and how
    /// many there are.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> (f64, usize) {
        let mut total = 0.0;
        let mut count = 0;
        for line in self.text.lines().filter(|line| !line.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (series_name, pairs) = match series.split_once('{') {
                Some((series_name, rest)) => {
                    (series_name, rest.trim_end_matches('}').split(',').collect())
                }
                None => (series, Vec::new()),
            };
            let wanted = labels
                .iter()
                .all(|(key, value)| pairs.contains(&format!("{key}=\"{value}\"").as_str()));
            if series_name == name
                && wanted
                && let Ok(value) = value.parse::<f64>()
            {
                total += value;
                count += 1;
            }
        }
        (total, count)
    }

    /// Asserts that `name{labels}` has samples adding up to at least 1.
    fn counted(&self, name: &str, labels: &[(&str, &str)]) {
        let (total, _) = self.sum(name, labels);
        assert!(
            total >= 1.0,
            "{}: no {name}{labels:?} (sum {total}) in\n{}",
            self.process,
            self.text
        );
    }

    /// Asserts that the histogram `name` has observations matching `labels`, and
    /// that they took time.
    fn timed(&self, name: &str, labels: &[(&str, &str)]) {
        self.counted(&format!("{name}_count"), labels);
        let (sum, _) = self.sum(&format!("{name}_sum"), labels);
        assert!(
            sum > 0.0,
            "{}: {name}{labels:?} took no time in\n{}",
            self.process,
            self.text
        );
    }

    /// Asserts that the gauge `name{labels}` has a sample, whatever its value.
    fn present(&self, name: &str, labels: &[(&str, &str)]) {
        let (_, samples) = self.sum(name, labels);
        assert!(
            samples > 0,
            "{}: no {name}{labels:?} in\n{}",
            self.process,
            self.text
        );
    }
}

const GRPC_SERVER_REQUESTS: &str = "basalt_grpc_server_requests_total";
const GRPC_SERVER_LATENCY: &str = "basalt_grpc_server_request_duration_seconds";
const GRPC_CLIENT_LATENCY: &str = "basalt_grpc_client_request_duration_seconds";
const HTTP_LATENCY: &str = "basalt_http_request_duration_seconds";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_serves_metrics_and_health_after_an_issuance() {
    let ca = DevCa::start("observability-metrics");
    let http01 = Http01::start(ca.http01_port).await;
    issue_one(&ca, &http01, "metrics").await;
    let http = http_client();

    // The responder serves the intermediates beside its OCSP answers.
    let issuer = format!("{}issuers/ecdsa.der", ca.ocsp_url());
    assert_eq!(get(&http, &issuer).await.0, 200, "{issuer}");

    let wfe = Metrics::scrape(&http, &ca, "wfe").await;
    wfe.timed(HTTP_LATENCY, &[("endpoint", "/acme/new-order")]);
    wfe.timed(HTTP_LATENCY, &[("endpoint", "/acme/order/{id}/finalize")]);
    wfe.counted(
        "basalt_http_requests_total",
        &[("endpoint", "/acme/order/{id}/finalize"), ("status", "200")],
    );
    // Never the URL with its identifiers.
    assert!(!wfe.text.contains("/acme/order/1"), "{}", wfe.text);
    wfe.timed(
        GRPC_CLIENT_LATENCY,
        &[("method", "basalt.ra.RegistrationAuthority/FinalizeOrder")],
    );
    wfe.counted(
        "basalt_grpc_client_requests_total",
        &[
            ("method", "basalt.ra.RegistrationAuthority/FinalizeOrder"),
            ("code", "OK"),
        ],
    );

    let ra = Metrics::scrape(&http, &ca, "ra").await;
    let finalize = [
        ("service", "basalt.ra.RegistrationAuthority"),
        ("method", "FinalizeOrder"),
    ];
    ra.timed(GRPC_SERVER_LATENCY, &finalize);
    ra.counted(
        GRPC_SERVER_REQUESTS,
        &[finalize[0], finalize[1], ("code", "OK")],
    );
    ra.timed(
        GRPC_CLIENT_LATENCY,
        &[("method", "basalt.va.Validation/Validate")],
    );
    ra.timed(
        GRPC_CLIENT_LATENCY,
        &[("method", "basalt.ca.CertificateAuthority/IssueCertificate")],
    );
    ra.counted(
        "basalt_rate_limit_decisions_total",
        &[("decision", "allowed")],
    );

    for va in std::iter::once("va").chain(ca.remote_vas().iter().copied()) {
        let metrics = Metrics::scrape(&http, &ca, va).await;
        metrics.counted(
            GRPC_SERVER_REQUESTS,
            &[("service", "basalt.va.Validation"), ("method", "Validate")],
        );
        if va == "va" {
            metrics.counted(
                "basalt_validations_total",
                &[("challenge_type", "http-01"), ("result", "valid")],
            );
            metrics.timed(
                "basalt_validation_duration_seconds",
                &[("challenge_type", "http-01")],
            );
            metrics.timed(
                GRPC_SERVER_LATENCY,
                &[("service", "basalt.va.Validation"), ("method", "Validate")],
            );
        }
    }

    let ca_metrics = Metrics::scrape(&http, &ca, "ca").await;
    for kind in ["precertificate", "certificate"] {
        ca_metrics.counted(
            "basalt_issuances_total",
            &[("profile", "classic"), ("kind", kind)],
        );
    }
    ca_metrics.timed(
        GRPC_SERVER_LATENCY,
        &[
            ("service", "basalt.ca.CertificateAuthority"),
            ("method", "IssueCertificate"),
        ],
    );
    ca_metrics.timed(
        GRPC_CLIENT_LATENCY,
        &[("method", "basalt.sa.Storage/AddCertificate")],
    );

    let sa = Metrics::scrape(&http, &ca, "sa").await;
    sa.timed(
        GRPC_SERVER_LATENCY,
        &[
            ("service", "basalt.sa.Storage"),
            ("method", "AddCertificate"),
        ],
    );
    sa.timed(
        GRPC_SERVER_LATENCY,
        &[("service", "basalt.sa.StorageReadOnly")],
    );
    sa.present("basalt_db_pool_connections", &[("state", "idle")]);
    sa.present("basalt_db_pool_connections", &[("state", "in_use")]);

    let nonce = Metrics::scrape(&http, &ca, "nonce").await;
    nonce.timed(
        GRPC_SERVER_LATENCY,
        &[("service", "basalt.nonce.Nonce"), ("method", "NewNonce")],
    );

    // The responder asks the SA for status changes on a timer of its own.
    let deadline = Instant::now() + METRIC_TIMEOUT;
    let ocsp = loop {
        let ocsp = Metrics::scrape(&http, &ca, "ocsp").await;
        if ocsp.sum(&format!("{GRPC_CLIENT_LATENCY}_count"), &[]).0 >= 1.0
            || Instant::now() > deadline
        {
            break ocsp;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    ocsp.timed(GRPC_CLIENT_LATENCY, &[]);
    ocsp.timed(HTTP_LATENCY, &[("endpoint", "/issuers/ecdsa.der")]);

    for process in ca.services() {
        let port = ca.debug_port(process);
        let live = get(&http, &format!("http://127.0.0.1:{port}/health/live")).await;
        assert_eq!(live, (200, "live\n".to_owned()), "{process}");
        let ready = get(&http, &format!("http://127.0.0.1:{port}/health/ready")).await;
        assert_eq!(ready, (200, "ready\n".to_owned()), "{process}");
    }
}

/// One span as the collector received it.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    name: String,
    trace_id: Vec<u8>,
}

/// An OTLP/gRPC trace collector on 127.0.0.1 that keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
                .map(|value| match value {
                    any_value::Value::StringValue(name) => name.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    received.push(Received {
                        service: service.clone(),
                        name: span.name,
                        trace_id: span.trace_id,
                    });
                }
            }
        }
        self.spans.lock().expect("spans lock").extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    /// Listens on a free port of 127.0.0.1 (plaintext HTTP/2) for as long as the
    /// test's runtime lives; returns its endpoint URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the collector");
        let address = listener.local_addr().expect("the collector's address");
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        format!("http://{address}")
    }

    /// For each trace, the services that sent spans of it and the spans' names.
    fn traces(&self) -> BTreeMap<Vec<u8>, (BTreeSet<String>, BTreeSet<String>)> {
        let mut traces: BTreeMap<Vec<u8>, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
        for span in self.spans.lock().expect("spans lock").iter() {
            let trace = traces.entry(span.trace_id.clone()).or_default();
            trace.0.insert(span.service.clone());
            trace.1.insert(span.name.clone());
        }
        traces
    }
}

/// The services whose spans one issuance's trace must hold.
const ISSUANCE_SERVICES: [&str; 5] = [
    "basalt-wfe",
    "basalt-ra",
    "basalt-va",
    "basalt-ca",
    "basalt-sa",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_issuance_is_one_trace_across_the_services() {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    // The CAA recheck at finalize brings the VA into the issuance's trace.
    let ca = DevCa::builder("observability-traces")
        .arg("--otlp-endpoint")
        .arg(endpoint.clone())
        .arg("--caa-recheck-after")
        .arg("0s")
        .start();
    ca.wait_for_stdout_line(
        &format!("Traces: exported to {endpoint} (OTLP/gRPC)"),
        Duration::from_secs(5),
    );
    let http01 = Http01::start(ca.http01_port).await;
    issue_one(&ca, &http01, "traces").await;

    let wanted: BTreeSet<String> = ISSUANCE_SERVICES.iter().map(|s| (*s).to_owned()).collect();
    let deadline = Instant::now() + SPANS_TIMEOUT;
    loop {
        let traces = collector.traces();
        let issuance = traces.values().find(|(services, names)| {
            services.is_superset(&wanted)
                && names.contains("basalt.ca.CertificateAuthority/IssueCertificate")
        });
        // The asynchronous validation keeps the trace of the challenge request.
        let validation = traces.values().find(|(services, names)| {
            services.contains("basalt-wfe")
                && services.contains("basalt-ra")
                && names.contains("basalt.va.Validation/Validate")
        });
        if let (Some(issuance), Some(_)) = (issuance, validation) {
            let (_, names) = issuance;
            for name in [
                "POST /acme/order/{id}/finalize",
                "basalt.ra.RegistrationAuthority/FinalizeOrder",
                "basalt.va.Validation/CheckCaa",
                "basalt.sa.Storage/AddCertificate",
            ] {
                assert!(names.contains(name), "no {name} span in {names:?}");
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no trace with spans from {wanted:?} within {SPANS_TIMEOUT:?}; traces (services, \
             span names): {:#?}",
            traces.values().collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
