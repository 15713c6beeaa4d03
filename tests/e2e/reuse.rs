//! Order and authorization reuse through the real WFE, RA and SA: a second
//! identical newOrder gets the same order back; a new order for a name the
//! account validated recently needs no new validation, only the new names do; one
//! account's authorizations never serve another.

use reqwest::StatusCode;
use serde_json::Value;

use crate::flow::RawAccount;
use crate::flow::order_payload;
use crate::harness::DevCa;
use crate::harness::random_u64;
use crate::instant_acme::Http01;
use crate::jws::Acme;

/// A fresh DNS name under `label`.
fn fresh_name(label: &str) -> String {
    format!("{label}-{:x}.reuse.example.com", random_u64())
}

/// The authorization URLs of an order object.
fn authorizations(order: &Value) -> Vec<String> {
    order["authorizations"]
        .as_array()
        .unwrap_or_else(|| panic!("an order without authorizations: {order}"))
        .iter()
        .map(|url| {
            url.as_str()
                .expect("authorization URLs are strings")
                .to_owned()
        })
        .collect()
}

/// The authorization among `urls` whose identifier is `name`, and its status.
async fn authz_for(account: &RawAccount, urls: &[String], name: &str) -> (String, String) {
    for url in urls {
        let authz = account.post(url, None).await;
        authz.expect_status(StatusCode::OK, "POST-as-GET authorization");
        if authz.json["identifier"]["value"] == name {
            let status = authz.json["status"].as_str().unwrap_or_default().to_owned();
            return (url.clone(), status);
        }
    }
    panic!("no authorization for {name} among {urls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_and_authorizations_are_reused() {
    let ca = DevCa::builder("reuse").start();
    let acme = Acme::new(&ca).await;
    let http01 = Http01::start(ca.http01_port).await;
    let account = RawAccount::create(&acme).await;
    let (a, b, c) = (fresh_name("a"), fresh_name("b"), fresh_name("c"));

    // An identical newOrder returns the same order.
    let first = {
        let first = account.new_order(&order_payload(&[&a, &b])).await;
        first.expect_status(StatusCode::CREATED, "the first newOrder");
        // The same names in another order are the same request.
        let again = account.new_order(&order_payload(&[&b, &a])).await;
        again.expect_status(StatusCode::CREATED, "the repeated newOrder");
        assert_eq!(again.location(), first.location(), "{}", again.text);
        assert_eq!(authorizations(&again.json), authorizations(&first.json));
        first
    };

    // A validated name needs no new validation.
    {
        account.authorize(&http01, &first.json).await;
        let validations = http01.requests().len();
        let bigger = account.new_order(&order_payload(&[&a, &c])).await;
        bigger.expect_status(StatusCode::CREATED, "newOrder for a and c");
        assert_ne!(bigger.location(), first.location());
        let urls = authorizations(&bigger.json);
        let (a_url, a_status) = authz_for(&account, &urls, &a).await;
        let (_, c_status) = authz_for(&account, &urls, &c).await;
        assert_eq!(a_status, "valid", "a's authorization is the validated one");
        assert!(
            authorizations(&first.json).contains(&a_url),
            "a's authorization {a_url} is not the first order's"
        );
        assert_eq!(c_status, "pending");
        account.authorize(&http01, &bigger.json).await;
        let order = account.poll_order(&bigger.location(), "pending").await;
        assert_eq!(order["status"], "ready", "{order}");
        // One more http-01 fetch at most per perspective, all for c: a was not
        // validated again.
        let since: Vec<String> = http01.requests()[validations..].to_vec();
        assert!(!since.is_empty(), "c was validated");
        let a_tokens = first_tokens(&account, &authorizations(&first.json)).await;
        assert!(
            since
                .iter()
                .all(|path| !a_tokens.iter().any(|t| path.contains(t))),
            "a was validated again: {since:?}"
        );
    }

    // Another account does not share them.
    {
        let other = RawAccount::create(&acme).await;
        let theirs = other.new_order(&order_payload(&[&a, &b])).await;
        theirs.expect_status(StatusCode::CREATED, "another account's newOrder");
        assert_ne!(theirs.location(), first.location());
        let shared: Vec<String> = authorizations(&theirs.json)
            .into_iter()
            .filter(|url| authorizations(&first.json).contains(url))
            .collect();
        assert!(shared.is_empty(), "shared authorizations: {shared:?}");
        let (_, status) = authz_for(&other, &authorizations(&theirs.json), &a).await;
        assert_eq!(status, "pending");
    }
}

/// The challenge tokens of the authorizations at `urls`.
async fn first_tokens(account: &RawAccount, urls: &[String]) -> Vec<String> {
    let mut tokens = Vec::new();
    for url in urls {
        let authz = account.post(url, None).await;
        for challenge in authz.json["challenges"].as_array().into_iter().flatten() {
            if let Some(token) = challenge["token"].as_str() {
                tokens.push(token.to_owned());
            }
        }
    }
    tokens
}
