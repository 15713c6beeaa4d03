//! OpenTelemetry traces: the OTLP/gRPC exporter behind `[telemetry]
//! otlp_endpoint`, and the W3C Trace Context (`traceparent`) carried in the
//! headers of every gRPC call, so one ACME request is one trace across the
//! processes it reaches.
//!
//! Spans are ordinary `tracing` spans; a `tracing-opentelemetry` layer turns
//! those of Basalt's own crates into OpenTelemetry spans. Without an endpoint no
//! layer is installed, and [`inject`] and [`set_remote_parent`] do nothing.

use basalt_config::TelemetryConfig;
use http::HeaderMap;
use http::HeaderName;
use http::HeaderValue;
use opentelemetry::Context;
use opentelemetry::KeyValue;
use opentelemetry::propagation::Extractor;
use opentelemetry::propagation::Injector;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::Sampler;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing::Metadata;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::Registry;

/// The exporter's provider, kept to flush the spans still queued at shutdown.
pub(crate) struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Exports the spans still queued and stops the exporter; blocks, so it
    /// runs off the async worker threads.
    pub(crate) async fn shutdown(self) {
        let provider = self.provider;
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("cannot flush the last trace spans: {err}"),
            Err(err) => eprintln!("cannot flush the last trace spans: {err}"),
        }
    }
}

/// The layer that turns spans into OpenTelemetry spans, on the registry itself.
pub(crate) type TraceLayer = Box<dyn Layer<Registry> + Send + Sync + 'static>;

/// The OTLP exporter for `service` (resource `service.name` = `basalt-<service>`)
/// as a layer, when `config` names an endpoint. Must run inside the Tokio runtime,
/// which carries the exporter's connection.
pub(crate) fn layer(
    service: &str,
    config: &TelemetryConfig,
) -> Result<Option<(TraceLayer, Traces)>, String> {
    let Some(endpoint) = &config.otlp_endpoint else {
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .build()
        .map_err(|err| format!("cannot export traces to {endpoint}: {err}"))?;
    let ratio = config.trace_sample_ratio.get();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(format!("basalt-{service}"))
                .with_attribute(KeyValue::new("service.instance.id", instance_id()))
                .build(),
        )
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("basalt"))
        .with_filter(crate::StaticFilter(is_traced))
        .boxed();
    Ok(Some((layer, Traces { provider })))
}

/// What tells this process from the others of its service (a primary VA from
/// its remotes, one WFE replica from another): the host's name (a container's
/// ID) and the process ID.
fn instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default();
    let pid = std::process::id();
    if host.is_empty() {
        pid.to_string()
    } else {
        format!("{host}/{pid}")
    }
}

/// Whether a span (or event) becomes part of a trace: Basalt's own, at `info` and
/// above. The libraries' spans (h2, hyper, tonic) stay out, among them those of
/// the exporter's own calls, which would otherwise be traced in turn.
fn is_traced(metadata: &Metadata<'_>) -> bool {
    metadata.target().starts_with("basalt") && *metadata.level() <= Level::INFO
}

/// Writes the trace context of `span` into `headers` as `traceparent` (and
/// `tracestate`), for the next hop to continue the trace.
pub fn inject(span: &Span, headers: &mut HeaderMap) {
    inject_context(&span.context(), headers);
}

/// Makes `span`, which must not have been entered yet, a child of the trace
/// context `headers` carry, if any.
pub fn set_remote_parent(span: &Span, headers: &HeaderMap) {
    let parent = extract_context(headers);
    // Without the OpenTelemetry layer (no endpoint) there is nothing to set.
    let _ = span.set_parent(parent);
}

/// Writes `cx` into `headers` in W3C Trace Context form.
pub fn inject_context(cx: &Context, headers: &mut HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
}

/// The W3C Trace Context in `headers` (an empty context if there is none).
pub fn extract_context(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::Mutex;

    use opentelemetry::trace::SpanContext;
    use opentelemetry::trace::SpanId;
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry::trace::TraceFlags;
    use opentelemetry::trace::TraceId;
    use opentelemetry::trace::TraceState;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::SpanData;
    use opentelemetry_sdk::trace::SpanExporter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Keeps the spans it is given.
    #[derive(Clone, Debug, Default)]
    struct Kept(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Kept {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    fn remote_context() -> Context {
        let span = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        Context::new().with_remote_span_context(span)
    }

    #[test]
    fn traceparent_round_trips_through_headers() {
        let mut headers = HeaderMap::new();
        inject_context(&remote_context(), &mut headers);
        assert_eq!(
            headers["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        let extracted = extract_context(&headers);
        let span = extracted.span();
        let span = span.span_context();
        assert!(span.is_remote());
        assert_eq!(
            span.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert_eq!(
            span.span_id(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap()
        );
        // No header, no context; a malformed one is ignored.
        assert!(!extract_context(&HeaderMap::new()).has_active_span());
        let mut bad = HeaderMap::new();
        bad.insert("traceparent", HeaderValue::from_static("00-zz-00-01"));
        assert!(!extract_context(&bad).has_active_span());
    }

    #[test]
    fn a_span_continues_the_remote_trace_and_passes_it_on() {
        let exporter = Kept::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("test"))
            .with_filter(crate::StaticFilter(is_traced));
        let subscriber = tracing_subscriber::registry().with(layer);
        let mut incoming = HeaderMap::new();
        inject_context(&remote_context(), &mut incoming);
        let mut outgoing = HeaderMap::new();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(target: "basalt_test", "call");
            set_remote_parent(&span, &incoming);
            let _entered = span.enter();
            inject(&Span::current(), &mut outgoing);
            // A library's span is not traced.
            tracing::info_span!(target: "h2", "frame").in_scope(|| {});
        });
        let spans = exporter.0.lock().unwrap().clone();
        assert_eq!(spans.len(), 1, "{spans:?}");
        let span = &spans[0];
        assert_eq!(
            span.span_context.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert_eq!(
            span.parent_span_id,
            SpanId::from_hex("00f067aa0ba902b7").unwrap()
        );
        // The next hop is told this span, in the same trace.
        let sent = outgoing["traceparent"].to_str().unwrap();
        assert_eq!(
            sent,
            format!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
                span.span_context.span_id()
            )
        );
    }
}
