//! Two WFE processes behind a round-robin TCP proxy, sharing the `basalt nonce`
//! service: `basalt dev --base-url` names the proxy, a second `basalt wfe` runs
//! from a copy of `wfe.toml`, and a client that opens a new connection for every
//! request completes an issuance, redeeming nonces one WFE handed out at the other.

use std::fs;
use std::net::TcpStream as StdTcpStream;
use std::process::Child;
use std::process::Command;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::net::TcpStream;

use crate::flow::RawAccount;
use crate::harness::DevCa;
use crate::harness::basalt_bin;
use crate::harness::free_port;
use crate::instant_acme::Http01;
use crate::instant_acme::pem_certs;
use crate::jws::Acme;
use crate::jws::answer;

/// How long the second WFE may take to listen, and to stop.
const WFE_TIMEOUT: Duration = Duration::from_secs(30);
/// How many nonce hand-overs the test tries.
const NONCE_ROUNDS: usize = 6;

/// A TCP proxy on 127.0.0.1 that hands each new connection to the next backend
/// in turn and records which backend got it.
struct Proxy {
    /// The backend index of every connection, in order of arrival.
    served: Arc<Mutex<Vec<usize>>>,
}

impl Proxy {
    async fn start(port: u16, backends: Vec<u16>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|err| panic!("bind the proxy on {port}: {err}"));
        let served: Arc<Mutex<Vec<usize>>> = Arc::default();
        let log = served.clone();
        let next = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let index = next.fetch_add(1, Ordering::SeqCst) % backends.len();
                log.lock().expect("proxy log lock").push(index);
                let backend = backends[index];
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", backend)).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        Self { served }
    }

    /// How many connections so far.
    fn count(&self) -> usize {
        self.served.lock().expect("proxy log lock").len()
    }

    /// The backends of the connections after the first `from`.
    fn since(&self, from: usize) -> Vec<usize> {
        self.served.lock().expect("proxy log lock")[from..].to_vec()
    }

    /// Connections per backend.
    fn per_backend(&self, backends: usize) -> Vec<usize> {
        let served = self.served.lock().expect("proxy log lock");
        (0..backends)
            .map(|b| served.iter().filter(|i| **i == b).count())
            .collect()
    }
}

/// A second `basalt wfe` on another port, from a copy of `DIR/config/wfe.toml`;
/// it stops when this is dropped (its stdin closes).
struct SecondWfe {
    child: Option<Child>,
    port: u16,
}

impl SecondWfe {
    fn start(ca: &DevCa) -> Self {
        let text = fs::read_to_string(ca.config("wfe")).expect("read wfe.toml");
        assert!(
            text.lines().any(|line| line.trim() == "[nonce]"),
            "wfe.toml has no [nonce] block, so WFEs cannot share nonces:\n{text}"
        );
        let port = free_port();
        // Its own metrics port too: the first WFE holds the one in the copy.
        let debug_port = free_port();
        let mut replaced = false;
        let copy: Vec<String> = text
            .lines()
            .map(|line| {
                if !replaced && line.trim_start().starts_with("listen") {
                    replaced = true;
                    format!("listen = \"127.0.0.1:{port}\"")
                } else if line.trim_start().starts_with("debug_listen") {
                    format!("debug_listen = \"127.0.0.1:{debug_port}\"")
                } else {
                    line.to_owned()
                }
            })
            .collect();
        assert!(replaced, "wfe.toml has no listen line:\n{text}");
        let config = ca.config("wfe2");
        fs::write(&config, copy.join("\n") + "\n").expect("write wfe2.toml");
        let log = fs::File::create(ca.data_dir.join("logs/wfe2.log")).expect("create wfe2.log");
        let child = Command::new(basalt_bin())
            .arg("wfe")
            .arg("--config")
            .arg(&config)
            .arg("--stop-on-stdin-eof")
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("clone a file handle"))
            .stderr(log)
            .spawn()
            .expect("start a second basalt wfe");
        let mut wfe = Self {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + WFE_TIMEOUT;
        while StdTcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = wfe.child.as_mut().and_then(|c| c.try_wait().ok()?) {
                panic!("the second WFE exited ({status}); see wfe2.log");
            }
            assert!(
                Instant::now() < deadline,
                "the second WFE is not listening on {port}"
            );
            thread::sleep(Duration::from_millis(100));
        }
        wfe
    }
}

impl Drop for SecondWfe {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        drop(child.stdin.take());
        let deadline = Instant::now() + WFE_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                Ok(None) | Err(_) => break,
            }
        }
        eprintln!("the second WFE did not stop when its stdin closed; killing it");
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_wfes_share_nonces_behind_a_round_robin_proxy() {
    let proxy_port = free_port();
    let base_url = format!("https://127.0.0.1:{proxy_port}");
    let ca = DevCa::builder("multi-wfe")
        .arg("--base-url")
        .arg(base_url.clone())
        .start();
    // Dropped before `ca`, so it never outlives the CA it talks to.
    let second = SecondWfe::start(&ca);
    assert_eq!(
        ca.directory_url,
        format!("{base_url}/directory"),
        "basalt dev --base-url"
    );
    let proxy = Proxy::start(proxy_port, vec![ca.api_port(), second.port]).await;
    let acme = Acme::without_connection_reuse(&ca).await;
    let http01 = Http01::start(ca.http01_port).await;
    let account = RawAccount::create(&acme).await;
    assert!(
        account.kid.starts_with(&format!("{base_url}/")),
        "the account URL {} is not under --base-url",
        account.kid
    );

    // A nonce from one WFE, redeemed at the next connection's WFE.
    let mut crossed = 0;
    let mut rounds = Vec::new();
    for _ in 0..NONCE_ROUNDS {
        let before = proxy.count();
        let nonce = acme.nonce().await;
        let issued_by = proxy.since(before);
        let header = account
            .key
            .header(Some(&account.kid), Some(&nonce), &account.kid);
        let before = proxy.count();
        let got = answer(
            acme.post(&account.kid, &account.key.jws(&header, None))
                .await,
        )
        .await;
        let redeemed_by = proxy.since(before);
        got.expect_status(
            StatusCode::OK,
            &format!("a nonce from WFE {issued_by:?} redeemed at WFE {redeemed_by:?}"),
        );
        if issued_by.len() == 1 && redeemed_by.len() == 1 && issued_by != redeemed_by {
            crossed += 1;
        }
        rounds.push((issued_by, redeemed_by));
    }
    assert!(
        crossed > 0,
        "no nonce was redeemed at another WFE than the one that issued it \
         (issued, redeemed) per round: {rounds:?}"
    );

    let issued = account
        .issue(&http01, &["multi-wfe.example.com"], &json!({}))
        .await;
    assert_eq!(pem_certs(&issued.chain_pem).len(), 2, "leaf + intermediate");
    assert!(
        issued.order_url.starts_with(&format!("{base_url}/")),
        "the order URL {} is not under --base-url",
        issued.order_url
    );

    let per_backend = proxy.per_backend(2);
    eprintln!(
        "connections per WFE: {per_backend:?}; nonces crossed WFEs in {crossed} of {NONCE_ROUNDS} rounds"
    );
    assert!(
        per_backend.iter().all(|n| *n > 0),
        "both WFEs must serve requests: {per_backend:?}"
    );
    assert!(
        proxy.count() >= 2 * NONCE_ROUNDS,
        "the client reused connections: {} connections for {} requests or more",
        proxy.count(),
        2 * NONCE_ROUNDS
    );
    drop(second);
}
