//! The limiter's behaviour, run against both stores, and its config.
//!
//! The Redis runs need a Redis on 127.0.0.1:6379 and fail without one. Each uses
//! its own random key prefix, so runs never share buckets.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Instant;

use basalt_core::AccountId;
use basalt_core::Identifier;
use time::macros::datetime;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::TcpStream;

use super::*;
use crate::resp::Reply;

const NOW: OffsetDateTime = datetime!(2026-11-29 18:05:11 UTC);
const HOUR: Duration = Duration::from_secs(3600);
const REDIS_URL: &str = "redis://127.0.0.1:6379/0";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Memory,
    Redis,
}

/// A key prefix no other run uses.
fn random_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = RandomState::new().hash_one((std::process::id(), n));
    format!("basalt-test-{random:016x}")
}

/// The test config: new orders limited to 3 per 3h (one an hour), burst 3.
fn config() -> RateLimitsConfig {
    let mut config = RateLimitsConfig::default();
    config.limits.insert(
        LimitName::NewOrdersPerAccount,
        LimitConfig {
            count: Some(3),
            period: Some(ConfigDuration(3 * HOUR)),
            burst: Some(3),
            enabled: true,
        },
    );
    config
}

/// A limiter on `kind`. For Redis it gets a fresh prefix, and the test fails at
/// once if Redis does not answer, since every store failure would otherwise be
/// allowed through and most assertions would hold by accident.
async fn limiter(kind: Kind, mut config: RateLimitsConfig) -> Limiter {
    match kind {
        Kind::Memory => config.backend = Backend::Memory,
        Kind::Redis => {
            config.backend = Backend::Redis;
            config.redis_url = Some(REDIS_URL.to_owned());
            config.redis_timeout = ConfigDuration(Duration::from_secs(5));
            config.key_prefix = random_prefix();
        }
    }
    let limiter = Limiter::new(&config).unwrap();
    if let Store::Redis(store) = &limiter.inner.store
        && let Err(err) = store.ping().await
    {
        panic!(
            "the Redis rate limit tests need Redis on 127.0.0.1:6379 \
             (e.g. `redis-server --bind 127.0.0.1 --port 6379`): {err}"
        );
    }
    limiter
}

/// Removes what a Redis run stored.
async fn finish(limiter: Limiter) {
    if let Store::Redis(store) = &limiter.inner.store {
        store.purge().await.unwrap();
    }
}

fn order(account: i64) -> Vec<Transaction> {
    vec![Transaction::new_order(AccountId(account))]
}

fn rate(count: u32, period: Duration, burst: u32) -> RateLimit {
    RateLimit {
        count,
        period,
        burst,
    }
}

fn runtime_override(limit: &str, key: &str, rate: RateLimit) -> RateLimitOverride {
    RateLimitOverride {
        limit: limit.to_owned(),
        key: key.to_owned(),
        rate,
        comment: "test".to_owned(),
    }
}

/// Spends `n` times at `now`, each of which must be allowed.
async fn spend_ok(limiter: &Limiter, transactions: &[Transaction], n: usize, now: OffsetDateTime) {
    for i in 0..n {
        limiter
            .spend(transactions, now)
            .await
            .unwrap_or_else(|err| panic!("spend {} of {n} denied: {err}", i + 1));
    }
}

/// The wait of a denial, which must be one.
fn denied(result: Result<(), Error>) -> (Duration, String) {
    let err = result.expect_err("the request was allowed");
    assert_eq!(err.kind, ErrorKind::RateLimited, "{err}");
    (
        err.retry_after.expect("a denial without retry_after"),
        err.detail,
    )
}

macro_rules! on_both_stores {
    ($($name:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Kind::Memory).await;
                }
            )+
        }

        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Kind::Redis).await;
                }
            )+
        }
    };
}

on_both_stores!(
    a_burst_is_allowed_then_the_exact_wait_is_reported,
    waiting_the_retry_after_is_enough,
    a_refund_gives_a_slot_back_but_no_more,
    a_spend_across_keys_is_all_or_nothing,
    check_spends_nothing,
    the_longest_wait_is_reported,
    repeated_buckets_in_a_batch_add_up,
    a_config_override_beats_the_limit,
    a_runtime_override_beats_a_config_override,
    disabled_limits_are_skipped,
    overrides_are_validated_and_listed,
    new_accounts_count_per_address_and_per_ipv6_range,
    certificates_count_per_registered_domain,
);

