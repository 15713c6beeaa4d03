//! The registration authority: account, order and authorization lifecycle, finalize,
//! revocation.
//!
//! [`Ra`] implements [`basalt_core::RegistrationAuthority`] over its peers, which it
//! holds as basalt-core trait objects (the SA, VA and CA: gRPC clients in production,
//! fakes in tests). It applies policy (basalt-policy) and orchestrates; it stores
//! nothing itself. The gRPC server adapter lives elsewhere.

mod config;
mod ra;

pub use config::{LifetimesConfig, ProfileConfig, RaConfig};
pub use ra::{CLASSIC, ProfileSettings, Ra, RaSettings};
