//! The status feed: follows the SA's record of status changes
//! ([`RevocationLookup::status_changes`]) so that the responder can serve its cached
//! responses without reading the SA on every request, and the CRL updater can
//! regenerate the shards a revocation touches.
//!
//! Every `interval` the feed asks for the changes written since a little before its
//! last successful poll, and hands on those it has not handed on already. The SA
//! stores change times in whole seconds, and a write whose transaction started in
//! one second may commit after a poll has read that second, so the feed asks again
//! from [`COMMIT_MARGIN`] before the last poll, and keeps handing on a change until
//! a poll that began well after the change's second has read it: two writes to one
//! serial in the same second (a revocation, then a re-revocation for keyCompromise)
//! look alike, and the second must not be mistaken for the first.
//!
//! Listeners ([`StatusFeed::listen`]) are called on the polling task, before the
//! feed counts the poll as done, so that by the time [`StatusFeed::is_current`]
//! says the feed is current every change it read has been acted on. Subscribers
//! ([`StatusFeed::subscribe`]) get the same events through a channel.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::AtomicI64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use basalt_core::CertStatus;
use basalt_core::Clock;
use basalt_core::Error;
use basalt_core::RevocationLookup;
use basalt_core::Serial;
use basalt_core::StatusChange;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use tracing::debug;
use tracing::warn;

/// How far before its last successful poll the feed asks from: longer than a
/// status write stays uncommitted.
pub const COMMIT_MARGIN: Duration = Duration::from_secs(2);

/// The most changes asked for at once (the SA's limit).
const PAGE: u32 = 10_000;

/// The most pages read in one poll before the rest waits for the next.
const MAX_PAGES: usize = 100;

/// How many events a subscriber may fall behind before it is told it lagged.
const CHANNEL_CAPACITY: usize = 256;

/// How often the feed polls and how old its last poll may be before it stops
/// counting as current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedSettings {
    /// Time between polls.
    pub interval: Duration,
    /// How long after its last successful poll the feed still counts as current:
    /// past it the responder reads the SA on every request again.
    pub max_staleness: Duration,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            max_staleness: Duration::from_secs(10),
        }
    }
}

/// What one poll found.
#[derive(Clone, Debug)]
pub enum FeedEvent {
    /// Status changes not handed on before, oldest first.
    Changes(Arc<[StatusChange]>),
    /// Changes were missed (more than a page of them in one second): treat every
    /// serial as changed.
    Gap,
}

type Listener = Box<dyn Fn(&FeedEvent) + Send + Sync>;

/// Polls the SA for status changes; see the module documentation.
pub struct StatusFeed {
    sa: Arc<dyn RevocationLookup>,
    clock: Arc<dyn Clock>,
    settings: FeedSettings,
    sender: broadcast::Sender<FeedEvent>,
    listeners: Mutex<Vec<Listener>>,
    state: Mutex<State>,
    /// When the last successful poll began, in Unix milliseconds (`i64::MIN`: never).
    last_success: AtomicI64,
}

struct State {
    /// Where the next poll starts reading.
    since: OffsetDateTime,
    /// Changes already handed on, with whether they are settled: read by a poll
    /// that began after their second was over and committed, so never handed on
    /// again. Forgotten once before `since`.
    seen: HashMap<ChangeKey, bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ChangeKey {
    serial: Serial,
    status: CertStatus,
    changed_at: i64,
}

impl StatusFeed {
    /// A feed over `sa`'s status changes from now on; nothing is read until
    /// [`StatusFeed::spawn`].
    pub fn new(
        sa: Arc<dyn RevocationLookup>,
        clock: Arc<dyn Clock>,
        settings: FeedSettings,
    ) -> Arc<Self> {
        let since = clock.now() - COMMIT_MARGIN;
        let (sender, _) = broadcast::channel(CHANNEL_CAPACITY);
        Arc::new(Self {
            sa,
            clock,
            settings,
            sender,
            listeners: Mutex::default(),
            state: Mutex::new(State {
                since,
                seen: HashMap::new(),
            }),
            last_success: AtomicI64::new(i64::MIN),
        })
    }

