//! The connection to one ACME server: its directory, the HTTP client, the nonce
//! pool and the signed POST every other request is made of (RFC 8555 §6).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use basalt_core::Clock;
use basalt_core::SystemClock;
use reqwest::header;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::debug;

use crate::Account;
use crate::AccountKey;
use crate::Directory;
use crate::Error;
use crate::NewAccount;
use crate::NoncePool;
use crate::Problem;
use crate::error::BAD_NONCE;
use crate::jws;
use crate::jws::Signer;
use crate::parse_retry_after;

/// The `Content-Type` of every ACME POST (RFC 8555 §6.2).
const JOSE_JSON: &str = "application/jose+json";
/// The most of an error body (with no problem document) kept in an error.
const MAX_ERROR_BODY: usize = 512;

/// Which certificate authorities the client trusts for the server's HTTPS.
#[derive(Clone, Debug, Default)]
pub enum Roots {
    /// The operating system's trust store.
    #[default]
    System,
    /// Only the certificates of this PEM bundle (a private or test CA).
    Pem(Vec<u8>),
}

impl Roots {
    /// Only the certificates of the PEM bundle at `path`.
    pub fn pem_file(path: &Path) -> Result<Self, Error> {
        std::fs::read(path)
            .map(Self::Pem)
            .map_err(|err| Error::Config(format!("cannot read {}: {err}", path.display())))
    }
}

/// How the client polls an authorization or order that is still being worked
/// on (RFC 8555 §7.5.1): at the server's `Retry-After` when it sends one, capped,
/// else at a default interval, until a deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollPolicy {
    /// The wait when the response has no (readable) `Retry-After`.
    pub default_interval: Duration,
    /// The longest wait, whatever `Retry-After` says.
    pub max_interval: Duration,
    /// How long to poll one object before giving up with [`Error::Timeout`].
    pub timeout: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            default_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(10),
            timeout: Duration::from_secs(90),
        }
    }
}

impl PollPolicy {
    /// The wait before the next poll, given the last response's `Retry-After`.
    pub fn delay(&self, retry_after: Option<Duration>) -> Duration {
        retry_after
            .unwrap_or(self.default_interval)
            .min(self.max_interval)
    }
}

/// How a [`Client`] is set up.
#[derive(Clone)]
pub struct ClientOptions {
    /// Whom to trust for the server's HTTPS certificate.
    pub roots: Roots,
    /// The longest one HTTP request may take.
    pub request_timeout: Duration,
    /// How to poll objects being worked on.
    pub poll: PollPolicy,
    /// The `User-Agent` (RFC 8555 §6.1 asks clients to send one).
    pub user_agent: String,
    /// How many unused nonces to keep.
    pub nonce_pool_capacity: usize,
    /// The clock an HTTP-date `Retry-After` is read against.
    pub clock: Arc<dyn Clock>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            roots: Roots::System,
            request_timeout: Duration::from_secs(30),
            poll: PollPolicy::default(),
            user_agent: concat!("basalt-acme/", env!("CARGO_PKG_VERSION")).to_owned(),
            nonce_pool_capacity: 256,
            clock: Arc::new(SystemClock),
        }
    }
}

/// A client of one ACME server. Cheap to clone: clones share the HTTP
/// connections and the nonce pool, so many tasks can use one client at once.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    directory: Directory,
    nonces: NoncePool,
    poll: PollPolicy,
    clock: Arc<dyn Clock>,
}

/// A response to a signed request, read in full.
pub(crate) struct Reply {
    pub(crate) location: Option<String>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// The body as a `T`, or a protocol error naming `url`.
    pub(crate) fn json<T: DeserializeOwned>(&self, url: &str) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|err| {
            Error::Protocol(format!(
                "{url}: the response is not the expected object: {err}"
            ))
        })
    }

    /// The `Location` header, which the response must have.
    pub(crate) fn location(&self, url: &str) -> Result<String, Error> {
        self.location
            .clone()
            .ok_or_else(|| Error::Protocol(format!("{url}: the response has no Location")))
    }
}

