//! The storage authority: the only process with a database connection.
//!
//! [`SqlStorage`] implements [`basalt_core::StorageReadOnly`], [`basalt_core::Storage`]
//! and the certificate traits (operators' [`basalt_core::CertificateSearch`] too) on
//! SQLite, PostgreSQL and MySQL/MariaDB, with the queries written once (`storage`) and
//! what differs between engines kept in `engine` and in each engine's migrations
//! (`migrate`). The status rules of `status` derive an order's
//! and an authorization's status from the stored facts and the injected clock. One
//! conformance suite (`conformance`, tests only) runs against every engine.

mod common;
mod config;
#[cfg(test)]
mod conformance;
mod engine;
mod migrate;
mod split;
mod status;
mod storage;
#[cfg(test)]
mod testdb;

pub use config::DatabaseConfig;
pub use config::MaintenanceConfig;
pub use config::SaConfig;
pub use engine::Engine;
pub use migrate::create_database_if_missing;
pub use split::ReadSplit;
pub use storage::Maintenance;
pub use storage::SqlStorage;
