//! A pool of unused nonces (RFC 8555 §6.5): every response carries a fresh
//! `Replay-Nonce`, so a busy client almost never needs `newNonce`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::MutexGuard;

/// Unused nonces, newest first out. Bounded: when full, the oldest (the likeliest
/// to have expired on the server) is dropped.
#[derive(Debug)]
pub struct NoncePool {
    nonces: Mutex<VecDeque<String>>,
    capacity: usize,
}

impl NoncePool {
    /// An empty pool holding at most `capacity` nonces (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            nonces: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        }
    }

    /// Keeps `nonce` for a later request.
    pub fn push(&self, nonce: String) {
        let mut nonces = self.lock();
        if nonces.len() == self.capacity {
            nonces.pop_front();
        }
        nonces.push_back(nonce);
    }

    /// The newest unused nonce, if any; it is gone from the pool.
    pub fn pop(&self) -> Option<String> {
        self.lock().pop_back()
    }

    /// How many nonces the pool holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<String>> {
        // A panic while holding the lock cannot leave a VecDeque half-updated.
        self.nonces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_come_back_newest_first_and_once() {
        let pool = NoncePool::new(8);
        assert!(pool.is_empty());
        assert_eq!(pool.pop(), None);
        pool.push("a".to_owned());
        pool.push("b".to_owned());
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.pop().as_deref(), Some("b"));
        assert_eq!(pool.pop().as_deref(), Some("a"));
        assert_eq!(pool.pop(), None);
    }

    #[test]
    fn a_full_pool_drops_its_oldest_nonce() {
        let pool = NoncePool::new(2);
        for nonce in ["1", "2", "3"] {
            pool.push(nonce.to_owned());
        }
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.pop().as_deref(), Some("3"));
        assert_eq!(pool.pop().as_deref(), Some("2"));
        assert!(pool.is_empty());
    }

    #[test]
    fn a_zero_capacity_still_keeps_one() {
        let pool = NoncePool::new(0);
        pool.push("x".to_owned());
        pool.push("y".to_owned());
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.pop().as_deref(), Some("y"));
    }
}
