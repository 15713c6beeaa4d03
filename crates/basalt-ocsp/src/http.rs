//! OCSP over HTTP (RFC 6960 appendix A, RFC 5019 §5 and §6): POST and GET, plain
//! HTTP by design (the responses are signed, and TLS would need revocation checking
//! of its own). The issuer certificates are served beside the answers, for the
//! caIssuers URLs (RFC 5280 §4.2.2.1), and so are the CRL shards, for the CRL
//! distribution points (RFC 5280 §4.2.1.13).

use std::future::Future;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::http::HeaderName;
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::http::Uri;
use axum::http::header;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::routing::post;
use axum::serve::ListenerExt;
use basalt_core::Error;
use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::GeneralPurpose;
use base64::engine::GeneralPurposeConfig;
use der::Encode;
use time::OffsetDateTime;
use time::UtcOffset;
use tracing::debug;
use tracing::info;
use tracing::warn;
use x509_ocsp::OcspResponse;
use x509_ocsp::OcspResponseStatus;

use crate::CrlStore;
use crate::Responder;
use crate::crl::PublishedCrl;
use crate::crl::ShardId;
use crate::responder::Answer;
use crate::responder::SignedResponse;
use crate::responder::sha256;

/// The largest OCSP request accepted, in a POST body or a GET path. A request for
/// one certificate is about 80 bytes; extensions and a signature add a few hundred.
const MAX_REQUEST_LEN: usize = 10 * 1024;

const OCSP_RESPONSE: &str = "application/ocsp-response";

/// The media type of a DER certificate (RFC 2585 §4.1).
const PKIX_CERT: &str = "application/pkix-cert";

/// How long HTTP caches may keep an issuer certificate, in seconds: a day.
const ISSUER_CERT_MAX_AGE: u64 = 86_400;

/// The media type of a DER CRL (RFC 2585 §4.2).
const PKIX_CRL: &str = "application/pkix-crl";

/// How long a client asking for a CRL shard not generated yet is told to wait, in
/// seconds: the first generation follows the responder's start at once.
const CRL_RETRY_AFTER: u64 = 5;

/// Standard base64 that also accepts missing padding.
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// URL-safe base64, which some clients send although RFC 6960 asks for the standard
/// alphabet.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The responder's routes: `POST /` with a DER `application/ocsp-request` body, and
/// `GET /{url-encoded base64 of the DER request}`; `GET <path>` (or `HEAD`) for
/// each issuer certificate given a path; and with `crls`, `GET {crl_path}{shard}.crl`
/// for each shard of each CRL issuer (200 with the newest CRL, 503 before the
/// first one, 404 for a shard there is not).
///
/// Every OCSP answer, including errors, is an `application/ocsp-response` with HTTP
/// 200, since OCSP clients (OpenSSL among them) read the OCSP status only from a 200.
/// Successful responses carry the RFC 5019 §6 caching headers; error responses carry
/// `Cache-Control: no-store` so that no cache keeps a transient failure.
///
/// The issuer paths and the CRL directories are static routes, which the router
/// prefers to the catch-all that reads any other path as a base64 OCSP request. A
/// POST to one of them is still an OCSP request, as a POST to any path is.
pub fn router(responder: Arc<Responder>, crls: Option<Arc<CrlStore>>) -> Router {
    let mut router = Router::new().route("/", post(post_request).get(empty_get));
    for (path, der) in responder.issuer_certs() {
        let certificate = IssuerCertificate::new(der);
        let serve = move || std::future::ready(certificate.response());
        router = router.route(path, get(serve).post(post_request));
    }
    if let Some(crls) = &crls {
        for (issuer, crl_path) in crls.crl_paths() {
            let shards = CrlShards {
                crls: crls.clone(),
                responder: responder.clone(),
                issuer,
                crl_path: crl_path.to_owned(),
            };
            let serve = move |uri: Uri, headers: HeaderMap| {
                std::future::ready(shards.response(uri.path(), &headers))
            };
            // The directory itself names no shard; without a route of its own it
            // would fall to the OCSP catch-all.
            let directory = || std::future::ready(crl_not_found());
            router = router
                .route(crl_path, get(directory).post(post_request))
                .route(
                    &format!("{crl_path}{{*file}}"),
                    get(serve).post(post_request),
                );
        }
    }
    router
        .route("/{*request}", post(post_request).get(get_request))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_LEN))
        .with_state(responder)
}

