//! `basalt admin`: operator commands, run by a person over mTLS with the `admin`
//! internal certificate: against the SA (EAB keys, blocked keys, incidents) and the
//! RA (revocation, rate-limit overrides), which applies its policy and audits them.

use std::path::Path;
use std::path::PathBuf;

use anyhow::Context;
use anyhow::bail;
use basalt_config::ConfigDuration;
use basalt_config::GrpcClientConfig;
use basalt_config::TlsConfig;
use basalt_core::BlockedKey;
use basalt_core::BlockedKeySource;
use basalt_core::CertStatus;
use basalt_core::Clock;
use basalt_core::EabKey;
use basalt_core::ErrorKind;
use basalt_core::Incident;
use basalt_core::NewIncident;
use basalt_core::RateLimit;
use basalt_core::RateLimitOverride;
use basalt_core::RegistrationAuthority;
use basalt_core::Requester;
use basalt_core::RevocationLookup;
use basalt_core::RevocationReason;
use basalt_core::RevokeRequest;
use basalt_core::Serial;
use basalt_core::SpkiHash;
use basalt_core::Storage;
use basalt_core::StorageReadOnly;
use basalt_core::SystemClock;
use basalt_grpc::GrpcChannel;
use basalt_grpc::RaClient;
use basalt_grpc::SaClient;
use basalt_policy::spki_sha256;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use ring::rand::SystemRandom;
use serde::Deserialize;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// `basalt admin --config FILE <command>`.
#[derive(Debug, clap::Args)]
pub(crate) struct AdminArgs {
    /// The admin TOML configuration (`[tls]`, `[sa]` and `[ra]`).
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
    /// Revoke a certificate by its serial, through the RA; also a serial whose
    /// precertificate was stored but whose certificate never was (the CA stopped in
    /// between). keyCompromise also blocks the key, and may replace the reason of a
    /// serial revoked for another one.
    Revoke(RevokeArgs),
    /// Rate-limit overrides: a different limit for one key (an account, an IP
    /// address, a registered domain, …), set through the RA.
    #[command(subcommand)]
    RateLimit(RateLimitCommand),
    /// Incidents: serials to be renewed at once, whose ACME renewal information
    /// (RFC 9773) then suggests a window in the past.
    #[command(subcommand)]
    Incident(IncidentCommand),
}

/// `basalt admin revoke`: which serial, why, and who asks.
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
    /// Who revokes, for the RA's audit log (default: the USER environment
    /// variable, else "operator").
    #[arg(long, value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    by: Option<String>,
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
        /// The key ID. One that begins with `-` (base64url IDs of earlier
        /// versions could) is taken as the ID, not as an option.
        #[arg(allow_hyphen_values = true)]
        key_id: String,
    },
}

#[derive(Debug, clap::Subcommand)]
enum RateLimitCommand {
    /// Set the limit of one key, replacing any override it had.
    Add(RateLimitAddArgs),
    /// Remove the override of one key: the limit's default applies again.
    Remove {
        /// The limit's name, e.g. `new_orders_per_account`.
        #[arg(long, value_name = "NAME")]
        limit: String,
        /// The bucket key, as the limit spells it.
        #[arg(long, value_name = "KEY")]
        key: String,
    },
    /// List every override in force (from the RA's config and from operators):
    /// limit, key, count/period, burst and comment, tab-separated.
    List,
}

/// `basalt admin rate-limit add`: the key and its new limit.
#[derive(Debug, clap::Args)]
struct RateLimitAddArgs {
    /// The limit's name, e.g. `new_orders_per_account` or `new_accounts_per_ip`.
    #[arg(long, value_name = "NAME")]
    limit: String,
    /// The bucket key, as the limit spells it: an account ID, an IP address, an
    /// IPv6 /48, a registered domain, …
    #[arg(long, value_name = "KEY")]
    key: String,
    /// Requests allowed per period.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    count: u32,
    /// The period, as in config files: e.g. `90s`, `3h`, `7d`.
    #[arg(long, value_name = "DURATION", value_parser = parse_period)]
    period: ConfigDuration,
    /// The most requests allowed at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    burst: u32,
    /// Why, for the operators who come later.
    #[arg(long, default_value = "")]
    comment: String,
}

