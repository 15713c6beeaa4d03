//! The WFE router driven in-process with `tower::ServiceExt::oneshot`.

// Test helpers outside #[test] functions may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod support;

use axum::body::Body;
use axum::http::Request;
use axum::http::StatusCode;
use basalt_core::AccountId;
use basalt_core::RevocationReason;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use serde_json::json;

use crate::support::BASE;
use crate::support::TOS;
use crate::support::TestApp;
use crate::support::TestKey;

fn assert_common_headers(reply: &support::Reply) {
    assert!(
        reply.header("replay-nonce").is_some_and(|n| n.len() == 22),
        "no nonce"
    );
    let links: Vec<&str> = reply
        .headers
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        links.contains(&format!("<{BASE}/directory>;rel=\"index\"").as_str()),
        "{links:?}"
    );
}

#[tokio::test]
async fn directory_lists_the_resources() {
    let app = TestApp::new();
    let reply = app.get("/directory").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_common_headers(&reply);
    assert_eq!(
        reply.json(),
        json!({
            "newNonce": format!("{BASE}/acme/new-nonce"),
            "newAccount": format!("{BASE}/acme/new-account"),
            "newOrder": format!("{BASE}/acme/new-order"),
            "revokeCert": format!("{BASE}/acme/revoke-cert"),
            "meta": {"termsOfService": TOS, "website": "https://acme.test"},
        })
    );
}

#[tokio::test]
async fn new_nonce_head_and_get() {
    let app = TestApp::new();
    let head = app
        .send(
            Request::head("/acme/new-nonce")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("cache-control"), Some("no-store"));
    assert_common_headers(&head);
    let get = app.get("/acme/new-nonce").await;
    assert_eq!(get.status, StatusCode::NO_CONTENT);
    assert_eq!(get.header("cache-control"), Some("no-store"));
    assert_ne!(head.header("replay-nonce"), get.header("replay-nonce"));
    let post = app.post_raw("/acme/new-nonce", String::new()).await;
    post.assert_problem("malformed", 405);
}

#[tokio::test]
async fn new_account_then_the_same_key_again() {
    let app = TestApp::new();
    let mut key = TestKey::es256();
    let created = app.register(&mut key).await;
    assert_common_headers(&created);
    let location = created.header("location").unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{BASE}/acme/acct/")),
        "{location}"
    );
    let body = created.json();
    assert_eq!(body["status"], "valid");
    assert_eq!(body["contact"], json!(["mailto:admin@example.com"]));
    assert_eq!(body["key"], key.jwk);

    // The same key: the existing account, 200, same Location (RFC 8555 §7.3.1).
    key.kid = None;
    let again = app
        .post(
            &key,
            "/acme/new-account",
            r#"{"termsOfServiceAgreed":true}"#,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.header("location"), Some(location.as_str()));
    assert_eq!(app.fake.lock().accounts.len(), 1);
    let only = app
        .post(&key, "/acme/new-account", r#"{"onlyReturnExisting":true}"#)
        .await;
    assert_eq!(only.status, StatusCode::OK);

    // The stored key is the RFC 7638 canonical JWK and its thumbprint.
    let state = app.fake.lock();
    let account = state.accounts.values().next().unwrap();
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
        key.jwk["x"], key.jwk["y"]
    );
    assert_eq!(account.key_jwk, canonical);
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    assert_eq!(
        account.key_thumbprint,
        URL_SAFE_NO_PAD.encode(digest.as_ref())
    );
}

