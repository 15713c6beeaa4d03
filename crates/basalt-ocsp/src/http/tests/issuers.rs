//! A responder for several issuers: each request is answered for the issuer its
//! CertID names, and each issuer certificate is served at its path.

use axum::http::Method;

use super::*;

/// An RSA key for a second issuer (rcgen cannot generate RSA keys with ring).
const RSA_KEY: &str = include_str!("../../../../basalt-ca/testdata/rsa-2048-a.key");

/// A responder for an ECDSA and an RSA issuer, with serial 01 issued by the first
/// and serial 02 by the second.
struct TwoIssuers {
    ecdsa: TestIssuer,
    rsa: TestIssuer,
    sa: Arc<FakeSa>,
    signer: Arc<FakeSigner>,
    router: Router,
}

fn two_issuers() -> TwoIssuers {
    let ecdsa = TestIssuer::new("Basalt Test ECDSA Issuer");
    let rsa = TestIssuer::with_key(
        "Basalt Test RSA Issuer",
        KeyPair::from_pem(RSA_KEY).unwrap(),
    );
    let records = vec![
        good_record(&ecdsa, &serial("01")),
        good_record(&rsa, &serial("02")),
    ];
    let (sa, signer, router) = build(
        vec![
            ecdsa.responder_issuer(Some("/issuers/ecdsa.der")),
            rsa.responder_issuer(Some("/issuers/rsa.der")),
        ],
        records,
        false,
        SignerMode::Valid(Duration::from_secs(4 * 86_400)),
    );
    TwoIssuers {
        ecdsa,
        rsa,
        sa,
        signer,
        router,
    }
}

fn sha1_request(issuer: &TestIssuer, serial: &Serial) -> Vec<u8> {
    request_der(vec![
        issuer.cert_id(serial, &digest::SHA1_FOR_LEGACY_USE_ONLY),
    ])
}

/// Checks that `response` carries the CA's latest signed response.
async fn assert_answered(signer: &FakeSigner, response: Response) {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_of(&response, header::CONTENT_TYPE), OCSP_RESPONSE);
    let der = body(response).await;
    let signed = signer.responses.lock().unwrap().last().cloned();
    assert_eq!(Some(der), signed, "not the CA's bytes");
}

/// The issuer key hashes the CA was asked to sign with, in order.
fn signed_with(signer: &FakeSigner) -> Vec<Vec<u8>> {
    signer
        .entries
        .lock()
        .unwrap()
        .iter()
        .map(|entry| entry.issuer_key_hash.clone())
        .collect()
}

async fn send(router: &Router, method: Method, path: &str, body: Vec<u8>) -> Response {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(body))
        .unwrap();
    router.clone().oneshot(request).await.unwrap()
}

/// Checks that `response` is `cert_der` served as an issuer certificate, and
/// returns its body.
async fn certificate_body(response: Response, cert_der: &[u8]) -> Vec<u8> {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_of(&response, header::CONTENT_TYPE),
        "application/pkix-cert"
    );
    assert_eq!(
        header_of(&response, header::CACHE_CONTROL),
        "max-age=86400, public"
    );
    let hex: String = digest::digest(&digest::SHA256, cert_der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(header_of(&response, header::ETAG), format!("\"{hex}\""));
    body(response).await
}

#[tokio::test]
async fn each_issuer_is_answered_with_its_own_key_hash() {
    let issuers = two_issuers();
    assert_ne!(issuers.ecdsa.key_hash(), issuers.rsa.key_hash());
    let response = post(&issuers.router, sha1_request(&issuers.ecdsa, &serial("01"))).await;
    assert_answered(&issuers.signer, response).await;
    let response = post(&issuers.router, sha1_request(&issuers.rsa, &serial("02"))).await;
    assert_answered(&issuers.signer, response).await;
    // By GET too, from the cache: the status is unchanged.
    let encoded = STANDARD.encode(sha1_request(&issuers.rsa, &serial("02")));
    let response = get(&issuers.router, &format!("/{encoded}")).await;
    assert_answered(&issuers.signer, response).await;

    let entries = issuers.signer.entries.lock().unwrap().clone();
    assert_eq!(
        entries,
        vec![
            OcspRequestEntry {
                serial: serial("01"),
                status: OcspStatus::Good,
                revoked_at: None,
                reason: None,
                issuer_key_hash: issuers.ecdsa.key_hash(),
                hash_algorithm: CertIdHash::Sha1,
            },
            OcspRequestEntry {
                serial: serial("02"),
                status: OcspStatus::Good,
                revoked_at: None,
                reason: None,
                issuer_key_hash: issuers.rsa.key_hash(),
                hash_algorithm: CertIdHash::Sha1,
            },
        ]
    );
}

