//! Rate limits through the real WFE and RA (`basalt dev --rate-limit
//! new_orders_per_account=2/20s`), in the RA's memory and in the Redis on
//! 127.0.0.1:6379: the third newOrder in a row is refused with 429 `rateLimited`,
//! a detail naming the limit and a `Retry-After` that, once waited, lets the next
//! one through; an operator's override (`basalt admin rate-limit`) raises one
//! account's limit at once; an ARI renewal (RFC 9773 `replaces`) inside the
//! replaced certificate's renewal window is not limited, while one before it is.
//!
//! The Redis test needs Redis on 127.0.0.1:6379 and fails, saying so, without it.

use std::io::BufRead;
use std::io::BufReader;
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::acme_api::renewal_info;
use crate::acme_api::window;
use crate::certs::cert_id;
use crate::certs::rfc3339;
use crate::certs::wall_clock_now;
use crate::flow::RawAccount;
use crate::flow::order_payload;
use crate::harness::DevCa;
use crate::harness::LAB_NEW_ACCOUNTS;
use crate::harness::random_u64;
use crate::instant_acme::Http01;
use crate::jws::Acme;
use crate::jws::Answer;
use crate::steps::Steps;

pub(crate) const RATE_LIMITED: &str = "urn:ietf:params:acme:error:rateLimited";
/// The limit every test here lowers, and how: two orders per 20 seconds, at most
/// two at once, so the third in a row waits about ten seconds.
const LIMIT: &str = "new_orders_per_account";
const LOW_LIMIT: &str = "new_orders_per_account=2/20s";
/// The longest `Retry-After` the low limit can ask of a fresh account: one
/// emission interval (20s / 2).
const MAX_RETRY_AFTER: u64 = 10;
/// How many newOrders in a row it takes at most to hit the low limit.
const ORDERS_TO_EXHAUST: usize = 3;
const REDIS: &str = "127.0.0.1:6379";

/// The account ID in an account URL (`…/acme/acct/<id>`): the key of the
/// per-account limits.
pub(crate) fn account_id(kid: &str) -> String {
    kid.rsplit('/')
        .next()
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no account ID at the end of {kid:?}"))
        .to_owned()
}

/// A fresh DNS name under `label` (newOrder never validates it; a fresh name keeps
/// the RA from handing back an identical pending order instead of a new one).
fn fresh_name(label: &str) -> String {
    format!("{label}-{:x}.rate-limits.example.com", random_u64())
}

/// Checks that `answer` is a `rateLimited` refusal of new_orders_per_account
/// (RFC 8555 §6.7: 429, `Retry-After`); returns `Retry-After` in seconds.
pub(crate) fn expect_limited(answer: &Answer, what: &str) -> u64 {
    answer.expect_problem(StatusCode::TOO_MANY_REQUESTS, RATE_LIMITED, what);
    let detail = answer.json["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(LIMIT),
        "{what}: the detail does not name {LIMIT}: {}",
        answer.text
    );
    let retry_after = answer
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: a 429 without Retry-After: {}", answer.text));
    let seconds: u64 = retry_after
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{what}: Retry-After {retry_after:?} is not in seconds"));
    // Spending under an override moves the bucket on too, so a wait longer than
    // one interval is possible; never one longer than the requests made allow.
    assert!(
        (1..=MAX_RETRY_AFTER * 4).contains(&seconds),
        "{what}: Retry-After {seconds}s for a limit of {LOW_LIMIT}"
    );
    seconds
}

/// newOrders for fresh names until one is refused; returns that refusal.
async fn exhaust(account: &RawAccount, label: &str) -> Answer {
    for _ in 0..ORDERS_TO_EXHAUST {
        let answer = account
            .new_order(&order_payload(&[&fresh_name(label)]))
            .await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            return answer;
        }
        answer.expect_status(StatusCode::CREATED, "a newOrder below the limit");
    }
    panic!("{ORDERS_TO_EXHAUST} newOrders in a row were all accepted under {LOW_LIMIT}");
}

/// Two newOrders pass, the third gets 429 with `Retry-After`, and after waiting
/// that long the next one passes.
async fn third_order_waits_for_retry_after(acme: Acme) {
    let account = RawAccount::create(&acme).await;
    for n in 0..2 {
        account
            .new_order(&order_payload(&[&fresh_name("burst")]))
            .await
            .expect_status(StatusCode::CREATED, &format!("newOrder {} of 2", n + 1));
    }
    let refused = account
        .new_order(&order_payload(&[&fresh_name("third")]))
        .await;
    let wait = expect_limited(&refused, "the third newOrder");
    eprintln!("the third newOrder: {} (Retry-After {wait}s)", refused.text);
    assert!(
        wait <= MAX_RETRY_AFTER,
        "Retry-After {wait}s, more than one interval of {LOW_LIMIT}"
    );
    tokio::time::sleep(Duration::from_secs(wait)).await;
    account
        .new_order(&order_payload(&[&fresh_name("after")]))
        .await
        .expect_status(StatusCode::CREATED, "a newOrder after waiting Retry-After");
}

