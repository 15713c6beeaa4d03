//! http-01 against a real HTTP server on 127.0.0.1 and a fake [`Lookup`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use tokio::io::AsyncRead;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWrite;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use super::*;

const TOKEN: &str = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
const KEY_AUTH: &str =
    "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";

/// What the test server answers.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send `Content-Length`; without it the body ends when the connection closes.
    content_length: bool,
}

impl Reply {
    fn ok(body: &str) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            content_length: true,
        }
    }

    fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::ok("")
        }
    }

    fn redirect(location: &str) -> Self {
        Self {
            status: 302,
            headers: vec![("Location".into(), location.into())],
            ..Self::ok("")
        }
    }
}

/// One request the server saw.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: HashMap<String, String>,
}

type Handler = Arc<dyn Fn(&str) -> Option<Reply> + Send + Sync>;

/// A tiny HTTP/1.1 server: one request per connection, answered by `handler`
/// (`None` means never answer).
struct TestServer {
    port: u16,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    async fn start(handler: impl Fn(&str) -> Option<Reply> + Send + Sync + 'static) -> Self {
        Self::start_with(None, handler).await
    }

    /// The same server behind TLS, with a self-signed certificate for `name`.
    async fn start_tls(
        name: &str,
        handler: impl Fn(&str) -> Option<Reply> + Send + Sync + 'static,
    ) -> Self {
        let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
        Self::start_with(
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
            handler,
        )
        .await
    }

    async fn start_with(
        tls: Option<tokio_rustls::TlsAcceptor>,
        handler: impl Fn(&str) -> Option<Reply> + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let (conns, log) = (connections.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                conns.fetch_add(1, Ordering::SeqCst);
                let (handler, log, tls) = (handler.clone(), log.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve(stream, handler, log).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, handler, log).await;
                            }
                        }
                    }
                });
            }
        });
        Self {
            port,
            connections,
            seen,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads one request head from `stream` and writes the handler's reply.
async fn serve(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    handler: Handler,
    log: Arc<Mutex<Vec<Seen>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or_default()
        .to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    log.lock().unwrap().push(Seen {
        path: path.clone(),
        headers,
    });
    let Some(reply) = handler(&path) else {
        tokio::time::sleep(Duration::from_secs(30)).await;
        return;
    };
    let mut out = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
    if reply.content_length {
        out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(&reply.body);
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}

/// Resolves the names it was given; every other name is NXDOMAIN.
struct FakeLookup(HashMap<String, Vec<IpAddr>>);

impl FakeLookup {
    fn new(entries: &[(&str, &[&str])]) -> Arc<Self> {
        Arc::new(Self(
            entries
                .iter()
                .map(|(name, ips)| {
                    let ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
                    ((*name).to_owned(), ips)
                })
                .collect(),
        ))
    }

    /// Every name in `names` resolves to 127.0.0.1.
    fn localhost(names: &[&str]) -> Arc<Self> {
        let entries: Vec<(&str, &[&str])> =
            names.iter().map(|n| (*n, &["127.0.0.1"][..])).collect();
        Self::new(&entries)
    }
}

#[async_trait]
impl Lookup for FakeLookup {
    async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, Error> {
        self.0.get(host).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::Dns,
                format!("no valid A or AAAA records for {host}"),
            )
        })
    }
}

fn http01(lookup: Arc<dyn Lookup>, port: u16, allow_private: bool) -> Http01 {
    Http01::new(lookup, port, 443, Duration::from_secs(3), allow_private).unwrap()
}

async fn validate(http01: &Http01, identifier: Identifier) -> ValidationResult {
    http01.validate(&identifier, TOKEN, KEY_AUTH).await.unwrap()
}

fn challenge_path() -> String {
    format!("/.well-known/acme-challenge/{TOKEN}")
}

fn problem(result: &ValidationResult) -> &Error {
    result
        .problem
        .as_ref()
        .expect("validation should have failed")
}

mod ssrf;

#[tokio::test]
async fn correct_key_authorization_validates() {
    let server = TestServer::start(|_| Some(Reply::ok(&format!("{KEY_AUTH}\r\n  \n")))).await;
    let va = http01(FakeLookup::localhost(&["example.com"]), server.port, true);

    let result = validate(&va, Identifier::dns("example.com")).await;

    assert_eq!(result.problem, None);
    let localhost: IpAddr = "127.0.0.1".parse().unwrap();
    assert_eq!(
        result.records,
        vec![ValidationRecord {
            url: Some(format!(
                "http://example.com:{}{}",
                server.port,
                challenge_path()
            )),
            hostname: "example.com".into(),
            port: Some(server.port),
            addresses_resolved: vec![localhost],
            address_used: Some(localhost),
            perspectives: Vec::new(),
        }]
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, challenge_path());
    assert_eq!(
        seen[0].headers["host"],
        format!("example.com:{}", server.port)
    );
    assert_eq!(seen[0].headers["user-agent"], "basalt-va");
}