async fn a_burst_is_allowed_then_the_exact_wait_is_reported(kind: Kind) {
    let limiter = limiter(kind, config()).await;
    spend_ok(&limiter, &order(42), 3, NOW).await;
    let (wait, detail) = denied(limiter.spend(&order(42), NOW).await);
    assert_eq!(wait, HOUR);
    assert_eq!(
        detail,
        "too many new orders for account 42: 3 per 3h allowed (new_orders_per_account); \
         retry after 2026-11-29T19:05:11Z"
    );
    // Another account has its own bucket.
    spend_ok(&limiter, &order(43), 1, NOW).await;
    // Half an hour on, half an hour to go.
    let half = Duration::from_secs(1800);
    let (wait, _) = denied(limiter.spend(&order(42), NOW + half).await);
    assert_eq!(wait, half);
    finish(limiter).await;
}

async fn waiting_the_retry_after_is_enough(kind: Kind) {
    let limiter = limiter(kind, config()).await;
    spend_ok(&limiter, &order(42), 3, NOW).await;
    let (wait, _) = denied(limiter.spend(&order(42), NOW).await);
    let (almost, _) = denied(
        limiter
            .spend(&order(42), NOW + wait - Duration::from_nanos(1))
            .await,
    );
    assert_eq!(almost, Duration::from_nanos(1));
    spend_ok(&limiter, &order(42), 1, NOW + wait).await;
    let (next, _) = denied(limiter.spend(&order(42), NOW + wait).await);
    assert_eq!(next, HOUR);
    // After a whole period idle the full burst is back.
    spend_ok(&limiter, &order(42), 3, NOW + 10 * HOUR).await;
    denied(limiter.spend(&order(42), NOW + 10 * HOUR).await);
    finish(limiter).await;
}

async fn a_refund_gives_a_slot_back_but_no_more(kind: Kind) {
    let limiter = limiter(kind, config()).await;
    spend_ok(&limiter, &order(42), 3, NOW).await;
    denied(limiter.spend(&order(42), NOW).await);
    limiter.refund(&order(42), NOW).await;
    spend_ok(&limiter, &order(42), 1, NOW).await;
    denied(limiter.spend(&order(42), NOW).await);
    // Refunding an empty bucket adds nothing beyond the burst.
    let later = NOW + 5 * HOUR;
    let many = [Transaction {
        cost: 5,
        ..Transaction::new_order(AccountId(42))
    }];
    limiter.refund(&many, later).await;
    spend_ok(&limiter, &order(42), 3, later).await;
    denied(limiter.spend(&order(42), later).await);
    // A refund of more than was spent empties the bucket and no more.
    limiter.refund(&many, later).await;
    spend_ok(&limiter, &order(42), 3, later).await;
    denied(limiter.spend(&order(42), later).await);
    finish(limiter).await;
}

async fn a_spend_across_keys_is_all_or_nothing(kind: Kind) {
    let limiter = limiter(kind, config()).await;
    spend_ok(&limiter, &order(1), 3, NOW).await;
    let both = [order(2), order(1)].concat();
    let (wait, detail) = denied(limiter.spend(&both, NOW).await);
    assert_eq!(wait, HOUR);
    assert!(detail.contains("account 1:"), "{detail}");
    // Account 2 spent nothing.
    spend_ok(&limiter, &order(2), 3, NOW).await;
    denied(limiter.spend(&order(2), NOW).await);
    finish(limiter).await;
}

async fn check_spends_nothing(kind: Kind) {
    let limiter = limiter(kind, config()).await;
    for _ in 0..10 {
        limiter.check(&order(42), NOW).await.unwrap();
    }
    spend_ok(&limiter, &order(42), 3, NOW).await;
    let (checked, check_detail) = denied(limiter.check(&order(42), NOW).await);
    let (spent, spend_detail) = denied(limiter.spend(&order(42), NOW).await);
    assert_eq!((checked, check_detail), (spent, spend_detail));
    finish(limiter).await;
}

