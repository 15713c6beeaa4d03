//! Anti-replay nonces (RFC 8555 §6.5).
//!
//! [`NonceService`] is the store: random 128-bit nonces, each redeemable once
//! before it expires. A lone WFE keeps one in its own process; several WFEs behind
//! one address share one through `basalt nonce`, which serves it over gRPC, so a
//! nonce handed out by one WFE is redeemed by whichever WFE the next request
//! reaches. (Boulder instead runs several nonce services and routes redemptions by
//! a prefix in the nonce; one store is simpler and enough until the nonce service
//! itself needs to scale out.)
#![warn(missing_docs)]

mod store;

use async_trait::async_trait;
use basalt_config::GrpcServerConfig;
use basalt_config::TlsConfig;
use basalt_core::Error;
use basalt_core::Nonces;
use serde::Deserialize;

pub use crate::store::{DEFAULT_NONCE_CAPACITY, DEFAULT_NONCE_LIFETIME, NonceService};

#[async_trait]
impl Nonces for NonceService {
    async fn new_nonce(&self) -> Result<String, Error> {
        self.issue()
    }

    async fn redeem(&self, nonce: &str) -> Result<bool, Error> {
        Ok(Self::redeem(self, nonce))
    }
}

/// The config of `basalt nonce`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NonceConfig {
    /// Where it listens and who may call it (the WFEs).
    pub grpc: GrpcServerConfig,
    /// Its mTLS certificate.
    pub tls: TlsConfig,
    /// `[telemetry]`: metrics and health checks on a debug listener, and trace
    /// export (all off unless set).
    #[serde(default)]
    pub telemetry: basalt_config::TelemetryConfig,
    /// How many nonces may be outstanding; the oldest are forgotten first.
    #[serde(default = "NonceConfig::default_capacity")]
    pub capacity: usize,
}

impl NonceConfig {
    fn default_capacity() -> usize {
        DEFAULT_NONCE_CAPACITY
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use basalt_core::SystemClock;

    use super::*;

    #[tokio::test]
    async fn the_trait_redeems_once() {
        let nonces: Arc<dyn Nonces> = Arc::new(NonceService::with_defaults(Arc::new(SystemClock)));
        let nonce = nonces.new_nonce().await.unwrap();
        assert!(nonces.redeem(&nonce).await.unwrap());
        assert!(!nonces.redeem(&nonce).await.unwrap());
        assert!(!nonces.redeem("never-issued").await.unwrap());
    }

    #[test]
    fn config_parses_and_refuses_unknown_fields() {
        let text = r#"
            capacity = 10
            [grpc]
            listen = "127.0.0.1:9094"
            [grpc.allowed_clients]
            "basalt.nonce.Nonce" = ["wfe"]
            [tls]
            cert = "a"
            key = "b"
            ca = "c"
        "#;
        let config: NonceConfig = basalt_config::parse(text).unwrap();
        assert_eq!(config.capacity, 10);
        let err =
            basalt_config::parse::<NonceConfig>(&text.replace("capacity", "capacty")).unwrap_err();
        assert!(err.contains("unknown field `capacty`"), "{err}");
    }
}
