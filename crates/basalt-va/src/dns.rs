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
use hickory_resolver::proto::rr::RData;
use hickory_resolver::proto::rr::RecordType;

use crate::config::DnsConfig;

/// One CAA resource record (RFC 8659 §4.1), as found on the wire: the caller
/// interprets the tag and value, so nothing is normalised here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaaRecord {
    /// The issuer critical flag: an unknown tag with this flag set forbids
    /// issuance. [`DnsResolver`] also sets it for the flag bit of significance
    /// 1, as Boulder does: enough zones set that bit meaning "critical" that
    /// ignoring it would issue against their intent.
    pub critical: bool,
    /// The property tag (`issue`, `issuewild`, `iodef`…), in its original case.
    pub tag: String,
    /// The property value, e.g. `ca.example; accounturi=https://…`. Bytes that
    /// are not UTF-8 are replaced with U+FFFD, which no issuer domain contains.
    pub value: String,
}

/// Resolves names for validation. The VA resolves every name itself, through
/// this trait, so that it can refuse reserved addresses before connecting and
/// so that tests can inject a fake.
///
/// Every failure to get an answer (SERVFAIL, REFUSED, a timeout, a DNSSEC
/// failure) is an [`ErrorKind::Dns`] error whose detail names the record type
/// and the name and is meant for the subscriber. A name that does not exist or
/// has no record of the type asked for is not a failure for TXT and CAA.
#[async_trait]
pub trait Lookup: Send + Sync {
    /// Every address `host` resolves to, in any order. Failures, and a name with
    /// no address at all, are [`ErrorKind::Dns`] errors whose detail is meant
    /// for the subscriber.
    async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, Error>;

    /// TXT strings at `name` (each record's character-strings concatenated),
    /// CNAMEs followed; `Ok(empty)` when the name has none (NXDOMAIN or NODATA).
    ///
    /// The default refuses, for fakes that only resolve addresses: a lookup
    /// that can't be made must fail, never read as "no records".
    async fn lookup_txt(&self, name: &str) -> Result<Vec<String>, Error> {
        Err(unsupported("TXT", name))
    }

    /// The CAA record set at exactly `name` (CNAMEs followed, no climbing);
    /// `Ok(empty)` when none.
    ///
    /// The default refuses, like [`Lookup::lookup_txt`]'s: an empty CAA set
    /// would allow issuance.
    async fn lookup_caa(&self, name: &str) -> Result<Vec<CaaRecord>, Error> {
        Err(unsupported("CAA", name))
    }
}

fn unsupported(rtype: &str, name: &str) -> Error {
    Error::internal(format!(
        "this resolver cannot look up {rtype} records (asked for {name})"
    ))
}

/// A [`Lookup`] backed by hickory-resolver: UDP with TCP fallback, a per-query
/// timeout and a number of attempts, A and AAAA queried in parallel.
///
/// It never reads `/etc/hosts` (a validated name must not resolve to
/// `localhost` through a local file) and does not cache answers, so a
/// subscriber who just fixed a record is not judged on an old one.
///
/// With DNSSEC validation on (`[dns] dnssec = true`), every answer must chain
/// up to the root trust anchor or be provably unsigned; a bogus answer, or a
/// bogus proof that a record does not exist, is a [`ErrorKind::Dns`] error.
pub struct DnsResolver {
    resolver: TokioResolver,
}

impl DnsResolver {
    /// A resolver that asks `upstream` (UDP, then TCP on truncation or error),
    /// or the servers in `/etc/resolv.conf` when `upstream` is `None`. It does
    /// not validate DNSSEC; [`DnsResolver::from_config`] can.
    pub fn new(
        upstream: Option<SocketAddr>,
        timeout: Duration,
        attempts: u8,
    ) -> Result<Self, Error> {
        Self::build(upstream, timeout, attempts, false)
    }

    /// The resolver `[dns]` describes.
    pub fn from_config(config: &DnsConfig) -> Result<Self, Error> {
        Self::build(
            config.upstream()?,
            config.timeout.0,
            config.attempts,
            config.dnssec,
        )
    }