async fn the_longest_wait_is_reported(kind: Kind) {
    let mut config = config();
    config.limits.insert(
        LimitName::FailedAuthorizationsPerDomainPerAccount,
        LimitConfig {
            count: Some(2),
            period: Some(ConfigDuration(HOUR)),
            burst: Some(2),
            enabled: true,
        },
    );
    let limiter = limiter(kind, config).await;
    let failed = vec![Transaction::failed_authorization(
        AccountId(42),
        &Identifier::dns("example.com"),
    )];
    spend_ok(&limiter, &order(42), 3, NOW).await;
    spend_ok(&limiter, &failed, 2, NOW).await;
    let (wait, detail) = denied(limiter.spend(&failed, NOW).await);
    assert_eq!(wait, HOUR / 2);
    assert!(
        detail.starts_with("too many failed authorizations for example.com by account 42: 2 per 1h allowed (failed_authorizations_per_domain_per_account)"),
        "{detail}"
    );
    for batch in [
        [failed.clone(), order(42)].concat(),
        [order(42), failed.clone()].concat(),
    ] {
        let (wait, detail) = denied(limiter.spend(&batch, NOW).await);
        assert_eq!(wait, HOUR);
        assert!(detail.contains("(new_orders_per_account)"), "{detail}");
    }
    finish(limiter).await;
}

async fn repeated_buckets_in_a_batch_add_up(kind: Kind) {
    let limiter = limiter(kind, config()).await;
    let twice = [order(42), order(42)].concat();
    spend_ok(&limiter, &twice, 1, NOW).await;
    denied(limiter.spend(&twice, NOW).await);
    spend_ok(&limiter, &order(42), 1, NOW).await;
    denied(limiter.spend(&order(42), NOW).await);
    finish(limiter).await;
}

async fn a_config_override_beats_the_limit(kind: Kind) {
    let mut config = config();
    config.overrides.push(OverrideConfig {
        limit: LimitName::NewOrdersPerAccount,
        key: "42".to_owned(),
        count: 5,
        period: ConfigDuration(3 * HOUR),
        burst: None,
        comment: "a big hosting provider".to_owned(),
    });
    let limiter = limiter(kind, config).await;
    spend_ok(&limiter, &order(42), 5, NOW).await;
    let (wait, detail) = denied(limiter.spend(&order(42), NOW).await);
    assert_eq!(wait, Duration::from_secs(36 * 60));
    assert!(detail.contains("5 per 3h allowed"), "{detail}");
    spend_ok(&limiter, &order(43), 3, NOW).await;
    denied(limiter.spend(&order(43), NOW).await);
    finish(limiter).await;
}

async fn a_runtime_override_beats_a_config_override(kind: Kind) {
    let mut config = config();
    config.overrides.push(OverrideConfig {
        limit: LimitName::NewOrdersPerAccount,
        key: "42".to_owned(),
        count: 5,
        period: ConfigDuration(3 * HOUR),
        burst: Some(5),
        comment: String::new(),
    });
    let limiter = limiter(kind, config).await;
    limiter
        .add_override(runtime_override(
            "new_orders_per_account",
            "42",
            rate(1, HOUR, 1),
        ))
        .await
        .unwrap();
    spend_ok(&limiter, &order(42), 1, NOW).await;
    let (wait, detail) = denied(limiter.spend(&order(42), NOW).await);
    assert_eq!(wait, HOUR);
    assert!(detail.contains(": 1 per 1h allowed"), "{detail}");
    // Replacing the override takes effect at once.
    limiter
        .add_override(runtime_override(
            "new_orders_per_account",
            "42",
            rate(2, HOUR, 2),
        ))
        .await
        .unwrap();
    let (wait, _) = denied(limiter.spend(&order(42), NOW).await);
    assert_eq!(wait, Duration::from_secs(1800));
    // Without it the config's override applies again.
    limiter
        .remove_override("new_orders_per_account", "42")
        .await
        .unwrap();
    // The bucket's TAT is an hour ahead (one spend at one an hour); at 36 minutes
    // a request, three more fit within the three hours' tolerance.
    spend_ok(&limiter, &order(42), 3, NOW).await;
    let (wait, detail) = denied(limiter.spend(&order(42), NOW).await);
    assert_eq!(wait, Duration::from_secs(24 * 60));
    assert!(detail.contains("5 per 3h allowed"), "{detail}");
    finish(limiter).await;
}

