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
    /// How long calls in flight may take to finish once the service is asked to
    /// stop (SIGTERM); past that the server stops anyway (default `"5s"`).
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: ConfigDuration,
}

/// How long a stopping service lets requests in flight finish unless its config
/// says otherwise: `drain_timeout` of `[grpc]`, and of the WFE and OCSP configs.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// [`DEFAULT_DRAIN_TIMEOUT`], for `#[serde(default = "…")]`.
pub fn default_drain_timeout() -> ConfigDuration {
    ConfigDuration(DEFAULT_DRAIN_TIMEOUT)
}

/// `[telemetry]`: how a service is observed. Every field is optional and the
/// block may be left out: no debug listener, no trace export.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// A plain-HTTP listener for operators and probes: `/metrics` (Prometheus
    /// text), `/health/live` (200 while the process runs) and `/health/ready` (200
    /// when the service's dependencies answer and it is not stopping, 503 naming
    /// what is not ready otherwise). Keep it on an internal address.
    #[serde(default)]
    pub debug_listen: Option<SocketAddr>,
    /// An OpenTelemetry collector's OTLP/gRPC endpoint, e.g.
    /// `"http://otel-collector:4317"`, that the service's traces are exported to
    /// (plaintext HTTP/2 inside the deployment's network). None: no export.
    #[serde(default, deserialize_with = "otlp_endpoint")]
    pub otlp_endpoint: Option<String>,
    /// The share of new traces recorded, from 0.0 to 1.0 (default 1.0). A call
    /// that arrives with a trace keeps its caller's decision.
    #[serde(default)]
    pub trace_sample_ratio: SampleRatio,
}

/// Reads `otlp_endpoint`: an `http://` URL with a host, since traces go out as
/// plaintext HTTP/2 (h2c).
fn otlp_endpoint<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let Some(url) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let host = url.strip_prefix("http://").unwrap_or_default();
    if host.is_empty() || host.starts_with('/') || host.contains(char::is_whitespace) {
        return Err(serde::de::Error::custom(format!(
            "invalid otlp_endpoint {url:?}: expected http://HOST:PORT (OTLP over plaintext gRPC)"
        )));
    }
    Ok(Some(url))
}

/// A share from 0.0 to 1.0 (`trace_sample_ratio`); never NaN.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct SampleRatio(f64);

impl SampleRatio {
    /// The share, from 0.0 to 1.0.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for SampleRatio {
    fn default() -> Self {
        Self(1.0)
    }
}

// Sound: the value is never NaN, so equality is reflexive.
impl Eq for SampleRatio {}

impl TryFrom<f64> for SampleRatio {
    type Error = String;

    fn try_from(ratio: f64) -> Result<Self, String> {
        if (0.0..=1.0).contains(&ratio) {
            Ok(Self(ratio))
        } else {
            Err(format!(
                "invalid trace_sample_ratio {ratio}: expected a number from 0.0 to 1.0"
            ))
        }
    }
}

impl<'de> Deserialize<'de> for SampleRatio {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        f64::deserialize(deserializer)?
            .try_into()
            .map_err(serde::de::Error::custom)
    }
}

/// Reads only the `[telemetry]` block of a service's config file, before the
/// service reads the whole file (logging and tracing start first, so that what the
/// service then says is seen). A file whose block is missing gives the defaults.
pub fn load_telemetry(path: &Path) -> Result<TelemetryConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |message: String| ConfigError::Invalid {
        path: path.to_owned(),
        message,
    };
    let mut table: toml::Table = parse(&text).map_err(invalid)?;
    match table.remove("telemetry") {
        None => Ok(TelemetryConfig::default()),
        Some(block) => block
            .try_into()
            .map_err(|err: toml::de::Error| invalid(format!("[telemetry]: {}", err.message()))),
    }
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

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Service {
        grpc: GrpcServerConfig,
        #[serde(default)]
        telemetry: TelemetryConfig,
    }

    const GRPC: &str = "[grpc]\nlisten = \"127.0.0.1:1\"\n[grpc.allowed_clients]\n";

    #[test]
    fn telemetry_and_drain_timeout_have_defaults() {
        let service: Service = parse(GRPC).unwrap();
        assert_eq!(service.grpc.drain_timeout.0, DEFAULT_DRAIN_TIMEOUT);
        assert_eq!(service.telemetry, TelemetryConfig::default());
        assert_eq!(service.telemetry.debug_listen, None);
        assert_eq!(service.telemetry.otlp_endpoint, None);
        assert_eq!(service.telemetry.trace_sample_ratio.get(), 1.0);
    }

    #[test]
    fn the_telemetry_block_is_read_and_checked() {
        let text = format!(
            "{GRPC}[telemetry]\ndebug_listen = \"0.0.0.0:8000\"\n\
             otlp_endpoint = \"http://otel-collector:4317\"\ntrace_sample_ratio = 0.25\n"
        );
        let service: Service = parse(&text).unwrap();
        assert_eq!(
            service.telemetry.debug_listen,
            Some("0.0.0.0:8000".parse().unwrap())
        );
        assert_eq!(
            service.telemetry.otlp_endpoint.as_deref(),
            Some("http://otel-collector:4317")
        );
        assert_eq!(service.telemetry.trace_sample_ratio.get(), 0.25);
        for (bad, named) in [
            (
                "otlp_endpoint = \"https://collector:4317\"",
                "otlp_endpoint",
            ),
            ("otlp_endpoint = \"collector:4317\"", "otlp_endpoint"),
            ("trace_sample_ratio = 1.5", "trace_sample_ratio"),
            ("trace_sample_ratio = -0.1", "trace_sample_ratio"),
            ("debug_port = 8000", "unknown field `debug_port`"),
        ] {
            let err = parse::<Service>(&format!("{GRPC}[telemetry]\n{bad}\n")).unwrap_err();
            assert!(err.contains(named), "{bad}: {err}");
        }
    }

    #[test]
    fn load_telemetry_reads_only_its_block() {
        let dir = std::env::temp_dir().join(format!("basalt-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("service.toml");
        // Fields of the service that this reader does not know are no error here.
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1\"\n[telemetry]\ndebug_listen = \"127.0.0.1:9\"\n",
        )
        .unwrap();
        let telemetry = load_telemetry(&file).unwrap();
        assert_eq!(telemetry.debug_listen, Some("127.0.0.1:9".parse().unwrap()));
        std::fs::write(&file, "listen = \"127.0.0.1:1\"\n").unwrap();
        assert_eq!(load_telemetry(&file).unwrap(), TelemetryConfig::default());
        std::fs::write(&file, "[telemetry]\ndebug_listen = \"nowhere\"\n").unwrap();
        let err = load_telemetry(&file).unwrap_err().to_string();
        assert!(
            err.contains("service.toml") && err.contains("[telemetry]"),
            "{err}"
        );
        assert!(load_telemetry(&dir.join("missing.toml")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
