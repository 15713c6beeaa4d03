//! `basalt dev`: a whole CA on one machine, each service its own OS process.
//!
//! The first run creates a data directory with an internal PKI for the gRPC links,
//! an issuing hierarchy (ECDSA and RSA roots and intermediates, and a cross-signed
//! ECDSA intermediate) made by `basalt ceremony` runs with its keys in files or in a
//! SoftHSM2 token (`--ca-keys`), an HTTPS certificate for the ACME API and an
//! SQLite database. Every run writes the services' configs from the flags,
//! starts `basalt <service> --config …` for each, waits until all are healthy, and
//! stops them all on Ctrl-C. A service that dies once the CA is up is started
//! again, a few times at most (see [`RestartBudget`]); one that keeps dying stops
//! them all, saying which. Later runs reuse the keys and the database, so accounts
//! and certificates survive.
//!
//! Services get their standard input from a pipe held by the launcher: if the
//! launcher dies, even by SIGKILL, the pipe closes and every service stops. Each
//! service's current pid is in `DIR/run/<service>.pid`.
//!
//! The VA validates from several perspectives: `--remote-vas N` (3 unless told)
//! more `basalt va` processes, `va-remote-1` … `va-remote-N`, each in a region of
//! its own, which the primary VA asks after every local success.
//!
//! The RA checks rate limits (`--rate-limits`): in its own memory with Let's
//! Encrypt's default limits unless told otherwise, lowered for tests with
//! `--rate-limit NAME=COUNT/PERIOD`. Every service appends its audit events to
//! `DIR/audit/<service>.jsonl` (see `basalt_telemetry::AUDIT_LOG_ENV`).
//!
//! Every process has a debug listener on a port of its own after the gRPC ports
//! (`/metrics`, `/health/live`, `/health/ready`), and `--otlp-endpoint` has them
//! all export their traces to an OpenTelemetry collector.
//!
//! Each intermediate publishes its CRL in [`DEV_CRL_SHARDS`] shards, which the OCSP
//! responder regenerates every `--crl-period` and a second after a revocation, and
//! serves at `crl/<issuer>/<shard>.crl` under the OCSP URL.
//!
//! The intermediates sign their own OCSP responses unless `--ocsp-signer
//! delegated` gives each a delegated OCSP responder (RFC 6960 §4.2.2.2), made by
//! one more `basalt ceremony ocsp-signer` run per intermediate
//! (`pki/ocsp-signer-<issuer>.pem`, its key beside the intermediates'), the first
//! time a run asks for them, even on a data directory prepared without them.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::process::Stdio;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::bail;
use basalt_ca::KeySource;
use basalt_ca::pki::DevIssuingPki;
use basalt_ca::pki::DevKeyStore;
use basalt_config::ConfigDuration;
use basalt_config::GrpcClientConfig;
use basalt_config::TlsConfig;
use basalt_core::Clock;
use basalt_core::SystemClock;
use basalt_grpc::GrpcChannel;
use basalt_grpc::service_names;
use basalt_telemetry::AUDIT_LOG_ENV;
use tokio::process::Child;
use tokio::process::ChildStdin;

/// How long services have to become healthy.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a service has to stop before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times one service may be restarted within [`RESTART_WINDOW`]; past
/// that it is broken rather than unlucky, and `basalt dev` stops.
const MAX_RESTARTS: usize = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// The pause before a restart, so a service that dies at once does not spin
/// through its budget before a port or a lock it held is free again.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Flags of `basalt dev`.
#[derive(Debug, clap::Args)]
pub(crate) struct DevArgs {
    /// Where keys, configs, the database and logs live; reused across runs.
    #[arg(long, default_value = "./basalt-data", value_name = "DIR")]
    data_dir: PathBuf,
    /// Address of the HTTPS ACME API.
    #[arg(long, default_value = "127.0.0.1:14000", value_name = "ADDR")]
    listen: SocketAddr,
    /// DNS server the VA resolves names with (default: the system resolver).
    #[arg(long, value_name = "HOST:PORT")]
    dns_resolver: Option<String>,
    /// Port the VA connects to for http-01.
    #[arg(long, default_value_t = 80, value_name = "N")]
    http01_port: u16,
    /// Port the VA connects to for tls-alpn-01.
    #[arg(long, default_value_t = 443, value_name = "N")]
    tlsalpn01_port: u16,
    /// Let the VA connect to loopback and private addresses (needed to validate
    /// names that resolve to this machine).
    #[arg(long)]
    allow_private_addresses: bool,
    /// First of the consecutive loopback ports for the internal services: SA, RA,
    /// VA and CA (gRPC), the OCSP responder (HTTP), the nonce service (gRPC), then
    /// one per remote VA (gRPC); then every process's debug listener (metrics and
    /// health, plain HTTP): SA, RA, VA, CA, WFE, OCSP responder, nonce service, then
    /// one per remote VA. 13 + 2 × `--remote-vas` ports in all.
    #[arg(long, default_value_t = 14100, value_name = "N")]
    port_base: u16,
    /// How many remote VAs (`va-remote-1` … `va-remote-N`, each its own process in
    /// a region of its own) the VA asks after it validates: multi-perspective
    /// validation, where one remote may fail with up to five of them and two from
    /// six. 0 turns it off; 1 is refused, since successes must span two regions.
    #[arg(
        long,
        default_value_t = DEFAULT_REMOTE_VAS,
        value_name = "N",
        value_parser = remote_vas_count,
    )]
    remote_vas: usize,
    /// The URL clients reach the ACME API by, when it is not `https://LISTEN`
    /// (e.g. a load balancer in front of several WFEs).
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// Another name for the HTTPS API's certificate (repeatable), e.g. the host
    /// name clients reach it by.
    #[arg(long = "api-name", value_name = "NAME")]
    api_names: Vec<String>,
    /// An OpenTelemetry collector (OTLP over gRPC, plaintext), e.g.
    /// `http://127.0.0.1:4317`, that every service exports its traces to.
    #[arg(long, value_name = "URL", value_parser = otlp_endpoint)]
    otlp_endpoint: Option<String>,
    /// How long after a name was validated the RA checks its CAA records again
    /// at finalize (e.g. `7h`, the default; `0s` rechecks at every finalize).
    #[arg(long, default_value = "7h", value_name = "DURATION")]
    caa_recheck_after: ConfigDuration,
    /// How long the RA's finalize waits for the issuance before it answers
    /// `processing` (at most `10s`; `0s` always answers `processing` and the
    /// client polls).
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    issuance_wait: ConfigDuration,
    /// How long the RA's answer to a challenge waits for the validation before it
    /// answers `processing` (at most `10s`; `0s` answers at once).
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    validation_wait: ConfigDuration,
    /// Create the keys, certificates and configs, then exit without starting
    /// anything (for container set-up: the internal PKI then also holds
    /// `va-remote`, the certificate docker-compose.yml's remote VAs share).
    #[arg(long)]
    prepare_only: bool,
    /// The SA's database: `postgres://…` runs the lab CA on PostgreSQL and
    /// `mysql://…` on MariaDB, creating the database if it is missing; the
    /// default is SQLite in the data directory.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
    /// Require external account binding for new accounts (keys come from
    /// `basalt admin --config DIR/config/admin.toml eab create`).
    #[arg(long)]
    eab_required: bool,
    /// The profile of orders that name none: `classic` (90 days), `modern` (45
    /// days) or `shortlived` (160 hours, IP addresses allowed).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_PROFILE)]
    default_profile: String,
    /// The OCSP URL written into certificates (default: the responder's own
    /// address, `http://127.0.0.1:PORT/`), for a lab whose clients reach the
    /// responder by a name. The responder also serves the intermediates under it,
    /// at `issuers/ecdsa.der` and `issuers/rsa.der`.
    #[arg(long, value_name = "URL")]
    ocsp_url: Option<String>,
    /// How often the OCSP responder has every CRL shard signed anew (e.g. `2s`,
    /// `5m`, at most `1d`); a revocation reaches its shard a second after the
    /// responder sees it whatever the period.
    #[arg(
        long,
        default_value = DEFAULT_CRL_PERIOD,
        value_name = "PERIOD",
        value_parser = crl_period,
    )]
    crl_period: ConfigDuration,
    /// Where the issuing hierarchy's keys live: `file` (PEM files in
    /// `DIR/ca-keys`) or `softhsm` (a SoftHSM2 token in `DIR/softhsm`, reached
    /// through PKCS#11). Fixed when the data directory is first prepared.
    #[arg(long, value_enum, default_value_t = CaKeys::File, value_name = "WHERE")]
    ca_keys: CaKeys,
    /// Who signs the OCSP responses: `issuer` (each intermediate, with its own
    /// key) or `delegated` (a delegated OCSP responder per intermediate, RFC 6960
    /// §4.2.2.2: `pki/ocsp-signer-<issuer>.pem`, valid a year, made by `basalt
    /// ceremony ocsp-signer` the first time a run asks for it, its key kept as
    /// `--ca-keys` says).
    #[arg(long, value_enum, default_value_t = OcspSigners::Issuer, value_name = "WHO")]
    ocsp_signer: OcspSigners,
    /// Where the RA keeps its rate limits' buckets: `memory` (in its process, with
    /// Let's Encrypt's default limits), `redis` (in the Redis at `--redis-url`,
    /// under a key prefix of this run's own, so that two lab CAs sharing a Redis
    /// never share buckets) or `off` (no limits).
    #[arg(long, value_enum, default_value_t = RateLimits::Memory, value_name = "WHERE")]
    rate_limits: RateLimits,
    /// The Redis of `--rate-limits redis`.
    #[arg(long, default_value = DEFAULT_REDIS_URL, value_name = "URL")]
    redis_url: String,
    /// A rate limit other than its default, e.g. `new_orders_per_account=3/1h`
    /// (repeatable; the last one for a limit wins): COUNT requests per PERIOD
    /// (`90s`, `20m`, `3h`, `7d`), and at most COUNT at once.
    #[arg(
        long = "rate-limit",
        value_name = "NAME=COUNT/PERIOD",
        value_parser = parse_rate_limit,
    )]
    rate_limit: Vec<DevRateLimit>,
}

/// `--rate-limits`: where the RA keeps its rate limits' buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum RateLimits {
    /// No rate limits at all.
    Off,
    /// In the RA's memory, lost when it restarts.
    Memory,
    /// In the Redis at `--redis-url`.
    Redis,
}

/// The Redis `--rate-limits redis` uses unless told otherwise: database 0 of a
/// local server.
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/0";

/// One `--rate-limit NAME=COUNT/PERIOD`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct DevRateLimit {
    /// The limit, e.g. `new_orders_per_account`; the RA refuses a name it lacks.
    name: String,
    /// Requests per period, and the burst.
    count: u32,
    /// The period `count` is measured over.
    period: ConfigDuration,
}

/// The CRL shards of each lab issuer: a certificate is listed, once revoked, on the
/// CRL of shard `serial mod 4`.
const DEV_CRL_SHARDS: u32 = 4;

/// How long each lab CRL is valid (the CA's `crl.lifetime`).
const DEV_CRL_LIFETIME: &str = "7d";

/// `--crl-period` unless told.
const DEFAULT_CRL_PERIOD: &str = "5m";

/// How long after a revocation its CRL shard is regenerated (the responder's
/// `crl.delay`).
const DEV_CRL_DELAY: &str = "1s";

/// Parses `--crl-period`: a duration above 0 and at most the responder's limit.
fn crl_period(text: &str) -> Result<ConfigDuration, String> {
    let period: ConfigDuration = text.parse()?;
    if period.0.is_zero() || period.0 > basalt_ocsp::MAX_CRL_PERIOD {
        return Err(format!(
            "{text:?}: the CRL period must be above 0 and at most {}",
            ConfigDuration(basalt_ocsp::MAX_CRL_PERIOD)
        ));
    }
    Ok(period)
}

/// Parses `--rate-limit NAME=COUNT/PERIOD`.
fn parse_rate_limit(text: &str) -> Result<DevRateLimit, String> {
    let usage =
        || format!("expected NAME=COUNT/PERIOD (e.g. new_orders_per_account=3/1h), not {text:?}");
    let (name, rate) = text.split_once('=').ok_or_else(usage)?;
    let (count, period) = rate.split_once('/').ok_or_else(usage)?;
    let name = name.trim();
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name_ok {
        return Err(format!(
            "{text:?}: a limit's name is lowercase letters, digits and `_`, e.g. \
             new_orders_per_account"
        ));
    }
    let count: u32 = count
        .trim()
        .parse()
        .ok()
        .filter(|count| *count > 0)
        .ok_or_else(|| format!("{text:?}: COUNT must be a whole number from 1"))?;
    let period: ConfigDuration = period
        .trim()
        .parse()
        .map_err(|err| format!("{text:?}: {err}"))?;
    if period.0.is_zero() {
        return Err(format!("{text:?}: PERIOD must be longer than 0"));
    }
    Ok(DevRateLimit {
        name: name.to_owned(),
        count,
        period,
    })
}

/// A key prefix for this run's rate-limit buckets in Redis: `basalt-dev-` and 64
/// random bits, so that two lab CAs on one Redis (or two runs of one) never share
/// buckets or overrides.
fn dev_key_prefix() -> anyhow::Result<String> {
    let mut random = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("basalt-dev-{hex}"))
}

/// The RA's `[rate_limits]` block from the flags.
fn rate_limits_block(args: &DevArgs, key_prefix: &str) -> String {
    let mut text = String::from(
        "# Rate limits: `basalt dev --rate-limits off|memory|redis` and\n\
         # `--rate-limit NAME=COUNT/PERIOD`; limits not named keep their defaults.\n\
         [rate_limits]\n",
    );
    match args.rate_limits {
        RateLimits::Off => text.push_str("enabled = false\n"),
        RateLimits::Memory => text.push_str("enabled = true\nbackend = \"memory\"\n"),
        RateLimits::Redis => text.push_str(&format!(
            "enabled = true\nbackend = \"redis\"\nredis_url = {}\n\
             # This run's own: another lab CA on the same Redis has its own buckets.\n\
             key_prefix = {}\n",
            q(&args.redis_url),
            q(key_prefix)
        )),
    }
    // The last flag for a limit wins.
    let limits: std::collections::BTreeMap<&str, &DevRateLimit> = args
        .rate_limit
        .iter()
        .map(|limit| (limit.name.as_str(), limit))
        .collect();
    for (name, limit) in limits {
        text.push_str(&format!(
            "\n[rate_limits.limits.{name}]\ncount = {}\nperiod = {}\nburst = {}\n",
            limit.count,
            q(limit.period.to_string()),
            limit.count
        ));
    }
    text
}

/// What `basalt dev` says about its rate limits as it starts.
fn rate_limits_banner(args: &DevArgs, key_prefix: &str) -> String {
    let changed = args
        .rate_limit
        .iter()
        .map(|limit| format!("{}={}/{}", limit.name, limit.count, limit.period))
        .collect::<Vec<_>>();
    let changed = if changed.is_empty() {
        String::new()
    } else {
        format!("; changed: {}", changed.join(", "))
    };
    match args.rate_limits {
        RateLimits::Off => "Rate limits: off".to_owned(),
        RateLimits::Memory => format!("Rate limits: in the RA's memory{changed}"),
        RateLimits::Redis => format!(
            "Rate limits: in Redis at {} under {key_prefix}{changed}",
            args.redis_url
        ),
    }
}

