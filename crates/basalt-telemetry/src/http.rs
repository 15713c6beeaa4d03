//! HTTP servers (the WFE's ACME API, the OCSP responder): a span and the
//! `http_requests` metrics for every request.

use std::time::Instant;

use axum::Router;
use axum::extract::MatchedPath;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The endpoint of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// `router` with every request counted and timed by endpoint (the route that took
/// it, e.g. `/acme/order/{id}`, never the URL with its identifiers) and run
/// inside a span of its own, the root of the request's trace. Apply it last, so
/// that it sees the matched route and wraps the other middleware.
pub fn instrument(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(observe))
}

async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    // Few fields: the span's name is on every log line of the request.
    let span = tracing::info_span!(
        "http",
        otel.name = %format_args!("{} {endpoint}", request.method()),
        otel.kind = "server",
        http.response.status_code = tracing::field::Empty,
    );
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    crate::metrics::http_request(&endpoint, status, started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn requests_are_counted_by_route_not_by_url() {
        let router =
            instrument(Router::new().route("/unit-test/order/{id}", get(|| async { "order" })));
        for path in ["/unit-test/order/1", "/unit-test/order/2", "/elsewhere"] {
            let request = Request::builder().uri(path).body(Body::empty()).unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            let expected = if path == "/elsewhere" {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            assert_eq!(response.status(), expected);
        }
        let text = crate::metrics::render();
        assert!(
            text.contains(
                "basalt_http_requests_total{endpoint=\"/unit-test/order/{id}\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "basalt_http_request_duration_seconds_count{endpoint=\"/unit-test/order/{id}\"} 2"
            ),
            "{text}"
        );
        assert!(!text.contains("/unit-test/order/1"), "{text}");
        assert!(
            text.contains("basalt_http_requests_total{endpoint=\"unmatched\",status=\"404\"}"),
            "{text}"
        );
    }
}