async fn disabled_limits_are_skipped(kind: Kind) {
    let mut config = config();
    if let Some(orders) = config.limits.get_mut(&LimitName::NewOrdersPerAccount) {
        orders.enabled = false;
    }
    let limiter = limiter(kind, config.clone()).await;
    assert_eq!(limiter.rate(LimitName::NewOrdersPerAccount), None);
    spend_ok(&limiter, &order(42), 20, NOW).await;
    // Other limits still apply.
    let ip = Transaction::new_accounts("192.0.2.1".parse().unwrap());
    spend_ok(&limiter, &ip, 10, NOW).await;
    denied(limiter.spend(&ip, NOW).await);
    // A disabled limit in a batch does not hold up the others.
    let batch = [order(42), ip.clone()].concat();
    denied(limiter.spend(&batch, NOW).await);
    finish(limiter).await;

    config.enabled = false;
    let limiter = self::limiter(kind, config).await;
    assert_eq!(limiter.rate(LimitName::NewAccountsPerIp), None);
    spend_ok(&limiter, &ip, 20, NOW).await;
    limiter.check(&ip, NOW).await.unwrap();
    finish(limiter).await;
}

async fn overrides_are_validated_and_listed(kind: Kind) {
    let mut config = config();
    config.overrides.push(OverrideConfig {
        limit: LimitName::NewAccountsPerIp,
        key: "2001:DB8::7".to_owned(),
        count: 100,
        period: ConfigDuration(3 * HOUR),
        burst: None,
        comment: "office NAT".to_owned(),
    });
    let limiter = limiter(kind, config).await;
    let good = rate(10, HOUR, 10);
    let cases = [
        (
            runtime_override("new_order_per_account", "42", good),
            "new_orders_per_account",
        ),
        (runtime_override("new_orders_per_account", "", good), "key"),
        (
            runtime_override("new_orders_per_account", "abc", good),
            "key",
        ),
        (
            runtime_override("new_orders_per_account", "42", rate(0, HOUR, 1)),
            "count",
        ),
        (
            runtime_override("new_orders_per_account", "42", rate(1, HOUR, 0)),
            "burst",
        ),
        (
            runtime_override("new_orders_per_account", "42", rate(1, Duration::ZERO, 1)),
            "period",
        ),
    ];
    for (entry, named) in cases {
        let err = limiter.add_override(entry.clone()).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed, "{entry:?}: {err}");
        assert!(err.detail.contains(named), "{entry:?}: {err}");
    }
    limiter
        .add_override(runtime_override("new_orders_per_account", "7", good))
        .await
        .unwrap();
    limiter
        .add_override(runtime_override(
            "certificates_per_domain",
            "WWW.Example.com",
            rate(500, 168 * HOUR, 500),
        ))
        .await
        .unwrap();
    let listed = limiter.overrides().await.unwrap();
    let names: Vec<(&str, &str)> = listed
        .iter()
        .map(|o| (o.limit.as_str(), o.key.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("new_accounts_per_ip", "2001:db8::7"),
            ("certificates_per_domain", "example.com"),
            ("new_orders_per_account", "7"),
        ]
    );
    assert_eq!(listed[0].comment, "office NAT");
    assert_eq!(listed[0].rate, rate(100, 3 * HOUR, 100));
    assert_eq!(listed[2].rate, good);
    assert_eq!(listed[2].comment, "test");

    let err = limiter
        .remove_override("new_accounts_per_ip", "2001:db8::7")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    assert!(err.detail.contains("defined in the RA's config"), "{err}");
    let err = limiter
        .remove_override("new_orders_per_account", "8")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    let err = limiter.remove_override("nope", "8").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed, "{err}");
    limiter
        .remove_override("certificates_per_domain", "example.com")
        .await
        .unwrap();
    limiter
        .remove_override("new_orders_per_account", "7")
        .await
        .unwrap();
    let err = limiter
        .remove_override("new_orders_per_account", "7")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert_eq!(limiter.overrides().await.unwrap().len(), 1);
    finish(limiter).await;
}

