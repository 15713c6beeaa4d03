//! tls-alpn-01 validation (RFC 8737, and RFC 8738 for IP identifiers).
//!
//! As for http-01, the VA resolves the name itself through [`Lookup`] and
//! refuses reserved addresses ([`crate::reserved_reason`]) before any connection, so
//! the TLS client only ever connects to an address the filter allowed. The
//! handshake offers the single ALPN protocol `acme-tls/1` and sends the
//! identifier as SNI; for an IP identifier the SNI is its reverse-DNS name
//! (RFC 8738 §6), as an address can't be sent as SNI.
//!
//! The certificate is judged, not verified: RFC 8737 §3 has the subscriber
//! serve a self-signed certificate, so no trust store is consulted. What
//! proves control is that the certificate names exactly the identifier and
//! carries the critical acmeIdentifier extension with the SHA-256 digest of
//! the key authorization. Handshake signatures are still checked, so the peer
//! holds the key of the certificate it sent (see [`crate::tls::AcceptAnyCertificate`]).
//!
//! Like Boulder, when a name has both kinds of address the VA tries the first
//! IPv6 address and falls back to the first IPv4 address if it cannot connect.

use std::fmt;
use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::IdentifierType;
use basalt_core::ValidationRecord;
use basalt_core::ValidationResult;
use ring::digest;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::DnsName;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use x509_parser::extensions::GeneralName;

use crate::address::AddressPolicy;
use crate::dns::Lookup;
use crate::http01::is_dns_name;
use crate::tls::unverified_client_config;

/// The ALPN protocol of the validation handshake (RFC 8737 §6.2).
const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The DER content octets of id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31
/// (RFC 8737 §6.1), compared as bytes so no OID parsing is involved.
const ACME_IDENTIFIER_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1f];

/// The dotted form of [`ACME_IDENTIFIER_OID`], for details.
const ACME_IDENTIFIER_OID_TEXT: &str = "1.3.6.1.5.5.7.1.31";

/// What tls-alpn-01 validation needs to know.
pub(crate) struct TlsAlpn01 {
    lookup: Arc<dyn Lookup>,
    port: u16,
    timeout: Duration,
    addresses: AddressPolicy,
    tls: TlsConnector,
}

/// The identifier being validated, checked and in the forms the handshake
/// needs.
enum Target {
    Dns(String),
    Ip(IpAddr),
}

impl TlsAlpn01 {
    pub(crate) fn new(
        lookup: Arc<dyn Lookup>,
        port: u16,
        timeout: Duration,
        allow_private_addresses: bool,
    ) -> Result<Self, Error> {
        Ok(Self {
            lookup,
            port,
            timeout,
            addresses: AddressPolicy::new(allow_private_addresses),
            tls: TlsConnector::from(Arc::new(unverified_client_config(ACME_TLS_ALPN, false)?)),
        })
    }

    /// Connects to the identifier on the configured port, negotiates
    /// `acme-tls/1` and checks the certificate against `key_authorization`
    /// (RFC 8737 §3). Every failure of the subscriber's setup is a problem in
    /// the result; nothing in this check is an internal fault.
    pub(crate) async fn validate(
        &self,
        identifier: &Identifier,
        key_authorization: &str,
    ) -> Result<ValidationResult, Error> {
        let mut records = Vec::new();
        let deadline = Instant::now() + self.timeout;
        let problem = self
            .run(identifier, key_authorization, &mut records, deadline)
            .await
            .err();
        Ok(ValidationResult { records, problem })
    }