/// `--ca-keys`: where the issuing hierarchy's keys live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum CaKeys {
    /// PKCS#8 PEM files, mode 0600, in `DIR/ca-keys` (mode 0700).
    File,
    /// Objects in the SoftHSM2 token "basalt-dev", its PINs in `DIR/ca-keys`.
    Softhsm,
}

impl CaKeys {
    fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Softhsm => "softhsm",
        }
    }
}

/// `--ocsp-signer`: who signs the OCSP responses of each intermediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OcspSigners {
    /// The intermediate's own key.
    Issuer,
    /// A delegated OCSP responder certified by the intermediate.
    Delegated,
}

impl OcspSigners {
    fn is_delegated(self) -> bool {
        self == Self::Delegated
    }
}

/// The label of the token `--ca-keys softhsm` keeps the keys in.
const DEV_TOKEN_LABEL: &str = "basalt-dev";

/// One process `basalt dev` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Service {
    /// Names its config, log, pid file and internal certificate.
    name: &'static str,
    /// The `basalt` subcommand that runs it: a remote VA is a `basalt va` too.
    command: &'static str,
    /// The gRPC service its health stands for (`None`: an HTTP service, checked
    /// by connecting).
    health: Option<&'static str>,
}

impl Service {
    const fn new(name: &'static str, health: Option<&'static str>) -> Self {
        Self {
            name,
            command: name,
            health,
        }
    }

    fn remote_va(name: &'static str) -> Self {
        Self {
            name,
            command: "va",
            health: Some(service_names::VALIDATION),
        }
    }
}

/// The services every lab CA runs, in start order; [`services`] adds the remote VAs.
const SERVICES: &[Service] = &[
    Service::new("sa", Some(service_names::STORAGE)),
    Service::new("ca", Some(service_names::CERTIFICATE_AUTHORITY)),
    Service::new("va", Some(service_names::VALIDATION)),
    Service::new("ra", Some(service_names::REGISTRATION_AUTHORITY)),
    Service::new("ocsp", None),
    Service::new("nonce", Some(service_names::NONCE)),
    Service::new("wfe", None),
];

/// The names of the remote VAs `basalt dev` can run; `--remote-vas N` runs the
/// first N. Nine is enough to try every quorum rule (one failure allowed with two
/// to five remotes, two from six on) without burying a lab machine in processes.
const REMOTE_VAS: [&str; 9] = [
    "va-remote-1",
    "va-remote-2",
    "va-remote-3",
    "va-remote-4",
    "va-remote-5",
    "va-remote-6",
    "va-remote-7",
    "va-remote-8",
    "va-remote-9",
];

/// Remote VAs unless `--remote-vas` says otherwise: the fewest that still let one
/// of them fail (Boulder's quorum allows a failure from two remotes on, and with
/// two the survivor alone could not span two regions).
const DEFAULT_REMOTE_VAS: usize = 3;

/// Parses `--remote-vas`: 0, or 2 up to the length of [`REMOTE_VAS`].
fn remote_vas_count(text: &str) -> Result<usize, String> {
    let count: usize = text
        .parse()
        .map_err(|_| format!("expected a number of remote VAs, not {text:?}"))?;
    match count {
        // A quorum needs remote successes from two regions, which one remote
        // cannot give: every validation would fail.
        1 => Err("one remote VA can never make a quorum: use 0 (off) or 2 or more".to_owned()),
        count if count > REMOTE_VAS.len() => Err(format!(
            "at most {} remote VAs, one port and one process each",
            REMOTE_VAS.len()
        )),
        count => Ok(count),
    }
}

/// Every service in start order, with `remote_vas` remote VAs in front of the
/// primary VA that asks them, so they are up before it is.
fn services(remote_vas: usize) -> Vec<Service> {
    let mut services = Vec::with_capacity(SERVICES.len() + remote_vas);
    for service in SERVICES {
        if service.name == "va" {
            services.extend(
                REMOTE_VAS
                    .iter()
                    .take(remote_vas)
                    .map(|name| Service::remote_va(name)),
            );
        }
        services.push(*service);
    }
    services
}

/// The certificate profiles a lab CA offers (draft-ietf-acme-profiles), written
/// into the CA's, the RA's and the WFE's configs from this one table, so the CA
/// and the RA agree on which identifier types each profile allows.
struct DevProfile {
    name: &'static str,
    validity: &'static str,
    /// IP identifiers besides DNS names: the RA's `allow_ip_identifiers`, the
    /// CA's `identifier_types`.
    ip_identifiers: bool,
    /// The CA's `common_name`: the first DNS name in the subject.
    common_name: bool,
    /// The CA's `key_encipherment` for RSA keys.
    key_encipherment: bool,
    description: &'static str,
}

const PROFILES: &[DevProfile] = &[
    // Let's Encrypt's classic profile: a commonName, keyEncipherment for RSA.
    DevProfile {
        name: "classic",
        validity: "90d",
        ip_identifiers: false,
        common_name: true,
        key_encipherment: true,
        description: "90-day certificates for DNS names, with a commonName",
    },
    // Let's Encrypt's newer profiles: an empty subject, digitalSignature only.
    DevProfile {
        name: "modern",
        validity: "45d",
        ip_identifiers: false,
        common_name: false,
        key_encipherment: false,
        description: "45-day certificates for DNS names, empty subject, no keyEncipherment",
    },
    DevProfile {
        name: "shortlived",
        validity: "160h",
        ip_identifiers: true,
        common_name: false,
        key_encipherment: false,
        description: "160-hour certificates for DNS names and IP addresses",
    },
];

/// The profile orders get when they name none.
const DEFAULT_PROFILE: &str = "classic";

/// The lab CA's issuer domain in CAA records (under the reserved `.example`).
const CAA_ISSUER_DOMAIN: &str = "basalt-dev.example";

fn ca_profiles(ocsp_url: &str) -> String {
    PROFILES
        .iter()
        .map(|p| {
            // Every leaf names the OCSP responder: the Baseline Requirements let
            // short-lived ones go without revocation information, but Microsoft's
            // root program (and pkilint with it) wants some on every leaf.
            let identifier_types = if p.ip_identifiers {
                r#"["dns", "ip"]"#
            } else {
                r#"["dns"]"#
            };
            format!(
                "[profiles.{}]\nvalidity = {}\nocsp_url = {}\ncommon_name = {}\n\
                 key_encipherment = {}\nidentifier_types = {identifier_types}\n\n",
                p.name,
                q(p.validity),
                q(ocsp_url),
                p.common_name,
                p.key_encipherment,
            )
        })
        .collect()
}

/// The lab RA's identifier rules: names under reserved TLDs (`.example`, `.test`,
/// `.localhost`) and local IP addresses, which a production RA refuses.
const RA_IDENTIFIERS: &str = "# A lab CA issues for reserved TLDs and local addresses.\n\
                              [identifiers]\nrequire_known_tld = false\n\
                              allow_reserved_ips = true\n";

fn ra_profiles() -> String {
    PROFILES
        .iter()
        .map(|p| {
            format!(
                "[profiles.{}]\nvalidity = {}\nallow_ip_identifiers = {}\n\n",
                p.name,
                q(p.validity),
                p.ip_identifiers
            )
        })
        .collect()
}

fn wfe_profiles() -> String {
    let mut text = String::from("[directory.profiles]\n");
    for p in PROFILES {
        text.push_str(&format!("{} = {}\n", p.name, q(p.description)));
    }
    text
}

/// The certificate name the remote VAs of a pool share: docker-compose.yml's
/// scalable `va-remote` service (deploy/config/va-remote.toml), whose every replica
/// the primary VA finds through `[[remote_pool]]`. `--prepare-only`, which prepares
/// a data directory for containers, makes it too.
const REMOTE_VA_POOL: &str = "va-remote";

/// Names in the internal PKI: one per service, plus the launcher's own;
/// [`internal_names`] adds the remote VAs.
const INTERNAL_NAMES: &[&str] = &[
    "sa", "ra", "va", "ca", "wfe", "ocsp", "nonce", "dev", "admin",
];

/// Every name in the internal PKI with `remote_vas` remote VAs: each remote has a
/// certificate of its own, so the primary VA checks that it reached the remote it
/// meant to.
fn internal_names(remote_vas: usize) -> Vec<&'static str> {
    INTERNAL_NAMES
        .iter()
        .chain(REMOTE_VAS.iter().take(remote_vas))
        .copied()
        .collect()
}

/// Where everything lives under the data directory.
struct Layout {
    root: PathBuf,
    /// The SoftHSM2 configuration the CA's keys are reached through
    /// (`--ca-keys softhsm`): only the CA process gets it, as `SOFTHSM2_CONF`.
    softhsm_conf: Option<PathBuf>,
}

impl Layout {
    fn new(root: PathBuf) -> Self {
        Self {
            root,
            softhsm_conf: None,
        }
    }

    fn pki(&self, file: &str) -> PathBuf {
        self.root.join("pki").join(file)
    }

    fn issuer_keys(&self, file: &str) -> PathBuf {
        self.root.join("ca-keys").join(file)
    }

    /// The issuing hierarchy with its keys in `keys`, and delegated OCSP
    /// responders if `ocsp_signer` asks for them.
    fn issuing_pki(&self, keys: DevKeyStore, ocsp_signer: OcspSigners) -> DevIssuingPki {
        DevIssuingPki::new(self.root.join("pki"), keys)
            .with_delegated_ocsp(ocsp_signer.is_delegated())
    }

    fn ceremony(&self, name: &str) -> PathBuf {
        self.root.join("ceremony").join(format!("{name}.toml"))
    }

    fn config(&self, service: &str) -> PathBuf {
        self.root.join("config").join(format!("{service}.toml"))
    }

    fn log(&self, service: &str) -> PathBuf {
        self.root.join("logs").join(format!("{service}.log"))
    }

    fn database(&self) -> PathBuf {
        self.root.join("db").join("basalt.db")
    }

    /// Where the services' audit logs are.
    fn audit_dir(&self) -> PathBuf {
        self.root.join("audit")
    }

    /// The audit log of `service`: one JSON object per audit event and line.
    fn audit_log(&self, service: &str) -> PathBuf {
        self.audit_dir().join(format!("{service}.jsonl"))
    }

    fn pid_file(&self, service: &str) -> PathBuf {
        self.root.join("run").join(format!("{service}.pid"))
    }

    fn tls(&self, name: &str) -> TlsConfig {
        TlsConfig {
            cert: self.pki(&format!("{name}.pem")),
            key: self.pki(&format!("{name}.key")),
            ca: self.pki("internal-ca.pem"),
        }
    }
}

/// How many ports from `--port-base` the services other than the remote VAs use.
const FIXED_PORTS: usize = 6;

/// The processes with a debug listener (metrics, health), in the order of their
/// ports after the gRPC ones; the remote VAs' follow.
const DEBUG_PORTS: [&str; 7] = ["sa", "ra", "va", "ca", "wfe", "ocsp", "nonce"];

/// The addresses the services listen on.
struct Ports {
    sa: SocketAddr,
    ra: SocketAddr,
    va: SocketAddr,
    ca: SocketAddr,
    ocsp: SocketAddr,
    nonce: SocketAddr,
    /// One per remote VA, in [`REMOTE_VAS`] order, after the fixed ports: adding
    /// remotes moves no other service.
    remote_vas: Vec<SocketAddr>,
    /// Each process's debug listener, after the gRPC ports: [`DEBUG_PORTS`], then
    /// the remote VAs in [`REMOTE_VAS`] order.
    debug: Vec<SocketAddr>,
}

impl Ports {
    fn new(base: u16, remote_vas: usize) -> anyhow::Result<Self> {
        let grpc = FIXED_PORTS + remote_vas;
        let total = grpc + DEBUG_PORTS.len() + remote_vas;
        let port = |offset: usize| -> anyhow::Result<SocketAddr> {
            let port = u16::try_from(offset)
                .ok()
                .and_then(|offset| base.checked_add(offset))
                .with_context(|| format!("--port-base {base} leaves no room for {total} ports"))?;
            Ok(SocketAddr::from(([127, 0, 0, 1], port)))
        };
        Ok(Self {
            sa: port(0)?,
            ra: port(1)?,
            va: port(2)?,
            ca: port(3)?,
            ocsp: port(4)?,
            nonce: port(5)?,
            remote_vas: (FIXED_PORTS..grpc)
                .map(port)
                .collect::<anyhow::Result<_>>()?,
            debug: (grpc..total).map(port).collect::<anyhow::Result<_>>()?,
        })
    }

    /// The debug listener of process `name`.
    fn debug(&self, name: &str) -> Option<SocketAddr> {
        let index = DEBUG_PORTS.iter().position(|n| *n == name).or_else(|| {
            REMOTE_VAS
                .iter()
                .position(|n| *n == name)
                .map(|index| DEBUG_PORTS.len() + index)
        })?;
        self.debug.get(index).copied()
    }

    fn grpc(&self, service: &str) -> Option<SocketAddr> {
        match service {
            "sa" => Some(self.sa),
            "ra" => Some(self.ra),
            "va" => Some(self.va),
            "ca" => Some(self.ca),
            "nonce" => Some(self.nonce),
            _ => REMOTE_VAS
                .iter()
                .position(|name| *name == service)
                .and_then(|index| self.remote_vas.get(index).copied()),
        }
    }
}