impl Client {
    /// Fetches the directory at `directory_url` and returns a client of its server.
    ///
    /// The HTTP client uses rustls without a crypto provider of its own: the
    /// process must install one first (Basalt installs ring's), else this fails
    /// with [`Error::Config`].
    pub async fn new(directory_url: &str, options: ClientOptions) -> Result<Self, Error> {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(Error::Config(
                "no rustls crypto provider is installed in this process \
                 (install ring's with rustls::crypto::ring::default_provider().install_default())"
                    .to_owned(),
            ));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .user_agent(options.user_agent.clone());
        if let Roots::Pem(pem) = &options.roots {
            let roots = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|err| Error::Config(format!("the CA bundle is not PEM: {err}")))?;
            if roots.is_empty() {
                return Err(Error::Config(
                    "the CA bundle holds no certificate".to_owned(),
                ));
            }
            builder = builder.tls_certs_only(roots);
        }
        let http = builder
            .build()
            .map_err(|err| Error::Config(format!("cannot build the HTTP client: {err}")))?;
        let response = http
            .get(directory_url)
            .send()
            .await
            .map_err(|error| Error::Transport {
                url: directory_url.to_owned(),
                error,
            })?;
        let nonces = NoncePool::new(options.nonce_pool_capacity);
        // Not required on a GET, but a nonce is a nonce.
        if let Some(nonce) = replay_nonce(response.headers()) {
            nonces.push(nonce);
        }
        let reply = read(directory_url, response).await?;
        let directory = reply.json(directory_url)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                directory,
                nonces,
                poll: options.poll,
                clock: options.clock,
            }),
        })
    }

    /// The server's directory.
    pub fn directory(&self) -> &Directory {
        &self.inner.directory
    }

    /// The nonces this client holds.
    pub fn nonces(&self) -> &NoncePool {
        &self.inner.nonces
    }

    /// How this client polls.
    pub fn poll_policy(&self) -> &PollPolicy {
        &self.inner.poll
    }

    /// Creates an account for `key` (RFC 8555 §7.3), or finds the one it has
    /// (the server then answers 200 instead of 201).
    pub async fn new_account(
        &self,
        key: AccountKey,
        request: &NewAccount,
    ) -> Result<Account, Error> {
        let url = self.directory().new_account.clone();
        let mut payload = serde_json::json!({
            "termsOfServiceAgreed": request.terms_of_service_agreed,
        });
        if !request.contact.is_empty() {
            payload["contact"] = serde_json::json!(request.contact);
        }
        if request.only_return_existing {
            payload["onlyReturnExisting"] = Value::Bool(true);
        }
        let reply = self
            .post(&key, Signer::Jwk, &url, Some(&payload), None)
            .await?;
        let location = reply.location(&url)?;
        Ok(Account::new(self.clone(), key, location))
    }

    /// The account at `url` whose key is `key`, without asking the server.
    pub fn account(&self, key: AccountKey, url: String) -> Account {
        Account::new(self.clone(), key, url)
    }

    /// An unused nonce: from the pool, else from `newNonce` (RFC 8555 §7.2).
    async fn nonce(&self) -> Result<String, Error> {
        if let Some(nonce) = self.inner.nonces.pop() {
            return Ok(nonce);
        }
        let url = &self.directory().new_nonce;
        let response =
            self.inner
                .http
                .head(url)
                .send()
                .await
                .map_err(|error| Error::Transport {
                    url: url.clone(),
                    error,
                })?;
        let nonce = replay_nonce(response.headers());
        let status = response.status();
        if !status.is_success() {
            return Err(Error::Status {
                url: url.clone(),
                status: status.as_u16(),
                body: String::new(),
            });
        }
        nonce.ok_or_else(|| Error::Protocol(format!("{url}: no Replay-Nonce in the response")))
    }

    /// Signs `payload` (`None`: POST-as-GET) for `url` and POSTs it, with a nonce
    /// from the pool; keeps the response's nonce, and sends the request once more
    /// with a fresh nonce if the server answers `badNonce`. An error status
    /// becomes [`Error::Problem`] (or [`Error::Status`] with no problem document).
    pub(crate) async fn post(
        &self,
        key: &AccountKey,
        signer: Signer<'_>,
        url: &str,
        payload: Option<&Value>,
        accept: Option<&str>,
    ) -> Result<Reply, Error> {
        let mut retried = false;
        loop {
            let nonce = self.nonce().await?;
            let body = jws::sign(key, signer, &nonce, url, payload)?;
            let mut request = self
                .inner
                .http
                .post(url)
                .header(header::CONTENT_TYPE, JOSE_JSON)
                .body(body.to_string());
            if let Some(accept) = accept {
                request = request.header(header::ACCEPT, accept);
            }
            let response = request.send().await.map_err(|error| Error::Transport {
                url: url.to_owned(),
                error,
            })?;
            if let Some(nonce) = replay_nonce(response.headers()) {
                self.inner.nonces.push(nonce);
            }
            let retry_after = self.retry_after(response.headers());
            match read(url, response).await {
                Ok(mut reply) => {
                    reply.retry_after = retry_after;
                    return Ok(reply);
                }
                Err(Error::Problem { problem, .. }) if problem.kind == BAD_NONCE && !retried => {
                    debug!(%url, "badNonce: retrying with a fresh nonce");
                    retried = true;
                }
                Err(Error::Problem {
                    url,
                    status,
                    problem,
                    ..
                }) => {
                    return Err(Error::Problem {
                        url,
                        status,
                        problem,
                        retry_after,
                    });
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The `Retry-After` of a response, as a wait from now.
    fn retry_after(&self, headers: &HeaderMap) -> Option<Duration> {
        let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
        parse_retry_after(value, self.inner.clock.now())
    }
}

/// The `Replay-Nonce` of a response, if it has a usable one.
fn replay_nonce(headers: &HeaderMap) -> Option<String> {
    let nonce = headers.get("replay-nonce")?.to_str().ok()?;
    (!nonce.is_empty()).then(|| nonce.to_owned())
}

/// Reads a response in full: a success is a [`Reply`], an error status a
/// problem document ([`Error::Problem`]) or, failing one, [`Error::Status`].
async fn read(url: &str, response: reqwest::Response) -> Result<Reply, Error> {
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response
        .bytes()
        .await
        .map_err(|error| Error::Transport {
            url: url.to_owned(),
            error,
        })?
        .to_vec();
    if status.is_success() {
        return Ok(Reply {
            location,
            retry_after: None,
            body,
        });
    }
    match Problem::from_json(&body) {
        Some(problem) => Err(Error::Problem {
            url: url.to_owned(),
            status: status.as_u16(),
            problem: Box::new(problem),
            retry_after: None,
        }),
        None => {
            let text = String::from_utf8_lossy(&body);
            let mut end = text.len().min(MAX_ERROR_BODY);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            Err(Error::Status {
                url: url.to_owned(),
                status: status.as_u16(),
                body: text[..end].to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests;