#[tokio::test]
async fn a_certid_naming_the_other_issuer_is_unauthorized() {
    let issuers = two_issuers();
    // Serial 02 was issued by the RSA issuer, serial 01 by the ECDSA one.
    for (named, serial_hex) in [(&issuers.ecdsa, "02"), (&issuers.rsa, "01")] {
        let response = post(&issuers.router, sha1_request(named, &serial(serial_hex))).await;
        assert_eq!(
            failed_status(response).await,
            OcspResponseStatus::Unauthorized,
            "{serial_hex}"
        );
    }
    // Each serial was looked up, and the CA was asked for nothing.
    assert_eq!(
        *issuers.sa.lookups.lock().unwrap(),
        vec![serial("02"), serial("01")]
    );
    assert!(issuers.signer.entries.lock().unwrap().is_empty());
}

#[tokio::test]
async fn mixed_or_unknown_issuer_hashes_are_unauthorized() {
    let issuers = two_issuers();
    let stranger = TestIssuer::new("Someone Else");
    // The ECDSA issuer's name with the RSA issuer's key, and a stranger.
    let mut mixed = issuers
        .ecdsa
        .cert_id(&serial("01"), &digest::SHA1_FOR_LEGACY_USE_ONLY);
    mixed.issuer_key_hash = issuers
        .rsa
        .cert_id(&serial("01"), &digest::SHA1_FOR_LEGACY_USE_ONLY)
        .issuer_key_hash;
    let unknown = stranger.cert_id(&serial("01"), &digest::SHA1_FOR_LEGACY_USE_ONLY);
    for cert_id in [mixed, unknown] {
        let response = post(&issuers.router, request_der(vec![cert_id])).await;
        assert_eq!(
            failed_status(response).await,
            OcspResponseStatus::Unauthorized
        );
    }
    assert!(issuers.sa.lookups.lock().unwrap().is_empty());
    // SHA-256 CertIDs are matched against every issuer and answered by the one
    // they name.
    let cert_id = issuers.rsa.cert_id(&serial("02"), &digest::SHA256);
    let response = post(&issuers.router, request_der(vec![cert_id])).await;
    assert_answered(&issuers.signer, response).await;
    assert_eq!(signed_with(&issuers.signer), vec![issuers.rsa.key_hash()]);
    let mut mixed = issuers.ecdsa.cert_id(&serial("01"), &digest::SHA256);
    mixed.issuer_key_hash = issuers
        .rsa
        .cert_id(&serial("01"), &digest::SHA256)
        .issuer_key_hash;
    let response = post(&issuers.router, request_der(vec![mixed])).await;
    assert_eq!(
        failed_status(response).await,
        OcspResponseStatus::Unauthorized
    );
}