#[tokio::test]
async fn wrong_body_is_an_incorrect_response() {
    let server = TestServer::start(|_| Some(Reply::ok("not the key authorization"))).await;
    let va = http01(FakeLookup::localhost(&["example.com"]), server.port, true);

    let result = validate(&va, Identifier::dns("example.com")).await;

    let problem = problem(&result);
    assert_eq!(problem.kind, ErrorKind::IncorrectResponse);
    assert!(
        problem
            .detail
            .starts_with("the key authorization file from the server did not match this challenge"),
        "{problem}"
    );
    assert!(
        problem.detail.contains("\"not the key authorization\""),
        "{problem}"
    );
    assert_eq!(result.records.len(), 1);
}

#[tokio::test]
async fn leading_whitespace_or_a_prefix_does_not_match() {
    for body in [
        format!(" {KEY_AUTH}"),
        KEY_AUTH[..KEY_AUTH.len() - 1].to_owned(),
        format!("{KEY_AUTH}x"),
    ] {
        let server = TestServer::start(move |_| Some(Reply::ok(&body))).await;
        let va = http01(FakeLookup::localhost(&["example.com"]), server.port, true);
        let result = validate(&va, Identifier::dns("example.com")).await;
        assert_eq!(problem(&result).kind, ErrorKind::IncorrectResponse);
    }
}

#[tokio::test]
async fn not_found_is_unauthorized() {
    let server = TestServer::start(|_| Some(Reply::status(404))).await;
    let va = http01(FakeLookup::localhost(&["example.com"]), server.port, true);

    let result = validate(&va, Identifier::dns("example.com")).await;

    let problem = problem(&result);
    assert_eq!(problem.kind, ErrorKind::Unauthorized);
    assert_eq!(
        problem.detail,
        format!(
            "invalid response from http://example.com:{}{}: 404",
            server.port,
            challenge_path()
        )
    );
}

#[tokio::test]
async fn loopback_is_refused_without_connecting() {
    let server = TestServer::start(|_| Some(Reply::ok(KEY_AUTH))).await;
    let lookup = FakeLookup::new(&[("example.com", &["127.0.0.1", "::1"])]);
    let va = http01(lookup, server.port, false);

    let result = validate(&va, Identifier::dns("example.com")).await;

    let problem = problem(&result);
    assert_eq!(problem.kind, ErrorKind::Dns);
    assert!(
        problem
            .detail
            .starts_with("no public addresses for example.com"),
        "{problem}"
    );
    assert_eq!(server.connections(), 0);
    assert_eq!(result.records.len(), 1);
    assert_eq!(result.records[0].addresses_resolved.len(), 2);
    assert_eq!(result.records[0].address_used, None);
}

#[tokio::test]
async fn reserved_addresses_are_skipped_for_public_ones() {
    let va = http01(
        FakeLookup::new(&[(
            "example.com",
            &["10.0.0.1", "fd00::1", "192.0.2.1", "1.2.3.4"],
        )]),
        80,
        false,
    );
    let url = va
        .first_url(&Identifier::dns("example.com"), TOKEN)
        .unwrap();
    let resolved = va.lookup.lookup_ip("example.com").await.unwrap();
    let candidates = va.candidates("example.com", &url, &resolved).unwrap();
    assert_eq!(candidates, vec!["1.2.3.4".parse::<IpAddr>().unwrap()]);
}

#[tokio::test]
async fn ipv6_is_tried_first_then_ipv4() {
    let va = http01(
        FakeLookup::new(&[(
            "example.com",
            &["1.2.3.4", "5.6.7.8", "2606:4700::1", "2606:4700::2"],
        )]),
        80,
        false,
    );
    let url = va
        .first_url(&Identifier::dns("example.com"), TOKEN)
        .unwrap();
    let resolved = va.lookup.lookup_ip("example.com").await.unwrap();
    let candidates = va.candidates("example.com", &url, &resolved).unwrap();
    let expected: Vec<IpAddr> = vec!["2606:4700::1".parse().unwrap(), "1.2.3.4".parse().unwrap()];
    assert_eq!(candidates, expected);
}

