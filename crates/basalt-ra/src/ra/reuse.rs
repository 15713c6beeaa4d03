//! Authorization reuse: which of an account's existing authorizations a new order
//! can use instead of new ones.
//!
//! A valid authorization is reused while it has the configured margin of life left
//! (`[lifetimes] authz_reuse_min_remaining`) and was validated recently enough for
//! the order's profile (`[profiles.<name>] valid_authz`); otherwise a pending one is
//! reused, so that asking twice does not leave two pending authorizations to
//! answer for one name. A wildcard name needs an authorization made for the
//! wildcard (answerable by dns-01 only), and a plain name one made for the plain
//! name.

use basalt_core::AccountId;
use basalt_core::Authz;
use basalt_core::AuthzStatus;
use basalt_core::ChallengeStatus;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::IdentifierType;
use basalt_core::NewOrder;
use basalt_core::Order;
use time::OffsetDateTime;
use tracing::info;

use super::Inner;
use super::ProfileSettings;
use super::Ra;
use super::after;
use super::before;
use super::new_authz;
use super::revoke::authorization_identifier;

impl Ra {
    /// Stores `order` with its authorizations: the account's fitting ones reused,
    /// new ones for the rest. Returns the order and how many authorizations it
    /// reused.
    pub(super) async fn store_order(
        &self,
        mut order: NewOrder,
        profile: &ProfileSettings,
    ) -> Result<(Order, usize), Error> {
        let Inner {
            sa,
            clock,
            settings,
            ..
        } = &*self.inner;
        let now = clock.now();
        let mut bases: Vec<Identifier> = order
            .identifiers
            .iter()
            .map(authorization_identifier)
            .collect();
        bases.sort();
        bases.dedup();
        let valid_until_at_least = after(now, settings.authz_reuse_min_remaining);
        let candidates = sa
            .authzs_for_reuse(order.account_id, &bases, valid_until_at_least)
            .await?;
        let pending_expires = after(now, profile.pending_authz_lifetime);
        let reuse = choose(
            order.account_id,
            &order.identifiers,
            &candidates,
            Bounds {
                now,
                valid_until_at_least,
                validated_since: before(now, profile.valid_authz_lifetime),
                pending_until_at_most: pending_expires,
            },
        );
        let fresh = order.clone();
        order.expires = reuse
            .reused
            .iter()
            .map(|authz| authz.expires)
            .fold(order.expires, OffsetDateTime::min);
        order.authzs = reuse
            .missing
            .iter()
            .map(|identifier| new_authz(identifier, pending_expires))
            .collect();
        order.reused_authz_ids = reuse.reused.iter().map(|authz| authz.id).collect();
        let reused = order.reused_authz_ids.len();
        match sa.new_order(order).await {
            Ok(stored) => Ok((stored, reused)),
            // A reused authorization was deactivated or expired since it was read:
            // the order gets new ones instead.
            Err(err) if reused > 0 && err.is(ErrorKind::Conflict) => {
                info!(
                    account_id = %fresh.account_id,
                    error = %err,
                    "authorization reuse lost a race; creating new authorizations"
                );
                let authzs = fresh
                    .identifiers
                    .iter()
                    .map(|identifier| new_authz(identifier, pending_expires))
                    .collect();
                let stored = sa.new_order(NewOrder { authzs, ..fresh }).await?;
                Ok((stored, 0))
            }
            Err(err) => Err(err),
        }
    }
}

/// What the order can reuse, and what it needs new authorizations for.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Reuse {
    /// Existing authorizations the order uses.
    pub(super) reused: Vec<Authz>,
    /// The order's identifiers that need a new authorization.
    pub(super) missing: Vec<Identifier>,
}

/// What an authorization must satisfy to be reused.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bounds {
    /// Now: a pending authorization must not have expired.
    pub(super) now: OffsetDateTime,
    /// A valid authorization must expire after this.
    pub(super) valid_until_at_least: OffsetDateTime,
    /// A valid authorization must have been validated no earlier than this (the
    /// profile's `valid_authz`).
    pub(super) validated_since: OffsetDateTime,
    /// A pending authorization must expire no later than this (the profile's
    /// `pending_authz`: one made for a profile with longer-lived pending
    /// authorizations does not stretch this profile's).
    pub(super) pending_until_at_most: OffsetDateTime,
}

/// Picks, for each of `identifiers` (an order's names), the best authorization
/// among `candidates` within `bounds`: the valid one that lives longest, else the
/// pending one that lives longest.
pub(super) fn choose(
    account_id: AccountId,
    identifiers: &[Identifier],
    candidates: &[Authz],
    bounds: Bounds,
) -> Reuse {
    let Bounds {
        now,
        valid_until_at_least,
        validated_since,
        pending_until_at_most,
    } = bounds;
    let mut reuse = Reuse::default();
    for identifier in identifiers {
        let (base, wildcard) = match (identifier.kind, identifier.value.strip_prefix("*.")) {
            (IdentifierType::Dns, Some(base)) => (Identifier::dns(base), true),
            _ => (identifier.clone(), false),
        };
        let fits = |authz: &&Authz| {
            authz.account_id == account_id && authz.identifier == base && authz.wildcard == wildcard
        };
        let valid = candidates
            .iter()
            .filter(fits)
            .filter(|authz| {
                authz.status == AuthzStatus::Valid
                    && authz.expires > valid_until_at_least
                    && validated_at(authz).is_some_and(|at| at >= validated_since)
            })
            .max_by_key(|authz| authz.expires);
        let pending = || {
            candidates
                .iter()
                .filter(fits)
                .filter(|authz| {
                    authz.status == AuthzStatus::Pending
                        && authz.expires > now
                        && authz.expires <= pending_until_at_most
                })
                .max_by_key(|authz| authz.expires)
        };
        match valid.or_else(pending) {
            Some(authz) if !reuse.reused.iter().any(|chosen| chosen.id == authz.id) => {
                reuse.reused.push(authz.clone());
            }
            Some(_) => {}
            None => reuse.missing.push(identifier.clone()),
        }
    }
    reuse
}