/// Serves `router` over plain HTTP on `listen` until `shutdown` completes, then
/// stops accepting connections and lets in-flight requests finish for up to
/// `drain_timeout`.
pub async fn serve(
    listen: SocketAddr,
    router: Router,
    drain_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|err| Error::internal(format!("cannot listen on {listen}: {err}")))?;
    serve_on(listener, router, drain_timeout, shutdown).await
}

/// Like [`serve`], on a listener the caller already bound (e.g. to port 0 in tests
/// and the `basalt dev` launcher).
pub async fn serve_on(
    listener: std::net::TcpListener,
    router: Router,
    drain_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let listen = listener
        .local_addr()
        .map_err(|err| Error::internal(format!("cannot read the listening address: {err}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|err| Error::internal(format!("cannot configure {listen}: {err}")))?;
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|err| Error::internal(format!("cannot listen on {listen}: {err}")))?;
    info!(%listen, "ocsp http listener starting");
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    // `TCP_NODELAY`: answers go out at once instead of waiting on a delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(error = %err, "cannot set TCP_NODELAY");
        }
    });
    let serving = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopping_tx.send(());
    });
    let drain_deadline = async move {
        match stopping_rx.await {
            Ok(()) => tokio::time::sleep(drain_timeout).await,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        served = serving.into_future() => served.map_err(|err| {
            Error::internal(format!("ocsp http listener on {listen} failed: {err}"))
        })?,
        () = drain_deadline => {
            warn!(%listen, timeout = ?drain_timeout, "requests still open after the drain timeout; stopping anyway");
        }
    }
    info!(%listen, "ocsp http listener stopped");
    Ok(())
}

/// An issuer certificate as served over HTTP (RFC 5280 §4.2.2.1: one DER
/// certificate, `application/pkix-cert`).
#[derive(Clone)]
struct IssuerCertificate {
    der: Bytes,
    etag: String,
}

impl IssuerCertificate {
    fn new(der: &[u8]) -> Self {
        Self {
            der: Bytes::copy_from_slice(der),
            etag: etag(der),
        }
    }

    /// The certificate, cacheable for a day: it changes only when the operator
    /// replaces the file and restarts the responder.
    fn response(&self) -> Response {
        let mut headers = HeaderMap::new();
        set(&mut headers, header::CONTENT_TYPE, PKIX_CERT.to_owned());
        set(
            &mut headers,
            header::CACHE_CONTROL,
            format!("max-age={ISSUER_CERT_MAX_AGE}, public"),
        );
        set(&mut headers, header::ETAG, self.etag.clone());
        (StatusCode::OK, headers, self.der.clone()).into_response()
    }
}

/// The shards of one CRL issuer, as served over HTTP.
#[derive(Clone)]
struct CrlShards {
    crls: Arc<CrlStore>,
    responder: Arc<Responder>,
    /// The issuer's index in the store.
    issuer: usize,
    crl_path: String,
}

impl CrlShards {
    /// The answer to `GET {crl_path}{file}`: see [`crl_response`].
    fn response(&self, path: &str, request_headers: &HeaderMap) -> Response {
        let crls = &self.crls;
        let shard = path
            .strip_prefix(self.crl_path.as_str())
            .and_then(shard_of_file)
            .filter(|shard| *shard < crls.shards());
        let Some(shard) = shard else {
            debug!(path, "no such crl shard");
            return crl_not_found();
        };
        let crl = crls.current(ShardId {
            issuer: self.issuer,
            shard,
        });
        crl_response(
            crl.as_deref(),
            self.responder.now(),
            self.responder.settings().max_age.as_secs(),
            request_headers,
        )
    }
}

/// The shard a CRL file name gives, `{shard}.crl` with the shard in plain decimal
/// (no sign, no leading zero), as the CA writes it into CRL distribution points.
fn shard_of_file(file: &str) -> Option<u32> {
    let digits = file.strip_suffix(".crl")?;
    let plain = !digits.is_empty()
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !plain {
        return None;
    }
    digits.parse().ok()
}

