//! The ACME resources (RFC 8555 §7) and the router that serves them.

use std::convert::Infallible;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::DefaultBodyLimit;
use axum::extract::FromRequestParts;
use axum::extract::Path;
use axum::extract::RawQuery;
use axum::extract::Request;
use axum::extract::State;
use axum::http::HeaderName;
use axum::http::HeaderValue;
use axum::http::Method;
use axum::http::StatusCode;
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware;
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::routing::post;
use basalt_core::Account;
use basalt_core::AccountId;
use basalt_core::AccountStatus;
use basalt_core::Authz;
use basalt_core::AuthzId;
use basalt_core::AuthzStatus;
use basalt_core::CertificateRecord;
use basalt_core::Challenge;
use basalt_core::ChallengeStatus;
use basalt_core::ChallengeType;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::NewAccount;
use basalt_core::Order;
use basalt_core::OrderId;
use basalt_core::OrderRequest;
use basalt_core::OrderStatus;
use basalt_core::PageRequest;
use basalt_core::Requester;
use basalt_core::RevocationReason;
use basalt_core::RevokeRequest;
use basalt_core::Serial;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;
use serde_json::json;
use time::OffsetDateTime;
use time::UtcOffset;
use time::format_description::well_known::Rfc3339;
use tracing::error;
use tracing::info;
use tracing::warn;

use crate::Wfe;
use crate::ari::CertId;
use crate::ari::RENEWAL_INFO_RETRY_AFTER_SECONDS;
use crate::chains::alternates_for;
use crate::der::certificate_serial;
use crate::jws::Jwk;
use crate::jws::Jws;
use crate::jws::Signer;
use crate::jws::decode_b64url;
use crate::jws::problem_with_status;
use crate::jws::verify_inner_jws;
use crate::problem::ApiError;

const REPLAY_NONCE: HeaderName = HeaderName::from_static("replay-nonce");

/// The media type of a certificate download (RFC 8555 §9.1).
const PEM_CHAIN_CONTENT_TYPE: &str = "application/pem-certificate-chain";

/// The most contacts an account may list.
const MAX_CONTACTS: usize = 10;

/// The largest request body accepted; anything longer is refused with a 413
/// malformed problem before it is parsed.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// How many orders one page of an account's orders list asks the SA for.
const ORDERS_PAGE_SIZE: u32 = 100;

/// newNonce's path: every answer from it carries a nonce, GET and HEAD included.
const NEW_NONCE_PATH: &str = "/acme/new-nonce";

/// The `Retry-After` sent with a resource that is still being worked on (RFC 8555
/// §7.4, §7.5.1), so clients poll politely.
const POLL_INTERVAL_SECONDS: &str = "1";

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// The ACME HTTP API: every resource of RFC 8555 §7.1 that Basalt implements, with
/// `Link: rel="index"` on every response and `Replay-Nonce` on all but successful
/// GETs of the directory and renewal information ([`common_headers`]).
pub fn router(wfe: Arc<Wfe>) -> Router {
    Router::new()
        .route("/directory", get(directory).post(directory_post))
        .route(
            NEW_NONCE_PATH,
            get(new_nonce_get).head(new_nonce_head).post(new_nonce_post),
        )
        .route("/acme/new-account", post(new_account))
        .route("/acme/acct/{id}", post(account))
        .route("/acme/acct/{id}/orders", post(account_orders))
        .route("/acme/key-change", post(key_change))
        .route("/acme/new-order", post(new_order))
        .route("/acme/order/{id}", post(order))
        .route("/acme/order/{id}/finalize", post(finalize))
        .route("/acme/authz/{id}", post(authz))
        .route("/acme/chall/{authz_id}/{kind}", post(challenge))
        .route("/acme/cert/{serial}", post(certificate))
        .route("/acme/cert/{serial}/{n}", post(certificate_alternate))
        .route("/acme/revoke-cert", post(revoke_cert))
        .route(
            "/acme/renewal-info/{cert_id}",
            get(renewal_info).post(renewal_info_post),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(wfe.clone(), common_headers))
        .with_state(wfe)
}

/// Adds a fresh nonce (RFC 8555 §6.5) and the directory link (§7.1) to every
/// response but a successful GET of the directory or renewal information: those
/// are fetched far more often than anything is posted, a nonce costs a call to the
/// nonce service, and RFC 8555 asks for one on POST answers (and on newNonce's).
/// Boulder gives no GET answer a nonce; Basalt deliberately keeps it on error
/// answers to a GET, so that a client that went astray can go on with a POST at
/// once.
async fn common_headers(State(wfe): State<Arc<Wfe>>, request: Request, next: Next) -> Response {
    let plain_get = request.method() == Method::GET && request.uri().path() != NEW_NONCE_PATH;
    let mut response = next.run(request).await;
    let wants_nonce = !(plain_get && response.status().is_success());
    let headers = response.headers_mut();
    if wants_nonce {
        match wfe.nonces.new_nonce().await {
            Ok(nonce) => match HeaderValue::from_str(&nonce) {
                Ok(value) => {
                    headers.insert(REPLAY_NONCE, value);
                }
                Err(err) => error!(error = %err, "nonce is not a valid header value"),
            },
            Err(err) => error!(error = %err, "cannot issue a nonce"),
        }
    }
    let index = format!("<{}>;rel=\"index\"", wfe.url("/directory"));
    if let Ok(value) = HeaderValue::from_str(&index) {
        headers.append(header::LINK, value);
    }
    response
}

async fn method_not_allowed() -> Response {
    problem_with_status(
        &Error::malformed("method not allowed; ACME resources are fetched with POST-as-GET"),
        StatusCode::METHOD_NOT_ALLOWED,
    )
}