    async fn run(
        &self,
        identifier: &Identifier,
        key_authorization: &str,
        records: &mut Vec<ValidationRecord>,
        deadline: Instant,
    ) -> Result<(), Error> {
        let target = Target::parse(identifier)?;
        let server_name = target.server_name()?;
        let hostname = target.to_string();
        let resolved = match target {
            Target::Dns(ref name) => self.resolve(name, deadline).await,
            // RFC 8738 §6: the address itself, no DNS.
            Target::Ip(ip) => Ok(vec![ip]),
        };
        records.push(ValidationRecord {
            url: None,
            hostname: hostname.clone(),
            port: Some(self.port),
            addresses_resolved: resolved.as_ref().ok().cloned().unwrap_or_default(),
            address_used: None,
            perspectives: Vec::new(),
        });
        let resolved = resolved?;
        let candidates = self.candidates(&target, &resolved)?;

        let mut attempts = candidates.iter().peekable();
        let mut connected = None;
        while let Some(&ip) = attempts.next() {
            if let Some(record) = records.last_mut() {
                record.address_used = Some(ip);
            }
            let addr = SocketAddr::new(ip, self.port);
            let fallback = attempts.peek().is_some();
            match connect(addr, &hostname, deadline, fallback).await {
                Ok(stream) => {
                    connected = Some((addr, stream));
                    break;
                }
                Err(problem) if fallback => {
                    tracing::info!(%hostname, %addr, detail = %problem.detail, "connection failed, trying the next address");
                }
                Err(problem) => return Err(problem),
            }
        }
        let Some((addr, stream)) = connected else {
            return Err(Error::new(
                ErrorKind::Connection,
                format!("no address to connect to for {hostname}"),
            ));
        };

        // Only the connection is retried on another address: once a server
        // answered, its handshake and certificate are the answer.
        let stream = tokio::time::timeout_at(deadline, self.tls.connect(server_name, stream))
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Connection,
                    format!(
                        "{addr}: timeout during the tls handshake, your server may be slow or overloaded (tls-alpn-01 for {hostname})"
                    ),
                )
            })?
            .map_err(|err| handshake_error(addr, &hostname, &err))?;
        let (_, connection) = stream.get_ref();
        if connection.alpn_protocol() != Some(ACME_TLS_ALPN) {
            return Err(Error::new(
                ErrorKind::Tls,
                format!(
                    "{addr}: the server did not negotiate the acme-tls/1 protocol (ALPN) for {hostname}; tls-alpn-01 needs a server that answers it with the validation certificate"
                ),
            ));
        }
        let Some(leaf) = connection.peer_certificates().and_then(<[_]>::first) else {
            return Err(Error::new(
                ErrorKind::Tls,
                format!("{addr}: the server sent no certificate for {hostname}"),
            ));
        };
        check_certificate(leaf, &target, key_authorization)
    }

    async fn resolve(&self, name: &str, deadline: Instant) -> Result<Vec<IpAddr>, Error> {
        let addresses = tokio::time::timeout_at(deadline, self.lookup.lookup_ip(name))
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Dns,
                    format!("timed out looking up A/AAAA for {name}"),
                )
            })??;
        if addresses.is_empty() {
            return Err(Error::new(
                ErrorKind::Dns,
                format!("no valid A or AAAA records for {name}"),
            ));
        }
        Ok(addresses)
    }

    /// The addresses to try, in order: the first allowed IPv6 address, then
    /// the first allowed IPv4 address. Refusing a reserved address is a DNS
    /// problem for a name (its records point somewhere the VA won't go) and a
    /// connection problem for an IP identifier, as for http-01.
    fn candidates(&self, target: &Target, resolved: &[IpAddr]) -> Result<Vec<IpAddr>, Error> {
        let (host, by_name) = match target {
            Target::Dns(name) => (name.as_str(), true),
            Target::Ip(_) => ("", false),
        };
        self.addresses.candidates(host, by_name, resolved)
    }
}

impl Target {
    fn parse(identifier: &Identifier) -> Result<Self, Error> {
        match identifier.kind {
            IdentifierType::Dns => {
                let name = identifier.value.to_ascii_lowercase();
                if !is_dns_name(&name) {
                    return Err(Error::malformed(format!(
                        "{:?} is not a valid dns identifier",
                        identifier.value
                    )));
                }
                Ok(Self::Dns(name))
            }
            IdentifierType::Ip => identifier.value.parse().map(Self::Ip).map_err(|_| {
                Error::malformed(format!(
                    "{:?} is not a valid ip identifier",
                    identifier.value
                ))
            }),
        }
    }