/// A CRL shard over HTTP: the DER `application/pkix-crl` (RFC 2585 §4.2), public
/// for `max_age` seconds at most and never past its nextUpdate, with its
/// thisUpdate as `Last-Modified` and a strong `ETag` that `If-None-Match` is
/// answered 304 for; 503 with `Retry-After` while the shard has no CRL yet.
fn crl_response(
    crl: Option<&PublishedCrl>,
    now: OffsetDateTime,
    max_age: u64,
    request_headers: &HeaderMap,
) -> Response {
    let Some(crl) = crl else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::RETRY_AFTER, CRL_RETRY_AFTER.to_string()),
                (header::CACHE_CONTROL, "no-store".to_owned()),
                (header::CONTENT_TYPE, "text/plain".to_owned()),
            ],
            "this CRL shard has not been generated yet\n",
        )
            .into_response();
    };
    let left = u64::try_from((crl.next_update - now).whole_seconds()).unwrap_or(0);
    let mut headers = HeaderMap::new();
    set(
        &mut headers,
        header::CACHE_CONTROL,
        format!("public, max-age={}", max_age.min(left)),
    );
    set(
        &mut headers,
        header::LAST_MODIFIED,
        http_date(crl.this_update),
    );
    set(&mut headers, header::ETAG, crl.etag.clone());
    // RFC 9110 §13.1.2: a cache revalidating the shard it holds gets 304 until
    // the shard is regenerated.
    if if_none_match(request_headers, crl.etag.as_bytes()) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    set(&mut headers, header::CONTENT_TYPE, PKIX_CRL.to_owned());
    (StatusCode::OK, headers, crl.der.clone()).into_response()
}

/// 404 for a path under a CRL directory that names no shard.
fn crl_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain")],
        "no such CRL shard\n",
    )
        .into_response()
}

async fn post_request(
    State(responder): State<Arc<Responder>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // Content-Type is not checked: RFC 5019 §5 asks clients to send
    // application/ocsp-request, and a DER body that decodes is answered whatever it says.
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            debug!(%rejection, "unreadable ocsp request body");
            return failure(OcspResponseStatus::MalformedRequest);
        }
    };
    let answer = responder.respond(&body).await;
    http_response(&responder, answer)
}

async fn get_request(
    State(responder): State<Arc<Responder>>,
    uri: Uri,
    request_headers: HeaderMap,
) -> Response {
    let encoded = uri.path().trim_start_matches('/');
    let Some(request) = decode_get_path(encoded) else {
        debug!(len = encoded.len(), "undecodable ocsp get request");
        return failure(OcspResponseStatus::MalformedRequest);
    };
    let answer = responder.respond(&request).await;
    let mut response = http_response(&responder, answer);
    // RFC 9110 §13.1.2: a cache revalidating a response it holds gets 304 while
    // the response is the same, i.e. until the responder re-signs it.
    if response.status() == StatusCode::OK
        && let Some(etag) = response.headers().get(header::ETAG)
        && if_none_match(&request_headers, etag.as_bytes())
    {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response.headers_mut().remove(header::CONTENT_TYPE);
        *response.body_mut() = axum::body::Body::empty();
    }
    response
}

/// Whether an `If-None-Match` header of `headers` lists `etag` (or is `*`).
fn if_none_match(headers: &HeaderMap, etag: &[u8]) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .flat_map(|value| value.as_bytes().split(|byte| *byte == b','))
        .map(<[u8]>::trim_ascii)
        .any(|tag| tag == b"*" || tag == etag || tag.strip_prefix(b"W/") == Some(etag))
}

async fn empty_get() -> Response {
    failure(OcspResponseStatus::MalformedRequest)
}

/// Decodes the path of a GET request: percent-encoding, then base64 (RFC 6960
/// appendix A.1). Tolerates unescaped `/` and `+`, a `+` turned into a space,
/// missing padding and the URL-safe alphabet.
fn decode_get_path(path: &str) -> Option<Vec<u8>> {
    // Base64 makes MAX_REQUEST_LEN bytes 4/3 longer, and escaping triples the few
    // `/`, `+` and `=` at worst.
    if path.is_empty() || path.len() > 4 * MAX_REQUEST_LEN {
        return None;
    }
    let mut text = percent_decode(path.as_bytes())?;
    for byte in &mut text {
        if *byte == b' ' {
            *byte = b'+';
        }
    }
    let engine = if text.iter().any(|b| *b == b'-' || *b == b'_') {
        &URL_SAFE_LENIENT
    } else {
        &STANDARD_LENIENT
    };
    let request = engine.decode(&text).ok()?;
    (request.len() <= MAX_REQUEST_LEN).then_some(request)
}