/// When the authorization's successful challenge was validated.
fn validated_at(authz: &Authz) -> Option<OffsetDateTime> {
    authz
        .challenges
        .iter()
        .find(|challenge| challenge.status == ChallengeStatus::Valid)
        .and_then(|challenge| challenge.validated)
}

#[cfg(test)]
mod tests {
    use basalt_core::AuthzId;
    use basalt_core::Challenge;
    use basalt_core::ChallengeType;
    use time::Duration;

    use super::*;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn authz(
        id: i64,
        name: &str,
        wildcard: bool,
        status: AuthzStatus,
        expires_in: Duration,
        validated_ago: Option<Duration>,
    ) -> Authz {
        let mut challenge = Challenge::pending(ChallengeType::Dns01, format!("token{id}"));
        if let Some(ago) = validated_ago {
            challenge.status = ChallengeStatus::Valid;
            challenge.validated = Some(t0() - ago);
        }
        Authz {
            id: AuthzId(id),
            account_id: AccountId(1),
            identifier: Identifier::dns(name),
            status,
            expires: t0() + expires_in,
            wildcard,
            challenges: vec![challenge],
        }
    }

    fn pick(identifiers: &[&str], candidates: &[Authz]) -> (Vec<i64>, Vec<String>) {
        let identifiers: Vec<Identifier> =
            identifiers.iter().map(|n| Identifier::dns(*n)).collect();
        let reuse = choose(
            AccountId(1),
            &identifiers,
            candidates,
            Bounds {
                now: t0(),
                valid_until_at_least: t0() + Duration::days(1),
                validated_since: t0() - Duration::days(10),
                pending_until_at_most: t0() + Duration::days(7),
            },
        );
        (
            reuse.reused.iter().map(|authz| authz.id.0).collect(),
            reuse.missing.iter().map(|id| id.value.clone()).collect(),
        )
    }

    #[test]
    fn the_longest_lived_valid_authorization_wins() {
        let candidates = [
            authz(
                1,
                "a.example",
                false,
                AuthzStatus::Valid,
                Duration::days(5),
                Some(Duration::days(2)),
            ),
            authz(
                2,
                "a.example",
                false,
                AuthzStatus::Valid,
                Duration::days(20),
                Some(Duration::days(1)),
            ),
            authz(
                3,
                "a.example",
                false,
                AuthzStatus::Pending,
                Duration::days(7),
                None,
            ),
        ];
        assert_eq!(pick(&["a.example"], &candidates), (vec![2], vec![]));
    }

    #[test]
    fn a_pending_authorization_is_reused_when_no_valid_one_fits() {
        let candidates = [
            // Too close to expiry, and validated too long ago for the profile.
            authz(
                1,
                "a.example",
                false,
                AuthzStatus::Valid,
                Duration::hours(3),
                Some(Duration::days(1)),
            ),
            authz(
                2,
                "a.example",
                false,
                AuthzStatus::Valid,
                Duration::days(20),
                Some(Duration::days(11)),
            ),
            authz(
                3,
                "a.example",
                false,
                AuthzStatus::Pending,
                Duration::days(7),
                None,
            ),
            authz(
                4,
                "a.example",
                false,
                AuthzStatus::Pending,
                Duration::days(-1),
                None,
            ),
            // Made for a profile whose pending authorizations live longer.
            authz(
                5,
                "a.example",
                false,
                AuthzStatus::Pending,
                Duration::days(8),
                None,
            ),
        ];
        assert_eq!(pick(&["a.example"], &candidates), (vec![3], vec![]));
    }

    #[test]
    fn nothing_fitting_means_a_new_authorization() {
        let mut other_account = authz(
            5,
            "a.example",
            false,
            AuthzStatus::Valid,
            Duration::days(20),
            Some(Duration::days(1)),
        );
        other_account.account_id = AccountId(2);
        let candidates = [
            authz(
                1,
                "a.example",
                false,
                AuthzStatus::Invalid,
                Duration::days(7),
                None,
            ),
            authz(
                2,
                "a.example",
                false,
                AuthzStatus::Deactivated,
                Duration::days(7),
                None,
            ),
            authz(
                3,
                "b.example",
                false,
                AuthzStatus::Valid,
                Duration::days(20),
                Some(Duration::days(1)),
            ),
            other_account,
        ];
        assert_eq!(
            pick(&["a.example", "c.example"], &candidates),
            (vec![], vec!["a.example".to_owned(), "c.example".to_owned()])
        );
    }

    #[test]
    fn wildcards_and_plain_names_do_not_mix() {
        let candidates = [
            authz(
                1,
                "a.example",
                false,
                AuthzStatus::Valid,
                Duration::days(20),
                Some(Duration::days(1)),
            ),
            authz(
                2,
                "a.example",
                true,
                AuthzStatus::Pending,
                Duration::days(7),
                None,
            ),
        ];
        assert_eq!(
            pick(&["*.a.example", "a.example", "*.b.example"], &candidates),
            (vec![2, 1], vec!["*.b.example".to_owned()])
        );
    }
}
