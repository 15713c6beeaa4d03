//! http-01 validation (RFC 8555 §8.3; RFC 8738 §3 for IP identifiers).
//!
//! Every hop is resolved by the VA itself through [`Lookup`], filtered with
//! [`is_reserved`](crate::is_reserved), and fetched by a reqwest client pinned
//! to the chosen address, so reqwest never resolves a name on its own and a
//! redirect can't lead the VA to an address the filter refused. Redirects are
//! followed by hand (at most [`MAX_REDIRECTS`]), each hop leaving a
//! [`ValidationRecord`].
//!
//! Like Boulder, when a name has both kinds of address the VA tries the first
//! IPv6 address and falls back to the first IPv4 address if it cannot connect.

use std::error::Error as StdError;
use std::io;
use std::net::IpAddr;
use std::net::Ipv4Addr;
use std::net::Ipv6Addr;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::IdentifierType;
use basalt_core::ValidationRecord;
use basalt_core::ValidationResult;
use reqwest::StatusCode;
use reqwest::Url;
use reqwest::dns::Addrs;
use reqwest::dns::Name;
use reqwest::dns::Resolve;
use reqwest::dns::Resolving;
use reqwest::header;
use reqwest::redirect::Policy;
use tokio::time::Instant;

use crate::address::AddressPolicy;
use crate::dns::Lookup;
use crate::tls::unverified_client_config;

/// The most redirects one validation follows (Boulder's limit).
pub const MAX_REDIRECTS: usize = 10;

/// The largest response body accepted. A key authorization is 87 bytes; the
/// slack is for trailing whitespace, which RFC 8555 §8.3 lets the server send.
pub const MAX_BODY_BYTES: usize = 1024;

/// How much of a wrong body is echoed back to the subscriber.
const ECHO_CHARS: usize = 128;

/// The User-Agent of every validation request.
const USER_AGENT: &str = "basalt-va";

/// What http-01 validation needs to know.
pub(crate) struct Http01 {
    lookup: Arc<dyn Lookup>,
    port: u16,
    https_port: u16,
    timeout: Duration,
    addresses: AddressPolicy,
    tls: rustls::ClientConfig,
}

/// Why a validation stopped early.
enum Stop {
    /// The subscriber's setup is at fault: goes into the result.
    Problem(Error),
    /// The VA could not make the check.
    Internal(Error),
}

impl From<Error> for Stop {
    fn from(err: Error) -> Self {
        Self::Problem(err)
    }
}

/// What one hop returned.
enum Fetched {
    Body(Vec<u8>),
    Redirect(String),
}

impl Http01 {
    pub(crate) fn new(
        lookup: Arc<dyn Lookup>,
        port: u16,
        https_port: u16,
        timeout: Duration,
        allow_private_addresses: bool,
    ) -> Result<Self, Error> {
        Ok(Self {
            lookup,
            port,
            https_port,
            timeout,
            addresses: AddressPolicy::new(allow_private_addresses),
            tls: unverified_client_config(b"http/1.1", true)?,
        })
    }

    /// Fetches `http://{identifier}/.well-known/acme-challenge/{token}` and
    /// compares the body with `key_authorization`.
    pub(crate) async fn validate(
        &self,
        identifier: &Identifier,
        token: &str,
        key_authorization: &str,
    ) -> Result<ValidationResult, Error> {
        let mut records = Vec::new();
        let deadline = Instant::now() + self.timeout;
        let problem = match self
            .run(identifier, token, key_authorization, &mut records, deadline)
            .await
        {
            Ok(()) => None,
            Err(Stop::Problem(problem)) => Some(problem),
            Err(Stop::Internal(err)) => return Err(err),
        };
        Ok(ValidationResult { records, problem })
    }

