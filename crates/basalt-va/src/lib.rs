//! The validation authority: ACME challenge validation.
//!
//! [`Va`] implements [`basalt_core::ValidationAuthority`]. It validates http-01
//! (RFC 8555 §8.3), dns-01 (§8.4) and tls-alpn-01 (RFC 8737), with IP identifiers
//! per RFC 8738, and then checks CAA (RFC 8659, RFC 8657). Every name is resolved
//! through [`Lookup`] ([`DnsResolver`] in production) and no connection is made to a
//! reserved address ([`is_reserved`]) unless `allow_private_addresses` is set.
//! [`Perspectives`] makes a primary VA ask remote VAs in other networks too, each
//! configured on its own or found in a [`RemotePool`] behind one DNS name.
#![warn(missing_docs)]

mod address;
mod caa;
mod config;
mod dns;
mod dns01;
mod http01;
mod perspectives;
mod pool;
mod tls;
mod tlsalpn01;
mod va;

pub use address::{is_reserved, reserved_reason};
pub use config::{CaaConfig, DnsConfig, Http01Config, TlsAlpn01Config, VaConfig};
pub use dns::{CaaRecord, DnsResolver, Lookup};
pub use http01::{MAX_BODY_BYTES, MAX_REDIRECTS};
pub use perspectives::{Perspectives, Remote, RemoteConfig, allowed_failures};
pub use pool::{ConnectRemote, RemotePool, RemotePoolConfig, ResolvePool, system_resolver};
pub use va::{Va, VaSettings};
