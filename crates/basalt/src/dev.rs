//! `basalt dev`: a whole CA on one machine, each service its own OS process.
//!
//! The first run creates a data directory with an internal PKI for the gRPC links,
//! a dev root and intermediate for issuance, an HTTPS certificate for the ACME API
//! and an SQLite database. Every run writes the services' configs from the flags,
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
use basalt_config::ConfigDuration;
use basalt_config::GrpcClientConfig;
use basalt_config::TlsConfig;
use basalt_core::SystemClock;
use basalt_grpc::GrpcChannel;
use basalt_grpc::service_names;
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
    /// one per remote VA (gRPC), 6 + `--remote-vas` ports in all.
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
    /// Create the keys, certificates and configs, then exit without starting
    /// anything (for container set-up).
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
    /// responder by a name.
    #[arg(long, value_name = "URL")]
    ocsp_url: Option<String>,
}

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
/// into the CA's, the RA's and the WFE's configs from this one table.
struct DevProfile {
    name: &'static str,
    validity: &'static str,
    ip_identifiers: bool,
    ocsp: bool,
    description: &'static str,
}

const PROFILES: &[DevProfile] = &[
    DevProfile {
        name: "classic",
        validity: "90d",
        ip_identifiers: false,
        ocsp: true,
        description: "90-day certificates for DNS names, with an OCSP URL",
    },
    DevProfile {
        name: "modern",
        validity: "45d",
        ip_identifiers: false,
        ocsp: true,
        description: "45-day certificates for DNS names",
    },
    DevProfile {
        name: "shortlived",
        validity: "160h",
        ip_identifiers: true,
        ocsp: false,
        description: "160-hour certificates for DNS names and IP addresses, without revocation status",
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
            let ocsp = if p.ocsp {
                format!("ocsp_url = {}\n", q(ocsp_url))
            } else {
                String::new()
            };
            format!(
                "[profiles.{}]\nvalidity = {}\n{ocsp}\n",
                p.name,
                q(p.validity)
            )
        })
        .collect()
}

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
}

impl Layout {
    fn pki(&self, file: &str) -> PathBuf {
        self.root.join("pki").join(file)
    }

    fn issuer_keys(&self, file: &str) -> PathBuf {
        self.root.join("ca-keys").join(file)
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
}

impl Ports {
    fn new(base: u16, remote_vas: usize) -> anyhow::Result<Self> {
        let total = FIXED_PORTS + remote_vas;
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
            remote_vas: (FIXED_PORTS..total)
                .map(port)
                .collect::<anyhow::Result<_>>()?,
        })
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
    let layout = Layout {
        root: args.data_dir.clone(),
    };
    let ports = Ports::new(args.port_base, args.remote_vas)?;
    let services = services(args.remote_vas);
    prepare(&layout, &args)?;
    for (service, text) in render_configs(&layout, &args, &ports) {
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

    let exe = std::env::current_exe().context("locating the basalt binary")?;
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
        "Issued certificates chain to: {} (alternate chain: {})",
        layout.pki("root.pem").display(),
        layout.pki("root-x2.pem").display()
    );
    println!("OCSP responder: http://{}/", ports.ocsp);
    println!("Logs: {}", layout.root.join("logs").display());
    println!("Services (pid): {pids}");
    println!("basalt dev: ready");

