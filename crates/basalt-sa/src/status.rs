//! Statuses computed on read, the same way for every database engine.
//!
//! The database stores what happened (an authorization was validated, an order began
//! processing, a certificate was recorded); what that means *now* depends on the clock,
//! so it is derived here rather than stored (Boulder's `statusForOrder`).

use basalt_core::AuthzStatus;
use basalt_core::Identifier;
use basalt_core::OrderStatus;
use time::OffsetDateTime;

/// The status of an authorization at `now`: a pending or valid authorization whose
/// `expires` has come is expired.
pub(crate) fn authz_status(
    stored: AuthzStatus,
    expires: OffsetDateTime,
    now: OffsetDateTime,
) -> AuthzStatus {
    match stored {
        AuthzStatus::Pending | AuthzStatus::Valid if expires <= now => AuthzStatus::Expired,
        other => other,
    }
}

/// What an order's status is computed from.
pub(crate) struct OrderFacts<'a> {
    /// The names requested.
    pub(crate) identifiers: &'a [Identifier],
    /// When the order expires.
    pub(crate) expires: OffsetDateTime,
    /// Whether an error was recorded on it.
    pub(crate) has_error: bool,
    /// Whether finalization began.
    pub(crate) began_processing: bool,
    /// Whether its certificate was recorded.
    pub(crate) has_certificate: bool,
    /// Its authorizations: the name each covers (`*.example.com` for a wildcard
    /// authorization of `example.com`) and its status at `now` (see [`authz_status`]).
    pub(crate) authzs: &'a [(Identifier, AuthzStatus)],
}

/// The status of an order at `now` (RFC 8555 §7.1.6).
///
/// An order whose certificate is recorded stays valid. Otherwise it is invalid if it
/// carries an error, has expired, or any of its authorizations is invalid, deactivated,
/// expired or revoked; pending while an authorization is pending; processing once
/// finalization began; ready when every requested name is covered by a valid
/// authorization; pending otherwise (a name without an authorization never makes an
/// order ready).
pub(crate) fn order_status(facts: &OrderFacts<'_>, now: OffsetDateTime) -> OrderStatus {
    if facts.has_certificate {
        return OrderStatus::Valid;
    }
    if facts.has_error || facts.expires <= now {
        return OrderStatus::Invalid;
    }
    let failed = facts.authzs.iter().any(|(_, status)| {
        matches!(
            status,
            AuthzStatus::Invalid
                | AuthzStatus::Deactivated
                | AuthzStatus::Expired
                | AuthzStatus::Revoked
        )
    });
    if failed {
        return OrderStatus::Invalid;
    }
    if facts
        .authzs
        .iter()
        .any(|(_, status)| *status == AuthzStatus::Pending)
    {
        return OrderStatus::Pending;
    }
    if facts.began_processing {
        return OrderStatus::Processing;
    }
    // A wildcard name is covered only by a wildcard authorization (validated with
    // dns-01), never by the base name's: an http-01 answer on example.com proves
    // nothing about *.example.com.
    let covered = |name: &Identifier| {
        facts.authzs.iter().any(|(identifier, status)| {
            *status == AuthzStatus::Valid
                && identifier.kind == name.kind
                && identifier.value.eq_ignore_ascii_case(&name.value)
        })
    };
    if !facts.identifiers.is_empty() && facts.identifiers.iter().all(covered) {
        return OrderStatus::Ready;
    }
    OrderStatus::Pending
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    /// 2030-01-01T00:00:00Z.
    const NOW_UNIX: i64 = 1_893_456_000;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(NOW_UNIX).unwrap()
    }

    fn facts<'a>(
        identifiers: &'a [Identifier],
        authzs: &'a [(Identifier, AuthzStatus)],
    ) -> OrderFacts<'a> {
        OrderFacts {
            identifiers,
            expires: now() + Duration::days(7),
            has_error: false,
            began_processing: false,
            has_certificate: false,
            authzs,
        }
    }

    #[test]
    fn authz_expires_at_its_expiry() {
        let expires = now() + Duration::hours(1);
        assert_eq!(
            authz_status(AuthzStatus::Pending, expires, now()),
            AuthzStatus::Pending
        );
        assert_eq!(
            authz_status(AuthzStatus::Valid, expires, expires),
            AuthzStatus::Expired
        );
        assert_eq!(
            authz_status(AuthzStatus::Pending, now(), now()),
            AuthzStatus::Expired
        );
        assert_eq!(
            authz_status(AuthzStatus::Invalid, now(), now()),
            AuthzStatus::Invalid
        );
    }

    #[test]
    fn order_status_follows_its_authzs() {
        let names = [Identifier::dns("*.a.example"), Identifier::dns("b.example")];
        let mut authzs = vec![
            (Identifier::dns("*.a.example"), AuthzStatus::Valid),
            (Identifier::dns("b.example"), AuthzStatus::Pending),
        ];
        assert_eq!(
            order_status(&facts(&names, &authzs), now()),
            OrderStatus::Pending
        );
        authzs[1].1 = AuthzStatus::Valid;
        assert_eq!(
            order_status(&facts(&names, &authzs), now()),
            OrderStatus::Ready
        );
        authzs[1].1 = AuthzStatus::Expired;
        assert_eq!(
            order_status(&facts(&names, &authzs), now()),
            OrderStatus::Invalid
        );
    }

    #[test]
    fn an_uncovered_name_keeps_the_order_pending() {
        let names = [Identifier::dns("a.example"), Identifier::dns("b.example")];
        let authzs = [(Identifier::dns("a.example"), AuthzStatus::Valid)];
        assert_eq!(
            order_status(&facts(&names, &authzs), now()),
            OrderStatus::Pending
        );
        let ip = [(Identifier::ip("a.example"), AuthzStatus::Valid)];
        assert_eq!(
            order_status(&facts(&names[..1], &ip), now()),
            OrderStatus::Pending
        );
    }

    #[test]
    fn a_wildcard_is_covered_only_by_a_wildcard_authorization() {
        let names = [Identifier::dns("*.a.example"), Identifier::dns("a.example")];
        let base_only = [
            (Identifier::dns("a.example"), AuthzStatus::Valid),
            (Identifier::dns("*.a.example"), AuthzStatus::Pending),
        ];
        assert_eq!(
            order_status(&facts(&names, &base_only), now()),
            OrderStatus::Pending
        );
        let wildcard_only = [(Identifier::dns("*.a.example"), AuthzStatus::Valid)];
        assert_eq!(
            order_status(&facts(&names, &wildcard_only), now()),
            OrderStatus::Pending
        );
        let both = [
            (Identifier::dns("a.example"), AuthzStatus::Valid),
            (Identifier::dns("*.a.example"), AuthzStatus::Valid),
        ];
        assert_eq!(
            order_status(&facts(&names, &both), now()),
            OrderStatus::Ready
        );
    }

    #[test]
    fn order_progress_and_failure() {
        let names = [Identifier::dns("a.example")];
        let authzs = [(Identifier::dns("a.example"), AuthzStatus::Valid)];
        let mut f = facts(&names, &authzs);
        f.began_processing = true;
        assert_eq!(order_status(&f, now()), OrderStatus::Processing);
        f.has_certificate = true;
        assert_eq!(order_status(&f, now()), OrderStatus::Valid);
        assert_eq!(
            order_status(&f, now() + Duration::days(30)),
            OrderStatus::Valid
        );
        f.has_certificate = false;
        assert_eq!(
            order_status(&f, now() + Duration::days(30)),
            OrderStatus::Invalid
        );
        f.has_error = true;
        assert_eq!(order_status(&f, now()), OrderStatus::Invalid);
    }
}
