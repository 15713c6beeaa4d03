//! `basalt admin`: operator commands, run by a person over mTLS with the `admin`
//! internal certificate: against the SA (EAB keys, blocked keys, incidents, and
//! reads: certificate search, orders) and the RA (revocation, rate-limit overrides),
//! which applies its policy and audits them.

use std::path::Path;
use std::path::PathBuf;

use anyhow::Context;
use anyhow::bail;
use basalt_config::ConfigDuration;
use basalt_config::GrpcClientConfig;
use basalt_config::TlsConfig;
use basalt_core::AccountId;
use basalt_core::Authz;
use basalt_core::BlockedKey;
use basalt_core::BlockedKeySource;
use basalt_core::CertStatus;
use basalt_core::CertificateQuery;
use basalt_core::CertificateSearch;
use basalt_core::CertificateSelector;
use basalt_core::CertificateSummary;
use basalt_core::Clock;
use basalt_core::EabKey;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::Incident;
use basalt_core::NewIncident;
use basalt_core::Order;
use basalt_core::OrderId;
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
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
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
    /// Revoke every unexpired, unrevoked certificate of a key, for keyCompromise,
    /// through the RA, and block the key first (so no new certificate can use it
    /// meanwhile). Prints each serial revoked; fails, after trying every one, if
    /// any revocation failed. Finds certificates as `certs --key-hash` does: not
    /// those stored before the SA indexed keys.
    RevokeKey(RevokeKeyArgs),
    /// Find certificates by name, account or key, newest first: one line each of
    /// serial, account, notAfter, status (`good`, or `revoked:` and the reason) and
    /// names (comma-separated), tab-separated. A search by name or by key does not
    /// find certificates stored before the SA indexed names and keys (schema
    /// certificate_search; existing rows are not backfilled): search by account.
    Certs(CertsArgs),
    /// Orders.
    #[command(subcommand)]
    Order(OrderCommand),
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

/// A key as `certs` and `revoke-key` take it: a PEM file that carries it, or its
/// hash.
#[derive(Debug, clap::Args)]
struct KeyArgs {
    /// A PEM file with the key: a certificate (the first of a chain), a
    /// certificate request, or a public key (`openssl pkey -in KEY -pubout`).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// The key by the SHA-256 of its DER SubjectPublicKeyInfo, 64 hex digits (as
    /// `block-key` prints it).
    #[arg(long, value_name = "HEX")]
    key_hash: Option<SpkiHash>,
}

impl KeyArgs {
    /// The key's hash, if either flag names it.
    fn hash(&self) -> anyhow::Result<Option<SpkiHash>> {
        if let Some(path) = &self.key_file {
            let pem =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let spki =
                key_file_spki(&pem).with_context(|| format!("--key-file {}", path.display()))?;
            return Ok(Some(spki_sha256(&spki)));
        }
        Ok(self.key_hash)
    }
}

/// `basalt admin certs`: exactly one selector, and how many.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("selector")
        .required(true)
        .args(["name", "account", "key_file", "key_hash"])
))]
struct CertsArgs {
    /// A DNS name or IP address the certificates are for (compared in lowercase,
    /// without a trailing dot; a wildcard as `*.example.com`).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// With --name: the certificates for names under it too (`www.example.com`,
    /// `*.example.com` for `example.com`).
    #[arg(long, requires = "name", conflicts_with_all = ["account", "key_file", "key_hash"])]
    subdomains: bool,
    /// The account the certificates were issued to.
    #[arg(long, value_name = "ID")]
    account: Option<AccountId>,
    #[command(flatten)]
    key: KeyArgs,
    /// Only certificates neither revoked nor expired.
    #[arg(long)]
    active: bool,
    /// Show at most this many, newest first.
    #[arg(
        long,
        value_name = "N",
        default_value_t = CertificateQuery::DEFAULT_LIMIT,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(CertificateQuery::MAX_LIMIT)),
    )]
    limit: u32,
}