    async fn run(
        &self,
        identifier: &Identifier,
        token: &str,
        key_authorization: &str,
        records: &mut Vec<ValidationRecord>,
        deadline: Instant,
    ) -> Result<(), Stop> {
        let mut url = self.first_url(identifier, token)?;
        for hop in 0..=MAX_REDIRECTS {
            match self.fetch(&url, records, deadline).await? {
                Fetched::Body(body) => return Ok(check_body(&url, &body, key_authorization)?),
                Fetched::Redirect(_) if hop == MAX_REDIRECTS => break,
                Fetched::Redirect(location) => url = self.redirect_target(&url, &location)?,
            }
        }
        Err(Error::new(
            ErrorKind::Connection,
            format!("too many redirects: more than {MAX_REDIRECTS} while fetching {url}"),
        )
        .into())
    }

    /// The URL of the first request, on the configured port.
    fn first_url(&self, identifier: &Identifier, token: &str) -> Result<Url, Error> {
        if token.is_empty()
            || token.len() > 256
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::malformed("the challenge token is not base64url"));
        }
        let host = match identifier.kind {
            IdentifierType::Dns => {
                let name = identifier.value.to_ascii_lowercase();
                if !is_dns_name(&name) {
                    return Err(Error::malformed(format!(
                        "{:?} is not a valid dns identifier",
                        identifier.value
                    )));
                }
                name
            }
            // RFC 8738 §3: no DNS, and the Host header is the address itself.
            IdentifierType::Ip => match identifier.value.parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) => ip.to_string(),
                Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
                Err(_) => {
                    return Err(Error::malformed(format!(
                        "{:?} is not a valid ip identifier",
                        identifier.value
                    )));
                }
            },
        };
        let text = format!(
            "http://{host}:{}/.well-known/acme-challenge/{token}",
            self.port
        );
        Url::parse(&text).map_err(|err| Error::malformed(format!("invalid url {text:?}: {err}")))
    }

    /// Checks a `Location` and makes it absolute; the port rules are Boulder's:
    /// only the configured http and https ports, and a target without a port
    /// goes to the configured port of its scheme.
    fn redirect_target(&self, current: &Url, location: &str) -> Result<Url, Error> {
        let refuse = |why: String| {
            Error::new(
                ErrorKind::Connection,
                format!(
                    "invalid redirect from {current} to {:?}: {why}",
                    truncate(location)
                ),
            )
        };
        let mut next = current
            .join(location)
            .map_err(|err| refuse(format!("not a url: {err}")))?;
        let default_port = match next.scheme() {
            "http" => self.port,
            "https" => self.https_port,
            other => {
                return Err(refuse(format!(
                    "only http and https are supported, not {other:?}"
                )));
            }
        };
        if !next.username().is_empty() || next.password().is_some() {
            return Err(refuse("user information is not allowed".to_owned()));
        }
        match url_host(&next) {
            Some(UrlHost::Domain(name)) if is_dns_name(name) => {}
            Some(UrlHost::Domain(_)) | None => return Err(refuse("invalid host".to_owned())),
            Some(UrlHost::Ip(ip)) => self.check_literal(ip).map_err(refuse)?,
        }
        let port = match next.port() {
            Some(port) if port == self.port || port == self.https_port => port,
            Some(port) => {
                return Err(refuse(format!(
                    "only ports {} and {} are allowed, not {port}",
                    self.port, self.https_port
                )));
            }
            None => default_port,
        };
        next.set_port(Some(port))
            .map_err(|()| refuse("cannot set the port".to_owned()))?;
        next.set_fragment(None);
        Ok(next)
    }

    fn check_literal(&self, ip: IpAddr) -> Result<(), String> {
        match self.addresses.refusal(ip) {
            Some(why) => Err(format!("{ip} is {why}")),
            None => Ok(()),
        }
    }

    /// One request: resolve, filter, connect (IPv6 first, then IPv4), and
    /// either read the body or return the redirect.
    async fn fetch(
        &self,
        url: &Url,
        records: &mut Vec<ValidationRecord>,
        deadline: Instant,
    ) -> Result<Fetched, Stop> {
        let port = url.port_or_known_default().unwrap_or(self.port);
        let host = url_host(url);
        let (hostname, resolved) = match host {
            Some(UrlHost::Domain(name)) => (name.to_owned(), self.resolve(name, deadline).await),
            Some(UrlHost::Ip(ip)) => (ip.to_string(), Ok(vec![ip])),
            None => return Err(Error::malformed(format!("{url} has no host")).into()),
        };
        records.push(ValidationRecord {
            url: Some(url.to_string()),
            hostname: hostname.clone(),
            port: Some(port),
            addresses_resolved: resolved.as_ref().ok().cloned().unwrap_or_default(),
            address_used: None,
            perspectives: Vec::new(),
        });
        let resolved = resolved?;
        let candidates = self.candidates(&hostname, url, &resolved)?;

        let mut attempts = candidates.iter().peekable();
        while let Some(&ip) = attempts.next() {
            if let Some(record) = records.last_mut() {
                record.address_used = Some(ip);
            }
            let addr = SocketAddr::new(ip, port);
            let fallback = attempts.peek().is_some();
            match self.request(url, addr, deadline, fallback).await {
                Ok(response) => return read_response(url, addr, response).await,
                Err(Stop::Problem(problem))
                    if fallback && problem.kind == ErrorKind::Connection =>
                {
                    tracing::info!(%url, %addr, detail = %problem.detail, "connection failed, trying the next address");
                }
                Err(stop) => return Err(stop),
            }
        }
        Err(Error::new(
            ErrorKind::Connection,
            format!("no address to connect to for {url}"),
        )
        .into())
    }

    async fn resolve(&self, name: &str, deadline: Instant) -> Result<Vec<IpAddr>, Error> {
        let addresses = tokio::time::timeout_at(deadline, self.lookup.lookup_ip(name))
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Dns,
                    format!("timed out looking up A/AAAA for {name}"),
                )
            })??;
        if addresses.is_empty() {
            return Err(Error::new(
                ErrorKind::Dns,
                format!("no valid A or AAAA records for {name}"),
            ));
        }
        Ok(addresses)
    }

    /// The addresses to try, in order: the first allowed IPv6 address, then
    /// the first allowed IPv4 address.
    fn candidates(
        &self,
        hostname: &str,
        url: &Url,
        resolved: &[IpAddr],
    ) -> Result<Vec<IpAddr>, Error> {
        let by_name = matches!(url_host(url), Some(UrlHost::Domain(_)));
        self.addresses.candidates(hostname, by_name, resolved)
    }

    /// Sends the GET to `addr`; when another address is left to try, connecting
    /// may take only half of the remaining time.
    async fn request(
        &self,
        url: &Url,
        addr: SocketAddr,
        deadline: Instant,
        fallback: bool,
    ) -> Result<reqwest::Response, Stop> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::new(
                ErrorKind::Connection,
                format!("{addr}: timed out before fetching {url}"),
            )
            .into());
        }
        let connect_timeout = if fallback { remaining / 2 } else { remaining };
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(self.tls.clone())
            .dns_resolver(PinnedResolver(addr))
            .redirect(Policy::none())
            .no_proxy()
            .http1_only()
            .user_agent(USER_AGENT)
            .connect_timeout(connect_timeout)
            .timeout(remaining)
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|err| {
                Stop::Internal(Error::internal(format!("cannot build http client: {err}")))
            })?;
        client
            .get(url.clone())
            .header(header::ACCEPT, "*/*")
            .send()
            .await
            .map_err(|err| Stop::Problem(fetch_error(url, addr, &err)))
    }
}