    /// The feed's settings.
    pub fn settings(&self) -> FeedSettings {
        self.settings
    }

    /// A receiver of every event from now on. A receiver that falls behind gets
    /// `RecvError::Lagged`, which means the same as [`FeedEvent::Gap`].
    pub fn subscribe(&self) -> broadcast::Receiver<FeedEvent> {
        self.sender.subscribe()
    }

    /// Calls `listener` with every event, on the polling task, before the poll
    /// that read it counts as done. It must be quick and must not block.
    pub fn listen(&self, listener: impl Fn(&FeedEvent) + Send + Sync + 'static) {
        lock(&self.listeners).push(Box::new(listener));
    }

    /// Whether the last successful poll began less than `max_staleness` ago.
    pub fn is_current(&self) -> bool {
        let last = self.last_success.load(Ordering::Acquire);
        if last == i64::MIN {
            return false;
        }
        let max = i64::try_from(self.settings.max_staleness.as_millis()).unwrap_or(i64::MAX);
        unix_millis(self.clock.now()).saturating_sub(last) < max
    }

    /// Starts polling on the current Tokio runtime, every `interval`, for as long as
    /// the runtime runs.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let feed = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(feed.settings.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                ticks.tick().await;
                match feed.poll().await {
                    Ok(()) if failing => {
                        failing = false;
                        warn!("status feed: polling the SA works again");
                    }
                    Ok(()) => {}
                    Err(err) => {
                        if !failing {
                            warn!(error = %err, "status feed: cannot poll the SA; answers read the SA until it can");
                        }
                        failing = true;
                    }
                }
            }
        })
    }

    /// Reads the changes since the last successful poll (less the margin), hands on
    /// those not handed on before, and counts the poll as done.
    pub async fn poll(&self) -> Result<(), Error> {
        let started = self.clock.now();
        let mut since = lock(&self.state).since;
        let mut fresh = Vec::new();
        let mut gap = false;
        for _ in 0..MAX_PAGES {
            let page = self.sa.status_changes(since, PAGE).await?;
            let full = page.len() >= PAGE as usize;
            let newest = page.last().map(|change| change.changed_at);
            fresh.extend(self.unseen(page, started));
            match newest {
                Some(newest) if full => {
                    // Everything of `newest`'s second may not have fit: read from it
                    // again, or past it when the whole page was that one second.
                    since = if newest > since {
                        newest
                    } else {
                        warn!(second = %newest, "status feed: more changes in one second than a page holds");
                        gap = true;
                        newest + Duration::from_secs(1)
                    };
                }
                _ => break,
            }
        }
        if !fresh.is_empty() {
            debug!(changes = fresh.len(), "status feed: changes read");
            self.publish(FeedEvent::Changes(fresh.into()));
        }
        if gap {
            self.publish(FeedEvent::Gap);
        }
        {
            let mut state = lock(&self.state);
            state.since = started - COMMIT_MARGIN;
            let horizon = unix_seconds(state.since);
            state.seen.retain(|key, _| key.changed_at >= horizon);
        }
        self.last_success
            .store(unix_millis(started), Ordering::Release);
        Ok(())
    }

    /// The changes of `page` to hand on, marking them seen: settled once a poll
    /// that `started` after their second, and the commit margin, has read them.
    fn unseen(&self, page: Vec<StatusChange>, started: OffsetDateTime) -> Vec<StatusChange> {
        let settled_before = unix_seconds(started - COMMIT_MARGIN) - 1;
        let mut state = lock(&self.state);
        page.into_iter()
            .filter(|change| {
                let key = ChangeKey {
                    serial: change.serial.clone(),
                    status: change.status,
                    changed_at: unix_seconds(change.changed_at),
                };
                let settled = key.changed_at <= settled_before;
                match state.seen.insert(key, settled) {
                    Some(true) => false,
                    Some(false) | None => true,
                }
            })
            .collect()
    }

    fn publish(&self, event: FeedEvent) {
        for listener in lock(&self.listeners).iter() {
            listener(&event);
        }
        // No subscriber is not an error: the CRL updater is optional.
        let _ = self.sender.send(event);
    }
}

