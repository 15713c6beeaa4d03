//! The CA's gRPC allow-list in a real deployment: the WFE holds a valid internal
//! certificate, yet the CA refuses to issue for it.

use std::time::Duration;

use basalt_config::ConfigDuration;
use basalt_config::GrpcClientConfig;
use basalt_config::TlsConfig;
use basalt_core::AccountId;
use basalt_core::CertificateAuthority;
use basalt_core::Identifier;
use basalt_core::IssueRequest;
use basalt_core::OrderId;
use basalt_grpc::CaClient;
use basalt_grpc::GrpcChannel;
use basalt_grpc::service_names;

use crate::harness::DevCa;

// Multi-threaded so the gRPC connection's task can close it while `DevCa::drop`
// blocks this thread; otherwise the CA's graceful stop waits on the open connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_refuses_the_wfe() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = DevCa::start("allowlist");
    let channel = GrpcChannel::new(
        &GrpcClientConfig {
            address: ca.grpc_address("ca"),
            server_name: "ca".to_owned(),
            timeout: ConfigDuration(Duration::from_secs(10)),
        },
        &TlsConfig {
            cert: ca.pki("wfe.pem"),
            key: ca.pki("wfe.key"),
            ca: ca.pki("internal-ca.pem"),
        },
    )
    .expect("a channel to the CA");

    // The server is up and accepts the WFE's certificate for the health service…
    let serving = channel
        .check_health(service_names::CERTIFICATE_AUTHORITY)
        .await
        .expect("health check with the WFE's certificate");
    assert!(serving, "the CA does not report its service as serving");

    // …but the issuance service is only for the RA.
    let err = CaClient::new(channel)
        .issue_certificate(IssueRequest {
            csr_der: Vec::new(),
            account_id: AccountId(1),
            order_id: OrderId(1),
            identifiers: vec![Identifier::dns("allowlist.example.com")],
            profile: String::new(),
            not_before: None,
            not_after: None,
        })
        .await
        .expect_err("the CA issued for the WFE");
    assert!(
        err.detail.contains("PermissionDenied"),
        "refused for another reason: {err}"
    );

    // The refusal is logged (the log is written asynchronously; allow a moment).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !ca.log("ca").contains("not on the allow-list") {
        assert!(
            std::time::Instant::now() < deadline,
            "ca.log does not record the refusal"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
