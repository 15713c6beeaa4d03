//! `basalt loadgen` for a few seconds against `basalt dev` and against Pebble
//! (Debian's `pebble`, with pebble-challtestsrv as its DNS): zero errors on a
//! healthy server, samples for every step, a JSON report that parses.

use std::fs;
use std::net::TcpStream;
use std::net::UdpSocket;
use std::path::Path;
use std::path::PathBuf;
use std::process::Child;
use std::process::Command;
use std::process::Stdio;
use std::thread;
use std::time::Duration;
use std::time::Instant;

use serde_json::Value;
use serde_json::json;

use crate::harness::CmdOutput;
use crate::harness::DevCa;
use crate::harness::basalt_bin;
use crate::harness::free_port;
use crate::harness::random_u64;
use crate::harness::run;

/// How long one loadgen run may take, setup and draining included.
const LOADGEN_TIMEOUT: Duration = Duration::from_secs(180);
/// How long Pebble and its DNS have to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `basalt loadgen` against `directory` at concurrency 4 for `seconds`,
/// answering http-01 on 127.0.0.1:`http01_port`, with `extra` flags; returns its
/// output and its JSON report.
fn loadgen(
    directory: &str,
    ca_bundle: &Path,
    http01_port: u16,
    seconds: u32,
    extra: &[&str],
    json: &Path,
) -> (CmdOutput, Value) {
    let output = run(
        Command::new(basalt_bin())
            .arg("loadgen")
            .args(["--directory", directory])
            .arg("--ca-bundle")
            .arg(ca_bundle)
            .args(["--http01-listen", &format!("127.0.0.1:{http01_port}")])
            .args(["--concurrency", "4", "--accounts", "4"])
            .args(["--duration", &format!("{seconds}s")])
            .arg("--json")
            .arg(json)
            .args(extra),
        LOADGEN_TIMEOUT,
    );
    assert!(
        output.status.success(),
        "basalt loadgen failed ({}):\n{}",
        output.status,
        output.text()
    );
    let text = fs::read_to_string(json)
        .unwrap_or_else(|err| panic!("read {}: {err}\n{}", json.display(), output.text()));
    let report: Value = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("the JSON report does not parse: {err}\n{text}"));
    (output, report)
}

/// The checks every healthy run passes: orders issued, none failed, the counts
/// agree, the CPU was measured.
fn assert_healthy(output: &CmdOutput, report: &Value) {
    let context = || format!("{}\n{report:#}", output.text());
    let ok = report["orders"]["ok"].as_u64().unwrap_or_default();
    assert!(ok > 0, "no order issued: {}", context());
    assert_eq!(report["orders"]["failed"], 0, "{}", context());
    assert_eq!(report["errors"], json!([]), "{}", context());
    assert!(
        output.stdout.contains("errors: none"),
        "the table says errors: {}",
        context()
    );
    assert_eq!(report["latency"]["count"], ok, "{}", context());
    assert!(
        report["orders_per_second"].as_f64().unwrap_or_default() > 0.0,
        "{}",
        context()
    );
    let latency = &report["latency"];
    assert!(
        latency["p50_ms"].as_f64() <= latency["p99_ms"].as_f64()
            && latency["p99_ms"].as_f64() <= latency["max_ms"].as_f64(),
        "{}",
        context()
    );
    assert!(
        report["cpu"]["seconds"].as_f64().is_some(),
        "the loadgen's CPU use was not measured: {}",
        context()
    );
}

/// Panics unless each of `steps` has samples in the report.
fn assert_steps_sampled(report: &Value, steps: &[&str]) {
    for step in steps {
        let count = report["steps"][step]["count"].as_u64().unwrap_or_default();
        assert!(count > 0, "no samples for step {step}: {report:#}");
    }
}

#[test]
fn loadgen_against_basalt_dev() {
    // The generated names all fall under one registered domain, and a few
    // seconds of issuance passes Let's Encrypt's limits for it. The RA answers
    // finalize at once, so the loadgen's order polling is exercised too.
    let ca = DevCa::builder("loadgen")
        .arg("--rate-limits")
        .arg("off")
        .arg("--issuance-wait")
        .arg("0s")
        .start();
    let json = ca.client_dir("loadgen").join("report.json");
    let (output, report) = loadgen(
        &ca.directory_url,
        &ca.api_ca,
        ca.http01_port,
        4,
        &["--names", "2", "--revoke"],
        &json,
    );
    assert_healthy(&output, &report);
    // Basalt issues after finalize returns (`processing`, with no issuance
    // wait), so poll_order has samples too; two names per order, so two
    // authorizations each.
    assert_steps_sampled(
        &report,
        &[
            "new_order",
            "authorization",
            "challenge",
            "poll_authorization",
            "finalize",
            "poll_order",
            "download",
            "revoke",
        ],
    );
    assert_eq!(
        report["steps"]["authorization"]["count"].as_u64(),
        report["steps"]["new_order"]["count"]
            .as_u64()
            .map(|orders| 2 * orders),
        "{report:#}"
    );
    assert_eq!(report["settings"]["directory"], ca.directory_url.as_str());
    assert_eq!(report["settings"]["mode"], "concurrency");
}

