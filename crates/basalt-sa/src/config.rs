//! The storage authority's configuration file (`deploy/config/sa.toml`).

use basalt_config::GrpcServerConfig;
use basalt_config::TlsConfig;
use serde::Deserialize;

/// `basalt sa --config sa.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SaConfig {
    /// `[grpc]`: where the SA listens and who may call `StorageReadOnly` and `Storage`.
    pub grpc: GrpcServerConfig,
    /// `[tls]`: the SA's certificate for mutual TLS.
    pub tls: TlsConfig,
    /// `[database]`: the database the SA owns.
    pub database: DatabaseConfig,
}

/// `[database]`: which database the SA uses and how many connections it may hold.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// The database URL: `sqlite://PATH` (the file is created if missing),
    /// `sqlite::memory:` (tests only: the data dies with the process), or
    /// `postgres://USER@HOST:PORT/DATABASE` (also `postgresql://`; the database must
    /// exist, its tables are created). [`crate::AnyStorage`] picks the engine from it.
    pub url: String,
    /// The size of the connection pool (default 5).
    #[serde(default = "DatabaseConfig::default_max_connections")]
    pub max_connections: u32,
}

/// The pool size when the config does not say.
pub(crate) const DEFAULT_MAX_CONNECTIONS: u32 = 5;

impl DatabaseConfig {
    fn default_max_connections() -> u32 {
        DEFAULT_MAX_CONNECTIONS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        [grpc]
        listen = "127.0.0.1:9095"
        [grpc.allowed_clients]
        "basalt.sa.StorageReadOnly" = ["wfe.basalt", "ra.basalt", "ocsp.basalt"]
        "basalt.sa.Storage" = ["ra.basalt", "ca.basalt"]

        [tls]
        cert = "/etc/basalt/sa.pem"
        key = "/etc/basalt/sa.key"
        ca = "/etc/basalt/internal-ca.pem"

        [database]
        url = "sqlite:///var/lib/basalt/basalt.db"
    "#;

    #[test]
    fn example_config_parses_with_defaults() {
        let config: SaConfig = basalt_config::parse(EXAMPLE).unwrap();
        assert_eq!(config.database.url, "sqlite:///var/lib/basalt/basalt.db");
        assert_eq!(config.database.max_connections, 5);
        assert_eq!(config.grpc.listen.port(), 9095);
        assert_eq!(
            config.grpc.allowed_clients["basalt.sa.Storage"],
            vec!["ra.basalt".to_owned(), "ca.basalt".to_owned()]
        );

        let text = EXAMPLE.replace(
            "url = \"sqlite:///var/lib/basalt/basalt.db\"",
            "url = \"sqlite::memory:\"\nmax_connections = 12",
        );
        let config: SaConfig = basalt_config::parse(&text).unwrap();
        assert_eq!(config.database.max_connections, 12);

        let text = EXAMPLE.replace(
            "sqlite:///var/lib/basalt/basalt.db",
            "postgres://basalt@db.internal:5432/basalt",
        );
        let config: SaConfig = basalt_config::parse(&text).unwrap();
        assert_eq!(
            config.database.url,
            "postgres://basalt@db.internal:5432/basalt"
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = EXAMPLE.replace("[database]", "[database]\nmax_conections = 3");
        let err = basalt_config::parse::<SaConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `max_conections`"), "{err}");

        let text = format!("{EXAMPLE}\n[features]\nx = true\n");
        let err = basalt_config::parse::<SaConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `features`"), "{err}");
    }
}