async fn not_found() -> ApiError {
    Error::not_found("no such resource").into()
}

// === Directory and nonces (RFC 8555 §7.1.1, §7.2) ===

async fn directory(State(wfe): State<Arc<Wfe>>) -> Json<Value> {
    Json(wfe.directory_json())
}

/// RFC 8555 §6.3: the directory and newNonce also answer a POST-as-GET, signed by
/// an account (as Boulder requires).
async fn directory_post(State(wfe): State<Arc<Wfe>>, jws: Jws) -> Result<Json<Value>> {
    jws.account()?;
    jws.require_post_as_get()?;
    Ok(Json(wfe.directory_json()))
}

impl Wfe {
    /// RFC 8555 §7.1.1.
    fn directory_json(&self) -> Value {
        let mut directory = json!({
            "newNonce": self.url("/acme/new-nonce"),
            "newAccount": self.url("/acme/new-account"),
            "newOrder": self.url("/acme/new-order"),
            "revokeCert": self.url("/acme/revoke-cert"),
            "keyChange": self.url("/acme/key-change"),
            "renewalInfo": self.url("/acme/renewal-info"),
        });
        let settings = self.settings();
        let mut meta = serde_json::Map::new();
        if let Some(tos) = &settings.terms_of_service {
            meta.insert("termsOfService".into(), tos.clone().into());
        }
        if let Some(website) = &settings.website {
            meta.insert("website".into(), website.clone().into());
        }
        if !settings.profiles.is_empty() {
            meta.insert("profiles".into(), json!(settings.profiles));
        }
        if !settings.caa_identities.is_empty() {
            meta.insert("caaIdentities".into(), json!(settings.caa_identities));
        }
        if settings.eab_required {
            meta.insert("externalAccountRequired".into(), true.into());
        }
        if !meta.is_empty() {
            directory["meta"] = meta.into();
        }
        directory
    }
}

async fn new_nonce_head() -> impl IntoResponse {
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")])
}

async fn new_nonce_get() -> impl IntoResponse {
    (
        StatusCode::NO_CONTENT,
        [(header::CACHE_CONTROL, "no-store")],
    )
}

/// A POST-as-GET of newNonce (RFC 8555 §6.3): 200 with an empty body, as Boulder
/// answers it; the fresh nonce comes with every response.
async fn new_nonce_post(jws: Jws) -> Result<Response> {
    jws.account()?;
    jws.require_post_as_get()?;
    Ok((StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response())
}

// === Rendering ===

fn timestamp(at: OffsetDateTime) -> Result<String, Error> {
    at.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|err| Error::internal(format!("cannot format timestamp {at}: {err}")))
}

fn problem_json(err: &Error) -> Value {
    serde_json::to_value(crate::problem::problem(err)).unwrap_or(Value::Null)
}

/// A JSON response with a status and optional `Location`.
fn respond(status: StatusCode, body: Value, location: Option<String>) -> Result<Response> {
    let mut response = (status, Json(body)).into_response();
    if let Some(location) = location {
        let value = HeaderValue::from_str(&location)
            .map_err(|_| Error::internal(format!("location {location:?} is not a header value")))?;
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Asks the client to poll again in a second.
fn poll_later(response: &mut Response) {
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(POLL_INTERVAL_SECONDS),
    );
}

/// Appends a `Link` header.
fn add_link(response: &mut Response, url: &str, rel: &str) -> Result<(), Error> {
    let link = format!("<{url}>;rel=\"{rel}\"");
    let value = HeaderValue::from_str(&link)
        .map_err(|_| Error::internal(format!("link {link:?} is not a header value")))?;
    response.headers_mut().append(header::LINK, value);
    Ok(())
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so any cursor
/// fits in a query parameter.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; anything else is taken literally.
fn percent_decode(text: &str) -> Result<String, Error> {
    let invalid = || {
        Error::malformed(format!(
            "query value {text:?} is not validly percent-encoded"
        ))
    };
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(invalid)?;
            let hex = std::str::from_utf8(hex).map_err(|_| invalid())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| invalid())?);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid())
}

/// The `cursor` query parameter; absent or empty means the first page.
fn query_cursor(query: Option<&str>) -> Result<Option<String>, Error> {
    let Some(query) = query else {
        return Ok(None);
    };
    let mut cursor = None;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == "cursor" {
            if cursor.is_some() {
                return Err(Error::malformed("the cursor query parameter is repeated"));
            }
            cursor = Some(percent_decode(value)?);
        }
    }
    Ok(cursor.filter(|cursor| !cursor.is_empty()))
}

impl Wfe {
    fn account_url(&self, id: AccountId) -> String {
        self.url(&format!("/acme/acct/{id}"))
    }

    fn order_url(&self, id: OrderId) -> String {
        self.url(&format!("/acme/order/{id}"))
    }

    fn authz_url(&self, id: AuthzId) -> String {
        self.url(&format!("/acme/authz/{id}"))
    }

    fn challenge_url(&self, id: AuthzId, kind: ChallengeType) -> String {
        self.url(&format!("/acme/chall/{id}/{kind}"))
    }

    fn certificate_url(&self, serial: &Serial) -> String {
        self.url(&format!("/acme/cert/{serial}"))
    }

    fn orders_url(&self, id: AccountId) -> String {
        self.url(&format!("/acme/acct/{id}/orders"))
    }

    /// RFC 8555 §7.1.2.
    fn account_json(&self, account: &Account) -> Result<Value, Error> {
        let key: Value = serde_json::from_str(&account.key_jwk).map_err(|err| {
            Error::internal(format!(
                "account {} has an invalid stored key: {err}",
                account.id
            ))
        })?;
        Ok(json!({
            "status": account.status.as_str(),
            "contact": account.contacts,
            "key": key,
            "createdAt": timestamp(account.created_at)?,
            "orders": self.orders_url(account.id),
        }))
    }

