//! Name resolution for validation: the [`Lookup`] seam and its hickory-backed
//! implementation.

use std::net::IpAddr;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use basalt_core::Error;
use basalt_core::ErrorKind;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::LookupIpStrategy;
use hickory_resolver::config::NameServerConfig;
use hickory_resolver::config::ResolveHosts;
use hickory_resolver::config::ResolverConfig;
use hickory_resolver::net::DnsError;
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::Name;

use crate::config::DnsConfig;

/// Resolves a host name to its addresses (A and AAAA). The VA resolves every
/// name itself, through this trait, so that it can refuse reserved addresses
/// before connecting; tests inject a fake.
#[async_trait]
pub trait Lookup: Send + Sync {
    /// Every address `host` resolves to, in any order. Failures, and a name with
    /// no address at all, are [`ErrorKind::Dns`] errors whose detail is meant
    /// for the subscriber.
    async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, Error>;
}

/// A [`Lookup`] backed by hickory-resolver: UDP with TCP fallback, a per-query
/// timeout and a number of attempts, A and AAAA queried in parallel.
///
/// It never reads `/etc/hosts` (a validated name must not resolve to
/// `localhost` through a local file) and does not cache answers, so a
/// subscriber who just fixed a record is not judged on an old one.
pub struct DnsResolver {
    resolver: TokioResolver,
}

impl DnsResolver {
    /// A resolver that asks `upstream` (UDP, then TCP on truncation or error),
    /// or the servers in `/etc/resolv.conf` when `upstream` is `None`.
    pub fn new(
        upstream: Option<SocketAddr>,
        timeout: Duration,
        attempts: u8,
    ) -> Result<Self, Error> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match upstream {
            Some(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut server.connections {
                    connection.port = addr.port();
                }
                let config = ResolverConfig::from_name_servers(vec![server]);
                TokioResolver::builder_with_config(config, provider)
            }
            None => TokioResolver::builder(provider).map_err(|err| {
                Error::internal(format!("cannot read the system dns configuration: {err}"))
            })?,
        };
        let options = builder.options_mut();
        options.timeout = timeout;
        options.attempts = usize::from(attempts.max(1));
        options.try_tcp_on_error = true;
        options.ip_strategy = LookupIpStrategy::Ipv6AndIpv4;
        options.use_hosts_file = ResolveHosts::Never;
        options.cache_size = 0;
        // Names are looked up exactly as given (see `lookup_ip`), never under a
        // search domain from resolv.conf.
        options.ndots = 0;
        let resolver = builder
            .build()
            .map_err(|err| Error::internal(format!("cannot build the dns resolver: {err}")))?;
        Ok(Self { resolver })
    }

    /// The resolver `[dns]` describes.
    pub fn from_config(config: &DnsConfig) -> Result<Self, Error> {
        Self::new(config.upstream()?, config.timeout.0, config.attempts)
    }
}

#[async_trait]
impl Lookup for DnsResolver {
    async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, Error> {
        let mut name = Name::from_ascii(host)
            .map_err(|_| Error::new(ErrorKind::Dns, format!("{host:?} is not a valid dns name")))?;
        // Fully qualified: no search list, one query per record type.
        name.set_fqdn(true);
        match self.resolver.lookup_ip(name).await {
            Ok(lookup) => {
                let addresses: Vec<IpAddr> = lookup.iter().collect();
                if addresses.is_empty() {
                    return Err(no_records(host));
                }
                Ok(addresses)
            }
            Err(err) => Err(dns_error(host, &err)),
        }
    }
}

fn no_records(host: &str) -> Error {
    Error::new(
        ErrorKind::Dns,
        format!("no valid A or AAAA records for {host}"),
    )
}