async fn new_accounts_count_per_address_and_per_ipv6_range(kind: Kind) {
    let mut config = config();
    for (limit, count) in [
        (LimitName::NewAccountsPerIp, 1),
        (LimitName::NewAccountsPerIpv6Range, 2),
    ] {
        config.limits.insert(
            limit,
            LimitConfig {
                count: Some(count),
                ..LimitConfig::default()
            },
        );
    }
    let limiter = limiter(kind, config).await;
    let a = Transaction::new_accounts("2001:db8:1:1::1".parse().unwrap());
    let b = Transaction::new_accounts("2001:db8:1:2::1".parse().unwrap());
    let c = Transaction::new_accounts("2001:db8:1:3::1".parse().unwrap());
    let elsewhere = Transaction::new_accounts("2001:db8:2::1".parse().unwrap());
    spend_ok(&limiter, &a, 1, NOW).await;
    let (_, detail) = denied(limiter.spend(&a, NOW).await);
    assert!(
        detail.starts_with("too many new accounts from 2001:db8:1:1::1:"),
        "{detail}"
    );
    spend_ok(&limiter, &b, 1, NOW).await;
    let (wait, detail) = denied(limiter.spend(&c, NOW).await);
    assert_eq!(wait, Duration::from_secs(3 * 3600 / 2));
    assert!(
        detail.starts_with(
            "too many new accounts from the IPv6 range 2001:db8:1::/48: 2 per 3h allowed"
        ),
        "{detail}"
    );
    spend_ok(&limiter, &elsewhere, 1, NOW).await;
    finish(limiter).await;
}

async fn certificates_count_per_registered_domain(kind: Kind) {
    let mut config = config();
    config.limits.insert(
        LimitName::CertificatesPerDomain,
        LimitConfig {
            count: Some(2),
            ..LimitConfig::default()
        },
    );
    let limiter = limiter(kind, config).await;
    let first = Transaction::certificates_per_domain(&[
        Identifier::dns("a.b.example.co.uk"),
        Identifier::dns("www.example.com"),
    ]);
    let second = Transaction::certificates_per_domain(&[Identifier::dns("*.example.co.uk")]);
    let third = Transaction::certificates_per_domain(&[Identifier::dns("mail.example.co.uk")]);
    spend_ok(&limiter, &first, 1, NOW).await;
    spend_ok(&limiter, &second, 1, NOW).await;
    let (wait, detail) = denied(limiter.spend(&third, NOW).await);
    assert_eq!(wait, Duration::from_secs(84 * 3600));
    assert!(
        detail.starts_with(
            "too many certificates for the registered domain example.co.uk: 2 per 7d allowed (certificates_per_domain); retry after 2026-12-03T06:05:11Z"
        ),
        "{detail}"
    );
    finish(limiter).await;
}

// === Redis only ===

#[tokio::test]
async fn redis_buckets_hold_the_tat_and_expire_with_it() {
    let limiter = limiter(Kind::Redis, config()).await;
    let Store::Redis(store) = &limiter.inner.store else {
        unreachable!("a Redis limiter");
    };
    spend_ok(&limiter, &order(42), 1, NOW).await;
    let key = format!("{}new_orders_per_account:42", store.namespace_for_tests());
    let reply = store.command(&[b"GET", key.as_bytes()]).await.unwrap();
    let tat = (NOW + HOUR).unix_timestamp_nanos().to_string();
    assert_eq!(reply, Reply::Bulk(tat.into_bytes()));
    let Reply::Integer(ttl) = store.command(&[b"PTTL", key.as_bytes()]).await.unwrap() else {
        panic!("PTTL is not an integer");
    };
    assert!((3_590_000..=3_600_000).contains(&ttl), "PTTL {ttl}");
    // A refund back to now deletes the bucket.
    limiter.refund(&order(42), NOW).await;
    let reply = store.command(&[b"EXISTS", key.as_bytes()]).await.unwrap();
    assert_eq!(reply, Reply::Integer(0));
    finish(limiter).await;
}

#[tokio::test]
async fn redis_keeps_sub_second_times_exact() {
    let limiter = limiter(Kind::Redis, config()).await;
    let odd = NOW + Duration::from_nanos(123_456_789);
    spend_ok(&limiter, &order(42), 3, odd).await;
    let (wait, _) = denied(
        limiter
            .spend(&order(42), odd + Duration::from_nanos(987_654_321))
            .await,
    );
    assert_eq!(wait, HOUR - Duration::from_nanos(987_654_321));
    finish(limiter).await;
}