    /// RFC 8555 §7.1.3.
    fn order_json(&self, order: &Order) -> Result<Value, Error> {
        let mut body = json!({
            "status": order.status.as_str(),
            "expires": timestamp(order.expires)?,
            "identifiers": order.identifiers,
            "authorizations": order
                .authz_ids
                .iter()
                .map(|id| self.authz_url(*id))
                .collect::<Vec<_>>(),
            "finalize": self.url(&format!("/acme/order/{}/finalize", order.id)),
        });
        if !order.profile.is_empty() {
            body["profile"] = order.profile.clone().into();
        }
        if let Some(not_before) = order.not_before {
            body["notBefore"] = timestamp(not_before)?.into();
        }
        if let Some(not_after) = order.not_after {
            body["notAfter"] = timestamp(not_after)?.into();
        }
        if let (OrderStatus::Valid, Some(serial)) = (order.status, &order.certificate_serial) {
            body["certificate"] = self.certificate_url(serial).into();
        }
        if let Some(err) = &order.error {
            body["error"] = problem_json(err);
        }
        Ok(body)
    }

    /// RFC 8555 §7.1.4.
    fn authz_json(&self, authz: &Authz) -> Result<Value, Error> {
        let challenges = authz
            .challenges
            .iter()
            .map(|challenge| self.challenge_json(authz.id, challenge))
            .collect::<Result<Vec<_>, Error>>()?;
        let mut body = json!({
            "identifier": authz.identifier,
            "status": authz.status.as_str(),
            "expires": timestamp(authz.expires)?,
            "challenges": challenges,
        });
        if authz.wildcard {
            body["wildcard"] = true.into();
        }
        Ok(body)
    }

    /// RFC 8555 §7.1.5, §8.
    fn challenge_json(&self, authz_id: AuthzId, challenge: &Challenge) -> Result<Value, Error> {
        let mut body = json!({
            "type": challenge.kind.as_str(),
            "url": self.challenge_url(authz_id, challenge.kind),
            "token": challenge.token,
            "status": challenge.status.as_str(),
        });
        if let Some(validated) = challenge.validated {
            body["validated"] = timestamp(validated)?.into();
        }
        if let Some(err) = &challenge.error {
            body["error"] = problem_json(err);
        }
        Ok(body)
    }
}

// === Helpers ===

/// Parses an ID from a URL path; an unparsable one names no resource.
fn path_id<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, Error> {
    text.parse()
        .map_err(|_| Error::not_found(format!("{what} {text:?} not found")))
}

/// The address of the client at the other end of the TCP connection, if the
/// router runs on a listener that records it ([`crate::serve_https`] does; a router
/// driven without a socket, as in tests, has none).
///
/// Deliberately not `X-Forwarded-For` or `Forwarded`: any client can write those.
/// A WFE behind a reverse proxy sees the proxy's address here; believing the
/// proxy's header needs a trusted-proxy setting, which does not exist yet.
struct RemoteIp(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for RemoteIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let addr = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .ok();
        // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; rate limits
        // must key them as the IPv4 address they are.
        Ok(Self(addr.map(|ConnectInfo(addr)| addr.ip().to_canonical())))
    }
}

/// Resources of another account are reported as missing, so their existence does not
/// leak (Boulder does the same).
fn check_owner(owner: AccountId, account: &Account, what: &str) -> Result<(), Error> {
    if owner == account.id {
        return Ok(());
    }
    Err(Error::not_found(format!("{what} not found")))
}

/// Only `mailto:` URLs naming one address (RFC 8555 §7.3, RFC 6068).
fn validate_contacts(contacts: &[String]) -> Result<(), Error> {
    if contacts.len() > MAX_CONTACTS {
        return Err(Error::new(
            ErrorKind::InvalidContact,
            format!("at most {MAX_CONTACTS} contacts are allowed"),
        ));
    }
    for contact in contacts {
        let scheme = contact.get(..7);
        if !scheme.is_some_and(|scheme| scheme.eq_ignore_ascii_case("mailto:")) {
            return Err(Error::new(
                ErrorKind::UnsupportedContact,
                format!("contact {contact:?} is not a mailto: URL; only mailto: is supported"),
            ));
        }
        let address = &contact[7..];
        let invalid = |why: &str| {
            Error::new(
                ErrorKind::InvalidContact,
                format!("contact {contact:?} is invalid: {why}"),
            )
        };
        if address.len() > 254 {
            return Err(invalid("the address is too long"));
        }
        if address.contains([',', '?', '%']) {
            return Err(invalid(
                "a contact must name exactly one address, without header fields",
            ));
        }
        let Some((local, domain)) = address.split_once('@') else {
            return Err(invalid("the address has no @"));
        };
        let local_ok = !local.is_empty()
            && local
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'@' | b'<' | b'>' | b'"'));
        let domain_ok = domain.contains('.')
            && !domain.starts_with(['.', '-'])
            && !domain.ends_with(['.', '-'])
            && !domain.contains("..")
            && domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !local_ok || !domain_ok {
            return Err(invalid("the address is not a valid e-mail address"));
        }
    }
    Ok(())
}

// === Accounts (RFC 8555 §7.3) ===

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAccountRequest {
    #[serde(default)]
    contact: Option<Vec<String>>,
    #[serde(default)]
    terms_of_service_agreed: Option<bool>,
    #[serde(default)]
    only_return_existing: Option<bool>,
    #[serde(default)]
    external_account_binding: Option<Value>,
}

