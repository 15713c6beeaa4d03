//! gRPC between Basalt's services: mutual TLS 1.3, per-service allow-lists of
//! client names, deadlines on every call, the standard health service, and the
//! cross-service [`basalt_core::Error`] carried whole across the wire.
//!
//! For each service there is a typed client implementing its basalt-core trait and
//! a server adapter that serves any implementation of that trait, so service crates
//! never touch generated code.
#![warn(missing_docs)]

mod ca;
mod client;
mod nonce;
mod ra;
mod sa;
mod server;
mod status;
pub mod tls;
mod va;

pub use ca::{CaClient, CaService, ca_servers};
pub use client::GrpcChannel;
pub use nonce::{MAX_NONCE_BATCH, NonceClient, NonceService, nonce_server};
pub use ra::{RaClient, RaService, ra_server};
pub use sa::{SaClient, SaService, sa_servers};
pub use server::{AllowList, GrpcServer, Guarded, PeerIdentity};
pub use status::{from_status, to_status};
pub use va::{VaClient, VaService, va_server};

/// Full gRPC service names, as `[grpc.allowed_clients]` keys use them.
pub mod service_names {
    /// The SA's read-only service.
    pub const STORAGE_READ_ONLY: &str = "basalt.sa.StorageReadOnly";
    /// The SA's read-write service.
    pub const STORAGE: &str = "basalt.sa.Storage";
    /// The RA.
    pub const REGISTRATION_AUTHORITY: &str = "basalt.ra.RegistrationAuthority";
    /// The VA.
    pub const VALIDATION: &str = "basalt.va.Validation";
    /// The CA's issuance service.
    pub const CERTIFICATE_AUTHORITY: &str = "basalt.ca.CertificateAuthority";
    /// The CA's OCSP and CRL signing service.
    pub const REVOCATION_SIGNER: &str = "basalt.ca.RevocationSigner";
    /// The nonce service.
    pub const NONCE: &str = "basalt.nonce.Nonce";
}

/// The answer to an RPC that belongs to a later part of Basalt: the surface is
/// defined in `proto/` so clients can be written against it, but this server does
/// not offer it yet.
fn not_yet(what: &str) -> tonic::Status {
    tonic::Status::unimplemented(format!("{what} is not supported by this basalt version"))
}
