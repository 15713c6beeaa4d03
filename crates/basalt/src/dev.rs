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
    /// First of six consecutive loopback ports for the internal services: SA, RA,
    /// VA and CA (gRPC), the OCSP responder (HTTP), then the nonce service (gRPC).
    #[arg(long, default_value_t = 14100, value_name = "N")]
    port_base: u16,
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
}

/// The services in start order, with the gRPC service their health stands for
/// (`None`: an HTTP service, checked by connecting).
const SERVICES: &[(&str, Option<&str>)] = &[
    ("sa", Some(service_names::STORAGE)),
    ("ca", Some(service_names::CERTIFICATE_AUTHORITY)),
    ("va", Some(service_names::VALIDATION)),
    ("ra", Some(service_names::REGISTRATION_AUTHORITY)),
    ("ocsp", None),
    ("nonce", Some(service_names::NONCE)),
    ("wfe", None),
];

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

/// Names in the internal PKI: one per service, plus the launcher's own.
const INTERNAL_NAMES: &[&str] = &[
    "sa", "ra", "va", "ca", "wfe", "ocsp", "nonce", "dev", "admin",
];

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

/// The addresses the services listen on.
struct Ports {
    sa: SocketAddr,
    ra: SocketAddr,
    va: SocketAddr,
    ca: SocketAddr,
    ocsp: SocketAddr,
    nonce: SocketAddr,
}

impl Ports {
    fn new(base: u16) -> anyhow::Result<Self> {
        let port = |offset: u16| -> anyhow::Result<SocketAddr> {
            let port = base
                .checked_add(offset)
                .context("--port-base leaves no room for six ports")?;
            Ok(SocketAddr::from(([127, 0, 0, 1], port)))
        };
        Ok(Self {
            sa: port(0)?,
            ra: port(1)?,
            va: port(2)?,
            ca: port(3)?,
            ocsp: port(4)?,
            nonce: port(5)?,
        })
    }

    fn grpc(&self, service: &str) -> Option<SocketAddr> {
        match service {
            "sa" => Some(self.sa),
            "ra" => Some(self.ra),
            "va" => Some(self.va),
            "ca" => Some(self.ca),
            "nonce" => Some(self.nonce),
            _ => None,
        }
    }
}

