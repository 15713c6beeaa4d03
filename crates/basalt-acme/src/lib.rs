//! An ACME (RFC 8555) client core: what `basalt loadgen` drives servers with, and
//! what a fuller client can be built on.
//!
//! A [`Client`] fetches a server's [`Directory`] and makes every signed request:
//! flattened JWS with ES256 ([`AccountKey`], `jwk` for newAccount and `kid`
//! afterwards), nonces reused from each response's `Replay-Nonce`
//! ([`NoncePool`], `newNonce` only when the pool is empty) and one retry on
//! `badNonce`. [`Client::new_account`] gives an [`Account`], which creates
//! orders, fetches authorizations, responds to challenges, polls (honouring
//! `Retry-After`, see [`PollPolicy`]), finalizes with a CSR
//! ([`CertificateRequest`]), downloads the PEM chain and revokes.
//!
//! ```no_run
//! # async fn example() -> Result<(), basalt_acme::Error> {
//! use basalt_acme::{AccountKey, Client, ClientOptions, Identifier, NewAccount, OrderStatus};
//!
//! let client = Client::new("https://127.0.0.1:14000/directory", ClientOptions::default()).await?;
//! let terms = NewAccount { terms_of_service_agreed: true, ..NewAccount::default() };
//! let account = client.new_account(AccountKey::generate()?, &terms).await?;
//! let order = account.new_order(&[Identifier::dns("www.example.com")]).await?;
//! for url in &order.authorizations {
//!     let (authz, _) = account.authorization(url).await?;
//!     let Some(challenge) = authz.challenge("http-01") else { continue };
//!     // Serve account.key_authorization(token) at /.well-known/acme-challenge/<token>.
//!     account.respond(&challenge.url).await?;
//!     account.poll_authorization(url).await?;
//! }
//! let names = vec!["www.example.com".to_owned()];
//! let csr = basalt_acme::CertificateRequest::p256(&names)?;
//! account.finalize(&order, &csr.der).await?;
//! let order = account.poll_order(&order.url, OrderStatus::Valid).await?;
//! let pem = account.certificate(order.certificate.as_deref().unwrap_or_default()).await?;
//! # let _ = pem;
//! # Ok(())
//! # }
//! ```
//!
//! Errors keep the server's problem document whole ([`Error::Problem`],
//! [`Problem`]); [`Error::label`] names an error's kind for counting.
#![warn(missing_docs)]

mod account;
mod client;
mod csr;
mod error;
pub mod jws;
mod key;
mod nonce;
mod retry_after;
mod types;

pub use account::{Account, NewAccount};
pub use client::{Client, ClientOptions, PollPolicy, Roots};
pub use csr::{CertificateRequest, pem_certificates};
pub use error::{BAD_NONCE, Error, Problem};
pub use key::{AccountKey, jwk_thumbprint};
pub use nonce::NoncePool;
pub use retry_after::parse_retry_after;
pub use types::{
    Authorization, AuthorizationStatus, Challenge, ChallengeStatus, Directory, Identifier, Order,
    OrderStatus,
};