#[tokio::test]
async fn new_account_race_returns_the_winner() {
    let app = TestApp::new();
    app.fake.lock().lose_next_race = true;
    let key = TestKey::es256();
    let reply = app
        .post(
            &key,
            "/acme/new-account",
            r#"{"termsOfServiceAgreed":true}"#,
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let id = app.fake.lock().accounts.keys().next().copied().unwrap();
    assert_eq!(
        reply.header("location"),
        Some(format!("{BASE}/acme/acct/{id}").as_str())
    );
}

#[tokio::test]
async fn new_account_refusals() {
    let app = TestApp::new();
    let key = TestKey::es256();
    app.post(&key, "/acme/new-account", r#"{"onlyReturnExisting":true}"#)
        .await
        .assert_problem("accountDoesNotExist", 400);
    let reply = app
        .post(&key, "/acme/new-account", r#"{"contact":[]}"#)
        .await;
    let problem = reply.assert_problem("malformed", 400);
    assert!(
        problem["detail"].as_str().unwrap().contains(TOS),
        "{problem}"
    );
    app.post(
        &key,
        "/acme/new-account",
        r#"{"termsOfServiceAgreed":true,"contact":["tel:+15551234"]}"#,
    )
    .await
    .assert_problem("unsupportedContact", 400);
    app.post(
        &key,
        "/acme/new-account",
        r#"{"termsOfServiceAgreed":true,"contact":["mailto:a@example.com,b@example.com"]}"#,
    )
    .await
    .assert_problem("invalidContact", 400);
    app.post(&key, "/acme/new-account", "")
        .await
        .assert_problem("malformed", 400);
    assert!(app.fake.lock().accounts.is_empty());

    // Without terms of service, agreement is not needed; a P-384 key works too.
    let app = TestApp::with_tos(None);
    let key = TestKey::es384();
    let reply = app.post(&key, "/acme/new-account", "{}").await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let directory = app.get("/directory").await.json();
    assert_eq!(directory["meta"], json!({"website": "https://acme.test"}));
}

#[tokio::test]
async fn kid_and_jwk_go_where_they_belong() {
    let app = TestApp::new();
    let mut key = TestKey::es256();
    app.register(&mut key).await;
    app.post(
        &key,
        "/acme/new-account",
        r#"{"termsOfServiceAgreed":true}"#,
    )
    .await
    .assert_problem("malformed", 400);
    let stranger = TestKey::es256();
    app.post(
        &stranger,
        "/acme/new-order",
        r#"{"identifiers":[{"type":"dns","value":"a.example"}]}"#,
    )
    .await
    .assert_problem("malformed", 400);
}

/// Every way a JWS can be wrong gets the right RFC 8555 problem, with a nonce.
#[tokio::test]
async fn malformed_jws_bodies_get_problems() {
    let app = TestApp::new();
    let mut account_key = TestKey::es256();
    app.register(&mut account_key).await;
    let key = TestKey::es256();
    let path = "/acme/new-account";
    let url = format!("{BASE}{path}");
    let payload = r#"{"termsOfServiceAgreed":true}"#;

    let good = |nonce: &str| key.sign(&key.header(&url, Some(nonce)), payload);
    let with = |body: &str, field: &str, value: &str| {
        let mut jws: Value = serde_json::from_str(body).unwrap();
        jws[field] = value.into();
        jws.to_string()
    };
    let signed_header = |header: Value| {
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let signature = key.signature(&format!("{protected}.{payload}"));
        json!({"protected": protected, "payload": payload, "signature": signature}).to_string()
    };

    let mut cases: Vec<(&str, String, &str, u16)> = Vec::new();
    let body = good(&app.nonce().await);
    let protected = serde_json::from_str::<Value>(&body).unwrap()["protected"]
        .as_str()
        .unwrap()
        .to_owned();
    cases.push((
        "padded protected",
        with(&body, "protected", &format!("{protected}=")),
        "malformed",
        400,
    ));
    cases.push((
        "bad protected chars",
        with(&body, "protected", "eyJ!!!"),
        "malformed",
        400,
    ));
    cases.push((
        "bad payload",
        with(&body, "payload", "e30+"),
        "malformed",
        400,
    ));
    cases.push((
        "bad signature b64",
        with(&body, "signature", "AAAA="),
        "malformed",
        400,
    ));
    let other = key.sign(&key.header(&url, Some(&app.nonce().await)), "{}");
    let other_sig = serde_json::from_str::<Value>(&other).unwrap()["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    cases.push((
        "wrong signature",
        with(&good(&app.nonce().await), "signature", &other_sig),
        "malformed",
        400,
    ));
    cases.push((
        "missing nonce",
        key.sign(&key.header(&url, None), payload),
        "badNonce",
        400,
    ));
    cases.push((
        "unknown nonce",
        good("AAAAAAAAAAAAAAAAAAAAAA"),
        "badNonce",
        400,
    ));
    cases.push((
        "wrong url",
        key.sign(
            &key.header(&format!("{BASE}/acme/new-order"), Some(&app.nonce().await)),
            payload,
        ),
        "unauthorized",
        403,
    ));
    for alg in ["none", "HS256", "RS512"] {
        let mut header = key.header(&url, Some(&app.nonce().await));
        header["alg"] = alg.into();
        cases.push((
            "unsupported alg",
            signed_header(header),
            "badSignatureAlgorithm",
            400,
        ));
    }
    let mut header = key.header(&url, Some(&app.nonce().await));
    header["alg"] = "ES384".into();
    cases.push((
        "alg does not fit key",
        signed_header(header),
        "badSignatureAlgorithm",
        400,
    ));
    let mut header = key.header(&url, Some(&app.nonce().await));
    header["kid"] = account_key.kid.clone().unwrap().into();
    cases.push(("jwk and kid", signed_header(header), "malformed", 400));
    let mut header = key.header(&url, Some(&app.nonce().await));
    header.as_object_mut().unwrap().remove("jwk");
    cases.push((
        "neither jwk nor kid",
        signed_header(header),
        "malformed",
        400,
    ));
    let mut header = key.header(&url, Some(&app.nonce().await));
    header["jwk"]["d"] = "AAAA".into();
    cases.push(("private jwk", signed_header(header), "malformed", 400));
    let mut header = key.header(&url, Some(&app.nonce().await));
    header.as_object_mut().unwrap().remove("jwk");
    header["kid"] = format!("{BASE}/acme/acct/999").into();
    cases.push((
        "unknown kid",
        signed_header(header),
        "accountDoesNotExist",
        400,
    ));
    let mut header = key.header(&url, Some(&app.nonce().await));
    header.as_object_mut().unwrap().remove("jwk");
    header["kid"] = "https://elsewhere.example/acct/1".into();
    cases.push((
        "foreign kid",
        signed_header(header),
        "accountDoesNotExist",
        400,
    ));
    cases.push((
        "not json",
        "protected.payload.signature".to_owned(),
        "malformed",
        400,
    ));
    let mut general: Value = serde_json::from_str(&good(&app.nonce().await)).unwrap();
    general["header"] = json!({"kid": "x"});
    cases.push(("unprotected header", general.to_string(), "malformed", 400));

    for (name, body, kind, status) in cases {
        let reply = app.post_raw(path, body).await;
        let problem = reply.assert_problem(kind, status);
        assert_common_headers(&reply);
        eprintln!("{name}: {problem}");
    }

    // Wrong content type: 415 with a malformed problem.
    let reply = app
        .send(
            Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(good(&app.nonce().await)))
                .unwrap(),
        )
        .await;
    reply.assert_problem("malformed", 415);

    // Replay: the first use succeeds, the second is refused.
    let nonce = app.nonce().await;
    let first = app.post_raw(path, good(&nonce)).await;
    assert_eq!(first.status, StatusCode::CREATED);
    app.post_raw(path, good(&nonce))
        .await
        .assert_problem("badNonce", 400);

    // No failed request created anything.
    assert_eq!(app.fake.lock().accounts.len(), 2);
}

#[tokio::test]
async fn account_resource() {
    let app = TestApp::new();
    let mut key = TestKey::es256();
    app.register(&mut key).await;
    let kid = key.kid.clone().unwrap();
    let path = kid.strip_prefix(BASE).unwrap().to_owned();
    for payload in ["", "{}", r#"{"contact":["mailto:admin@example.com"]}"#] {
        let reply = app.post(&key, &path, payload).await;
        assert_eq!(reply.status, StatusCode::OK, "{payload}");
        assert_eq!(reply.json()["status"], "valid");
        assert_eq!(reply.header("location"), Some(kid.as_str()));
    }
    app.post(&key, &path, r#"{"contact":["mailto:new@example.com"]}"#)
        .await
        .assert_problem("malformed", 400);
    app.post(&key, &path, r#"{"status":"deactivated"}"#)
        .await
        .assert_problem("malformed", 400);
    let mut other = TestKey::es256();
    app.register(&mut other).await;
    app.post(&other, &path, "")
        .await
        .assert_problem("unauthorized", 403);
    app.get(&path).await.assert_problem("malformed", 405);

    // A deactivated account's key authorizes nothing.
    let id: AccountId = path.rsplit('/').next().unwrap().parse().unwrap();
    app.fake.lock().accounts.get_mut(&id).unwrap().status = basalt_core::AccountStatus::Deactivated;
    app.post(&key, &path, "")
        .await
        .assert_problem("unauthorized", 403);
}

#[tokio::test]
async fn order_lifecycle() {
    let app = TestApp::new();
    let mut key = TestKey::es256();
    app.register(&mut key).await;

    let payload = json!({"identifiers": [
        {"type": "dns", "value": "www.example.com"},
        {"type": "dns", "value": "*.example.com"},
    ]});
    let created = app
        .post(&key, "/acme/new-order", &payload.to_string())
        .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    assert_common_headers(&created);
    let order_url = created.header("location").unwrap().to_owned();
    let order_path = order_url.strip_prefix(BASE).unwrap().to_owned();
    assert!(order_path.starts_with("/acme/order/"), "{order_url}");
    let order = created.json();
    assert_eq!(order["status"], "pending");
    assert_eq!(order["expires"], "2025-06-22T15:06:40Z");
    assert_eq!(order["identifiers"], payload["identifiers"]);
    assert_eq!(order["finalize"], format!("{order_url}/finalize"));
    assert!(order.get("certificate").is_none());
    let authzs: Vec<String> = order["authorizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(authzs.len(), 2);

    // Read back with POST-as-GET; a plain GET and another account are refused.
    let read = app.post(&key, &order_path, "").await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json(), order);
    app.post(&key, &order_path, "{}")
        .await
        .assert_problem("malformed", 400);
    app.get(&order_path).await.assert_problem("malformed", 405);
    let mut other = TestKey::es256();
    app.register(&mut other).await;
    app.post(&other, &order_path, "")
        .await
        .assert_problem("malformed", 404);
    app.post(&key, "/acme/order/987654", "")
        .await
        .assert_problem("malformed", 404);
    app.post(&key, "/acme/order/nope", "")
        .await
        .assert_problem("malformed", 404);

    // Authorizations and challenges.
    for authz_url in &authzs {
        let authz_path = authz_url.strip_prefix(BASE).unwrap();
        let authz = app.post(&key, authz_path, "").await;
        assert_eq!(authz.status, StatusCode::OK);
        let authz = authz.json();
        assert_eq!(authz["status"], "pending");
        let wildcard = authz["identifier"]["value"] == "example.com";
        assert_eq!(authz.get("wildcard").is_some(), wildcard, "{authz}");
        let challenge = &authz["challenges"][0];
        assert_eq!(challenge["type"], "http-01");
        assert_eq!(challenge["status"], "pending");
        let chall_url = challenge["url"].as_str().unwrap();
        assert_eq!(
            chall_url,
            format!("{authz_url}/http-01").replace("/authz/", "/chall/")
        );
        let chall_path = chall_url.strip_prefix(BASE).unwrap();
        app.post(&other, chall_path, "{}")
            .await
            .assert_problem("malformed", 404);

        let looked = app.post(&key, chall_path, "").await;
        assert_eq!(looked.json()["status"], "pending");
        let answered = app.post(&key, chall_path, "{}").await;
        assert_eq!(answered.status, StatusCode::OK);
        let links: Vec<&str> = answered
            .headers
            .get_all("link")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert!(
            links.contains(&format!("<{authz_url}>;rel=\"up\"").as_str()),
            "{links:?}"
        );
        let answered = answered.json();
        assert_eq!(answered["status"], "valid");
        assert_eq!(answered["validated"], "2025-06-15T15:06:40Z");
        assert_eq!(answered["url"], chall_url);
        // Answering again does not start a second validation.
        app.post(&key, chall_path, "{}").await;
    }
    assert_eq!(app.fake.lock().validations.len(), 2);
    let bad_type = authzs[0].replace("/authz/", "/chall/") + "/http-02";
    app.post(&key, bad_type.strip_prefix(BASE).unwrap(), "{}")
        .await
        .assert_problem("malformed", 404);

    // Finalize: bad CSR encodings are refused before the RA sees them.
    let finalize_path = format!("{order_path}/finalize");
    for csr in ["not base64!", "MIIB==", ""] {
        let payload = json!({"csr": csr}).to_string();
        app.post(&key, &finalize_path, &payload)
            .await
            .assert_problem("badCSR", 400);
    }
    app.post(&key, &finalize_path, "{}")
        .await
        .assert_problem("malformed", 400);
    app.post(&other, &finalize_path, r#"{"csr":"MIIB"}"#)
        .await
        .assert_problem("malformed", 404);
    assert!(app.fake.lock().finalized_csrs.is_empty());
    let finalized = app.post(&key, &finalize_path, r#"{"csr":"MIIBAQ"}"#).await;
    assert_eq!(
        finalized.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&finalized.body)
    );
    assert_eq!(finalized.header("location"), Some(order_url.as_str()));
    assert_eq!(
        app.fake.lock().finalized_csrs,
        vec![vec![0x30, 0x82, 0x01, 0x01]]
    );
    let finalized = finalized.json();
    assert_eq!(finalized["status"], "valid");
    let cert_url = finalized["certificate"].as_str().unwrap().to_owned();
    assert!(
        cert_url.starts_with(&format!("{BASE}/acme/cert/4a0000")),
        "{cert_url}"
    );
    // Finalizing twice: the RA's orderNotReady comes through.
    app.post(&key, &finalize_path, r#"{"csr":"MIIBAQ"}"#)
        .await
        .assert_problem("orderNotReady", 403);

    // Download.
    let cert_path = cert_url.strip_prefix(BASE).unwrap();
    let cert = app.post(&key, cert_path, "").await;
    assert_eq!(cert.status, StatusCode::OK);
    assert_eq!(
        cert.header("content-type"),
        Some("application/pem-certificate-chain")
    );
    assert_common_headers(&cert);
    let pem = String::from_utf8(cert.body.clone()).unwrap();
    assert_eq!(
        pem.matches("-----BEGIN CERTIFICATE-----").count(),
        2,
        "{pem}"
    );
    app.post(&other, cert_path, "")
        .await
        .assert_problem("malformed", 404);
    app.post(&key, "/acme/cert/zz", "")
        .await
        .assert_problem("malformed", 404);

    // Revocation by the account.
    let serial_hex = cert_path.rsplit('/').next().unwrap().to_owned();
    let der = app.fake.lock().certs.values().next().unwrap().der.clone();
    let revoke = json!({"certificate": URL_SAFE_NO_PAD.encode(&der), "reason": 4}).to_string();
    let mut bad_reason: Value = serde_json::from_str(&revoke).unwrap();
    bad_reason["reason"] = 2.into();
    app.post(&key, "/acme/revoke-cert", &bad_reason.to_string())
        .await
        .assert_problem("badRevocationReason", 400);
    bad_reason["reason"] = 300.into();
    app.post(&key, "/acme/revoke-cert", &bad_reason.to_string())
        .await
        .assert_problem("badRevocationReason", 400);
    app.post(&other, "/acme/revoke-cert", &revoke)
        .await
        .assert_problem("unauthorized", 403);
    let forged =
        json!({"certificate": URL_SAFE_NO_PAD.encode(support::fake_cert_der(&[0x4a, 0, 0, 99]))});
    app.post(&key, "/acme/revoke-cert", &forged.to_string())
        .await
        .assert_problem("malformed", 404);
    app.post(&key, "/acme/revoke-cert", r#"{"certificate":"AAAA"}"#)
        .await
        .assert_problem("malformed", 400);
    let revoked = app.post(&key, "/acme/revoke-cert", &revoke).await;
    assert_eq!(
        revoked.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&revoked.body)
    );
    assert_common_headers(&revoked);
    {
        let state = app.fake.lock();
        assert_eq!(state.revocations.len(), 1);
        assert_eq!(state.revocations[0].serial.to_string(), serial_hex);
        assert_eq!(state.revocations[0].reason, RevocationReason::Superseded);
    }
    app.post(&key, "/acme/revoke-cert", &revoke)
        .await
        .assert_problem("alreadyRevoked", 400);

    // Revocation signed by a certificate key is refused clearly for now.
    let mut cert_key = TestKey::es256();
    cert_key.kid = None;
    app.post(&cert_key, "/acme/revoke-cert", &revoke)
        .await
        .assert_problem("malformed", 400);
}

#[tokio::test]
async fn new_order_refusals() {
    let app = TestApp::new();
    let mut key = TestKey::es256();
    app.register(&mut key).await;
    let refused = [
        (json!({"identifiers": []}), "malformed", 400),
        (json!({}), "malformed", 400),
        (
            json!({"identifiers": [{"type": "dns", "value": "a.example"}], "notBefore": "2030-01-01T00:00:00Z"}),
            "malformed",
            400,
        ),
        (
            json!({"identifiers": [{"type": "dns", "value": "a.example"}], "notAfter": "2030-01-01T00:00:00Z"}),
            "malformed",
            400,
        ),
        (
            json!({"identifiers": [{"type": "email", "value": "a@example.com"}]}),
            "unsupportedIdentifier",
            400,
        ),
        (
            json!({"identifiers": [{"type": "dns", "value": "limited.example"}]}),
            "rateLimited",
            429,
        ),
        (
            json!({"identifiers": [{"type": "dns", "value": "broken.example"}]}),
            "serverInternal",
            500,
        ),
    ];
    for (payload, kind, status) in refused {
        let reply = app
            .post(&key, "/acme/new-order", &payload.to_string())
            .await;
        let problem = reply.assert_problem(kind, status);
        if kind == "rateLimited" {
            assert_eq!(reply.header("retry-after"), Some("60"));
        }
        assert!(
            !problem["detail"].as_str().unwrap().contains("hunter2"),
            "{problem}"
        );
    }
    let ip = json!({"identifiers": [{"type": "ip", "value": "192.0.2.1"}]});
    let reply = app.post(&key, "/acme/new-order", &ip.to_string()).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json()["identifiers"], ip["identifiers"]);
    assert!(app.fake.lock().orders.len() == 1);
}

#[tokio::test]
async fn unknown_paths_are_problems() {
    let app = TestApp::new();
    app.get("/nowhere").await.assert_problem("malformed", 404);
    app.post_raw("/acme/key-change", "{}".to_owned())
        .await
        .assert_problem("malformed", 404);
}
