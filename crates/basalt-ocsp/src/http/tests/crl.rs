//! The CRL routes: `GET {crl_path}{shard}.crl` serves the store's newest CRL of the
//! shard with its caching headers, beside (and before) the OCSP routes.

use axum::http::Method;

use super::*;
use crate::CrlIssuer;
use crate::CrlStore;
use crate::crl::CrlSequence;
use crate::crl::PublishedCrl;
use crate::crl::ShardId;

const CRL_PATH: &str = "/crl/test/";
const SHARDS: u32 = 4;

/// A responder for one issuer (certificate at `/issuers/test.der`, CRLs under
/// [`CRL_PATH`] in [`SHARDS`] shards, none generated) and its router.
struct CrlHarness {
    harness: Harness,
    store: Arc<CrlStore>,
    /// A router without CRLs, over the same responder.
    without_crls: Router,
}

fn crl_harness() -> CrlHarness {
    let issuer = TestIssuer::new("Basalt Test Issuer");
    let records = vec![good_record(&issuer, &serial("0a0b0c0d"))];
    let store = CrlStore::new(
        vec![CrlIssuer {
            cert_der: issuer.der.clone(),
            crl_path: CRL_PATH.to_owned(),
        }],
        SHARDS,
    )
    .unwrap();
    let clock = FixedClock::new(NOW);
    let sa = Arc::new(FakeSa {
        certificates: Mutex::new(records.into_iter().map(|r| (r.serial.clone(), r)).collect()),
        ..FakeSa::default()
    });
    let signer = Arc::new(FakeSigner::new(
        SignerMode::Valid(Duration::from_secs(4 * 86_400)),
        clock.clone(),
    ));
    let responder = Arc::new(
        Responder::new(
            vec![issuer.responder_issuer(Some("/issuers/test.der"))],
            sa.clone(),
            signer.clone(),
            Arc::new(clock),
            ResponderSettings {
                max_age: Duration::from_secs(3600),
                cache_size: 1000,
                presign: false,
            },
        )
        .unwrap(),
    );
    CrlHarness {
        without_crls: router(responder.clone(), None),
        harness: Harness {
            issuer,
            sa,
            signer,
            router: router(responder, Some(store.clone())),
        },
        store,
    }
}

/// A CRL with `der` (the router serves any bytes), thisUpdate an hour ago and
/// nextUpdate `next_update` from now.
fn crl(der: &[u8], number: u8, next_update: time::Duration) -> PublishedCrl {
    PublishedCrl {
        der: Bytes::copy_from_slice(der),
        this_update: NOW - time::Duration::hours(1),
        next_update: NOW + next_update,
        number: CrlSequence::from_be_bytes(&[number]),
        entries: 0,
        etag: etag(der),
    }
}

fn publish(store: &CrlStore, shard: u32, crl: PublishedCrl) {
    store.publish(ShardId { issuer: 0, shard }, crl).unwrap();
}

async fn send(router: &Router, method: Method, path: &str, body: Vec<u8>) -> Response {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(body))
        .unwrap();
    router.clone().oneshot(request).await.unwrap()
}

/// Checks a served CRL: `der`, with its caching headers.
async fn assert_crl(response: Response, der: &[u8], max_age: u64) {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_of(&response, header::CONTENT_TYPE),
        "application/pkix-crl"
    );
    assert_eq!(
        header_of(&response, header::CACHE_CONTROL),
        format!("public, max-age={max_age}")
    );
    assert_eq!(
        header_of(&response, header::LAST_MODIFIED),
        "Sat, 01 Mar 2025 11:00:00 GMT"
    );
    assert_eq!(header_of(&response, header::ETAG), etag(der));
    assert_eq!(body(response).await, der);
}

#[tokio::test]
async fn crl_shards_are_served_with_caching_headers() {
    let crls = crl_harness();
    let router = &crls.harness.router;
    publish(
        &crls.store,
        0,
        crl(b"shard zero", 1, time::Duration::days(7)),
    );
    publish(
        &crls.store,
        3,
        crl(b"shard three", 1, time::Duration::days(7)),
    );
    // max_age caps a CRL valid for a week.
    assert_crl(get(router, "/crl/test/0.crl").await, b"shard zero", 3600).await;
    assert_crl(get(router, "/crl/test/3.crl").await, b"shard three", 3600).await;

    // A newer CRL replaces the old one; one due in ten minutes is cached for as long.
    publish(
        &crls.store,
        0,
        crl(b"newer", 2, time::Duration::minutes(10)),
    );
    assert_crl(get(router, "/crl/test/0.crl").await, b"newer", 600).await;
    // Past its nextUpdate: served, but not to be cached.
    publish(
        &crls.store,
        0,
        crl(b"stale", 3, -time::Duration::minutes(10)),
    );
    assert_crl(get(router, "/crl/test/0.crl").await, b"stale", 0).await;

    // HEAD: the headers alone.
    let response = send(router, Method::HEAD, "/crl/test/3.crl", Vec::new()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_of(&response, header::ETAG), etag(b"shard three"));
    assert!(body(response).await.is_empty());
}

