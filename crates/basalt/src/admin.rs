//! `basalt admin`: operator commands, run by a person against the SA over mTLS
//! with the `admin` internal certificate.

use std::path::PathBuf;

use anyhow::Context;
use basalt_config::GrpcClientConfig;
use basalt_config::TlsConfig;
use basalt_core::Clock;
use basalt_core::EabKey;
use basalt_core::Storage;
use basalt_core::StorageReadOnly;
use basalt_core::SystemClock;
use basalt_grpc::GrpcChannel;
use basalt_grpc::SaClient;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use ring::rand::SystemRandom;
use serde::Deserialize;

/// `basalt admin --config FILE <command>`.
#[derive(Debug, clap::Args)]
pub(crate) struct AdminArgs {
    /// The admin TOML configuration (`[tls]` and `[sa]`).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AdminCommand {
    /// External account binding keys (RFC 8555 §7.3.4).
    #[command(subcommand)]
    Eab(EabCommand),
}

#[derive(Debug, clap::Subcommand)]
enum EabCommand {
    /// Create a key and print its ID and HMAC key for the subscriber.
    Create {
        /// Who the key is for.
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// List every key (without the secret).
    List,
    /// Revoke a key so no new account can use it.
    Revoke {
        /// The key ID.
        key_id: String,
    },
}

/// The admin config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdminConfig {
    /// The admin's internal mTLS certificate.
    tls: TlsConfig,
    /// The SA.
    sa: GrpcClientConfig,
}

pub(crate) async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let config: AdminConfig = basalt_config::load(&args.config)?;
    let sa = SaClient::new(GrpcChannel::new(&config.sa, &config.tls)?);
    match args.command {
        AdminCommand::Eab(EabCommand::Create { comment }) => {
            let key = new_eab_key(comment, &SystemClock)?;
            let (key_id, hmac) = (key.key_id.clone(), URL_SAFE_NO_PAD.encode(&key.hmac_key));
            sa.add_eab_key(key).await.context("storing the key")?;
            println!("key_id: {key_id}");
            println!("hmac_key: {hmac}");
        }
        AdminCommand::Eab(EabCommand::List) => {
            for key in sa.eab_keys().await? {
                let state = match (key.revoked, key.account_id) {
                    (true, _) => "revoked".to_owned(),
                    (false, Some(account)) => format!("bound to account {account}"),
                    (false, None) => "unused".to_owned(),
                };
                println!(
                    "{}\t{}\t{state}\t{}",
                    key.key_id, key.created_at, key.comment
                );
            }
        }
        AdminCommand::Eab(EabCommand::Revoke { key_id }) => {
            sa.revoke_eab_key(&key_id).await?;
            println!("revoked {key_id}");
        }
    }
    Ok(())
}

/// A fresh key: a 128-bit random ID and a 256-bit HMAC key.
fn new_eab_key(comment: String, clock: &dyn Clock) -> anyhow::Result<EabKey> {
    let rng = SystemRandom::new();
    let mut id = [0u8; 16];
    let mut hmac_key = vec![0u8; 32];
    rng.fill(&mut id)
        .and_then(|()| rng.fill(&mut hmac_key))
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    Ok(EabKey {
        key_id: URL_SAFE_NO_PAD.encode(id),
        hmac_key,
        comment,
        created_at: clock.now(),
        revoked: false,
        account_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eab_keys_are_random_and_long_enough() {
        let a = new_eab_key("a".into(), &SystemClock).unwrap();
        let b = new_eab_key("b".into(), &SystemClock).unwrap();
        assert_ne!(a.key_id, b.key_id);
        assert_ne!(a.hmac_key, b.hmac_key);
        assert_eq!(a.hmac_key.len(), 32);
        assert!(!a.revoked && a.account_id.is_none());
    }

    #[test]
    fn admin_config_refuses_unknown_fields() {
        let text = r#"
            [tls]
            cert = "a"
            key = "b"
            ca = "c"
            [sa]
            address = "x:1"
            server_name = "sa"
        "#;
        basalt_config::parse::<AdminConfig>(text).unwrap();
        let err = basalt_config::parse::<AdminConfig>(&format!("{text}extra = 1\n")).unwrap_err();
        assert!(err.contains("unknown field `extra`"), "{err}");
    }
}
