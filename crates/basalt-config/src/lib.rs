//! Configuration blocks shared by Basalt's services, and the loader.
//!
//! Every service reads one TOML file. Unknown fields are errors (`deny_unknown_fields`
//! everywhere), so a typo never silently falls back to a default. Shared blocks are
//! named sub-tables (`[tls]`, `[grpc]`, `[sa]`…) rather than flattened fields, because
//! serde cannot combine `flatten` with `deny_unknown_fields`.
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this service, or a field is out of range.
    #[error("invalid config file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
}

/// Reads and parses a service's TOML config file.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|message| ConfigError::Invalid {
        path: path.to_owned(),
        message,
    })
}

/// Parses TOML text; the error names the offending field and line.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|err| err.to_string().trim_end().to_owned())
}

/// The certificate, key and trust roots a service uses for mutual TLS on its gRPC
/// links (Boulder's `TLSConfig`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// This service's certificate chain, PEM. Its DNS SAN is the name peers allow.
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS#8).
    pub key: PathBuf,
    /// The internal CA that signs every service's certificate, PEM.
    pub ca: PathBuf,
}

/// Where a gRPC server listens and which clients may call each of its services.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GrpcServerConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// For each gRPC service (by its full name, e.g. `basalt.ca.CertificateAuthority`),
    /// the client names (DNS SANs of their certificates) allowed to call it. A service
    /// that is not listed refuses every client. The standard health service answers
    /// any client holding a certificate from the internal CA.
    pub allowed_clients: BTreeMap<String, Vec<String>>,
}

/// How a service reaches a gRPC peer.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GrpcClientConfig {
    /// `host:port` of the peer.
    pub address: String,
    /// The name the peer's certificate must carry.
    pub server_name: String,
    /// The deadline of every call (e.g. `"30s"`, `"500ms"`).
    #[serde(default = "GrpcClientConfig::default_timeout")]
    pub timeout: ConfigDuration,
}

impl GrpcClientConfig {
    fn default_timeout() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(30))
    }
}

/// A duration written as a number and a unit: `ms`, `s`, `m`, `h` or `d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigDuration(pub Duration);

impl FromStr for ConfigDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let invalid =
            || format!("invalid duration {s:?}: expected e.g. \"500ms\", \"30s\", \"2h\"");
        let number: u64 = number.parse().map_err(|_| invalid())?;
        let seconds = |n: u64| Duration::from_secs(n);
        let duration = match unit {
            "ms" => Duration::from_millis(number),
            "s" => seconds(number),
            "m" => seconds(number.checked_mul(60).ok_or_else(invalid)?),
            "h" => seconds(number.checked_mul(3600).ok_or_else(invalid)?),
            "d" => seconds(number.checked_mul(86400).ok_or_else(invalid)?),
            _ => return Err(invalid()),
        };
        Ok(Self(duration))
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        match ms {
            _ if ms.is_multiple_of(86_400_000) && ms > 0 => write!(f, "{}d", ms / 86_400_000),
            _ if ms.is_multiple_of(3_600_000) && ms > 0 => write!(f, "{}h", ms / 3_600_000),
            _ if ms.is_multiple_of(60_000) && ms > 0 => write!(f, "{}m", ms / 60_000),
            _ if ms.is_multiple_of(1000) => write!(f, "{}s", ms / 1000),
            _ => write!(f, "{ms}ms"),
        }
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for ConfigDuration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[allow(dead_code)]
        tls: TlsConfig,
        client: GrpcClientConfig,
    }

    #[test]
    fn durations_parse_and_print() {
        for (text, secs) in [("30s", 30), ("2m", 120), ("7h", 25200), ("90d", 7_776_000)] {
            let parsed: ConfigDuration = text.parse().unwrap();
            assert_eq!(parsed.0, Duration::from_secs(secs));
            assert_eq!(parsed.to_string(), text);
        }
        assert_eq!(
            "250ms".parse::<ConfigDuration>().unwrap().0,
            Duration::from_millis(250)
        );
        for bad in ["", "s", "10", "10 s", "-1s", "1y"] {
            assert!(
                bad.parse::<ConfigDuration>().is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn unknown_fields_are_named() {
        let text = r#"
            [tls]
            cert = "a"
            key = "b"
            ca = "c"
            [client]
            address = "127.0.0.1:1"
            server_name = "sa"
            timout = "1s"
        "#;
        let err = parse::<Sample>(text).unwrap_err();
        assert!(err.contains("unknown field `timout`"), "{err}");
    }

    #[test]
    fn client_timeout_defaults() {
        let text = r#"
            [tls]
            cert = "a"
            key = "b"
            ca = "c"
            [client]
            address = "127.0.0.1:1"
            server_name = "sa"
        "#;
        let sample: Sample = parse(text).unwrap();
        assert_eq!(sample.client.timeout.0, Duration::from_secs(30));
    }
}