async fn new_account(
    State(wfe): State<Arc<Wfe>>,
    RemoteIp(remote_ip): RemoteIp,
    jws: Jws,
) -> Result<Response> {
    let Signer::Key(key) = &jws.signer else {
        return Err(
            Error::malformed("new-account requests must be signed with a jwk, not a kid").into(),
        );
    };
    let request: NewAccountRequest = jws.json()?;
    let thumbprint = key.thumbprint();
    match wfe.sa.account_by_key(&thumbprint).await {
        Ok(existing) => {
            if existing.status != AccountStatus::Valid {
                return Err(Error::unauthorized(format!(
                    "the account for this key is {}",
                    existing.status
                ))
                .into());
            }
            let body = wfe.account_json(&existing)?;
            return respond(StatusCode::OK, body, Some(wfe.account_url(existing.id)));
        }
        Err(err) if err.is(ErrorKind::NotFound) => {}
        Err(err) => return Err(err.into()),
    }
    if request.only_return_existing == Some(true) {
        return Err(Error::new(
            ErrorKind::AccountDoesNotExist,
            "no account exists with the provided key",
        )
        .into());
    }
    if let Some(tos) = &wfe.settings().terms_of_service
        && request.terms_of_service_agreed != Some(true)
    {
        return Err(Error::malformed(format!(
            "you must agree to the terms of service at {tos} (termsOfServiceAgreed: true)"
        ))
        .into());
    }
    let contacts = request.contact.unwrap_or_default();
    validate_contacts(&contacts)?;
    let eab_key_id = match &request.external_account_binding {
        Some(binding) => Some(wfe.check_binding(binding, key, &jws.url).await?),
        None if wfe.settings().eab_required => {
            return Err(Error::new(
                ErrorKind::ExternalAccountRequired,
                "this server requires an external account binding (externalAccountBinding)",
            )
            .into());
        }
        None => None,
    };
    let created = wfe
        .ra
        .new_account(NewAccount {
            key_jwk: key.canonical_json(),
            key_thumbprint: thumbprint.clone(),
            contacts,
            eab_key_id: eab_key_id.clone(),
            remote_ip,
        })
        .await;
    let account = match created {
        Ok(account) => account,
        // Another request registered the same key in the meantime: that account is
        // the answer (RFC 8555 §7.3.1).
        Err(err) if err.is(ErrorKind::Conflict) => {
            let existing = wfe.sa.account_by_key(&thumbprint).await.map_err(|_| err)?;
            let body = wfe.account_json(&existing)?;
            return respond(StatusCode::OK, body, Some(wfe.account_url(existing.id)));
        }
        Err(err) => return Err(err.into()),
    };
    match &eab_key_id {
        Some(eab_key_id) => {
            info!(account_id = %account.id, %eab_key_id, "account created with external account binding");
        }
        None => info!(account_id = %account.id, "account created"),
    }
    let mut body = wfe.account_json(&account)?;
    // RFC 8555 §7.3.4: the account object returned for a bound newAccount MUST carry
    // externalAccountBinding as the request sent it. Only this 201 does: the SA keeps
    // the binding's key ID, not the JWS, so later fetches of the account (and the 200
    // for a key already registered) omit it, which the RFC does not forbid.
    if let Some(binding) = request.external_account_binding {
        body["externalAccountBinding"] = binding;
    }
    respond(StatusCode::CREATED, body, Some(wfe.account_url(account.id)))
}

/// What a client may change on its account (RFC 8555 §7.3.2, §7.3.6); other fields
/// are ignored.
#[derive(Deserialize)]
struct AccountUpdateRequest {
    #[serde(default)]
    contact: Option<Vec<String>>,
    #[serde(default)]
    status: Option<String>,
}

async fn account(
    State(wfe): State<Arc<Wfe>>,
    Path(id): Path<String>,
    jws: Jws,
) -> Result<Response> {
    let account = jws.account()?;
    let id: AccountId = path_id(&id, "account")?;
    if id != account.id {
        return Err(Error::unauthorized("the request was signed by a different account").into());
    }
    let location = Some(wfe.account_url(account.id));
    if jws.is_post_as_get() {
        return respond(StatusCode::OK, wfe.account_json(account)?, location);
    }
    let update: AccountUpdateRequest = jws.json()?;
    match update.status.as_deref() {
        None => {}
        // Echoing the current status back changes nothing (Boulder accepts it too).
        Some(status) if status == account.status.as_str() => {}
        Some("deactivated") => {
            let deactivated = wfe.ra.deactivate_account(account.id).await?;
            wfe.accounts.forget(account.id);
            info!(account_id = %account.id, "account deactivated");
            return respond(StatusCode::OK, wfe.account_json(&deactivated)?, location);
        }
        Some(other) => {
            return Err(Error::malformed(format!(
                "account status {other:?} cannot be requested; only \"deactivated\" can"
            ))
            .into());
        }
    }
    if let Some(contacts) = update.contact
        && contacts != account.contacts
    {
        validate_contacts(&contacts)?;
        let updated = wfe.ra.update_account_contacts(account.id, contacts).await?;
        wfe.accounts.forget(account.id);
        info!(account_id = %account.id, contacts = updated.contacts.len(), "account contacts updated");
        return respond(StatusCode::OK, wfe.account_json(&updated)?, location);
    }
    respond(StatusCode::OK, wfe.account_json(account)?, location)
}