    let result = supervise(&exe, &layout, &mut running, crate::shutdown::interrupt()).await;
    stop_all(&layout, running).await;
    result
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

/// Creates the directories and, once, the keys and certificates.
fn prepare(layout: &Layout, args: &DevArgs) -> anyhow::Result<()> {
    let clock = SystemClock;
    for dir in ["pki", "config", "db", "logs", "run"] {
        std::fs::create_dir_all(layout.root.join(dir))
            .with_context(|| format!("creating {}", layout.root.join(dir).display()))?;
    }
    private_dir(&layout.root.join("ca-keys"))?;

    if !layout.issuer_keys("intermediate.key").exists() {
        println!("basalt dev: creating the dev root and intermediate");
        basalt_ca::pki::generate_hierarchy(&layout.root.join("ca-keys"), &clock)?;
    }
    if !layout.pki("intermediate-x2.pem").exists() {
        // A second root and the same intermediate cross-signed by it, so the WFE
        // has an alternate chain to offer (RFC 8555 §7.4.2), as Let's Encrypt does.
        basalt_ca::pki::generate_cross_signed_chain(
            &layout.root.join("ca-keys"),
            &layout.root.join("pki"),
            &clock,
        )?;
    }
    // The certificates are public; only the CA's config names the key files.
    for cert in ["root.pem", "intermediate.pem"] {
        std::fs::copy(layout.issuer_keys(cert), layout.pki(cert))
            .with_context(|| format!("publishing {cert}"))?;
    }

    // A run with more remote VAs than before lacks their certificates, and so
    // makes the whole internal PKI afresh; every service reads it as it starts.
    let internal_names = internal_names(args.remote_vas);
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

/// The first lines of every service's config.
const CONFIG_HEADER: &str =
    "# Written by `basalt dev` on every start; edit the flags, not this file.\n\n";

/// Every service's config, from the flags. The CA's is the only one that names
/// the issuer key.
fn render_configs(layout: &Layout, args: &DevArgs, ports: &Ports) -> Vec<(&'static str, String)> {
    let base_url = base_url(args);
    let header = CONFIG_HEADER;

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

    let ca = format!(
        "{header}default_profile = {}\n\n{}\n{}\n{}\n[issuer]\ncert = {}\nkey = {}\n\n{}",
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
        qp(&layout.issuer_keys("intermediate.pem")),
        qp(&layout.issuer_keys("intermediate.key")),
        ca_profiles(
            &args
                .ocsp_url
                .clone()
                .unwrap_or_else(|| format!("http://{}/", ports.ocsp))
        ),
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
        "{header}account_uri_prefix = {}\ndefault_profile = {}\n\n{}\n{}\n{}\n{}\n{}\n{}",
        q(format!("{base_url}/acme/acct/")),
        q(&args.default_profile),
        grpc_block(
            ports.ra,
            &[(service_names::REGISTRATION_AUTHORITY, &["wfe"])]
        ),
        tls_block(layout, "ra"),
        client_block("sa", ports.sa, "sa"),
        client_block("va", ports.va, "va"),
        client_block("ca", ports.ca, "ca"),
        ra_profiles(),
    );

    let wfe = format!(
        "{header}listen = {}\nbase_url = {}\n\
         # The dev intermediate cross-signed by Basalt Dev Root X2 (RFC 8555 §7.4.2).\n\
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

    let ocsp = format!(
        "{header}listen = {}\nissuer_cert = {}\nmax_age = \"1h\"\n\n{}\n{}\n{}",
        q(ports.ocsp.to_string()),
        qp(&layout.pki("intermediate.pem")),
        tls_block(layout, "ocsp"),
        client_block("sa", ports.sa, "sa"),
        client_block("ca", ports.ca, "ca"),
    );

    let nonce = format!(
        "{header}{}\n{}",
        grpc_block(ports.nonce, &[(service_names::NONCE, &["wfe"])]),
        tls_block(layout, "nonce"),
    );

    let admin = format!(
        "# For `basalt admin --config` on this machine.\n\n{}\n{}",
        tls_block(layout, "admin"),
        client_block("sa", ports.sa, "sa"),
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
    configs
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
            remote_vas: DEFAULT_REMOTE_VAS,
        }
    }

    fn configs() -> Vec<(&'static str, String)> {
        configs_with(&args())
    }

    fn configs_with(args: &DevArgs) -> Vec<(&'static str, String)> {
        let layout = Layout {
            root: args.data_dir.clone(),
        };
        let ports = Ports::new(args.port_base, args.remote_vas).unwrap();
        render_configs(&layout, args, &ports)
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
        for (service, text) in configs() {
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

        assert!(Ports::new(u16::MAX - 8, 3).is_ok());
        let err = Ports::new(u16::MAX - 8, 4).err().unwrap();
        assert_eq!(
            err.to_string(),
            format!("--port-base {} leaves no room for 10 ports", u16::MAX - 8)
        );
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
        (Layout { root }, exe)
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
    fn deploy_configs_parse_as_each_service_expects() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config");
        let load = |service: &str| dir.join(format!("{service}.toml"));
        basalt_config::load::<basalt_sa::SaConfig>(&load("sa")).unwrap();
        basalt_config::load::<basalt_ca::CaConfig>(&load("ca")).unwrap();
        basalt_config::load::<basalt_va::VaConfig>(&load("va")).unwrap();
        basalt_config::load::<basalt_ra::RaConfig>(&load("ra"))
            .unwrap()
            .validate()
            .unwrap();
        basalt_config::load::<basalt_wfe::WfeConfig>(&load("wfe")).unwrap();
        basalt_config::load::<basalt_ocsp::OcspConfig>(&load("ocsp")).unwrap();
        basalt_config::load::<basalt_nonce::NonceConfig>(&load("nonce")).unwrap();
        basalt_config::load::<crate::admin::AdminConfig>(&load("admin")).unwrap();
        let count = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(count, 8, "a config in deploy/config is not checked here");
    }

    #[test]
    fn only_the_ca_config_names_the_issuer_key() {
        for (service, text) in configs() {
            assert_eq!(
                text.contains("intermediate.key") || text.contains("root.key"),
                service == "ca",
                "{service}.toml:\n{text}"
            );
        }
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
}
