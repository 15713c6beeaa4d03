//! The OCSP responder: revocation status over HTTP (RFC 6960, with the RFC 5019
//! lightweight profile for GET and POST).
//!
//! The responder holds no key and no database. It answers for several issuers (say an
//! ECDSA and an RSA intermediate), in SHA-1 or SHA-256 CertIDs. For each request it
//! finds the issuer the CertID names, reads the certificate's status through
//! [`basalt_core::RevocationLookup`] (`unknown` when the serial was never issued),
//! and checks that this issuer signed the certificate. It keeps the responses the CA
//! signed (through [`basalt_core::RevocationSigner`]) in a bounded memory cache, each
//! with the status it states: a response is served again while that status is
//! still the SA's and it is not half way to its nextUpdate, and is otherwise signed
//! anew, so a revocation shows on the very next request. It serves the CA's DER
//! untouched, with the RFC 5019 §6 caching headers taken from the response's
//! thisUpdate and nextUpdate.
//!
//! It also serves each issuer's certificate at the path the config gives it, for the
//! caIssuers URL of the certificates that issuer signs (RFC 5280 §4.2.2.1).
//!
//! With a `[crl]` table it publishes each issuer's CRLs (RFC 5280 §5), split into
//! shards as the CA splits its certificates: the [`CrlUpdater`] has the CA sign
//! every shard at start, every `period`, and within `delay` of a revocation the
//! [`StatusFeed`] reports, and the router serves the newest of each shard at
//! `GET {crl_path}{shard}.crl`.
//!
//! ```text
//! client ──HTTP──▶ router ──▶ Responder ──▶ SA (status by serial)
//!                    │                  └─▶ CA (sign one response)
//!                    ├──▶ issuer certificates (GET <path>)
//!                    └──▶ CrlStore (GET <crl_path><shard>.crl) ◀── CrlUpdater ──▶ SA, CA
//! ```

mod cache;
mod config;
mod crl;
mod feed;
mod http;
mod responder;

pub use config::{CrlConfig, IssuerConfig, OcspConfig, StatusFeedConfig};
pub use crl::{
    CrlIssuer, CrlSettings, CrlStore, CrlUpdater, MAX_CRL_DELAY, MAX_CRL_PERIOD, MAX_CRL_SHARDS,
};
pub use feed::{COMMIT_MARGIN, FeedEvent, FeedSettings, StatusFeed};
pub use http::{router, serve, serve_on};
pub use responder::{Responder, ResponderIssuer, ResponderSettings, load_issuer_cert};
