//! `basalt admin`: operator commands, run by a person against the SA over mTLS
//! with the `admin` internal certificate.

use std::path::Path;
use std::path::PathBuf;

use anyhow::Context;
use anyhow::bail;
use basalt_config::GrpcClientConfig;
use basalt_config::TlsConfig;
use basalt_core::BlockedKey;
use basalt_core::BlockedKeySource;
use basalt_core::CertStatus;
use basalt_core::Clock;
use basalt_core::EabKey;
use basalt_core::ErrorKind;
use basalt_core::RevocationLookup;
use basalt_core::RevocationReason;
use basalt_core::Serial;
use basalt_core::SpkiHash;
use basalt_core::Storage;
use basalt_core::StorageReadOnly;
use basalt_core::SystemClock;
use basalt_grpc::GrpcChannel;
use basalt_grpc::SaClient;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use ring::rand::SecureRandom;
use ring::rand::SystemRandom;
use serde::Deserialize;
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

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
    /// Put a public key on the blocked-keys list: no account and no certificate may
    /// use it again. Prints the SHA-256 of its SubjectPublicKeyInfo.
    BlockKey(BlockKeyArgs),
    /// Revoke a certificate by its serial; also a serial whose precertificate was
    /// stored but whose certificate never was (the CA stopped in between).
    Revoke(RevokeArgs),
}

/// `basalt admin revoke`: which serial, and why.
#[derive(Debug, clap::Args)]
struct RevokeArgs {
    /// The serial number in hex, as `openssl x509 -serial` prints it (a `0x`
    /// prefix, colons and either case are accepted).
    #[arg(long, value_name = "HEX")]
    serial: String,
    /// The RFC 5280 reason: unspecified, keyCompromise, affiliationChanged,
    /// superseded, cessationOfOperation or privilegeWithdrawn.
    #[arg(long, value_name = "NAME")]
    reason: RevocationReason,
}

/// `basalt admin block-key`: exactly one way of naming the key, and why.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("key")
        .required(true)
        .args(["cert", "csr", "public_key", "spki_sha256"])
))]
struct BlockKeyArgs {
    /// A PEM certificate whose key to block (the first certificate of a chain file).
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// A PEM certificate signing request whose key to block.
    #[arg(long, value_name = "FILE")]
    csr: Option<PathBuf>,
    /// A PEM public key (`-----BEGIN PUBLIC KEY-----`, a SubjectPublicKeyInfo), as
    /// `openssl pkey -pubout` writes it.
    #[arg(long, value_name = "FILE")]
    public_key: Option<PathBuf>,
    /// The key by the SHA-256 of its DER SubjectPublicKeyInfo, 64 hex digits.
    #[arg(long, value_name = "HEX")]
    spki_sha256: Option<String>,
    /// Why the key is blocked.
    #[arg(long, default_value = "")]
    comment: String,
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
        AdminCommand::BlockKey(args) => {
            let hash = blocked_key_hash(&args)?;
            sa.block_key(BlockedKey {
                spki_sha256: hash,
                added_at: SystemClock.now(),
                source: BlockedKeySource::Admin,
                comment: args.comment,
            })
            .await
            .context("blocking the key")?;
            println!("blocked spki_sha256: {hash}");
        }
        AdminCommand::Revoke(args) => {
            let serial = parse_serial(&args.serial)?;
            println!("{}", revoke(&sa, &serial, args.reason, &SystemClock).await?);
        }
    }
    Ok(())
}

/// A serial as operators copy it: hex with an optional `0x` prefix and optional
/// colons between the bytes, in either case, an odd number of digits allowed.
fn parse_serial(text: &str) -> anyhow::Result<Serial> {
    let trimmed = text.trim();
    let digits = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
        .unwrap_or(trimmed)
        .replace(':', "");
    let padded = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits
    };
    padded
        .parse()
        .map_err(|err: basalt_core::Error| anyhow::anyhow!("--serial {text:?}: {}", err.detail))
}

