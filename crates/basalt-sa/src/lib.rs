//! The storage authority: the only process with a database connection.
//!
//! [`SqlStorage`] (SQLite) and [`PgStorage`] (PostgreSQL) implement
//! [`basalt_core::StorageReadOnly`], [`basalt_core::Storage`] and the certificate
//! traits through sqlx; [`AnyStorage`] picks one from the database URL's scheme. Engines
//! live in their own modules and share the status rules of `status`, which derive an
//! order's and an authorization's status from the stored facts and the injected clock.
//! One conformance suite (`conformance`, tests only) runs against every engine.

mod any;
mod common;
mod config;
#[cfg(test)]
mod conformance;
mod postgres;
mod sqlite;
mod status;

pub use any::AnyStorage;
pub use config::DatabaseConfig;
pub use config::SaConfig;
pub use postgres::PgStorage;
pub use sqlite::SqlStorage;