#[derive(Debug, clap::Subcommand)]
enum IncidentCommand {
    /// Declare an incident naming the serials to be renewed at once.
    Add(IncidentAddArgs),
    /// List every incident, newest first: ID, name, when, how many serials, URL,
    /// tab-separated.
    List,
}

/// `basalt admin incident add`: its name, its page and its serials.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("serials")
        .required(true)
        .args(["serial", "serials_file"])
))]
struct IncidentAddArgs {
    /// A short unique name, e.g. `2026-11-cps-mismatch`.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    name: String,
    /// A page that explains the incident (`http://` or `https://`), served to
    /// clients as the ARI `explanationURL`.
    #[arg(long, value_name = "URL", default_value = "", value_parser = parse_incident_url)]
    url: String,
    /// An affected serial in hex, as for `revoke` (repeatable).
    #[arg(long, value_name = "HEX")]
    serial: Vec<String>,
    /// A file of affected serials, one per line; blank lines and `#` comments are
    /// ignored.
    #[arg(long, value_name = "FILE")]
    serials_file: Option<PathBuf>,
}

/// The admin config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdminConfig {
    /// The admin's internal mTLS certificate.
    tls: TlsConfig,
    /// The SA.
    sa: GrpcClientConfig,
    /// The RA, for `revoke` and `rate-limit`. Optional so that an admin config
    /// written before these went through the RA still serves the other commands.
    #[serde(default)]
    ra: Option<GrpcClientConfig>,
}

impl AdminConfig {
    /// A client of the RA; an error naming the file if it has no `[ra]`.
    fn ra_client(&self, path: &Path) -> anyhow::Result<RaClient> {
        let Some(ra) = &self.ra else {
            bail!(
                "{} has no [ra] section (address and server_name of the registration \
                 authority): revoke and rate-limit go through the RA",
                path.display()
            );
        };
        Ok(RaClient::new(GrpcChannel::new(ra, &self.tls)?))
    }
}

/// The name an operator revokes under: `--by`, else the login name, else
/// "operator".
fn operator_name(by: Option<String>, user: Option<String>) -> String {
    by.or_else(|| user.filter(|user| !user.trim().is_empty()))
        .map_or_else(|| "operator".to_owned(), |name| name.trim().to_owned())
}

/// Parses `--period`: a config duration longer than zero.
fn parse_period(text: &str) -> Result<ConfigDuration, String> {
    let period: ConfigDuration = text.parse()?;
    if period.0.is_zero() {
        return Err("the period must be longer than 0".to_owned());
    }
    Ok(period)
}

/// Parses `--url`: empty, or an `http://` or `https://` URL without spaces.
fn parse_incident_url(text: &str) -> Result<String, String> {
    let url = text.trim();
    let has_host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if !url.is_empty() && (!has_host || url.contains(char::is_whitespace)) {
        return Err(format!("expected an http:// or https:// URL, not {text:?}"));
    }
    Ok(url.to_owned())
}

/// Runs one `basalt admin` command and prints its outcome.
pub(crate) async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let AdminArgs {
        config: path,
        command,
    } = args;
    let config: AdminConfig = basalt_config::load(&path)?;
    let sa = SaClient::new(GrpcChannel::new(&config.sa, &config.tls)?);
    match command {
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
            let operator = operator_name(args.by, std::env::var("USER").ok());
            let ra = config.ra_client(&path)?;
            println!(
                "{}",
                revoke(&ra, &sa, &serial, args.reason, &operator).await?
            );
        }
        AdminCommand::RateLimit(command) => {
            let ra = config.ra_client(&path)?;
            for line in rate_limit(&ra, command).await? {
                println!("{line}");
            }
        }
        AdminCommand::Incident(IncidentCommand::Add(args)) => {
            let incident = NewIncident {
                name: args.name.clone(),
                url: args.url.clone(),
                serials: incident_serials(&args)?,
            };
            let count = incident.serials.len();
            let declared = sa
                .add_incident(incident)
                .await
                .with_context(|| format!("declaring incident {:?}", args.name))?;
            println!("{}", incident_declared(&declared, count));
        }
        AdminCommand::Incident(IncidentCommand::List) => {
            for incident in sa.incidents().await.context("listing the incidents")? {
                println!("{}", incident_line(&incident));
            }
        }
    }
    Ok(())
}

