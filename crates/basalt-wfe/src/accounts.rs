//! Accounts the WFE read recently, so that the several requests of one issuance
//! cost one account read, not one each.
//!
//! An entry lives for `account_cache_ttl` (default 5 s). Changes made through this
//! WFE (deactivation, contacts, key rollover) drop its entry at once; a change
//! made elsewhere (another WFE replica, `basalt admin`) is seen here within the
//! TTL, so a rolled-over key or a deactivated account may still authenticate a
//! request on another replica for that long. What such a request can do is
//! bounded: the RA reads the account itself before it creates an order,
//! validates a challenge or finalizes, and refuses one that is not valid, so a
//! stale entry lets through reads (POST-as-GET) and nothing that issues. Boulder's
//! WFE caches accounts the same way.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;
use std::time::Instant;

use basalt_core::Account;
use basalt_core::AccountId;

/// The most accounts kept; past it expired entries go, and if none had, all do.
const MAX_ENTRIES: usize = 10_000;

/// Recently read accounts, each good for the TTL.
#[derive(Debug)]
pub(crate) struct AccountCache {
    ttl: Duration,
    entries: Mutex<HashMap<AccountId, (Account, Instant)>>,
}

impl AccountCache {
    /// A cache keeping each account for `ttl`; zero keeps none.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::default(),
        }
    }

    /// The account, if it was read less than the TTL ago.
    pub(crate) fn get(&self, id: AccountId) -> Option<Account> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (account, read) = entries.get(&id)?;
        (read.elapsed() < self.ttl).then(|| account.clone())
    }

    /// Keeps `account`, just read from the SA.
    pub(crate) fn put(&self, account: &Account) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (_, read)| read.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(account.id, (account.clone(), Instant::now()));
    }

    /// Drops the account, changed through this WFE.
    pub(crate) fn forget(&self, id: AccountId) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use basalt_core::AccountStatus;

    use super::*;

    fn account(id: i64) -> Account {
        Account {
            id: AccountId(id),
            key_jwk: "{}".to_owned(),
            key_thumbprint: format!("thumbprint-{id}"),
            contacts: Vec::new(),
            status: AccountStatus::Valid,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn keeps_accounts_for_the_ttl_and_forgets_on_request() {
        let cache = AccountCache::new(Duration::from_secs(60));
        assert!(cache.get(AccountId(1)).is_none());
        cache.put(&account(1));
        assert_eq!(cache.get(AccountId(1)).unwrap().id, AccountId(1));
        assert!(cache.get(AccountId(2)).is_none());
        cache.forget(AccountId(1));
        assert!(cache.get(AccountId(1)).is_none());
    }

    #[test]
    fn entries_expire() {
        let cache = AccountCache::new(Duration::from_millis(20));
        let mut deactivated = account(3);
        deactivated.status = AccountStatus::Deactivated;
        cache.put(&deactivated);
        assert!(cache.get(AccountId(3)).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(cache.get(AccountId(3)).is_none());
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = AccountCache::new(Duration::ZERO);
        cache.put(&account(1));
        assert!(cache.get(AccountId(1)).is_none());
    }

    #[test]
    fn a_full_cache_makes_room() {
        let cache = AccountCache::new(Duration::from_secs(60));
        for id in 0..=MAX_ENTRIES as i64 {
            cache.put(&account(id));
        }
        assert!(cache.get(AccountId(MAX_ENTRIES as i64)).is_some());
        assert!(cache.entries.lock().unwrap().len() <= MAX_ENTRIES);
    }
}
