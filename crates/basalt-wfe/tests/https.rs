//! The HTTPS listener: a real TLS handshake (1.2 and 1.3) and ALPN, then a request.

// Test helpers outside #[test] functions may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Read;
use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::ClientConnection;
use rustls::RootCertStore;
use rustls::StreamOwned;
use rustls::SupportedProtocolVersion;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::ServerName;

use crate::support::BASE;
use crate::support::TestApp;
use crate::support::TestKey;

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn client(
    root: CertificateDer<'static>,
    version: &'static SupportedProtocolVersion,
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(root).unwrap();
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// `GET /directory`, closing the connection after the response.
const GET_DIRECTORY: &str =
    "GET /directory HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

/// Connects, sends `request`, and returns the negotiated protocol version and ALPN
/// and, for http/1.1, the response.
fn fetch(
    port: u16,
    config: Arc<ClientConfig>,
    request: &str,
) -> (rustls::ProtocolVersion, Option<Vec<u8>>, String) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let conn = ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    tls.write_all(request.as_bytes()).unwrap();
    let version = tls.conn.protocol_version().unwrap();
    let alpn = tls.conn.alpn_protocol().map(<[u8]>::to_vec);
    let mut response = String::new();
    if alpn.as_deref() != Some(b"h2") {
        let _ = tls.read_to_string(&mut response);
    }
    (version, alpn, response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_tls12_and_tls13_with_alpn() {
    let dir =
        TempDir(std::env::temp_dir().join(format!("basalt-wfe-https-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.0.join("cert.pem");
    let key_path = dir.0.join("key.pem");
    std::fs::write(&cert_path, issued.cert.pem()).unwrap();
    std::fs::write(&key_path, issued.signing_key.serialize_pem()).unwrap();
    let root = issued.cert.der().clone();

    let app = TestApp::new();
    let fake = app.fake.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let (cert_path, key_path) = (cert_path.clone(), key_path.clone());
        async move {
            let drain = std::time::Duration::from_secs(5);
            basalt_wfe::serve_https_on(listener, &cert_path, &key_path, app.router, drain, async {
                let _ = stopped.await;
            })
            .await
        }
    });

    let (version, alpn, response) = tokio::task::spawn_blocking({
        let config = client(root.clone(), &rustls::version::TLS12, &[b"http/1.1"]);
        move || fetch(port, config, GET_DIRECTORY)
    })
    .await
    .unwrap();
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_2);
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("\"newNonce\":\"https://acme.test:14000/acme/new-nonce\""),
        "{response}"
    );
    assert!(
        response.to_ascii_lowercase().contains("link: <"),
        "{response}"
    );

    let (version, alpn, _) = tokio::task::spawn_blocking({
        let config = client(root.clone(), &rustls::version::TLS13, &[b"h2", b"http/1.1"]);
        move || fetch(port, config, GET_DIRECTORY)
    })
    .await
    .unwrap();
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_3);
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));

    // The listener hands the handlers each connection's peer address: newAccount
    // passes it to the RA, whatever X-Forwarded-For claims.
    let config = client(root, &rustls::version::TLS13, &[b"http/1.1"]);
    let (_, _, response) = tokio::task::spawn_blocking({
        let config = config.clone();
        move || {
            fetch(
                port,
                config,
                "HEAD /acme/new-nonce HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            )
        }
    })
    .await
    .unwrap();
    let nonce = response
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("replay-nonce")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no nonce: {response}"));
    let key = TestKey::es256();
    let body = key.sign(
        &key.header(&format!("{BASE}/acme/new-account"), Some(&nonce)),
        r#"{"termsOfServiceAgreed":true}"#,
    );
    let request = format!(
        "POST /acme/new-account HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/jose+json\r\nContent-Length: {}\r\n\
         X-Forwarded-For: 192.0.2.66\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (_, _, response) = tokio::task::spawn_blocking(move || fetch(port, config, &request))
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let remote_ip = fake.lock().new_accounts[0].remote_ip;
    assert_eq!(remote_ip, Some("127.0.0.1".parse().unwrap()));

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn missing_certificate_files_are_errors() {
    let app = TestApp::new();
    let err = basalt_wfe::serve_https(
        "127.0.0.1:0".parse().unwrap(),
        std::path::Path::new("/nonexistent/cert.pem"),
        std::path::Path::new("/nonexistent/key.pem"),
        app.router,
        std::time::Duration::from_secs(5),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, basalt_core::ErrorKind::Internal);
    assert!(
        err.detail.contains("/nonexistent/cert.pem"),
        "{}",
        err.detail
    );
}