#[tokio::test]
async fn falls_back_to_ipv4_when_ipv6_fails() {
    let server = TestServer::start(|_| Some(Reply::ok(KEY_AUTH))).await;
    // Nothing listens on [::1]:port (or ::1 does not exist here): either way
    // the connection fails and the VA moves on to 127.0.0.1.
    let lookup = FakeLookup::new(&[("example.com", &["::1", "127.0.0.1"])]);
    let va = http01(lookup, server.port, true);

    let result = validate(&va, Identifier::dns("example.com")).await;

    assert_eq!(result.problem, None);
    assert_eq!(
        result.records[0].address_used,
        Some("127.0.0.1".parse().unwrap())
    );
}

#[tokio::test]
async fn ip_identifier_uses_no_dns_and_is_filtered() {
    let server = TestServer::start(|_| Some(Reply::ok(KEY_AUTH))).await;
    // An empty lookup: any DNS query would fail the validation.
    let lookup = FakeLookup::new(&[]);

    let refused = validate(
        &http01(lookup.clone(), server.port, false),
        Identifier::ip("127.0.0.1"),
    )
    .await;
    assert_eq!(problem(&refused).kind, ErrorKind::Connection);
    assert!(
        problem(&refused).detail.contains("127.0.0.1 is loopback"),
        "{:?}",
        refused.problem
    );
    assert_eq!(server.connections(), 0);

    let result = validate(
        &http01(lookup, server.port, true),
        Identifier::ip("127.0.0.1"),
    )
    .await;
    assert_eq!(result.problem, None);
    assert_eq!(result.records[0].hostname, "127.0.0.1");
    assert_eq!(
        server.seen()[0].headers["host"],
        format!("127.0.0.1:{}", server.port)
    );
}

#[tokio::test]
async fn redirect_chain_is_followed_and_recorded() {
    let server = TestServer::start(|path| {
        Some(match path {
            "/step2" => Reply::redirect("/final?x=1#frag"),
            "/final?x=1" => Reply::ok(KEY_AUTH),
            _ => Reply::redirect("http://second.example/step2"),
        })
    })
    .await;
    let va = http01(
        FakeLookup::localhost(&["first.example", "second.example"]),
        server.port,
        true,
    );

    let result = validate(&va, Identifier::dns("first.example")).await;

    assert_eq!(result.problem, None);
    let urls: Vec<_> = result
        .records
        .iter()
        .map(|r| r.url.clone().unwrap())
        .collect();
    let port = server.port;
    assert_eq!(
        urls,
        vec![
            format!("http://first.example:{port}{}", challenge_path()),
            format!("http://second.example:{port}/step2"),
            format!("http://second.example:{port}/final?x=1"),
        ]
    );
    let hosts: Vec<_> = result.records.iter().map(|r| r.hostname.as_str()).collect();
    assert_eq!(hosts, ["first.example", "second.example", "second.example"]);
    assert!(
        result
            .records
            .iter()
            .all(|r| r.port == Some(port) && r.address_used.is_some())
    );
    let seen_hosts: Vec<_> = server
        .seen()
        .iter()
        .map(|s| s.headers["host"].clone())
        .collect();
    assert_eq!(seen_hosts[1], format!("second.example:{port}"));
}

#[tokio::test]
async fn redirect_to_https_ignores_the_certificate() {
    let secure = TestServer::start_tls("secure.example", |path| {
        Some(if path == "/final" {
            Reply::ok(KEY_AUTH)
        } else {
            Reply::status(404)
        })
    })
    .await;
    let plain = TestServer::start(|_| Some(Reply::redirect("https://secure.example/final"))).await;
    let lookup = FakeLookup::localhost(&["example.com", "secure.example"]);
    let va = Http01::new(
        lookup,
        plain.port,
        secure.port,
        Duration::from_secs(3),
        true,
    )
    .unwrap();

    let result = validate(&va, Identifier::dns("example.com")).await;

    assert_eq!(result.problem, None);
    assert_eq!(result.records.len(), 2);
    assert_eq!(
        result.records[1].url.as_deref(),
        Some(format!("https://secure.example:{}/final", secure.port).as_str())
    );
    assert_eq!(result.records[1].port, Some(secure.port));
    assert_eq!(secure.seen()[0].headers["user-agent"], "basalt-va");
}

