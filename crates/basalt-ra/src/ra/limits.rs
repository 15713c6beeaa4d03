//! Where the RA spends, checks and refunds rate limits (basalt-ratelimit).
//!
//! - A new account spends the per-IP limits (and the IPv6 /48 one).
//! - A new order checks the failed-validations limit of each name, then spends the
//!   new-orders limit of the account and the certificates-per-domain and
//!   duplicate-certificate limits of its names, all or nothing. An ARI renewal
//!   (RFC 9773) inside the replaced certificate's window is exempt from all of
//!   these, as in Boulder: the CA asked for it.
//! - A failed validation spends the failed-validations limit of its name.
//! - An order that fails (the order cannot be stored, or issuance fails) gets its
//!   certificate limits back.
//!
//! A reused order spends nothing: it is the same order.

use std::net::IpAddr;

use basalt_core::AccountId;
use basalt_core::Error;
use basalt_core::Identifier;
use basalt_core::RateLimitOverride;
use basalt_ratelimit::Transaction;

use super::Inner;

impl Inner {
    /// Spends `transactions` (all or none); `rateLimited` when one is exhausted.
    pub(super) async fn spend_limits(&self, transactions: &[Transaction]) -> Result<(), Error> {
        match &self.limiter {
            Some(limiter) => count_decisions(
                transactions,
                limiter.spend(transactions, self.clock.now()).await,
            ),
            None => Ok(()),
        }
    }

    /// Whether `transactions` could be spent, spending nothing.
    pub(super) async fn check_limits(&self, transactions: &[Transaction]) -> Result<(), Error> {
        match &self.limiter {
            Some(limiter) => count_decisions(
                transactions,
                limiter.check(transactions, self.clock.now()).await,
            ),
            None => Ok(()),
        }
    }

    /// Gives back what [`Inner::spend_limits`] took.
    pub(super) async fn refund_limits(&self, transactions: &[Transaction]) {
        if let Some(limiter) = &self.limiter {
            limiter.refund(transactions, self.clock.now()).await;
        }
    }

    /// The limiter, or `Conflict` when the RA runs without one.
    fn limiter(&self) -> Result<&basalt_ratelimit::Limiter, Error> {
        self.limiter
            .as_ref()
            .ok_or_else(|| Error::conflict("rate limits are disabled in the RA's config"))
    }

    /// See [`basalt_core::RegistrationAuthority::add_rate_limit_override`].
    pub(super) async fn add_override(&self, limit: RateLimitOverride) -> Result<(), Error> {
        self.limiter()?.add_override(limit).await
    }

    /// See [`basalt_core::RegistrationAuthority::remove_rate_limit_override`].
    pub(super) async fn remove_override(&self, limit: &str, key: &str) -> Result<(), Error> {
        self.limiter()?.remove_override(limit, key).await
    }

    /// See [`basalt_core::RegistrationAuthority::rate_limit_overrides`].
    pub(super) async fn overrides(&self) -> Result<Vec<RateLimitOverride>, Error> {
        match &self.limiter {
            Some(limiter) => limiter.overrides().await,
            None => Ok(Vec::new()),
        }
    }
}

/// Counts the limiter's `decision` on `transactions` in the
/// `rate_limit_decisions` metric, and returns it: every limit allowed, or the
/// limit the refusal names (its detail ends with the limit's name in
/// parentheses) denied.
fn count_decisions(transactions: &[Transaction], decision: Result<(), Error>) -> Result<(), Error> {
    for transaction in transactions {
        let limit = transaction.limit.as_str();
        let counted = match &decision {
            Ok(()) => "allowed",
            Err(err) if err.detail.contains(&format!("({limit})")) => "denied",
            Err(_) => continue,
        };
        basalt_telemetry::metrics::rate_limit_decision(limit, counted);
    }
    decision
}

/// What a new account from `ip` spends; nothing when the address is unknown.
pub(super) fn new_account_transactions(ip: Option<IpAddr>) -> Vec<Transaction> {
    ip.map(Transaction::new_accounts).unwrap_or_default()
}

/// What issuing a certificate for `identifiers` spends (and a failed order gets
/// back).
pub(super) fn certificate_transactions(identifiers: &[Identifier]) -> Vec<Transaction> {
    let mut transactions = Transaction::certificates_per_domain(identifiers);
    transactions.push(Transaction::certificates_per_fqdn_set(identifiers));
    transactions
}

/// What a new order spends.
pub(super) fn new_order_transactions(
    account_id: AccountId,
    identifiers: &[Identifier],
) -> Vec<Transaction> {
    let mut transactions = vec![Transaction::new_order(account_id)];
    transactions.extend(certificate_transactions(identifiers));
    transactions
}

/// What a new order checks without spending: recent failed validations of each
/// name by this account.
pub(super) fn failed_validation_transactions(
    account_id: AccountId,
    identifiers: &[Identifier],
) -> Vec<Transaction> {
    identifiers
        .iter()
        .map(|identifier| {
            Transaction::failed_authorization(
                account_id,
                &super::revoke::authorization_identifier(identifier),
            )
        })
        .collect()
}
