//! The certificate authority: the only holder of issuer keys.
//!
//! [`Ca`] implements [`basalt_core::CertificateAuthority`] (serial recorded, linting
//! certificate linted and stored as the precertificate, then the issuer signature
//! over the same TBS) and [`basalt_core::RevocationSigner`] (OCSP responses signed
//! by the issuer or its delegated responder, [`OcspSigner`], and sharded CRLs
//! signed by the issuer). Certificates are shaped by named [`Profile`]s
//! ([`Profiles`]); an issue request picks one by name, or gets the default. [`pki`] makes the files
//! `basalt dev` needs. The gRPC adapter lives elsewhere and only wraps these types.

pub mod ceremony;
mod config;
mod crl;
mod issuance;
mod issuer;
mod key;
pub mod lint;
mod ocsp;
mod ocsp_signer;
mod pkcs11;
pub mod pki;
pub mod softhsm;

pub use config::CLASSIC_PROFILE;
pub use config::CaConfig;
pub use config::CrlConfig;
pub use config::DelegatedOcspSignerConfig;
pub use config::IssuerConfig;
pub use config::MAX_CRL_LIFETIME;
pub use config::MAX_CRL_SHARDS;
pub use config::OcspSigningConfig;
pub use config::ProfileConfig;
pub use crl::crl_shard;
pub use issuance::Ca;
pub use issuance::Profile;
pub use issuance::Profiles;
pub use issuer::Issuer;
pub use key::CaKey;
pub use key::KeyAlgorithm;
pub use key::KeySource;
pub use key::Pkcs11Config;
pub use ocsp::sign_ocsp_response;
pub use ocsp_signer::OcspSigner;

#[cfg(test)]
mod test_support;