/// Revokes `serial` through the SA and says what was revoked; an unknown or already
/// revoked serial is an error that says so.
async fn revoke<S: Storage + RevocationLookup>(
    sa: &S,
    serial: &Serial,
    reason: RevocationReason,
    clock: &dyn Clock,
) -> anyhow::Result<String> {
    let unknown = || anyhow::anyhow!("no certificate or precertificate has serial {serial}");
    let status = match sa.revocation_status(serial).await {
        Ok(status) => status,
        Err(err) if err.is(ErrorKind::NotFound) => return Err(unknown()),
        Err(err) => return Err(anyhow::Error::new(err).context("reading the serial's status")),
    };
    if status.status == CertStatus::Revoked {
        let why = status
            .revocation_reason
            .map_or_else(|| "no reason".to_owned(), |reason| reason.to_string());
        let when = status
            .revoked_at
            .map_or_else(String::new, |at| format!(" at {at}"));
        bail!("serial {serial} is already revoked ({why}{when})");
    }
    // As the RA does for a revocation proved with the certificate's own key (and
    // Boulder's admin tool for keyCompromise): block the key first, so no new
    // account or certificate can use it even if the revocation then fails.
    let blocked = if reason == RevocationReason::KeyCompromise {
        let spki = der_certificate_spki(&status.der)
            .context("reading the key of the compromised certificate")?;
        let hash = spki_sha256(&spki);
        sa.block_key(BlockedKey {
            spki_sha256: hash,
            added_at: clock.now(),
            source: BlockedKeySource::KeyCompromise,
            comment: format!("serial {serial} revoked for keyCompromise by an operator"),
        })
        .await
        .context("blocking the compromised key")?;
        format!("; its key is blocked (spki_sha256 {hash})")
    } else {
        String::new()
    };
    match sa.revoke_certificate(serial, reason, clock.now()).await {
        Ok(()) => {}
        Err(err) if err.is(ErrorKind::AlreadyRevoked) => {
            bail!("serial {serial} is already revoked")
        }
        Err(err) if err.is(ErrorKind::NotFound) => return Err(unknown()),
        Err(err) => return Err(anyhow::Error::new(err).context("revoking")),
    }
    let what = if status.precertificate {
        "precertificate only; its certificate was never stored"
    } else {
        "certificate"
    };
    Ok(format!(
        "revoked serial {serial} ({what}), reason {reason} ({}){blocked}",
        reason.code()
    ))
}

/// The key `block-key` names, by the SHA-256 of its DER SubjectPublicKeyInfo.
fn blocked_key_hash(args: &BlockKeyArgs) -> anyhow::Result<SpkiHash> {
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let spki = if let Some(path) = &args.cert {
        certificate_spki(&read(path)?).with_context(|| format!("--cert {}", path.display()))?
    } else if let Some(path) = &args.csr {
        csr_spki(&read(path)?).with_context(|| format!("--csr {}", path.display()))?
    } else if let Some(path) = &args.public_key {
        public_key_spki(&read(path)?).with_context(|| format!("--public-key {}", path.display()))?
    } else if let Some(hex) = &args.spki_sha256 {
        return hex
            .trim()
            .parse()
            .map_err(|err: basalt_core::Error| anyhow::anyhow!("--spki-sha256: {err}"));
    } else {
        bail!("name the key with --cert, --csr, --public-key or --spki-sha256");
    };
    Ok(spki_sha256(&spki))
}

/// The SHA-256 of a DER SubjectPublicKeyInfo, as the RA computes it.
fn spki_sha256(spki_der: &[u8]) -> SpkiHash {
    let hash = digest::digest(&digest::SHA256, spki_der);
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(hash.as_ref());
    SpkiHash::new(bytes)
}

/// The DER of the first PEM block labelled one of `labels`.
fn pem_block(pem: &[u8], labels: &[&str]) -> anyhow::Result<Vec<u8>> {
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|err| anyhow::anyhow!("not valid PEM: {err}"))?;
        if labels.contains(&block.label.as_str()) {
            return Ok(block.contents);
        }
    }
    bail!("no PEM block labelled {}", labels.join(" or "))
}

/// The SubjectPublicKeyInfo of a PEM certificate, as the certificate carries it.
fn certificate_spki(pem: &[u8]) -> anyhow::Result<Vec<u8>> {
    der_certificate_spki(&pem_block(pem, &["CERTIFICATE"])?)
}

/// The SubjectPublicKeyInfo of a DER certificate (or precertificate).
fn der_certificate_spki(der: &[u8]) -> anyhow::Result<Vec<u8>> {
    let (rest, certificate) = X509Certificate::from_der(der)
        .map_err(|err| anyhow::anyhow!("not a valid certificate: {err}"))?;
    if !rest.is_empty() {
        bail!("trailing data after the certificate");
    }
    Ok(certificate.tbs_certificate.subject_pki.raw.to_vec())
}

/// The SubjectPublicKeyInfo of a PEM certificate signing request.
fn csr_spki(pem: &[u8]) -> anyhow::Result<Vec<u8>> {
    let der = pem_block(pem, &["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"])?;
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|err| anyhow::anyhow!("not a valid certificate request: {err}"))?;
    if !rest.is_empty() {
        bail!("trailing data after the certificate request");
    }
    Ok(csr.certification_request_info.subject_pki.raw.to_vec())
}