/// An operator's override raises one account's limit at once; `list` shows it;
/// once removed, the low limit applies again.
async fn override_raises_one_accounts_limit(acme: Acme, ca: Arc<DevCa>) {
    let account = RawAccount::create(&acme).await;
    let id = account_id(&account.kid);
    expect_limited(&exhaust(&account, "before").await, "exhausting the limit");

    let admin = |args: &[&str]| {
        let output = tokio::task::block_in_place(|| ca.admin(args));
        assert!(
            output.status.success(),
            "basalt admin {}: {}",
            args.join(" "),
            output.text()
        );
        output.stdout
    };
    let added = admin(&[
        "rate-limit",
        "add",
        "--limit",
        LIMIT,
        "--key",
        &id,
        "--count",
        "1000",
        "--period",
        "1h",
        "--burst",
        "1000",
        "--comment",
        "e2e: a big customer",
    ]);
    assert!(added.contains(&id), "rate-limit add said: {added}");
    // More than the low limit allows, with no wait.
    for n in 0..ORDERS_TO_EXHAUST {
        account
            .new_order(&order_payload(&[&fresh_name("raised")]))
            .await
            .expect_status(
                StatusCode::CREATED,
                &format!("newOrder {} under the override", n + 1),
            );
    }
    let listed = admin(&["rate-limit", "list"]);
    let line = format!("{LIMIT}\t{id}\t1000/1h\t1000\te2e: a big customer");
    assert!(
        listed.lines().any(|l| l == line),
        "rate-limit list lacks {line:?}:\n{listed}"
    );

    admin(&["rate-limit", "remove", "--limit", LIMIT, "--key", &id]);
    let listed = admin(&["rate-limit", "list"]);
    assert!(
        !listed
            .lines()
            .any(|l| l.starts_with(&format!("{LIMIT}\t{id}\t"))),
        "the override is still listed after remove:\n{listed}"
    );
    // Two at once at most again: three in a row cannot all pass.
    expect_limited(
        &exhaust(&account, "removed").await,
        "after the override went",
    );
}

/// Issues a certificate whose renewal window (RFC 9773) has begun: backdated by
/// 56 minutes (the RA allows an hour) and valid for 79, its window (from 2/3 to
/// 3/4 of the lifetime) runs from about 3 minutes ago to 3 minutes from now.
/// Returns its ARI certID and the order's identifiers.
async fn certificate_in_its_renewal_window(
    account: &RawAccount,
    acme: &Acme,
    http01: &Http01,
) -> (String, serde_json::Value) {
    let not_before = wall_clock_now() - 56 * 60;
    let not_after = not_before + 79 * 60;
    let extra = json!({ "notBefore": rfc3339(not_before), "notAfter": rfc3339(not_after) });
    let issued = account
        .issue(http01, &[&fresh_name("renewed")], &extra)
        .await;
    let id = cert_id(&issued.leaf_der);
    let info = renewal_info(acme, &id).await;
    let (start, end) = window(&info);
    let now = wall_clock_now();
    assert!(
        start <= now && now < end,
        "the certificate's renewal window {}..{} does not hold now ({}): {}",
        rfc3339(start),
        rfc3339(end),
        rfc3339(now),
        info.text
    );
    (id, issued.order["identifiers"].clone())
}

/// An account at its limit may still renew a certificate in its renewal window
/// (`replaces`), and only that: an ordinary order right after is refused again.
async fn ari_renewal_in_its_window_is_not_limited(acme: Acme, http01: Http01) {
    let account = RawAccount::create(&acme).await;
    let (id, identifiers) = certificate_in_its_renewal_window(&account, &acme, &http01).await;
    expect_limited(&exhaust(&account, "ordinary").await, "an ordinary newOrder");

    let renewal = account
        .new_order(&json!({ "identifiers": identifiers, "replaces": id }))
        .await;
    renewal.expect_status(
        StatusCode::CREATED,
        "an ARI renewal in its window while the account is limited",
    );
    assert_eq!(renewal.json["replaces"], id, "{}", renewal.text);
    let after = account
        .new_order(&order_payload(&[&fresh_name("after-renewal")]))
        .await;
    expect_limited(&after, "an ordinary newOrder right after the renewal");
}