/// RFC 8555 §7.1.2.1: one page of the account's orders, with a `next` link.
async fn account_orders(
    State(wfe): State<Arc<Wfe>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    jws: Jws,
) -> Result<Response> {
    let account = jws.account()?;
    jws.require_post_as_get()?;
    let id: AccountId = path_id(&id, "account")?;
    if id != account.id {
        return Err(Error::unauthorized("the request was signed by a different account").into());
    }
    let cursor = query_cursor(query.as_deref())?;
    let page = wfe
        .sa
        .orders_for_account(
            account.id,
            PageRequest {
                cursor,
                size: ORDERS_PAGE_SIZE,
            },
        )
        .await?;
    let orders: Vec<String> = page
        .order_ids
        .iter()
        .map(|order_id| wfe.order_url(*order_id))
        .collect();
    let mut response = respond(StatusCode::OK, json!({ "orders": orders }), None)?;
    if let Some(next) = page.next.filter(|next| !next.is_empty()) {
        let url = format!(
            "{}?cursor={}",
            wfe.orders_url(account.id),
            percent_encode(&next)
        );
        add_link(&mut response, &url, "next")?;
    }
    Ok(response)
}

/// The payload of a key change's inner JWS (RFC 8555 §7.3.5).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyChange {
    account: String,
    old_key: Value,
}

/// A 409 naming the account that already holds a key (RFC 8555 §7.3.5).
fn key_in_use(wfe: &Wfe, holder: AccountId) -> Result<Response> {
    let url = wfe.account_url(holder);
    let mut response = ApiError(Error::conflict(format!(
        "the new key is already the key of account {url}"
    )))
    .into_response();
    let value = HeaderValue::from_str(&url)
        .map_err(|_| Error::internal(format!("location {url:?} is not a header value")))?;
    response.headers_mut().insert(header::LOCATION, value);
    Ok(response)
}

/// RFC 8555 §7.3.5: the outer JWS is signed by the account (checked by [`Jws`]); its
/// payload is a JWS signed by the new key.
async fn key_change(State(wfe): State<Arc<Wfe>>, jws: Jws) -> Result<Response> {
    let account = jws.account()?;
    let inner = verify_inner_jws(&jws.payload)?;
    if inner.url != jws.url {
        return Err(Error::malformed(format!(
            "the key-change inner JWS url {:?} differs from the outer JWS url {:?}",
            inner.url, jws.url
        ))
        .into());
    }
    let change: KeyChange = serde_json::from_slice(&inner.payload).map_err(|err| {
        Error::malformed(format!(
            "the key-change inner payload is not a keyChange object: {err}"
        ))
    })?;
    let account_url = wfe.account_url(account.id);
    if change.account != account_url {
        return Err(Error::malformed(format!(
            "the keyChange account {:?} is not the account that signed the request ({account_url})",
            change.account
        ))
        .into());
    }
    let old_key = Jwk::from_value(&change.old_key).map_err(|err| {
        Error::malformed(format!(
            "the keyChange oldKey is not a usable key: {}",
            err.detail
        ))
    })?;
    let current = Jwk::from_json(&account.key_jwk).map_err(|err| {
        Error::internal(format!(
            "account {} has an unusable stored key: {}",
            account.id, err.detail
        ))
    })?;
    let current_thumbprint = current.thumbprint();
    if old_key.thumbprint() != current_thumbprint {
        return Err(
            Error::malformed("the keyChange oldKey is not the account's current key").into(),
        );
    }
    let thumbprint = inner.key.thumbprint();
    if thumbprint == current_thumbprint {
        return Err(
            Error::malformed("the new key is the same as the account's current key").into(),
        );
    }
    match wfe.sa.account_by_key(&thumbprint).await {
        Ok(holder) => return key_in_use(&wfe, holder.id),
        Err(err) if err.is(ErrorKind::NotFound) => {}
        Err(err) => return Err(err.into()),
    }
    let rolled = wfe
        .ra
        .rollover_account_key(account.id, inner.key.canonical_json(), thumbprint.clone())
        .await;
    let updated = match rolled {
        Ok(updated) => updated,
        // Another account took the key in the meantime.
        Err(err) if err.is(ErrorKind::Conflict) => {
            return match wfe.sa.account_by_key(&thumbprint).await {
                Ok(holder) => key_in_use(&wfe, holder.id),
                Err(_) => Err(err.into()),
            };
        }
        Err(err) => return Err(err.into()),
    };
    wfe.accounts.forget(account.id);
    info!(account_id = %account.id, "account key rolled over");
    respond(
        StatusCode::OK,
        wfe.account_json(&updated)?,
        Some(account_url),
    )
}

// === Orders (RFC 8555 §7.4) ===

#[derive(Deserialize)]
struct RawIdentifier {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewOrderRequest {
    identifiers: Vec<RawIdentifier>,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    not_after: Option<String>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    replaces: Option<String>,
}

/// An RFC 3339 timestamp from a request.
fn parse_timestamp(field: &str, text: &str) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|err| {
        Error::malformed(format!(
            "{field} {text:?} is not an RFC 3339 timestamp: {err}"
        ))
    })
}

