//! The WFE router driven in-process with `tower::ServiceExt::oneshot`.

// Test helpers outside #[test] functions may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use axum::http::StatusCode;
use basalt_core::AccountId;
use basalt_core::AccountStatus;
use basalt_core::AuthzStatus;
use basalt_core::CertStatus;
use basalt_core::CertificateRecord;
use basalt_core::EabKey;
use basalt_core::FixedClock;
use basalt_core::Nonces;
use basalt_core::OrderStatus;
use basalt_core::Requester;
use basalt_core::RevocationReason;
use basalt_core::Serial;
use basalt_nonce::NonceService;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::PublicKeyData;
use serde_json::Value;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::BASE;
use crate::support::TOS;
use crate::support::TestApp;
use crate::support::TestKey;

fn assert_common_headers(reply: &support::Reply) {
    assert!(
        reply.header("replay-nonce").is_some_and(|n| n.len() == 22),
        "no nonce"
    );
    assert_index_link(reply);
}

/// The `Link: rel="index"` every answer carries (RFC 8555 §7.1).
fn assert_index_link(reply: &support::Reply) {
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
    // A plain GET of the directory costs no nonce; an error answer to a GET, and
    // every POST answer, carry one.
    assert_index_link(&reply);
    assert_eq!(reply.header("replay-nonce"), None);
    let refused = app.get("/acme/new-order").await;
    assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_common_headers(&refused);
    assert_eq!(
        reply.json(),
        json!({
            "newNonce": format!("{BASE}/acme/new-nonce"),
            "newAccount": format!("{BASE}/acme/new-account"),
            "newOrder": format!("{BASE}/acme/new-order"),
            "revokeCert": format!("{BASE}/acme/revoke-cert"),
            "keyChange": format!("{BASE}/acme/key-change"),
            "renewalInfo": format!("{BASE}/acme/renewal-info"),
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
    // A POST is a POST-as-GET (RFC 8555 §6.3), so an empty body is no JWS.
    let post = app.post_raw("/acme/new-nonce", String::new()).await;
    post.assert_problem("malformed", 400);
    let put = app
        .send(Request::put("/acme/new-nonce").body(Body::empty()).unwrap())
        .await;
    put.assert_problem("malformed", 405);
}

/// RFC 8555 §6.3: the directory and newNonce allow POST-as-GET as well as GET.
#[tokio::test]
async fn post_as_get_directory_and_new_nonce() {
    let app = TestApp::new();
    let mut key = TestKey::es256();
    app.register(&mut key).await;

    let directory = app.post(&key, "/directory", "").await;
    assert_eq!(directory.status, StatusCode::OK);
    assert_common_headers(&directory);
    assert_eq!(directory.json(), app.get("/directory").await.json());

    let nonce = app.post(&key, "/acme/new-nonce", "").await;
    assert_eq!(nonce.status, StatusCode::OK);
    assert!(nonce.body.is_empty(), "{:?}", nonce.body);
    assert_eq!(nonce.header("cache-control"), Some("no-store"));
    assert_common_headers(&nonce);

    // The JWS is checked as on any other resource.
    for path in ["/directory", "/acme/new-nonce"] {
        app.post(&key, path, "{}")
            .await
            .assert_problem("malformed", 400);
        let stranger = TestKey::es256();
        app.post(&stranger, path, "")
            .await
            .assert_problem("malformed", 400);
        let wrong_url = key.sign(
            &key.header(&format!("{BASE}/acme/new-order"), Some(&app.nonce().await)),
            "",
        );
        app.post_raw(path, wrong_url)
            .await
            .assert_problem("unauthorized", 403);
        let replayed_nonce = app.nonce().await;
        let body = key.sign(
            &key.header(&format!("{BASE}{path}"), Some(&replayed_nonce)),
            "",
        );
        assert_eq!(
            app.post_raw(path, body.clone()).await.status,
            StatusCode::OK
        );
        app.post_raw(path, body)
            .await
            .assert_problem("badNonce", 400);
    }
}

/// RFC 7515 §7.2.1: members a JWS does not define are ignored; the general
/// serialization and unprotected headers are still refused (RFC 8555 §6.2).
#[tokio::test]
async fn unknown_jws_members_are_ignored() {
    let app = TestApp::new();
    let key = TestKey::es256();
    let url = format!("{BASE}/acme/new-account");
    let signed = |nonce: &str| -> Value {
        serde_json::from_str(&key.sign(
            &key.header(&url, Some(nonce)),
            r#"{"termsOfServiceAgreed":true}"#,
        ))
        .unwrap()
    };

    let mut general = signed(&app.nonce().await);
    general["signatures"] =
        json!([{"protected": general["protected"], "signature": general["signature"]}]);
    let problem = app
        .post_raw("/acme/new-account", general.to_string())
        .await
        .assert_problem("malformed", 400);
    assert!(
        problem["detail"].as_str().unwrap().contains("signatures"),
        "{problem}"
    );
    let mut unprotected = signed(&app.nonce().await);
    unprotected["header"] = json!({"alg": "ES256"});
    let problem = app
        .post_raw("/acme/new-account", unprotected.to_string())
        .await
        .assert_problem("malformed", 400);
    assert!(
        problem["detail"].as_str().unwrap().contains("unprotected"),
        "{problem}"
    );
    assert!(app.fake.lock().accounts.is_empty());

    let mut extra = signed(&app.nonce().await);
    extra["x-extra"] = "ignore me".into();
    extra["unprotected"] = json!({"kid": "also ignored"});
    let reply = app.post_raw("/acme/new-account", extra.to_string()).await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
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

/// A newAccount for `key` carrying headers that claim another client address.
async fn new_account_claiming_a_forwarded_address(app: &TestApp, key: &TestKey) -> support::Reply {
    let nonce = app.nonce().await;
    let header = key.header(&format!("{BASE}/acme/new-account"), Some(&nonce));
    let body = key.sign(&header, r#"{"termsOfServiceAgreed":true}"#);
    app.send(
        Request::post("/acme/new-account")
            .header("content-type", "application/jose+json")
            .header("x-forwarded-for", "192.0.2.66")
            .header("x-real-ip", "192.0.2.66")
            .header("forwarded", "for=192.0.2.66")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn new_account_passes_the_client_address_to_the_ra() {
    // The TCP peer's address, an IPv4 client of a dual-stack listener as IPv4,
    // and never what the request's headers claim.
    for (peer, expected) in [
        ("203.0.113.7:50000", "203.0.113.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[::ffff:198.51.100.9]:50000", "198.51.100.9"),
    ] {
        let app = TestApp::new().with_client_address(peer.parse().unwrap());
        let reply = new_account_claiming_a_forwarded_address(&app, &TestKey::es256()).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let seen = app.fake.lock().new_accounts[0].remote_ip;
        assert_eq!(seen, Some(expected.parse().unwrap()), "{peer}");
    }
    // A router driven without a connection knows no address.
    let app = TestApp::new();
    let reply = new_account_claiming_a_forwarded_address(&app, &TestKey::es256()).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(app.fake.lock().new_accounts[0].remote_ip, None);
}

#[tokio::test]
async fn rate_limited_new_accounts_get_429_with_retry_after() {
    let app = TestApp::new().with_client_address("203.0.113.7:50000".parse().unwrap());
    // Retry-After is in whole seconds, rounded up so a client never retries early.
    for (wait_ms, retry_after) in [(1_200, "2"), (3_000, "3"), (1, "1")] {
        app.fake.lock().new_accounts_limited = Some(std::time::Duration::from_millis(wait_ms));
        let reply = app
            .post(
                &TestKey::es256(),
                "/acme/new-account",
                r#"{"termsOfServiceAgreed":true}"#,
            )
            .await;
        let problem = reply.assert_problem("rateLimited", 429);
        assert_eq!(problem["detail"], "too many new accounts from 203.0.113.7");
        assert_eq!(
            reply.header("retry-after"),
            Some(retry_after),
            "{wait_ms} ms"
        );
    }
    assert!(app.fake.lock().accounts.is_empty());
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
    cases.push(("empty nonce", good(""), "badNonce", 400));
    // RFC 8555 §6.5.2: a nonce that is not base64url is malformed.
    for nonce in ["!!not+base64/url==", "AAAAAAAAAAAAAAAAAAAAAA==", "A"] {
        cases.push(("nonce not base64url", good(nonce), "malformed", 400));
    }
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
    // A kid that is not one of this server's account URLs with a positive integer
    // ID is malformed (as in Boulder); only a well-formed one names no account.
    for kid in [
        "https://elsewhere.example/acct/1".to_owned(),
        "not a url".to_owned(),
        "1".to_owned(),
        String::new(),
        format!("{BASE}/acme/acct/abc"),
        format!("{BASE}/acme/acct/"),
        format!("{BASE}/acme/acct/0"),
        format!("{BASE}/acme/acct/-1"),
        format!("{BASE}/acme/acct/+1"),
        format!("{BASE}/acme/acct/1/orders"),
        format!("{BASE}/acme/acct/99999999999999999999"),
    ] {
        let mut header = key.header(&url, Some(&app.nonce().await));
        header.as_object_mut().unwrap().remove("jwk");
        header["kid"] = kid.into();
        cases.push(("malformed kid", signed_header(header), "malformed", 400));
    }
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
    for payload in [
        "",
        "{}",
        r#"{"contact":["mailto:admin@example.com"]}"#,
        r#"{"status":"valid","orders":"x","termsOfServiceAgreed":false}"#,
    ] {
        let reply = app.post(&key, &path, payload).await;
        assert_eq!(reply.status, StatusCode::OK, "{payload}");
        let body = reply.json();
        assert_eq!(body["status"], "valid");
        assert_eq!(body["contact"], json!(["mailto:admin@example.com"]));
        assert_eq!(body["orders"], format!("{kid}/orders"));
        assert_eq!(reply.header("location"), Some(kid.as_str()));
    }
    let mut other = TestKey::es256();
    app.register(&mut other).await;
    app.post(&other, &path, "")
        .await
        .assert_problem("unauthorized", 403);
    app.get(&path).await.assert_problem("malformed", 405);

    // A deactivated account's key authorizes nothing: 401 (RFC 8555 §7.3.6).
    let id: AccountId = path.rsplit('/').next().unwrap().parse().unwrap();
    app.fake.lock().accounts.get_mut(&id).unwrap().status = AccountStatus::Deactivated;
    app.post(&key, &path, "")
        .await
        .assert_problem("unauthorized", 401);
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

    // Finalize: bad CSR encodings are refused before the RA sees them; a csr that
    // is not base64url is malformed (RFC 8555 §6.1), an empty one is no CSR.
    let finalize_path = format!("{order_path}/finalize");
    for csr in ["not base64!", "MIIB==", "MII+"] {
        let payload = json!({"csr": csr}).to_string();
        let problem = app
            .post(&key, &finalize_path, &payload)
            .await
            .assert_problem("malformed", 400);
        assert!(
            problem["detail"].as_str().unwrap().contains("csr"),
            "{problem}"
        );
    }
    app.post(&key, &finalize_path, r#"{"csr":""}"#)
        .await
        .assert_problem("badCSR", 400);
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
    assert_eq!(
        app.fake.lock().revocations[0].requester,
        Requester::Account(
            key.kid
                .as_deref()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        )
    );

    // Another key than the certificate's: the RA refuses it.
    let cert_key = TestKey::es256();
    app.post(&cert_key, "/acme/revoke-cert", &revoke)
        .await
        .assert_problem("unauthorized", 403);
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
            json!({"identifiers": [{"type": "dns", "value": "a.example"}], "notBefore": "2030-01-01"}),
            "malformed",
            400,
        ),
        (
            json!({"identifiers": [{"type": "dns", "value": "a.example"}], "notAfter": 1_900_000_000}),
            "malformed",
            400,
        ),
        (
            json!({"identifiers": [{"type": "dns", "value": "a.example"}],
                "notBefore": "2030-01-02T00:00:00Z", "notAfter": "2030-01-01T00:00:00Z"}),
            "malformed",
            400,
        ),
        (
            json!({"identifiers": [{"type": "dns", "value": "a.example"}], "profile": 7}),
            "malformed",
            400,
        ),
        (
            json!({"identifiers": [{"type": "dns", "value": "a.example"}], "profile": "bogus"}),
            "invalidProfile",
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
            // The RA's detail reaches the client, and its 59.25 s wait is rounded
            // up to whole seconds.
            assert_eq!(problem["detail"], "too many orders for limited.example");
            assert_eq!(reply.header("retry-after"), Some("60"));
        } else {
            assert_eq!(reply.header("retry-after"), None, "{kind}");
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
    // Bad timestamps never reach the RA: only bogus, limited, broken and the IP did.
    assert_eq!(app.fake.lock().order_requests.len(), 4);
}

#[tokio::test]
async fn unknown_paths_are_problems() {
    let app = TestApp::new();
    app.get("/nowhere").await.assert_problem("malformed", 404);
    app.post_raw("/acme/renewal-info", "{}".to_owned())
        .await
        .assert_problem("malformed", 404);
}

/// The id at the end of an account or order URL.
fn id_of(url: &str) -> i64 {
    url.rsplit('/').next().unwrap().parse().unwrap()
}

fn path_of(url: &str) -> &str {
    url.strip_prefix(BASE).unwrap()
}

/// Registers an account and creates one order for `name`; returns the order URL.
async fn order_for(app: &TestApp, key: &TestKey, name: &str) -> String {
    let payload = json!({"identifiers": [{"type": "dns", "value": name}]});
    let reply = app.post(key, "/acme/new-order", &payload.to_string()).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    reply.header("location").unwrap().to_owned()
}

#[tokio::test]
async fn account_update_and_deactivation() {
    let app = TestApp::new();
    let mut key = TestKey::es256();
    app.register(&mut key).await;
    let kid = key.kid.clone().unwrap();
    let path = path_of(&kid).to_owned();
    let id = AccountId(id_of(&kid));

    let reply = app
        .post(
            &key,
            &path,
            r#"{"contact":["mailto:new@example.com","mailto:ops@example.org"]}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json()["contact"],
        json!(["mailto:new@example.com", "mailto:ops@example.org"])
    );
    assert_eq!(
        app.fake.lock().accounts[&id].contacts,
        vec!["mailto:new@example.com", "mailto:ops@example.org"]
    );
    // The same checks as new-account.
    app.post(&key, &path, r#"{"contact":["tel:+15551234"]}"#)
        .await
        .assert_problem("unsupportedContact", 400);
    app.post(&key, &path, r#"{"contact":["mailto:a@b@example.com"]}"#)
        .await
        .assert_problem("invalidContact", 400);
    app.post(&key, &path, r#"{"contact":"mailto:a@example.com"}"#)
        .await
        .assert_problem("malformed", 400);
    // Removing every contact is allowed.
    let reply = app.post(&key, &path, r#"{"contact":[]}"#).await;
    assert_eq!(reply.json()["contact"], json!([]));
    // Only deactivation may be asked for.
    for status in ["revoked", "pending", ""] {
        let payload = json!({ "status": status }).to_string();
        app.post(&key, &path, &payload)
            .await
            .assert_problem("malformed", 400);
    }
    assert_eq!(app.fake.lock().accounts[&id].status, AccountStatus::Valid);

    let reply = app.post(&key, &path, r#"{"status":"deactivated"}"#).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "deactivated");
    assert_eq!(
        app.fake.lock().accounts[&id].status,
        AccountStatus::Deactivated
    );
    // The key authorizes nothing any more (401, RFC 8555 §7.3.6).
    app.post(&key, &path, "")
        .await
        .assert_problem("unauthorized", 401);
}

#[tokio::test]
async fn cached_accounts_follow_changes_made_through_the_wfe() {
    let app = TestApp::with_settings(|settings| {
        settings.account_cache_ttl = std::time::Duration::from_secs(60);
    });
    let mut key = TestKey::es256();
    app.register(&mut key).await;
    let kid = key.kid.clone().unwrap();
    let path = path_of(&kid).to_owned();
    let id = AccountId(id_of(&kid));
    let first = app.post(&key, &path, "").await;
    assert_eq!(first.status, StatusCode::OK);
    let registered = first.json()["contact"].clone();

    // A change behind the WFE's back is not seen while the entry lives...
    app.fake.lock().accounts.get_mut(&id).unwrap().contacts = vec!["mailto:x@example.com".into()];
    assert_eq!(
        app.post(&key, &path, "").await.json()["contact"],
        registered
    );
    // ...one made through it is, at once.
    let reply = app
        .post(&key, &path, r#"{"contact":["mailto:new@example.com"]}"#)
        .await;
    assert_eq!(reply.json()["contact"], json!(["mailto:new@example.com"]));
    assert_eq!(
        app.post(&key, &path, "").await.json()["contact"],
        json!(["mailto:new@example.com"])
    );
    let reply = app.post(&key, &path, r#"{"status":"deactivated"}"#).await;
    assert_eq!(reply.status, StatusCode::OK);
    app.post(&key, &path, "")
        .await
        .assert_problem("unauthorized", 401);
}

#[tokio::test]
async fn orders_list_pages_with_next_links() {
    let app = TestApp::new();
    let mut key = TestKey::es256();
    app.register(&mut key).await;
    let mut other = TestKey::es256();
    app.register(&mut other).await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(order_for(&app, &key, &format!("n{i}.example")).await);
    }
    order_for(&app, &other, "other.example").await;
    app.fake.lock().orders_page_size = Some(2);

    let kid = key.kid.clone().unwrap();
    let orders_url = format!("{kid}/orders");
    let mut url = orders_url.clone();
    let mut pages: Vec<Vec<String>> = Vec::new();
    loop {
        let reply = app.post(&key, path_of(&url), "").await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_common_headers(&reply);
        let page: Vec<String> = reply.json()["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap().to_owned())
            .collect();
        pages.push(page);
        let next: Vec<&str> = reply
            .headers
            .get_all("link")
            .iter()
            .map(|v| v.to_str().unwrap())
            .filter(|l| l.ends_with(";rel=\"next\""))
            .collect();
        match next.as_slice() {
            [] => break,
            [link] => {
                url = link
                    .strip_prefix('<')
                    .and_then(|l| l.strip_suffix(">;rel=\"next\""))
                    .unwrap()
                    .to_owned();
                // The fake's cursor holds '&', '/', '?' and a space: all escaped.
                assert!(
                    url.starts_with(&format!("{orders_url}?cursor=before%20")),
                    "{url}"
                );
                assert!(url.ends_with("%26%2F%3F"), "{url}");
            }
            more => panic!("several next links: {more:?}"),
        }
        assert!(pages.len() < 5, "pagination does not end");
    }
    assert_eq!(pages.len(), 3);
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    let mut newest_first = created.clone();
    newest_first.reverse();
    assert_eq!(pages.concat(), newest_first);
    {
        let state = app.fake.lock();
        let cursors: Vec<Option<&str>> = state
            .page_requests
            .iter()
            .map(|(_, page)| page.cursor.as_deref())
            .collect();
        assert_eq!(cursors[0], None);
        assert!(
            cursors[1].is_some_and(|c| c.starts_with("before ") && c.ends_with("&/?")),
            "{cursors:?}"
        );
        assert!(state.page_requests.iter().all(|(_, p)| p.size > 0));
    }

    // The signed url must include the query.
    let nonce = app.nonce().await;
    let header = key.header(&orders_url, Some(&nonce));
    let with_query = format!("{}?cursor=x", path_of(&orders_url));
    app.post_raw(&with_query, key.sign(&header, ""))
        .await
        .assert_problem("unauthorized", 403);
    // POST-as-GET only, owner only.
    app.post(&key, path_of(&orders_url), "{}")
        .await
        .assert_problem("malformed", 400);
    app.post(&other, path_of(&orders_url), "")
        .await
        .assert_problem("unauthorized", 403);
    app.post(&key, &format!("{}?cursor=%zz", path_of(&orders_url)), "")
        .await
        .assert_problem("malformed", 400);
}

/// An account key and the keyChange request that rolls it over to `new`.
fn key_change_payload(app_kid: &str, old: &TestKey, new: &TestKey) -> String {
    new.sign_inner(
        &format!("{BASE}/acme/key-change"),
        &json!({"account": app_kid, "oldKey": old.jwk}),
    )
}

#[tokio::test]
async fn key_rollover() {
    let app = TestApp::new();
    let mut old = TestKey::es256();
    app.register(&mut old).await;
    let kid = old.kid.clone().unwrap();
    let id = AccountId(id_of(&kid));
    let mut new = TestKey::ed25519();
    let url = format!("{BASE}/acme/key-change");

    // Inner JWS signed with a kid instead of the new key's jwk.
    new.kid = Some(kid.clone());
    let inner = new.sign(
        &new.header(&url, None),
        &json!({"account": kid, "oldKey": old.jwk}).to_string(),
    );
    new.kid = None;
    let problem = app
        .post(&old, "/acme/key-change", &inner)
        .await
        .assert_problem("malformed", 400);
    assert!(
        problem["detail"].as_str().unwrap().contains("jwk"),
        "{problem}"
    );
    // Inner url differs.
    let inner = new.sign_inner(
        &format!("{BASE}/acme/new-account"),
        &json!({"account": kid, "oldKey": old.jwk}),
    );
    let problem = app
        .post(&old, "/acme/key-change", &inner)
        .await
        .assert_problem("malformed", 400);
    assert!(
        problem["detail"].as_str().unwrap().contains("url"),
        "{problem}"
    );
    // The keyChange names another account.
    let inner = new.sign_inner(
        &url,
        &json!({"account": format!("{BASE}/acme/acct/999"), "oldKey": old.jwk}),
    );
    let problem = app
        .post(&old, "/acme/key-change", &inner)
        .await
        .assert_problem("malformed", 400);
    assert!(
        problem["detail"].as_str().unwrap().contains("account"),
        "{problem}"
    );
    // oldKey is not the account's key.
    let stranger = TestKey::es256();
    let inner = key_change_payload(&kid, &stranger, &new);
    let problem = app
        .post(&old, "/acme/key-change", &inner)
        .await
        .assert_problem("malformed", 400);
    assert!(
        problem["detail"].as_str().unwrap().contains("oldKey"),
        "{problem}"
    );
    // The new key is the old key (sign_inner always uses the jwk).
    let inner = key_change_payload(&kid, &old, &old);
    let problem = app
        .post(&old, "/acme/key-change", &inner)
        .await
        .assert_problem("malformed", 400);
    assert!(
        problem["detail"].as_str().unwrap().contains("same"),
        "{problem}"
    );
    // Not a JWS, not a keyChange, a tampered inner signature.
    app.post(&old, "/acme/key-change", r#"{"account":"x"}"#)
        .await
        .assert_problem("malformed", 400);
    let inner = new.sign_inner(&url, &json!({"account": kid}));
    app.post(&old, "/acme/key-change", &inner)
        .await
        .assert_problem("malformed", 400);
    let mut tampered: Value = serde_json::from_str(&key_change_payload(&kid, &old, &new)).unwrap();
    tampered["payload"] = URL_SAFE_NO_PAD
        .encode(json!({"account": kid, "oldKey": stranger.jwk}).to_string())
        .into();
    app.post(&old, "/acme/key-change", &tampered.to_string())
        .await
        .assert_problem("malformed", 400);
    // The outer JWS must be signed by the account.
    let mut unregistered = TestKey::es256();
    unregistered.kid = None;
    app.post(
        &unregistered,
        "/acme/key-change",
        &key_change_payload(&kid, &old, &new),
    )
    .await
    .assert_problem("malformed", 400);

    // The new key belongs to another account: 409 with its Location.
    let mut taken = TestKey::es256();
    let holder = app.register(&mut taken).await;
    let holder_url = holder.header("location").unwrap().to_owned();
    let reply = app
        .post(
            &old,
            "/acme/key-change",
            &key_change_payload(&kid, &old, &taken),
        )
        .await;
    reply.assert_problem("malformed", 409);
    assert_eq!(reply.header("location"), Some(holder_url.as_str()));
    assert!(app.fake.lock().rollovers.is_empty());

    // Success: an inner nonce is ignored, not redeemed.
    let nonce = app.nonce().await;
    let mut header = json!({"alg": new.alg, "jwk": new.jwk, "url": url});
    header["nonce"] = nonce.clone().into();
    let inner = new.sign(
        &header,
        &json!({"account": kid, "oldKey": old.jwk}).to_string(),
    );
    let reply = app.post(&old, "/acme/key-change", &inner).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["key"], new.jwk);
    assert_eq!(reply.json()["status"], "valid");
    {
        let state = app.fake.lock();
        assert_eq!(state.rollovers.len(), 1);
        let (rolled, jwk, thumbprint) = &state.rollovers[0];
        assert_eq!(*rolled, id);
        let x = new.jwk["x"].as_str().unwrap();
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        assert_eq!(jwk, &canonical);
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
        assert_eq!(thumbprint, &URL_SAFE_NO_PAD.encode(digest.as_ref()));
    }
    // The nonce in the inner header was not redeemed: it still works.
    new.kid = Some(kid.clone());
    let body = new.sign(&new.header(&kid, Some(&nonce)), "");
    let fresh = app.post_raw(path_of(&kid), body).await;
    assert_eq!(fresh.status, StatusCode::OK);
    // The old key no longer works (an ES256 signature for an Ed25519 account key);
    // the new one does.
    app.post(&old, path_of(&kid), "")
        .await
        .assert_problem("badSignatureAlgorithm", 400);
    assert_eq!(
        app.post(&new, path_of(&kid), "").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn key_rollover_race_reports_the_winner() {
    let app = TestApp::new();
    let mut old = TestKey::es256();
    app.register(&mut old).await;
    let mut winner = TestKey::es256();
    let reply = app.register(&mut winner).await;
    let winner_url = reply.header("location").unwrap().to_owned();
    app.fake.lock().rollover_race = Some(AccountId(id_of(&winner_url)));
    let new = TestKey::es384();
    let kid = old.kid.clone().unwrap();
    let reply = app
        .post(
            &old,
            "/acme/key-change",
            &key_change_payload(&kid, &old, &new),
        )
        .await;
    reply.assert_problem("malformed", 409);
    assert_eq!(reply.header("location"), Some(winner_url.as_str()));
}

#[tokio::test]
async fn authorization_deactivation() {
    let app = TestApp::new();
    let mut key = TestKey::es256();
    app.register(&mut key).await;
    let order_url = order_for(&app, &key, "www.example.com").await;
    let order = app.post(&key, path_of(&order_url), "").await.json();
    let authz_url = order["authorizations"][0].as_str().unwrap().to_owned();
    let mut other = TestKey::es256();
    app.register(&mut other).await;
    app.post(&other, path_of(&authz_url), r#"{"status":"deactivated"}"#)
        .await
        .assert_problem("malformed", 404);
    for payload in ["{}", r#"{"status":"valid"}"#] {
        app.post(&key, path_of(&authz_url), payload)
            .await
            .assert_problem("malformed", 400);
    }
    let reply = app
        .post(&key, path_of(&authz_url), r#"{"status":"deactivated"}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "deactivated");
    assert_eq!(reply.json()["identifier"]["value"], "www.example.com");
    let id = basalt_core::AuthzId(id_of(&authz_url));
    assert_eq!(app.fake.lock().authzs[&id].status, AuthzStatus::Deactivated);
    // The RA's refusal comes through.
    app.post(&key, path_of(&authz_url), r#"{"status":"deactivated"}"#)
        .await
        .assert_problem("malformed", 400);
}

/// Drives an order to `ready` through its http-01 challenges.
async fn make_ready(app: &TestApp, key: &TestKey, order_url: &str) {
    let order = app.post(key, path_of(order_url), "").await.json();
    for authz in order["authorizations"].as_array().unwrap() {
        let chall = authz.as_str().unwrap().replace("/authz/", "/chall/") + "/http-01";
        assert_eq!(
            app.post(key, path_of(&chall), "{}").await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn processing_resources_ask_clients_to_wait() {
    let app = TestApp::new();
    let mut key = TestKey::es256();
    app.register(&mut key).await;
    let order_url = order_for(&app, &key, "www.example.com").await;

    // A challenge under validation.
    app.fake.lock().validation_processing = true;
    let order = app.post(&key, path_of(&order_url), "").await;
    assert_eq!(order.header("retry-after"), None);
    let authz_url = order.json()["authorizations"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let chall = authz_url.replace("/authz/", "/chall/") + "/http-01";
    let reply = app.post(&key, path_of(&chall), "{}").await;
    assert_eq!(reply.json()["status"], "processing");
    assert_eq!(reply.header("retry-after"), Some("1"));
    let reply = app.post(&key, path_of(&chall), "").await;
    assert_eq!(reply.header("retry-after"), Some("1"));
    let reply = app.post(&key, path_of(&authz_url), "").await;
    assert_eq!(reply.json()["challenges"][0]["status"], "processing");
    assert_eq!(reply.header("retry-after"), Some("1"));
    let dns = authz_url.replace("/authz/", "/chall/") + "/dns-01";
    assert_eq!(
        app.post(&key, path_of(&dns), "")
            .await
            .header("retry-after"),
        None
    );

    // Validation completes; finalize leaves the order processing.
    app.fake.lock().validation_processing = false;
    {
        let mut state = app.fake.lock();
        for authz in state.authzs.values_mut() {
            for challenge in &mut authz.challenges {
                challenge.status = basalt_core::ChallengeStatus::Pending;
            }
        }
    }
    make_ready(&app, &key, &order_url).await;
    let reply = app.post(&key, path_of(&authz_url), "").await;
    assert_eq!(reply.header("retry-after"), None);
    app.fake.lock().finalize_processing = true;
    let reply = app
        .post(
            &key,
            &format!("{}/finalize", path_of(&order_url)),
            r#"{"csr":"MIIBAQ"}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "processing");
    assert!(reply.json().get("certificate").is_none());
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(reply.header("location"), Some(order_url.as_str()));
    let reply = app.post(&key, path_of(&order_url), "").await;
    assert_eq!(reply.json()["status"], "processing");
    assert_eq!(reply.header("retry-after"), Some("1"));
    // Once issued, no more Retry-After.
    let id = basalt_core::OrderId(id_of(&order_url));
    app.fake.lock().orders.get_mut(&id).unwrap().status = OrderStatus::Valid;
    let reply = app.post(&key, path_of(&order_url), "").await;
    assert_eq!(reply.header("retry-after"), None);
}

#[tokio::test]
async fn eddsa_and_rsa_accounts() {
    let app = TestApp::new();
    let mut ed = TestKey::ed25519();
    let reply = app.register(&mut ed).await;
    assert_eq!(reply.json()["key"], ed.jwk);
    let x = ed.jwk["x"].as_str().unwrap();
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    {
        let state = app.fake.lock();
        let account = &state.accounts[&AccountId(id_of(ed.kid.as_deref().unwrap()))];
        assert_eq!(account.key_jwk, canonical);
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
        assert_eq!(
            account.key_thumbprint,
            URL_SAFE_NO_PAD.encode(digest.as_ref())
        );
    }
    // kid-signed EdDSA requests work.
    let order = order_for(&app, &ed, "ed.example").await;
    assert_eq!(
        app.post(&ed, path_of(&order), "").await.status,
        StatusCode::OK
    );

    let mut rsa = TestKey::rs256();
    app.register(&mut rsa).await;
    assert_eq!(
        app.post(&rsa, path_of(rsa.kid.as_deref().unwrap()), "")
            .await
            .status,
        StatusCode::OK
    );

    // Unsupported algorithms list EdDSA among the accepted ones.
    let key = TestKey::es256();
    let mut header = key.header(
        &format!("{BASE}/acme/new-account"),
        Some(&app.nonce().await),
    );
    header["alg"] = "Ed448".into();
    let problem = app
        .post_raw("/acme/new-account", key.sign(&header, "{}"))
        .await
        .assert_problem("badSignatureAlgorithm", 400);
    assert_eq!(
        problem["algorithms"],
        json!(["ES256", "ES384", "RS256", "EdDSA"])
    );

    // Key policy through HTTP: a point off the curve and a weak RSA exponent.
    let mut bad_point = TestKey::es256();
    let mut y = URL_SAFE_NO_PAD
        .decode(bad_point.jwk["y"].as_str().unwrap())
        .unwrap();
    y[31] ^= 1;
    bad_point.jwk["y"] = URL_SAFE_NO_PAD.encode(&y).into();
    app.post(
        &bad_point,
        "/acme/new-account",
        r#"{"termsOfServiceAgreed":true}"#,
    )
    .await
    .assert_problem("badPublicKey", 400);
    let mut weak = TestKey::rs256();
    weak.jwk["e"] = "Aw".into(); // 3 is allowed; the signature then fails
    app.post(
        &weak,
        "/acme/new-account",
        r#"{"termsOfServiceAgreed":true}"#,
    )
    .await
    .assert_problem("malformed", 400);
    weak.jwk["e"] = "AQAAAAE".into(); // 2^32 + 1
    app.post(
        &weak,
        "/acme/new-account",
        r#"{"termsOfServiceAgreed":true}"#,
    )
    .await
    .assert_problem("badPublicKey", 400);
    let mut short = TestKey::ed25519();
    short.jwk["x"] = "AQID".into();
    app.post(
        &short,
        "/acme/new-account",
        r#"{"termsOfServiceAgreed":true}"#,
    )
    .await
    .assert_problem("badPublicKey", 400);
}

/// Issues a (fake) certificate whose key is `spki`; returns the revoke payload.
async fn issue(app: &TestApp, key: &TestKey, spki: Vec<u8>) -> (Serial, String) {
    let order_url = order_for(app, key, "www.example.com").await;
    make_ready(app, key, &order_url).await;
    let finalized = app
        .post(
            key,
            &format!("{}/finalize", path_of(&order_url)),
            r#"{"csr":"MIIBAQ"}"#,
        )
        .await
        .json();
    let cert_url = finalized["certificate"].as_str().unwrap();
    let serial: Serial = cert_url.rsplit('/').next().unwrap().parse().unwrap();
    let mut state = app.fake.lock();
    state.cert_spkis.insert(serial.clone(), spki);
    let der = state.certs[&serial].der.clone();
    let payload = json!({"certificate": URL_SAFE_NO_PAD.encode(der), "reason": 1}).to_string();
    (serial, payload)
}

#[tokio::test]
async fn revocation_signed_by_the_certificate_key() {
    let app = TestApp::new();
    let mut account = TestKey::es256();
    app.register(&mut account).await;

    // P-256: the expected SPKI comes from rcgen, not from the WFE's encoder.
    let cert_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let spki = cert_pair.subject_public_key_info();
    let (serial, revoke) = issue(&app, &account, spki.clone()).await;
    let cert_key = TestKey::p256_from_pkcs8(&cert_pair.serialize_der());
    // Another key is refused by the RA, whose Requester names that other key.
    let wrong = TestKey::es256();
    app.post(&wrong, "/acme/revoke-cert", &revoke)
        .await
        .assert_problem("unauthorized", 403);
    let reply = app.post(&cert_key, "/acme/revoke-cert", &revoke).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_common_headers(&reply);
    {
        let state = app.fake.lock();
        assert_eq!(state.revocations.len(), 1);
        assert_eq!(state.revocations[0].serial, serial);
        assert_eq!(state.revocations[0].reason, RevocationReason::KeyCompromise);
        assert_eq!(
            state.revocations[0].requester,
            Requester::CertificateKey(spki)
        );
        assert_eq!(state.certs[&serial].status, CertStatus::Revoked);
    }

    // RSA: the SPKI from rcgen for the same PKCS#8 key.
    let rsa_pem = include_str!("data/rsa2048.pem");
    let spki = rcgen::KeyPair::from_pem(rsa_pem)
        .unwrap()
        .subject_public_key_info();
    let (_, revoke) = issue(&app, &account, spki.clone()).await;
    let reply = app
        .post(&TestKey::rs256(), "/acme/revoke-cert", &revoke)
        .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        app.fake.lock().revocations[1].requester,
        Requester::CertificateKey(spki)
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = TestApp::new();
    let mut key = TestKey::es256();
    app.register(&mut key).await;
    let nonce = app.nonce().await;
    let padding = "a".repeat(70 * 1024);
    let payload = json!({"identifiers": [{"type": "dns", "value": "a.example"}], "pad": padding});
    let body = key.sign(
        &key.header(&format!("{BASE}/acme/new-order"), Some(&nonce)),
        &payload.to_string(),
    );
    let reply = app.post_raw("/acme/new-order", body).await;
    reply.assert_problem("malformed", 413);
    assert_common_headers(&reply);
    assert!(app.fake.lock().orders.is_empty());
    // With a Content-Length announcing it, too.
    let reply = app
        .send(
            Request::post("/acme/new-order")
                .header("content-type", "application/jose+json")
                .header("content-length", 65 * 1024 + 1)
                .body(Body::from(vec![b' '; 65 * 1024 + 1]))
                .unwrap(),
        )
        .await;
    reply.assert_problem("malformed", 413);
    // A body just under the cap is read (and then judged on its merits).
    let reply = app.post_raw("/acme/new-order", " ".repeat(60 * 1024)).await;
    reply.assert_problem("malformed", 400);
}

// === Profiles, requested validity (draft-ietf-acme-profiles, RFC 8555 §7.4) ===

#[tokio::test]
async fn directory_meta_advertises_profiles_and_eab() {
    let app = TestApp::with_settings(|settings| {
        settings
            .profiles
            .insert("classic".into(), "90-day certificates".into());
        settings
            .profiles
            .insert("shortlived".into(), "6-day certificates".into());
        settings.eab_required = true;
        settings.website = None;
    });
    let directory = app.get("/directory").await.json();
    assert_eq!(
        directory["meta"],
        json!({
            "termsOfService": TOS,
            "profiles": {"classic": "90-day certificates", "shortlived": "6-day certificates"},
            "externalAccountRequired": true,
        })
    );
    assert_eq!(
        directory["renewalInfo"],
        format!("{BASE}/acme/renewal-info")
    );
    // Nothing configured, nothing advertised.
    let plain = TestApp::with_settings(|settings| {
        settings.terms_of_service = None;
        settings.website = None;
    });
    let directory = plain.get("/directory").await.json();
    assert!(directory.get("meta").is_none(), "{directory}");
    assert_eq!(
        directory["renewalInfo"],
        format!("{BASE}/acme/renewal-info")
    );
}

#[tokio::test]
async fn new_order_passes_profile_and_validity_to_the_ra() {
    let app = TestApp::new();
    let mut key = TestKey::es256();
    app.register(&mut key).await;
    let payload = json!({
        "identifiers": [{"type": "dns", "value": "a.example"}],
        "profile": "shortlived",
        "notBefore": "2025-06-16T02:00:00+02:00",
        "notAfter": "2025-06-22T00:00:00.5Z",
    });
    let reply = app
        .post(&key, "/acme/new-order", &payload.to_string())
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
    let order = reply.json();
    assert_eq!(order["profile"], "shortlived");
    assert_eq!(order["notBefore"], "2025-06-16T00:00:00Z");
    assert_eq!(order["notAfter"], "2025-06-22T00:00:00.5Z");
    let request = app.fake.lock().order_requests.pop().unwrap();
    assert_eq!(request.profile.as_deref(), Some("shortlived"));
    assert_eq!(
        request.not_before,
        Some(OffsetDateTime::from_unix_timestamp(1_750_032_000).unwrap())
    );
    assert_eq!(
        request.not_after,
        Some(
            OffsetDateTime::from_unix_timestamp(1_750_550_400).unwrap()
                + time::Duration::milliseconds(500)
        )
    );
    assert_eq!(request.replaces, None);
    // The order resource shows them too.
    let location = reply.header("location").unwrap().to_owned();
    let fetched = app.post(&key, path_of(&location), "").await.json();
    assert_eq!(fetched["profile"], "shortlived");
    assert_eq!(fetched["notBefore"], "2025-06-16T00:00:00Z");

    // Without them: the RA's default profile, and nothing shown.
    let plain = json!({"identifiers": [{"type": "dns", "value": "b.example"}]});
    let order = app
        .post(&key, "/acme/new-order", &plain.to_string())
        .await
        .json();
    for field in ["profile", "notBefore", "notAfter", "replaces"] {
        assert!(order.get(field).is_none(), "{field}: {order}");
    }
    let request = app.fake.lock().order_requests.pop().unwrap();
    assert_eq!(
        (request.profile, request.not_before, request.not_after),
        (None, None, None)
    );
}

// === Renewal information (RFC 9773) ===

/// The issuer key identifier of the test CA.
const AKI: [u8; 20] = [
    0x69, 0x88, 0x5b, 0x6b, 0x87, 0x46, 0x40, 0x41, 0xe1, 0xb3, 0x7b, 0x84, 0x7b, 0xa0, 0xae, 0x2c,
    0xde, 0x01, 0xc8, 0xd4,
];

/// A real certificate (rcgen) with this serial, signed by a CA whose key
/// identifier is `aki`, valid for `days` from `not_before`; stored in the fake SA
/// for `account`. Returns its certID.
fn store_cert(
    app: &TestApp,
    account: AccountId,
    serial: &[u8],
    aki: &[u8],
    not_before: OffsetDateTime,
    days: i64,
) -> String {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(aki.to_vec());
    let issuer = rcgen::Issuer::new(ca, rcgen::KeyPair::generate().unwrap());
    let mut params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
    params.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_before + time::Duration::days(days);
    let der = params
        .signed_by(&rcgen::KeyPair::generate().unwrap(), &issuer)
        .unwrap()
        .der()
        .to_vec();
    let record_serial = Serial::from_bytes(serial).unwrap();
    app.fake.lock().certs.insert(
        record_serial.clone(),
        CertificateRecord {
            serial: record_serial,
            account_id: account,
            der,
            chain: vec![],
            issued_at: not_before,
            expires_at: not_before + time::Duration::days(days),
            status: CertStatus::Good,
            revoked_at: None,
            revocation_reason: None,
        },
    );
    // The serial's DER content octets: a leading zero when the top bit is set.
    let mut content = Vec::new();
    if serial[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(serial);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(aki),
        URL_SAFE_NO_PAD.encode(content)
    )
}

#[tokio::test]
async fn renewal_info_suggests_a_window() {
    let app = TestApp::new();
    let issued = support::now() - time::Duration::days(10);
    let serial = [0x87, 0x65, 0x43, 0x21];
    let cert_id = store_cert(&app, AccountId(1), &serial, &AKI, issued, 90);
    // RFC 9773 §4.1's example certID: this AKI and serial 00:87:65:43:21.
    assert_eq!(cert_id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    let reply = app.get(&format!("/acme/renewal-info/{cert_id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    // A GET: no nonce, as for the directory.
    assert_index_link(&reply);
    assert_eq!(reply.header("replay-nonce"), None);
    assert_eq!(reply.header("retry-after"), Some("21600"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    // 90 days: from day 60 (2/3) to day 67.5 (3/4) after notBefore.
    let fmt = |at: OffsetDateTime| at.format(&Rfc3339).unwrap();
    assert_eq!(
        reply.json(),
        json!({"suggestedWindow": {
            "start": fmt(issued + time::Duration::days(60)),
            "end": fmt(issued + time::Duration::hours(67 * 24 + 12)),
        }})
    );
    assert_eq!(
        reply.json()["suggestedWindow"]["start"],
        "2025-08-04T15:06:40Z"
    );

    // POST-as-GET of the same resource works too, with any valid JWS.
    let mut key = TestKey::es256();
    app.register(&mut key).await;
    let posted = app
        .post(&key, &format!("/acme/renewal-info/{cert_id}"), "")
        .await;
    assert_eq!(posted.status, StatusCode::OK);
    assert_eq!(posted.json(), reply.json());
    app.post(&key, &format!("/acme/renewal-info/{cert_id}"), "{}")
        .await
        .assert_problem("malformed", 400);
}

#[tokio::test]
async fn renewal_info_refusals() {
    let app = TestApp::new();
    let issued = support::now() - time::Duration::days(10);
    let cert_id = store_cert(&app, AccountId(1), &[0x12, 0x34], &AKI, issued, 90);
    let (aki, serial) = cert_id.split_once('.').unwrap();
    // Unknown serial, and a known serial under another issuer's key identifier.
    let unknown = format!("{aki}.{}", URL_SAFE_NO_PAD.encode([0x12, 0x35]));
    let other_aki = format!("{}.{serial}", URL_SAFE_NO_PAD.encode([0x42; 20]));
    for cert_id in [unknown, other_aki] {
        app.get(&format!("/acme/renewal-info/{cert_id}"))
            .await
            .assert_problem("malformed", 404);
    }
    // Garbage, padding, a negative or non-minimal serial.
    for garbage in [
        "nodot".to_owned(),
        format!("{aki}.{serial}="),
        format!("{aki}.gA"),
        format!("{aki}.AAE"),
        format!("{aki}.{serial}.{serial}"),
        format!(".{serial}"),
        "%%.AQ".to_owned(),
    ] {
        app.get(&format!("/acme/renewal-info/{garbage}"))
            .await
            .assert_problem("malformed", 400);
    }
    // A certificate without the AKI extension matches no certID.
    let mut plain = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
    plain.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x55]));
    let der = plain
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap()
        .der()
        .to_vec();
    let mut record = app.fake.lock().certs.values().next().unwrap().clone();
    record.serial = Serial::from_bytes(&[0x55]).unwrap();
    record.der = der;
    app.fake.lock().certs.insert(record.serial.clone(), record);
    app.get(&format!("/acme/renewal-info/{aki}.VQ"))
        .await
        .assert_problem("malformed", 404);
}

#[tokio::test]
async fn revoked_certificates_should_renew_now() {
    let app = TestApp::new();
    let issued = support::now() - time::Duration::days(3);
    let cert_id = store_cert(&app, AccountId(1), &[0x01, 0x02], &AKI, issued, 90);
    let serial = Serial::from_bytes(&[0x01, 0x02]).unwrap();
    app.fake.lock().certs.get_mut(&serial).unwrap().status = CertStatus::Revoked;
    let reply = app.get(&format!("/acme/renewal-info/{cert_id}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let fmt = |at: OffsetDateTime| at.format(&Rfc3339).unwrap();
    assert_eq!(
        reply.json()["suggestedWindow"],
        json!({
            "start": fmt(support::now() - time::Duration::hours(2)),
            "end": fmt(support::now() - time::Duration::hours(1)),
        })
    );
}

#[tokio::test]
async fn certificates_in_an_incident_should_renew_now_and_say_why() {
    let app = TestApp::new();
    let issued = support::now() - time::Duration::days(3);
    let affected = store_cert(&app, AccountId(1), &[0x0a, 0x01], &AKI, issued, 90);
    let unaffected = store_cert(&app, AccountId(1), &[0x0a, 0x02], &AKI, issued, 90);
    let unexplained = store_cert(&app, AccountId(1), &[0x0a, 0x03], &AKI, issued, 90);
    let serial = |last: u8| Serial::from_bytes(&[0x0a, last]).unwrap();
    {
        let mut state = app.fake.lock();
        state.declare_incident(
            "2025-06-cps-mismatch",
            "https://acme.test/incidents/cps-mismatch",
            &[serial(0x01)],
        );
        state.declare_incident("2025-06-unexplained", "", &[serial(0x03)]);
    }
    let fmt = |at: OffsetDateTime| at.format(&Rfc3339).unwrap();
    let already_past = json!({
        "start": fmt(support::now() - time::Duration::hours(2)),
        "end": fmt(support::now() - time::Duration::hours(1)),
    });

    // In an incident: a window already past, and the incident's page (RFC 9773 §4.2).
    let reply = app.get(&format!("/acme/renewal-info/{affected}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    assert_eq!(reply.header("retry-after"), Some("21600"));
    assert_eq!(
        reply.json(),
        json!({
            "suggestedWindow": already_past,
            "explanationURL": "https://acme.test/incidents/cps-mismatch",
        })
    );
    // An incident without a page: renew now, with nothing to point at.
    let reply = app.get(&format!("/acme/renewal-info/{unexplained}")).await;
    assert_eq!(reply.json(), json!({"suggestedWindow": already_past}));
    // Not in any incident: the usual window, no explanation.
    let reply = app.get(&format!("/acme/renewal-info/{unaffected}")).await;
    assert_eq!(
        reply.json(),
        json!({"suggestedWindow": {
            "start": fmt(issued + time::Duration::days(60)),
            "end": fmt(issued + time::Duration::hours(67 * 24 + 12)),
        }})
    );

    // When the SA cannot say, the client is asked to retry soon, not told to wait
    // six hours for a window that may be wrong.
    app.fake.lock().incidents_unavailable = true;
    let reply = app.get(&format!("/acme/renewal-info/{affected}")).await;
    reply.assert_problem("serverInternal", 503);
    assert_eq!(reply.header("retry-after"), Some("5"));
}

#[tokio::test]
async fn new_order_replaces_a_certificate() {
    let app = TestApp::new();
    let mut key = TestKey::es256();
    app.register(&mut key).await;
    let account = AccountId(id_of(key.kid.as_deref().unwrap()));
    let issued = support::now() - time::Duration::days(60);
    let cert_id = store_cert(&app, account, &[0x9a, 0xbc], &AKI, issued, 90);
    let payload = json!({
        "identifiers": [{"type": "dns", "value": "a.example"}],
        "replaces": cert_id,
    });
    let reply = app
        .post(&key, "/acme/new-order", &payload.to_string())
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
    let request = app.fake.lock().order_requests.pop().unwrap();
    assert_eq!(
        request.replaces,
        Some(Serial::from_bytes(&[0x9a, 0xbc]).unwrap())
    );
    // RFC 9773 §5: the order shows the certID it replaces, also when fetched.
    assert_eq!(reply.json()["replaces"], cert_id);
    let order_url = reply.header("location").unwrap().to_owned();
    let fetched = app.post(&key, path_of(&order_url), "").await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.json()["replaces"], cert_id);
    // An order that replaces nothing has no replaces member.
    let plain = app
        .post(
            &key,
            "/acme/new-order",
            r#"{"identifiers":[{"type":"dns","value":"b.example"}]}"#,
        )
        .await;
    assert_eq!(plain.status, StatusCode::CREATED);
    assert!(plain.json().get("replaces").is_none(), "{}", plain.json());
    app.fake.lock().order_requests.pop();
    // If the replaced certificate cannot be fetched, the order is still served,
    // without replaces.
    app.fake
        .lock()
        .certs
        .remove(&Serial::from_bytes(&[0x9a, 0xbc]).unwrap());
    let fetched = app.post(&key, path_of(&order_url), "").await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert!(
        fetched.json().get("replaces").is_none(),
        "{}",
        fetched.json()
    );
    assert_eq!(fetched.json()["status"], "pending");
    store_cert(&app, account, &[0x9a, 0xbc], &AKI, issued, 90);

    // The RA says it was already replaced.
    app.fake
        .lock()
        .replaced
        .push(Serial::from_bytes(&[0x9a, 0xbc]).unwrap());
    app.post(&key, "/acme/new-order", &payload.to_string())
        .await
        .assert_problem("alreadyReplaced", 409);

    // Another CA's key identifier, an unknown serial, garbage: never reach the RA.
    let (_, serial) = cert_id.split_once('.').unwrap();
    let before = app.fake.lock().order_requests.len();
    for replaces in [
        format!("{}.{serial}", URL_SAFE_NO_PAD.encode([0x42; 20])),
        format!("{}.AQ", URL_SAFE_NO_PAD.encode(AKI)),
        "garbage".to_owned(),
    ] {
        let payload = json!({
            "identifiers": [{"type": "dns", "value": "a.example"}],
            "replaces": replaces,
        });
        let problem = app
            .post(&key, "/acme/new-order", &payload.to_string())
            .await
            .assert_problem("malformed", 400);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("replaces does not name a certificate of this CA"),
            "{problem}"
        );
    }
    assert_eq!(app.fake.lock().order_requests.len(), before);
}

// === External account binding (RFC 8555 §7.3.4) ===

const EAB_KID: &str = "kid-7";
const EAB_HMAC_KEY: [u8; 32] = [0x5a; 32];

fn add_eab_key(app: &TestApp, key_id: &str) {
    app.fake.lock().eab_keys.insert(
        key_id.to_owned(),
        EabKey {
            key_id: key_id.to_owned(),
            hmac_key: EAB_HMAC_KEY.to_vec(),
            comment: "test".into(),
            created_at: support::now(),
            revoked: false,
            account_id: None,
        },
    );
}

/// An EAB JWS binding `jwk` under `header`, MACed with `mac_key`.
fn binding(header: &Value, jwk: &Value, mac_key: &[u8]) -> Value {
    let alg = match header["alg"].as_str() {
        Some("HS384") => ring::hmac::HMAC_SHA384,
        Some("HS512") => ring::hmac::HMAC_SHA512,
        _ => ring::hmac::HMAC_SHA256,
    };
    let protected = URL_SAFE_NO_PAD.encode(header.to_string());
    let payload = URL_SAFE_NO_PAD.encode(jwk.to_string());
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(alg, mac_key),
        format!("{protected}.{payload}").as_bytes(),
    );
    json!({"protected": protected, "payload": payload,
        "signature": URL_SAFE_NO_PAD.encode(tag.as_ref())})
}

fn eab_header(alg: &str, kid: &str) -> Value {
    json!({"alg": alg, "kid": kid, "url": format!("{BASE}/acme/new-account")})
}

fn new_account_payload(eab: Option<Value>) -> String {
    let mut payload = json!({"termsOfServiceAgreed": true});
    if let Some(eab) = eab {
        payload["externalAccountBinding"] = eab;
    }
    payload.to_string()
}

fn eab_app() -> TestApp {
    let app = TestApp::with_settings(|settings| settings.eab_required = true);
    add_eab_key(&app, EAB_KID);
    app
}

#[tokio::test]
async fn eab_binds_a_new_account() {
    let app = eab_app();
    let key = TestKey::es256();
    let eab = binding(&eab_header("HS256", EAB_KID), &key.jwk, &EAB_HMAC_KEY);
    let reply = app
        .post(
            &key,
            "/acme/new-account",
            &new_account_payload(Some(eab.clone())),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
    // RFC 8555 §7.3.4: the account object carries the binding as it was sent.
    assert_eq!(reply.json()["externalAccountBinding"], eab);
    let request = app.fake.lock().new_accounts.pop().unwrap();
    assert_eq!(request.eab_key_id.as_deref(), Some(EAB_KID));
    let account = AccountId(id_of(reply.header("location").unwrap()));
    assert_eq!(app.fake.lock().eab_keys[EAB_KID].account_id, Some(account));

    // The same key again finds its account, with or without the binding (only the
    // creating response echoes it).
    for payload in [new_account_payload(Some(eab)), new_account_payload(None)] {
        let again = app.post(&key, "/acme/new-account", &payload).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.header("location"), reply.header("location"));
        assert!(again.json().get("externalAccountBinding").is_none());
    }

    // A used key binds no second account.
    let other = TestKey::es384();
    let eab = binding(&eab_header("HS512", EAB_KID), &other.jwk, &EAB_HMAC_KEY);
    let problem = app
        .post(&other, "/acme/new-account", &new_account_payload(Some(eab)))
        .await
        .assert_problem("unauthorized", 403);
    assert_eq!(
        problem["detail"],
        "external account binding key is unknown, revoked or already used"
    );
    // Every HMAC algorithm works.
    for (alg, kid) in [("HS384", "kid-384"), ("HS512", "kid-512")] {
        add_eab_key(&app, kid);
        let key = TestKey::ed25519();
        let eab = binding(&eab_header(alg, kid), &key.jwk, &EAB_HMAC_KEY);
        let reply = app
            .post(&key, "/acme/new-account", &new_account_payload(Some(eab)))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{alg}");
    }
}

#[tokio::test]
async fn eab_refusals() {
    let app = eab_app();
    app.fake.lock().eab_keys.insert(
        "revoked".into(),
        EabKey {
            key_id: "revoked".into(),
            hmac_key: EAB_HMAC_KEY.to_vec(),
            comment: String::new(),
            created_at: support::now(),
            revoked: true,
            account_id: None,
        },
    );
    let key = TestKey::es256();
    let other = TestKey::es256();
    let cases = [
        // Required but absent.
        (None, "externalAccountRequired", 403),
        // A wrong MAC key, an unknown kid, a revoked key.
        (
            Some(binding(
                &eab_header("HS256", EAB_KID),
                &key.jwk,
                &[0x5b; 32],
            )),
            "unauthorized",
            403,
        ),
        (
            Some(binding(
                &eab_header("HS256", "nope"),
                &key.jwk,
                &EAB_HMAC_KEY,
            )),
            "unauthorized",
            403,
        ),
        (
            Some(binding(
                &eab_header("HS256", "revoked"),
                &key.jwk,
                &EAB_HMAC_KEY,
            )),
            "unauthorized",
            403,
        ),
        // The payload binds another key.
        (
            Some(binding(
                &eab_header("HS256", EAB_KID),
                &other.jwk,
                &EAB_HMAC_KEY,
            )),
            "malformed",
            400,
        ),
        // Only MAC algorithms.
        (
            Some(binding(
                &eab_header("ES256", EAB_KID),
                &key.jwk,
                &EAB_HMAC_KEY,
            )),
            "badSignatureAlgorithm",
            400,
        ),
        (
            Some(binding(
                &eab_header("none", EAB_KID),
                &key.jwk,
                &EAB_HMAC_KEY,
            )),
            "badSignatureAlgorithm",
            400,
        ),
        // A nonce, another url, not a JWS.
        (
            Some(binding(
                &json!({"alg": "HS256", "kid": EAB_KID, "url": format!("{BASE}/acme/new-account"), "nonce": "x"}),
                &key.jwk,
                &EAB_HMAC_KEY,
            )),
            "malformed",
            400,
        ),
        (
            Some(binding(
                &json!({"alg": "HS256", "kid": EAB_KID, "url": format!("{BASE}/acme/new-order")}),
                &key.jwk,
                &EAB_HMAC_KEY,
            )),
            "malformed",
            400,
        ),
        (Some(json!("not a jws")), "malformed", 400),
    ];
    for (eab, kind, status) in cases {
        let label = format!("{eab:?}");
        let reply = app
            .post(&key, "/acme/new-account", &new_account_payload(eab))
            .await;
        let problem = reply.assert_problem(kind, status);
        if kind == "unauthorized" {
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap()
                    .contains("external account binding"),
                "{label}: {problem}"
            );
        }
    }
    assert!(app.fake.lock().new_accounts.is_empty());
    assert_eq!(app.fake.lock().eab_keys[EAB_KID].account_id, None);

    // onlyReturnExisting needs no binding.
    app.post(&key, "/acme/new-account", r#"{"onlyReturnExisting":true}"#)
        .await
        .assert_problem("accountDoesNotExist", 400);
}

#[tokio::test]
async fn eab_is_checked_even_when_optional() {
    let app = TestApp::new();
    add_eab_key(&app, EAB_KID);
    let key = TestKey::es256();
    let eab = binding(&eab_header("HS256", EAB_KID), &key.jwk, &[0x01; 32]);
    app.post(&key, "/acme/new-account", &new_account_payload(Some(eab)))
        .await
        .assert_problem("unauthorized", 403);
    let reply = app
        .post(&key, "/acme/new-account", &new_account_payload(None))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(app.fake.lock().new_accounts.pop().unwrap().eab_key_id, None);
}

// === Nonces shared between WFEs ===

#[tokio::test]
async fn wfes_sharing_a_nonce_store_redeem_each_others_nonces() {
    let clock = Arc::new(FixedClock::new(support::now()));
    let shared: Arc<dyn Nonces> = Arc::new(NonceService::with_defaults(clock));
    let fake = Arc::new(support::Fake::default());
    let first = TestApp::with_nonces(fake.clone(), shared.clone());
    let second = TestApp::with_nonces(fake, shared);
    let mut key = TestKey::es256();
    first.register(&mut key).await;
    // A nonce from the first WFE, spent at the second.
    let nonce = first.nonce().await;
    let header = key.header(
        &format!("{BASE}{}", path_of(key.kid.as_ref().unwrap())),
        Some(&nonce),
    );
    let body = key.sign(&header, "");
    let reply = second
        .post_raw(path_of(key.kid.as_ref().unwrap()), body.clone())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    // Spent once means spent everywhere.
    first
        .post_raw(path_of(key.kid.as_ref().unwrap()), body)
        .await
        .assert_problem("badNonce", 400);
    // A WFE with its own store knows none of them.
    let alone = TestApp::new();
    let nonce = first.nonce().await;
    let fresh = TestKey::es256();
    let header = fresh.header(&format!("{BASE}/acme/new-account"), Some(&nonce));
    alone
        .post_raw(
            "/acme/new-account",
            fresh.sign(&header, r#"{"termsOfServiceAgreed":true}"#),
        )
        .await
        .assert_problem("badNonce", 400);
}

// === Alternate chains (RFC 8555 §7.4.2) ===

/// A CA certificate made with rcgen: its parameters, key and DER.
struct TestCa {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    der: Vec<u8>,
}

fn ca_params(cn: &str) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
}

impl TestCa {
    fn root(cn: &str) -> Self {
        let params = ca_params(cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Self { params, key, der }
    }

    /// A CA named `cn` with `key`, signed by `self`.
    fn sign_ca(&self, cn: &str, key: rcgen::KeyPair) -> Self {
        let mut params = ca_params(cn);
        params.use_authority_key_identifier_extension = true;
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let der = params.signed_by(&key, &issuer).unwrap().der().to_vec();
        Self { params, key, der }
    }

    /// A leaf for `a.example` with this serial, signed by `self`.
    fn sign_leaf(&self, serial: &[u8]) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
        params.use_authority_key_identifier_extension = true;
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        params
            .signed_by(&rcgen::KeyPair::generate().unwrap(), &issuer)
            .unwrap()
            .der()
            .to_vec()
    }
}

fn key_copy(key: &rcgen::KeyPair) -> rcgen::KeyPair {
    rcgen::KeyPair::from_pem(&key.serialize_pem()).unwrap()
}

fn pem_of(der: &[u8]) -> String {
    use base64::engine::general_purpose::STANDARD;
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// The DER certificates of a PEM chain.
fn ders_of(pem: &[u8]) -> Vec<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .map(|cert| cert.unwrap().as_ref().to_vec())
        .collect()
}

fn links(reply: &support::Reply) -> Vec<String> {
    let mut links: Vec<String> = reply
        .headers
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|link| link.ends_with("rel=\"alternate\""))
        .collect();
    links.sort();
    links
}

/// The Let's Encrypt shape: intermediate "Test Int" under "Root A", the same name
/// and key cross-signed by "Root X2", and decoys that must never be offered.
struct Hierarchy {
    root_x2: TestCa,
    intermediate: TestCa,
    cross: TestCa,
    /// Same name, another key.
    same_name: TestCa,
    /// Same key, another name.
    same_key: TestCa,
}

fn hierarchy() -> Hierarchy {
    let root_a = TestCa::root("Root A");
    let root_x2 = TestCa::root("Root X2");
    let intermediate = root_a.sign_ca("Test Int", rcgen::KeyPair::generate().unwrap());
    let cross = root_x2.sign_ca("Test Int", key_copy(&intermediate.key));
    let same_name = root_x2.sign_ca("Test Int", rcgen::KeyPair::generate().unwrap());
    let same_key = root_x2.sign_ca("Test Int Other", key_copy(&intermediate.key));
    Hierarchy {
        root_x2,
        intermediate,
        cross,
        same_name,
        same_key,
    }
}

fn chain(certs: &[&[u8]]) -> basalt_wfe::IssuerChain {
    basalt_wfe::IssuerChain::from_der(certs.iter().map(|c| c.to_vec()).collect()).unwrap()
}

#[tokio::test]
async fn alternate_chains_are_offered_for_the_same_issuer() {
    let h = hierarchy();
    // The chains as configured: decoys, the cross-sign with its root, the default
    // chain itself (skipped), and the cross-sign alone.
    let alternates = vec![
        chain(&[&h.same_name.der]),
        chain(&[&h.cross.der, &h.root_x2.der]),
        chain(&[&h.same_key.der]),
        chain(&[&h.intermediate.der]),
        chain(&[&h.cross.der]),
    ];
    let app = TestApp::with_settings(|settings| settings.alternate_chains = alternates);
    let mut key = TestKey::es256();
    app.register(&mut key).await;
    let account = AccountId(id_of(key.kid.as_ref().unwrap()));
    let leaf = h.intermediate.sign_leaf(&[0x7a, 0x01]);
    let serial = Serial::from_bytes(&[0x7a, 0x01]).unwrap();
    app.fake.lock().certs.insert(
        serial.clone(),
        CertificateRecord {
            serial: serial.clone(),
            account_id: account,
            der: leaf.clone(),
            chain: vec![h.intermediate.der.clone()],
            issued_at: support::now(),
            expires_at: support::now() + time::Duration::days(90),
            status: CertStatus::Good,
            revoked_at: None,
            revocation_reason: None,
        },
    );
    let path = format!("/acme/cert/{serial}");
    let url = format!("{BASE}{path}");
    let link = |n: usize| format!("<{url}/{n}>;rel=\"alternate\"");

    let default = app.post(&key, &path, "").await;
    assert_eq!(default.status, StatusCode::OK);
    assert_common_headers(&default);
    assert_eq!(
        default.header("content-type"),
        Some("application/pem-certificate-chain")
    );
    assert_eq!(
        ders_of(&default.body),
        vec![leaf.clone(), h.intermediate.der.clone()]
    );
    assert_eq!(links(&default), vec![link(1), link(2)]);

    let first = app.post(&key, &format!("{path}/1"), "").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_common_headers(&first);
    assert_eq!(
        ders_of(&first.body),
        vec![leaf.clone(), h.cross.der.clone(), h.root_x2.der.clone()]
    );
    let mut expected = vec![format!("<{url}>;rel=\"alternate\""), link(2)];
    expected.sort();
    assert_eq!(links(&first), expected);

    let second = app.post(&key, &format!("{path}/2"), "").await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(
        ders_of(&second.body),
        vec![leaf.clone(), h.cross.der.clone()]
    );
    let mut expected = vec![format!("<{url}>;rel=\"alternate\""), link(1)];
    expected.sort();
    assert_eq!(links(&second), expected);

    for bad in ["0", "3", "x", "-1", "01", "+1", "18446744073709551616"] {
        app.post(&key, &format!("{path}/{bad}"), "")
            .await
            .assert_problem("malformed", 404);
    }
    // Only the owner, and only POST-as-GET.
    let mut other = TestKey::es256();
    app.register(&mut other).await;
    app.post(&other, &format!("{path}/1"), "")
        .await
        .assert_problem("malformed", 404);
    app.post(&key, &format!("{path}/1"), "{}")
        .await
        .assert_problem("malformed", 400);
    app.post(&key, "/acme/cert/7a02/1", "")
        .await
        .assert_problem("malformed", 404);
}

#[tokio::test]
async fn other_issuers_get_no_alternates() {
    let h = hierarchy();
    let app = TestApp::with_settings(|settings| {
        settings.alternate_chains = vec![chain(&[&h.cross.der])];
    });
    let mut key = TestKey::es256();
    app.register(&mut key).await;
    let account = AccountId(id_of(key.kid.as_ref().unwrap()));
    let unrelated = TestCa::root("Unrelated Int");
    let cases = [
        // Issued by another CA altogether.
        (
            &[0x10][..],
            unrelated.sign_leaf(&[0x10]),
            unrelated.der.clone(),
        ),
        // Same name as the cross-signed intermediate, another key.
        (
            &[0x11][..],
            h.same_name.sign_leaf(&[0x11]),
            h.same_name.der.clone(),
        ),
        // Same key, another name.
        (
            &[0x12][..],
            h.same_key.sign_leaf(&[0x12]),
            h.same_key.der.clone(),
        ),
        // The fake RA's minimal shapes, which the WFE cannot read: served as stored.
        (
            &[0x13][..],
            support::fake_cert_der(&[0x13]),
            vec![0x30, 0x00],
        ),
    ];
    for (serial, der, issuer) in cases {
        let serial = Serial::from_bytes(serial).unwrap();
        app.fake.lock().certs.insert(
            serial.clone(),
            CertificateRecord {
                serial: serial.clone(),
                account_id: account,
                der: der.clone(),
                chain: vec![issuer.clone()],
                issued_at: support::now(),
                expires_at: support::now() + time::Duration::days(90),
                status: CertStatus::Good,
                revoked_at: None,
                revocation_reason: None,
            },
        );
        let reply = app.post(&key, &format!("/acme/cert/{serial}"), "").await;
        assert_eq!(reply.status, StatusCode::OK, "{serial}");
        assert!(links(&reply).is_empty(), "{serial}: {:?}", links(&reply));
        let body = String::from_utf8(reply.body.clone()).unwrap();
        assert_eq!(body, format!("{}{}", pem_of(&der), pem_of(&issuer)));
        app.post(&key, &format!("/acme/cert/{serial}/1"), "")
            .await
            .assert_problem("malformed", 404);
    }
}

#[test]
fn issuer_chains_load_from_pem_files() {
    let h = hierarchy();
    let dir = std::env::temp_dir().join(format!("basalt-wfe-chains-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let good = write(
        "good.pem",
        &format!("{}{}", pem_of(&h.cross.der), pem_of(&h.root_x2.der)),
    );
    let loaded = basalt_wfe::IssuerChain::load(&good).unwrap();
    assert_eq!(
        loaded.certificates(),
        [h.cross.der.clone(), h.root_x2.der.clone()]
    );
    let missing = dir.join("missing.pem");
    let empty = write("empty.pem", "no certificates here\n");
    let garbage = write("garbage.pem", &pem_of(&[0x30, 0x03, 0x02, 0x01, 0x01]));
    // Out of order: the root first.
    let reversed = write(
        "reversed.pem",
        &format!("{}{}", pem_of(&h.root_x2.der), pem_of(&h.cross.der)),
    );
    // A leaf (rcgen writes no subject key identifier for it).
    let leaf = write("leaf.pem", &pem_of(&h.intermediate.sign_leaf(&[1])));
    for path in [&missing, &empty, &garbage, &reversed, &leaf] {
        let err = basalt_wfe::IssuerChain::load(path).unwrap_err();
        assert!(
            err.detail.contains(&path.display().to_string()),
            "{}",
            err.detail
        );
    }

    // The whole config: every file is read at start-up, and a bad one fails it.
    let text = |chains: &[&std::path::Path]| {
        let list: Vec<String> = chains
            .iter()
            .map(|p| format!("{:?}", p.display().to_string()))
            .collect();
        format!(
            "listen = \"127.0.0.1:14000\"\nbase_url = \"{BASE}\"\nalternate_chains = [{}]\n\
             [https]\ncert = \"c\"\nkey = \"k\"\n[tls]\ncert = \"c\"\nkey = \"k\"\nca = \"a\"\n\
             [ra]\naddress = \"127.0.0.1:1\"\nserver_name = \"ra\"\n\
             [sa]\naddress = \"127.0.0.1:2\"\nserver_name = \"sa\"\n\
             [directory]\ncaa_identities = [\"acme.example.net\"]\n",
            list.join(", ")
        )
    };
    let config: basalt_wfe::WfeConfig =
        basalt_config::parse(&text(&[good.as_path(), good.as_path()])).unwrap();
    let settings = basalt_wfe::WfeSettings::from_config(&config).unwrap();
    assert_eq!(settings.alternate_chains, vec![loaded.clone(), loaded]);
    assert_eq!(settings.caa_identities, ["acme.example.net"]);
    let config: basalt_wfe::WfeConfig =
        basalt_config::parse(&text(&[good.as_path(), empty.as_path()])).unwrap();
    let err = basalt_wfe::WfeSettings::from_config(&config).unwrap_err();
    assert!(err.detail.contains("empty.pem"), "{}", err.detail);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn caa_identities_are_advertised() {
    let app = TestApp::with_settings(|settings| {
        settings.caa_identities = vec!["acme.example.net".to_owned(), "example.org".to_owned()];
    });
    let directory = app.get("/directory").await.json();
    assert_eq!(
        directory["meta"]["caaIdentities"],
        json!(["acme.example.net", "example.org"])
    );
    let directory = TestApp::new().get("/directory").await.json();
    assert!(
        directory["meta"].get("caaIdentities").is_none(),
        "{directory}"
    );
}

#[tokio::test]
async fn an_unreachable_peer_asks_to_retry_later() {
    let app = TestApp::new();
    let mut key = TestKey::es256();
    app.register(&mut key).await;
    app.fake.lock().certificates_unavailable = true;
    let reply = app.post(&key, "/acme/cert/7a01", "").await;
    let problem = reply.assert_problem("serverInternal", 503);
    assert_eq!(reply.header("retry-after"), Some("5"));
    assert_eq!(problem["detail"], "the service is temporarily unavailable");
    // Without the outage: a plain 404, no Retry-After.
    app.fake.lock().certificates_unavailable = false;
    let reply = app.post(&key, "/acme/cert/7a01", "").await;
    reply.assert_problem("malformed", 404);
    assert_eq!(reply.header("retry-after"), None);
}