    /// The SNI of the handshake: the name itself (RFC 8737 §3), or the
    /// reverse-DNS name of the address (RFC 8738 §6).
    fn server_name(&self) -> Result<ServerName<'static>, Error> {
        let name = match self {
            Self::Dns(name) => name.clone(),
            Self::Ip(ip) => reverse_name(*ip),
        };
        // rustls refuses a few names the identifier check lets through, such
        // as one whose last label is numeric; none of them can be validated.
        DnsName::try_from(name)
            .map(ServerName::DnsName)
            .map_err(|_| {
                Error::malformed(format!(
                    "{:?} is not a valid dns identifier",
                    self.to_string()
                ))
            })
    }

    /// Whether `name`, a subjectAltName entry, is this identifier: the same
    /// dNSName (DNS names are case-insensitive) or the same iPAddress.
    fn matches(&self, name: &GeneralName<'_>) -> bool {
        match (self, name) {
            (Self::Dns(expected), GeneralName::DNSName(got)) => expected.eq_ignore_ascii_case(got),
            (Self::Ip(IpAddr::V4(expected)), GeneralName::IPAddress(got)) => {
                expected.octets() == *got
            }
            (Self::Ip(IpAddr::V6(expected)), GeneralName::IPAddress(got)) => {
                expected.octets() == *got
            }
            _ => false,
        }
    }

    /// The one subjectAltName entry the certificate must carry, for details.
    fn expected_san(&self) -> String {
        match self {
            Self::Dns(name) => format!("dNSName {name}"),
            Self::Ip(ip) => format!("iPAddress {ip}"),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => f.write_str(name),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// The reverse-DNS name of an address: `4.3.2.1.in-addr.arpa` for 1.2.3.4,
/// one nibble per label under `ip6.arpa` for IPv6 (RFC 8738 §6).
fn reverse_name(ip: IpAddr) -> String {
    let mut name = String::new();
    match ip {
        IpAddr::V4(v4) => {
            for octet in v4.octets().iter().rev() {
                let _ = write!(name, "{octet}.");
            }
            name.push_str("in-addr.arpa");
        }
        IpAddr::V6(v6) => {
            for octet in v6.octets().iter().rev() {
                let _ = write!(name, "{:x}.{:x}.", octet & 0x0f, octet >> 4);
            }
            name.push_str("ip6.arpa");
        }
    }
    name
}

/// Opens the TCP connection; when another address is left to try, it may
/// take only half of the remaining time.
async fn connect(
    addr: SocketAddr,
    hostname: &str,
    deadline: Instant,
    fallback: bool,
) -> Result<TcpStream, Error> {
    let problem = |cause: &str| {
        Error::new(
            ErrorKind::Connection,
            format!("{addr}: {cause} (tls-alpn-01 for {hostname})"),
        )
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(problem("timed out before connecting"));
    }
    let limit = if fallback { remaining / 2 } else { remaining };
    match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(err)) => Err(problem(&match err.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            io::ErrorKind::ConnectionReset => "connection reset by peer".to_owned(),
            io::ErrorKind::TimedOut => {
                "timeout during connect (likely firewall problem)".to_owned()
            }
            _ => err.to_string(),
        })),
        Err(_) => Err(problem("timeout during connect (likely firewall problem)")),
    }
}

/// A subscriber-facing cause for a failed handshake: whatever TLS itself
/// refused, or a peer that hung up mid-handshake, is a TLS problem; a reset
/// or another socket error is a connection problem.
fn handshake_error(addr: SocketAddr, hostname: &str, err: &io::Error) -> Error {
    let tls = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let (kind, cause) = match (tls, err.kind()) {
        (Some(tls), _) => (ErrorKind::Tls, format!("tls error: {tls}")),
        (None, io::ErrorKind::UnexpectedEof) => (
            ErrorKind::Tls,
            "the server closed the connection during the tls handshake".to_owned(),
        ),
        (None, io::ErrorKind::ConnectionReset) => {
            (ErrorKind::Connection, "connection reset by peer".to_owned())
        }
        (None, _) => (ErrorKind::Connection, err.to_string()),
    };
    tracing::debug!(%hostname, %addr, error = ?err, "tls-alpn-01 handshake failed");
    Error::new(
        kind,
        format!("{addr}: {cause} (tls-alpn-01 for {hostname})"),
    )
}