#[tokio::test]
async fn redis_reloads_a_flushed_script() {
    let limiter = limiter(Kind::Redis, config()).await;
    let Store::Redis(store) = &limiter.inner.store else {
        unreachable!("a Redis limiter");
    };
    spend_ok(&limiter, &order(42), 3, NOW).await;
    store.command(&[b"SCRIPT", b"FLUSH"]).await.unwrap();
    // A denial shows that the script ran rather than the request failing open.
    denied(limiter.spend(&order(42), NOW).await);
    finish(limiter).await;
}

#[tokio::test]
async fn redis_at_a_closed_port_fails_open_within_the_timeout() {
    let mut config = config();
    config.backend = Backend::Redis;
    config.redis_url = Some("redis://127.0.0.1:1".to_owned());
    config.redis_timeout = ConfigDuration(Duration::from_millis(300));
    let limiter = Limiter::new(&config).unwrap();
    let start = Instant::now();
    spend_ok(&limiter, &order(42), 5, NOW).await;
    limiter.check(&order(42), NOW).await.unwrap();
    limiter.refund(&order(42), NOW).await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let err = limiter.overrides().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    let err = limiter
        .add_override(runtime_override(
            "new_orders_per_account",
            "42",
            rate(1, HOUR, 1),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
}

/// A server that accepts connections and then does `behave` with each.
async fn fake_redis(behave: fn(TcpStream, usize) -> tokio::task::JoinHandle<()>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((stream, _)) = listener.accept().await {
            behave(stream, n);
            n += 1;
        }
    });
    format!("redis://{address}")
}

fn fake_limiter(url: String, timeout: Duration, mut config: RateLimitsConfig) -> Limiter {
    config.backend = Backend::Redis;
    config.redis_url = Some(url);
    config.redis_timeout = ConfigDuration(timeout);
    config.key_prefix = random_prefix();
    Limiter::new(&config).unwrap()
}