async fn new_order(State(wfe): State<Arc<Wfe>>, jws: Jws) -> Result<Response> {
    let account = jws.account()?;
    let request: NewOrderRequest = jws.json()?;
    let not_before = request
        .not_before
        .as_deref()
        .map(|text| parse_timestamp("notBefore", text))
        .transpose()?;
    let not_after = request
        .not_after
        .as_deref()
        .map(|text| parse_timestamp("notAfter", text))
        .transpose()?;
    if let (Some(not_before), Some(not_after)) = (not_before, not_after)
        && not_after <= not_before
    {
        return Err(Error::malformed("notAfter must be later than notBefore").into());
    }
    let replaces = match &request.replaces {
        Some(cert_id) => Some(wfe.replaced_serial(cert_id).await?),
        None => None,
    };
    if request.identifiers.is_empty() {
        return Err(Error::malformed("the order has no identifiers").into());
    }
    let identifiers = request
        .identifiers
        .into_iter()
        .map(|raw| match raw.kind.as_str() {
            "dns" => Ok(Identifier::dns(raw.value)),
            "ip" => Ok(Identifier::ip(raw.value)),
            other => Err(Error::new(
                ErrorKind::UnsupportedIdentifier,
                format!("identifier type {other:?} is not supported"),
            )),
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let order = wfe
        .ra
        .new_order(OrderRequest {
            account_id: account.id,
            identifiers,
            profile: request.profile,
            not_before,
            not_after,
            replaces,
        })
        .await?;
    info!(account_id = %account.id, order_id = %order.id, profile = %order.profile, "order created");
    let body = wfe.order_body(&order).await?;
    respond(StatusCode::CREATED, body, Some(wfe.order_url(order.id)))
}

async fn order(State(wfe): State<Arc<Wfe>>, Path(id): Path<String>, jws: Jws) -> Result<Response> {
    let account = jws.account()?;
    jws.require_post_as_get()?;
    let id: OrderId = path_id(&id, "order")?;
    let order = wfe.sa.order(id).await?;
    check_owner(order.account_id, account, "order")?;
    wfe.order_response(&order, None).await
}

#[derive(Deserialize)]
struct FinalizeRequest {
    csr: String,
}

async fn finalize(
    State(wfe): State<Arc<Wfe>>,
    Path(id): Path<String>,
    jws: Jws,
) -> Result<Response> {
    let account = jws.account()?;
    let id: OrderId = path_id(&id, "order")?;
    let order = wfe.sa.order(id).await?;
    check_owner(order.account_id, account, "order")?;
    let request: FinalizeRequest = jws.json()?;
    // RFC 8555 §6.1, §7.4: a csr that is not base64url is an encoding error
    // (malformed, as in Boulder); only decoded bytes that are no acceptable CSR
    // are badCSR.
    let csr = decode_b64url("csr", &request.csr)?;
    if csr.is_empty() {
        return Err(Error::new(ErrorKind::BadCsr, "csr is empty").into());
    }
    let order = wfe.ra.finalize_order(id, csr).await?;
    info!(account_id = %account.id, order_id = %order.id, status = %order.status, "order finalized");
    wfe.order_response(&order, Some(wfe.order_url(order.id)))
        .await
}

impl Wfe {
    /// The certID of the certificate `order` replaces, for its `replaces` member
    /// (RFC 9773 §5). The order keeps only the serial, so only such orders pay for
    /// a certificate lookup; if it fails the member is omitted (and logged) rather
    /// than failing the request.
    async fn replaces_cert_id(&self, order: &Order) -> Option<String> {
        let serial = order.replaces.as_ref()?;
        let record = match self.sa.certificate(serial).await {
            Ok(record) => record,
            Err(err) => {
                warn!(order_id = %order.id, %serial, error = %err, "cannot fetch the certificate an order replaces");
                return None;
            }
        };
        match CertId::of_certificate(&record.der) {
            Ok(cert_id) => Some(cert_id.to_string()),
            Err(err) => {
                warn!(order_id = %order.id, %serial, error = %err, "cannot compute the certID of the certificate an order replaces");
                None
            }
        }
    }

    /// An order object with its `replaces` certID, if it has one.
    async fn order_body(&self, order: &Order) -> Result<Value, Error> {
        let mut body = self.order_json(order)?;
        if let Some(cert_id) = self.replaces_cert_id(order).await {
            body["replaces"] = cert_id.into();
        }
        Ok(body)
    }

    /// An order, with `Retry-After` while the certificate is being issued.
    async fn order_response(&self, order: &Order, location: Option<String>) -> Result<Response> {
        let mut response = respond(StatusCode::OK, self.order_body(order).await?, location)?;
        if order.status == OrderStatus::Processing {
            poll_later(&mut response);
        }
        Ok(response)
    }

    /// An authorization, with `Retry-After` while one of its challenges is validated.
    fn authz_response(&self, authz: &Authz) -> Result<Response> {
        let mut response = respond(StatusCode::OK, self.authz_json(authz)?, None)?;
        if authz
            .challenges
            .iter()
            .any(|challenge| challenge.status == ChallengeStatus::Processing)
        {
            poll_later(&mut response);
        }
        Ok(response)
    }
}

// === Authorizations and challenges (RFC 8555 §7.5) ===

async fn authz(State(wfe): State<Arc<Wfe>>, Path(id): Path<String>, jws: Jws) -> Result<Response> {
    let account = jws.account()?;
    let id: AuthzId = path_id(&id, "authorization")?;
    let authz = wfe.sa.authz(id).await?;
    check_owner(authz.account_id, account, "authorization")?;
    if !jws.is_post_as_get() {
        #[derive(Deserialize)]
        struct AuthzUpdate {
            status: Option<String>,
        }
        let update: AuthzUpdate = jws.json()?;
        if update.status.as_deref() != Some("deactivated") {
            return Err(Error::malformed(
                "an authorization accepts only POST-as-GET or {\"status\": \"deactivated\"}",
            )
            .into());
        }
        let deactivated = wfe.ra.deactivate_authz(id).await?;
        info!(account_id = %account.id, authz_id = %id, "authorization deactivated");
        return wfe.authz_response(&deactivated);
    }
    wfe.authz_response(&authz)
}

async fn challenge(
    State(wfe): State<Arc<Wfe>>,
    Path((authz_id, kind)): Path<(String, String)>,
    jws: Jws,
) -> Result<Response> {
    let account = jws.account()?;
    let id: AuthzId = path_id(&authz_id, "authorization")?;
    let kind: ChallengeType = path_id(&kind, "challenge type")?;
    let mut authz = wfe.sa.authz(id).await?;
    check_owner(authz.account_id, account, "challenge")?;
    let current = authz
        .challenge(kind)
        .ok_or_else(|| Error::not_found("challenge not found"))?;
    if !jws.is_post_as_get() {
        // RFC 8555 §7.5.1: the client says it is ready with an empty object.
        let answer: Value = jws.json()?;
        if !answer.is_object() {
            return Err(Error::malformed("a challenge response must be a JSON object").into());
        }
        // A challenge already under way or decided is returned as it is, so a client
        // that repeats its POST does not start a second validation.
        if authz.status == AuthzStatus::Pending && current.status == ChallengeStatus::Pending {
            authz = wfe.ra.perform_validation(id, kind).await?;
            info!(account_id = %account.id, authz_id = %id, challenge = %kind, "validation requested");
        }
    }
    let challenge = authz
        .challenge(kind)
        .ok_or_else(|| Error::internal(format!("authorization {id} lost its {kind} challenge")))?;
    let body = wfe.challenge_json(id, challenge)?;
    let mut response = respond(StatusCode::OK, body, None)?;
    add_link(&mut response, &wfe.authz_url(id), "up")?;
    if challenge.status == ChallengeStatus::Processing {
        poll_later(&mut response);
    }
    Ok(response)
}

// === Certificates (RFC 8555 §7.4.2, §7.6) ===

fn pem(der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut pem = String::with_capacity(encoded.len() + encoded.len() / 64 + 64);
    pem.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// RFC 8555 §7.4.2: the certificate with the chain stored with it, linking to
/// each alternate chain.
async fn certificate(
    State(wfe): State<Arc<Wfe>>,
    Path(serial): Path<String>,
    jws: Jws,
) -> Result<Response> {
    wfe.certificate_response(&jws, &serial, None).await
}

/// The certificate with alternate chain `n` (from 1), linking to the default and
/// the other alternates.
async fn certificate_alternate(
    State(wfe): State<Arc<Wfe>>,
    Path((serial, n)): Path<(String, String)>,
    jws: Jws,
) -> Result<Response> {
    // Only plain decimal numbers from 1 name a chain ("+1" or "01" do not).
    let index = n
        .parse::<usize>()
        .ok()
        .filter(|index| *index >= 1 && !n.starts_with(['+', '0']))
        .ok_or_else(|| Error::not_found(format!("alternate chain {n:?} not found")))?;
    wfe.certificate_response(&jws, &serial, Some(index)).await
}

impl Wfe {
    /// The certificate `serial` (if `account` owns it) with its default chain, or
    /// with alternate chain `alternate` (from 1), and `rel="alternate"` links to
    /// the others.
    async fn certificate_response(
        &self,
        jws: &Jws,
        serial: &str,
        alternate: Option<usize>,
    ) -> Result<Response> {
        let account = jws.account()?;
        jws.require_post_as_get()?;
        let serial: Serial = path_id(serial, "certificate")?;
        let record = self.sa.certificate(&serial).await?;
        check_owner(record.account_id, account, "certificate")?;
        let alternates =
            alternates_for(&self.settings.alternate_chains, &record.der, &record.chain);
        let chain = match alternate {
            None => record.chain.as_slice(),
            Some(index) => alternates
                .get(index - 1)
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "certificate {serial} has no alternate chain {index}"
                    ))
                })?
                .certificates(),
        };
        let mut body = pem(&record.der);
        for issuer in chain {
            body.push_str(&pem(issuer));
        }
        let mut response = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, PEM_CHAIN_CONTENT_TYPE)],
            body,
        )
            .into_response();
        let url = self.certificate_url(&serial);
        if alternate.is_some() {
            add_link(&mut response, &url, "alternate")?;
        }
        for index in (1..=alternates.len()).filter(|index| Some(*index) != alternate) {
            add_link(&mut response, &format!("{url}/{index}"), "alternate")?;
        }
        Ok(response)
    }
}

