//! Real gRPC over mutual TLS on loopback: allow-lists, error transport, health.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use basalt_config::ConfigDuration;
use basalt_config::GrpcClientConfig;
use basalt_config::GrpcServerConfig;
use basalt_config::TlsConfig;
use basalt_core::CertIdHash;
use basalt_core::CertificateAuthority;
use basalt_core::CrlRequest;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::IssueRequest;
use basalt_core::IssuedCertificate;
use basalt_core::OcspRequestEntry;
use basalt_core::OcspStatus;
use basalt_core::RevocationReason;
use basalt_core::RevocationSigner;
use basalt_core::RevokedEntry;
use basalt_grpc::CaClient;
use basalt_grpc::GrpcChannel;
use basalt_grpc::GrpcServer;
use basalt_grpc::service_names;
use basalt_testkit::TestPki;
use tokio::sync::oneshot;

/// A CA that refuses CSRs it cannot parse and otherwise returns a fixed answer.
struct FakeCa;

#[async_trait]
impl CertificateAuthority for FakeCa {
    async fn issue_certificate(&self, request: IssueRequest) -> Result<IssuedCertificate, Error> {
        if request.csr_der.is_empty() {
            return Err(Error::new(ErrorKind::BadCsr, "empty CSR"));
        }
        Ok(IssuedCertificate {
            serial: "7f01".parse()?,
            der: request.csr_der,
            chain: vec![],
        })
    }
}

#[async_trait]
impl RevocationSigner for FakeCa {
    async fn sign_ocsp(&self, entries: Vec<OcspRequestEntry>) -> Result<Vec<Vec<u8>>, Error> {
        Ok(entries
            .iter()
            .map(|e| [e.serial.as_bytes(), &e.issuer_key_hash].concat())
            .collect())
    }

    async fn generate_crl(&self, request: CrlRequest) -> Result<Vec<u8>, Error> {
        if request.shard == 99 {
            return Err(Error::malformed("CRL shard 99 is out of range"));
        }
        Ok(fake_crl(&request))
    }
}

/// What [`FakeCa`] answers a CRL request with: every field of the request, padded
/// to 200 KiB for shard 7 (several chunks) and to 65 MiB for shard 8 (more than a
/// client accepts).
fn fake_crl(request: &CrlRequest) -> Vec<u8> {
    let mut der = request.issuer_key_hash.clone();
    der.extend(request.shard.to_be_bytes());
    der.extend(request.this_update.unix_timestamp_nanos().to_be_bytes());
    for entry in &request.entries {
        der.extend(entry.serial.as_bytes());
        der.push(entry.reason.code());
        der.extend(entry.revoked_at.unix_timestamp_nanos().to_be_bytes());
    }
    let size = match request.shard {
        7 => 200 << 10,
        8 => 65 << 20,
        _ => 0,
    };
    der.resize(size.max(der.len()), 0x5a);
    der
}