/// A redirect, a body, or the reason the response is unacceptable.
async fn read_response(
    url: &Url,
    addr: SocketAddr,
    mut response: reqwest::Response,
) -> Result<Fetched, Stop> {
    let status = response.status();
    if matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    ) {
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Connection,
                    format!("redirect from {url} without a valid location header"),
                )
            })?;
        return Ok(Fetched::Redirect(location.to_owned()));
    }
    if status != StatusCode::OK {
        return Err(Error::unauthorized(format!(
            "invalid response from {url}: {}",
            status.as_u16()
        ))
        .into());
    }
    let too_big = || {
        Error::unauthorized(format!(
            "invalid response from {url}: the body is larger than {MAX_BODY_BYTES} bytes"
        ))
    };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY_BYTES as u64)
    {
        return Err(too_big().into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| fetch_error(url, addr, &err))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_big().into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched::Body(body))
}

/// RFC 8555 §8.3: the body is the key authorization, trailing whitespace aside.
fn check_body(url: &Url, body: &[u8], key_authorization: &str) -> Result<(), Error> {
    let end = body
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let payload = &body[..end];
    if payload == key_authorization.as_bytes() {
        return Ok(());
    }
    let got = String::from_utf8_lossy(payload);
    Err(Error::new(
        ErrorKind::IncorrectResponse,
        format!(
            "the key authorization file from the server did not match this challenge: expected {key_authorization:?}, got {:?} from {url}",
            truncate(&got)
        ),
    ))
}