/// `basalt admin revoke-key`: the key, and who revokes.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("key")
        .required(true)
        .args(["key_file", "key_hash"])
))]
struct RevokeKeyArgs {
    #[command(flatten)]
    key: KeyArgs,
    /// Who revokes, for the RA's audit log (default: the USER environment
    /// variable, else "operator").
    #[arg(long, value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    by: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum OrderCommand {
    /// Show an order, one `field<TAB>value…` line each: its account, status,
    /// times, profile, identifiers, certificate serial and error, then each
    /// authorization (`authz`) with its challenges (`challenge`).
    Show {
        /// The order ID, the last part of the order's URL.
        order_id: OrderId,
    },
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
        AdminCommand::RevokeKey(args) => {
            let Some(hash) = args.key.hash()? else {
                bail!("name the key with --key-file or --key-hash");
            };
            let operator = operator_name(args.by, std::env::var("USER").ok());
            let ra = config.ra_client(&path)?;
            // Blocked first: no new certificate can use the key while its
            // certificates are revoked. The RA blocks it too with each revocation.
            sa.block_key(BlockedKey {
                spki_sha256: hash,
                added_at: SystemClock.now(),
                source: BlockedKeySource::Admin,
                comment: format!("compromised: revoke-key by {operator}"),
            })
            .await
            .context("blocking the key")?;
            println!("blocked spki_sha256: {hash}");
            let report = revoke_key(&ra, &sa, hash, &operator, |line| println!("{line}")).await?;
            if report.failed > 0 {
                bail!(
                    "{} of {} revocations failed (each is shown above); run revoke-key again \
                     to retry them",
                    report.failed,
                    report.failed + report.revoked
                );
            }
        }
        AdminCommand::Certs(args) => {
            let query = certs_query(&args)?;
            let found = sa
                .search_certificates(&query)
                .await
                .context("searching certificates")?;
            for summary in &found {
                println!("{}", certificate_line(summary));
            }
            if found.is_empty() {
                eprintln!("no certificate found");
            } else if found.len() >= usize::try_from(query.limit).unwrap_or(usize::MAX) {
                eprintln!(
                    "showing the newest {}; there may be more (--limit, at most {})",
                    found.len(),
                    CertificateQuery::MAX_LIMIT
                );
            }
        }
        AdminCommand::Order(OrderCommand::Show { order_id }) => {
            let order = match sa.order(order_id).await {
                Ok(order) => order,
                Err(err) if err.is(ErrorKind::NotFound) => bail!("no order has ID {order_id}"),
                Err(err) => return Err(anyhow::Error::new(err).context("reading the order")),
            };
            let mut authzs = Vec::with_capacity(order.authz_ids.len());
            for id in &order.authz_ids {
                authzs.push(
                    sa.authz(*id)
                        .await
                        .with_context(|| format!("reading authorization {id}"))?,
                );
            }
            for line in order_lines(&order, &authzs) {
                println!("{line}");
            }
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

/// A time as RFC 3339 (`2030-01-01T00:00:00Z`).
fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// The search `certs` asks the SA for.
fn certs_query(args: &CertsArgs) -> anyhow::Result<CertificateQuery> {
    let selector = if let Some(name) = &args.name {
        let name = name.trim();
        let identifier = if name.parse::<std::net::IpAddr>().is_ok() {
            if args.subdomains {
                bail!("--subdomains: an IP address ({name}) has no subdomains");
            }
            Identifier::ip(name)
        } else {
            Identifier::dns(name)
        };
        CertificateSelector::Name {
            identifier,
            subdomains: args.subdomains,
        }
    } else if let Some(account) = args.account {
        CertificateSelector::Account(account)
    } else if let Some(hash) = args.key.hash()? {
        CertificateSelector::Key(hash)
    } else {
        bail!("name the certificates with --name, --account, --key-file or --key-hash");
    };
    Ok(CertificateQuery {
        selector,
        active_only: args.active,
        limit: args.limit,
    })
}

/// One line of `certs`: serial, account, notAfter, status, names.
fn certificate_line(summary: &CertificateSummary) -> String {
    let status = match (summary.status, summary.revocation_reason) {
        (CertStatus::Good, _) => "good".to_owned(),
        (CertStatus::Revoked, Some(reason)) => format!("revoked:{reason}"),
        (CertStatus::Revoked, None) => "revoked".to_owned(),
    };
    let names: Vec<&str> = summary
        .names
        .iter()
        .map(|name| name.value.as_str())
        .collect();
    format!(
        "{}\t{}\t{}\t{status}\t{}",
        summary.serial,
        summary.account_id,
        rfc3339(summary.not_after),
        names.join(",")
    )
}

/// What `order show` prints of an order and its authorizations (in the order's
/// order).
fn order_lines(order: &Order, authzs: &[Authz]) -> Vec<String> {
    let mut lines = vec![
        format!("order\t{}", order.id),
        format!("account\t{}", order.account_id),
        format!("status\t{}", order.status),
        format!("created\t{}", rfc3339(order.created_at)),
        format!("expires\t{}", rfc3339(order.expires)),
        format!("profile\t{}", order.profile),
    ];
    let identifiers: Vec<&str> = order
        .identifiers
        .iter()
        .map(|id| id.value.as_str())
        .collect();
    lines.push(format!("identifiers\t{}", identifiers.join(",")));
    for (field, at) in [
        ("not_before", order.not_before),
        ("not_after", order.not_after),
    ] {
        if let Some(at) = at {
            lines.push(format!("{field}\t{}", rfc3339(at)));
        }
    }
    if let Some(replaces) = &order.replaces {
        lines.push(format!("replaces\t{replaces}"));
    }
    if let Some(serial) = &order.certificate_serial {
        lines.push(format!("certificate\t{serial}"));
    }
    if let Some(error) = &order.error {
        lines.push(format!("error\t{}: {}", error.kind, error.detail));
    }
    for authz in authzs {
        let name = if authz.wildcard {
            format!("*.{}", authz.identifier.value)
        } else {
            authz.identifier.value.clone()
        };
        lines.push(format!(
            "authz\t{}\t{name}\t{}\texpires {}",
            authz.id,
            authz.status,
            rfc3339(authz.expires)
        ));
        for challenge in &authz.challenges {
            let mut line = format!(
                "challenge\t{}\t{}\t{}",
                authz.id, challenge.kind, challenge.status
            );
            if let Some(at) = challenge.validated {
                line.push_str(&format!("\tvalidated {}", rfc3339(at)));
            }
            if let Some(error) = &challenge.error {
                line.push_str(&format!("\terror {}: {}", error.kind, error.detail));
            }
            lines.push(line);
        }
    }
    lines
}

/// What `revoke-key` did.
#[derive(Debug, Default, PartialEq, Eq)]
struct KeyRevocation {
    /// Certificates revoked.
    revoked: usize,
    /// Revocations the RA refused or that could not be made.
    failed: usize,
}

/// Revokes, through the RA as `operator`, every unexpired, unrevoked certificate
/// the SA finds for the key `hash`, for keyCompromise, saying each outcome (a line
/// per serial, then a summary) through `say`.
///
/// The SA returns at most [`CertificateQuery::MAX_LIMIT`] certificates a search, so
/// it searches again until a search finds no certificate it has not tried: those
/// revoked drop out of the next search, those that failed are tried once (should a
/// whole search's worth of them fail, the ones beyond are not reached; the command
/// fails then, and running it again tries them).
async fn revoke_key(
    ra: &dyn RegistrationAuthority,
    sa: &dyn CertificateSearch,
    hash: SpkiHash,
    operator: &str,
    mut say: impl FnMut(String),
) -> anyhow::Result<KeyRevocation> {
    let query = CertificateQuery {
        selector: CertificateSelector::Key(hash),
        active_only: true,
        limit: CertificateQuery::MAX_LIMIT,
    };
    let mut tried = std::collections::BTreeSet::new();
    let mut report = KeyRevocation::default();
    loop {
        let found = sa
            .search_certificates(&query)
            .await
            .context("searching the key's certificates")?;
        let new: Vec<CertificateSummary> = found
            .into_iter()
            .filter(|summary| !tried.contains(&summary.serial))
            .collect();
        if new.is_empty() {
            break;
        }
        for summary in new {
            tried.insert(summary.serial.clone());
            let request = RevokeRequest {
                serial: summary.serial.clone(),
                reason: RevocationReason::KeyCompromise,
                requester: Requester::Operator(operator.to_owned()),
            };
            let names: Vec<&str> = summary
                .names
                .iter()
                .map(|name| name.value.as_str())
                .collect();
            match ra.revoke_certificate(request).await {
                Ok(()) => {
                    report.revoked += 1;
                    say(format!(
                        "revoked serial {} (account {}, {}), reason keyCompromise (1), by \
                         {operator}",
                        summary.serial,
                        summary.account_id,
                        names.join(",")
                    ));
                }
                Err(err) => {
                    report.failed += 1;
                    say(format!(
                        "FAILED serial {} (account {}, {}): {}: {}",
                        summary.serial,
                        summary.account_id,
                        names.join(","),
                        err.kind,
                        err.detail
                    ));
                }
            }
        }
    }
    say(if tried.is_empty() {
        format!("no unexpired, unrevoked certificate has key {hash}")
    } else {
        format!(
            "key {hash}: {} certificate{} revoked, {} failed",
            report.revoked,
            if report.revoked == 1 { "" } else { "s" },
            report.failed
        )
    });
    Ok(report)
}

/// The SubjectPublicKeyInfo in a PEM file given as `--key-file`: that of its first
/// certificate, certificate request or public key. A private key is refused, with
/// how to get its public key.
fn key_file_spki(pem: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut private_key = false;
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|err| anyhow::anyhow!("not valid PEM: {err}"))?;
        match block.label.as_str() {
            "CERTIFICATE" => return der_certificate_spki(&block.contents),
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => {
                return der_csr_spki(&block.contents);
            }
            "PUBLIC KEY" => return der_public_key_spki(block.contents),
            label if label.ends_with("PRIVATE KEY") => private_key = true,
            _ => {}
        }
    }
    if private_key {
        bail!(
            "it holds a private key only; give its public key instead \
             (`openssl pkey -in KEY -pubout`)"
        );
    }
    bail!("no certificate, certificate request or public key in it")
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
    der_csr_spki(&pem_block(
        pem,
        &["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"],
    )?)
}

/// The SubjectPublicKeyInfo of a DER certificate signing request.
fn der_csr_spki(der: &[u8]) -> anyhow::Result<Vec<u8>> {
    let (rest, csr) = X509CertificationRequest::from_der(der)
        .map_err(|err| anyhow::anyhow!("not a valid certificate request: {err}"))?;
    if !rest.is_empty() {
        bail!("trailing data after the certificate request");
    }
    Ok(csr.certification_request_info.subject_pki.raw.to_vec())
}

/// A PEM `PUBLIC KEY` (a SubjectPublicKeyInfo), checked to be one.
fn public_key_spki(pem: &[u8]) -> anyhow::Result<Vec<u8>> {
    der_public_key_spki(pem_block(pem, &["PUBLIC KEY"])?)
}

/// A DER SubjectPublicKeyInfo, checked to be one.
fn der_public_key_spki(der: Vec<u8>) -> anyhow::Result<Vec<u8>> {
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