/// A serial as operators copy it: hex with an optional `0x` prefix and optional
/// colons between the bytes, in either case, an odd number of digits allowed.
fn parse_serial(text: &str) -> anyhow::Result<Serial> {
    serial_from_text(text).map_err(|detail| anyhow::anyhow!("--serial {text:?}: {detail}"))
}

/// [`parse_serial`] without the flag's name in the error.
fn serial_from_text(text: &str) -> Result<Serial, String> {
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
    padded.parse().map_err(|err: basalt_core::Error| err.detail)
}

/// The serials of a serials file: one per line, blank lines and `#` comments
/// (whole lines or the rest of a line) ignored, each serial once, in file order.
fn serials_from_file_text(text: &str, file: &Path) -> anyhow::Result<Vec<Serial>> {
    let mut serials = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let serial = serial_from_text(line).map_err(|detail| {
            anyhow::anyhow!("{} line {}: {line:?}: {detail}", file.display(), index + 1)
        })?;
        if !serials.contains(&serial) {
            serials.push(serial);
        }
    }
    if serials.is_empty() {
        bail!("{} names no serial", file.display());
    }
    Ok(serials)
}

/// The serials `incident add` names: its `--serial`s, or its `--serials-file`.
fn incident_serials(args: &IncidentAddArgs) -> anyhow::Result<Vec<Serial>> {
    if let Some(path) = &args.serials_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return serials_from_file_text(&text, path);
    }
    let mut serials = Vec::new();
    for text in &args.serial {
        let serial = parse_serial(text)?;
        if !serials.contains(&serial) {
            serials.push(serial);
        }
    }
    if serials.is_empty() {
        bail!("name the affected serials with --serial or --serials-file");
    }
    Ok(serials)
}

/// What `incident add` says once the SA has the incident.
fn incident_declared(incident: &Incident, serials: usize) -> String {
    let url = if incident.url.is_empty() {
        String::new()
    } else {
        format!(", explained at {}", incident.url)
    };
    format!(
        "declared incident {} (id {}) naming {serials} serial{}{url}; their renewal \
         information now asks for renewal at once",
        incident.name,
        incident.id,
        if serials == 1 { "" } else { "s" }
    )
}

/// One line of `incident list`.
fn incident_line(incident: &Incident) -> String {
    format!(
        "{}\t{}\t{}\t{} serials\t{}",
        incident.id, incident.name, incident.created_at, incident.serials, incident.url
    )
}

/// One line of `rate-limit list`: limit, key, count/period, burst, comment.
fn override_line(limit: &RateLimitOverride) -> String {
    format!(
        "{}\t{}\t{}/{}\t{}\t{}",
        limit.limit,
        limit.key,
        limit.rate.count,
        ConfigDuration(limit.rate.period),
        limit.rate.burst,
        limit.comment
    )
}

/// Runs a `rate-limit` command against the RA; returns the lines to print.
async fn rate_limit(
    ra: &dyn RegistrationAuthority,
    command: RateLimitCommand,
) -> anyhow::Result<Vec<String>> {
    match command {
        RateLimitCommand::Add(args) => {
            let limit = RateLimitOverride {
                limit: args.limit,
                key: args.key,
                rate: RateLimit {
                    count: args.count,
                    period: args.period.0,
                    burst: args.burst,
                },
                comment: args.comment,
            };
            let said = format!(
                "{} for key {}: now {} per {}, burst {}",
                limit.limit, limit.key, limit.rate.count, args.period, limit.rate.burst
            );
            ra.add_rate_limit_override(limit)
                .await
                .context("setting the override")?;
            Ok(vec![said])
        }
        RateLimitCommand::Remove { limit, key } => {
            match ra.remove_rate_limit_override(&limit, &key).await {
                Ok(()) => Ok(vec![format!(
                    "{limit} for key {key}: override removed, the default applies"
                )]),
                Err(err) if err.is(ErrorKind::NotFound) => {
                    bail!("{limit} has no override for key {key}")
                }
                Err(err) => Err(anyhow::Error::new(err).context("removing the override")),
            }
        }
        RateLimitCommand::List => Ok(ra
            .rate_limit_overrides()
            .await
            .context("listing the overrides")?
            .iter()
            .map(override_line)
            .collect()),
    }
}