fn unix_seconds(at: OffsetDateTime) -> i64 {
    at.unix_timestamp()
}

fn unix_millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update under these locks is a few infallible map or vector operations,
    // so a poisoned lock still holds consistent data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::AtomicBool;

    use basalt_core::CrlPlacement;
    use basalt_core::FixedClock;
    use basalt_core::RevocationStatus;
    use basalt_core::RevokedEntry;
    use time::macros::datetime;

    use super::*;

    const START: OffsetDateTime = datetime!(2026-01-01 00:00:00.300 UTC);

    /// An SA holding status changes, answering `status_changes` as the real one
    /// does (at or after `since`, by time then serial, up to `limit`); or failing.
    #[derive(Default)]
    pub(crate) struct Changes {
        rows: Mutex<Vec<StatusChange>>,
        down: AtomicBool,
    }

    impl Changes {
        /// Records that `serial` got `status` at `at` (kept in whole seconds).
        pub(crate) fn write(&self, serial: &str, status: CertStatus, at: OffsetDateTime) {
            self.write_for(serial, status, at, vec![7; 20]);
        }

        /// As [`Changes::write`], for a certificate of the issuer whose key hash
        /// is `issuer_key_hash`.
        pub(crate) fn write_for(
            &self,
            serial: &str,
            status: CertStatus,
            at: OffsetDateTime,
            issuer_key_hash: Vec<u8>,
        ) {
            let changed_at = OffsetDateTime::from_unix_timestamp(at.unix_timestamp()).unwrap();
            let mut rows = lock(&self.rows);
            rows.retain(|row| row.serial.to_string() != serial);
            rows.push(StatusChange {
                serial: serial.parse().unwrap(),
                status,
                changed_at,
                placement: Some(CrlPlacement {
                    issuer_key_hash,
                    shard: Some(1),
                }),
            });
        }
    }

    #[async_trait::async_trait]
    impl RevocationLookup for Changes {
        async fn revocation_status(&self, _: &Serial) -> Result<RevocationStatus, Error> {
            Err(Error::internal("unused"))
        }

        async fn revoked_certificates(
            &self,
            _: &[u8],
            _: u32,
            _: OffsetDateTime,
        ) -> Result<Vec<RevokedEntry>, Error> {
            Err(Error::internal("unused"))
        }

        async fn status_changes(
            &self,
            since: OffsetDateTime,
            limit: u32,
        ) -> Result<Vec<StatusChange>, Error> {
            if self.down.load(Ordering::SeqCst) {
                return Err(Error::unavailable("sa down"));
            }
            let mut rows: Vec<StatusChange> = lock(&self.rows)
                .iter()
                .filter(|row| row.changed_at >= since)
                .cloned()
                .collect();
            rows.sort_by(|a, b| {
                (a.changed_at, a.serial.to_string()).cmp(&(b.changed_at, b.serial.to_string()))
            });
            rows.truncate(limit as usize);
            Ok(rows)
        }
    }

    /// A feed over `sa` with a listener recording what it is told.
    fn feed(
        sa: &Arc<Changes>,
        clock: &FixedClock,
    ) -> (Arc<StatusFeed>, Arc<Mutex<Vec<FeedEvent>>>) {
        let feed = StatusFeed::new(sa.clone(), Arc::new(clock.clone()), FeedSettings::default());
        let heard = Arc::new(Mutex::new(Vec::new()));
        let log = heard.clone();
        feed.listen(move |event| lock(&log).push(event.clone()));
        (feed, heard)
    }

    /// The serials of the changes heard since the last call, in order.
    fn heard(log: &Mutex<Vec<FeedEvent>>) -> Vec<String> {
        lock(log)
            .drain(..)
            .flat_map(|event| match event {
                FeedEvent::Changes(changes) => changes
                    .iter()
                    .map(|change| format!("{}:{}", change.serial, change.status.as_str()))
                    .collect(),
                FeedEvent::Gap => vec!["gap".to_owned()],
            })
            .collect()
    }

    #[tokio::test]
    async fn changes_are_handed_on_until_their_second_is_settled() {
        let sa = Arc::new(Changes::default());
        let clock = FixedClock::new(START);
        let (feed, log) = feed(&sa, &clock);
        let mut subscriber = feed.subscribe();
        assert!(!feed.is_current(), "not current before its first poll");

        sa.write("01", CertStatus::Good, START);
        feed.poll().await.unwrap();
        assert!(feed.is_current());
        assert_eq!(heard(&log), ["01:good"]);
        let Ok(FeedEvent::Changes(changes)) = subscriber.try_recv() else {
            panic!("the subscriber did not get the changes");
        };
        assert_eq!(changes.len(), 1);

        // In the same second: revoked, then (re-revoked) again. Each poll that may
        // not have seen the second's last write hands the change on again.
        clock.advance(time::Duration::milliseconds(200));
        sa.write("01", CertStatus::Revoked, START);
        feed.poll().await.unwrap();
        assert_eq!(heard(&log), ["01:revoked"]);
        clock.advance(time::Duration::seconds(1));
        feed.poll().await.unwrap();
        assert_eq!(
            heard(&log),
            ["01:revoked"],
            "a same-second write may have followed"
        );
        // Once a poll began COMMIT_MARGIN after the second was over, it is settled:
        // handed on a last time, then never again.
        clock.advance(time::Duration::seconds(3));
        feed.poll().await.unwrap();
        assert_eq!(heard(&log), ["01:revoked"]);
        clock.advance(time::Duration::seconds(1));
        feed.poll().await.unwrap();
        assert!(heard(&log).is_empty());

        // A write that commits late, dated a second before the last poll, is
        // still found.
        let late = clock.now() - time::Duration::seconds(1);
        sa.write("02", CertStatus::Good, late);
        clock.advance(time::Duration::seconds(1));
        feed.poll().await.unwrap();
        assert_eq!(heard(&log), ["02:good"]);
    }

    #[tokio::test]
    async fn a_failing_sa_makes_the_feed_stale_and_loses_nothing() {
        let sa = Arc::new(Changes::default());
        let clock = FixedClock::new(START);
        let (feed, log) = feed(&sa, &clock);
        feed.poll().await.unwrap();
        assert!(feed.is_current());

        sa.down.store(true, Ordering::SeqCst);
        for _ in 0..12 {
            clock.advance(time::Duration::seconds(1));
            sa.write("03", CertStatus::Revoked, clock.now());
            assert!(feed.poll().await.is_err());
        }
        assert!(!feed.is_current(), "past max_staleness without a poll");
        let revoked_at = clock.now() - time::Duration::seconds(11);
        sa.write("04", CertStatus::Revoked, revoked_at);

        sa.down.store(false, Ordering::SeqCst);
        feed.poll().await.unwrap();
        assert!(feed.is_current());
        assert_eq!(heard(&log), ["04:revoked", "03:revoked"]);
    }

    #[tokio::test]
    async fn more_changes_than_a_page_are_read_in_pages() {
        let sa = Arc::new(Changes::default());
        let clock = FixedClock::new(START);
        let (feed, log) = feed(&sa, &clock);
        // PAGE + 5 changes over three seconds.
        let total = PAGE as usize + 5;
        for index in 0..total {
            let at = START + time::Duration::seconds((index % 3) as i64);
            sa.write(&format!("{:06x}", index + 1), CertStatus::Good, at);
        }
        clock.advance(time::Duration::seconds(3));
        feed.poll().await.unwrap();
        let mut serials = heard(&log);
        serials.sort();
        serials.dedup();
        assert_eq!(serials.len(), total);
        assert!(!serials.contains(&"gap".to_owned()));
    }

    #[tokio::test]
    async fn more_changes_in_one_second_than_a_page_is_a_gap() {
        let sa = Arc::new(Changes::default());
        let clock = FixedClock::new(START);
        let (feed, log) = feed(&sa, &clock);
        for index in 0..=PAGE as usize {
            sa.write(&format!("{:06x}", index + 1), CertStatus::Good, START);
        }
        feed.poll().await.unwrap();
        assert_eq!(heard(&log).last().map(String::as_str), Some("gap"));
        assert!(feed.is_current());
    }
}
