//! An account and everything it does (RFC 8555 §7.4–§7.6): orders,
//! authorizations, challenges, finalize, download and revocation, with polling
//! that honours `Retry-After`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::AccountKey;
use crate::Authorization;
use crate::AuthorizationStatus;
use crate::Challenge;
use crate::Client;
use crate::Error;
use crate::Identifier;
use crate::Order;
use crate::OrderStatus;
use crate::client::Reply;
use crate::jws::Signer;
use crate::pem_certificates;

/// The `Accept` of a certificate download (RFC 8555 §7.4.2).
const PEM_CHAIN: &str = "application/pem-certificate-chain";

/// What a newAccount request asks for (RFC 8555 §7.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewAccount {
    /// Contact URLs, e.g. `mailto:admin@example.com`.
    pub contact: Vec<String>,
    /// Whether the client agrees to the terms of service.
    pub terms_of_service_agreed: bool,
    /// Only look the key's account up; never create one.
    pub only_return_existing: bool,
}

/// An ACME account: its URL and key, on a [`Client`]. Cheap to clone.
#[derive(Clone)]
pub struct Account {
    client: Client,
    key: Arc<AccountKey>,
    url: Arc<str>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("url", &self.url)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Account {
    pub(crate) fn new(client: Client, key: AccountKey, url: String) -> Self {
        Self {
            client,
            key: Arc::new(key),
            url: url.into(),
        }
    }

    /// The account URL (the `kid` of its requests).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The account key.
    pub fn key(&self) -> &AccountKey {
        &self.key
    }

    /// The client the account talks through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The key authorization of a challenge token (RFC 8555 §8.1): what an
    /// http-01 responder serves at `/.well-known/acme-challenge/<token>`.
    pub fn key_authorization(&self, token: &str) -> String {
        self.key.key_authorization(token)
    }

    /// A signed POST by this account (`None`: POST-as-GET).
    async fn post(
        &self,
        url: &str,
        payload: Option<&serde_json::Value>,
        accept: Option<&str>,
    ) -> Result<Reply, Error> {
        self.client
            .post(&self.key, Signer::Kid(&self.url), url, payload, accept)
            .await
    }

    /// Creates an order for `identifiers` (RFC 8555 §7.4).
    pub async fn new_order(&self, identifiers: &[Identifier]) -> Result<Order, Error> {
        let url = self.client.directory().new_order.clone();
        let reply = self
            .post(&url, Some(&json!({ "identifiers": identifiers })), None)
            .await?;
        let mut order: Order = reply.json(&url)?;
        order.url = reply.location(&url)?;
        Ok(order)
    }

    /// The order at `url`, and the `Retry-After` of the response.
    pub async fn order(&self, url: &str) -> Result<(Order, Option<Duration>), Error> {
        let reply = self.post(url, None, None).await?;
        let mut order: Order = reply.json(url)?;
        order.url = url.to_owned();
        Ok((order, reply.retry_after))
    }

    /// The authorization at `url`, and the `Retry-After` of the response.
    pub async fn authorization(
        &self,
        url: &str,
    ) -> Result<(Authorization, Option<Duration>), Error> {
        let reply = self.post(url, None, None).await?;
        let mut authz: Authorization = reply.json(url)?;
        authz.url = url.to_owned();
        Ok((authz, reply.retry_after))
    }

    /// Tells the server to validate the challenge at `url` (RFC 8555 §7.5.1);
    /// the client must already answer it.
    pub async fn respond(&self, url: &str) -> Result<Challenge, Error> {
        let reply = self.post(url, Some(&json!({})), None).await?;
        reply.json(url)
    }

    /// Polls the authorization at `url` until it is no longer `pending`: the
    /// authorization if it became `valid`, else [`Error::Failed`] with its failed
    /// challenge's error. The first poll is at once; then each waits as the
    /// [`crate::PollPolicy`] says.
    pub async fn poll_authorization(&self, url: &str) -> Result<Authorization, Error> {
        let policy = *self.client.poll_policy();
        let start = Instant::now();
        loop {
            let (authz, retry_after) = self.authorization(url).await?;
            match authz.status {
                AuthorizationStatus::Valid => return Ok(authz),
                AuthorizationStatus::Pending => {}
                _ => return Err(authz.failed(url)),
            }
            wait(&policy, start, retry_after, "authorization", url, "pending").await?;
        }
    }

    /// Polls the order at `url` until it reaches `target` (`ready` or `valid`)
    /// or a later state: the order, or [`Error::Failed`] if it became
    /// `invalid`. Polls like [`Account::poll_authorization`].
    pub async fn poll_order(&self, url: &str, target: OrderStatus) -> Result<Order, Error> {
        let policy = *self.client.poll_policy();
        let start = Instant::now();
        loop {
            let (order, retry_after) = self.order(url).await?;
            if order.status == OrderStatus::Invalid {
                return Err(order.failed(url));
            }
            if progress(order.status) >= progress(target) {
                return Ok(order);
            }
            let status = order.status.to_string();
            wait(&policy, start, retry_after, "order", url, &status).await?;
        }
    }

    /// Finalizes `order` with a DER CSR (RFC 8555 §7.4): the order as the server
    /// answers, usually `processing` or already `valid`.
    pub async fn finalize(&self, order: &Order, csr_der: &[u8]) -> Result<Order, Error> {
        let payload = json!({ "csr": URL_SAFE_NO_PAD.encode(csr_der) });
        let reply = self.post(&order.finalize, Some(&payload), None).await?;
        let mut finalized: Order = reply.json(&order.finalize)?;
        finalized.url = order.url.clone();
        Ok(finalized)
    }

    /// Downloads the certificate chain at `url` (RFC 8555 §7.4.2): PEM, the
    /// end-entity certificate first.
    pub async fn certificate(&self, url: &str) -> Result<String, Error> {
        let reply = self.post(url, None, Some(PEM_CHAIN)).await?;
        let pem = String::from_utf8(reply.body)
            .map_err(|_| Error::Protocol(format!("{url}: the certificate chain is not text")))?;
        pem_certificates(&pem)?;
        Ok(pem)
    }

    /// Revokes a certificate this account holds (RFC 8555 §7.6), by its DER, with
    /// an RFC 5280 reason code if given.
    pub async fn revoke(&self, certificate_der: &[u8], reason: Option<u8>) -> Result<(), Error> {
        let url = self.client.directory().revoke_cert.clone();
        let mut payload = json!({ "certificate": URL_SAFE_NO_PAD.encode(certificate_der) });
        if let Some(reason) = reason {
            payload["reason"] = json!(reason);
        }
        self.post(&url, Some(&payload), None).await?;
        Ok(())
    }
}

/// How far along an order's life a state is; `invalid` is handled apart.
fn progress(status: OrderStatus) -> u8 {
    match status {
        OrderStatus::Pending => 0,
        OrderStatus::Ready => 1,
        OrderStatus::Processing => 2,
        OrderStatus::Valid | OrderStatus::Invalid => 3,
    }
}

/// Sleeps before the next poll of `object` at `url`, as `policy` says after a
/// response with `retry_after`; [`Error::Timeout`] if polling began at `start`
/// longer ago than the policy's timeout.
async fn wait(
    policy: &crate::PollPolicy,
    start: Instant,
    retry_after: Option<Duration>,
    object: &'static str,
    url: &str,
    status: &str,
) -> Result<(), Error> {
    let waited = start.elapsed();
    let Some(left) = policy
        .timeout
        .checked_sub(waited)
        .filter(|left| !left.is_zero())
    else {
        return Err(Error::Timeout {
            object,
            url: url.to_owned(),
            status: status.to_owned(),
            waited,
        });
    };
    tokio::time::sleep(policy.delay(retry_after).min(left)).await;
    Ok(())
}