/// RFC 8737 §3: the certificate names exactly the identifier, as its one
/// subjectAltName entry, and carries a critical acmeIdentifier extension whose
/// value is the SHA-256 digest of the key authorization. Nothing else about
/// it matters: not its issuer, its validity dates or its subject.
fn check_certificate(
    der: &CertificateDer<'_>,
    target: &Target,
    key_authorization: &str,
) -> Result<(), Error> {
    let wrong = |why: String| Error::unauthorized(format!("the certificate for {target} {why}"));
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|err| wrong(format!("cannot be parsed: {err}")))?;

    // A second subjectAltName extension is an error here too.
    let san = cert
        .subject_alternative_name()
        .map_err(|err| wrong(format!("has an invalid subjectAltName extension: {err}")))?
        .ok_or_else(|| {
            wrong(format!(
                "has no subjectAltName extension; it must hold exactly one entry, {}",
                target.expected_san()
            ))
        })?;
    match san.value.general_names.as_slice() {
        [name] if target.matches(name) => {}
        [name] => {
            return Err(wrong(format!(
                "names {} instead of {}",
                describe(name),
                target.expected_san()
            )));
        }
        [] => {
            return Err(wrong(format!(
                "has an empty subjectAltName extension; it must hold exactly one entry, {}",
                target.expected_san()
            )));
        }
        names => {
            let listed: Vec<String> = names.iter().map(describe).collect();
            return Err(wrong(format!(
                "has {} subjectAltName entries ({}); it must hold exactly one, {}",
                names.len(),
                listed.join(", "),
                target.expected_san()
            )));
        }
    }

    let mut extensions = cert
        .extensions()
        .iter()
        .filter(|ext| ext.oid.as_bytes() == ACME_IDENTIFIER_OID);
    let Some(extension) = extensions.next() else {
        return Err(wrong(format!(
            "has no acmeIdentifier extension ({ACME_IDENTIFIER_OID_TEXT})"
        )));
    };
    if extensions.next().is_some() {
        return Err(wrong(format!(
            "has more than one acmeIdentifier extension ({ACME_IDENTIFIER_OID_TEXT})"
        )));
    }
    if !extension.critical {
        return Err(wrong(format!(
            "has an acmeIdentifier extension ({ACME_IDENTIFIER_OID_TEXT}) that is not marked critical"
        )));
    }
    // The value is `Authorization ::= OCTET STRING (SIZE (32))`: DER tag 4,
    // length 32, the digest, and nothing after it.
    let got = match extension.value {
        [0x04, 0x20, value @ ..] if value.len() == 32 => value,
        _ => {
            return Err(wrong(format!(
                "has a malformed acmeIdentifier extension ({ACME_IDENTIFIER_OID_TEXT}): its value must be a DER OCTET STRING holding the 32-byte SHA-256 digest of the key authorization"
            )));
        }
    };
    let expected = digest::digest(&digest::SHA256, key_authorization.as_bytes());
    if got != expected.as_ref() {
        return Err(wrong(format!(
            "has the wrong acmeIdentifier digest: expected {}, the SHA-256 digest of the key authorization {key_authorization:?}, got {}",
            hex(expected.as_ref()),
            hex(got)
        )));
    }
    Ok(())
}

