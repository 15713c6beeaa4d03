//! The OCSP responder: revocation status over HTTP (RFC 6960, with the RFC 5019
//! lightweight profile for GET and POST).
//!
//! The responder holds no key and no database. It answers for several issuers (say an
//! ECDSA and an RSA intermediate). For each request it finds the issuer the CertID
//! names, reads the certificate's status through [`basalt_core::StorageReadOnly`],
//! checks that this issuer signed the certificate, and has the CA sign a fresh
//! response with that issuer through [`basalt_core::RevocationSigner`]. It then serves
//! the CA's DER untouched, with the RFC 5019 §6 caching headers taken from the
//! response's thisUpdate and nextUpdate.
//!
//! It also serves each issuer's certificate at the path the config gives it, for the
//! caIssuers URL of the certificates that issuer signs (RFC 5280 §4.2.2.1).
//!
//! ```text
//! client ──HTTP──▶ router ──▶ Responder ──▶ SA (status by serial)
//!                    │                  └─▶ CA (sign one response)
//!                    └──▶ issuer certificates (GET <path>)
//! ```

mod config;
mod http;
mod responder;

pub use config::{IssuerConfig, OcspConfig};
pub use http::{router, serve, serve_on};
pub use responder::{Responder, ResponderIssuer, ResponderSettings, load_issuer_cert};