pub(crate) async fn run(args: DevArgs) -> anyhow::Result<()> {
    let layout = Layout {
        root: args.data_dir.clone(),
    };
    let ports = Ports::new(args.port_base)?;
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
    for (service, _) in SERVICES {
        match start(&exe, &layout, service) {
            Ok(process) => running.push(process),
            Err(err) => {
                stop_all(&layout, running).await;
                return Err(err);
            }
        }
    }

    let healthy = tokio::select! {
        result = wait_healthy(&layout, &args, &ports) => result,
        (index, status) = first_exit(&mut running) => {
            let service = running[index].service;
            Err(anyhow::anyhow!("the {service} service exited during start-up ({status})"))
        }
        () = crate::shutdown::interrupt() => Err(anyhow::anyhow!("interrupted during start-up")),
    };
    if let Err(err) = healthy {
        report_logs(&layout);
        stop_all(&layout, running).await;
        return Err(err);
    }

    let pids = running
        .iter()
        .map(|p| format!("{}={}", p.service, p.child.id().unwrap_or_default()))
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
        if !budgets[index].spend(Instant::now()) {
            eprintln!(
                "basalt dev: the {service} service exited ({status}) after {MAX_RESTARTS} \
                 restarts within {RESTART_WINDOW:?}; its log follows"
            );
            tail(&layout.log(service));
            bail!("the {service} service keeps dying");
        }
        println!("basalt dev: the {service} service exited ({status}); restarting");
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

    let internal_missing = INTERNAL_NAMES
        .iter()
        .any(|name| !layout.pki(&format!("{name}.key")).exists());
    if !layout.pki("internal-ca.pem").exists() || internal_missing {
        println!("basalt dev: creating the internal mTLS PKI");
        basalt_ca::pki::generate_internal_pki(&layout.root.join("pki"), INTERNAL_NAMES, &clock)?;
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

/// Every service's config, from the flags. The CA's is the only one that names
/// the issuer key.
fn render_configs(layout: &Layout, args: &DevArgs, ports: &Ports) -> Vec<(&'static str, String)> {
    let base_url = base_url(args);
    let header = "# Written by `basalt dev` on every start; edit the flags, not this file.\n\n";

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
        ca_profiles(&format!("http://{}/", ports.ocsp)),
    );

    let resolver = args
        .dns_resolver
        .as_ref()
        .map(|resolver| format!("resolver = {}\n", q(resolver)))
        .unwrap_or_default();
    let va = format!(
        "{header}allow_private_addresses = {}\n\n{}\n{}\n[dns]\n{resolver}\n[http01]\nport = {}\n\n[tlsalpn01]\nport = {}\n\n\
         # The lab CA's name in CAA records: a name with CAA that does not list it is refused.\n\
         [caa]\nissuer_domains = [{}]\n",
        args.allow_private_addresses,
        grpc_block(ports.va, &[(service_names::VALIDATION, &["ra"])]),
        tls_block(layout, "va"),
        args.http01_port,
        args.tlsalpn01_port,
        q(CAA_ISSUER_DOMAIN),
    );

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

    vec![
        ("nonce", nonce),
        ("admin", admin),
        ("sa", sa),
        ("ca", ca),
        ("va", va),
        ("ra", ra),
        ("wfe", wfe),
        ("ocsp", ocsp),
    ]
}

/// A running service process.
struct Process {
    service: &'static str,
    child: Child,
    /// Held open for the service's lifetime; dropping it tells the service to stop.
    stdin: Option<ChildStdin>,
}

fn start(exe: &Path, layout: &Layout, service: &'static str) -> anyhow::Result<Process> {
    use std::os::unix::process::CommandExt;

    let log_path = layout.log(service);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let log_err = log.try_clone().context("duplicating the log file handle")?;
    let mut command = std::process::Command::new(exe);
    command
        .arg(service)
        .arg("--config")
        .arg(layout.config(service))
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
        .with_context(|| format!("starting the {service} service"))?;
    let stdin = child.stdin.take();
    // Written on every start, so it always names the process running now. If
    // it cannot be written, `child` is dropped and so killed.
    let pid = child
        .id()
        .with_context(|| format!("the {service} service exited as it started"))?;
    // Renamed into place, so a reader never sees half a pid.
    let pid_file = layout.pid_file(service);
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
                    process.service
                );
                let _ = process.child.kill().await;
            }
        }
        let _ = std::fs::remove_file(layout.pid_file(process.service));
    }
}

/// Polls every service until it answers: gRPC health for the gRPC services, a
/// TCP connection for the HTTP ones.
async fn wait_healthy(layout: &Layout, args: &DevArgs, ports: &Ports) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
    let tls = layout.tls("dev");
    for (service, grpc_name) in SERVICES {
        loop {
            let healthy = match (grpc_name, ports.grpc(service)) {
                (Some(grpc_name), Some(address)) => {
                    let peer = GrpcClientConfig {
                        address: address.to_string(),
                        server_name: (*service).to_owned(),
                        timeout: ConfigDuration(Duration::from_secs(2)),
                    };
                    let channel = GrpcChannel::new(&peer, &tls)?;
                    channel.check_health(grpc_name).await.unwrap_or(false)
                }
                _ => {
                    let address = if *service == "wfe" {
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
                bail!("the {service} service did not become healthy within {STARTUP_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

fn report_logs(layout: &Layout) {
    for (service, _) in SERVICES {
        eprintln!("--- {} ---", layout.log(service).display());
        tail(&layout.log(service));
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
        }
    }

    fn configs() -> Vec<(&'static str, String)> {
        let args = args();
        let layout = Layout {
            root: args.data_dir.clone(),
        };
        render_configs(&layout, &args, &Ports::new(args.port_base).unwrap())
    }

    #[test]
    fn generated_configs_parse_as_each_service_expects() {
        for (service, text) in configs() {
            let parsed = match service {
                "sa" => basalt_config::parse::<basalt_sa::SaConfig>(&text).map(drop),
                "ca" => basalt_config::parse::<basalt_ca::CaConfig>(&text).map(drop),
                "va" => basalt_config::parse::<basalt_va::VaConfig>(&text).map(drop),
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
        let mut running = vec![start(&exe, &layout, "nonce").unwrap()];
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
        let mut running = vec![start(&exe, &layout, "nonce").unwrap()];
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
