//! The OCSP responder: revocation status over HTTP (RFC 6960, with the RFC 5019
//! lightweight profile for GET and POST).
//!
//! The responder holds no key and no database. For each request it checks that the
//! CertID names this responder's issuer, reads the certificate's status through
//! [`basalt_core::StorageReadOnly`], and has the CA sign a fresh response through
//! [`basalt_core::RevocationSigner`]. It then serves the CA's DER untouched, with the
//! RFC 5019 §6 caching headers taken from the response's thisUpdate and nextUpdate.
//!
//! ```text
//! client ──HTTP──▶ router ──▶ Responder ──▶ SA (status by serial)
//!                                       └─▶ CA (sign one response)
//! ```

mod config;
mod http;
mod responder;

pub use config::OcspConfig;
pub use http::{router, serve, serve_on};
pub use responder::{Responder, ResponderSettings, load_issuer_cert};
