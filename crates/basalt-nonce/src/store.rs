//! The nonce store: random 128-bit nonces, each redeemable once before it expires.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;

use basalt_core::Clock;
use basalt_core::Error;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use ring::rand::SystemRandom;
use time::Duration;
use time::OffsetDateTime;

/// How many outstanding nonces [`NonceService::new`] keeps by default.
pub const DEFAULT_NONCE_CAPACITY: usize = 100_000;

/// How long a nonce stays redeemable by default.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::hours(1);

/// Issues and redeems nonces: 128 random bits, base64url, each good once.
///
/// Outstanding nonces are bounded: past `capacity` the oldest are forgotten (a client
/// holding one gets `badNonce` and retries with a fresh one, RFC 8555 §6.5).
pub struct NonceService {
    clock: Arc<dyn Clock>,
    rng: SystemRandom,
    lifetime: Duration,
    capacity: usize,
    state: Mutex<NonceState>,
}

#[derive(Default)]
struct NonceState {
    /// Outstanding nonces and when each expires.
    live: HashMap<String, OffsetDateTime>,
    /// Every nonce issued, oldest first; redeemed ones stay until they reach the front.
    issued: VecDeque<String>,
}

impl NonceService {
    /// A service keeping at most `capacity` nonces, each valid for `lifetime`.
    pub fn new(clock: Arc<dyn Clock>, capacity: usize, lifetime: Duration) -> Self {
        Self {
            clock,
            rng: SystemRandom::new(),
            lifetime,
            capacity: capacity.max(1),
            state: Mutex::new(NonceState::default()),
        }
    }

    /// A service with [`DEFAULT_NONCE_CAPACITY`] and [`DEFAULT_NONCE_LIFETIME`].
    pub fn with_defaults(clock: Arc<dyn Clock>) -> Self {
        Self::new(clock, DEFAULT_NONCE_CAPACITY, DEFAULT_NONCE_LIFETIME)
    }

    /// A fresh nonce.
    pub fn issue(&self) -> Result<String, Error> {
        let mut bytes = [0u8; 16];
        self.rng
            .fill(&mut bytes)
            .map_err(|_| Error::internal("the system random generator failed"))?;
        let nonce = URL_SAFE_NO_PAD.encode(bytes);
        let expires = self.clock.now() + self.lifetime;
        let mut state = self.lock();
        while state.issued.len() >= self.capacity {
            if let Some(oldest) = state.issued.pop_front() {
                state.live.remove(&oldest);
            }
        }
        state.live.insert(nonce.clone(), expires);
        state.issued.push_back(nonce.clone());
        Ok(nonce)
    }

    /// Whether `nonce` was issued here, has not expired and was not redeemed before.
    /// Either way it cannot be redeemed again.
    pub fn redeem(&self, nonce: &str) -> bool {
        let now = self.clock.now();
        let mut state = self.lock();
        match state.live.remove(nonce) {
            Some(expires) => now < expires,
            None => false,
        }
    }

    /// How many nonces are outstanding.
    pub fn outstanding(&self) -> usize {
        self.lock().live.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, NonceState> {
        // The state is two collections updated together under the lock; a panic while
        // holding it cannot leave them inconsistent in a way that matters for safety
        // (at worst a nonce is forgotten early), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for NonceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceService")
            .field("capacity", &self.capacity)
            .field("lifetime", &self.lifetime)
            .field("outstanding", &self.outstanding())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use basalt_core::FixedClock;

    use super::*;

    fn clock() -> FixedClock {
        FixedClock::new(OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap())
    }

    #[test]
    fn nonces_are_128_bit_base64url_and_single_use() {
        let service = NonceService::with_defaults(Arc::new(clock()));
        let nonce = service.issue().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&nonce).unwrap().len(), 16);
        assert_ne!(service.issue().unwrap(), nonce);
        assert!(service.redeem(&nonce));
        assert!(!service.redeem(&nonce), "a nonce was redeemed twice");
        assert!(!service.redeem("never-issued"));
    }

    #[test]
    fn nonces_expire() {
        let clock = clock();
        let service = NonceService::new(Arc::new(clock.clone()), 10, Duration::minutes(5));
        let nonce = service.issue().unwrap();
        let kept = service.issue().unwrap();
        clock.advance(Duration::minutes(4));
        assert!(service.redeem(&kept));
        clock.advance(Duration::minutes(1));
        assert!(!service.redeem(&nonce), "an expired nonce was accepted");
    }

    #[test]
    fn capacity_evicts_the_oldest() {
        let service = NonceService::new(Arc::new(clock()), 3, Duration::hours(1));
        let nonces: Vec<String> = (0..5).map(|_| service.issue().unwrap()).collect();
        assert_eq!(service.outstanding(), 3);
        assert!(!service.redeem(&nonces[0]));
        assert!(!service.redeem(&nonces[1]));
        for nonce in &nonces[2..] {
            assert!(service.redeem(nonce));
        }
        assert_eq!(service.outstanding(), 0);
    }
}