#[derive(Deserialize)]
struct RevokeCertRequest {
    certificate: String,
    #[serde(default)]
    reason: Option<u64>,
}

/// RFC 8555 §7.6: signed by an account (`kid`) or by the certificate's own key
/// (`jwk`); the RA decides whether that requester may revoke this certificate.
async fn revoke_cert(State(wfe): State<Arc<Wfe>>, jws: Jws) -> Result<Response> {
    let requester = match &jws.signer {
        Signer::Account(account) => Requester::Account(account.id),
        Signer::Key(key) => Requester::CertificateKey(key.spki_der()),
    };
    let request: RevokeCertRequest = jws.json()?;
    let reason = match request.reason {
        None => RevocationReason::Unspecified,
        Some(code) => u8::try_from(code)
            .map_err(|_| {
                Error::new(
                    ErrorKind::BadRevocationReason,
                    format!("revocation reason {code} is not allowed"),
                )
            })
            .and_then(RevocationReason::try_from)?,
    };
    let der = decode_b64url("certificate", &request.certificate)?;
    let serial = certificate_serial(&der)?;
    // The serial alone could be lifted into a forged DER; only a certificate we
    // issued, byte for byte, may be revoked (as Boulder checks).
    let record = match wfe.sa.certificate(&serial).await {
        Ok(record) => record,
        Err(err) if err.is(ErrorKind::NotFound) => {
            return Err(Error::not_found("certificate not found").into());
        }
        Err(err) => return Err(err.into()),
    };
    if record.der != der {
        return Err(Error::not_found("certificate not found").into());
    }
    wfe.ra
        .revoke_certificate(RevokeRequest {
            serial: serial.clone(),
            reason,
            requester: requester.clone(),
        })
        .await?;
    match requester {
        Requester::Account(account_id) => {
            info!(%account_id, serial = %serial, reason = reason.code(), "certificate revoked");
        }
        Requester::CertificateKey(_) => {
            info!(serial = %serial, reason = reason.code(), "certificate revoked by its key");
        }
        // Operators revoke through the admin tool, never through the WFE.
        Requester::Operator(operator) => {
            info!(%operator, serial = %serial, reason = reason.code(), "certificate revoked");
        }
    }
    Ok(StatusCode::OK.into_response())
}

