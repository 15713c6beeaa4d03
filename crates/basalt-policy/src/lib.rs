//! Identifier and CSR policy: pure decisions with no I/O.
//!
//! The RA asks this crate whether it is willing to issue for a set of identifiers
//! ([`IdentifierPolicy::check`], [`check_identifier`], [`check_domain_rule`]), whether a CSR matches an order
//! and has a strong enough key ([`check_csr`], [`check_rsa_key`]), whether a requested
//! validity window fits a profile ([`ValidityLimits::check`]), and which key a
//! certificate certifies, for revocation ([`certificate_spki`]). Nothing here touches the network, the clock or storage, so
//! every rule can be tested from a table.
//!
//! It also converts between the two forms a public key takes: the canonical JWK of an
//! account key ([`spki_canonical_jwk`]) and the DER SubjectPublicKeyInfo of a
//! certificate's key ([`jwk_spki`], [`ec_spki`], [`rsa_spki`], [`ed25519_spki`]).

mod certificate;
mod csr;
mod identifier;
mod jwk;
mod key;
mod spki;
mod spki_hash;
mod validity;

pub use certificate::{certificate_names, certificate_spki};
pub use csr::{CsrInfo, check_csr};
pub use identifier::{IdentifierPolicy, check_domain_rule, check_identifier};
pub use jwk::spki_canonical_jwk;
pub use key::check_rsa_key;
pub use spki::{NamedCurve, ec_spki, ed25519_spki, jwk_spki, rsa_spki};
pub use spki_hash::spki_sha256;
pub use validity::{MAX_BACKDATE, ValidityLimits};