/// Turns a resolver failure into the detail a subscriber can act on.
fn dns_error(host: &str, err: &NetError) -> Error {
    let detail = match err {
        NetError::Dns(DnsError::NoRecordsFound(records)) => match records.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => return no_records(host),
            code => rcode_detail(host, code),
        },
        NetError::Dns(DnsError::ResponseCode(code)) => rcode_detail(host, *code),
        NetError::Timeout => format!("query timed out looking up A/AAAA for {host}"),
        other => format!("networking error looking up A/AAAA for {host}: {other}"),
    };
    tracing::debug!(host, error = %err, "dns lookup failed");
    Error::new(ErrorKind::Dns, detail)
}

fn rcode_detail(host: &str, code: ResponseCode) -> String {
    let name = match code {
        ResponseCode::ServFail => "SERVFAIL".to_owned(),
        ResponseCode::Refused => "REFUSED".to_owned(),
        ResponseCode::FormErr => "FORMERR".to_owned(),
        other => other.to_string(),
    };
    format!("{name} looking up A/AAAA for {host}")
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::net::UdpSocket;

    use super::*;

    /// A one-server DNS responder on 127.0.0.1 that answers every query with
    /// `rcode` and, for A queries, the address `answer_a`.
    async fn fake_dns(rcode: u8, answer_a: Option<[u8; 4]>) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let query = &buf[..len];
                // Header (12 bytes), then QNAME labels up to the root, QTYPE, QCLASS.
                let mut end = 12;
                while end < len && query[end] != 0 {
                    end += usize::from(query[end]) + 1;
                }
                let question = &query[12..end + 5];
                let qtype = u16::from_be_bytes([query[end + 1], query[end + 2]]);
                let answer = answer_a.filter(|_| qtype == 1 && rcode == 0);
                let mut reply = vec![query[0], query[1], 0x81, 0x80 | rcode, 0, 1];
                reply.extend_from_slice(&[0, u8::from(answer.is_some()), 0, 0, 0, 0]);
                reply.extend_from_slice(question);
                if let Some(ip) = answer {
                    // Name pointer to offset 12, type A, class IN, TTL 60, 4 bytes.
                    reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                    reply.extend_from_slice(&ip);
                }
                let _ = socket.send_to(&reply, peer).await;
            }
        });
        addr
    }

    fn resolver(upstream: SocketAddr) -> DnsResolver {
        DnsResolver::new(Some(upstream), Duration::from_millis(300), 1).unwrap()
    }

    #[tokio::test]
    async fn resolves_a_records() {
        let upstream = fake_dns(0, Some([93, 184, 216, 34])).await;
        let addresses = resolver(upstream).lookup_ip("example.com").await.unwrap();
        assert_eq!(addresses, vec!["93.184.216.34".parse::<IpAddr>().unwrap()]);
    }

    #[tokio::test]
    async fn nxdomain_means_no_records() {
        let upstream = fake_dns(3, None).await;
        let err = resolver(upstream)
            .lookup_ip("nope.example")
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dns);
        assert_eq!(err.detail, "no valid A or AAAA records for nope.example");
    }

    #[tokio::test]
    async fn empty_answer_means_no_records() {
        let upstream = fake_dns(0, None).await;
        let err = resolver(upstream)
            .lookup_ip("empty.example")
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dns);
        assert_eq!(err.detail, "no valid A or AAAA records for empty.example");
    }

    #[tokio::test]
    async fn servfail_is_reported() {
        let upstream = fake_dns(2, None).await;
        let err = resolver(upstream)
            .lookup_ip("broken.example")
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dns);
        assert!(err.detail.contains("SERVFAIL"), "{err}");
        assert!(err.detail.contains("broken.example"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_upstream_is_a_dns_error() {
        let upstream: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let started = Instant::now();
        let err = resolver(upstream)
            .lookup_ip("example.com")
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dns);
        assert!(err.detail.contains("example.com"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn invalid_names_are_dns_errors() {
        let upstream = fake_dns(0, None).await;
        let err = resolver(upstream)
            .lookup_ip("bad name..")
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dns);
    }
}