// === Renewal information (RFC 9773) ===

impl Wfe {
    /// The certificate a certID names: NotFound unless the serial is one of ours
    /// and its authority key identifier matches.
    async fn certificate_for_cert_id(&self, text: &str) -> Result<CertificateRecord, Error> {
        let cert_id = CertId::parse(text)?;
        let missing = || Error::not_found(format!("no certificate has the certID {text:?}"));
        let record = match self.sa.certificate(&cert_id.serial).await {
            Ok(record) => record,
            Err(err) if err.is(ErrorKind::NotFound) => return Err(missing()),
            Err(err) => return Err(err),
        };
        if !cert_id.names(&record)? {
            return Err(missing());
        }
        Ok(record)
    }

    /// The serial of the certificate a newOrder `replaces` (RFC 9773 §5).
    async fn replaced_serial(&self, text: &str) -> Result<Serial, Error> {
        match self.certificate_for_cert_id(text).await {
            Ok(record) => Ok(record.serial),
            Err(err) if err.is(ErrorKind::NotFound) || err.is(ErrorKind::Malformed) => {
                Err(Error::malformed(format!(
                    "replaces does not name a certificate of this CA: {}",
                    err.detail
                )))
            }
            Err(err) => Err(err),
        }
    }

    /// RFC 9773 §4.2: the suggested renewal window, to ask again in six hours. A
    /// certificate named in an operator's incident is to be renewed at once, with
    /// the incident's page as the `explanationURL` when it has one.
    async fn renewal_info_response(&self, cert_id: &str) -> Result<Response> {
        let record = self.certificate_for_cert_id(cert_id).await?;
        // A failed lookup fails the request rather than answer "not in an
        // incident": the client would then wait six hours to ask again.
        let incident = self.sa.incident_for_serial(&record.serial).await?;
        let (start, end) = record.renewal_window(incident.is_some(), self.clock.now());
        let mut body = json!({
            "suggestedWindow": {"start": timestamp(start)?, "end": timestamp(end)?},
        });
        if let Some(incident) = incident.filter(|incident| !incident.url.is_empty()) {
            body["explanationURL"] = incident.url.into();
        }
        let mut response = respond(StatusCode::OK, body, None)?;
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(RENEWAL_INFO_RETRY_AFTER_SECONDS),
        );
        Ok(response)
    }
}

/// RFC 9773 §4.1: an unauthenticated GET.
async fn renewal_info(
    State(wfe): State<Arc<Wfe>>,
    Path(cert_id): Path<String>,
) -> Result<Response> {
    wfe.renewal_info_response(&cert_id).await
}

/// A POST-as-GET of the same resource, as early ARI drafts (and clients written
/// for them) used.
async fn renewal_info_post(
    State(wfe): State<Arc<Wfe>>,
    Path(cert_id): Path<String>,
    jws: Jws,
) -> Result<Response> {
    jws.require_post_as_get()?;
    wfe.renewal_info_response(&cert_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_must_be_single_mailto_addresses() {
        let ok = |c: &str| validate_contacts(&[c.to_owned()]);
        ok("mailto:admin@example.com").unwrap();
        ok("MAILTO:a.b+c@sub.example.org").unwrap();
        for bad in [
            "mailto:",
            "mailto:admin",
            "mailto:a@b@example.com",
            "mailto:a@example.com,b@example.com",
            "mailto:a@example.com?subject=hi",
            "mailto:a b@example.com",
            "mailto:a@localhost",
            "mailto:a@-example.com",
            "mailto:a@example..com",
            "mailto:a%40b@example.com",
        ] {
            assert_eq!(
                ok(bad).unwrap_err().kind,
                ErrorKind::InvalidContact,
                "{bad}"
            );
        }
        for unsupported in ["tel:+12025551212", "https://example.com", "mail", ""] {
            assert_eq!(
                ok(unsupported).unwrap_err().kind,
                ErrorKind::UnsupportedContact,
                "{unsupported}"
            );
        }
        let many: Vec<String> = (0..11)
            .map(|i| format!("mailto:a{i}@example.com"))
            .collect();
        assert_eq!(
            validate_contacts(&many).unwrap_err().kind,
            ErrorKind::InvalidContact
        );
    }

    #[test]
    fn cursors_survive_the_query_string() {
        for cursor in ["abc", "a b&c=d/e?f%g+h", "ünï", "-._~"] {
            let encoded = percent_encode(cursor);
            assert!(
                encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
                "{encoded}"
            );
            let query = format!("x=1&cursor={encoded}");
            assert_eq!(query_cursor(Some(&query)).unwrap().as_deref(), Some(cursor));
        }
        assert_eq!(percent_encode("a b"), "a%20b");
        assert_eq!(query_cursor(None).unwrap(), None);
        assert_eq!(query_cursor(Some("cursor=")).unwrap(), None);
        assert_eq!(query_cursor(Some("other=1")).unwrap(), None);
        for bad in [
            "cursor=%",
            "cursor=%4",
            "cursor=%zz",
            "cursor=%ff",
            "cursor=a&cursor=b",
        ] {
            assert_eq!(
                query_cursor(Some(bad)).unwrap_err().kind,
                ErrorKind::Malformed,
                "{bad}"
            );
        }
    }

    #[test]
    fn pem_wraps_at_64_columns() {
        let pem = pem(&[0xab; 100]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END CERTIFICATE-----"));
        let body: String = lines[1..lines.len() - 1].concat();
        assert_eq!(STANDARD.decode(body).unwrap(), vec![0xab; 100]);
    }
}