    fn build(
        upstream: Option<SocketAddr>,
        timeout: Duration,
        attempts: u8,
        dnssec: bool,
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
        // Names are looked up exactly as given (see `fqdn`), never under a
        // search domain from resolv.conf.
        options.ndots = 0;
        // hickory validates against its built-in root trust anchor and fails a
        // query whose answer is bogus, so a validating resolver can't be fed
        // forged CAA or TXT records by an off-path attacker.
        options.validate = dnssec;
        let resolver = builder
            .build()
            .map_err(|err| Error::internal(format!("cannot build the dns resolver: {err}")))?;
        Ok(Self { resolver })
    }
}

#[async_trait]
impl Lookup for DnsResolver {
    async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, Error> {
        let name = fqdn(host)?;
        match self.resolver.lookup_ip(name).await {
            Ok(lookup) => {
                let addresses: Vec<IpAddr> = lookup.iter().collect();
                if addresses.is_empty() {
                    return Err(no_address(host));
                }
                Ok(addresses)
            }
            Err(err) => match failure("A/AAAA", host, &err) {
                Some(err) => Err(err),
                None => Err(no_address(host)),
            },
        }
    }

    async fn lookup_txt(&self, name: &str) -> Result<Vec<String>, Error> {
        let fqdn = fqdn(name)?;
        match self.resolver.lookup(fqdn, RecordType::TXT).await {
            // The answer section also holds the CNAMEs that led to the records;
            // only the TXT data counts.
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part))
                            .collect(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(err) => match failure("TXT", name, &err) {
                Some(err) => Err(err),
                None => Ok(Vec::new()),
            },
        }
    }

    async fn lookup_caa(&self, name: &str) -> Result<Vec<CaaRecord>, Error> {
        let fqdn = fqdn(name)?;
        match self.resolver.lookup(fqdn, RecordType::CAA).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::CAA(caa) => Some(CaaRecord {
                        // See `CaaRecord::critical` for the second bit.
                        critical: caa.issuer_critical || caa.flags() & 1 != 0,
                        tag: caa.tag.clone(),
                        value: String::from_utf8_lossy(&caa.value).into_owned(),
                    }),
                    _ => None,
                })
                .collect()),
            Err(err) => match failure("CAA", name, &err) {
                Some(err) => Err(err),
                None => Ok(Vec::new()),
            },
        }
    }
}

/// `name` as a fully qualified name: no search list, one query per record type.
fn fqdn(name: &str) -> Result<Name, Error> {
    let mut fqdn = Name::from_ascii(name)
        .map_err(|_| Error::new(ErrorKind::Dns, format!("{name:?} is not a valid dns name")))?;
    fqdn.set_fqdn(true);
    Ok(fqdn)
}

fn no_address(host: &str) -> Error {
    Error::new(
        ErrorKind::Dns,
        format!("no valid A or AAAA records for {host}"),
    )
}

/// Turns a resolver failure into the detail a subscriber can act on, or `None`
/// when the name simply has no record of type `rtype` (NXDOMAIN or NODATA,
/// authenticated or not).
fn failure(rtype: &str, name: &str, err: &NetError) -> Option<Error> {
    let detail = match err {
        NetError::Dns(DnsError::NoRecordsFound(records)) => match records.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => return None,
            code => rcode_detail(rtype, name, code),
        },
        // A DNSSEC-proven absence. hickory already turns a bogus proof into
        // `DnssecBogus`; the check here keeps that true if it ever stops.
        NetError::Dns(DnsError::Nsec { proof, .. }) if !proof.is_bogus() => return None,
        NetError::Dns(DnsError::Nsec { .. } | DnsError::DnssecBogus) => {
            format!("DNSSEC validation failed looking up {rtype} for {name}")
        }
        NetError::Dns(DnsError::ResponseCode(code)) => rcode_detail(rtype, name, *code),
        NetError::Timeout => format!("query timed out looking up {rtype} for {name}"),
        other => format!("networking error looking up {rtype} for {name}: {other}"),
    };
    tracing::debug!(name, rtype, error = %err, "dns lookup failed");
    Some(Error::new(ErrorKind::Dns, detail))
}

