//! The storage authority: the only process with a database connection.
//!
//! [`SqlStorage`] implements [`basalt_core::StorageReadOnly`] and
//! [`basalt_core::Storage`] on SQLite through sqlx. Engines live in their own modules
//! (`sqlite` today; PostgreSQL and MariaDB beside it later) and share the status rules
//! of `status`, which derive an order's and an authorization's status from the stored
//! facts and the injected clock.

mod config;
mod sqlite;
mod status;

pub use config::DatabaseConfig;
pub use config::SaConfig;
pub use sqlite::SqlStorage;