#[tokio::test]
async fn a_silent_redis_fails_open_within_the_timeout() {
    let url = fake_redis(|mut stream, _| {
        tokio::spawn(async move {
            // Read and never answer.
            let mut sink = [0; 1024];
            while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
        })
    })
    .await;
    let limiter = fake_limiter(url, Duration::from_millis(200), config());
    let start = Instant::now();
    limiter.spend(&order(42), NOW).await.unwrap();
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_redis_answering_garbage_fails_open() {
    let url = fake_redis(|mut stream, n| {
        tokio::spawn(async move {
            let mut request = [0; 4096];
            while stream.read(&mut request).await.is_ok_and(|n| n > 0) {
                let garbage: &[u8] = match n % 3 {
                    0 => b"%not resp\r\n",
                    1 => b"*5\r\n$1\r\n1\r\n",
                    _ => b"$40\r\n01234567890123456789012345678901234567890123\r\n",
                };
                if stream.write_all(garbage).await.is_err() {
                    return;
                }
                if n % 3 == 1 {
                    // Half a reply, then hang up.
                    return;
                }
            }
        })
    })
    .await;
    let limiter = fake_limiter(url, Duration::from_millis(500), config());
    for _ in 0..6 {
        limiter.spend(&order(42), NOW).await.unwrap();
    }
    assert_eq!(
        limiter.overrides().await.unwrap_err().kind,
        ErrorKind::Unavailable
    );
}

#[tokio::test]
async fn redis_reconnects_after_a_broken_connection() {
    // Ensure the real Redis is there, so a failure below is the proxy's doing.
    let _ = limiter(Kind::Redis, config()).await;
    // The first connection is closed at once; the others reach the real Redis.
    let url = fake_redis(|stream, n| {
        tokio::spawn(async move {
            if n == 0 {
                drop(stream);
                return;
            }
            let mut stream = stream;
            if let Ok(mut redis) = TcpStream::connect("127.0.0.1:6379").await {
                let _ = tokio::io::copy_bidirectional(&mut stream, &mut redis).await;
            }
        })
    })
    .await;
    let mut config = config();
    if let Some(orders) = config.limits.get_mut(&LimitName::NewOrdersPerAccount) {
        orders.count = Some(1);
        orders.burst = Some(1);
    }
    let limiter = fake_limiter(url, Duration::from_secs(5), config);
    // Fails open: the connection broke, nothing was spent.
    limiter.spend(&order(42), NOW).await.unwrap();
    // Reconnected: the one request the bucket holds, then a denial.
    limiter.spend(&order(42), NOW).await.unwrap();
    denied(limiter.spend(&order(42), NOW).await);
    finish(limiter).await;
}

// === Config ===

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RaFile {
    #[serde(default)]
    rate_limits: RateLimitsConfig,
}

fn parse(text: &str) -> Result<RateLimitsConfig, String> {
    basalt_config::parse::<RaFile>(text).map(|file| file.rate_limits)
}

#[test]
fn a_missing_block_means_the_published_limits_in_memory() {
    for text in ["", "[rate_limits]\n"] {
        let config = parse(text).unwrap();
        assert_eq!(config, RateLimitsConfig::default());
        assert!(config.enabled);
        assert_eq!(config.backend, Backend::Memory);
        assert_eq!(config.redis_timeout.0, Duration::from_millis(250));
        assert_eq!(config.key_prefix, "basalt");
        let limiter = Limiter::new(&config).unwrap();
        for limit in LimitName::ALL {
            assert_eq!(limiter.rate(limit), Some(limit.default_rate()), "{limit}");
        }
    }
}

#[test]
fn a_full_block_parses() {
    let config = parse(
        r#"
        [rate_limits]
        enabled = true
        backend = "redis"
        redis_url = "redis://:pw@127.0.0.1:6379/2"
        redis_timeout = "100ms"
        key_prefix = "ca1"

        [rate_limits.limits.new_orders_per_account]
        count = 600
        period = "6h"
        burst = 100
        enabled = true

        [rate_limits.limits.certificates_per_fqdn_set]
        enabled = false

        [rate_limits.limits.new_accounts_per_ip]
        count = 20

        [[rate_limits.overrides]]
        limit = "new_orders_per_account"
        key = "42"
        count = 1000
        period = "3h"
        burst = 1000
        comment = "big hosting provider"

        [[rate_limits.overrides]]
        limit = "certificates_per_domain"
        key = "example.net"
        count = 500
        period = "7d"
        "#,
    )
    .unwrap();
    assert_eq!(config.backend, Backend::Redis);
    assert_eq!(config.redis_timeout.0, Duration::from_millis(100));
    let limiter = Limiter::new(&config).unwrap();
    assert_eq!(
        limiter.rate(LimitName::NewOrdersPerAccount),
        Some(rate(600, 6 * HOUR, 100))
    );
    assert_eq!(limiter.rate(LimitName::CertificatesPerFqdnSet), None);
    // A count without a burst makes the burst the count.
    assert_eq!(
        limiter.rate(LimitName::NewAccountsPerIp),
        Some(rate(20, 3 * HOUR, 20))
    );
    assert_eq!(
        limiter.rate(LimitName::CertificatesPerDomain),
        Some(LimitName::CertificatesPerDomain.default_rate())
    );
    assert_eq!(config.overrides.len(), 2);
    assert_eq!(config.overrides[0].comment, "big hosting provider");
    assert_eq!(config.overrides[1].rate(), rate(500, 168 * HOUR, 500));
}

#[test]
fn unknown_names_and_fields_are_refused_by_name() {
    let cases = [
        (
            "[rate_limits.limits.new_order_per_account]\ncount = 1\n",
            "new_order_per_account",
        ),
        (
            "[[rate_limits.overrides]]\nlimit = \"orders\"\nkey = \"1\"\ncount = 1\nperiod = \"1h\"\n",
            "orders",
        ),
        ("[rate_limits]\nbackend = \"etcd\"\n", "etcd"),
        ("[rate_limits]\nredis_timeout = \"soon\"\n", "soon"),
        ("[rate_limits]\nredis_urll = \"redis://h\"\n", "redis_urll"),
        (
            "[rate_limits.limits.new_accounts_per_ip]\ncuont = 1\n",
            "cuont",
        ),
        (
            "[[rate_limits.overrides]]\nlimit = \"new_orders_per_account\"\nkey = \"1\"\ncount = 1\n",
            "period",
        ),
    ];
    for (text, named) in cases {
        let err = parse(text).unwrap_err();
        assert!(err.contains(named), "{text}: {err}");
    }
    let err = parse("[rate_limits.limits.nope]\n").unwrap_err();
    assert!(
        err.contains("new_orders_per_account"),
        "lists the names: {err}"
    );
}

#[test]
fn config_errors_name_their_field() {
    let cases = [
        (
            "[rate_limits.limits.new_orders_per_account]\ncount = 0\n",
            "rate_limits.limits.new_orders_per_account.count: must be at least 1",
        ),
        (
            "[rate_limits.limits.new_accounts_per_ip]\nburst = 0\n",
            "rate_limits.limits.new_accounts_per_ip.burst: must be at least 1",
        ),
        (
            "[rate_limits.limits.certificates_per_domain]\nperiod = \"0s\"\n",
            "rate_limits.limits.certificates_per_domain.period: must be more than 0",
        ),
        (
            "[rate_limits.limits.certificates_per_domain]\nperiod = \"3651d\"\n",
            "rate_limits.limits.certificates_per_domain.period: must be at most 3650d",
        ),
        (
            "[[rate_limits.overrides]]\nlimit = \"new_orders_per_account\"\nkey = \" \"\ncount = 1\nperiod = \"1h\"\n",
            "rate_limits.overrides[0].key: must not be empty",
        ),
        (
            "[[rate_limits.overrides]]\nlimit = \"new_orders_per_account\"\nkey = \"example.com\"\ncount = 1\nperiod = \"1h\"\n",
            "rate_limits.overrides[0].key: \"example.com\" is not an account ID",
        ),
        (
            "[[rate_limits.overrides]]\nlimit = \"new_orders_per_account\"\nkey = \"1\"\ncount = 0\nperiod = \"1h\"\n",
            "rate_limits.overrides[0].count: must be at least 1",
        ),
        (
            "[[rate_limits.overrides]]\nlimit = \"new_orders_per_account\"\nkey = \"1\"\ncount = 1\nburst = 0\nperiod = \"1h\"\n",
            "rate_limits.overrides[0].burst: must be at least 1",
        ),
        (
            "[[rate_limits.overrides]]\nlimit = \"new_orders_per_account\"\nkey = \"1\"\ncount = 1\nperiod = \"0ms\"\n",
            "rate_limits.overrides[0].period: must be more than 0",
        ),
        (
            "[[rate_limits.overrides]]\nlimit = \"new_accounts_per_ip\"\nkey = \"2001:db8::1\"\ncount = 1\nperiod = \"1h\"\n\
             [[rate_limits.overrides]]\nlimit = \"new_accounts_per_ip\"\nkey = \"2001:DB8:0::1\"\ncount = 2\nperiod = \"1h\"\n",
            "rate_limits.overrides[1]: a second override of new_accounts_per_ip for key 2001:db8::1",
        ),
        (
            "[rate_limits]\nbackend = \"redis\"\n",
            "rate_limits.redis_url: required when backend = \"redis\"",
        ),
        (
            "[rate_limits]\nbackend = \"redis\"\nredis_url = \"http://:secret@h\"\n",
            "rate_limits.redis_url: must start with redis://",
        ),
        (
            "[rate_limits]\nbackend = \"redis\"\nredis_url = \"redis://h:99999\"\n",
            "rate_limits.redis_url: the port must be a number from 1 to 65535",
        ),
        (
            "[rate_limits]\nredis_timeout = \"0ms\"\n",
            "rate_limits.redis_timeout: must be more than 0",
        ),
        (
            "[rate_limits]\nkey_prefix = \"\"\n",
            "rate_limits.key_prefix: must not be empty",
        ),
    ];
    for (text, want) in cases {
        let config = parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
        let err = Limiter::new(&config).unwrap_err();
        assert_eq!(err, want, "{text}");
        assert!(!err.contains("secret"));
    }
}

#[test]
fn a_redis_url_is_not_needed_for_memory() {
    let config = parse("[rate_limits]\nbackend = \"memory\"\nredis_url = \"nonsense\"\n").unwrap();
    // Ignored by the memory backend, so a config can switch back and forth.
    Limiter::new(&config).unwrap();
}