/// A replacement of a certificate whose renewal window is weeks away is an
/// ordinary order as far as the limits go.
async fn replacement_before_its_window_is_limited(acme: Acme, http01: Http01) {
    let account = RawAccount::create(&acme).await;
    let issued = account
        .issue(&http01, &[&fresh_name("early")], &json!({}))
        .await;
    let id = cert_id(&issued.leaf_der);
    let (start, _) = window(&renewal_info(&acme, &id).await);
    assert!(
        start > wall_clock_now(),
        "a fresh 90-day certificate is already in its window"
    );
    expect_limited(&exhaust(&account, "ordinary").await, "an ordinary newOrder");
    let early = account
        .new_order(&json!({ "identifiers": issued.order["identifiers"], "replaces": id }))
        .await;
    expect_limited(&early, "a replacement before the renewal window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_orders_are_limited_in_memory() {
    let ca = Arc::new(
        DevCa::builder("rate-limits")
            .arg("--rate-limit")
            .arg(LOW_LIMIT)
            .start(),
    );
    ca.wait_for_stdout_line(
        &format!("Rate limits: in the RA's memory; changed: {LOW_LIMIT}, {LAB_NEW_ACCOUNTS}"),
        Duration::from_secs(5),
    );
    let acme = Acme::new(&ca).await;
    let http01 = Http01::start(ca.http01_port).await;
    let mut steps = Steps::default();
    steps
        .run_async(
            "the third newOrder waits for Retry-After",
            third_order_waits_for_retry_after(acme.clone()),
        )
        .await;
    steps
        .run_async(
            "an override raises one account's limit",
            override_raises_one_accounts_limit(acme.clone(), ca.clone()),
        )
        .await;
    steps
        .run_async(
            "an ARI renewal in its window is not limited",
            ari_renewal_in_its_window_is_not_limited(acme.clone(), http01.clone()),
        )
        .await;
    steps
        .run_async(
            "a replacement before its window is limited",
            replacement_before_its_window_is_limited(acme.clone(), http01.clone()),
        )
        .await;
    steps.finish();
}

/// Sends one inline command to the Redis at [`REDIS`] and returns the first line
/// of its answer (`+PONG`, `:1`, `*3`…); panics, saying what is missing, if Redis
/// does not answer.
fn redis_first_line(command: &str) -> String {
    let address = REDIS
        .parse()
        .unwrap_or_else(|err| redis_unreachable(command, &err));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))
        .unwrap_or_else(|err| redis_unreachable(command, &err));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap_or_else(|err| redis_unreachable(command, &err));
    stream
        .write_all(format!("{command}\r\n").as_bytes())
        .unwrap_or_else(|err| redis_unreachable(command, &err));
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .unwrap_or_else(|err| redis_unreachable(command, &err));
    if line.is_empty() {
        redis_unreachable(command, &"the connection closed");
    }
    line.trim_end().to_owned()
}

/// Fails the test: Redis did not answer `command`.
fn redis_unreachable(command: &str, err: &dyn std::fmt::Display) -> ! {
    panic!(
        "this test needs Redis on {REDIS} (`redis-server --daemonize yes`), which did \
         not answer {command:?}: {err}"
    )
}

/// The `key_prefix` `basalt dev` wrote into the RA's config.
fn key_prefix(ca: &DevCa) -> String {
    let path = ca.config("ra");
    let text = std::fs::read_to_string(&path).expect("read ra.toml");
    text.lines()
        .find_map(|line| line.trim().strip_prefix("key_prefix = "))
        .map(|value| value.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("{} has no key_prefix:\n{text}", path.display()))
}

/// How many keys match `pattern` in Redis (`KEYS`: the test's keys are few).
fn redis_key_count(pattern: &str) -> usize {
    let reply = redis_first_line(&format!("KEYS {pattern}"));
    reply
        .strip_prefix('*')
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("KEYS {pattern} answered {reply:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_orders_are_limited_in_redis() {
    // First, so that a missing Redis fails the test before a CA is started.
    let pong = redis_first_line("PING");
    assert_eq!(
        pong, "+PONG",
        "Redis on {REDIS} answered PING with {pong:?}"
    );
    let ca = Arc::new(
        DevCa::builder("rate-limits-redis")
            .arg("--rate-limits")
            .arg("redis")
            .arg("--rate-limit")
            .arg(LOW_LIMIT)
            .start(),
    );
    let prefix = key_prefix(&ca);
    assert!(
        prefix.starts_with("basalt-dev-") && prefix.len() > "basalt-dev-".len(),
        "key prefix {prefix:?}"
    );
    let buckets = format!("{prefix}:rl:{LIMIT}:*");
    assert_eq!(redis_key_count(&buckets), 0, "buckets before any order");
    let acme = Acme::new(&ca).await;
    let mut steps = Steps::default();
    steps
        .run_async(
            "the third newOrder waits for Retry-After",
            third_order_waits_for_retry_after(acme.clone()),
        )
        .await;
    steps.run("the buckets are in Redis under this run's prefix", || {
        assert!(
            redis_key_count(&buckets) > 0,
            "no key matches {buckets} in Redis: the RA kept its buckets elsewhere"
        );
    });
    steps
        .run_async(
            "an override raises one account's limit",
            override_raises_one_accounts_limit(acme.clone(), ca.clone()),
        )
        .await;
    steps.finish();
}