pub(crate) async fn run(args: DevArgs) -> anyhow::Result<()> {
    let mut layout = Layout::new(args.data_dir.clone());
    let ports = Ports::new(args.port_base, args.remote_vas)?;
    let services = services(args.remote_vas);
    let exe = std::env::current_exe().context("locating the basalt binary")?;
    let keys = prepare(&layout, &args, &exe)?;
    layout.softhsm_conf = keys.softhsm_conf;
    let key_prefix = dev_key_prefix()?;
    for (service, text) in render_configs(&layout, &args, &ports, &keys.store, &key_prefix) {
        if service == "ra" {
            // A bad `--rate-limit` is reported here, not as an RA that will not start.
            check_ra_config(&text)?;
        }
        write(&layout.config(service), &text)?;
    }
    if args.prepare_only {
        println!("basalt dev: prepared {}", layout.root.display());
        return Ok(());
    }

    if let Some(url) = &args.db {
        ensure_database(url)
            .await
            .context("creating the SA's database")?;
    }

    let mut running = Vec::new();
    for service in &services {
        match start(&exe, &layout, *service) {
            Ok(process) => running.push(process),
            Err(err) => {
                stop_all(&layout, running).await;
                return Err(err);
            }
        }
    }

    let healthy = tokio::select! {
        result = wait_healthy(&layout, &args, &ports, &services) => result,
        (index, status) = first_exit(&mut running) => {
            let service = running[index].service.name;
            Err(anyhow::anyhow!("the {service} service exited during start-up ({status})"))
        }
        () = crate::shutdown::interrupt() => Err(anyhow::anyhow!("interrupted during start-up")),
    };
    if let Err(err) = healthy {
        report_logs(&layout, &services);
        stop_all(&layout, running).await;
        return Err(err);
    }

    let pids = running
        .iter()
        .map(|p| format!("{}={}", p.service.name, p.child.id().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(" ");
    println!("ACME directory: {}/directory", base_url(&args));
    println!(
        "HTTPS API chains to: {}",
        layout.pki("api-ca.pem").display()
    );
    println!(
        "Issued certificates chain to: {} (ECDSA and RSA roots; alternate chain for \
         ECDSA certificates: {})",
        layout.pki("root.pem").display(),
        layout.pki("root-x2.pem").display()
    );
    println!("OCSP responder: http://{}/", ports.ocsp);
    let pki = layout.issuing_pki(keys.store.clone(), args.ocsp_signer);
    println!("{}", ocsp_signer_banner(&pki));
    let issuers: Vec<&str> = pki.issuers().iter().map(|issuer| issuer.name).collect();
    println!("{}", crl_banner(&args, &ports, &issuers));
    println!("Logs: {}", layout.root.join("logs").display());
    println!(
        "Audit events (JSON lines, one file per service): {}",
        layout.audit_dir().display()
    );
    println!("{}", rate_limits_banner(&args, &key_prefix));
    println!("{}", metrics_banner(&ports, &services));
    if let Some(url) = &args.otlp_endpoint {
        println!("Traces: exported to {url} (OTLP/gRPC)");
    }
    println!("Services (pid): {pids}");
    println!("basalt dev: ready");

    let result = supervise(&exe, &layout, &mut running, crate::shutdown::interrupt()).await;
    stop_all(&layout, running).await;
    result
}

/// The banner line saying where each process's metrics are; its health checks
/// are beside them, at `/health/live` and `/health/ready`.
fn metrics_banner(ports: &Ports, services: &[Service]) -> String {
    let mut listeners: Vec<(SocketAddr, &str)> = services
        .iter()
        .filter_map(|service| Some((ports.debug(service.name)?, service.name)))
        .collect();
    // In port order, as `--port-base` lays them out.
    listeners.sort_by_key(|(address, _)| address.port());
    let urls: Vec<String> = listeners
        .iter()
        .map(|(address, name)| format!("{name}=http://{address}/metrics"))
        .collect();
    format!(
        "Metrics (health at /health/live and /health/ready beside them): {}",
        urls.join(" ")
    )
}

/// Refuses an RA config the RA itself would refuse, e.g. an unknown limit in
/// `--rate-limit`, saying why.
fn check_ra_config(text: &str) -> anyhow::Result<()> {
    basalt_config::parse::<basalt_ra::RaConfig>(text)
        .and_then(|config| config.validate())
        .map_err(|err| anyhow::anyhow!("the RA's config from these flags is invalid: {err}"))
}

/// Creates the database `--db` names when it does not exist yet, so a lab CA on
/// PostgreSQL or MariaDB needs nothing beyond a running server.
async fn ensure_database(url: &str) -> anyhow::Result<()> {
    if basalt_sa::create_database_if_missing(url).await? {
        println!("basalt dev: created the SA's database");
    }
    Ok(())
}

/// Starts a service again whenever it exits, until `interrupt` completes (`Ok`)
/// or one service exits more often than its [`RestartBudget`] allows (`Err`).
/// The caller stops what is still running.
async fn supervise(
    exe: &Path,
    layout: &Layout,
    running: &mut [Process],
    interrupt: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut budgets: Vec<RestartBudget> = running
        .iter()
        .map(|_| RestartBudget::new(MAX_RESTARTS, RESTART_WINDOW))
        .collect();
    // One future for the whole loop: a signal that arrives while a service is
    // being restarted is still seen by the next `select!`.
    tokio::pin!(interrupt);
    loop {
        let (index, status) = tokio::select! {
            exited = first_exit(running) => exited,
            () = &mut interrupt => break,
        };
        let service = running[index].service;
        let name = service.name;
        if !budgets[index].spend(Instant::now()) {
            eprintln!(
                "basalt dev: the {name} service exited ({status}) after {MAX_RESTARTS} \
                 restarts within {RESTART_WINDOW:?}; its log follows"
            );
            tail(&layout.log(name));
            bail!("the {name} service keeps dying");
        }
        println!("basalt dev: the {name} service exited ({status}); restarting");
        tokio::select! {
            () = tokio::time::sleep(RESTART_DELAY) => {}
            () = &mut interrupt => break,
        }
        running[index] = start(exe, layout, service)?;
    }
    println!("basalt dev: stopping");
    Ok(())
}

/// How often one service may be restarted: at most `max` times within any
/// `window`, so a crash now and then is survived and a crash loop is not.
#[derive(Debug)]
struct RestartBudget {
    max: usize,
    window: Duration,
    /// When the restarts of the last `window` happened, oldest first.
    recent: VecDeque<Instant>,
}

impl RestartBudget {
    fn new(max: usize, window: Duration) -> Self {
        Self {
            max,
            window,
            recent: VecDeque::with_capacity(max),
        }
    }

    /// Records a restart at `now`; false, recording nothing, when the `window`
    /// before `now` already holds `max` restarts.
    fn spend(&mut self, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) >= self.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.max {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

/// The URL clients reach the API by: a wildcard listen address is reached on
/// loopback from this machine.
fn api_base_url(listen: SocketAddr) -> String {
    let mut reachable = listen;
    if listen.ip().is_unspecified() {
        reachable.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("https://{reachable}")
}

/// The API's external URL: `--base-url`, else derived from `--listen`.
fn base_url(args: &DevArgs) -> String {
    args.base_url
        .as_deref()
        .map(|url| url.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| api_base_url(args.listen))
}

/// Where the issuing hierarchy's keys are, as [`prepare`] found or made them.
struct IssuerKeys {
    store: DevKeyStore,
    /// The SoftHSM2 configuration that reaches them (`--ca-keys softhsm`).
    softhsm_conf: Option<PathBuf>,
}

/// Creates the directories and, once, the keys and certificates: the issuing
/// hierarchy by running `exe ceremony …` for each ceremony not yet run.
fn prepare(layout: &Layout, args: &DevArgs, exe: &Path) -> anyhow::Result<IssuerKeys> {
    let clock = SystemClock;
    for dir in ["pki", "config", "db", "logs", "run", "ceremony", "audit"] {
        std::fs::create_dir_all(layout.root.join(dir))
            .with_context(|| format!("creating {}", layout.root.join(dir).display()))?;
    }
    private_dir(&layout.root.join("ca-keys"))?;

    check_key_location(layout, args.ca_keys)?;
    let keys = match args.ca_keys {
        CaKeys::File => IssuerKeys {
            store: DevKeyStore::Files(layout.root.join("ca-keys")),
            softhsm_conf: None,
        },
        CaKeys::Softhsm => prepare_softhsm(layout)?,
    };
    let pki = layout.issuing_pki(keys.store.clone(), args.ocsp_signer);
    run_ceremonies(exe, layout, &pki, keys.softhsm_conf.as_deref(), clock.now())?;
    // The roots clients trust for the default chains, ECDSA and RSA.
    pki.write_root_bundle()?;

    // A run with more remote VAs than before lacks their certificates, and so
    // makes the whole internal PKI afresh; every service reads it as it starts.
    let mut internal_names = internal_names(args.remote_vas);
    if args.prepare_only {
        internal_names.push(REMOTE_VA_POOL);
    }
    let internal_missing = internal_names
        .iter()
        .any(|name| !layout.pki(&format!("{name}.key")).exists());
    if !layout.pki("internal-ca.pem").exists() || internal_missing {
        println!("basalt dev: creating the internal mTLS PKI");
        basalt_ca::pki::generate_internal_pki(&layout.root.join("pki"), &internal_names, &clock)?;
    }

    if !layout.pki("api-ca.key").exists() {
        basalt_ca::pki::generate_api_ca(&layout.root.join("pki"), &clock)?;
    }
    // Re-issued every run so it always names the current --listen address.
    let api_ca = basalt_ca::pki::CertKeyPaths {
        cert: layout.pki("api-ca.pem"),
        key: layout.pki("api-ca.key"),
    };
    let listen_ip = args.listen.ip().to_string();
    let mut names = vec!["localhost", "127.0.0.1", "::1"];
    if !names.contains(&listen_ip.as_str()) && !args.listen.ip().is_unspecified() {
        names.push(&listen_ip);
    }
    names.extend(args.api_names.iter().map(String::as_str));
    basalt_ca::pki::generate_server_cert(
        &api_ca,
        &names,
        &layout.pki("wfe-https.pem"),
        &layout.pki("wfe-https.key"),
        &clock,
    )?;
    Ok(keys)
}

/// Records, on the first run, where this data directory keeps its CA keys, and
/// refuses a later run that asks for the other place: a hierarchy is never made
/// half in files and half in a token.
fn check_key_location(layout: &Layout, wanted: CaKeys) -> anyhow::Result<()> {
    let record = layout.issuer_keys("location");
    let found = match std::fs::read_to_string(&record) {
        Ok(text) => text.trim().to_owned(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            // A hierarchy without the record (removed by hand) shows where its
            // first key is.
            if layout.issuer_keys("root-ecdsa.key").exists() {
                CaKeys::File.name().to_owned()
            } else if layout.pki("root-ecdsa.pem").exists() {
                CaKeys::Softhsm.name().to_owned()
            } else {
                wanted.name().to_owned()
            }
        }
        Err(err) => {
            return Err(err).with_context(|| format!("reading {}", record.display()));
        }
    };
    if found != wanted.name() {
        bail!(
            "the data directory {} keeps its CA keys in {found} (it was prepared with \
             --ca-keys {found}); run with --ca-keys {found}, or use another --data-dir \
             for --ca-keys {}",
            layout.root.display(),
            wanted.name()
        );
    }
    write(&record, &format!("{found}\n"))
}

/// Prepares the SoftHSM2 token the keys live in: its configuration under
/// `DIR/softhsm`, PINs made once (random, in owner-only files under `DIR/ca-keys`),
/// and the token "basalt-dev", initialised once.
fn prepare_softhsm(layout: &Layout) -> anyhow::Result<IssuerKeys> {
    let module = basalt_ca::softhsm::module_path().context(
        "--ca-keys softhsm needs SoftHSM2: apt-get install softhsm2 \
         (or set BASALT_SOFTHSM_MODULE to its PKCS#11 module)",
    )?;
    let dir = layout.root.join("softhsm");
    private_dir(&dir)?;
    let conf = basalt_ca::softhsm::write_config(&dir)?;
    let so_pin = pin(&layout.issuer_keys("softhsm-so.pin"))?;
    let user_pin_file = layout.issuer_keys("softhsm-user.pin");
    let user_pin = pin(&user_pin_file)?;
    let tokens = dir.join("tokens");
    let initialised = std::fs::read_dir(&tokens)
        .with_context(|| format!("reading {}", tokens.display()))?
        .next()
        .is_some();
    if !initialised {
        println!("basalt dev: initialising the SoftHSM2 token {DEV_TOKEN_LABEL:?}");
        basalt_ca::softhsm::init_token(&conf, DEV_TOKEN_LABEL, &so_pin, &user_pin)?;
    }
    Ok(IssuerKeys {
        store: DevKeyStore::Token {
            module,
            token_label: DEV_TOKEN_LABEL.to_owned(),
            pin_file: user_pin_file,
        },
        softhsm_conf: Some(conf),
    })
}

/// The PIN in `path`, made (32 random hex digits, mode 0600) if the file is new.
fn pin(path: &Path) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    if let Ok(text) = std::fs::read_to_string(path) {
        let pin = text.trim();
        if pin.len() < 4 {
            bail!("{} holds no PIN", path.display());
        }
        return Ok(pin.to_owned());
    }
    let mut random = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    let pin: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(format!("{pin}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(pin)
}

/// Runs, in order, the ceremonies of `pki` whose certificates do not exist yet:
/// writes each config to `DIR/ceremony/<name>.toml` and runs
/// `exe ceremony <kind> --config <it>` as a child process, with `SOFTHSM2_CONF`
/// when the keys are in a token (SoftHSM reads it as the module loads).
fn run_ceremonies(
    exe: &Path,
    layout: &Layout,
    pki: &DevIssuingPki,
    softhsm_conf: Option<&Path>,
    now: time::OffsetDateTime,
) -> anyhow::Result<()> {
    for ceremony in pki.ceremonies(now)? {
        if ceremony.certificate.exists() {
            continue;
        }
        let config = layout.ceremony(ceremony.name);
        write(&config, &ceremony.config)?;
        println!(
            "basalt dev: the {} ceremony ({})",
            ceremony.name, ceremony.kind
        );
        let mut command = std::process::Command::new(exe);
        command
            .arg("ceremony")
            .arg(ceremony.kind.name())
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null());
        match softhsm_conf {
            Some(conf) => command.env(basalt_ca::softhsm::CONF_ENV, conf),
            None => command.env_remove(basalt_ca::softhsm::CONF_ENV),
        };
        let output = command
            .output()
            .with_context(|| format!("running the {} ceremony", ceremony.name))?;
        print!("{}", String::from_utf8_lossy(&output.stdout));
        if !output.status.success() {
            bail!(
                "the {} ceremony ({}) failed ({}): {}",
                ceremony.name,
                config.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        if !ceremony.certificate.exists() {
            bail!(
                "the {} ceremony succeeded but wrote no {}",
                ceremony.name,
                ceremony.certificate.display()
            );
        }
    }
    Ok(())
}

fn private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;

    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", dir.display()))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// A TOML string literal.
fn q(value: impl AsRef<str>) -> String {
    toml::Value::String(value.as_ref().to_owned()).to_string()
}

fn qp(path: &Path) -> String {
    q(path.to_string_lossy())
}

/// The `key = …` or `pkcs11 = { … }` line of an issuer.
fn key_location(source: &KeySource) -> String {
    match source {
        KeySource::File(path) => format!("key = {}", qp(path)),
        KeySource::Pkcs11(config) => format!(
            "pkcs11 = {{ module = {}, token_label = {}, key_label = {}, pin_file = {} }}",
            qp(&config.module),
            q(&config.token_label),
            q(&config.key_label),
            qp(&config.pin_file)
        ),
    }
}

fn tls_block(layout: &Layout, name: &str) -> String {
    let tls = layout.tls(name);
    format!(
        "[tls]\ncert = {}\nkey = {}\nca = {}\n",
        qp(&tls.cert),
        qp(&tls.key),
        qp(&tls.ca)
    )
}

fn client_block(table: &str, address: SocketAddr, name: &str) -> String {
    format!(
        "[{table}]\naddress = {}\nserver_name = {}\ntimeout = \"30s\"\n",
        q(address.to_string()),
        q(name)
    )
}

fn grpc_block(listen: SocketAddr, allowed: &[(&str, &[&str])]) -> String {
    let mut text = format!(
        "[grpc]\nlisten = {}\n\n[grpc.allowed_clients]\n",
        q(listen.to_string())
    );
    for (service, clients) in allowed {
        let clients = clients.iter().map(q).collect::<Vec<_>>().join(", ");
        text.push_str(&format!("{} = [{clients}]\n", q(service)));
    }
    text
}

/// The OCSP URL certificates carry: `--ocsp-url`, else the responder's address.
fn ocsp_url(args: &DevArgs, ports: &Ports) -> String {
    args.ocsp_url
        .clone()
        .unwrap_or_else(|| format!("http://{}/", ports.ocsp))
}

/// Where the responder serves the CRL shards of the lab issuer `issuer` (`ecdsa`
/// or `rsa`).
fn crl_path(issuer: &str) -> String {
    format!("/crl/{issuer}/")
}

/// The URL certificates of `issuer` name their CRL shard under (the CA's
/// `crl_url_base`): [`crl_path`] under the OCSP URL.
fn crl_url_base(ocsp_url: &str, issuer: &str) -> String {
    format!("{}{}", ocsp_url.trim_end_matches('/'), crl_path(issuer))
}

/// The banner line saying where the CRLs are.
fn crl_banner(args: &DevArgs, ports: &Ports, issuers: &[&str]) -> String {
    let ocsp_url = ocsp_url(args, ports);
    let urls: Vec<String> = issuers
        .iter()
        .map(|issuer| {
            format!(
                "{}{{0..{}}}.crl",
                crl_url_base(&ocsp_url, issuer),
                DEV_CRL_SHARDS - 1
            )
        })
        .collect();
    format!(
        "CRLs: {} (every {} and {DEV_CRL_DELAY} after a revocation)",
        urls.join(" "),
        args.crl_period
    )
}

/// The banner line saying who signs the OCSP responses.
fn ocsp_signer_banner(pki: &DevIssuingPki) -> String {
    let signers: Vec<String> = pki
        .issuers()
        .iter()
        .filter_map(|issuer| issuer.ocsp_signer.as_ref())
        .map(|signer| signer.cert.display().to_string())
        .collect();
    if signers.is_empty() {
        "OCSP responses signed by: the intermediates (--ocsp-signer issuer)".to_owned()
    } else {
        format!(
            "OCSP responses signed by: delegated OCSP responders {} (--ocsp-signer delegated)",
            signers.join(" ")
        )
    }
}

/// The first lines of every service's config.
const CONFIG_HEADER: &str =
    "# Written by `basalt dev` on every start; edit the flags, not this file.\n\n";

/// Every service's config, from the flags. The CA's is the only one that names
/// the issuer key.
fn render_configs(
    layout: &Layout,
    args: &DevArgs,
    ports: &Ports,
    keys: &DevKeyStore,
    key_prefix: &str,
) -> Vec<(&'static str, String)> {
    let base_url = base_url(args);
    let header = CONFIG_HEADER;
    let ocsp_url = ocsp_url(args, ports);
    // The responder serves the intermediates beside its OCSP answers, and every
    // certificate names its issuer's there (authorityInfoAccess caIssuers).
    let issuers_url = format!("{}/issuers/", ocsp_url.trim_end_matches('/'));
    let pki = layout.issuing_pki(keys.clone(), args.ocsp_signer);

    let sa = format!(
        "{header}{}\n{}\n[database]\nurl = {}\n",
        grpc_block(
            ports.sa,
            &[
                (
                    service_names::STORAGE_READ_ONLY,
                    &["wfe", "ra", "ca", "ocsp", "admin"],
                ),
                (service_names::STORAGE, &["ra", "ca", "admin"]),
            ],
        ),
        tls_block(layout, "sa"),
        q(args
            .db
            .clone()
            .unwrap_or_else(|| { format!("sqlite://{}", layout.database().to_string_lossy()) })),
    );

    // ECDSA first: the issuer of every key that is not RSA. No chain: clients
    // have the roots.
    let ca_issuers: String = pki
        .issuers()
        .iter()
        .map(|issuer| {
            // With --ocsp-signer delegated, the intermediate's delegated responder
            // signs its OCSP responses.
            let ocsp_signer = issuer
                .ocsp_signer
                .as_ref()
                .map(|signer| {
                    format!(
                        "ocsp_signer = {{ cert = {}, {} }}\n",
                        qp(&signer.cert),
                        key_location(&signer.key)
                    )
                })
                .unwrap_or_default();
            format!(
                "[[issuers]]\ncert = {}\n{}\nissuer_url = {}\ncrl_url_base = {}\n{ocsp_signer}\n",
                qp(&issuer.cert),
                key_location(&issuer.key),
                q(format!("{issuers_url}{}.der", issuer.name)),
                q(crl_url_base(&ocsp_url, issuer.name)),
            )
        })
        .collect();
    // Every issuer's revocations on DEV_CRL_SHARDS CRLs, which the responder has
    // the CA sign and serves under its own URL.
    let ca_crl = format!(
        "[crl]\nshards = {DEV_CRL_SHARDS}\nlifetime = {}\n\n",
        q(DEV_CRL_LIFETIME)
    );
    let ca = format!(
        "{header}default_profile = {}\n\n{}\n{}\n{}\n{ca_crl}{ca_issuers}{}",
        q(&args.default_profile),
        grpc_block(
            ports.ca,
            &[
                (service_names::CERTIFICATE_AUTHORITY, &["ra"]),
                (service_names::REVOCATION_SIGNER, &["ocsp"]),
            ],
        ),
        tls_block(layout, "ca"),
        client_block("sa", ports.sa, "sa"),
        ca_profiles(&ocsp_url),
    );

    let va = va_config(
        layout,
        args,
        "va",
        grpc_block(ports.va, &[(service_names::VALIDATION, &["ra"])]),
        &remote_tables(&ports.remote_vas),
    );
    // A remote answers the primary VA alone and asks no one itself.
    let remote_vas = REMOTE_VAS
        .iter()
        .zip(&ports.remote_vas)
        .map(|(name, address)| {
            let grpc = grpc_block(*address, &[(service_names::VALIDATION, &["va"])]);
            (*name, va_config(layout, args, name, grpc, ""))
        });

    let ra = format!(
        "{header}account_uri_prefix = {}\ndefault_profile = {}\ncaa_recheck_after = {}\n\
         issuance_wait = {}\nvalidation_wait = {}\n\n\
         {}\n{}\n{}\n{}\n{}\n{}\n{}{}",
        q(format!("{base_url}/acme/acct/")),
        q(&args.default_profile),
        q(args.caa_recheck_after.to_string()),
        q(args.issuance_wait.to_string()),
        q(args.validation_wait.to_string()),
        // The admin revokes and sets rate-limit overrides through the RA.
        grpc_block(
            ports.ra,
            &[(service_names::REGISTRATION_AUTHORITY, &["wfe", "admin"])]
        ),
        tls_block(layout, "ra"),
        client_block("sa", ports.sa, "sa"),
        client_block("va", ports.va, "va"),
        client_block("ca", ports.ca, "ca"),
        RA_IDENTIFIERS,
        ra_profiles(),
        rate_limits_block(args, key_prefix),
    );

    let wfe = format!(
        "{header}listen = {}\nbase_url = {}\n\
         # The ECDSA intermediate cross-signed by Basalt Dev Root X2 (RFC 8555 §7.4.2).\n\
         alternate_chains = [{}]\n\n[https]\ncert = {}\nkey = {}\n\n{}\n{}\n{}\n{}\n\
         [eab]\nrequired = {}\n\n{}",
        q(args.listen.to_string()),
        q(&base_url),
        qp(&layout.pki("intermediate-x2.pem")),
        qp(&layout.pki("wfe-https.pem")),
        qp(&layout.pki("wfe-https.key")),
        tls_block(layout, "wfe"),
        client_block("ra", ports.ra, "ra"),
        client_block("sa", ports.sa, "sa"),
        client_block("nonce", ports.nonce, "nonce"),
        args.eab_required,
        wfe_profiles(),
    );

    let ocsp_issuers: String = pki
        .issuers()
        .iter()
        .map(|issuer| {
            format!(
                "[[issuers]]\ncert = {}\npath = {}\ncrl_path = {}\n\n",
                qp(&issuer.cert),
                q(format!("/issuers/{}.der", issuer.name)),
                q(crl_path(issuer.name)),
            )
        })
        .collect();
    let ocsp = format!(
        "{header}listen = {}\nmax_age = \"1h\"\n\n{ocsp_issuers}{}\n{}\n{}\n\
         [crl]\nshards = {DEV_CRL_SHARDS}\nperiod = {}\ndelay = {}\n",
        q(ports.ocsp.to_string()),
        tls_block(layout, "ocsp"),
        client_block("sa", ports.sa, "sa"),
        client_block("ca", ports.ca, "ca"),
        q(args.crl_period.to_string()),
        q(DEV_CRL_DELAY),
    );

    let nonce = format!(
        "{header}{}\n{}",
        grpc_block(ports.nonce, &[(service_names::NONCE, &["wfe"])]),
        tls_block(layout, "nonce"),
    );

    let admin = format!(
        "# For `basalt admin --config` on this machine.\n\n{}\n{}\n{}",
        tls_block(layout, "admin"),
        client_block("sa", ports.sa, "sa"),
        client_block("ra", ports.ra, "ra"),
    );

    let mut configs = vec![
        ("nonce", nonce),
        ("admin", admin),
        ("sa", sa),
        ("ca", ca),
        ("va", va),
    ];
    configs.extend(remote_vas);
    configs.extend([("ra", ra), ("wfe", wfe), ("ocsp", ocsp)]);
    for (name, text) in &mut configs {
        if *name != "admin" {
            text.push_str(&telemetry_block(args, ports, name));
        }
    }
    configs
}

/// The `[telemetry]` of process `name`: its debug listener, and the collector of
/// `--otlp-endpoint`.
fn telemetry_block(args: &DevArgs, ports: &Ports, name: &str) -> String {
    let mut text = String::from("\n[telemetry]\n");
    if let Some(address) = ports.debug(name) {
        text.push_str(&format!("debug_listen = {}\n", q(address.to_string())));
    }
    if let Some(url) = &args.otlp_endpoint {
        text.push_str(&format!("otlp_endpoint = {}\n", q(url)));
    }
    text
}

/// Parses `--otlp-endpoint` as the services will read it.
fn otlp_endpoint(text: &str) -> Result<String, String> {
    basalt_config::parse::<basalt_config::TelemetryConfig>(&format!(
        "otlp_endpoint = {}",
        q(text)
    ))?;
    Ok(text.to_owned())
}

/// A VA's config: `grpc` says who may call it and `remotes` which perspectives it
/// asks (empty for a remote VA, or without multi-perspective validation). Every VA
/// validates alike, with the same resolver, ports, address policy and CAA identity,
/// so that only where a perspective stands could make it see something else.
fn va_config(layout: &Layout, args: &DevArgs, name: &str, grpc: String, remotes: &str) -> String {
    let resolver = args
        .dns_resolver
        .as_ref()
        .map(|resolver| format!("resolver = {}\n", q(resolver)))
        .unwrap_or_default();
    // Top-level keys come before the first table.
    let remote_timeout = if remotes.is_empty() {
        ""
    } else {
        // The remotes run on this machine and fetch from the hosts this VA has just
        // reached, so they answer well within a second; 5s instead of the 15s
        // default (meant for remotes far away) keeps a remote that hangs (stopped,
        // overloaded) from holding up every validation for long, and keeps the VA's
        // answer far inside the RA's 30s deadline for it.
        "# The remote VAs run on this machine and answer at once: one that hangs\n\
         # delays each validation by at most this long.\n\
         remote_timeout = \"5s\"\n"
    };
    format!(
        "{CONFIG_HEADER}allow_private_addresses = {}\n{remote_timeout}\n{grpc}\n{}\n[dns]\n{resolver}\n\
         [http01]\nport = {}\n\n[tlsalpn01]\nport = {}\n\n\
         # The lab CA's name in CAA records: a name with CAA that does not list it is refused.\n\
         [caa]\nissuer_domains = [{}]\n{remotes}",
        args.allow_private_addresses,
        tls_block(layout, name),
        args.http01_port,
        args.tlsalpn01_port,
        q(CAA_ISSUER_DOMAIN),
    )
}

/// The primary VA's `[[remote]]` tables, one per remote VA listening at
/// `addresses`: each is named as its process is (so an outcome leads to its log)
/// and stands in a region of its own, so any quorum rule can be met.
fn remote_tables(addresses: &[SocketAddr]) -> String {
    REMOTE_VAS
        .iter()
        .zip(addresses)
        .enumerate()
        .map(|(index, (name, address))| {
            format!(
                "\n[[remote]]\nname = {}\nregion = {}\naddress = {}\nserver_name = {}\n",
                q(name),
                q(format!("region-{}", index + 1)),
                q(address.to_string()),
                q(name),
            )
        })
        .collect()
}

/// A running service process.
struct Process {
    service: Service,
    child: Child,
    /// Held open for the service's lifetime; dropping it tells the service to stop.
    stdin: Option<ChildStdin>,
}

fn start(exe: &Path, layout: &Layout, service: Service) -> anyhow::Result<Process> {
    use std::os::unix::process::CommandExt;

    let name = service.name;
    let log_path = layout.log(name);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let log_err = log.try_clone().context("duplicating the log file handle")?;
    let mut command = std::process::Command::new(exe);
    command
        .arg(service.command)
        .arg("--config")
        .arg(layout.config(name))
        .arg("--stop-on-stdin-eof")
        .stdin(Stdio::piped())
        .stdout(log)
        .stderr(log_err)
        // Its own process group: Ctrl-C reaches the launcher, which stops the
        // services in order, rather than every process at once.
        .process_group(0);
    // Each service its own audit log, whatever the launcher's environment says.
    command.env(AUDIT_LOG_ENV, layout.audit_log(name));
    // Only the CA opens the issuer keys, so only it is told where the token is.
    match &layout.softhsm_conf {
        Some(conf) if service.command == "ca" => {
            command.env(basalt_ca::softhsm::CONF_ENV, conf);
        }
        _ => {
            command.env_remove(basalt_ca::softhsm::CONF_ENV);
        }
    }
    let mut child = tokio::process::Command::from(command)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting the {name} service"))?;
    let stdin = child.stdin.take();
    // Written on every start, so it always names the process running now. If
    // it cannot be written, `child` is dropped and so killed.
    let pid = child
        .id()
        .with_context(|| format!("the {name} service exited as it started"))?;
    // Renamed into place, so a reader never sees half a pid.
    let pid_file = layout.pid_file(name);
    let partial = pid_file.with_extension("pid.partial");
    write(&partial, &format!("{pid}\n"))?;
    std::fs::rename(&partial, &pid_file)
        .with_context(|| format!("writing {}", pid_file.display()))?;
    Ok(Process {
        service,
        child,
        stdin,
    })
}

/// Waits for the first service to exit; returns its index in `running`.
async fn first_exit(running: &mut [Process]) -> (usize, ExitStatus) {
    loop {
        for (index, process) in running.iter_mut().enumerate() {
            if let Ok(Some(status)) = process.child.try_wait() {
                return (index, status);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Closes every service's stdin (its stop signal), newest first, and waits;
/// removes the pid files, whose pids may soon belong to other processes.
async fn stop_all(layout: &Layout, mut running: Vec<Process>) {
    running.reverse();
    for process in &mut running {
        process.stdin = None;
    }
    for process in &mut running {
        match tokio::time::timeout(STOP_TIMEOUT, process.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!(
                    "basalt dev: the {} service did not stop; killing it",
                    process.service.name
                );
                let _ = process.child.kill().await;
            }
        }
        let _ = std::fs::remove_file(layout.pid_file(process.service.name));
    }
}

/// Polls every service until it answers: gRPC health for the gRPC services, a
/// TCP connection for the HTTP ones.
async fn wait_healthy(
    layout: &Layout,
    args: &DevArgs,
    ports: &Ports,
    services: &[Service],
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
    let tls = layout.tls("dev");
    for service in services {
        let name = service.name;
        loop {
            let healthy = match (service.health, ports.grpc(name)) {
                (Some(grpc_name), Some(address)) => {
                    let peer = GrpcClientConfig {
                        address: address.to_string(),
                        server_name: name.to_owned(),
                        timeout: ConfigDuration(Duration::from_secs(2)),
                    };
                    let channel = GrpcChannel::new(&peer, &tls)?;
                    channel.check_health(grpc_name).await.unwrap_or(false)
                }
                _ => {
                    let address = if name == "wfe" {
                        args.listen
                    } else {
                        ports.ocsp
                    };
                    tokio::net::TcpStream::connect(address).await.is_ok()
                }
            };
            if healthy {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the {name} service did not become healthy within {STARTUP_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

fn report_logs(layout: &Layout, services: &[Service]) {
    for service in services {
        eprintln!("--- {} ---", layout.log(service.name).display());
        tail(&layout.log(service.name));
    }
}

/// Prints the last lines of a log.
fn tail(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[lines.len().saturating_sub(20)..] {
        eprintln!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> DevArgs {
        DevArgs {
            data_dir: PathBuf::from("/var/lib/basalt dev"),
            listen: "127.0.0.1:14000".parse().unwrap(),
            dns_resolver: Some("127.0.0.1:8053".into()),
            http01_port: 5002,
            tlsalpn01_port: 5001,
            allow_private_addresses: true,
            port_base: 14100,
            base_url: None,
            api_names: Vec::new(),
            prepare_only: false,
            db: None,
            eab_required: false,
            default_profile: DEFAULT_PROFILE.to_owned(),
            ocsp_url: None,
            crl_period: DEFAULT_CRL_PERIOD.parse().unwrap(),
            remote_vas: DEFAULT_REMOTE_VAS,
            ca_keys: CaKeys::File,
            ocsp_signer: OcspSigners::Issuer,
            rate_limits: RateLimits::Memory,
            redis_url: DEFAULT_REDIS_URL.to_owned(),
            rate_limit: Vec::new(),
            otlp_endpoint: None,
            caa_recheck_after: "7h".parse().unwrap(),
            issuance_wait: "5s".parse().unwrap(),
            validation_wait: "1s".parse().unwrap(),
        }
    }

    /// Where `args`' keys are, as [`prepare`] would find them.
    fn key_store(args: &DevArgs) -> DevKeyStore {
        let keys = args.data_dir.join("ca-keys");
        match args.ca_keys {
            CaKeys::File => DevKeyStore::Files(keys),
            CaKeys::Softhsm => DevKeyStore::Token {
                module: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
                token_label: DEV_TOKEN_LABEL.to_owned(),
                pin_file: keys.join("softhsm-user.pin"),
            },
        }
    }

    fn softhsm_args() -> DevArgs {
        DevArgs {
            ca_keys: CaKeys::Softhsm,
            ..args()
        }
    }

    /// The key prefix the tests' configs are rendered with.
    const TEST_KEY_PREFIX: &str = "basalt-dev-0123456789abcdef";

    fn configs() -> Vec<(&'static str, String)> {
        configs_with(&args())
    }

    fn configs_with(args: &DevArgs) -> Vec<(&'static str, String)> {
        let layout = Layout::new(args.data_dir.clone());
        let ports = Ports::new(args.port_base, args.remote_vas).unwrap();
        render_configs(&layout, args, &ports, &key_store(args), TEST_KEY_PREFIX)
    }

    fn config<T: serde::de::DeserializeOwned>(configs: &[(&str, String)], name: &str) -> T {
        let (_, text) = configs
            .iter()
            .find(|(service, _)| *service == name)
            .unwrap_or_else(|| panic!("no {name}.toml"));
        basalt_config::parse(text).unwrap_or_else(|err| panic!("{name}.toml: {err}\n{text}"))
    }

    /// The service called `name` among those of a lab with the default remotes.
    fn service(name: &str) -> Service {
        services(DEFAULT_REMOTE_VAS)
            .into_iter()
            .find(|service| service.name == name)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    #[test]
    fn generated_configs_parse_as_each_service_expects() {
        for (service, text) in configs().into_iter().chain(configs_with(&softhsm_args())) {
            let parsed = match service {
                "sa" => basalt_config::parse::<basalt_sa::SaConfig>(&text).map(drop),
                "ca" => basalt_config::parse::<basalt_ca::CaConfig>(&text).map(drop),
                "va" | "va-remote-1" | "va-remote-2" | "va-remote-3" => {
                    basalt_config::parse::<basalt_va::VaConfig>(&text).map(drop)
                }
                "ra" => basalt_config::parse::<basalt_ra::RaConfig>(&text)
                    .and_then(|config| config.validate()),
                "wfe" => basalt_config::parse::<basalt_wfe::WfeConfig>(&text).map(drop),
                "ocsp" => basalt_config::parse::<basalt_ocsp::OcspConfig>(&text).map(drop),
                "nonce" => basalt_config::parse::<basalt_nonce::NonceConfig>(&text).map(drop),
                "admin" => basalt_config::parse::<crate::admin::AdminConfig>(&text).map(drop),
                other => panic!("unexpected service {other}"),
            };
            parsed.unwrap_or_else(|err| panic!("{service}.toml: {err}\n{text}"));
        }
    }

    #[test]
    fn every_generated_config_belongs_to_a_service() {
        for remote_vas in [0, DEFAULT_REMOTE_VAS, REMOTE_VAS.len()] {
            let args = DevArgs {
                remote_vas,
                ..args()
            };
            let mut written: Vec<&str> = configs_with(&args).into_iter().map(|(s, _)| s).collect();
            written.retain(|name| *name != "admin");
            written.sort_unstable();
            let mut started: Vec<&str> = services(remote_vas).iter().map(|s| s.name).collect();
            started.sort_unstable();
            assert_eq!(written, started, "with {remote_vas} remote VAs");
        }
    }

    #[test]
    fn the_remote_vas_start_before_the_va_that_asks_them() {
        let names: Vec<&str> = services(3).iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "sa",
                "ca",
                "va-remote-1",
                "va-remote-2",
                "va-remote-3",
                "va",
                "ra",
                "ocsp",
                "nonce",
                "wfe"
            ]
        );
        let remote = service("va-remote-2");
        assert_eq!(remote.command, "va");
        assert_eq!(remote.health, Some(service_names::VALIDATION));
        assert_eq!(services(0).len(), SERVICES.len());
    }

    #[test]
    fn the_va_asks_each_remote_in_a_region_of_its_own() {
        let configs = configs();
        let va: basalt_va::VaConfig = config(&configs, "va");
        assert_eq!(va.remote_timeout.0, Duration::from_secs(5));
        let remotes: Vec<(&str, &str, &str, &str)> = va
            .remote
            .iter()
            .map(|r| {
                (
                    r.name.as_str(),
                    r.region.as_str(),
                    r.address.as_str(),
                    r.server_name.as_str(),
                )
            })
            .collect();
        assert_eq!(
            remotes,
            [
                ("va-remote-1", "region-1", "127.0.0.1:14106", "va-remote-1"),
                ("va-remote-2", "region-2", "127.0.0.1:14107", "va-remote-2"),
                ("va-remote-3", "region-3", "127.0.0.1:14108", "va-remote-3"),
            ]
        );
        assert_eq!(
            va.grpc.allowed_clients[service_names::VALIDATION],
            vec!["ra"]
        );
    }

    #[test]
    fn a_remote_va_answers_only_the_va_and_validates_as_it_does() {
        let configs = configs();
        let va: basalt_va::VaConfig = config(&configs, "va");
        for (index, name) in REMOTE_VAS.iter().take(DEFAULT_REMOTE_VAS).enumerate() {
            let remote: basalt_va::VaConfig = config(&configs, name);
            assert!(remote.remote.is_empty(), "{name} asks remotes of its own");
            let allowed = &remote.grpc.allowed_clients;
            assert_eq!(allowed[service_names::VALIDATION], vec!["va"], "{name}");
            assert_eq!(allowed.len(), 1, "{name}");
            let port = 14100 + u16::try_from(FIXED_PORTS + index).unwrap();
            assert_eq!(remote.grpc.listen, SocketAddr::from(([127, 0, 0, 1], port)));
            assert_eq!(
                remote.tls.cert,
                PathBuf::from(format!("/var/lib/basalt dev/pki/{name}.pem"))
            );
            assert_eq!(remote.dns, va.dns, "{name}");
            assert_eq!(remote.http01, va.http01, "{name}");
            assert_eq!(remote.tlsalpn01, va.tlsalpn01, "{name}");
            assert_eq!(remote.caa, va.caa, "{name}");
            assert_eq!(
                remote.allow_private_addresses, va.allow_private_addresses,
                "{name}"
            );
        }
    }

    #[test]
    fn no_remote_vas_turn_multi_perspective_validation_off() {
        let args = DevArgs {
            remote_vas: 0,
            ..args()
        };
        let configs = configs_with(&args);
        let va: basalt_va::VaConfig = config(&configs, "va");
        assert!(va.remote.is_empty());
        assert!(
            configs
                .iter()
                .all(|(name, _)| !name.starts_with("va-remote"))
        );
        assert_eq!(internal_names(0), INTERNAL_NAMES);
    }

    #[test]
    fn each_remote_va_has_a_certificate_and_a_port_after_the_fixed_ones() {
        let names = internal_names(3);
        assert_eq!(
            names[INTERNAL_NAMES.len()..],
            ["va-remote-1", "va-remote-2", "va-remote-3"]
        );
        let ports = Ports::new(14100, 9).unwrap();
        assert_eq!(ports.nonce.port(), 14105);
        assert_eq!(ports.grpc("va-remote-1").unwrap().port(), 14106);
        assert_eq!(ports.grpc("va-remote-9").unwrap().port(), 14114);
        assert_eq!(Ports::new(14100, 3).unwrap().grpc("va-remote-4"), None);

        assert!(Ports::new(u16::MAX - 18, 3).is_ok());
        let err = Ports::new(u16::MAX - 18, 4).err().unwrap();
        assert_eq!(
            err.to_string(),
            format!("--port-base {} leaves no room for 21 ports", u16::MAX - 18)
        );
    }

    #[test]
    fn every_process_has_a_debug_port_after_the_grpc_ones() {
        // 13 + 2R ports: the gRPC block (6 + R), then one debug port per process.
        let ports = Ports::new(14100, 3).unwrap();
        let order = [
            "sa",
            "ra",
            "va",
            "ca",
            "wfe",
            "ocsp",
            "nonce",
            "va-remote-1",
            "va-remote-2",
            "va-remote-3",
        ];
        for (index, name) in order.iter().enumerate() {
            let expected = 14100 + 9 + u16::try_from(index).unwrap();
            assert_eq!(ports.debug(name).unwrap().port(), expected, "{name}");
        }
        assert_eq!(ports.debug("va-remote-4"), None);
        assert_eq!(ports.debug("admin"), None);
        let none = Ports::new(14100, 0).unwrap();
        assert_eq!(none.debug("sa").unwrap().port(), 14106);
        assert_eq!(none.debug("nonce").unwrap().port(), 14112);
        assert_eq!(none.debug("va-remote-1"), None);

        let args = DevArgs {
            otlp_endpoint: Some("http://127.0.0.1:4317".to_owned()),
            ..args()
        };
        for (name, text) in &configs_with(&args) {
            if *name == "admin" {
                assert!(!text.contains("[telemetry]"), "{text}");
                continue;
            }
            let telemetry = config_telemetry(name, text);
            assert_eq!(telemetry.debug_listen, ports.debug(name), "{name}");
            assert_eq!(
                telemetry.otlp_endpoint.as_deref(),
                Some("http://127.0.0.1:4317"),
                "{name}"
            );
        }
        // Without the flag, no trace is exported.
        for (name, text) in configs() {
            if name != "admin" {
                assert_eq!(config_telemetry(name, &text).otlp_endpoint, None, "{name}");
            }
        }
        let banner = metrics_banner(&ports, &services(3));
        assert!(
            banner.ends_with(
                ": sa=http://127.0.0.1:14109/metrics ra=http://127.0.0.1:14110/metrics \
                 va=http://127.0.0.1:14111/metrics ca=http://127.0.0.1:14112/metrics \
                 wfe=http://127.0.0.1:14113/metrics ocsp=http://127.0.0.1:14114/metrics \
                 nonce=http://127.0.0.1:14115/metrics va-remote-1=http://127.0.0.1:14116/metrics \
                 va-remote-2=http://127.0.0.1:14117/metrics va-remote-3=http://127.0.0.1:14118/metrics"
            ),
            "{banner}"
        );
        assert!(otlp_endpoint("http://collector:4317").is_ok());
        assert!(otlp_endpoint("collector:4317").is_err());
    }

    /// The `[telemetry]` block of the generated config of process `name`.
    fn config_telemetry(name: &str, text: &str) -> basalt_config::TelemetryConfig {
        match name {
            "sa" => basalt_config::parse::<basalt_sa::SaConfig>(text).map(|c| c.telemetry),
            "ca" => basalt_config::parse::<basalt_ca::CaConfig>(text).map(|c| c.telemetry),
            "ra" => basalt_config::parse::<basalt_ra::RaConfig>(text).map(|c| c.telemetry),
            "wfe" => basalt_config::parse::<basalt_wfe::WfeConfig>(text).map(|c| c.telemetry),
            "ocsp" => basalt_config::parse::<basalt_ocsp::OcspConfig>(text).map(|c| c.telemetry),
            "nonce" => basalt_config::parse::<basalt_nonce::NonceConfig>(text).map(|c| c.telemetry),
            _ => basalt_config::parse::<basalt_va::VaConfig>(text).map(|c| c.telemetry),
        }
        .unwrap_or_else(|err| panic!("{name}: {err}"))
    }

    #[test]
    fn the_caa_recheck_delay_reaches_the_ra() {
        assert_eq!(
            ra_config(&[]).caa_recheck_after.0,
            Duration::from_secs(7 * 3600)
        );
        assert_eq!(
            ra_config(&["--caa-recheck-after", "0s"])
                .caa_recheck_after
                .0,
            Duration::ZERO
        );
    }

    #[test]
    fn the_waits_reach_the_ra() {
        let settings = ra_config(&[]).settings();
        assert_eq!(
            (settings.issuance_wait, settings.validation_wait),
            (Duration::from_secs(5), Duration::from_secs(1))
        );
        let settings =
            ra_config(&["--issuance-wait", "0s", "--validation-wait", "250ms"]).settings();
        assert_eq!(
            (settings.issuance_wait, settings.validation_wait),
            (Duration::ZERO, Duration::from_millis(250))
        );
        // Past the RA's bound, the RA's own check refuses the flag before anything
        // starts.
        let args = dev_args(&["--issuance-wait", "11s"]).unwrap();
        let (_, text) = configs_with(&args)
            .into_iter()
            .find(|(service, _)| *service == "ra")
            .unwrap();
        let err = check_ra_config(&text).unwrap_err().to_string();
        assert!(err.contains("issuance_wait must be at most 10s"), "{err}");
    }

    #[test]
    fn the_remote_va_count_is_bounded() {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            dev: DevArgs,
        }
        use clap::Parser;

        let parse = |flags: &[&str]| {
            Cli::try_parse_from(std::iter::once("dev").chain(flags.iter().copied()))
                .map(|cli| cli.dev.remote_vas)
                .map_err(|err| err.to_string())
        };
        assert_eq!(parse(&[]), Ok(3));
        for count in [0, 2, 9] {
            assert_eq!(parse(&["--remote-vas", &count.to_string()]), Ok(count));
        }
        let err = parse(&["--remote-vas", "10"]).unwrap_err();
        assert!(err.contains("at most 9 remote VAs"), "{err}");
        let err = parse(&["--remote-vas", "1"]).unwrap_err();
        assert!(
            err.contains("one remote VA can never make a quorum"),
            "{err}"
        );
        let err = parse(&["--remote-vas", "three"]).unwrap_err();
        assert!(err.contains("expected a number"), "{err}");
    }

    #[tokio::test]
    async fn a_remote_va_runs_as_a_va_with_its_own_config_log_and_pid_file() {
        let (layout, exe) = fake_service("remote-va", "echo \"started: $*\"; exec cat >/dev/null");
        let running = vec![start(&exe, &layout, service("va-remote-2")).unwrap()];
        let log = layout.log("va-remote-2");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::read_to_string(&log).unwrap_or_default().is_empty() {
            assert!(Instant::now() < deadline, "the remote VA never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            format!(
                "started: va --config {} --stop-on-stdin-eof\n",
                layout.config("va-remote-2").display()
            )
        );
        assert_eq!(pid_in_file(&layout, "va-remote-2"), running[0].child.id());

        stop_all(&layout, running).await;
        assert!(
            !layout.pid_file("va-remote-2").exists(),
            "pid file left behind"
        );
        std::fs::remove_dir_all(&layout.root).unwrap();
    }

    #[test]
    fn the_wfe_offers_the_cross_signed_chain() {
        let (_, wfe) = configs().into_iter().find(|(s, _)| *s == "wfe").unwrap();
        let config: basalt_wfe::WfeConfig = basalt_config::parse(&wfe).unwrap();
        assert_eq!(
            config.alternate_chains,
            vec![PathBuf::from("/var/lib/basalt dev/pki/intermediate-x2.pem")]
        );
        assert!(config.directory.caa_identities.is_empty());
    }

    #[test]
    fn a_budget_allows_max_restarts_within_its_window() {
        let start = Instant::now();
        let mut budget = RestartBudget::new(3, Duration::from_secs(60));
        for second in [0, 1, 2] {
            assert!(budget.spend(start + Duration::from_secs(second)));
        }
        assert!(!budget.spend(start + Duration::from_secs(3)));
        assert!(!budget.spend(start + Duration::from_secs(59)));
    }

    #[test]
    fn restarts_older_than_the_window_are_forgotten() {
        let start = Instant::now();
        let mut budget = RestartBudget::new(2, Duration::from_secs(60));
        assert!(budget.spend(start));
        assert!(budget.spend(start + Duration::from_secs(30)));
        assert!(!budget.spend(start + Duration::from_secs(59)));
        // The first restart has left the window, the second has not.
        assert!(budget.spend(start + Duration::from_secs(60)));
        assert!(!budget.spend(start + Duration::from_secs(61)));
        assert!(budget.spend(start + Duration::from_secs(90)));
    }

    #[test]
    fn a_refused_restart_is_not_recorded() {
        let start = Instant::now();
        let mut budget = RestartBudget::new(1, Duration::from_secs(10));
        assert!(budget.spend(start));
        for second in 1..10 {
            assert!(!budget.spend(start + Duration::from_secs(second)));
        }
        // Had the refusals counted, the window would still be full.
        assert!(budget.spend(start + Duration::from_secs(10)));
    }

    #[test]
    fn a_zero_budget_refuses_every_restart() {
        let mut budget = RestartBudget::new(0, Duration::from_secs(60));
        assert!(!budget.spend(Instant::now()));
    }

    /// A data directory with an executable `fake-basalt` that runs `script` (sh),
    /// standing in for the basalt binary.
    fn fake_service(name: &str, script: &str) -> (Layout, PathBuf) {
        use std::os::unix::fs::PermissionsExt;

        let root = std::env::temp_dir().join(format!("basalt-dev-{name}-{}", std::process::id()));
        for dir in ["logs", "run"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        let exe = root.join("fake-basalt");
        std::fs::write(&exe, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        (Layout::new(root), exe)
    }

    fn pid_in_file(layout: &Layout, service: &str) -> Option<u32> {
        std::fs::read_to_string(layout.pid_file(service))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    #[tokio::test]
    async fn a_service_that_dies_is_restarted_with_the_same_command_and_log() {
        // Dies on its first start, then runs until its stdin closes.
        let (layout, exe) = fake_service(
            "restart",
            r#"echo "started: $*"
if [ ! -e "$0.died" ]; then touch "$0.died"; exit 3; fi
exec cat >/dev/null"#,
        );
        let mut running = vec![start(&exe, &layout, service("nonce")).unwrap()];
        let first_pid = pid_in_file(&layout, "nonce").unwrap();

        let log = layout.log("nonce");
        let restarted = async {
            while std::fs::read_to_string(&log).unwrap().lines().count() < 2 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let supervised = tokio::time::timeout(
            Duration::from_secs(30),
            supervise(&exe, &layout, &mut running, restarted),
        )
        .await;
        supervised.unwrap().unwrap();

        let second_pid = pid_in_file(&layout, "nonce").unwrap();
        assert_ne!(first_pid, second_pid);
        assert_eq!(running[0].child.id(), Some(second_pid));
        assert_eq!(running[0].child.try_wait().unwrap(), None, "not running");
        let config = layout.config("nonce");
        let line = format!(
            "started: nonce --config {} --stop-on-stdin-eof",
            config.display()
        );
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            format!("{line}\n{line}\n")
        );

        stop_all(&layout, running).await;
        assert!(!layout.pid_file("nonce").exists(), "pid file left behind");
        std::fs::remove_dir_all(&layout.root).unwrap();
    }

    #[tokio::test]
    async fn a_service_that_keeps_dying_is_given_up_on() {
        let (layout, exe) = fake_service("crash-loop", "echo started; exit 3");
        let mut running = vec![start(&exe, &layout, service("nonce")).unwrap()];
        // Five restarts at RESTART_DELAY apart all fall within one budget window.
        let err = supervise(&exe, &layout, &mut running, std::future::pending())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "the nonce service keeps dying");
        let starts = std::fs::read_to_string(layout.log("nonce")).unwrap();
        assert_eq!(starts.lines().count(), 1 + MAX_RESTARTS, "{starts}");

        stop_all(&layout, running).await;
        std::fs::remove_dir_all(&layout.root).unwrap();
    }

    #[test]
    fn the_api_url_is_reachable() {
        assert_eq!(
            api_base_url("0.0.0.0:443".parse().unwrap()),
            "https://127.0.0.1:443"
        );
        assert_eq!(
            api_base_url("[::1]:14000".parse().unwrap()),
            "https://[::1]:14000"
        );
    }

    #[test]
    fn the_lab_ra_issues_for_reserved_names_and_addresses() {
        let ra: basalt_ra::RaConfig = config(&configs(), "ra");
        ra.validate().unwrap();
        let settings = ra.settings();
        let names = [
            basalt_core::Identifier::dns("x.example"),
            basalt_core::Identifier::dns("localhost.localhost"),
        ];
        settings.profiles["classic"].policy.check(&names).unwrap();
        let ips = [basalt_core::Identifier::ip("127.0.0.1")];
        settings.profiles["shortlived"].policy.check(&ips).unwrap();
        // Public suffixes stay refused even in the lab.
        let err = settings.profiles["classic"]
            .policy
            .check(&[basalt_core::Identifier::dns("*.co.uk")])
            .unwrap_err();
        assert_eq!(err.kind, basalt_core::ErrorKind::RejectedIdentifier);
    }

    #[test]
    fn deploy_configs_parse_as_each_service_expects() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config");
        let load = |service: &str| dir.join(format!("{service}.toml"));
        basalt_config::load::<basalt_sa::SaConfig>(&load("sa")).unwrap();
        basalt_config::load::<basalt_ca::CaConfig>(&load("ca")).unwrap();
        let va = basalt_config::load::<basalt_va::VaConfig>(&load("va")).unwrap();
        // Each remote the primary asks, fixed or a pool's, has a config named after
        // it.
        let remotes: Vec<(&str, &str)> = va
            .remote
            .iter()
            .map(|remote| (remote.name.as_str(), remote.server_name.as_str()))
            .chain(
                va.remote_pool
                    .iter()
                    .map(|pool| (pool.prefix(), pool.server_name.as_str())),
            )
            .collect();
        for (name, server_name) in &remotes {
            // It asks no one itself and answers the primary alone, with the
            // certificate the primary expects.
            let config = basalt_config::load::<basalt_va::VaConfig>(&load(name)).unwrap();
            assert!(
                config.remote.is_empty() && config.remote_pool.is_empty(),
                "{name}"
            );
            assert_eq!(
                config.grpc.allowed_clients[service_names::VALIDATION],
                vec!["va"],
                "{name}"
            );
            assert_eq!(
                config.tls.cert.file_stem().unwrap().to_str().unwrap(),
                *server_name,
                "{name}"
            );
        }
        // The lab variants of the VAs' configs (docker-compose.yml's lab profile).
        let labs = ["va-lab", "va-remote-lab"];
        for lab in labs {
            basalt_config::load::<basalt_va::VaConfig>(&load(lab)).unwrap();
        }
        basalt_config::load::<basalt_ra::RaConfig>(&load("ra"))
            .unwrap()
            .validate()
            .unwrap();
        basalt_config::load::<basalt_wfe::WfeConfig>(&load("wfe")).unwrap();
        basalt_config::load::<basalt_ocsp::OcspConfig>(&load("ocsp")).unwrap();
        basalt_config::load::<basalt_nonce::NonceConfig>(&load("nonce")).unwrap();
        basalt_config::load::<crate::admin::AdminConfig>(&load("admin")).unwrap();
        let count = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(
            count,
            8 + remotes.len() + labs.len(),
            "a config in deploy/config is not checked here"
        );
    }

    #[test]
    fn only_the_ca_config_names_the_issuer_keys() {
        let delegated = |args: DevArgs| DevArgs {
            ocsp_signer: OcspSigners::Delegated,
            ..args
        };
        for args in [
            args(),
            softhsm_args(),
            delegated(args()),
            delegated(softhsm_args()),
        ] {
            for (service, text) in configs_with(&args) {
                let ca = service == "ca";
                assert_eq!(text.contains("ca-keys"), ca, "{service}.toml:\n{text}");
                assert_eq!(
                    text.contains("pkcs11"),
                    ca && args.ca_keys == CaKeys::Softhsm,
                    "{service}.toml:\n{text}"
                );
                assert!(!text.contains("root-ecdsa.key"), "{service}.toml:\n{text}");
            }
        }
    }

    #[test]
    fn the_ca_issues_from_the_ecdsa_then_the_rsa_intermediate() {
        let pki = PathBuf::from("/var/lib/basalt dev/pki");
        let keys = PathBuf::from("/var/lib/basalt dev/ca-keys");
        let file: basalt_ca::CaConfig = config(&configs(), "ca");
        let token: basalt_ca::CaConfig = config(&configs_with(&softhsm_args()), "ca");
        for config in [&file, &token] {
            assert_eq!(config.issuers.len(), 2);
            for (issuer, name) in config.issuers.iter().zip(["ecdsa", "rsa"]) {
                assert_eq!(issuer.cert, pki.join(format!("intermediate-{name}.pem")));
                assert_eq!(
                    issuer.issuer_url.as_deref(),
                    Some(format!("http://127.0.0.1:14104/issuers/{name}.der").as_str())
                );
                assert!(issuer.chain.is_empty(), "the roots are left out");
                assert_eq!(issuer.ocsp_signer, None, "the intermediate signs OCSP");
            }
        }
        for (index, name) in ["ecdsa", "rsa"].into_iter().enumerate() {
            let block = format!("issuers[{index}]");
            assert_eq!(
                file.issuers[index].key_source(&block),
                Ok(KeySource::File(
                    keys.join(format!("intermediate-{name}.key"))
                ))
            );
            assert_eq!(
                token.issuers[index].key_source(&block),
                Ok(KeySource::Pkcs11(basalt_ca::Pkcs11Config {
                    module: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
                    token_label: "basalt-dev".to_owned(),
                    key_label: format!("intermediate-{name}"),
                    pin_file: keys.join("softhsm-user.pin"),
                }))
            );
        }
        // The profiles' OCSP URL and the issuers' URLs share the responder's base.
        let args = DevArgs {
            ocsp_url: Some("http://ocsp.lab.example".to_owned()),
            ..args()
        };
        let ca: basalt_ca::CaConfig = config(&configs_with(&args), "ca");
        assert_eq!(
            ca.issuers[1].issuer_url.as_deref(),
            Some("http://ocsp.lab.example/issuers/rsa.der")
        );
        assert_eq!(
            ca.profiles["classic"].ocsp_url.as_deref(),
            Some("http://ocsp.lab.example")
        );
    }

    /// With `--ocsp-signer delegated`, each issuer's `ocsp_signer` names its
    /// delegated responder, its key beside the intermediate's (a file or a token
    /// object); the OCSP responder's config is the same either way.
    #[test]
    fn delegated_ocsp_signers_are_named_in_the_ca_config() {
        let pki = PathBuf::from("/var/lib/basalt dev/pki");
        let keys = PathBuf::from("/var/lib/basalt dev/ca-keys");
        let delegated = |args: DevArgs| DevArgs {
            ocsp_signer: OcspSigners::Delegated,
            ..args
        };
        let file: basalt_ca::CaConfig = config(&configs_with(&delegated(args())), "ca");
        let token: basalt_ca::CaConfig = config(&configs_with(&delegated(softhsm_args())), "ca");
        for (index, name) in ["ecdsa", "rsa"].into_iter().enumerate() {
            let block = format!("issuers[{index}].ocsp_signer");
            for config in [&file, &token] {
                config.validate(time::OffsetDateTime::UNIX_EPOCH).unwrap();
                let signer = config.issuers[index].ocsp_signer.as_ref().unwrap();
                assert_eq!(signer.cert, pki.join(format!("ocsp-signer-{name}.pem")));
                // The issuer's own key is still the intermediate's.
                assert_eq!(
                    config.issuers[index].cert,
                    pki.join(format!("intermediate-{name}.pem"))
                );
            }
            assert_eq!(
                file.issuers[index]
                    .ocsp_signer
                    .as_ref()
                    .unwrap()
                    .key_source(&block),
                Ok(KeySource::File(
                    keys.join(format!("ocsp-signer-{name}.key"))
                ))
            );
            assert_eq!(
                token.issuers[index]
                    .ocsp_signer
                    .as_ref()
                    .unwrap()
                    .key_source(&block),
                Ok(KeySource::Pkcs11(basalt_ca::Pkcs11Config {
                    module: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
                    token_label: "basalt-dev".to_owned(),
                    key_label: format!("ocsp-signer-{name}"),
                    pin_file: keys.join("softhsm-user.pin"),
                }))
            );
        }
        let ocsp = |args: &DevArgs| {
            configs_with(args)
                .into_iter()
                .find(|(service, _)| *service == "ocsp")
                .unwrap()
                .1
        };
        assert_eq!(ocsp(&delegated(args())), ocsp(&args()));

        let layout = Layout::new(PathBuf::from("/lab"));
        let banner =
            ocsp_signer_banner(&layout.issuing_pki(key_store(&args()), OcspSigners::Delegated));
        assert!(
            banner.contains("/lab/pki/ocsp-signer-ecdsa.pem /lab/pki/ocsp-signer-rsa.pem"),
            "{banner}"
        );
        let banner =
            ocsp_signer_banner(&layout.issuing_pki(key_store(&args()), OcspSigners::Issuer));
        assert!(banner.contains("the intermediates"), "{banner}");
    }

    #[test]
    fn the_ocsp_signer_flag_is_issuer_or_delegated() {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            dev: DevArgs,
        }
        use clap::Parser;

        let parse = |flags: &[&str]| {
            Cli::try_parse_from(std::iter::once("dev").chain(flags.iter().copied()))
                .map(|cli| cli.dev.ocsp_signer)
                .map_err(|err| err.to_string())
        };
        assert_eq!(parse(&[]), Ok(OcspSigners::Issuer));
        assert_eq!(parse(&["--ocsp-signer", "issuer"]), Ok(OcspSigners::Issuer));
        assert_eq!(
            parse(&["--ocsp-signer", "delegated"]),
            Ok(OcspSigners::Delegated)
        );
        let err = parse(&["--ocsp-signer", "responder"]).unwrap_err();
        assert!(err.contains("issuer") && err.contains("delegated"), "{err}");
    }

    /// Checks that the CA's and the RA's profiles have the same names, identifier
    /// types and name limits, and returns the CA's.
    fn agreeing_profiles(
        ca: &basalt_ca::CaConfig,
        ra: &basalt_ra::RaConfig,
    ) -> basalt_ca::Profiles {
        use basalt_core::IdentifierType;

        // 2026-06-01, when the Baseline Requirements allow 200-day leaves.
        let now = time::OffsetDateTime::from_unix_timestamp(1_780_272_000).unwrap();
        let profiles = ca.to_profiles(now).unwrap();
        let ca_names: Vec<&String> = profiles.by_name().keys().collect();
        let ra_names: Vec<&String> = ra.profiles.keys().collect();
        assert_eq!(ca_names, ra_names);
        for (name, profile) in profiles.by_name() {
            let ra_profile = &ra.profiles[name];
            let expected = if ra_profile.allow_ip_identifiers {
                vec![IdentifierType::Dns, IdentifierType::Ip]
            } else {
                vec![IdentifierType::Dns]
            };
            assert_eq!(profile.identifier_types, expected, "{name}");
            assert_eq!(profile.max_names, ra_profile.max_names, "{name}");
        }
        assert!(
            profiles.by_name()["shortlived"]
                .identifier_types
                .contains(&IdentifierType::Ip)
        );
        profiles
    }

    #[test]
    fn the_ca_and_the_ra_profiles_allow_the_same_identifier_types() {
        let profiles = agreeing_profiles(&config(&configs(), "ca"), &config(&configs(), "ra"));
        // classic is shaped like Let's Encrypt's classic profile, the others like
        // its newer ones.
        let classic = &profiles.by_name()["classic"];
        assert!(classic.common_name && classic.key_encipherment);
        for name in ["modern", "shortlived"] {
            let profile = &profiles.by_name()[name];
            assert!(!profile.common_name && !profile.key_encipherment, "{name}");
        }

        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config");
        let ca = basalt_config::load::<basalt_ca::CaConfig>(&dir.join("ca.toml")).unwrap();
        let ra = basalt_config::load::<basalt_ra::RaConfig>(&dir.join("ra.toml")).unwrap();
        agreeing_profiles(&ca, &ra);
    }

    #[test]
    fn the_ocsp_responder_serves_both_intermediates() {
        let ocsp: basalt_ocsp::OcspConfig = config(&configs(), "ocsp");
        let issuers: Vec<(PathBuf, Option<String>)> = ocsp
            .issuers
            .iter()
            .map(|issuer| (issuer.cert.clone(), issuer.path.clone()))
            .collect();
        assert_eq!(
            issuers,
            [
                (
                    PathBuf::from("/var/lib/basalt dev/pki/intermediate-ecdsa.pem"),
                    Some("/issuers/ecdsa.der".to_owned())
                ),
                (
                    PathBuf::from("/var/lib/basalt dev/pki/intermediate-rsa.pem"),
                    Some("/issuers/rsa.der".to_owned())
                ),
            ]
        );
    }

    #[test]
    fn each_intermediate_publishes_four_crl_shards_that_the_responder_serves() {
        let configs = configs();
        let ca: basalt_ca::CaConfig = config(&configs, "ca");
        assert_eq!(ca.crl.shards, 4);
        assert_eq!(ca.crl.lifetime.0, Duration::from_secs(7 * 86_400));
        let now = time::OffsetDateTime::from_unix_timestamp(1_780_272_000).unwrap();
        ca.validate(now).unwrap();
        let ocsp: basalt_ocsp::OcspConfig = config(&configs, "ocsp");
        ocsp.validate().unwrap();
        assert_eq!(
            ocsp.crl_settings(),
            Some(basalt_ocsp::CrlSettings {
                shards: 4,
                period: Duration::from_secs(300),
                delay: Duration::from_secs(1),
            })
        );
        for (index, name) in ["ecdsa", "rsa"].into_iter().enumerate() {
            // The CA names each shard under the URL where the responder serves it.
            assert_eq!(
                ca.issuers[index].crl_url_base.as_deref(),
                Some(format!("http://127.0.0.1:14104/crl/{name}/").as_str())
            );
            assert_eq!(ocsp.issuers[index].cert, ca.issuers[index].cert);
            assert_eq!(
                ocsp.issuers[index].crl_path.as_deref(),
                Some(format!("/crl/{name}/").as_str())
            );
        }

        // `--ocsp-url` moves the CRLs with it; `--crl-period` sets the period.
        let args = dev_args(&[
            "--ocsp-url",
            "http://ocsp.lab.example/",
            "--crl-period",
            "2s",
        ])
        .unwrap();
        let configs = configs_with(&args);
        let ca: basalt_ca::CaConfig = config(&configs, "ca");
        assert_eq!(
            ca.issuers[1].crl_url_base.as_deref(),
            Some("http://ocsp.lab.example/crl/rsa/")
        );
        let ocsp: basalt_ocsp::OcspConfig = config(&configs, "ocsp");
        ocsp.validate().unwrap();
        assert_eq!(ocsp.crl_settings().unwrap().period, Duration::from_secs(2));
        assert_eq!(ocsp.issuers[1].crl_path.as_deref(), Some("/crl/rsa/"));
        assert_eq!(
            crl_banner(&args, &Ports::new(14100, 3).unwrap(), &["ecdsa", "rsa"]),
            "CRLs: http://ocsp.lab.example/crl/ecdsa/{0..3}.crl \
             http://ocsp.lab.example/crl/rsa/{0..3}.crl (every 2s and 1s after a revocation)"
        );
    }

    #[test]
    fn the_deploy_ca_and_ocsp_configs_agree_on_crls() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config");
        let ca = basalt_config::load::<basalt_ca::CaConfig>(&dir.join("ca.toml")).unwrap();
        let ocsp = basalt_config::load::<basalt_ocsp::OcspConfig>(&dir.join("ocsp.toml")).unwrap();
        ocsp.validate().unwrap();
        let settings = ocsp
            .crl_settings()
            .expect("the deploy responder serves CRLs");
        assert_eq!(settings.shards, ca.crl.shards);
        assert_eq!(ca.issuers.len(), ocsp.issuers.len());
        for (ca_issuer, ocsp_issuer) in ca.issuers.iter().zip(&ocsp.issuers) {
            assert_eq!(ca_issuer.cert, ocsp_issuer.cert);
            // The responder serves each shard at the path of the URL the CA writes.
            let base = ca_issuer.crl_url_base.as_deref().unwrap();
            let path = base
                .strip_prefix("http://")
                .and_then(|rest| rest.find('/').map(|slash| &rest[slash..]))
                .unwrap();
            assert_eq!(ocsp_issuer.crl_path.as_deref(), Some(path));
        }
    }

    #[test]
    fn the_crl_period_is_bounded() {
        assert_eq!(
            dev_args(&[]).unwrap().crl_period.0,
            Duration::from_secs(300)
        );
        assert_eq!(
            dev_args(&["--crl-period", "1d"]).unwrap().crl_period.0,
            Duration::from_secs(86_400)
        );
        assert_eq!(
            dev_args(&["--crl-period", "500ms"]).unwrap().crl_period.0,
            Duration::from_millis(500)
        );
        for (bad, problem) in [
            ("0s", "the CRL period must be above 0 and at most 1d"),
            ("25h", "the CRL period must be above 0 and at most 1d"),
            ("soon", "invalid duration"),
        ] {
            let err = dev_args(&["--crl-period", bad]).unwrap_err();
            assert!(err.contains(problem), "{bad}: {err}");
        }
    }

    /// `prepare` on a fresh data directory under a temporary directory, with
    /// `fake-basalt` standing in for the basalt binary: it records each call (with
    /// its `SOFTHSM2_CONF`) in `fake-basalt.calls`, writes a stand-in certificate
    /// where the ceremony config says the certificate goes, and exits with `status`.
    fn prepare_with(name: &str, ca_keys: CaKeys, status: u8) -> (DevArgs, PathBuf) {
        let (layout, exe) = fake_service(
            name,
            &format!(
                r#"echo "$* conf=${{SOFTHSM2_CONF-unset}}" >> "$0.calls"
cert=$(sed -n 's/^certificate = "\(.*\)"$/\1/p' "$4" | tail -n 1)
[ {status} -eq 0 ] || {{ echo "no such key" >&2; exit {status}; }}
echo "stand-in certificate of $2" > "$cert"
echo "$2 ceremony: certificate made and verified""#
            ),
        );
        let args = DevArgs {
            data_dir: layout.root.join("data"),
            ca_keys,
            ..args()
        };
        (args, exe)
    }

    fn calls(exe: &Path) -> Vec<String> {
        std::fs::read_to_string(exe.with_file_name("fake-basalt.calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_ceremonies_run_once_as_child_processes() {
        let (args, exe) = prepare_with("ceremonies", CaKeys::File, 0);
        let layout = Layout::new(args.data_dir.clone());
        let keys = prepare(&layout, &args, &exe).unwrap();
        assert_eq!(keys.store, DevKeyStore::Files(layout.root.join("ca-keys")));
        assert_eq!(keys.softhsm_conf, None);
        let expected: Vec<String> = [
            ("root", "root-ecdsa"),
            ("intermediate", "intermediate-ecdsa"),
            ("root", "root-rsa"),
            ("intermediate", "intermediate-rsa"),
            ("root", "root-x2"),
            ("cross-sign", "intermediate-x2"),
        ]
        .iter()
        .map(|(kind, name)| {
            format!(
                "ceremony {kind} --config {} conf=unset",
                layout.ceremony(name).display()
            )
        })
        .collect();
        assert_eq!(calls(&exe), expected);
        assert!(layout.audit_dir().is_dir(), "no audit directory");
        // Each config is kept, and is what `basalt ceremony` parses.
        let root = std::fs::read_to_string(layout.ceremony("root-rsa")).unwrap();
        let parsed =
            basalt_ca::ceremony::Ceremony::parse(basalt_ca::ceremony::CeremonyKind::Root, &root)
                .unwrap();
        assert_eq!(parsed.outputs(), [layout.pki("root-rsa.pem").as_path()]);
        assert!(root.contains("algorithm = \"rsa-4096\""), "{root}");
        // root.pem is both roots.
        assert_eq!(
            std::fs::read_to_string(layout.pki("root.pem")).unwrap(),
            "stand-in certificate of root\nstand-in certificate of root\n"
        );
        assert!(!layout.pki("intermediate.pem").exists());
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(layout.root.join("ca-keys"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }

        // A second run has nothing left to make.
        prepare(&layout, &args, &exe).unwrap();
        assert_eq!(calls(&exe).len(), expected.len());

        // A run with delegated OCSP responders makes just those, under their
        // intermediates; later runs, with or without them, make nothing.
        let delegated = DevArgs {
            data_dir: args.data_dir.clone(),
            ocsp_signer: OcspSigners::Delegated,
            ..self::args()
        };
        prepare(&layout, &delegated, &exe).unwrap();
        let signers: Vec<String> = ["ocsp-signer-ecdsa", "ocsp-signer-rsa"]
            .iter()
            .map(|name| {
                format!(
                    "ceremony ocsp-signer --config {} conf=unset",
                    layout.ceremony(name).display()
                )
            })
            .collect();
        assert_eq!(calls(&exe)[expected.len()..], signers);
        let text = std::fs::read_to_string(layout.ceremony("ocsp-signer-rsa")).unwrap();
        let Ok(basalt_ca::ceremony::Ceremony::OcspSigner(signer)) =
            basalt_ca::ceremony::Ceremony::parse(
                basalt_ca::ceremony::CeremonyKind::OcspSigner,
                &text,
            )
        else {
            panic!("not an ocsp-signer ceremony:\n{text}");
        };
        assert_eq!(
            signer.parent.certificate,
            layout.pki("intermediate-rsa.pem")
        );
        assert_eq!(
            signer.parent.key,
            Some(layout.issuer_keys("intermediate-rsa.key"))
        );
        assert_eq!(
            signer.new_key.key,
            Some(layout.issuer_keys("ocsp-signer-rsa.key"))
        );
        assert_eq!(signer.new_key.algorithm, basalt_ca::KeyAlgorithm::Rsa2048);
        assert_eq!(
            std::fs::read_to_string(layout.pki("ocsp-signer-ecdsa.pem")).unwrap(),
            "stand-in certificate of ocsp-signer\n"
        );
        prepare(&layout, &delegated, &exe).unwrap();
        prepare(&layout, &args, &exe).unwrap();
        assert_eq!(calls(&exe).len(), expected.len() + signers.len());
        let args = delegated;

        // Nor may it move the keys into a token.
        let switched = DevArgs {
            ca_keys: CaKeys::Softhsm,
            ..args
        };
        let err = prepare(&layout, &switched, &exe).err().unwrap().to_string();
        assert!(
            err.contains("keeps its CA keys in file") && err.contains("run with --ca-keys file"),
            "{err}"
        );
        assert!(!layout.root.join("softhsm").exists());
        std::fs::remove_dir_all(layout.root.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_failed_ceremony_stops_the_preparation() {
        let (args, exe) = prepare_with("failed-ceremony", CaKeys::File, 3);
        let layout = Layout::new(args.data_dir.clone());
        let err = prepare(&layout, &args, &exe).err().unwrap().to_string();
        assert!(err.contains("the root-ecdsa ceremony"), "{err}");
        assert!(err.contains("no such key"), "{err}");
        assert_eq!(calls(&exe).len(), 1, "nothing after a failure");
        std::fs::remove_dir_all(layout.root.parent().unwrap()).unwrap();
    }

    /// Needs SoftHSM2 (DESIGN.md lists it on every machine): fails without it.
    #[test]
    fn softhsm_keys_live_in_a_token_made_once() {
        let (args, exe) = prepare_with("softhsm", CaKeys::Softhsm, 0);
        let layout = Layout::new(args.data_dir.clone());
        let keys = prepare(&layout, &args, &exe).unwrap();
        let conf = keys.softhsm_conf.clone().unwrap();
        assert_eq!(
            conf,
            std::fs::canonicalize(layout.root.join("softhsm/softhsm2.conf")).unwrap()
        );
        let pin_file = layout.issuer_keys("softhsm-user.pin");
        assert_eq!(
            keys.store,
            DevKeyStore::Token {
                module: basalt_ca::softhsm::module_path().unwrap(),
                token_label: "basalt-dev".to_owned(),
                pin_file: pin_file.clone(),
            }
        );
        // Every ceremony ran with the token's configuration.
        let calls = calls(&exe);
        assert_eq!(calls.len(), 6);
        for call in &calls {
            assert!(
                call.ends_with(&format!("conf={}", conf.display())),
                "{call}"
            );
        }
        let text = std::fs::read_to_string(layout.ceremony("intermediate-ecdsa")).unwrap();
        let Ok(basalt_ca::ceremony::Ceremony::Intermediate(intermediate)) =
            basalt_ca::ceremony::Ceremony::parse(
                basalt_ca::ceremony::CeremonyKind::Intermediate,
                &text,
            )
        else {
            panic!("not an intermediate ceremony:\n{text}");
        };
        let new_key = intermediate.new_key.unwrap().pkcs11.unwrap();
        assert_eq!(new_key.key_label, "intermediate-ecdsa");
        assert_eq!(new_key.pin_file, pin_file);
        assert_eq!(intermediate.parent.pkcs11.unwrap().key_label, "root-ecdsa");
        // Random PINs, owner-only; the token exists.
        let mut pins = Vec::new();
        for file in ["softhsm-so.pin", "softhsm-user.pin"] {
            use std::os::unix::fs::PermissionsExt;
            let path = layout.issuer_keys(file);
            let pin = std::fs::read_to_string(&path).unwrap();
            assert!(
                pin.trim().len() == 32 && pin.trim().bytes().all(|b| b.is_ascii_hexdigit()),
                "{pin:?}"
            );
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
            pins.push(pin);
        }
        assert_ne!(pins[0], pins[1]);
        let tokens = || {
            std::fs::read_dir(layout.root.join("softhsm/tokens"))
                .unwrap()
                .count()
        };
        assert_eq!(tokens(), 1);

        // Again: the same PINs and token, no ceremony.
        prepare(&layout, &args, &exe).unwrap();
        assert_eq!(tokens(), 1);
        assert_eq!(self::calls(&exe).len(), 6);
        // Delegated OCSP responders get their keys in the same token.
        let delegated = DevArgs {
            ocsp_signer: OcspSigners::Delegated,
            ..args
        };
        prepare(&layout, &delegated, &exe).unwrap();
        let all = self::calls(&exe);
        assert_eq!(all.len(), 8);
        assert!(
            all[6..]
                .iter()
                .all(|call| call.starts_with("ceremony ocsp-signer")
                    && call.ends_with(&format!("conf={}", conf.display()))),
            "{all:?}"
        );
        let text = std::fs::read_to_string(layout.ceremony("ocsp-signer-ecdsa")).unwrap();
        let Ok(basalt_ca::ceremony::Ceremony::OcspSigner(signer)) =
            basalt_ca::ceremony::Ceremony::parse(
                basalt_ca::ceremony::CeremonyKind::OcspSigner,
                &text,
            )
        else {
            panic!("not an ocsp-signer ceremony:\n{text}");
        };
        assert_eq!(
            signer.new_key.pkcs11.unwrap().key_label,
            "ocsp-signer-ecdsa"
        );
        assert_eq!(
            signer.parent.pkcs11.unwrap().key_label,
            "intermediate-ecdsa"
        );
        let args = delegated;
        assert_eq!(
            std::fs::read_to_string(layout.issuer_keys("softhsm-user.pin")).unwrap(),
            pins[1]
        );
        let switched = DevArgs {
            ca_keys: CaKeys::File,
            ..args
        };
        let err = prepare(&layout, &switched, &exe).err().unwrap().to_string();
        assert!(err.contains("run with --ca-keys softhsm"), "{err}");
        std::fs::remove_dir_all(layout.root.parent().unwrap()).unwrap();
    }

    #[tokio::test]
    async fn only_the_ca_process_is_told_where_the_token_is() {
        let (mut layout, exe) = fake_service(
            "softhsm-env",
            "echo \"$1 conf=${SOFTHSM2_CONF-unset}\"; exec cat >/dev/null",
        );
        layout.softhsm_conf = Some(PathBuf::from("/lab/softhsm/softhsm2.conf"));
        let running = vec![
            start(&exe, &layout, service("ca")).unwrap(),
            start(&exe, &layout, service("nonce")).unwrap(),
        ];
        let deadline = Instant::now() + Duration::from_secs(30);
        for (name, expected) in [
            ("ca", "ca conf=/lab/softhsm/softhsm2.conf\n"),
            ("nonce", "nonce conf=unset\n"),
        ] {
            while std::fs::read_to_string(layout.log(name))
                .unwrap_or_default()
                .is_empty()
            {
                assert!(
                    Instant::now() < deadline,
                    "the {name} service never started"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(std::fs::read_to_string(layout.log(name)).unwrap(), expected);
        }
        stop_all(&layout, running).await;
        std::fs::remove_dir_all(&layout.root).unwrap();
    }

    #[test]
    fn ca_keys_are_in_files_unless_told() {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            dev: DevArgs,
        }
        use clap::Parser;

        let parse = |flags: &[&str]| {
            Cli::try_parse_from(std::iter::once("dev").chain(flags.iter().copied()))
                .map(|cli| cli.dev.ca_keys)
                .map_err(|err| err.to_string())
        };
        assert_eq!(parse(&[]), Ok(CaKeys::File));
        assert_eq!(parse(&["--ca-keys", "softhsm"]), Ok(CaKeys::Softhsm));
        assert_eq!(parse(&["--ca-keys", "file"]), Ok(CaKeys::File));
        assert!(parse(&["--ca-keys", "hsm"]).is_err());
    }

    #[test]
    fn the_admin_may_manage_the_sa() {
        let (_, sa) = configs().into_iter().find(|(s, _)| *s == "sa").unwrap();
        let config: basalt_sa::SaConfig = basalt_config::parse(&sa).unwrap();
        for service in [service_names::STORAGE, service_names::STORAGE_READ_ONLY] {
            assert!(config.grpc.allowed_clients[service].contains(&"admin".to_owned()));
        }
    }

    #[test]
    fn the_ca_answers_only_the_ra_and_the_ocsp_responder() {
        let (_, ca) = configs().into_iter().find(|(s, _)| *s == "ca").unwrap();
        let config: basalt_ca::CaConfig = basalt_config::parse(&ca).unwrap();
        let allowed = &config.grpc.allowed_clients;
        assert_eq!(allowed[service_names::CERTIFICATE_AUTHORITY], vec!["ra"]);
        assert_eq!(allowed[service_names::REVOCATION_SIGNER], vec!["ocsp"]);
        assert_eq!(allowed.len(), 2);
    }
    /// `basalt dev FLAGS…` as clap parses it.
    fn dev_args(flags: &[&str]) -> Result<DevArgs, String> {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            dev: DevArgs,
        }
        use clap::Parser;

        Cli::try_parse_from(std::iter::once("dev").chain(flags.iter().copied()))
            .map(|cli| cli.dev)
            .map_err(|err| err.to_string())
    }

    /// The RA's config for `flags`, as the RA reads and validates it.
    fn ra_config(flags: &[&str]) -> basalt_ra::RaConfig {
        let args = dev_args(flags).unwrap();
        let ra: basalt_ra::RaConfig = config(&configs_with(&args), "ra");
        ra.validate().unwrap();
        ra
    }

    /// One changed limit of the RA's config: name, count, period, burst.
    type ChangedLimit = (String, Option<u32>, Option<Duration>, Option<u32>);

    /// The limits the RA's config changes.
    fn changed_limits(ra: &basalt_ra::RaConfig) -> Vec<ChangedLimit> {
        ra.rate_limits
            .limits
            .iter()
            .map(|(name, limit)| {
                (
                    name.to_string(),
                    limit.count,
                    limit.period.map(|period| period.0),
                    limit.burst,
                )
            })
            .collect()
    }

    #[test]
    fn rate_limits_are_in_memory_with_the_default_limits_unless_told() {
        let ra = ra_config(&[]);
        let limits = &ra.rate_limits;
        assert!(limits.enabled);
        assert_eq!(limits.backend, basalt_ratelimit::Backend::Memory);
        assert!(limits.limits.is_empty(), "{limits:?}");
        assert!(limits.overrides.is_empty());

        let off = ra_config(&["--rate-limits", "off"]);
        assert!(!off.rate_limits.enabled);
        let err = dev_args(&["--rate-limits", "postgres"]).err().unwrap();
        assert!(err.contains("memory"), "{err}");
    }

    #[test]
    fn redis_rate_limits_use_the_url_and_a_key_prefix_of_the_run() {
        let ra = ra_config(&["--rate-limits", "redis"]);
        let limits = &ra.rate_limits;
        assert!(limits.enabled);
        assert_eq!(limits.backend, basalt_ratelimit::Backend::Redis);
        assert_eq!(limits.redis_url.as_deref(), Some(DEFAULT_REDIS_URL));
        assert_eq!(limits.key_prefix, TEST_KEY_PREFIX);

        let ra = ra_config(&[
            "--rate-limits",
            "redis",
            "--redis-url",
            "redis://redis.lab:6380/2",
        ]);
        assert_eq!(
            ra.rate_limits.redis_url.as_deref(),
            Some("redis://redis.lab:6380/2")
        );

        let (a, b) = (dev_key_prefix().unwrap(), dev_key_prefix().unwrap());
        assert_ne!(a, b, "two runs share a key prefix");
        for prefix in [a, b] {
            let random = prefix.strip_prefix("basalt-dev-").unwrap();
            assert_eq!(random.len(), 16, "{prefix}");
            assert!(random.chars().all(|c| c.is_ascii_hexdigit()), "{prefix}");
        }
    }

    #[test]
    fn rate_limit_flags_lower_single_limits() {
        let ra = ra_config(&[
            "--rate-limit",
            "new_orders_per_account=2/20s",
            "--rate-limit",
            "new_accounts_per_ip=5/3h",
            "--rate-limit",
            "new_orders_per_account=3/1h",
        ]);
        assert_eq!(
            changed_limits(&ra),
            [
                (
                    "new_accounts_per_ip".to_owned(),
                    Some(5),
                    Some(Duration::from_secs(3 * 3600)),
                    Some(5)
                ),
                (
                    "new_orders_per_account".to_owned(),
                    Some(3),
                    Some(Duration::from_secs(3600)),
                    Some(3)
                ),
            ]
        );
        // Lowered limits apply with the Redis backend too.
        let ra = ra_config(&[
            "--rate-limits",
            "redis",
            "--rate-limit",
            "new_orders_per_account=2/20s",
        ]);
        assert_eq!(changed_limits(&ra).len(), 1);

        // A limit the RA does not have is refused before anything starts.
        let args = dev_args(&["--rate-limit", "new_orders_per_acount=2/20s"]).unwrap();
        let (_, text) = configs_with(&args)
            .into_iter()
            .find(|(service, _)| *service == "ra")
            .unwrap();
        let err = check_ra_config(&text).unwrap_err().to_string();
        assert!(err.contains("new_orders_per_acount"), "{err}");
        check_ra_config(&configs().into_iter().find(|(s, _)| *s == "ra").unwrap().1).unwrap();
    }

    #[test]
    fn rate_limit_flags_are_name_count_and_period() {
        let limit = parse_rate_limit("new_orders_per_account=3/1h").unwrap();
        assert_eq!(
            limit,
            DevRateLimit {
                name: "new_orders_per_account".to_owned(),
                count: 3,
                period: ConfigDuration(Duration::from_secs(3600)),
            }
        );
        assert_eq!(
            parse_rate_limit("x_2=1/90s").unwrap().period.0,
            Duration::from_secs(90)
        );
        for (bad, says) in [
            ("new_orders_per_account", "expected NAME=COUNT/PERIOD"),
            ("new_orders_per_account=3", "expected NAME=COUNT/PERIOD"),
            ("=3/1h", "a limit's name"),
            ("New Orders=3/1h", "a limit's name"),
            ("x=0/1h", "COUNT must be"),
            ("x=-1/1h", "COUNT must be"),
            ("x=three/1h", "COUNT must be"),
            ("x=3/0s", "PERIOD must be longer than 0"),
            ("x=3/1y", "invalid duration"),
        ] {
            let err = parse_rate_limit(bad).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
        let err = dev_args(&["--rate-limit", "x=3"]).err().unwrap();
        assert!(err.contains("expected NAME=COUNT/PERIOD"), "{err}");
    }

    #[test]
    fn the_banner_says_where_the_limits_are() {
        let args = dev_args(&["--rate-limit", "new_orders_per_account=2/20s"]).unwrap();
        assert_eq!(
            rate_limits_banner(&args, "basalt-dev-1"),
            "Rate limits: in the RA's memory; changed: new_orders_per_account=2/20s"
        );
        let args = dev_args(&["--rate-limits", "redis"]).unwrap();
        assert_eq!(
            rate_limits_banner(&args, "basalt-dev-1"),
            "Rate limits: in Redis at redis://127.0.0.1:6379/0 under basalt-dev-1"
        );
        let args = dev_args(&["--rate-limits", "off"]).unwrap();
        assert_eq!(
            rate_limits_banner(&args, "basalt-dev-1"),
            "Rate limits: off"
        );
    }

    #[test]
    fn the_admin_may_call_the_ra() {
        let configs = configs();
        let ra: basalt_ra::RaConfig = config(&configs, "ra");
        assert_eq!(
            ra.grpc.allowed_clients[service_names::REGISTRATION_AUTHORITY],
            vec!["wfe", "admin"]
        );
        let (_, admin) = configs.iter().find(|(s, _)| *s == "admin").unwrap();
        for (table, port) in [("[sa]", 14100), ("[ra]", 14101)] {
            let block = admin
                .split(table)
                .nth(1)
                .unwrap_or_else(|| panic!("no {table}:\n{admin}"));
            assert!(
                block.contains(&format!("address = \"127.0.0.1:{port}\"")),
                "{table}:\n{admin}"
            );
        }
        basalt_config::parse::<crate::admin::AdminConfig>(admin).unwrap();
    }

    #[tokio::test]
    async fn every_service_appends_its_audit_events_to_a_file_of_its_own() {
        let (layout, exe) = fake_service(
            "audit-env",
            "echo \"$1 audit=${BASALT_AUDIT_LOG-unset}\"; exec cat >/dev/null",
        );
        let running = vec![
            start(&exe, &layout, service("ra")).unwrap(),
            start(&exe, &layout, service("va-remote-1")).unwrap(),
        ];
        let deadline = Instant::now() + Duration::from_secs(30);
        for (name, command) in [("ra", "ra"), ("va-remote-1", "va")] {
            while std::fs::read_to_string(layout.log(name))
                .unwrap_or_default()
                .is_empty()
            {
                assert!(
                    Instant::now() < deadline,
                    "the {name} service never started"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(
                std::fs::read_to_string(layout.log(name)).unwrap(),
                format!(
                    "{command} audit={}\n",
                    layout
                        .root
                        .join("audit")
                        .join(format!("{name}.jsonl"))
                        .display()
                )
            );
        }
        stop_all(&layout, running).await;
        std::fs::remove_dir_all(&layout.root).unwrap();
    }
}