/// Undoes `%XX` escapes; `None` if one is invalid.
fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let [high, low, ..] = tail else {
                return None;
            };
            let hex = |b: u8| char::from(b).to_digit(16);
            let value = hex(*high)? * 16 + hex(*low)?;
            out.push(u8::try_from(value).ok()?);
            rest = &tail[2..];
        } else {
            out.push(byte);
            rest = tail;
        }
    }
    Some(out)
}

/// Turns an [`Answer`] into the HTTP response.
fn http_response(responder: &Responder, answer: Answer) -> Response {
    let status = match &answer {
        Answer::Failed(status) => *status,
        Answer::Signed(_) => OcspResponseStatus::Successful,
    };
    basalt_telemetry::metrics::ocsp_response(status_name(status));
    match answer {
        Answer::Failed(status) => failure(status),
        Answer::Signed(signed) => success(responder, signed),
    }
}

/// The name RFC 6960 §4.2.1 gives `status`.
fn status_name(status: OcspResponseStatus) -> &'static str {
    match status {
        OcspResponseStatus::Successful => "successful",
        OcspResponseStatus::MalformedRequest => "malformedRequest",
        OcspResponseStatus::InternalError => "internalError",
        OcspResponseStatus::TryLater => "tryLater",
        OcspResponseStatus::SigRequired => "sigRequired",
        OcspResponseStatus::Unauthorized => "unauthorized",
    }
}

/// A signed response with its RFC 5019 §6.2 caching headers.
fn success(responder: &Responder, signed: SignedResponse) -> Response {
    let now = responder.now();
    let max_age = responder.settings().max_age.as_secs();
    let max_age = match signed.next_update {
        Some(next_update) => {
            let left = (next_update - now).whole_seconds();
            max_age.min(u64::try_from(left).unwrap_or(0))
        }
        None => max_age,
    };
    let mut headers = HeaderMap::new();
    set(&mut headers, header::CONTENT_TYPE, OCSP_RESPONSE.to_owned());
    set(
        &mut headers,
        header::CACHE_CONTROL,
        format!("max-age={max_age}, public, no-transform, must-revalidate"),
    );
    let fixed = signed.headers;
    headers.insert(header::LAST_MODIFIED, fixed.last_modified);
    if let Some(expires) = fixed.expires {
        headers.insert(header::EXPIRES, expires);
    }
    headers.insert(header::ETAG, fixed.etag);
    (StatusCode::OK, headers, signed.der).into_response()
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: String) {
    match HeaderValue::try_from(value) {
        Ok(value) => {
            headers.insert(name, value);
        }
        Err(err) => warn!(header = %name, error = %err, "cannot set ocsp response header"),
    }
}

/// An OCSPResponse carrying only `status`, which RFC 6960 §4.2.1 sends without
/// responseBytes.
fn failure(status: OcspResponseStatus) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, OCSP_RESPONSE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        status_only(status),
    )
        .into_response()
}

/// The DER of an OCSPResponse with only a responseStatus.
fn status_only(status: OcspResponseStatus) -> Vec<u8> {
    let response = OcspResponse {
        response_status: status,
        response_bytes: None,
    };
    // Encoding a lone ENUMERATED cannot fail; the fallback is the same five bytes,
    // SEQUENCE { ENUMERATED status }, written out.
    response
        .to_der()
        .unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, status as u8])
}

/// A strong entity tag: the quoted hex SHA-256 of the body.
pub(crate) fn etag(body: &[u8]) -> String {
    let mut tag = String::with_capacity(66);
    tag.push('"');
    for byte in sha256(body) {
        tag.push_str(&format!("{byte:02x}"));
    }
    tag.push('"');
    tag
}

/// An RFC 7231 §7.1.1.1 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn http_date(at: OffsetDateTime) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let at = at.to_offset(UtcOffset::UTC);
    let day = DAYS[usize::from(at.weekday().number_days_from_monday())];
    let month = MONTHS[usize::from(u8::from(at.month()) - 1)];
    format!(
        "{day}, {:02} {month} {:04} {:02}:{:02}:{:02} GMT",
        at.day(),
        at.year(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests;
