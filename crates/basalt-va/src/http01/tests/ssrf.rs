//! The SSRF battery: every way a subscriber's DNS or redirects could point the VA
//! at an address it must not reach, each with the problem it must give and proof
//! that no connection was made.
//!
//! A test server on 127.0.0.1 stands for the Internet (the policy treats that one
//! loopback address as public), and counting listeners on 127.0.0.2 and ::1 (same
//! port) stand for private networks: their counters prove a refused address got no
//! connection. Addresses no test can listen on (10.0.0.1, 169.254.169.254, …) are
//! unroutable here, so a connection attempt would show as a connect timeout (the
//! validation would take the whole timeout) and as an `address_used` in the record;
//! neither may happen.

use std::net::SocketAddr;
use std::time::Instant;

use super::*;
use crate::address::AddressPolicy;

/// The address standing for the Internet.
const PUBLIC: &str = "127.0.0.1";

/// A listener that only counts the connections it accepts.
struct Trap {
    connections: Arc<AtomicUsize>,
}

impl Trap {
    /// Listens on `ip:port`, or `None` where this machine cannot (no IPv6).
    async fn on(ip: &str, port: u16) -> Option<Self> {
        let addr = SocketAddr::new(ip.parse().unwrap(), port);
        let listener = TcpListener::bind(addr).await.ok()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        tokio::spawn(async move {
            while let Ok((_stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        Some(Self { connections })
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// One case of the battery.
struct Case {
    name: &'static str,
    /// What the subscriber's DNS says.
    dns: &'static [(&'static str, &'static [&'static str])],
    /// The identifier validated.
    identifier: Identifier,
    /// Where the public server redirects the challenge request, if it does.
    redirect: Option<&'static str>,
    /// The problem it must give.
    kind: ErrorKind,
    /// A piece of its detail.
    detail: &'static str,
}

fn dns(name: &'static str) -> Identifier {
    Identifier::dns(name)
}

fn cases() -> Vec<Case> {
    let case = |name, dns, identifier, redirect, kind, detail| Case {
        name,
        dns,
        identifier,
        redirect,
        kind,
        detail,
    };
    use ErrorKind::{Connection, Dns};
    vec![
        case(
            "A to 127.0.0.2",
            &[("a.example", &["127.0.0.2"])],
            dns("a.example"),
            None,
            Dns,
            "loopback",
        ),
        case(
            "A to 127.0.0.1/8 edge",
            &[("a.example", &["127.255.255.254"])],
            dns("a.example"),
            None,
            Dns,
            "loopback",
        ),
        case(
            "AAAA to ::1",
            &[("a.example", &["::1"])],
            dns("a.example"),
            None,
            Dns,
            "loopback",
        ),
        case(
            "A to 10/8",
            &[("a.example", &["10.0.0.1"])],
            dns("a.example"),
            None,
            Dns,
            "private",
        ),
        case(
            "A to 172.16/12",
            &[("a.example", &["172.16.5.4"])],
            dns("a.example"),
            None,
            Dns,
            "private",
        ),
        case(
            "A to 192.168/16",
            &[("a.example", &["192.168.1.1"])],
            dns("a.example"),
            None,
            Dns,
            "private",
        ),
        case(
            "A to the metadata service",
            &[("a.example", &["169.254.169.254"])],
            dns("a.example"),
            None,
            Dns,
            "link local",
        ),
        case(
            "A to CGNAT 100.64/10",
            &[("a.example", &["100.64.0.1"])],
            dns("a.example"),
            None,
            Dns,
            "shared",
        ),
        case(
            "A to 0.0.0.0",
            &[("a.example", &["0.0.0.0"])],
            dns("a.example"),
            None,
            Dns,
            "this network",
        ),
        case(
            "A to multicast",
            &[("a.example", &["224.0.0.1"])],
            dns("a.example"),
            None,
            Dns,
            "multicast",
        ),
        case(
            "A to broadcast",
            &[("a.example", &["255.255.255.255"])],
            dns("a.example"),
            None,
            Dns,
            "broadcast",
        ),
        case(
            "AAAA to ::ffff:127.0.0.2",
            &[("a.example", &["::ffff:127.0.0.2"])],
            dns("a.example"),
            None,
            Dns,
            "loopback",
        ),
        case(
            "AAAA to ::ffff:10.0.0.1",
            &[("a.example", &["::ffff:10.0.0.1"])],
            dns("a.example"),
            None,
            Dns,
            "private",
        ),
        case(
            "AAAA to fe80::",
            &[("a.example", &["fe80::1"])],
            dns("a.example"),
            None,
            Dns,
            "link local",
        ),
        case(
            "AAAA to fc00::/7",
            &[("a.example", &["fd12:3456::1"])],
            dns("a.example"),
            None,
            Dns,
            "unique local",
        ),
        case(
            "AAAA to ::",
            &[("a.example", &["::"])],
            dns("a.example"),
            None,
            Dns,
            "unspecified",
        ),
        case(
            "IP identifier 127.0.0.2",
            &[],
            Identifier::ip("127.0.0.2"),
            None,
            Connection,
            "loopback",
        ),
        case(
            "IP identifier 10.1.2.3",
            &[],
            Identifier::ip("10.1.2.3"),
            None,
            Connection,
            "private",
        ),
        case(
            "redirect to a name on a private address",
            &[
                ("a.example", &[PUBLIC]),
                ("private.example", &["127.0.0.2"]),
            ],
            dns("a.example"),
            Some("http://private.example/.well-known/acme-challenge/x"),
            Dns,
            "no public addresses for private.example",
        ),
        case(
            "redirect to a private IP literal",
            &[("a.example", &[PUBLIC])],
            dns("a.example"),
            Some("http://127.0.0.2/.well-known/acme-challenge/x"),
            Connection,
            "loopback",
        ),
        case(
            "redirect to an IPv4-mapped IPv6 literal",
            &[("a.example", &[PUBLIC])],
            dns("a.example"),
            Some("http://[::ffff:127.0.0.2]/.well-known/acme-challenge/x"),
            Connection,
            "loopback",
        ),
        case(
            "redirect to the metadata service",
            &[("a.example", &[PUBLIC])],
            dns("a.example"),
            Some("http://169.254.169.254/latest/meta-data/"),
            Connection,
            "link local",
        ),
        case(
            "redirect to another port",
            &[("a.example", &[PUBLIC])],
            dns("a.example"),
            Some("http://a.example:8080/.well-known/acme-challenge/x"),
            Connection,
            "not 8080",
        ),
        case(
            "redirect to ftp",
            &[("a.example", &[PUBLIC])],
            dns("a.example"),
            Some("ftp://a.example/x"),
            Connection,
            "ftp",
        ),
        case(
            "redirect to a file",
            &[("a.example", &[PUBLIC])],
            dns("a.example"),
            Some("file:///etc/passwd"),
            Connection,
            "file",
        ),
        case(
            "no address at all",
            &[],
            dns("nx.example"),
            None,
            Dns,
            "no valid A or AAAA",
        ),
        // The RA's policy refuses such a DNS identifier long before; the VA still
        // reads it as the address it is.
        case(
            "a DNS identifier that is an IP",
            &[],
            dns("127.0.0.2"),
            None,
            Connection,
            "loopback",
        ),
    ]
}

/// The http-01 validator of the battery: the public server's port, public
/// addresses only, 127.0.0.1 treated as public.
fn validator(lookup: Arc<dyn Lookup>, port: u16) -> Http01 {
    let mut va = http01(lookup, port, false);
    va.addresses = AddressPolicy::new(false).treating_as_public(PUBLIC.parse().unwrap());
    va
}

#[tokio::test]
async fn the_ssrf_battery() {
    let mut failures = Vec::new();
    let all = cases();
    assert!(all.len() >= 20, "the battery must stay at least 20 cases");
    for case in all {
        let redirect = case.redirect;
        let server = TestServer::start(move |_| {
            Some(match redirect {
                Some(location) => Reply::redirect(location),
                None => Reply::ok(KEY_AUTH),
            })
        })
        .await;
        let loopback = Trap::on("127.0.0.2", server.port).await.unwrap();
        let ipv6 = Trap::on("::1", server.port).await;
        let va = validator(FakeLookup::new(case.dns), server.port);

        let started = Instant::now();
        let result = validate(&va, case.identifier.clone()).await;
        let took = started.elapsed();

        let mut wrong = Vec::new();
        match &result.problem {
            None => wrong.push("validated".to_owned()),
            Some(problem) => {
                if problem.kind != case.kind {
                    wrong.push(format!("kind {:?}, not {:?}", problem.kind, case.kind));
                }
                if !problem.detail.contains(case.detail) {
                    wrong.push(format!(
                        "detail {:?} lacks {:?}",
                        problem.detail, case.detail
                    ));
                }
            }
        }
        if loopback.connections() != 0 {
            wrong.push("connected to 127.0.0.2".into());
        }
        if ipv6.as_ref().is_some_and(|trap| trap.connections() != 0) {
            wrong.push("connected to ::1".into());
        }
        // Only the public server may have been connected to.
        let used: Vec<IpAddr> = result
            .records
            .iter()
            .filter_map(|r| r.address_used)
            .collect();
        if used.iter().any(|ip| ip.to_string() != PUBLIC) {
            wrong.push(format!("connected to {used:?}"));
        }
        if server.connections() != usize::from(redirect.is_some()) {
            wrong.push(format!(
                "{} connections to the public server",
                server.connections()
            ));
        }
        if took > Duration::from_secs(1) {
            wrong.push(format!("took {took:?}: an unroutable address was tried"));
        }
        if !wrong.is_empty() {
            failures.push(format!("{}: {}", case.name, wrong.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "SSRF battery:\n{}",
        failures.join("\n")
    );
}

/// A name with a private and a public address is validated on the public one
/// alone.
#[tokio::test]
async fn a_private_address_beside_a_public_one_is_skipped() {
    let server = TestServer::start(|_| Some(Reply::ok(KEY_AUTH))).await;
    let loopback = Trap::on("127.0.0.2", server.port).await.unwrap();
    let lookup = FakeLookup::new(&[("a.example", &["127.0.0.2", "10.0.0.1", PUBLIC])]);
    let va = validator(lookup, server.port);
    let result = validate(&va, dns("a.example")).await;
    assert_eq!(result.problem, None);
    assert_eq!(loopback.connections(), 0);
    assert_eq!(server.connections(), 1);
    assert_eq!(
        result.records[0].address_used,
        Some(PUBLIC.parse().unwrap())
    );
}

/// Eleven redirects are one too many; a huge body and a slow server are refused,
/// the slow one within the timeout.
#[tokio::test]
async fn redirect_loops_huge_bodies_and_slow_servers() {
    let lookup = FakeLookup::new(&[("a.example", &[PUBLIC])]);
    let looping = TestServer::start(|path| {
        let hop: usize = path
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Some(Reply::redirect(&format!(
            "/.well-known/acme-challenge/{}",
            hop + 1
        )))
    })
    .await;
    let va = validator(lookup.clone(), looping.port);
    let problem = validate(&va, dns("a.example")).await.problem.unwrap();
    assert_eq!(problem.kind, ErrorKind::Connection, "{problem}");
    assert!(problem.detail.contains("redirects"), "{problem}");
    assert_eq!(looping.connections(), MAX_REDIRECTS + 1);

    let huge = TestServer::start(|_| Some(Reply::ok(&"x".repeat(MAX_BODY_BYTES + 1)))).await;
    let va = validator(lookup.clone(), huge.port);
    let problem = validate(&va, dns("a.example")).await.problem.unwrap();
    assert_eq!(problem.kind, ErrorKind::Unauthorized, "{problem}");

    let silent = TestServer::start(|_| None).await;
    let mut va = validator(lookup, silent.port);
    va.timeout = Duration::from_millis(500);
    let started = Instant::now();
    let problem = validate(&va, dns("a.example")).await.problem.unwrap();
    assert_eq!(problem.kind, ErrorKind::Connection, "{problem}");
    assert!(started.elapsed() < Duration::from_millis(1500));
}