/// A PEM `PUBLIC KEY` (a SubjectPublicKeyInfo), checked to be one.
fn public_key_spki(pem: &[u8]) -> anyhow::Result<Vec<u8>> {
    let der = pem_block(pem, &["PUBLIC KEY"])?;
    let (rest, _) = SubjectPublicKeyInfo::from_der(&der)
        .map_err(|err| anyhow::anyhow!("not a valid SubjectPublicKeyInfo: {err}"))?;
    if !rest.is_empty() {
        bail!("trailing data after the public key");
    }
    Ok(der)
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

    /// Parses `basalt admin --config c.toml block-key ARGS…`.
    fn block_key_args(args: &[&str]) -> Result<BlockKeyArgs, clap::Error> {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            admin: AdminArgs,
        }
        let argv = ["basalt", "--config", "c.toml", "block-key"]
            .iter()
            .chain(args);
        let cli = <Cli as clap::Parser>::try_parse_from(argv)?;
        match cli.admin.command {
            AdminCommand::BlockKey(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    /// What `block-key FLAG FILE` makes of a file holding `contents`; the file is
    /// removed afterwards.
    fn hash_from_file(flag: &str, name: &str, contents: &str) -> anyhow::Result<SpkiHash> {
        let path = std::env::temp_dir().join(format!(
            "basalt-admin-test-{}-{:x}-{name}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::write(&path, contents).unwrap();
        let args = block_key_args(&[flag, path.to_str().unwrap()]).unwrap();
        let hash = blocked_key_hash(&args);
        std::fs::remove_file(&path).unwrap();
        hash
    }

    fn rand_suffix() -> u64 {
        let mut bytes = [0u8; 8];
        SystemRandom::new().fill(&mut bytes).unwrap();
        u64::from_le_bytes(bytes)
    }

    #[test]
    fn block_key_takes_exactly_one_key() {
        let args = block_key_args(&["--spki-sha256", &"ab".repeat(32)]).unwrap();
        assert_eq!(args.comment, "");
        let args = block_key_args(&["--cert", "c.pem", "--comment", "leaked"]).unwrap();
        assert_eq!(args.cert, Some(PathBuf::from("c.pem")));
        assert_eq!(args.comment, "leaked");
        block_key_args(&["--csr", "r.pem"]).unwrap();
        block_key_args(&["--public-key", "k.pem"]).unwrap();

        let none = block_key_args(&["--comment", "why"]).unwrap_err();
        assert_eq!(none.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let two = block_key_args(&["--cert", "c.pem", "--csr", "r.pem"]).unwrap_err();
        assert_eq!(two.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    /// The certificate, its CSR and its public key all name the same key, with the
    /// SHA-256 of the very SubjectPublicKeyInfo they carry.
    #[test]
    fn every_input_names_the_same_key() {
        use rcgen::PublicKeyData;

        let key = rcgen::KeyPair::generate().unwrap();
        let spki = key.subject_public_key_info();
        let want = spki_sha256(&spki);
        let params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap().pem();
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        let public_key = key.public_key_pem();
        // A chain file: the first certificate is the one named.
        let other = rcgen::KeyPair::generate().unwrap();
        let chain = format!("{cert}{}", params.self_signed(&other).unwrap().pem());

        let hash_of =
            |flag: &str, file: &str, contents: &str| hash_from_file(flag, file, contents).unwrap();
        assert_eq!(hash_of("--cert", "cert.pem", &cert), want);
        assert_eq!(hash_of("--cert", "chain.pem", &chain), want);
        assert_eq!(hash_of("--csr", "csr.pem", &csr), want);
        assert_eq!(hash_of("--public-key", "key.pem", &public_key), want);
        let hex = want.to_string().to_uppercase();
        let args = block_key_args(&["--spki-sha256", &hex]).unwrap();
        assert_eq!(blocked_key_hash(&args).unwrap(), want);
    }

    #[test]
    fn wrong_inputs_say_what_is_wrong() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let error = |flag: &str, file: &str, contents: &str| {
            format!("{:#}", hash_from_file(flag, file, contents).unwrap_err())
        };
        let err = error("--cert", "csr-as-cert.pem", &csr);
        assert!(err.contains("no PEM block labelled CERTIFICATE"), "{err}");
        assert!(err.starts_with("--cert "), "{err}");
        let err = error("--csr", "key-as-csr.pem", &key.public_key_pem());
        assert!(err.contains("CERTIFICATE REQUEST"), "{err}");
        let err = error("--public-key", "csr-as-key.pem", &csr);
        assert!(err.contains("PUBLIC KEY"), "{err}");
        let err = error("--cert", "garbage.pem", garbage);
        assert!(err.contains("not a valid certificate"), "{err}");
        let err = error("--cert", "empty.pem", "");
        assert!(err.contains("no PEM block"), "{err}");

        let args = block_key_args(&["--cert", "/nonexistent/basalt/cert.pem"]).unwrap();
        let err = format!("{:#}", blocked_key_hash(&args).unwrap_err());
        assert!(
            err.contains("cannot read /nonexistent/basalt/cert.pem"),
            "{err}"
        );
        for bad in ["abc", &"zz".repeat(32), &"ab".repeat(33)] {
            let args = block_key_args(&["--spki-sha256", bad]).unwrap();
            let err = blocked_key_hash(&args).unwrap_err().to_string();
            assert!(err.starts_with("--spki-sha256: "), "{err}");
        }
    }

    /// Parses `basalt admin --config c.toml ARGS…`.
    fn admin_command(args: &[&str]) -> Result<AdminCommand, clap::Error> {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            admin: AdminArgs,
        }
        let argv = ["basalt", "--config", "c.toml"].iter().chain(args);
        Ok(<Cli as clap::Parser>::try_parse_from(argv)?.admin.command)
    }

    #[test]
    fn revoke_takes_a_serial_and_a_named_reason() {
        let command =
            admin_command(&["revoke", "--serial", "0A0b", "--reason", "keyCompromise"]).unwrap();
        let AdminCommand::Revoke(args) = command else {
            panic!("parsed as {command:?}");
        };
        assert_eq!(args.reason, RevocationReason::KeyCompromise);
        assert_eq!(parse_serial(&args.serial).unwrap().to_string(), "0a0b");

        for reason in RevocationReason::ALL {
            let command =
                admin_command(&["revoke", "--serial", "01", "--reason", reason.as_str()]).unwrap();
            assert!(matches!(command, AdminCommand::Revoke(args) if args.reason == reason));
        }
        let err = admin_command(&["revoke", "--serial", "01", "--reason", "cACompromise"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("privilegeWithdrawn"), "{err}");
        let missing = admin_command(&["revoke", "--serial", "01"]).unwrap_err();
        assert_eq!(
            missing.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn serials_are_read_as_operators_copy_them() {
        for (text, want) in [
            ("7f01ab", "7f01ab"),
            ("0x7F01AB", "7f01ab"),
            ("7f:01:ab", "7f01ab"),
            (" 0X7f01ab\n", "7f01ab"),
            ("f01ab", "0f01ab"),
            ("00ff", "ff"),
        ] {
            assert_eq!(parse_serial(text).unwrap().to_string(), want, "{text:?}");
        }
        for bad in ["", "0x", "zz", "12 34", &"ab".repeat(21)] {
            let err = parse_serial(bad).unwrap_err().to_string();
            assert!(err.starts_with("--serial "), "{bad:?}: {err}");
        }
    }

    /// A precertificate alone is revoked once and said to be one; a second
    /// revocation and an unknown serial are errors that say so.
    #[tokio::test]
    async fn revoke_says_what_it_revoked_and_refuses_repeats() {
        use basalt_core::AccountId;
        use basalt_core::CertificateStore;
        use basalt_core::FixedClock;

        let at = time::OffsetDateTime::from_unix_timestamp(1_893_456_000).unwrap();
        let clock = FixedClock::new(at);
        let sa =
            basalt_sa::SqlStorage::connect("sqlite::memory:", std::sync::Arc::new(clock.clone()))
                .await
                .unwrap();
        let serial = parse_serial("0x0bad").unwrap();
        sa.add_serial(&serial, AccountId(1), at, at + time::Duration::days(90))
            .await
            .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let precert = rcgen::CertificateParams::new(vec!["a.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        sa.add_precertificate(&serial, precert.der(), AccountId(1), at)
            .await
            .unwrap();
        let hash = spki_sha256(&rcgen::PublicKeyData::subject_public_key_info(&key));
        assert!(!sa.key_blocked(&hash).await.unwrap());

        let done = revoke(&sa, &serial, RevocationReason::KeyCompromise, &clock)
            .await
            .unwrap();
        assert_eq!(
            done,
            format!(
                "revoked serial 0bad (precertificate only; its certificate was never stored), \
                 reason keyCompromise (1); its key is blocked (spki_sha256 {hash})"
            )
        );
        // keyCompromise blocks the certificate's key, as the RA does.
        assert!(sa.key_blocked(&hash).await.unwrap());
        let again = revoke(&sa, &serial, RevocationReason::Superseded, &clock)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            again.starts_with("serial 0bad is already revoked (keyCompromise at "),
            "{again}"
        );
        let unknown = parse_serial("0bae").unwrap();
        let err = revoke(&sa, &unknown, RevocationReason::Unspecified, &clock)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(err, "no certificate or precertificate has serial 0bae");
        sa.close().await;
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