struct RunningCa {
    address: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for RunningCa {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start_ca(pki: &TestPki) -> RunningCa {
    let mut allowed = BTreeMap::new();
    allowed.insert(
        service_names::CERTIFICATE_AUTHORITY.to_owned(),
        vec!["ra".to_owned()],
    );
    allowed.insert(
        service_names::REVOCATION_SIGNER.to_owned(),
        vec!["ocsp".to_owned()],
    );
    let grpc = GrpcServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        allowed_clients: allowed,
        drain_timeout: basalt_config::default_drain_timeout(),
    };
    let (issuer, signer) = basalt_grpc::ca_servers(Arc::new(FakeCa));
    let server = GrpcServer::bind(&grpc, &pki.tls("ca"))
        .await
        .unwrap()
        .add_service(issuer)
        .add_service(signer);
    serve(server)
}

/// Serves `server` until the returned handle is dropped.
fn serve(server: GrpcServer) -> RunningCa {
    let address = server.local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    RunningCa {
        address,
        stop: Some(stop),
    }
}

fn channel(pki: &TestPki, client: &str, ca: &RunningCa) -> GrpcChannel {
    let config = GrpcClientConfig {
        address: ca.address.clone(),
        server_name: "ca".to_owned(),
        timeout: ConfigDuration(std::time::Duration::from_secs(5)),
    };
    GrpcChannel::new(&config, &pki.tls(client)).unwrap()
}

fn issue_request(csr: &[u8]) -> IssueRequest {
    IssueRequest {
        csr_der: csr.to_vec(),
        account_id: basalt_core::AccountId(1),
        order_id: basalt_core::OrderId(2),
        identifiers: vec![Identifier::dns("a.example")],
        profile: "classic".to_owned(),
        not_before: None,
        not_after: None,
    }
}

fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[tokio::test]
async fn ca_refuses_clients_not_on_its_allow_list() {
    install_provider();
    let pki = TestPki::new(&["ca", "ra", "wfe", "ocsp"]);
    let ca = start_ca(&pki).await;

    let from_ra = CaClient::new(channel(&pki, "ra", &ca));
    let issued = from_ra
        .issue_certificate(issue_request(b"csr"))
        .await
        .unwrap();
    assert_eq!(issued.serial.to_string(), "7f01");

    // The WFE holds a valid internal certificate, but is not on the CA's list.
    let from_wfe = CaClient::new(channel(&pki, "wfe", &ca));
    let err = from_wfe
        .issue_certificate(issue_request(b"csr"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal, "{err}");
    assert!(err.detail.contains("PermissionDenied"), "{err}");

    // Allow-lists are per gRPC service: the RA may issue but not sign OCSP.
    let entry = OcspRequestEntry {
        serial: "01".parse().unwrap(),
        status: OcspStatus::Good,
        revoked_at: None,
        reason: None,
        issuer_key_hash: vec![0xab; 20],
        hash_algorithm: CertIdHash::Sha1,
    };
    let err = from_ra.sign_ocsp(vec![entry.clone()]).await.unwrap_err();
    assert!(err.detail.contains("PermissionDenied"), "{err}");
    let from_ocsp = CaClient::new(channel(&pki, "ocsp", &ca));
    assert_eq!(
        from_ocsp.sign_ocsp(vec![entry]).await.unwrap(),
        vec![[&[1][..], &[0xab; 20]].concat()]
    );
}

#[tokio::test]
async fn errors_cross_the_wire_whole() {
    install_provider();
    let pki = TestPki::new(&["ca", "ra"]);
    let ca = start_ca(&pki).await;
    let err = CaClient::new(channel(&pki, "ra", &ca))
        .issue_certificate(issue_request(b""))
        .await
        .unwrap_err();
    assert_eq!(err, Error::new(ErrorKind::BadCsr, "empty CSR"));
}

#[tokio::test]
async fn health_answers_any_internal_client_and_nobody_else() {
    install_provider();
    let pki = TestPki::new(&["ca", "wfe"]);
    let ca = start_ca(&pki).await;
    let health = channel(&pki, "wfe", &ca);
    assert!(
        health
            .check_health(service_names::CERTIFICATE_AUTHORITY)
            .await
            .unwrap()
    );

    // A certificate from another CA does not get past the handshake.
    let stranger = TestPki::new(&["ra"]);
    let tls = TlsConfig {
        ca: pki.ca_cert(),
        ..stranger.tls("ra")
    };
    let config = GrpcClientConfig {
        address: ca.address.clone(),
        server_name: "ca".to_owned(),
        timeout: ConfigDuration(std::time::Duration::from_secs(5)),
    };
    let err = GrpcChannel::new(&config, &tls)
        .unwrap()
        .check_health(service_names::CERTIFICATE_AUTHORITY)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
}

/// A CRL request streams to the CA and the CRL streams back, in several chunks,
/// for the OCSP/CRL updater only; the CA's errors cross whole, and a CRL larger
/// than the client's cap is refused.
#[tokio::test]
async fn crls_stream_both_ways() {
    install_provider();
    let pki = TestPki::new(&["ca", "ra", "ocsp"]);
    let ca = start_ca(&pki).await;
    let from_ocsp = CaClient::new(channel(&pki, "ocsp", &ca));
    let at = |nanos: i128| time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap();
    let request = CrlRequest {
        issuer_key_hash: vec![0xab; 20],
        shard: 7,
        this_update: at(1_780_272_000_123_456_789),
        entries: vec![
            RevokedEntry {
                serial: "ff01".parse().unwrap(),
                revoked_at: at(1_780_000_000_000_000_000),
                reason: RevocationReason::KeyCompromise,
            },
            RevokedEntry {
                serial: "0a".parse().unwrap(),
                revoked_at: at(1_770_000_000_500_000_000),
                reason: RevocationReason::Unspecified,
            },
        ],
    };
    let der = from_ocsp.generate_crl(request.clone()).await.unwrap();
    assert_eq!(der.len(), 200 << 10);
    assert_eq!(der, fake_crl(&request));

    // No entries at all.
    let empty = CrlRequest {
        shard: 0,
        entries: vec![],
        ..request.clone()
    };
    assert_eq!(
        from_ocsp.generate_crl(empty.clone()).await.unwrap(),
        fake_crl(&empty)
    );

    let err = from_ocsp
        .generate_crl(CrlRequest {
            shard: 99,
            ..request.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(err, Error::malformed("CRL shard 99 is out of range"));

    let err = from_ocsp
        .generate_crl(CrlRequest {
            shard: 8,
            ..request.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal, "{err}");
    assert!(err.detail.contains("larger than 64 MiB"), "{err}");

    // The RA may issue, not sign CRLs.
    let err = CaClient::new(channel(&pki, "ra", &ca))
        .generate_crl(request)
        .await
        .unwrap_err();
    assert!(err.detail.contains("PermissionDenied"), "{err}");
}

/// The value of the sample `name{labels}` in the process's metrics (0 when it
/// has none yet), labels in any order.
fn metric(name: &str, labels: &[(&str, &str)]) -> f64 {
    basalt_telemetry::metrics::render()
        .lines()
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, rest) = series.split_once('{')?;
            let pairs: Vec<&str> = rest.strip_suffix('}')?.split(',').collect();
            let matches = series_name == name
                && labels
                    .iter()
                    .all(|(key, value)| pairs.contains(&format!("{key}=\"{value}\"").as_str()));
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

#[tokio::test]
async fn calls_are_counted_and_timed_on_both_sides_with_their_status() {
    install_provider();
    let pki = TestPki::new(&["ca", "ra", "wfe"]);
    let ca = start_ca(&pki).await;
    // Other tests of this binary call the CA too, at the same time: only growth
    // is checked.
    let server_method = |method: &'static str, code: &'static str| {
        metric(
            "basalt_grpc_server_requests_total",
            &[
                ("service", service_names::CERTIFICATE_AUTHORITY),
                ("method", method),
                ("code", code),
            ],
        )
    };
    let server = |code: &'static str| server_method("IssueCertificate", code);
    // A refused caller's method is not taken from its request.
    let refused = || server_method("refused", "PermissionDenied");
    let client = |code: &'static str| {
        metric(
            "basalt_grpc_client_requests_total",
            &[
                ("method", "basalt.ca.CertificateAuthority/IssueCertificate"),
                ("code", code),
            ],
        )
    };
    let timed = |name: &str, labels: &[(&str, &str)]| metric(name, labels);
    let server_latency = [
        ("service", service_names::CERTIFICATE_AUTHORITY),
        ("method", "IssueCertificate"),
    ];
    let client_latency = [("method", "basalt.ca.CertificateAuthority/IssueCertificate")];
    let before = (
        server("OK"),
        client("OK"),
        refused(),
        client("PermissionDenied"),
        server("InvalidArgument"),
        timed(
            "basalt_grpc_server_request_duration_seconds_count",
            &server_latency,
        ),
        timed(
            "basalt_grpc_client_request_duration_seconds_count",
            &client_latency,
        ),
    );

    let from_ra = CaClient::new(channel(&pki, "ra", &ca));
    from_ra
        .issue_certificate(issue_request(b"csr"))
        .await
        .unwrap();
    from_ra
        .issue_certificate(issue_request(b""))
        .await
        .unwrap_err();
    CaClient::new(channel(&pki, "wfe", &ca))
        .issue_certificate(issue_request(b"csr"))
        .await
        .unwrap_err();

    assert!(server("OK") > before.0, "no OK call counted by the server");
    assert!(client("OK") > before.1, "no OK call counted by the client");
    assert!(refused() > before.2, "refusal not counted");
    assert_eq!(
        server("PermissionDenied"),
        0.0,
        "a refusal named its method"
    );
    assert!(client("PermissionDenied") > before.3, "refusal not counted");
    assert!(server("InvalidArgument") > before.4, "bad CSR not counted");
    // The two calls let in; the refused one is timed under "refused".
    assert!(
        timed(
            "basalt_grpc_server_request_duration_seconds_count",
            &server_latency
        ) >= before.5 + 2.0
    );
    assert!(
        timed(
            "basalt_grpc_client_request_duration_seconds_count",
            &client_latency
        ) >= before.6 + 3.0
    );
}

/// A nonce store that counts the batches asked of it; with `single` it answers
/// every batch with one nonce, as a nonce service from before batches did.
#[derive(Default)]
struct CountingNonces {
    single: bool,
    issued: std::sync::atomic::AtomicUsize,
    batches: std::sync::atomic::AtomicUsize,
    live: std::sync::Mutex<std::collections::HashSet<String>>,
}

#[async_trait]
impl basalt_core::Nonces for CountingNonces {
    async fn new_nonce(&self) -> Result<String, Error> {
        let n = self
            .issued
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let nonce = format!("nonce-{n}");
        self.live.lock().unwrap().insert(nonce.clone());
        Ok(nonce)
    }

    async fn new_nonces(&self, count: usize) -> Result<Vec<String>, Error> {
        self.batches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let count = if self.single { 1 } else { count };
        let mut nonces = Vec::new();
        for _ in 0..count {
            nonces.push(self.new_nonce().await?);
        }
        Ok(nonces)
    }

    async fn redeem(&self, nonce: &str) -> Result<bool, Error> {
        Ok(self.live.lock().unwrap().remove(nonce))
    }
}

async fn start_nonces(pki: &TestPki, store: Arc<CountingNonces>) -> RunningCa {
    let mut allowed = BTreeMap::new();
    allowed.insert(service_names::NONCE.to_owned(), vec!["wfe".to_owned()]);
    let grpc = GrpcServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        allowed_clients: allowed,
        drain_timeout: basalt_config::default_drain_timeout(),
    };
    // The test PKI's server certificate is named "ca": the nonce service runs under it.
    let server = GrpcServer::bind(&grpc, &pki.tls("ca"))
        .await
        .unwrap()
        .add_service(basalt_grpc::nonce_server(store));
    serve(server)
}

#[tokio::test]
async fn nonces_are_fetched_in_batches_and_each_redeems_once() {
    use basalt_core::Nonces;
    install_provider();
    let pki = TestPki::new(&["ca", "wfe"]);
    let store = Arc::new(CountingNonces::default());
    let server = start_nonces(&pki, store.clone()).await;
    let client = basalt_grpc::NonceClient::new(channel(&pki, "wfe", &server));

    let mut handed_out = std::collections::HashSet::new();
    for _ in 0..40 {
        assert!(handed_out.insert(client.new_nonce().await.unwrap()));
    }
    // 40 nonces in two calls of 32, not 40 calls.
    assert_eq!(store.batches.load(std::sync::atomic::Ordering::SeqCst), 2);
    for nonce in &handed_out {
        assert!(
            client.redeem(nonce).await.unwrap(),
            "{nonce} was not redeemable"
        );
        assert!(
            !client.redeem(nonce).await.unwrap(),
            "{nonce} redeemed twice"
        );
    }

    // The service caps a batch.
    let many = client.new_nonces(1000).await.unwrap();
    assert_eq!(many.len(), basalt_grpc::MAX_NONCE_BATCH as usize);
}

#[tokio::test]
async fn a_service_answering_one_nonce_per_call_still_serves() {
    use basalt_core::Nonces;
    install_provider();
    let pki = TestPki::new(&["ca", "wfe"]);
    let store = Arc::new(CountingNonces {
        single: true,
        ..CountingNonces::default()
    });
    let server = start_nonces(&pki, store.clone()).await;
    let client = basalt_grpc::NonceClient::new(channel(&pki, "wfe", &server));
    let first = client.new_nonce().await.unwrap();
    let second = client.new_nonce().await.unwrap();
    assert_ne!(first, second);
    assert_eq!(store.batches.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(client.redeem(&first).await.unwrap());
}