fn rcode_detail(rtype: &str, name: &str, code: ResponseCode) -> String {
    let code = match code {
        ResponseCode::ServFail => "SERVFAIL".to_owned(),
        ResponseCode::Refused => "REFUSED".to_owned(),
        ResponseCode::FormErr => "FORMERR".to_owned(),
        other => other.to_string(),
    };
    format!("{code} looking up {rtype} for {name}")
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use basalt_config::ConfigDuration;
    use tokio::net::UdpSocket;

    use super::*;

    /// One answer record of the fake server, owned by `name`.
    enum Rr {
        A([u8; 4]),
        /// The character-strings of one TXT record.
        Txt(&'static [&'static str]),
        /// Flags, tag, value.
        Caa(u8, &'static str, &'static str),
        Cname(&'static str),
    }

    /// What the fake server sends back for one question.
    struct Reply {
        rcode: u8,
        answers: Vec<(String, Rr)>,
    }

    impl Reply {
        fn rcode(rcode: u8) -> Self {
            Self {
                rcode,
                answers: Vec::new(),
            }
        }

        fn answers(answers: Vec<(&str, Rr)>) -> Self {
            Self {
                rcode: 0,
                answers: answers
                    .into_iter()
                    .map(|(name, rr)| (name.to_owned(), rr))
                    .collect(),
            }
        }
    }

    const A: u16 = 1;
    const CNAME: u16 = 5;
    const TXT: u16 = 16;
    const CAA: u16 = 257;

    fn encode_name(out: &mut Vec<u8>, name: &str) {
        for label in name.split('.').filter(|label| !label.is_empty()) {
            out.push(u8::try_from(label.len()).unwrap());
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
    }

    fn encode_record(out: &mut Vec<u8>, name: &str, rr: &Rr) {
        let (rtype, rdata) = match rr {
            Rr::A(ip) => (A, ip.to_vec()),
            Rr::Txt(parts) => {
                let mut rdata = Vec::new();
                for part in *parts {
                    rdata.push(u8::try_from(part.len()).unwrap());
                    rdata.extend_from_slice(part.as_bytes());
                }
                (TXT, rdata)
            }
            Rr::Caa(flags, tag, value) => {
                let mut rdata = vec![*flags, u8::try_from(tag.len()).unwrap()];
                rdata.extend_from_slice(tag.as_bytes());
                rdata.extend_from_slice(value.as_bytes());
                (CAA, rdata)
            }
            Rr::Cname(target) => {
                let mut rdata = Vec::new();
                encode_name(&mut rdata, target);
                (CNAME, rdata)
            }
        };
        encode_name(out, name);
        out.extend_from_slice(&rtype.to_be_bytes());
        // Class IN, TTL 60.
        out.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        out.extend_from_slice(&u16::try_from(rdata.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&rdata);
    }

    /// A one-server DNS responder on 127.0.0.1 that answers each question
    /// (lowercased name without the final dot, type) with what `zone` says.
    async fn fake_dns<F>(zone: F) -> SocketAddr
    where
        F: Fn(&str, u16) -> Reply + Send + 'static,
    {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let query = &buf[..len];
                // Header (12 bytes), then QNAME labels up to the root, QTYPE, QCLASS.
                let mut labels = Vec::new();
                let mut end = 12;
                while end < len && query[end] != 0 {
                    let label_len = usize::from(query[end]);
                    labels.push(String::from_utf8_lossy(
                        &query[end + 1..end + 1 + label_len],
                    ));
                    end += label_len + 1;
                }
                let name = labels.join(".").to_ascii_lowercase();
                let question = &query[12..end + 5];
                let qtype = u16::from_be_bytes([query[end + 1], query[end + 2]]);
                let reply = zone(&name, qtype);
                let count = u8::try_from(reply.answers.len()).unwrap();
                let mut out = vec![query[0], query[1], 0x81, 0x80 | reply.rcode, 0, 1];
                out.extend_from_slice(&[0, count, 0, 0, 0, 0]);
                out.extend_from_slice(question);
                for (owner, rr) in &reply.answers {
                    encode_record(&mut out, owner, rr);
                }
                let _ = socket.send_to(&out, peer).await;
            }
        });
        addr
    }

    /// A fake that answers every question with `rcode` and, for A queries,
    /// the address `answer_a`.
    async fn fake_a(rcode: u8, answer_a: Option<[u8; 4]>) -> SocketAddr {
        fake_dns(move |name, qtype| match answer_a {
            Some(ip) if qtype == A && rcode == 0 => Reply::answers(vec![(name, Rr::A(ip))]),
            _ => Reply::rcode(rcode),
        })
        .await
    }

    fn resolver(upstream: SocketAddr) -> DnsResolver {
        DnsResolver::new(Some(upstream), Duration::from_millis(300), 1).unwrap()
    }

    #[tokio::test]
    async fn resolves_a_records() {
        let upstream = fake_a(0, Some([93, 184, 216, 34])).await;
        let addresses = resolver(upstream).lookup_ip("example.com").await.unwrap();
        assert_eq!(addresses, vec!["93.184.216.34".parse::<IpAddr>().unwrap()]);
    }

    #[tokio::test]
    async fn nxdomain_means_no_records() {
        let upstream = fake_a(3, None).await;
        let err = resolver(upstream)
            .lookup_ip("nope.example")
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dns);
        assert_eq!(err.detail, "no valid A or AAAA records for nope.example");
    }

    #[tokio::test]
    async fn empty_answer_means_no_records() {
        let upstream = fake_a(0, None).await;
        let err = resolver(upstream)
            .lookup_ip("empty.example")
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dns);
        assert_eq!(err.detail, "no valid A or AAAA records for empty.example");
    }

    #[tokio::test]
    async fn servfail_is_reported() {
        let upstream = fake_a(2, None).await;
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
        let upstream = fake_a(0, None).await;
        let resolver = resolver(upstream);
        let err = resolver.lookup_ip("bad name..").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dns);
        let err = resolver.lookup_txt("bad name..").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dns);
        let err = resolver.lookup_caa("bad name..").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dns);
    }

    #[tokio::test]
    async fn txt_strings_are_joined_per_record() {
        let upstream = fake_dns(|name, qtype| match (name, qtype) {
            ("_acme-challenge.example.com", TXT) => Reply::answers(vec![
                (name, Rr::Txt(&["abc", "def"])),
                (name, Rr::Txt(&["xyz"])),
            ]),
            _ => Reply::rcode(0),
        })
        .await;
        let mut txts = resolver(upstream)
            .lookup_txt("_acme-challenge.example.com")
            .await
            .unwrap();
        txts.sort();
        assert_eq!(txts, ["abcdef", "xyz"]);
    }

    #[tokio::test]
    async fn txt_nxdomain_and_nodata_are_empty() {
        for rcode in [0, 3] {
            let upstream = fake_dns(move |_, _| Reply::rcode(rcode)).await;
            let txts = resolver(upstream)
                .lookup_txt("_acme-challenge.example.com")
                .await
                .unwrap();
            assert!(txts.is_empty(), "rcode {rcode}: {txts:?}");
        }
    }

    #[tokio::test]
    async fn txt_servfail_and_refused_are_dns_errors() {
        for (rcode, text) in [(2, "SERVFAIL"), (5, "REFUSED")] {
            let upstream = fake_dns(move |_, _| Reply::rcode(rcode)).await;
            let err = resolver(upstream)
                .lookup_txt("_acme-challenge.broken.example")
                .await
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::Dns);
            assert_eq!(
                err.detail,
                format!("{text} looking up TXT for _acme-challenge.broken.example")
            );
        }
    }

    /// `one.example` is answered with its CNAME and the target's records in
    /// one response, as recursive resolvers do; `two.example` with the CNAME
    /// alone, so the resolver has to ask for the target itself.
    fn aliased(name: &str, qtype: u16) -> Reply {
        let records = |owner| match qtype {
            TXT => vec![(owner, Rr::Txt(&["delegated"]))],
            CAA => vec![(owner, Rr::Caa(0, "issue", "basalt.example"))],
            _ => Vec::new(),
        };
        match name {
            "one.example" => {
                let mut answers = vec![("one.example", Rr::Cname("target.example"))];
                answers.extend(records("target.example"));
                Reply::answers(answers)
            }
            "two.example" => Reply::answers(vec![("two.example", Rr::Cname("target.example"))]),
            "target.example" => Reply::answers(records("target.example")),
            _ => Reply::rcode(3),
        }
    }

    #[tokio::test]
    async fn txt_follows_cnames() {
        let upstream = fake_dns(aliased).await;
        let resolver = resolver(upstream);
        for name in ["one.example", "two.example"] {
            let txts = resolver.lookup_txt(name).await.unwrap();
            assert_eq!(txts, ["delegated"], "{name}");
        }
    }

    #[tokio::test]
    async fn caa_records_keep_their_tag_and_value() {
        let upstream = fake_dns(|name, qtype| match (name, qtype) {
            ("example.com", CAA) => Reply::answers(vec![
                (
                    name,
                    Rr::Caa(0, "issue", "basalt.example; accounturi=https://a.example/1"),
                ),
                (name, Rr::Caa(0, "Issue", ";")),
                (name, Rr::Caa(128, "tbs", "unknown")),
                (name, Rr::Caa(1, "future", "x")),
                (name, Rr::Caa(0, "iodef", "mailto:security@example.com")),
            ]),
            _ => Reply::rcode(0),
        })
        .await;
        let records = resolver(upstream).lookup_caa("example.com").await.unwrap();
        let record = |critical, tag: &str, value: &str| CaaRecord {
            critical,
            tag: tag.into(),
            value: value.into(),
        };
        assert_eq!(
            records,
            [
                record(
                    false,
                    "issue",
                    "basalt.example; accounturi=https://a.example/1"
                ),
                record(false, "Issue", ";"),
                record(true, "tbs", "unknown"),
                record(true, "future", "x"),
                record(false, "iodef", "mailto:security@example.com"),
            ]
        );
    }

    #[tokio::test]
    async fn caa_nxdomain_and_nodata_are_empty() {
        for rcode in [0, 3] {
            let upstream = fake_dns(move |_, _| Reply::rcode(rcode)).await;
            let records = resolver(upstream).lookup_caa("example.com").await.unwrap();
            assert!(records.is_empty(), "rcode {rcode}: {records:?}");
        }
    }

    #[tokio::test]
    async fn caa_servfail_is_a_dns_error() {
        let upstream = fake_dns(|_, _| Reply::rcode(2)).await;
        let err = resolver(upstream)
            .lookup_caa("broken.example")
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dns);
        assert_eq!(err.detail, "SERVFAIL looking up CAA for broken.example");
    }

    #[tokio::test]
    async fn caa_follows_cnames() {
        let upstream = fake_dns(aliased).await;
        let resolver = resolver(upstream);
        for name in ["one.example", "two.example"] {
            let records = resolver.lookup_caa(name).await.unwrap();
            assert_eq!(
                records,
                [CaaRecord {
                    critical: false,
                    tag: "issue".into(),
                    value: "basalt.example".into(),
                }],
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn silent_upstream_times_out_as_a_dns_error() {
        // Bound but never read: every UDP query goes unanswered.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let upstream = silent.local_addr().unwrap();
        let resolver = resolver(upstream);
        let started = Instant::now();
        let err = resolver.lookup_txt("example.com").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dns);
        assert!(err.detail.contains("TXT for example.com"), "{err}");
        let err = resolver.lookup_caa("example.com").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dns);
        assert!(err.detail.contains("CAA for example.com"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }

    /// A fake that only resolves addresses, relying on the defaults.
    struct AddressesOnly;

    #[async_trait]
    impl Lookup for AddressesOnly {
        async fn lookup_ip(&self, _host: &str) -> Result<Vec<IpAddr>, Error> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn default_txt_and_caa_lookups_fail_closed() {
        let err = AddressesOnly.lookup_txt("example.com").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Internal);
        let err = AddressesOnly.lookup_caa("example.com").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Internal);
        assert!(err.detail.contains("CAA"), "{err}");
    }

    fn dns_config(upstream: SocketAddr, dnssec: bool) -> DnsConfig {
        DnsConfig {
            resolver: Some(upstream.to_string()),
            timeout: ConfigDuration(Duration::from_millis(300)),
            attempts: 1,
            dnssec,
        }
    }

    /// The fake signs nothing, so once validation is on its answers can't
    /// chain up to the root trust anchor and must be refused.
    #[tokio::test]
    async fn dnssec_mode_refuses_unsigned_answers() {
        let upstream = fake_dns(|name, qtype| match (name, qtype) {
            ("example.com", CAA) => {
                Reply::answers(vec![(name, Rr::Caa(0, "issue", "basalt.example"))])
            }
            ("example.com", TXT) => Reply::answers(vec![(name, Rr::Txt(&["token"]))]),
            _ => Reply::rcode(0),
        })
        .await;

        let plain = DnsResolver::from_config(&dns_config(upstream, false)).unwrap();
        assert_eq!(plain.lookup_caa("example.com").await.unwrap().len(), 1);
        assert_eq!(plain.lookup_txt("example.com").await.unwrap(), ["token"]);

        let validating = DnsResolver::from_config(&dns_config(upstream, true)).unwrap();
        let err = validating.lookup_caa("example.com").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dns);
        assert_eq!(
            err.detail,
            "DNSSEC validation failed looking up CAA for example.com"
        );
        let err = validating.lookup_txt("example.com").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dns);
    }
}