/// A subjectAltName entry as a subscriber would write it.
fn describe(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(dns) => format!("dNSName {dns}"),
        GeneralName::IPAddress(bytes) => match <[u8; 4]>::try_from(*bytes) {
            Ok(v4) => format!("iPAddress {}", IpAddr::from(v4)),
            Err(_) => match <[u8; 16]>::try_from(*bytes) {
                Ok(v6) => format!("iPAddress {}", IpAddr::from(v6)),
                Err(_) => format!("an iPAddress of {} bytes", bytes.len()),
            },
        },
        other => other.to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use std::sync::atomic::Ordering;

    use async_trait::async_trait;
    use rcgen::CertificateParams;
    use rcgen::CustomExtension;
    use rcgen::KeyPair;
    use rcgen::SanType;
    use rustls::pki_types::PrivateKeyDer;
    use rustls::sign::CertifiedKey;
    use rustls::sign::SingleCertAndKey;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;
    use tokio_rustls::LazyConfigAcceptor;

    use super::*;
    use crate::dns::CaaRecord;

    const KEY_AUTH: &str =
        "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";

    fn sha256(text: &str) -> Vec<u8> {
        digest::digest(&digest::SHA256, text.as_bytes())
            .as_ref()
            .to_vec()
    }

    /// The acmeIdentifier extension for `key_authorization`, critical as
    /// RFC 8737 requires.
    fn acme_identifier(key_authorization: &str) -> CustomExtension {
        CustomExtension::new_acme_identifier(&sha256(key_authorization))
    }

    fn dns(name: &str) -> SanType {
        SanType::DnsName(name.try_into().unwrap())
    }

    fn ip(text: &str) -> SanType {
        SanType::IpAddress(text.parse().unwrap())
    }

    /// A certificate and the key the server signs its handshakes with.
    struct Certified {
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    }

    /// A self-signed ECDSA P-256 certificate with these subjectAltNames and
    /// extensions, and its key.
    fn certificate(sans: Vec<SanType>, extensions: Vec<CustomExtension>) -> Certified {
        let mut params = CertificateParams::default();
        params.subject_alt_names = sans;
        params.custom_extensions = extensions;
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Certified {
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        }
    }

    /// The certificate RFC 8737 asks for: example.com and the right digest.
    fn valid_certificate() -> Certified {
        certificate(vec![dns("example.com")], vec![acme_identifier(KEY_AUTH)])
    }

    /// What the server saw of one ClientHello.
    #[derive(Clone, Debug)]
    struct Hello {
        sni: Option<String>,
        alpn: Vec<Vec<u8>>,
    }

    /// A TLS server on 127.0.0.1 presenting one certificate and recording
    /// every ClientHello.
    struct TestServer {
        port: u16,
        connections: Arc<AtomicUsize>,
        hellos: Arc<Mutex<Vec<Hello>>>,
    }

    impl TestServer {
        /// TLS 1.2 and 1.3, answering `acme-tls/1`.
        async fn start(certified: Certified) -> Self {
            Self::start_with(certified, &[ACME_TLS_ALPN], rustls::DEFAULT_VERSIONS).await
        }

        /// Answers the ALPN protocols `alpn` (none: it ignores ALPN) with
        /// the protocol `versions`.
        async fn start_with(
            Certified { cert, key }: Certified,
            alpn: &[&[u8]],
            versions: &[&'static rustls::SupportedProtocolVersion],
        ) -> Self {
            // `with_single_cert` would parse the certificate with webpki,
            // which refuses the critical acmeIdentifier extension; a resolver
            // takes the certificate as it is, and lets a test pair it with a
            // key that is not its own.
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let signing_key = provider.key_provider.load_private_key(key).unwrap();
            let resolver = SingleCertAndKey::from(CertifiedKey::new(vec![cert], signing_key));
            let mut config = rustls::ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(versions)
                .unwrap()
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(resolver));
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            let config = Arc::new(config);

            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let connections = Arc::new(AtomicUsize::new(0));
            let hellos = Arc::new(Mutex::new(Vec::new()));
            let (conns, log) = (connections.clone(), hellos.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    conns.fetch_add(1, Ordering::SeqCst);
                    let (config, log) = (config.clone(), log.clone());
                    tokio::spawn(async move {
                        let acceptor =
                            LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
                        let Ok(start) = acceptor.await else {
                            return;
                        };
                        let hello = start.client_hello();
                        log.lock().unwrap().push(Hello {
                            sni: hello.server_name().map(str::to_owned),
                            alpn: hello
                                .alpn()
                                .map(|protocols| protocols.map(<[u8]>::to_vec).collect())
                                .unwrap_or_default(),
                        });
                        let Ok(mut stream) = start.into_stream(config).await else {
                            return;
                        };
                        // Hold the connection until the VA hangs up.
                        let mut buf = [0u8; 64];
                        let _ = stream.read(&mut buf).await;
                    });
                }
            });
            Self {
                port,
                connections,
                hellos,
            }
        }

        fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }

        fn hellos(&self) -> Vec<Hello> {
            self.hellos.lock().unwrap().clone()
        }
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

        /// `example.com` resolves to 127.0.0.1.
        fn localhost() -> Arc<Self> {
            Self::new(&[("example.com", &["127.0.0.1"])])
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

        async fn lookup_txt(&self, _name: &str) -> Result<Vec<String>, Error> {
            Ok(Vec::new())
        }

        async fn lookup_caa(&self, _name: &str) -> Result<Vec<CaaRecord>, Error> {
            Ok(Vec::new())
        }
    }

    fn tlsalpn01(lookup: Arc<dyn Lookup>, port: u16, allow_private: bool) -> TlsAlpn01 {
        TlsAlpn01::new(lookup, port, Duration::from_secs(3), allow_private).unwrap()
    }

    async fn validate(va: &TlsAlpn01, identifier: Identifier) -> ValidationResult {
        va.validate(&identifier, KEY_AUTH).await.unwrap()
    }

    fn problem(result: &ValidationResult) -> &Error {
        result
            .problem
            .as_ref()
            .expect("validation should have failed")
    }

    /// Validates example.com (resolving to 127.0.0.1) against a server
    /// presenting `cert`, and returns the problem.
    async fn dns_problem(certified: Certified) -> Error {
        let server = TestServer::start(certified).await;
        let va = tlsalpn01(FakeLookup::localhost(), server.port, true);
        let result = validate(&va, Identifier::dns("example.com")).await;
        assert_eq!(server.connections(), 1);
        problem(&result).clone()
    }

    #[tokio::test]
    async fn valid_certificate_for_a_dns_identifier_validates() {
        let server = TestServer::start(valid_certificate()).await;
        let va = tlsalpn01(FakeLookup::localhost(), server.port, true);

        let result = validate(&va, Identifier::dns("Example.COM")).await;

        assert_eq!(result.problem, None);
        assert_eq!(
            result.records,
            vec![ValidationRecord {
                url: None,
                hostname: "example.com".into(),
                port: Some(server.port),
                addresses_resolved: vec!["127.0.0.1".parse().unwrap()],
                address_used: Some("127.0.0.1".parse().unwrap()),
                perspectives: Vec::new(),
            }]
        );
        let hellos = server.hellos();
        assert_eq!(hellos.len(), 1);
        assert_eq!(hellos[0].sni.as_deref(), Some("example.com"));
        assert_eq!(hellos[0].alpn, vec![ACME_TLS_ALPN.to_vec()]);
    }

    #[tokio::test]
    async fn tls_1_2_is_accepted() {
        let server = TestServer::start_with(
            valid_certificate(),
            &[ACME_TLS_ALPN],
            &[&rustls::version::TLS12],
        )
        .await;
        let va = tlsalpn01(FakeLookup::localhost(), server.port, true);

        let result = validate(&va, Identifier::dns("example.com")).await;

        assert_eq!(result.problem, None);
        assert_eq!(server.connections(), 1);
    }

    #[tokio::test]
    async fn a_server_without_the_certificate_key_fails_the_handshake() {
        // The right certificate, but the handshake is signed with another key:
        // the server has copied a certificate it cannot use.
        let other = valid_certificate();
        let stolen = Certified {
            cert: valid_certificate().cert,
            key: other.key,
        };
        for versions in [
            &[&rustls::version::TLS13][..],
            &[&rustls::version::TLS12][..],
        ] {
            let stolen = Certified {
                cert: stolen.cert.clone(),
                key: stolen.key.clone_key(),
            };
            let server = TestServer::start_with(stolen, &[ACME_TLS_ALPN], versions).await;
            let va = tlsalpn01(FakeLookup::localhost(), server.port, true);

            let result = validate(&va, Identifier::dns("example.com")).await;

            let problem = problem(&result);
            assert_eq!(problem.kind, ErrorKind::Tls, "{versions:?}");
            assert_eq!(
                problem.detail,
                format!(
                    "127.0.0.1:{}: tls error: invalid peer certificate: BadSignature (tls-alpn-01 for example.com)",
                    server.port
                )
            );
        }
    }

    #[tokio::test]
    async fn valid_certificate_for_an_ip_identifier_validates() {
        let server = TestServer::start(certificate(
            vec![ip("127.0.0.1")],
            vec![acme_identifier(KEY_AUTH)],
        ))
        .await;
        // An empty lookup: any DNS query would fail the validation.
        let va = tlsalpn01(FakeLookup::new(&[]), server.port, true);

        let result = validate(&va, Identifier::ip("127.0.0.1")).await;

        assert_eq!(result.problem, None);
        assert_eq!(result.records[0].hostname, "127.0.0.1");
        assert_eq!(
            result.records[0].addresses_resolved,
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            result.records[0].address_used,
            Some("127.0.0.1".parse().unwrap())
        );
        let hellos = server.hellos();
        assert_eq!(hellos[0].sni.as_deref(), Some("1.0.0.127.in-addr.arpa"));
        assert_eq!(hellos[0].alpn, vec![ACME_TLS_ALPN.to_vec()]);
    }

    #[tokio::test]
    async fn a_dns_san_does_not_validate_an_ip_identifier() {
        let server = TestServer::start(certificate(
            vec![dns("localhost")],
            vec![acme_identifier(KEY_AUTH)],
        ))
        .await;
        let va = tlsalpn01(FakeLookup::new(&[]), server.port, true);

        let result = validate(&va, Identifier::ip("127.0.0.1")).await;

        let problem = problem(&result);
        assert_eq!(problem.kind, ErrorKind::Unauthorized);
        assert_eq!(
            problem.detail,
            "the certificate for 127.0.0.1 names dNSName localhost instead of iPAddress 127.0.0.1"
        );
    }

    #[tokio::test]
    async fn wrong_digest_is_unauthorized() {
        let problem = dns_problem(certificate(
            vec![dns("example.com")],
            vec![acme_identifier("token.other-thumbprint")],
        ))
        .await;
        assert_eq!(problem.kind, ErrorKind::Unauthorized);
        assert_eq!(
            problem.detail,
            format!(
                "the certificate for example.com has the wrong acmeIdentifier digest: expected {}, the SHA-256 digest of the key authorization {KEY_AUTH:?}, got {}",
                hex(&sha256(KEY_AUTH)),
                hex(&sha256("token.other-thumbprint"))
            )
        );
    }

    #[tokio::test]
    async fn non_critical_extension_is_unauthorized() {
        let mut extension = acme_identifier(KEY_AUTH);
        extension.set_criticality(false);
        let problem = dns_problem(certificate(vec![dns("example.com")], vec![extension])).await;
        assert_eq!(problem.kind, ErrorKind::Unauthorized);
        assert_eq!(
            problem.detail,
            "the certificate for example.com has an acmeIdentifier extension (1.3.6.1.5.5.7.1.31) that is not marked critical"
        );
    }

    #[tokio::test]
    async fn missing_extension_is_unauthorized() {
        let problem = dns_problem(certificate(vec![dns("example.com")], Vec::new())).await;
        assert_eq!(problem.kind, ErrorKind::Unauthorized);
        assert_eq!(
            problem.detail,
            "the certificate for example.com has no acmeIdentifier extension (1.3.6.1.5.5.7.1.31)"
        );
    }

    #[tokio::test]
    async fn malformed_or_repeated_extensions_are_unauthorized() {
        // The bare digest, not wrapped in an OCTET STRING.
        let mut bare =
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 31], sha256(KEY_AUTH));
        bare.set_criticality(true);
        let problem = dns_problem(certificate(vec![dns("example.com")], vec![bare])).await;
        assert_eq!(problem.kind, ErrorKind::Unauthorized);
        assert!(
            problem.detail.starts_with(
                "the certificate for example.com has a malformed acmeIdentifier extension"
            ),
            "{problem}"
        );

        let problem = dns_problem(certificate(
            vec![dns("example.com")],
            vec![acme_identifier(KEY_AUTH), acme_identifier(KEY_AUTH)],
        ))
        .await;
        assert_eq!(problem.kind, ErrorKind::Unauthorized);
        assert_eq!(
            problem.detail,
            "the certificate for example.com has more than one acmeIdentifier extension (1.3.6.1.5.5.7.1.31)"
        );
    }

    #[tokio::test]
    async fn two_sans_are_unauthorized() {
        let problem = dns_problem(certificate(
            vec![dns("example.com"), dns("www.example.com")],
            vec![acme_identifier(KEY_AUTH)],
        ))
        .await;
        assert_eq!(problem.kind, ErrorKind::Unauthorized);
        assert_eq!(
            problem.detail,
            "the certificate for example.com has 2 subjectAltName entries (dNSName example.com, dNSName www.example.com); it must hold exactly one, dNSName example.com"
        );
    }

    #[tokio::test]
    async fn san_mismatch_is_unauthorized() {
        let problem = dns_problem(certificate(
            vec![dns("other.example")],
            vec![acme_identifier(KEY_AUTH)],
        ))
        .await;
        assert_eq!(problem.kind, ErrorKind::Unauthorized);
        assert_eq!(
            problem.detail,
            "the certificate for example.com names dNSName other.example instead of dNSName example.com"
        );

        let problem = dns_problem(certificate(Vec::new(), vec![acme_identifier(KEY_AUTH)])).await;
        assert_eq!(problem.kind, ErrorKind::Unauthorized);
        assert_eq!(
            problem.detail,
            "the certificate for example.com has no subjectAltName extension; it must hold exactly one entry, dNSName example.com"
        );
    }

    #[tokio::test]
    async fn server_without_acme_tls_alpn_is_a_tls_problem() {
        // A server that ignores ALPN: the handshake completes without it.
        let server =
            TestServer::start_with(valid_certificate(), &[], rustls::DEFAULT_VERSIONS).await;
        let va = tlsalpn01(FakeLookup::localhost(), server.port, true);
        let result = validate(&va, Identifier::dns("example.com")).await;
        let ignored = problem(&result);
        assert_eq!(ignored.kind, ErrorKind::Tls);
        assert!(
            ignored
                .detail
                .contains("did not negotiate the acme-tls/1 protocol (ALPN) for example.com"),
            "{ignored}"
        );

        // A server that speaks only other protocols refuses the handshake.
        let server = TestServer::start_with(
            valid_certificate(),
            &[b"h2", b"http/1.1"],
            rustls::DEFAULT_VERSIONS,
        )
        .await;
        let va = tlsalpn01(FakeLookup::localhost(), server.port, true);
        let result = validate(&va, Identifier::dns("example.com")).await;
        let refused = problem(&result);
        assert_eq!(refused.kind, ErrorKind::Tls);
        assert!(refused.detail.contains("tls error"), "{refused}");
        assert_eq!(
            result.records[0].address_used,
            Some("127.0.0.1".parse().unwrap())
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connection_problem() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let va = tlsalpn01(FakeLookup::localhost(), port, true);

        let result = validate(&va, Identifier::dns("example.com")).await;

        let problem = problem(&result);
        assert_eq!(problem.kind, ErrorKind::Connection);
        assert_eq!(
            problem.detail,
            format!("127.0.0.1:{port}: connection refused (tls-alpn-01 for example.com)")
        );
        assert_eq!(
            result.records[0].address_used,
            Some("127.0.0.1".parse().unwrap())
        );
    }

    #[tokio::test]
    async fn reserved_addresses_are_refused_without_connecting() {
        let server = TestServer::start(valid_certificate()).await;
        let lookup = FakeLookup::new(&[("example.com", &["127.0.0.1", "::1"])]);
        let va = tlsalpn01(lookup, server.port, false);

        let result = validate(&va, Identifier::dns("example.com")).await;
        let problem_dns = problem(&result);
        assert_eq!(problem_dns.kind, ErrorKind::Dns);
        assert_eq!(
            problem_dns.detail,
            "no public addresses for example.com: 127.0.0.1 is loopback (RFC 1122)"
        );
        assert_eq!(result.records.len(), 1);
        assert_eq!(result.records[0].addresses_resolved.len(), 2);
        assert_eq!(result.records[0].address_used, None);

        let result = validate(&va, Identifier::ip("127.0.0.1")).await;
        let problem_ip = problem(&result);
        assert_eq!(problem_ip.kind, ErrorKind::Connection);
        assert_eq!(
            problem_ip.detail,
            "refusing to connect to 127.0.0.1 is loopback (RFC 1122)"
        );
        assert_eq!(result.records[0].address_used, None);

        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts and holds every connection, never sending a byte.
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let timeout = Duration::from_millis(300);
        let va = TlsAlpn01::new(FakeLookup::localhost(), port, timeout, true).unwrap();

        let started = Instant::now();
        let result = validate(&va, Identifier::dns("example.com")).await;
        let elapsed = started.elapsed();

        let problem = problem(&result);
        assert_eq!(problem.kind, ErrorKind::Connection);
        assert!(
            problem.detail.contains("timeout during the tls handshake"),
            "{problem}"
        );
        assert!(elapsed >= timeout, "gave up after {elapsed:?}");
        assert!(
            elapsed < timeout + Duration::from_secs(1),
            "took {elapsed:?}"
        );
    }

    #[tokio::test]
    async fn dns_failures_are_reported() {
        let va = tlsalpn01(FakeLookup::new(&[]), 443, false);
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
    async fn malformed_identifiers_are_refused() {
        let va = tlsalpn01(FakeLookup::new(&[]), 443, true);
        for identifier in [
            Identifier::dns("*.example.com"),
            Identifier::dns("evil.example/path"),
            Identifier::dns("a..example"),
            Identifier::dns(""),
            Identifier::dns("1.2.3.4"),
            Identifier::ip("10.0.0.256"),
            Identifier::ip("example.com"),
        ] {
            let result = validate(&va, identifier.clone()).await;
            assert_eq!(
                problem(&result).kind,
                ErrorKind::Malformed,
                "{identifier:?}"
            );
            assert!(result.records.is_empty(), "{identifier:?}");
        }
    }

    #[tokio::test]
    async fn ipv6_is_tried_first_then_ipv4() {
        let va = tlsalpn01(
            FakeLookup::new(&[(
                "example.com",
                &["10.0.0.1", "1.2.3.4", "5.6.7.8", "fd00::1", "2606:4700::1"],
            )]),
            443,
            false,
        );
        let target = Target::Dns("example.com".into());
        let resolved = va.lookup.lookup_ip("example.com").await.unwrap();
        let candidates = va.candidates(&target, &resolved).unwrap();
        let expected: Vec<IpAddr> =
            vec!["2606:4700::1".parse().unwrap(), "1.2.3.4".parse().unwrap()];
        assert_eq!(candidates, expected);
    }

    #[tokio::test]
    async fn falls_back_to_ipv4_when_ipv6_fails() {
        let server = TestServer::start(valid_certificate()).await;
        // Nothing listens on [::1]:port (or ::1 does not exist here): either way
        // the connection fails and the VA moves on to 127.0.0.1.
        let lookup = FakeLookup::new(&[("example.com", &["::1", "127.0.0.1"])]);
        let va = tlsalpn01(lookup, server.port, true);

        let result = validate(&va, Identifier::dns("example.com")).await;

        assert_eq!(result.problem, None);
        assert_eq!(
            result.records[0].address_used,
            Some("127.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn reverse_names_follow_rfc_8738() {
        assert_eq!(
            reverse_name("192.0.2.10".parse().unwrap()),
            "10.2.0.192.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
        let sni = Target::Ip("2001:db8::1".parse().unwrap())
            .server_name()
            .unwrap();
        assert!(matches!(sni, ServerName::DnsName(_)), "{sni:?}");
    }
}
