//! A whole Basalt CA for one test: `basalt dev` with every service as its own OS
//! process, pebble-challtestsrv as the mock DNS, the SA on SQLite or on a fresh
//! PostgreSQL or MariaDB database, and a helper to drive external clients (certbot,
//! lego, openssl) with a deadline.

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::BuildHasher;
use std::io::BufRead;
use std::io::BufReader;
use std::io::Read;
use std::net::TcpListener;
use std::net::TcpStream;
use std::net::UdpSocket;
use std::path::Path;
use std::path::PathBuf;
use std::process::Child;
use std::process::Command;
use std::process::ExitStatus;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use std::time::Instant;

use crate::database::Engine;
use crate::database::TestDatabase;

/// How long `basalt dev` may take to print `basalt dev: ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `basalt dev` may take to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The remote VAs `basalt dev --remote-vas N` can run, in order: it runs the first
/// N, each a `basalt va` the VA asks after each local success.
const REMOTE_VA_NAMES: [&str; 9] = [
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
/// How many remote VAs a test CA runs unless `BASALT_E2E_REMOTE_VAS` or the test
/// ([`DevCaBuilder::remote_vas`]) says otherwise: more than `basalt dev`'s default
/// of 3, so that the suite runs on a topology that was scaled out.
const DEFAULT_REMOTE_VAS: usize = 5;
/// The environment variable that sets every test CA's number of remote VAs: 0
/// (no multi-perspective validation) or 2 to 9.
const REMOTE_VAS_ENV: &str = "BASALT_E2E_REMOTE_VAS";
/// The services `basalt dev` starts besides the remote VAs, each with a log in
/// `DIR/logs/<svc>.log`; [`DevCa::services`] adds the remote VAs.
const SERVICES: [&str; 7] = ["sa", "ra", "va", "ca", "wfe", "ocsp", "nonce"];
/// The new-accounts limit of every test CA (`basalt dev --rate-limit`) unless the
/// test sets one: its clients all share one address.
pub(crate) const LAB_NEW_ACCOUNTS: &str = "new_accounts_per_ip=1000/3h";
/// Lines of each log shown when a test fails.
const LOG_TAIL_LINES: usize = 120;

/// Ports handed out in this process, so two CAs started by parallel tests never
/// pick the same one (the OS may hand a just-released port out again).
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A running `basalt dev` and its mock DNS; dropping it stops both.
pub(crate) struct DevCa {
    /// Holds the data dir, the client dirs and the helper logs.
    root: PathBuf,
    /// `basalt dev --data-dir`.
    pub(crate) data_dir: PathBuf,
    /// The ACME directory URL `basalt dev` printed.
    pub(crate) directory_url: String,
    /// The trust anchor of the HTTPS ACME API.
    pub(crate) api_ca: PathBuf,
    /// The internal gRPC ports are `port_base..port_base + 4` (sa, ra, va, ca),
    /// OCSP HTTP is `port_base + 4`, the nonce service `port_base + 5` and the
    /// remote VAs `port_base + 6` on, one each; then one more port per process
    /// (7 + remote VAs) for the services' debug listeners. The harness claims the
    /// whole block ([`internal_ports`]).
    pub(crate) port_base: u16,
    /// How many remote VAs `basalt dev --remote-vas` runs (see [`DevCa::remote_vas`]).
    remote_vas: usize,
    /// The port the VA connects to for http-01, where the ACME client must answer.
    pub(crate) http01_port: u16,
    /// The port the VA connects to for tls-alpn-01.
    pub(crate) tlsalpn01_port: u16,
    /// pebble-challtestsrv's management API (`/set-txt`, `/add-a`, …).
    pub(crate) dns_management_port: u16,
    /// The HTTPS ACME API's port.
    listen_port: u16,
    /// The mock DNS's port.
    dns_port: u16,
    /// Flags added to `basalt dev` (see [`DevCaBuilder`]).
    extra_args: Vec<String>,
    /// Environment variables of `basalt dev` and so of its services (see
    /// [`DevCaBuilder::env_data_file`]).
    env: Vec<(String, PathBuf)>,
    basalt: Option<Child>,
    challtestsrv: Option<Child>,
    stdout: Arc<Mutex<Vec<String>>>,
    /// The SA's database when not SQLite; a field, so it is dropped after
    /// `Drop for DevCa` has stopped the SA.
    database: Option<TestDatabase>,
}

/// A [`DevCa`] with extra `basalt dev` flags, e.g. `--eab-required`,
/// `--base-url https://127.0.0.1:PORT` or `--ca-keys softhsm`.
pub(crate) struct DevCaBuilder {
    label: String,
    extra_args: Vec<String>,
    engine: Option<Engine>,
    /// Environment variables, each naming a file of the data dir.
    env_files: Vec<(String, String)>,
    /// `--remote-vas`, when the test needs a number of its own.
    remote_vas: Option<usize>,
}

impl DevCaBuilder {
    /// Adds one flag (or flag value) to the `basalt dev` command line.
    pub(crate) fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// The SA on a fresh database of the PostgreSQL test server (see
    /// [`crate::database`]), dropped with the CA.
    pub(crate) fn postgres(mut self) -> Self {
        self.engine = Some(Engine::Postgres);
        self
    }

    /// The SA on a fresh database of the MariaDB test server (see
    /// [`crate::database`]), dropped with the CA.
    pub(crate) fn mariadb(mut self) -> Self {
        self.engine = Some(Engine::MariaDb);
        self
    }

    /// The issuing hierarchy's keys in a SoftHSM2 token (`--ca-keys softhsm`): the
    /// ceremonies make them there and the CA signs with them through PKCS#11.
    /// With `BASALT_E2E_CA_KEYS=softhsm` in the environment every test's CA does.
    pub(crate) fn softhsm(self) -> Self {
        self.arg("--ca-keys").arg("softhsm")
    }

    /// Sets the environment variable `key` of `basalt dev`, which its services
    /// inherit, to the path of `file` in the data dir (e.g. the CA's crash trigger,
    /// `BASALT_CA_CRASH_TRIGGER`).
    pub(crate) fn env_data_file(mut self, key: &str, file: &str) -> Self {
        self.env_files.push((key.to_owned(), file.to_owned()));
        self
    }

    /// Runs `count` remote VAs (`basalt dev --remote-vas`: 0, or 2 to 9) whatever
    /// `BASALT_E2E_REMOTE_VAS` says, for a test that needs that many.
    pub(crate) fn remote_vas(mut self, count: usize) -> Self {
        self.remote_vas = Some(checked_remote_vas(count, "DevCaBuilder::remote_vas"));
        self
    }

    /// Starts the CA, as [`DevCa::start`] does.
    pub(crate) fn start(self) -> DevCa {
        let remote_vas = self.remote_vas.unwrap_or_else(suite_remote_vas);
        DevCa::start_with(
            &self.label,
            self.extra_args,
            self.engine,
            self.env_files,
            remote_vas,
        )
    }
}

impl DevCa {
    /// A CA with extra `basalt dev` flags; `label` names the temp dir.
    pub(crate) fn builder(label: &str) -> DevCaBuilder {
        DevCaBuilder {
            label: label.to_owned(),
            extra_args: Vec::new(),
            engine: None,
            env_files: Vec::new(),
            remote_vas: None,
        }
    }

    /// Starts the mock DNS and `basalt dev` on fresh ports with a fresh data dir,
    /// and waits until every service is healthy. `label` names the temp dir.
    pub(crate) fn start(label: &str) -> Self {
        Self::start_with(label, Vec::new(), None, Vec::new(), suite_remote_vas())
    }

    fn start_with(
        label: &str,
        mut extra_args: Vec<String>,
        engine: Option<Engine>,
        env_files: Vec<(String, String)>,
        remote_vas: usize,
    ) -> Self {
        assert!(
            !extra_args.iter().any(|arg| arg == "--remote-vas"),
            "set the number of remote VAs with DevCaBuilder::remote_vas, not a flag"
        );
        // The whole suite can run with the CA's keys in SoftHSM2 instead of files.
        match std::env::var("BASALT_E2E_CA_KEYS").as_deref() {
            Ok("softhsm") if !extra_args.iter().any(|arg| arg == "--ca-keys") => {
                extra_args.extend(["--ca-keys".to_owned(), "softhsm".to_owned()]);
            }
            Ok("softhsm" | "file") | Err(_) => {}
            Ok(other) => panic!("BASALT_E2E_CA_KEYS={other:?}: use file or softhsm"),
        }
        // Every client of a test CA comes from 127.0.0.1, where Let's Encrypt's ten
        // new accounts per address in three hours would stop the tests that open
        // more (a burst of clients, a client per step); a test that sets this
        // limit keeps its own.
        let limit_name = LAB_NEW_ACCOUNTS.split('=').next().unwrap_or_default();
        if !extra_args.iter().any(|arg| arg.starts_with(limit_name)) {
            extra_args.extend(["--rate-limit".to_owned(), LAB_NEW_ACCOUNTS.to_owned()]);
        }
        // First, so a missing server fails the test before anything is started.
        let database = engine.map(TestDatabase::create);
        if let Some(database) = &database {
            extra_args.extend(["--db".to_owned(), database.url()]);
        }
        let root = std::env::temp_dir().join(format!(
            "basalt-e2e-{label}-{}-{:x}",
            std::process::id(),
            random_u64() & 0xffff_ffff
        ));
        let data_dir = root.join("data");
        fs::create_dir_all(&root).expect("create the test's temp dir");
        let env = env_files
            .into_iter()
            .map(|(key, file)| (key, data_dir.join(file)))
            .collect();

        let listen_port = free_port();
        let dns_port = free_dns_port();
        let management_port = free_port();
        let http01_port = free_port();
        let tlsalpn01_port = free_port();
        let port_base = free_port_block(internal_ports(remote_vas));

        let mut ca = Self {
            api_ca: data_dir.join("pki/api-ca.pem"),
            directory_url: format!("https://127.0.0.1:{listen_port}/directory"),
            root,
            data_dir,
            port_base,
            remote_vas,
            http01_port,
            tlsalpn01_port,
            dns_management_port: management_port,
            listen_port,
            dns_port,
            extra_args,
            env,
            basalt: None,
            challtestsrv: None,
            stdout: Arc::default(),
            database,
        };

        let challtestsrv_log = fs::File::create(ca.root.join("challtestsrv.log"))
            .expect("create the challtestsrv log");
        let challtestsrv = Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{management_port}")])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdin(Stdio::null())
            .stdout(challtestsrv_log.try_clone().expect("clone a file handle"))
            .stderr(challtestsrv_log)
            .spawn()
            .expect("start pebble-challtestsrv (apt-get install pebble)");
        ca.challtestsrv = Some(challtestsrv);
        ca.wait_for_port(management_port, "pebble-challtestsrv management");
        ca.wait_for_port(dns_port, "pebble-challtestsrv DNS");

        ca.spawn_basalt();
        ca
    }

    /// Starts `basalt dev` on this CA's data dir and ports and waits until ready.
    fn spawn_basalt(&mut self) {
        let bin = basalt_bin();
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("basalt-dev.stderr"))
            .expect("open the basalt dev stderr file");
        let mut basalt = Command::new(&bin)
            .arg("dev")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen", &format!("127.0.0.1:{}", self.listen_port)])
            .args(["--port-base", &self.port_base.to_string()])
            .args(["--dns-resolver", &format!("127.0.0.1:{}", self.dns_port)])
            .args(["--http01-port", &self.http01_port.to_string()])
            .args(["--tlsalpn01-port", &self.tlsalpn01_port.to_string()])
            .args(["--remote-vas", &self.remote_vas.to_string()])
            .arg("--allow-private-addresses")
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(key, path)| (key, path)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", bin.display()));
        let stdout = basalt.stdout.take().expect("piped stdout");
        self.basalt = Some(basalt);
        self.wait_ready(stdout);
    }

    /// Stops `basalt dev` and starts it again on the same data dir, as an operator
    /// would; panics if it did not stop cleanly.
    pub(crate) fn restart(&mut self) {
        let problems = self.stop_basalt();
        assert!(
            problems.is_empty(),
            "stopping basalt dev: {}",
            problems.join("\n")
        );
        self.spawn_basalt();
    }

    /// The remote VAs this CA runs (`va-remote-1` … `va-remote-N`), each a
    /// `basalt va` with its own config, log and pid file, in a region of its own
    /// (`region-1` …).
    pub(crate) fn remote_vas(&self) -> &'static [&'static str] {
        &REMOTE_VA_NAMES[..self.remote_vas]
    }

    /// Every service `basalt dev` runs for this CA, remote VAs included, each with
    /// a log in `DIR/logs/<svc>.log`.
    pub(crate) fn services(&self) -> Vec<&'static str> {
        SERVICES.iter().chain(self.remote_vas()).copied().collect()
    }

    /// The pid of `basalt dev` itself.
    pub(crate) fn launcher_pid(&self) -> u32 {
        self.basalt.as_ref().expect("basalt dev is running").id()
    }

    /// The pid of the process running service `svc` now, from the pid file
    /// `basalt dev` writes on every (re)start.
    pub(crate) fn service_pid(&self, svc: &str) -> u32 {
        let path = self.data_dir.join("run").join(format!("{svc}.pid"));
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{} holds no pid: {text:?}", path.display()))
    }

    /// Waits until `basalt dev` has printed `line` (whole, trimmed) since it started;
    /// panics if it does not within `timeout`.
    pub(crate) fn wait_for_stdout_line(&self, line: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let printed = self
                .stdout
                .lock()
                .expect("stdout lock")
                .iter()
                .any(|printed| printed.trim() == line);
            if printed {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "basalt dev did not print {line:?} within {timeout:?}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for `basalt dev` to exit on its own; panics if it does not within
    /// `timeout`.
    pub(crate) fn wait_for_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.basalt.take().expect("basalt dev is running");
        let status = wait_timeout(&mut child, timeout);
        let Some(status) = status else {
            // Put back, so `Drop` stops it and reports.
            self.basalt = Some(child);
            panic!("basalt dev did not exit within {timeout:?}");
        };
        status
    }

    /// Asks the database server of a CA started with [`DevCaBuilder::postgres`] or
    /// [`DevCaBuilder::mariadb`] how many certificates it stores, and checks that
    /// the SA made no SQLite database beside it: the SA really runs on the server.
    pub(crate) fn assert_certificates_in_database(&self, expected: u64) {
        let database = self.database();
        assert_eq!(
            database.count_rows("certificates"),
            expected,
            "certificates in {}",
            database.url()
        );
        let sqlite = self.data_dir.join("db/basalt.db");
        assert!(
            !sqlite.exists(),
            "the SA made {} although --db names a server",
            sqlite.display()
        );
    }

    /// The database server the SA of a CA started with [`DevCaBuilder::postgres`] or
    /// [`DevCaBuilder::mariadb`] runs on.
    pub(crate) fn database(&self) -> &TestDatabase {
        self.database
            .as_ref()
            .expect("this CA's SA runs on SQLite, not on a database server")
    }

    /// The port the WFE that `basalt dev` started listens on (HTTPS).
    /// The mock DNS server, as `host:port`, for clients that check their records.
    pub(crate) fn dns_server(&self) -> String {
        format!("127.0.0.1:{}", self.dns_port)
    }

    pub(crate) fn api_port(&self) -> u16 {
        self.listen_port
    }

    /// A service's config file, `DIR/config/<name>.toml`.
    pub(crate) fn config(&self, name: &str) -> PathBuf {
        self.data_dir.join("config").join(format!("{name}.toml"))
    }

    /// Runs `basalt admin --config DIR/config/admin.toml ARGS…` to completion.
    pub(crate) fn admin(&self, args: &[&str]) -> CmdOutput {
        run(
            Command::new(basalt_bin())
                .arg("admin")
                .arg("--config")
                .arg(self.config("admin"))
                .args(args),
            Duration::from_secs(60),
        )
    }

    /// A file under `DIR/pki`.
    pub(crate) fn pki(&self, name: &str) -> PathBuf {
        self.data_dir.join("pki").join(name)
    }

    /// The OCSP responder's URL.
    pub(crate) fn ocsp_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port_base + 4)
    }

    /// The URL of CRL shard `shard` of the intermediate `issuer` (`ecdsa` or
    /// `rsa`), as `basalt dev` writes it into certificates: under the OCSP URL.
    pub(crate) fn crl_url(&self, issuer: &str, shard: u32) -> String {
        format!("{}crl/{issuer}/{shard}.crl", self.ocsp_url())
    }

    /// The address of the internal gRPC service `svc` (one of sa, ra, va, ca).
    pub(crate) fn grpc_address(&self, svc: &str) -> String {
        let offset = match svc {
            "sa" => 0,
            "ra" => 1,
            "va" => 2,
            "ca" => 3,
            _ => panic!("no grpc service {svc:?}"),
        };
        format!("127.0.0.1:{}", self.port_base + offset)
    }

    /// The port of process `service`'s debug listener (`/metrics`, `/health/*`):
    /// after the gRPC block (6 + remote VAs ports), one per process in the order
    /// sa, ra, va, ca, wfe, ocsp, nonce, then `va-remote-1` … `va-remote-N`.
    pub(crate) fn debug_port(&self, service: &str) -> u16 {
        const FIXED: [&str; 7] = ["sa", "ra", "va", "ca", "wfe", "ocsp", "nonce"];
        let index = FIXED
            .iter()
            .position(|name| *name == service)
            .or_else(|| {
                let remote: usize = service.strip_prefix("va-remote-")?.parse().ok()?;
                (1..=self.remote_vas)
                    .contains(&remote)
                    .then(|| FIXED.len() + remote - 1)
            })
            .unwrap_or_else(|| panic!("no process {service:?} in this CA"));
        let offset = 6 + self.remote_vas + index;
        self.port_base + u16::try_from(offset).expect("a port offset")
    }

    /// The log of service `svc`, empty if it does not exist.
    pub(crate) fn log(&self, svc: &str) -> String {
        fs::read_to_string(self.data_dir.join("logs").join(format!("{svc}.log")))
            .unwrap_or_default()
    }

    /// A fresh directory for an ACME client's state.
    pub(crate) fn client_dir(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        fs::create_dir_all(&dir).expect("create a client dir");
        dir
    }

    /// Reads `basalt dev`'s stdout until it is ready; panics (and so prints every
    /// log, see `Drop`) if it exits or takes too long.
    fn wait_ready(&mut self, stdout: impl Read + Send + 'static) {
        let (tx, rx) = mpsc::channel();
        let lines = self.stdout.clone();
        // Keeps draining stdout after `ready`, so `basalt dev` never blocks on a full pipe.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().expect("stdout lock").push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.trim().strip_prefix("ACME directory: ") {
                        self.directory_url = url.trim().to_owned();
                    } else if let Some(path) = line.trim().strip_prefix("HTTPS API chains to: ") {
                        self.api_ca = PathBuf::from(path.trim());
                    } else if line.trim() == "basalt dev: ready" {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("basalt dev did not print `basalt dev: ready` within {READY_TIMEOUT:?}")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self
                        .basalt
                        .as_mut()
                        .and_then(|child| wait_timeout(child, Duration::from_secs(5)));
                    let status = status.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
                    panic!("basalt dev exited before it was ready ({status})")
                }
            }
        }
    }

    /// Waits until something accepts TCP connections on `port`.
    fn wait_for_port(&mut self, port: u16, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Some(status) = self.challtestsrv.as_mut().and_then(|c| c.try_wait().ok()?) {
                panic!("pebble-challtestsrv exited early ({status})");
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("{what} is not listening on 127.0.0.1:{port}");
    }

    /// Everything a failed test needs to see: `basalt dev`'s output and the tail
    /// of every service's log.
    pub(crate) fn diagnostics(&self) -> String {
        let mut out = String::new();
        if let Some(database) = &self.database {
            out += &format!("===== SA database: {} =====\n", database.url());
        }
        let stdout = self.stdout.lock().map(|l| l.join("\n")).unwrap_or_default();
        out += &format!("===== basalt dev stdout =====\n{stdout}\n");
        let stderr = fs::read_to_string(self.root.join("basalt-dev.stderr")).unwrap_or_default();
        out += &format!("===== basalt dev stderr =====\n{}\n", tail(&stderr));
        let services = self.services();
        for svc in &services {
            out += &format!("===== {svc}.log =====\n{}\n", tail(&self.log(svc)));
        }
        // Logs of processes a test started itself (e.g. a second WFE).
        let mut extra: Vec<PathBuf> = fs::read_dir(self.data_dir.join("logs"))
            .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
            .unwrap_or_default();
        extra.retain(|path| {
            path.file_stem()
                .and_then(|stem| stem.to_str())
                .is_some_and(|stem| !services.contains(&stem))
        });
        extra.sort();
        for path in extra {
            let text = fs::read_to_string(&path).unwrap_or_default();
            out += &format!("===== {} =====\n{}\n", path.display(), tail(&text));
        }
        // The services' audit events (`DIR/audit/<service>.jsonl`).
        let mut audit: Vec<PathBuf> = fs::read_dir(self.data_dir.join("audit"))
            .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
            .unwrap_or_default();
        audit.sort();
        for path in audit {
            let text = fs::read_to_string(&path).unwrap_or_default();
            if !text.is_empty() {
                out += &format!("===== {} =====\n{}\n", path.display(), tail(&text));
            }
        }
        let dns = fs::read_to_string(self.root.join("challtestsrv.log")).unwrap_or_default();
        out += &format!("===== pebble-challtestsrv =====\n{}\n", tail(&dns));
        out
    }

    /// Stops `basalt dev` with SIGTERM; returns what went wrong.
    fn stop_basalt(&mut self) -> Vec<String> {
        let Some(mut child) = self.basalt.take() else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        if let Ok(Some(status)) = child.try_wait() {
            problems.push(format!(
                "basalt dev exited on its own during the test ({status})"
            ));
            return problems;
        }
        let term = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        if !term.as_ref().is_ok_and(|status| status.success()) {
            problems.push(format!("kill -TERM {} failed: {term:?}", child.id()));
        }
        match wait_timeout(&mut child, STOP_TIMEOUT) {
            Some(status) if status.success() => {
                // `basalt dev` kills a service that ignores the stop request for too long.
                let stderr =
                    fs::read_to_string(self.root.join("basalt-dev.stderr")).unwrap_or_default();
                problems.extend(
                    stderr
                        .lines()
                        .filter(|line| line.contains("did not stop"))
                        .map(|line| format!("a service did not stop gracefully: {line}")),
                );
            }
            Some(status) => {
                problems.push(format!("basalt dev exited with {status} after SIGTERM"));
            }
            None => {
                problems.push(format!(
                    "basalt dev did not exit within {STOP_TIMEOUT:?} of SIGTERM"
                ));
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        problems
    }
}

impl Drop for DevCa {
    fn drop(&mut self) {
        let failing = thread::panicking();
        let mut problems = self.stop_basalt();
        if let Some(mut dns) = self.challtestsrv.take() {
            let _ = dns.kill();
            let _ = dns.wait();
        }
        // The services should be gone with their parent; give them a moment.
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut survivors = processes_mentioning(&self.data_dir);
        while !survivors.is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
            survivors = processes_mentioning(&self.data_dir);
        }
        for (pid, cmdline) in &survivors {
            problems.push(format!("process {pid} outlived basalt dev: {cmdline}"));
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        if failing || !problems.is_empty() {
            eprintln!("{}", self.diagnostics());
            eprintln!("(files kept in {})", self.root.display());
        } else {
            let _ = fs::remove_dir_all(&self.root);
        }
        if !problems.is_empty() {
            let report = problems.join("\n");
            if failing {
                eprintln!("{report}");
            } else {
                panic!("{report}");
            }
        }
    }
}

/// The number of remote VAs of every test CA that does not ask for its own:
/// `BASALT_E2E_REMOTE_VAS` (0, or 2 to 9) when set, else [`DEFAULT_REMOTE_VAS`].
pub(crate) fn suite_remote_vas() -> usize {
    match std::env::var(REMOTE_VAS_ENV) {
        Ok(text) => {
            let count = text.trim().parse().unwrap_or_else(|_| {
                panic!("{REMOTE_VAS_ENV}={text:?}: expected 0, or 2 to 9 remote VAs")
            });
            checked_remote_vas(count, REMOTE_VAS_ENV)
        }
        Err(_) => DEFAULT_REMOTE_VAS,
    }
}

/// `count` if `basalt dev --remote-vas` takes it; a panic naming `source` if not.
fn checked_remote_vas(count: usize, source: &str) -> usize {
    assert!(
        count == 0 || (2..=REMOTE_VA_NAMES.len()).contains(&count),
        "{source}: {count} remote VAs: expected 0, or 2 to {}",
        REMOTE_VA_NAMES.len()
    );
    count
}

/// How many consecutive ports from `--port-base` a CA with `remote_vas` remote VAs
/// is given: SA, RA, VA, CA, OCSP and nonce, one per remote VA, then one debug
/// listener per process (7 services plus the remote VAs), so `13 + 2 * remote_vas`.
fn internal_ports(remote_vas: usize) -> u16 {
    u16::try_from(13 + 2 * remote_vas).expect("at most 9 remote VAs")
}

/// The `basalt` binary: `$BASALT_BIN`, else `basalt` beside the test's `deps/`
/// directory, built (once per test run) by `cargo build -p basalt` so the tests
/// never drive a stale binary and `cargo nextest run` alone is enough.
pub(crate) fn basalt_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    if let Some(bin) = std::env::var_os("BASALT_BIN") {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "BASALT_BIN={} is not a file", bin.display());
        return bin;
    }
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("current_exe");
            // target/debug/deps/e2e-HASH -> target/debug/basalt
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("the test binary lives in target/<profile>/deps");
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = Command::new(cargo);
            build
                .args(["build", "-p", "basalt", "--manifest-path"])
                .arg(&manifest);
            if profile_dir
                .file_name()
                .is_some_and(|name| name == "release")
            {
                build.arg("--release");
            }
            let output = run(&mut build, Duration::from_secs(900));
            assert!(
                output.status.success(),
                "`cargo build -p basalt` failed:\n{}",
                output.text()
            );
            let bin = profile_dir.join("basalt");
            assert!(bin.is_file(), "cargo built no binary at {}", bin.display());
            bin
        })
        .clone()
}