#[tokio::test]
async fn plain_http_to_a_tls_port_is_a_connection_problem() {
    // The redirect says http:// but names the https port, where a TLS server
    // answers: the VA gets garbage back, which must be a problem, not a panic.
    let secure = TestServer::start_tls("secure.example", |_| Some(Reply::ok(KEY_AUTH))).await;
    let plain = TestServer::start(move |_| None).await;
    let lookup = FakeLookup::localhost(&["secure.example"]);
    let va = Http01::new(
        lookup,
        plain.port,
        secure.port,
        Duration::from_secs(2),
        true,
    )
    .unwrap();
    let url = Url::parse(&format!("http://secure.example:{}/x", secure.port)).unwrap();
    let mut records = Vec::new();
    let outcome = va
        .fetch(&url, &mut records, Instant::now() + Duration::from_secs(2))
        .await;
    match outcome {
        Err(Stop::Problem(problem)) => assert_eq!(problem.kind, ErrorKind::Connection, "{problem}"),
        Err(Stop::Internal(err)) => panic!("internal error {err}"),
        Ok(_) => panic!("fetched plain http from a tls server"),
    }
}

#[tokio::test]
async fn redirect_to_another_port_is_refused() {
    let server =
        TestServer::start(|_| Some(Reply::redirect("http://example.com:8080/elsewhere"))).await;
    let va = http01(FakeLookup::localhost(&["example.com"]), server.port, true);

    let result = validate(&va, Identifier::dns("example.com")).await;

    let problem = problem(&result);
    assert_eq!(problem.kind, ErrorKind::Connection);
    assert!(problem.detail.contains("not 8080"), "{problem}");
    assert_eq!(server.connections(), 1);
    assert_eq!(result.records.len(), 1);
}

#[tokio::test]
async fn ten_redirects_are_followed_but_not_eleven() {
    // /r/N redirects to /r/N+1 until N reaches `hops`, then answers.
    async fn chain(hops: usize) -> (ValidationResult, usize) {
        let server = TestServer::start(move |path| {
            let n: usize = path
                .strip_prefix("/r/")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            Some(if n == hops {
                Reply::ok(KEY_AUTH)
            } else {
                Reply::redirect(&format!("/r/{}", n + 1))
            })
        })
        .await;
        let va = http01(FakeLookup::localhost(&["example.com"]), server.port, true);
        let result = validate(&va, Identifier::dns("example.com")).await;
        (result, server.connections())
    }

    let (ten, _) = chain(10).await;
    assert_eq!(ten.problem, None);
    assert_eq!(ten.records.len(), 11);

    let (eleven, connections) = chain(11).await;
    let problem = problem(&eleven);
    assert_eq!(problem.kind, ErrorKind::Connection);
    assert!(
        problem.detail.starts_with("too many redirects"),
        "{problem}"
    );
    assert_eq!(eleven.records.len(), 11);
    assert_eq!(connections, 11);
}