/// A subscriber-facing cause for a failed request.
fn fetch_error(url: &Url, addr: SocketAddr, err: &reqwest::Error) -> Error {
    let mut kind = ErrorKind::Connection;
    let cause = if err.is_timeout() && err.is_connect() {
        "timeout during connect (likely firewall problem)".to_owned()
    } else if err.is_timeout() {
        "timeout after connect (your server may be slow or overloaded)".to_owned()
    } else if let Some(tls) = find_source::<rustls::Error>(err) {
        kind = ErrorKind::Tls;
        format!("tls error: {tls}")
    } else if let Some(io) = find_source::<io::Error>(err) {
        match io.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            io::ErrorKind::ConnectionReset => "connection reset by peer".to_owned(),
            io::ErrorKind::TimedOut => {
                "timeout during connect (likely firewall problem)".to_owned()
            }
            _ => io.to_string(),
        }
    } else {
        innermost(err)
    };
    tracing::debug!(%url, %addr, error = ?err, "http-01 request failed");
    Error::new(kind, format!("{addr}: {cause} (fetching {url})"))
}

fn find_source<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

fn innermost(err: &(dyn StdError + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// The host of a URL: a name to resolve or an address literal.
enum UrlHost<'a> {
    Domain(&'a str),
    Ip(IpAddr),
}

/// The host of an http(s) URL. The url crate has already turned every IPv4
/// spelling (`127.1`, `0x7f.1`, `2130706433`) into dotted quads, so a name
/// that parses as neither literal is a name.
fn url_host(url: &Url) -> Option<UrlHost<'_>> {
    let host = url.host_str()?;
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| UrlHost::Ip(IpAddr::V6(ip)));
    }
    Some(match host.parse::<Ipv4Addr>() {
        Ok(ip) => UrlHost::Ip(IpAddr::V4(ip)),
        Err(_) => UrlHost::Domain(host),
    })
}

/// Whether `name` is a host name fit for a URL: LDH labels of 1 to 63
/// characters, at most 253 characters in all, no empty label.
pub(crate) fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn truncate(text: &str) -> &str {
    match text.char_indices().nth(ECHO_CHARS) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Answers every name with the one address the VA chose, so reqwest connects
/// exactly where the filter allowed.
struct PinnedResolver(SocketAddr);

impl Resolve for PinnedResolver {
    fn resolve(&self, _name: Name) -> Resolving {
        let addr = self.0;
        Box::pin(async move { Ok(Box::new(std::iter::once(addr)) as Addrs) })
    }
}

#[cfg(test)]
mod tests;