/// Pebble and its mock DNS, in a temp dir; dropping it stops both.
struct Pebble {
    root: PathBuf,
    directory_url: String,
    /// The CA of Pebble's HTTPS certificate.
    ca_pem: PathBuf,
    /// Where Pebble's VA connects for http-01: the loadgen's responder.
    http01_port: u16,
    pebble: Option<Child>,
    dns: Option<Child>,
}

impl Pebble {
    fn start() -> Self {
        let root = std::env::temp_dir().join(format!(
            "basalt-e2e-loadgen-pebble-{}-{:x}",
            std::process::id(),
            random_u64() & 0xffff_ffff
        ));
        fs::create_dir_all(&root).expect("create the Pebble dir");
        let (ca_pem, cert, key) = https_certificate(&root);
        let listen_port = free_port();
        let http01_port = free_port();
        let dns_port = free_udp_and_tcp_port();
        let mut pebble = Self {
            directory_url: format!("https://127.0.0.1:{listen_port}/dir"),
            root,
            ca_pem,
            http01_port,
            pebble: None,
            dns: None,
        };

        let dns_management_port = free_port();
        let dns_log = pebble.log_file("challtestsrv.log");
        pebble.dns = Some(
            Command::new("pebble-challtestsrv")
                .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
                .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
                .args(["-management", &format!("127.0.0.1:{dns_management_port}")])
                .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
                .stdin(Stdio::null())
                .stdout(dns_log.try_clone().expect("clone a file handle"))
                .stderr(dns_log)
                .spawn()
                .expect("start pebble-challtestsrv (apt-get install pebble)"),
        );
        pebble.wait_for_port(dns_management_port, "pebble-challtestsrv");

        let config = json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{listen_port}"),
                "managementListenAddress": format!("127.0.0.1:{}", free_port()),
                "certificate": cert,
                "privateKey": key,
                "httpPort": http01_port,
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
            }
        });
        let config_path = pebble.root.join("pebble-config.json");
        fs::write(&config_path, config.to_string()).expect("write the Pebble config");
        let pebble_log = pebble.log_file("pebble.log");
        pebble.pebble = Some(
            Command::new("pebble")
                .arg("-config")
                .arg(&config_path)
                .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
                // Validate at once, and never refuse a good nonce.
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .stdin(Stdio::null())
                .stdout(pebble_log.try_clone().expect("clone a file handle"))
                .stderr(pebble_log)
                .spawn()
                .expect("start pebble (apt-get install pebble)"),
        );
        pebble.wait_for_port(listen_port, "pebble");
        pebble
    }

    fn log_file(&self, name: &str) -> fs::File {
        fs::File::create(self.root.join(name)).expect("create a log file")
    }

    /// Waits until something accepts TCP connections on `port`.
    fn wait_for_port(&mut self, port: u16, what: &str) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            let exited = [&mut self.pebble, &mut self.dns]
                .into_iter()
                .flatten()
                .find_map(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!("{what}: a child exited early ({status})\n{}", self.logs());
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{what} is not listening on 127.0.0.1:{port}\n{}",
            self.logs()
        );
    }

    fn logs(&self) -> String {
        ["pebble.log", "challtestsrv.log"]
            .iter()
            .map(|name| {
                let text = fs::read_to_string(self.root.join(name)).unwrap_or_default();
                format!("===== {name} =====\n{text}\n")
            })
            .collect()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for mut child in [self.pebble.take(), self.dns.take()].into_iter().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!("{}", self.logs());
            eprintln!("(files kept in {})", self.root.display());
        } else {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// A port free for both TCP and UDP (DNS uses both), claimed by no other test.
fn free_udp_and_tcp_port() -> u16 {
    for _ in 0..100 {
        let port = free_port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both TCP and UDP");
}

/// A CA and, signed by it, Pebble's HTTPS certificate for 127.0.0.1 and
/// localhost; returns the paths of the CA, the certificate and its key.
fn https_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().expect("generate the CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "loadgen Pebble test CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("generate the HTTPS key");
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("HTTPS certificate params");
    let cert = params
        .signed_by(&key, &issuer)
        .expect("sign the HTTPS certificate");
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    fs::write(&paths.0, ca_cert.pem()).expect("write the CA");
    fs::write(&paths.1, cert.pem()).expect("write the HTTPS certificate");
    fs::write(&paths.2, key.serialize_pem()).expect("write the HTTPS key");
    paths
}

#[test]
fn loadgen_against_pebble() {
    let pebble = Pebble::start();
    let json = pebble.root.join("report.json");
    let (output, report) = loadgen(
        &pebble.directory_url,
        &pebble.ca_pem,
        pebble.http01_port,
        3,
        &["--revoke"],
        &json,
    );
    assert_healthy(&output, &report);
    // Whether Pebble's finalize answers `processing` or `valid` is its own
    // business, so poll_order may have no samples.
    assert_steps_sampled(
        &report,
        &[
            "new_order",
            "authorization",
            "challenge",
            "poll_authorization",
            "finalize",
            "download",
            "revoke",
        ],
    );
}