#[tokio::test]
async fn issuers_sharing_a_name_are_told_apart_by_key() {
    // A key rollover under the same name: only the key hash and the certificates'
    // authorityKeyIdentifier tell the issuers apart.
    let old = TestIssuer::new("Basalt Rollover Issuer");
    let new = TestIssuer::with_key(
        "Basalt Rollover Issuer",
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
    );
    let records = vec![
        good_record(&old, &serial("01")),
        good_record(&new, &serial("02")),
    ];
    let (_sa, signer, router) = build(
        vec![old.responder_issuer(None), new.responder_issuer(None)],
        records,
        false,
        SignerMode::Valid(Duration::from_secs(86_400)),
    );
    for (issuer, serial_hex) in [(&old, "01"), (&new, "02")] {
        let response = post(&router, sha1_request(issuer, &serial(serial_hex))).await;
        assert_answered(&signer, response).await;
    }
    assert_eq!(signed_with(&signer), vec![old.key_hash(), new.key_hash()]);
    for (issuer, serial_hex) in [(&old, "02"), (&new, "01")] {
        let response = post(&router, sha1_request(issuer, &serial(serial_hex))).await;
        assert_eq!(
            failed_status(response).await,
            OcspResponseStatus::Unauthorized,
            "{serial_hex}"
        );
    }
    assert_eq!(signer.entries.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_cross_signed_copy_does_not_break_matching() {
    let issuer = TestIssuer::new("Basalt Test Issuer");
    // The same name and key, signed by another root.
    let root_key = KeyPair::generate().unwrap();
    let mut root_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    root_params
        .distinguished_name
        .push(DnType::CommonName, "Another Root");
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root = rcgen::Issuer::from_params(&root_params, &root_key);
    let cross = issuer
        .params
        .signed_by(&issuer.key, &root)
        .unwrap()
        .der()
        .to_vec();
    assert_ne!(cross, issuer.der);
    let cross_issuer = ResponderIssuer {
        cert_der: cross.clone(),
        path: Some("/cross.der".to_owned()),
    };
    for issuers in [
        vec![
            issuer.responder_issuer(Some("/a.der")),
            cross_issuer.clone(),
        ],
        vec![
            cross_issuer.clone(),
            issuer.responder_issuer(Some("/a.der")),
        ],
    ] {
        let (_sa, signer, router) = build(
            issuers,
            vec![good_record(&issuer, &serial("01"))],
            false,
            SignerMode::Valid(Duration::from_secs(86_400)),
        );
        let response = post(&router, sha1_request(&issuer, &serial("01"))).await;
        assert_answered(&signer, response).await;
        assert_eq!(signed_with(&signer), vec![issuer.key_hash()]);
        let response = get(&router, "/a.der").await;
        assert_eq!(certificate_body(response, &issuer.der).await, issuer.der);
        let response = get(&router, "/cross.der").await;
        assert_eq!(certificate_body(response, &cross).await, cross);
    }
}

#[tokio::test]
async fn issuer_certificates_are_served_at_their_paths() {
    let issuers = two_issuers();
    for (path, issuer) in [
        ("/issuers/ecdsa.der", &issuers.ecdsa),
        ("/issuers/rsa.der", &issuers.rsa),
    ] {
        let response = get(&issuers.router, path).await;
        assert_eq!(certificate_body(response, &issuer.der).await, issuer.der);
        // A query string does not change the resource.
        let response = get(&issuers.router, &format!("{path}?x=1")).await;
        assert_eq!(certificate_body(response, &issuer.der).await, issuer.der);
        let response = send(&issuers.router, Method::HEAD, path, Vec::new()).await;
        assert!(certificate_body(response, &issuer.der).await.is_empty());
    }
    // Other paths are still read as OCSP requests.
    for path in ["/issuers/other.der", "/issuers/ecdsa.der/", "/issuers"] {
        let response = get(&issuers.router, path).await;
        assert_eq!(
            failed_status(response).await,
            OcspResponseStatus::MalformedRequest,
            "{path}"
        );
    }
    // A POST to an issuer path is an OCSP request, as a POST anywhere is.
    let request = sha1_request(&issuers.ecdsa, &serial("01"));
    let response = send(&issuers.router, Method::POST, "/issuers/rsa.der", request).await;
    assert_answered(&issuers.signer, response).await;
    assert!(issuers.sa.lookups.lock().unwrap().len() == 1);
}

#[tokio::test]
async fn an_issuer_path_wins_over_an_identical_ocsp_get() {
    // An issuer path that is also a valid GET request (unpadded URL-safe base64
    // uses only characters a path may hold): the certificate is served, and the
    // request is not answered.
    let issuer = TestIssuer::new("Basalt Test Issuer");
    let encoded = URL_SAFE_NO_PAD.encode(sha1_request(&issuer, &serial("0a0b0c0d")));
    let path = format!("/{encoded}");
    let (sa, signer, router) = build(
        vec![issuer.responder_issuer(Some(&path))],
        vec![good_record(&issuer, &serial("0a0b0c0d"))],
        false,
        SignerMode::Valid(Duration::from_secs(86_400)),
    );
    let response = get(&router, &path).await;
    assert_eq!(certificate_body(response, &issuer.der).await, issuer.der);
    assert!(sa.lookups.lock().unwrap().is_empty());
    // The same request with its first character escaped is another path, so it
    // reaches the responder.
    let escaped = format!("/%{:02X}{}", encoded.as_bytes()[0], &encoded[1..]);
    let response = get(&router, &escaped).await;
    assert_answered(&signer, response).await;
    assert_eq!(signed_with(&signer), vec![issuer.key_hash()]);
}