#[tokio::test]
async fn if_none_match_on_a_crl_gets_not_modified() {
    let crls = crl_harness();
    let router = &crls.harness.router;
    publish(
        &crls.store,
        1,
        crl(b"shard one", 1, time::Duration::days(7)),
    );
    let tag = etag(b"shard one");
    let conditional = |tags: String| {
        Request::get("/crl/test/1.crl")
            .header(header::IF_NONE_MATCH, tags)
            .body(Body::empty())
            .unwrap()
    };
    for tags in [tag.clone(), format!("\"other\", W/{tag}"), "*".to_owned()] {
        let response = router
            .clone()
            .oneshot(conditional(tags.clone()))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{tags}");
        assert_eq!(header_of(&response, header::ETAG), tag);
        assert_eq!(
            header_of(&response, header::CACHE_CONTROL),
            "public, max-age=3600"
        );
        assert!(response.headers().get(header::CONTENT_TYPE).is_none());
        assert!(body(response).await.is_empty());
    }
    let response = router
        .clone()
        .oneshot(conditional("\"other\"".to_owned()))
        .await
        .unwrap();
    assert_crl(response, b"shard one", 3600).await;
    // Once regenerated, the old tag gets the new CRL.
    publish(
        &crls.store,
        1,
        crl(b"regenerated", 2, time::Duration::days(7)),
    );
    let response = router.clone().oneshot(conditional(tag)).await.unwrap();
    assert_crl(response, b"regenerated", 3600).await;
}

#[tokio::test]
async fn a_shard_not_generated_yet_is_unavailable() {
    let crls = crl_harness();
    let response = get(&crls.harness.router, "/crl/test/2.crl").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header_of(&response, header::RETRY_AFTER), "5");
    assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-store");
    // Even a conditional request: there is nothing to compare with.
    let response = crls
        .harness
        .router
        .clone()
        .oneshot(
            Request::get("/crl/test/2.crl")
                .header(header::IF_NONE_MATCH, "*")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn paths_naming_no_shard_are_not_found() {
    let crls = crl_harness();
    for shard in 0..SHARDS {
        publish(&crls.store, shard, crl(b"crl", 1, time::Duration::days(7)));
    }
    for path in [
        "/crl/test/4.crl",
        "/crl/test/1000.crl",
        "/crl/test/99999999999999999999.crl",
        "/crl/test/01.crl",
        "/crl/test/00.crl",
        "/crl/test/+1.crl",
        "/crl/test/-1.crl",
        "/crl/test/1",
        "/crl/test/1.CRL",
        "/crl/test/1.crl.der",
        "/crl/test/.crl",
        "/crl/test/a.crl",
        "/crl/test/%31.crl",
        "/crl/test/1.crl/",
        "/crl/test/0/1.crl",
        "/crl/test/",
    ] {
        let response = get(&crls.harness.router, path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            header_of(&response, header::CONTENT_TYPE),
            "text/plain",
            "{path}"
        );
    }
    for shard in 0..SHARDS {
        let path = format!("/crl/test/{shard}.crl");
        let response = get(&crls.harness.router, &path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

#[test]
fn shard_file_names_are_plain_decimals() {
    assert_eq!(shard_of_file("0.crl"), Some(0));
    assert_eq!(shard_of_file("7.crl"), Some(7));
    assert_eq!(shard_of_file("999.crl"), Some(999));
    assert_eq!(shard_of_file("4294967295.crl"), Some(u32::MAX));
    for bad in [
        "4294967296.crl",
        "07.crl",
        "00.crl",
        ".crl",
        "crl",
        "1",
        " 1.crl",
        "1 .crl",
        "+1.crl",
        "1e3.crl",
        "١.crl",
    ] {
        assert_eq!(shard_of_file(bad), None, "{bad}");
    }
}

#[tokio::test]
async fn ocsp_and_issuer_routes_still_answer_beside_the_crls() {
    let crls = crl_harness();
    let router = &crls.harness.router;
    publish(
        &crls.store,
        0,
        crl(b"shard zero", 1, time::Duration::days(7)),
    );
    // OCSP by GET and by POST, even to a CRL path.
    let request = good_request(&crls.harness);
    let response = get(router, &format!("/{}", STANDARD.encode(&request))).await;
    assert_signed(
        &crls.harness,
        response,
        3600,
        "Wed, 05 Mar 2025 12:00:00 GMT",
    )
    .await;
    for path in ["/", "/crl/test/0.crl", "/crl/test/"] {
        let response = send(router, Method::POST, path, request.clone()).await;
        assert_signed(
            &crls.harness,
            response,
            3600,
            "Wed, 05 Mar 2025 12:00:00 GMT",
        )
        .await;
    }
    // The issuer certificate.
    let response = get(router, "/issuers/test.der").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, crls.harness.issuer.der);
    // Another directory is not a CRL path: the OCSP catch-all answers it.
    let response = get(router, "/crl/other/0.crl").await;
    assert_eq!(
        failed_status(response).await,
        OcspResponseStatus::MalformedRequest
    );
    // Without CRLs, no CRL route at all.
    let response = get(&crls.without_crls, "/crl/test/0.crl").await;
    assert_eq!(
        failed_status(response).await,
        OcspResponseStatus::MalformedRequest
    );
}

#[test]
fn a_crl_with_a_number_not_above_the_served_one_is_refused() {
    let crls = crl_harness();
    publish(&crls.store, 0, crl(b"first", 5, time::Duration::days(7)));
    for number in [5, 4] {
        let err = crls
            .store
            .publish(
                ShardId {
                    issuer: 0,
                    shard: 0,
                },
                crl(b"older", number, time::Duration::days(7)),
            )
            .unwrap_err();
        assert_eq!(
            err,
            format!("CRL number {number} is not above 5, the number of the CRL served now")
        );
    }
    assert_eq!(
        crls.store.crl_der(CRL_PATH, 0).as_deref(),
        Some(&b"first"[..])
    );
}
