//! Pre-signed responses, kept in memory so that repeated requests about an unchanged
//! certificate reach neither the CA nor the SA.
//!
//! Each entry remembers the status it was signed for, and whether it is *trusted*:
//! known to state the SA's current status as long as the status feed
//! ([`crate::StatusFeed`]) reports no change for its serial. A trusted entry is
//! served without reading the SA while the feed is current; the feed's listener
//! distrusts the entries of every serial that changes
//! ([`ResponseCache::invalidate`]), so that the next request reads the SA.
//!
//! An entry is stored trusted only if no change of its serial was reported between
//! the SA read it was signed for and its storing: each serial falls in one of
//! [`BUCKETS`] buckets whose epoch every invalidation bumps, and the caller passes
//! the epoch it saw before reading the SA. Otherwise a response signed for the
//! status read just before a revocation could be stored just after the
//! revocation's invalidation, and served as good until its refresh.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::hash::RandomState;
use std::sync::Mutex;
use std::sync::PoisonError;

use basalt_core::CertIdHash;
use basalt_core::OcspStatus;
use basalt_core::RevocationReason;
use basalt_core::Serial;
use time::OffsetDateTime;

use crate::responder::SignedResponse;

/// How many epochs serials share: enough that a change of one serial seldom
/// costs another serial its trust.
const BUCKETS: usize = 1024;

/// Which response an entry holds: one per issuer, serial and CertID hash, since
/// the response repeats the request's CertID.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    /// The SHA-1 key hash of the issuer that signs the response.
    pub(crate) issuer_key_hash: Vec<u8>,
    /// The certificate's serial.
    pub(crate) serial: Serial,
    /// The CertID hash of the response.
    pub(crate) hash_algorithm: CertIdHash,
}

/// The status a response states: the SA's view when it was signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SignedFor {
    /// good, revoked or unknown.
    pub(crate) status: OcspStatus,
    /// The revocation time, when revoked.
    pub(crate) revoked_at: Option<OffsetDateTime>,
    /// The revocation reason, when revoked with one.
    pub(crate) reason: Option<RevocationReason>,
}

/// What had been invalidated when a caller read the SA: compared with the
/// epoch at storing time to tell whether the read may be stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Epoch {
    generation: u64,
    bucket: u64,
}

/// A bounded map of signed responses; when full, the entry stored longest ago
/// makes room.
pub(crate) struct ResponseCache {
    capacity: usize,
    hasher: RandomState,
    inner: Mutex<Inner>,
}

struct Inner {
    entries: HashMap<CacheKey, Entry>,
    /// Entries by the order they were stored in, oldest first.
    order: BTreeMap<u64, CacheKey>,
    next_sequence: u64,
    /// Bumped when everything is invalidated at once.
    generation: u64,
    /// Bumped when a serial of the bucket is invalidated.
    buckets: Vec<u64>,
}

struct Entry {
    response: SignedResponse,
    signed_for: SignedFor,
    sequence: u64,
    trusted: bool,
    /// Whether it was served since it was stored: only those are worth signing
    /// again before their refresh point.
    served: bool,
}