#[tokio::test]
async fn too_big_bodies_are_refused() {
    for content_length in [true, false] {
        let server = TestServer::start(move |_| {
            let mut reply = Reply::ok(&format!("{KEY_AUTH}{}", " ".repeat(MAX_BODY_BYTES)));
            reply.content_length = content_length;
            Some(reply)
        })
        .await;
        let va = http01(FakeLookup::localhost(&["example.com"]), server.port, true);

        let result = validate(&va, Identifier::dns("example.com")).await;

        let problem = problem(&result);
        assert_eq!(
            problem.kind,
            ErrorKind::Unauthorized,
            "content-length {content_length}"
        );
        assert!(
            problem.detail.contains("larger than 1024 bytes"),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn body_without_content_length_is_read_to_the_end() {
    let server = TestServer::start(|_| {
        let mut reply = Reply::ok(KEY_AUTH);
        reply.content_length = false;
        Some(reply)
    })
    .await;
    let va = http01(FakeLookup::localhost(&["example.com"]), server.port, true);
    assert_eq!(
        validate(&va, Identifier::dns("example.com")).await.problem,
        None
    );
}

#[tokio::test]
async fn connection_refused_is_a_connection_problem() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let va = http01(FakeLookup::localhost(&["example.com"]), port, true);

    let result = validate(&va, Identifier::dns("example.com")).await;

    let problem = problem(&result);
    assert_eq!(problem.kind, ErrorKind::Connection);
    assert!(
        problem
            .detail
            .starts_with(&format!("127.0.0.1:{port}: connection refused")),
        "{problem}"
    );
    assert_eq!(
        result.records[0].address_used,
        Some("127.0.0.1".parse().unwrap())
    );
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let server = TestServer::start(|_| None).await;
    let va = Http01::new(
        FakeLookup::localhost(&["example.com"]),
        server.port,
        443,
        Duration::from_millis(300),
        true,
    )
    .unwrap();

    let result = validate(&va, Identifier::dns("example.com")).await;

    let problem = problem(&result);
    assert_eq!(problem.kind, ErrorKind::Connection);
    assert!(
        problem.detail.contains("timeout after connect"),
        "{problem}"
    );
}

#[tokio::test]
async fn dns_failures_are_reported() {
    let va = http01(FakeLookup::new(&[]), 80, false);
    let result = validate(&va, Identifier::dns("missing.example")).await;
    let problem = problem(&result);
    assert_eq!(problem.kind, ErrorKind::Dns);
    assert_eq!(
        problem.detail,
        "no valid A or AAAA records for missing.example"
    );
    assert_eq!(result.records.len(), 1);
    assert!(result.records[0].addresses_resolved.is_empty());
}

#[tokio::test]
async fn malformed_identifiers_and_tokens_are_refused() {
    let va = http01(FakeLookup::new(&[]), 80, true);
    for identifier in [
        Identifier::dns("evil.example/path"),
        Identifier::dns("user@evil.example"),
        Identifier::dns("*.example.com"),
        Identifier::dns("a..example"),
        Identifier::dns(""),
        Identifier::ip("10.0.0.256"),
        Identifier::ip("example.com"),
    ] {
        let result = validate(&va, identifier.clone()).await;
        assert_eq!(
            problem(&result).kind,
            ErrorKind::Malformed,
            "{identifier:?}"
        );
        assert!(result.records.is_empty());
    }
    for token in ["", "a/b", "a?b", "../x"] {
        let result = va
            .validate(&Identifier::dns("example.com"), token, KEY_AUTH)
            .await
            .unwrap();
        assert_eq!(problem(&result).kind, ErrorKind::Malformed, "{token:?}");
    }
}

#[test]
fn redirect_targets_are_checked() {
    let va = http01(FakeLookup::new(&[]), 80, false);
    let current = Url::parse("http://example.com/.well-known/acme-challenge/x").unwrap();
    let target = |location: &str| va.redirect_target(&current, location);

    assert_eq!(
        target("/other").unwrap().as_str(),
        "http://example.com/other"
    );
    assert_eq!(
        target("https://b.example/p").unwrap().as_str(),
        "https://b.example/p"
    );
    assert_eq!(
        target("http://b.example:443/p").unwrap().as_str(),
        "http://b.example:443/p"
    );
    assert_eq!(
        target("//c.example/q#frag").unwrap().as_str(),
        "http://c.example/q"
    );
    assert_eq!(
        target("http://8.8.8.8/").unwrap().as_str(),
        "http://8.8.8.8/"
    );

    for bad in [
        "ftp://b.example/",
        "file:///etc/passwd",
        "http://user:pass@b.example/",
        "http://user@b.example/",
        "http://b.example:8080/",
        "https://b.example:22/",
        "http://10.0.0.1/",
        "http://127.1/",
        "http://2130706433/",
        "http://[::1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00::1]/",
        "http://b_c.example/",
        "http:// /",
    ] {
        let err = target(bad).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Connection, "{bad}");
    }

    let lab = http01(FakeLookup::new(&[]), 5002, true);
    assert_eq!(
        lab.redirect_target(&current, "http://10.0.0.1/x")
            .unwrap()
            .as_str(),
        "http://10.0.0.1:5002/x"
    );
    assert_eq!(
        lab.redirect_target(&current, "https://b.example/")
            .unwrap()
            .as_str(),
        "https://b.example/"
    );
    // An explicit :80 is the scheme's default, so it means "the http port".
    assert_eq!(
        lab.redirect_target(&current, "http://b.example:80/")
            .unwrap()
            .as_str(),
        "http://b.example:5002/"
    );
    assert!(
        lab.redirect_target(&current, "http://b.example:8080/")
            .is_err()
    );
}

#[test]
fn dns_names_are_checked() {
    for good in [
        "example.com",
        "a-b.example",
        "xn--bcher-kva.example",
        "localhost",
        "1.example",
    ] {
        assert!(is_dns_name(good), "{good}");
    }
    let long_label = format!("{}.example", "a".repeat(64));
    for bad in [
        "",
        ".",
        "a..b",
        "-a.example",
        "a-.example",
        "a_b.example",
        "*.example",
        &long_label,
    ] {
        assert!(!is_dns_name(bad), "{bad}");
    }
}
