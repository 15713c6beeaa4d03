//! The storage authority's configuration file (`deploy/config/sa.toml`).

use std::path::PathBuf;
use std::time::Duration;

use basalt_config::ConfigDuration;
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
    /// `[telemetry]`: metrics and health checks on a debug listener, and trace
    /// export (all off unless set).
    #[serde(default)]
    pub telemetry: basalt_config::TelemetryConfig,
    /// `[database]`: the database the SA owns.
    pub database: DatabaseConfig,
    /// `[read_replica]`: an optional read replica of `[database]` (same settings;
    /// `migrate` is ignored, the primary's migrations reach it by replication). The
    /// read-only gRPC service (`StorageReadOnly`, the WFE's) reads from it first.
    #[serde(default)]
    pub read_replica: Option<DatabaseConfig>,
    /// `[maintenance]`: settling interrupted orders and purging expired data.
    #[serde(default)]
    pub maintenance: MaintenanceConfig,
}

/// `[maintenance]`: what the SA's maintenance pass does, and how often. Every SA runs
/// it; passes on two SAs at once are safe, each row is settled or deleted once.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// How often a pass runs (default 1m); `"0s"` turns maintenance off.
    #[serde(default = "MaintenanceConfig::default_interval")]
    pub interval: ConfigDuration,
    /// An order still processing this long after it began, with no certificate, was
    /// cut short by a crash and is made invalid (default 10m). Keep it well above the
    /// RA's deadline for a CA call, so no issuance still under way is cut off.
    #[serde(default = "MaintenanceConfig::default_processing_timeout")]
    pub processing_timeout: ConfigDuration,
    /// Orders and authorizations are deleted this long after they expire (default
    /// 30d), so a client can still read what became of them for a while.
    #[serde(default = "MaintenanceConfig::default_retention")]
    pub retention: ConfigDuration,
    /// The most orders, and the most authorizations, one pass deletes (default 500).
    #[serde(default = "MaintenanceConfig::default_batch")]
    pub batch: u32,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self {
            interval: Self::default_interval(),
            processing_timeout: Self::default_processing_timeout(),
            retention: Self::default_retention(),
            batch: Self::default_batch(),
        }
    }
}

impl MaintenanceConfig {
    fn default_interval() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(60))
    }

    fn default_processing_timeout() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(600))
    }

    fn default_retention() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(30 * 86_400))
    }

    fn default_batch() -> u32 {
        500
    }
}

/// `[database]`: which database the SA uses, how it logs in, and how many connections
/// it may hold.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// The database URL, whose scheme picks the engine:
    /// - `sqlite://PATH` (the file is created if missing), or `sqlite::memory:` (tests
    ///   only: the data dies with the process);
    /// - `postgres://USER@HOST:PORT/DATABASE` (also `postgresql://`);
    /// - `mysql://USER@HOST:PORT/DATABASE` (also `mariadb://`).
    ///
    /// The database must exist on a server; its tables are created. The URL never holds
    /// a password: see `password_file`.
    pub url: String,
    /// A file holding the database password (surrounding whitespace is ignored), so
    /// that the config can be shared and the secret mounted on its own.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The most connections the pool opens (default 10).
    #[serde(default = "DatabaseConfig::default_max_connections")]
    pub max_connections: u32,
    /// Connections the pool keeps open even when idle (default 0).
    #[serde(default)]
    pub min_connections: u32,
    /// How long a caller waits for a free connection, or for a new one to be opened,
    /// before its call fails with a retryable `unavailable` error (default 5s).
    #[serde(default = "DatabaseConfig::default_acquire_timeout")]
    pub acquire_timeout: ConfigDuration,
    /// An idle connection is closed after this long (default 10m).
    #[serde(default = "DatabaseConfig::default_idle_timeout")]
    pub idle_timeout: ConfigDuration,
    /// A connection is replaced after this long, so a database fail-over or a changed
    /// password is picked up (default 30m).
    #[serde(default = "DatabaseConfig::default_max_lifetime")]
    pub max_lifetime: ConfigDuration,
    /// Whether the SA applies pending migrations when it starts (default true). With
    /// `false` an operator applies them with `basalt sa migrate`, and the SA refuses
    /// to start on a schema older than it needs.
    #[serde(default = "DatabaseConfig::default_migrate")]
    pub migrate: bool,
}

/// The pool size when the config does not say.
pub(crate) const DEFAULT_MAX_CONNECTIONS: u32 = 10;

impl DatabaseConfig {
    /// A config for `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            password_file: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            min_connections: 0,
            acquire_timeout: Self::default_acquire_timeout(),
            idle_timeout: Self::default_idle_timeout(),
            max_lifetime: Self::default_max_lifetime(),
            migrate: true,
        }
    }

    fn default_max_connections() -> u32 {
        DEFAULT_MAX_CONNECTIONS
    }

    fn default_acquire_timeout() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(5))
    }

    fn default_idle_timeout() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(600))
    }

    fn default_max_lifetime() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(1800))
    }

    fn default_migrate() -> bool {
        true
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
        assert_eq!(
            config.database,
            DatabaseConfig::new("sqlite:///var/lib/basalt/basalt.db")
        );
        assert_eq!(config.maintenance, MaintenanceConfig::default());
        assert_eq!(config.read_replica, None);
        assert_eq!(
            config.maintenance.processing_timeout.0,
            Duration::from_secs(600)
        );
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

        let text = EXAMPLE.replace(
            "url = \"sqlite:///var/lib/basalt/basalt.db\"",
            "url = \"mysql://basalt@db:3306/basalt\"\n\
             password_file = \"/run/secrets/db\"\n\
             max_connections = 40\nmin_connections = 2\nacquire_timeout = \"2s\"\n\
             idle_timeout = \"1m\"\nmax_lifetime = \"1h\"\nmigrate = false",
        );
        let config: SaConfig = basalt_config::parse(&text).unwrap();
        let database = config.database;
        assert_eq!(
            database.password_file,
            Some(PathBuf::from("/run/secrets/db"))
        );
        assert_eq!(
            (database.max_connections, database.min_connections),
            (40, 2)
        );
        assert_eq!(database.acquire_timeout.0, Duration::from_secs(2));
        assert_eq!(database.idle_timeout.0, Duration::from_secs(60));
        assert_eq!(database.max_lifetime.0, Duration::from_secs(3600));
        assert!(!database.migrate);

        let text = format!(
            "{EXAMPLE}\n[maintenance]\ninterval = \"0s\"\nprocessing_timeout = \"5m\"\n\
             retention = \"7d\"\nbatch = 50\n"
        );
        let config: SaConfig = basalt_config::parse(&text).unwrap();
        assert_eq!(
            config.maintenance,
            MaintenanceConfig {
                interval: ConfigDuration(Duration::ZERO),
                processing_timeout: ConfigDuration(Duration::from_secs(300)),
                retention: ConfigDuration(Duration::from_secs(7 * 86_400)),
                batch: 50,
            }
        );
    }

    #[test]
    fn a_read_replica_is_a_database_of_its_own() {
        let text = format!(
            "{EXAMPLE}\n[read_replica]\nurl = \"postgres://basalt@replica:5432/basalt\"\n\
             password_file = \"/run/secrets/replica\"\nmax_connections = 20\n"
        );
        let config: SaConfig = basalt_config::parse(&text).unwrap();
        let replica = config.read_replica.unwrap();
        assert_eq!(replica.url, "postgres://basalt@replica:5432/basalt");
        assert_eq!(replica.max_connections, 20);
        assert_eq!(
            replica.password_file,
            Some(PathBuf::from("/run/secrets/replica"))
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