impl ResponseCache {
    /// A cache of at most `capacity` responses; 0 keeps none.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            hasher: RandomState::new(),
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: BTreeMap::new(),
                next_sequence: 0,
                generation: 0,
                buckets: vec![0; BUCKETS],
            }),
        }
    }

    /// The epoch of `serial` now: take it before reading the SA about the serial.
    pub(crate) fn epoch(&self, serial: &Serial) -> Epoch {
        let bucket = self.bucket(serial);
        let inner = self.lock();
        inner.epoch(bucket)
    }

    /// The response stored under `key` if it is trusted and `now` is before its
    /// refresh point: what may be served without reading the SA.
    pub(crate) fn trusted(&self, key: &CacheKey, now: OffsetDateTime) -> Option<SignedResponse> {
        let mut inner = self.lock();
        let entry = inner.entries.get_mut(key)?;
        if !entry.trusted || now >= refresh_point(&entry.response) {
            return None;
        }
        entry.served = true;
        Some(entry.response.clone())
    }

    /// The response stored under `key`, if it was signed for `signed_for` (the
    /// status just read from the SA, at `read`) and `now` is before its refresh
    /// point. The entry becomes trusted if nothing about its serial was
    /// invalidated since `read`.
    pub(crate) fn fresh(
        &self,
        key: &CacheKey,
        signed_for: &SignedFor,
        now: OffsetDateTime,
        read: Epoch,
    ) -> Option<SignedResponse> {
        let bucket = self.bucket(&key.serial);
        let mut inner = self.lock();
        let unchanged = inner.epoch(bucket) == read;
        let entry = inner.entries.get_mut(key)?;
        if entry.signed_for != *signed_for || now >= refresh_point(&entry.response) {
            return None;
        }
        entry.trusted |= unchanged;
        entry.served = true;
        Some(entry.response.clone())
    }

    /// Stores `response`, signed for the status read from the SA at `read`, under
    /// `key`, replacing what was there and evicting the oldest entries beyond the
    /// capacity. It is trusted if nothing about its serial was invalidated since
    /// `read`.
    pub(crate) fn store(
        &self,
        key: CacheKey,
        signed_for: SignedFor,
        response: SignedResponse,
        read: Epoch,
    ) {
        if self.capacity == 0 {
            return;
        }
        let bucket = self.bucket(&key.serial);
        let mut inner = self.lock();
        let trusted = inner.epoch(bucket) == read;
        let sequence = inner.next_sequence;
        inner.next_sequence += 1;
        inner.order.insert(sequence, key.clone());
        let entry = Entry {
            response,
            signed_for,
            sequence,
            trusted,
            served: false,
        };
        if let Some(replaced) = inner.entries.insert(key, entry) {
            inner.order.remove(&replaced.sequence);
        }
        while inner.entries.len() > self.capacity {
            let Some((_, oldest)) = inner.order.pop_first() else {
                break;
            };
            inner.entries.remove(&oldest);
        }
    }

    /// Distrusts the entries under `keys`, all about `serial`, whose status
    /// changed, and bumps the serial's epoch so that no response read before now is
    /// stored as trusted. They stay: the next read finds whether they still state
    /// the status (a change may be reported more than once), and trusts them again
    /// or has them signed anew. Returns the keys of the entries that state
    /// another status than `now`, the serial's new one: those to sign again.
    pub(crate) fn invalidate<'k>(
        &self,
        serial: &Serial,
        keys: impl IntoIterator<Item = &'k CacheKey>,
        now: OcspStatus,
    ) -> Vec<CacheKey> {
        let bucket = self.bucket(serial);
        let mut inner = self.lock();
        inner.buckets[bucket] += 1;
        let mut wrong = Vec::new();
        for key in keys {
            debug_assert_eq!(&key.serial, serial);
            if let Some(entry) = inner.entries.get_mut(key) {
                entry.trusted = false;
                if entry.signed_for.status != now {
                    wrong.push(key.clone());
                }
            }
        }
        wrong
    }

    /// Distrusts every entry and bumps every epoch: for when changes may have
    /// been missed.
    pub(crate) fn invalidate_all(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        for entry in inner.entries.values_mut() {
            entry.trusted = false;
        }
    }

    /// Whether a response is stored under `key`, trusted or not.
    pub(crate) fn contains(&self, key: &CacheKey) -> bool {
        self.lock().entries.contains_key(key)
    }

    /// Up to `limit` keys of served entries whose refresh point is at or before
    /// `horizon`, those due first: what to sign again before anyone must wait.
    pub(crate) fn due(&self, horizon: OffsetDateTime, limit: usize) -> Vec<CacheKey> {
        let inner = self.lock();
        let mut due: Vec<(OffsetDateTime, &CacheKey)> = inner
            .entries
            .iter()
            .filter(|(_, entry)| entry.served)
            .map(|(key, entry)| (refresh_point(&entry.response), key))
            .filter(|(at, _)| *at <= horizon)
            .collect();
        due.sort_by_key(|(at, _)| *at);
        due.into_iter()
            .take(limit)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// How many responses are stored.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    fn bucket(&self, serial: &Serial) -> usize {
        // The remainder is below BUCKETS, so it fits a usize.
        (self.hasher.hash_one(serial) % BUCKETS as u64) as usize
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the maps consistent (each update
        // is a few infallible map operations), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn epoch(&self, bucket: usize) -> Epoch {
        Epoch {
            generation: self.generation,
            bucket: self.buckets[bucket],
        }
    }
}