/// What an external command printed, and how it ended.
#[derive(Debug)]
pub(crate) struct CmdOutput {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl CmdOutput {
    /// stdout and stderr together.
    pub(crate) fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` to completion (killing it after `timeout`) and captures its output;
/// panics only on timeout.
pub(crate) fn run(cmd: &mut Command, timeout: Duration) -> CmdOutput {
    let description = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {description}: {err}"));
    let stdout = reader(child.stdout.take().expect("piped stdout"));
    let stderr = reader(child.stderr.take().expect("piped stderr"));
    let status = wait_timeout(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let Some(status) = status else {
        panic!(
            "timed out after {timeout:?}: {description}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        );
    };
    CmdOutput {
        status,
        stdout,
        stderr,
    }
}

/// Runs `cmd` like [`run`] and panics with its output unless it succeeds.
pub(crate) fn run_ok(cmd: &mut Command, timeout: Duration) -> CmdOutput {
    let description = format!("{cmd:?}");
    let output = run(cmd, timeout);
    assert!(
        output.status.success(),
        "{description} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        output.stdout,
        output.stderr
    );
    output
}

/// Runs `cmd` like [`run`] and panics with its output if it succeeds.
pub(crate) fn run_fails(cmd: &mut Command, timeout: Duration) -> CmdOutput {
    let description = format!("{cmd:?}");
    let output = run(cmd, timeout);
    assert!(
        !output.status.success(),
        "{description} succeeded but should have failed\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.stdout,
        output.stderr
    );
    output
}

/// Collects everything `source` produces on a thread.
fn reader(mut source: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = source.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Waits for `child` up to `timeout`; `None` if it is still running.
fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Processes other than this one whose command line mentions `path`.
pub(crate) fn processes_mentioning(path: &Path) -> Vec<(u32, String)> {
    let needle = path.to_string_lossy().into_owned();
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(&needle) {
            found.push((pid, cmdline.trim_end().to_owned()));
        }
    }
    found
}

/// The last lines of `text`.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(LOG_TAIL_LINES);
    let mut out = String::new();
    if skip > 0 {
        out += &format!("[... {skip} earlier lines]\n");
    }
    out += &lines[skip..].join("\n");
    out
}

/// Random bits without a rand dependency: std seeds `RandomState` randomly.
pub(crate) fn random_u64() -> u64 {
    RandomState::new().hash_one(std::process::id())
}

/// The lowest port handed out: above the well-known and most registered ones.
const FIRST_PORT: u16 = 10_000;

/// The ports the harness hands out: from [`FIRST_PORT`] up to the kernel's ephemeral
/// range, never in it. A port in the ephemeral range can be taken, between the
/// moment the harness checks it and the moment a service binds it, by any outgoing
/// connection on the machine (the services' own gRPC clients included), and the
/// service then fails with "Address already in use".
fn port_range() -> std::ops::Range<u16> {
    static RANGE: OnceLock<std::ops::Range<u16>> = OnceLock::new();
    RANGE
        .get_or_init(|| {
            let ephemeral_low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
                .ok()
                .and_then(|text| text.split_whitespace().next()?.parse::<u16>().ok())
                .unwrap_or(32_768);
            assert!(
                ephemeral_low >= FIRST_PORT + 2_000,
                "the ephemeral port range starts at {ephemeral_low}, leaving too few ports \
                 below it for the e2e tests"
            );
            FIRST_PORT..ephemeral_low
        })
        .clone()
}

/// Marks `port` handed out, in this process and across the test processes that
/// nextest runs side by side: a file named after the port, made with `create_new`
/// in a directory they share, holds the claiming process's pid. A file whose
/// process is gone is stale and taken over. False if the port is claimed.
fn claim(port: u16) -> bool {
    let mut guard = HANDED_OUT.lock().expect("port set lock");
    if guard.get_or_insert_with(HashSet::new).contains(&port) {
        return false;
    }
    let dir = std::env::temp_dir().join("basalt-e2e-ports");
    fs::create_dir_all(&dir).expect("create the shared port claim dir");
    let path = dir.join(port.to_string());
    for _ in 0..2 {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                use std::io::Write;
                file.write_all(std::process::id().to_string().as_bytes())
                    .expect("write a port claim");
                guard.get_or_insert_with(HashSet::new).insert(port);
                return true;
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = fs::read_to_string(&path).unwrap_or_default();
                let alive = owner
                    .trim()
                    .parse::<u32>()
                    .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                if alive {
                    return false;
                }
                // Stale: its process ended. Whoever removes it first retries.
                let _ = fs::remove_file(&path);
            }
            Err(err) => panic!("claim port {port} in {}: {err}", dir.display()),
        }
    }
    false
}

fn tcp_port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A random port in [`port_range`].
fn random_port(len: u16) -> u16 {
    let range = port_range();
    range.start + (random_u64() % u64::from(range.end - range.start - len)) as u16
}

/// A TCP port on 127.0.0.1 that was free a moment ago, claimed by no other test.
pub(crate) fn free_port() -> u16 {
    free_port_block(1)
}

/// A port free for both TCP and UDP (DNS uses both).
fn free_dns_port() -> u16 {
    for _ in 0..100 {
        let port = free_port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both TCP and UDP");
}

/// The first of `len` consecutive free TCP ports, claimed by no other test.
fn free_port_block(len: u16) -> u16 {
    for _ in 0..500 {
        let base = random_port(len);
        let ports = base..base + len;
        if ports.clone().all(tcp_port_is_free) && ports.clone().all(claim) {
            return base;
        }
    }
    let range = port_range();
    panic!(
        "no {len} consecutive free ports in {}..{}",
        range.start, range.end
    );
}
