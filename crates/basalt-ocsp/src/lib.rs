//! The OCSP responder: revocation status over HTTP (RFC 6960, with the RFC 5019
//! lightweight profile for GET and POST).
//!
//! The responder holds no key and no database. It answers for several issuers (say an
//! ECDSA and an RSA intermediate), in SHA-1 or SHA-256 CertIDs. For each request it
//! finds the issuer the CertID names and serves the response the CA signed
//! (through [`basalt_core::RevocationSigner`]) from a bounded memory cache. While
//! it follows a current [`StatusFeed`] (the SA's record of status changes, polled
//! every second) a cached response is served without asking the SA: the feed has
//! the responses of serials whose status changed checked again, and those that
//! now state the wrong status (a revocation) signed anew at once; new certificates
//! get a response signed as soon as the feed reports them (`presign`), and served
//! responses are signed again before they are half way to their nextUpdate.
//! Otherwise, or on a miss, it reads the certificate's status through
//! [`basalt_core::RevocationLookup`] (`unknown` when the serial was never issued),
//! checks that this issuer signed the certificate, and has the CA sign a response
//! when the cached one states another status. It serves the CA's DER untouched,
//! with the RFC 5019 §6 caching headers taken from the response's thisUpdate and
//! nextUpdate.
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
//! client ──HTTP──▶ router ──▶ Responder ──▶ SA (status by serial, on a miss)
//!                    │            ▲     └─▶ CA (sign one response)
//!                    │            └── StatusFeed ──▶ SA (status changes)
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