/// When a response is re-signed although its status is unchanged: half way from
/// thisUpdate to nextUpdate, well before clients and caches must drop it; at once
/// when it has no nextUpdate.
fn refresh_point(response: &SignedResponse) -> OffsetDateTime {
    match response.next_update {
        Some(next_update) => response.this_update + (next_update - response.this_update) / 2,
        None => response.this_update,
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2025-03-01 12:00:00 UTC);

    fn key(serial: &str) -> CacheKey {
        CacheKey {
            issuer_key_hash: vec![1; 20],
            serial: serial.parse().unwrap(),
            hash_algorithm: CertIdHash::Sha1,
        }
    }

    fn response(tag: u8, hours: i64) -> SignedResponse {
        SignedResponse::new(vec![tag], NOW, Some(NOW + time::Duration::hours(hours)))
    }

    const GOOD: SignedFor = SignedFor {
        status: OcspStatus::Good,
        revoked_at: None,
        reason: None,
    };

    #[test]
    fn entries_are_served_while_status_and_time_allow() {
        let cache = ResponseCache::new(10);
        let read = cache.epoch(&key("01").serial);
        cache.store(key("01"), GOOD, response(1, 10), read);
        assert_eq!(
            cache.fresh(&key("01"), &GOOD, NOW, read).unwrap().der,
            vec![1]
        );
        let just_before = NOW + time::Duration::hours(5) - time::Duration::seconds(1);
        assert!(cache.fresh(&key("01"), &GOOD, just_before, read).is_some());
        assert!(
            cache
                .fresh(&key("01"), &GOOD, NOW + time::Duration::hours(5), read)
                .is_none()
        );
        let revoked = SignedFor {
            status: OcspStatus::Revoked,
            revoked_at: Some(NOW),
            reason: None,
        };
        assert!(
            cache
                .fresh(&key("01"), &revoked, NOW, cache.epoch(&key("01").serial))
                .is_none()
        );
        assert!(
            cache
                .fresh(&key("02"), &GOOD, NOW, cache.epoch(&key("02").serial))
                .is_none()
        );
        let sha256 = CacheKey {
            hash_algorithm: CertIdHash::Sha256,
            ..key("01")
        };
        assert!(
            cache
                .fresh(&sha256, &GOOD, NOW, cache.epoch(&key("01").serial))
                .is_none()
        );
        // A newer signature replaces the entry.
        cache.store(
            key("01"),
            revoked,
            response(2, 10),
            cache.epoch(&key("01").serial),
        );
        assert_eq!(
            cache
                .fresh(&key("01"), &revoked, NOW, cache.epoch(&key("01").serial))
                .unwrap()
                .der,
            vec![2]
        );
        assert!(
            cache
                .fresh(&key("01"), &GOOD, NOW, cache.epoch(&key("01").serial))
                .is_none()
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_oldest_entries_make_room() {
        let cache = ResponseCache::new(2);
        cache.store(
            key("01"),
            GOOD,
            response(1, 10),
            cache.epoch(&key("01").serial),
        );
        cache.store(
            key("02"),
            GOOD,
            response(2, 10),
            cache.epoch(&key("02").serial),
        );
        // Re-storing 01 makes it the newest.
        cache.store(
            key("01"),
            GOOD,
            response(3, 10),
            cache.epoch(&key("01").serial),
        );
        cache.store(
            key("03"),
            GOOD,
            response(4, 10),
            cache.epoch(&key("03").serial),
        );
        assert_eq!(cache.len(), 2);
        assert!(
            cache
                .fresh(&key("02"), &GOOD, NOW, cache.epoch(&key("02").serial))
                .is_none()
        );
        assert_eq!(
            cache
                .fresh(&key("01"), &GOOD, NOW, cache.epoch(&key("01").serial))
                .unwrap()
                .der,
            vec![3]
        );
        assert_eq!(
            cache
                .fresh(&key("03"), &GOOD, NOW, cache.epoch(&key("03").serial))
                .unwrap()
                .der,
            vec![4]
        );
    }

    #[test]
    fn only_entries_stored_without_an_invalidation_in_between_are_trusted() {
        let cache = ResponseCache::new(10);
        let one = key("01");
        // Stored with no invalidation since the read: trusted.
        cache.store(one.clone(), GOOD, response(1, 10), cache.epoch(&one.serial));
        assert_eq!(cache.trusted(&one, NOW).unwrap().der, vec![1]);
        // Past its refresh point it is not served without a fresh read.
        assert!(
            cache
                .trusted(&one, NOW + time::Duration::hours(5))
                .is_none()
        );

        // A revocation reported between the read and the storing: kept, but only
        // served after a read confirms its status.
        let read = cache.epoch(&one.serial);
        cache.invalidate(&one.serial, [&one], OcspStatus::Good);
        assert!(cache.trusted(&one, NOW).is_none());
        cache.store(one.clone(), GOOD, response(2, 10), read);
        assert!(cache.trusted(&one, NOW).is_none());
        assert_eq!(cache.len(), 1);
        // A read that still finds it good, with nothing invalidated since, trusts it.
        let confirmed = cache.epoch(&one.serial);
        assert_eq!(
            cache.fresh(&one, &GOOD, NOW, confirmed).unwrap().der,
            vec![2]
        );
        assert_eq!(cache.trusted(&one, NOW).unwrap().der, vec![2]);

        // Other serials keep their trust through an invalidation of this one,
        // unless it is of everything.
        let two = key("02");
        cache.store(two.clone(), GOOD, response(3, 10), cache.epoch(&two.serial));
        cache.invalidate(&one.serial, [&one], OcspStatus::Good);
        assert!(cache.trusted(&one, NOW).is_none());
        assert_eq!(cache.trusted(&two, NOW).unwrap().der, vec![3]);
        let read = cache.epoch(&two.serial);
        cache.invalidate_all();
        assert!(cache.trusted(&two, NOW).is_none());
        assert_eq!(cache.len(), 2, "distrusted, not dropped");
        cache.store(two.clone(), GOOD, response(4, 10), read);
        assert!(cache.trusted(&two, NOW).is_none());
    }

    #[test]
    fn served_entries_nearing_their_refresh_point_are_due() {
        let cache = ResponseCache::new(10);
        for (serial, hours) in [("01", 10), ("02", 4), ("03", 2)] {
            let key = key(serial);
            let read = cache.epoch(&key.serial);
            cache.store(key, GOOD, response(1, hours), read);
        }
        // Nothing was served yet.
        assert!(cache.due(NOW + time::Duration::hours(10), 10).is_empty());
        for serial in ["01", "02", "03"] {
            assert!(cache.trusted(&key(serial), NOW).is_some());
        }
        // Refresh points: 01 at +5 h, 02 at +2 h, 03 at +1 h.
        assert_eq!(
            cache.due(NOW + time::Duration::hours(2), 10),
            vec![key("03"), key("02")]
        );
        assert_eq!(
            cache.due(NOW + time::Duration::hours(9), 1),
            vec![key("03")]
        );
        assert!(cache.due(NOW, 10).is_empty());
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let cache = ResponseCache::new(0);
        cache.store(
            key("01"),
            GOOD,
            response(1, 10),
            cache.epoch(&key("01").serial),
        );
        assert_eq!(cache.len(), 0);
        assert!(
            cache
                .fresh(&key("01"), &GOOD, NOW, cache.epoch(&key("01").serial))
                .is_none()
        );
    }

    #[test]
    fn a_response_without_next_update_is_always_due() {
        let cache = ResponseCache::new(2);
        let once = SignedResponse::new(vec![1], NOW, None);
        cache.store(key("01"), GOOD, once, cache.epoch(&key("01").serial));
        assert!(
            cache
                .fresh(&key("01"), &GOOD, NOW, cache.epoch(&key("01").serial))
                .is_none()
        );
    }
}