/// Revokes `serial` through the RA as `operator` and says what was revoked; an
/// unknown serial, or one already revoked (unless for another reason than
/// keyCompromise, which keyCompromise then replaces), is an error that says so.
async fn revoke(
    ra: &dyn RegistrationAuthority,
    sa: &dyn RevocationLookup,
    serial: &Serial,
    reason: RevocationReason,
    operator: &str,
) -> anyhow::Result<String> {
    let unknown = || anyhow::anyhow!("no certificate or precertificate has serial {serial}");
    let status = match sa.revocation_status(serial).await {
        Ok(status) => status,
        Err(err) if err.is(ErrorKind::NotFound) => return Err(unknown()),
        Err(err) => return Err(anyhow::Error::new(err).context("reading the serial's status")),
    };
    // The RA lets keyCompromise replace an earlier reason (the key has since been
    // found compromised: Boulder allows the same); any other repeat is refused.
    let previously = if status.status == CertStatus::Revoked {
        let why = status
            .revocation_reason
            .map_or_else(|| "no reason".to_owned(), |reason| reason.to_string());
        let when = status
            .revoked_at
            .map_or_else(String::new, |at| format!(" at {at}"));
        let upgrade = reason == RevocationReason::KeyCompromise
            && status.revocation_reason != Some(RevocationReason::KeyCompromise);
        if !upgrade {
            bail!("serial {serial} is already revoked ({why}{when})");
        }
        Some(format!("{why}{when}"))
    } else {
        None
    };
    let request = RevokeRequest {
        serial: serial.clone(),
        reason,
        requester: Requester::Operator(operator.to_owned()),
    };
    match ra.revoke_certificate(request).await {
        Ok(()) => {}
        Err(err) if err.is(ErrorKind::AlreadyRevoked) => {
            bail!("serial {serial} is already revoked")
        }
        Err(err) if err.is(ErrorKind::NotFound) => return Err(unknown()),
        Err(err) => return Err(anyhow::Error::new(err).context("revoking")),
    }
    // The RA blocked the key; its hash is shown so the operator can find it.
    let blocked = if reason == RevocationReason::KeyCompromise {
        match der_certificate_spki(&status.der) {
            Ok(spki) => format!("; its key is blocked (spki_sha256 {})", spki_sha256(&spki)),
            Err(err) => format!("; its key is blocked (its hash cannot be shown: {err:#})"),
        }
    } else {
        String::new()
    };
    if let Some(previously) = previously {
        return Ok(format!(
            "serial {serial} was revoked already ({previously}); its reason is now \
             {reason} ({}), by {operator}{blocked}",
            reason.code()
        ));
    }
    let what = if status.precertificate {
        "precertificate only; its certificate was never stored"
    } else {
        "certificate"
    };
    Ok(format!(
        "revoked serial {serial} ({what}), reason {reason} ({}), by {operator}{blocked}",
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
    basalt_policy::certificate_spki(der)
        .map_err(|err| anyhow::anyhow!("not a valid certificate: {}", err.detail))
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

/// A fresh key: a 128-bit random ID and a 256-bit HMAC key. The ID is lowercase
/// hex, so that it never begins with `-`: clients take it on their command line
/// (certbot `--eab-kid`, lego `--eab.kid`), where such an ID reads as an option.
fn new_eab_key(comment: String, clock: &dyn Clock) -> anyhow::Result<EabKey> {
    let rng = SystemRandom::new();
    let mut id = [0u8; 16];
    let mut hmac_key = vec![0u8; 32];
    rng.fill(&mut id)
        .and_then(|()| rng.fill(&mut hmac_key))
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    Ok(EabKey {
        key_id: id.iter().map(|byte| format!("{byte:02x}")).collect(),
        hmac_key,
        comment,
        created_at: clock.now(),
        revoked: false,
        account_id: None,
    })
}

#[cfg(test)]
mod tests;
