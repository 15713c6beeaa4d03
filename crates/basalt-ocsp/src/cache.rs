//! Pre-signed responses, kept in memory so that repeated requests about an unchanged
//! certificate never reach the CA.
//!
//! Each entry remembers the status it was signed for. The responder still reads the
//! status from the SA on every request (a cheap indexed read) and serves the entry
//! only while that status is the SA's and the entry is not due for refresh, so a
//! revocation is answered, newly signed, on the very next request.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::PoisonError;

use basalt_core::CertIdHash;
use basalt_core::OcspStatus;
use basalt_core::RevocationReason;
use basalt_core::Serial;
use time::OffsetDateTime;

use crate::responder::SignedResponse;

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

/// A bounded map of signed responses; when full, the entry stored longest ago
/// makes room.
pub(crate) struct ResponseCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<CacheKey, Entry>,
    /// Entries by the order they were stored in, oldest first.
    order: BTreeMap<u64, CacheKey>,
    next_sequence: u64,
}

struct Entry {
    response: SignedResponse,
    signed_for: SignedFor,
    sequence: u64,
}

impl ResponseCache {
    /// A cache of at most `capacity` responses; 0 keeps none.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }

    /// The response stored under `key`, if it was signed for `signed_for` and
    /// `now` is before its refresh point.
    pub(crate) fn fresh(
        &self,
        key: &CacheKey,
        signed_for: &SignedFor,
        now: OffsetDateTime,
    ) -> Option<SignedResponse> {
        let inner = self.lock();
        let entry = inner.entries.get(key)?;
        (entry.signed_for == *signed_for && now < refresh_point(&entry.response))
            .then(|| entry.response.clone())
    }

    /// Stores `response`, signed for `signed_for`, under `key`, replacing what was
    /// there and evicting the oldest entries beyond the capacity.
    pub(crate) fn store(&self, key: CacheKey, signed_for: SignedFor, response: SignedResponse) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        let sequence = inner.next_sequence;
        inner.next_sequence += 1;
        inner.order.insert(sequence, key.clone());
        let entry = Entry {
            response,
            signed_for,
            sequence,
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

    /// How many responses are stored.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the maps consistent (each update
        // is a few infallible map operations), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
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
        SignedResponse {
            der: vec![tag],
            this_update: NOW,
            next_update: Some(NOW + time::Duration::hours(hours)),
        }
    }

    const GOOD: SignedFor = SignedFor {
        status: OcspStatus::Good,
        revoked_at: None,
        reason: None,
    };

    #[test]
    fn entries_are_served_while_status_and_time_allow() {
        let cache = ResponseCache::new(10);
        cache.store(key("01"), GOOD, response(1, 10));
        assert_eq!(cache.fresh(&key("01"), &GOOD, NOW).unwrap().der, vec![1]);
        let just_before = NOW + time::Duration::hours(5) - time::Duration::seconds(1);
        assert!(cache.fresh(&key("01"), &GOOD, just_before).is_some());
        assert!(
            cache
                .fresh(&key("01"), &GOOD, NOW + time::Duration::hours(5))
                .is_none()
        );
        let revoked = SignedFor {
            status: OcspStatus::Revoked,
            revoked_at: Some(NOW),
            reason: None,
        };
        assert!(cache.fresh(&key("01"), &revoked, NOW).is_none());
        assert!(cache.fresh(&key("02"), &GOOD, NOW).is_none());
        let sha256 = CacheKey {
            hash_algorithm: CertIdHash::Sha256,
            ..key("01")
        };
        assert!(cache.fresh(&sha256, &GOOD, NOW).is_none());
        // A newer signature replaces the entry.
        cache.store(key("01"), revoked, response(2, 10));
        assert_eq!(cache.fresh(&key("01"), &revoked, NOW).unwrap().der, vec![2]);
        assert!(cache.fresh(&key("01"), &GOOD, NOW).is_none());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_oldest_entries_make_room() {
        let cache = ResponseCache::new(2);
        cache.store(key("01"), GOOD, response(1, 10));
        cache.store(key("02"), GOOD, response(2, 10));
        // Re-storing 01 makes it the newest.
        cache.store(key("01"), GOOD, response(3, 10));
        cache.store(key("03"), GOOD, response(4, 10));
        assert_eq!(cache.len(), 2);
        assert!(cache.fresh(&key("02"), &GOOD, NOW).is_none());
        assert_eq!(cache.fresh(&key("01"), &GOOD, NOW).unwrap().der, vec![3]);
        assert_eq!(cache.fresh(&key("03"), &GOOD, NOW).unwrap().der, vec![4]);
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let cache = ResponseCache::new(0);
        cache.store(key("01"), GOOD, response(1, 10));
        assert_eq!(cache.len(), 0);
        assert!(cache.fresh(&key("01"), &GOOD, NOW).is_none());
    }

    #[test]
    fn a_response_without_next_update_is_always_due() {
        let cache = ResponseCache::new(2);
        let mut once = response(1, 10);
        once.next_update = None;
        cache.store(key("01"), GOOD, once);
        assert!(cache.fresh(&key("01"), &GOOD, NOW).is_none());
    }
}
