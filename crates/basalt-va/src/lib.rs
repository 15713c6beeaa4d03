//! The validation authority: ACME challenge validation.
//!
//! [`Va`] implements [`basalt_core::ValidationAuthority`]. It validates http-01
//! (RFC 8555 §8.3, and RFC 8738 for IP identifiers); dns-01 and tls-alpn-01
//! are refused for now. Every name is resolved through [`Lookup`]
//! ([`DnsResolver`] in production) and no connection is made to a reserved
//! address ([`is_reserved`]) unless `allow_private_addresses` is set.
#![warn(missing_docs)]

mod address;
mod caa;
mod config;
mod dns;
mod dns01;
mod http01;
mod tlsalpn01;
mod va;

pub use address::{is_reserved, reserved_reason};
pub use config::{DnsConfig, Http01Config, TlsAlpn01Config, VaConfig};
pub use dns::{DnsResolver, Lookup};
pub use http01::{MAX_BODY_BYTES, MAX_REDIRECTS};
pub use va::{Va, VaSettings};
