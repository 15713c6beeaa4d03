//! Revocation (RFC 8555 §7.6): who may revoke what, for which reason.
//!
//! Four requesters, as Boulder has them:
//!
//! - the account the certificate was issued to, with a reason a subscriber may give
//!   (unspecified, keyCompromise, affiliationChanged, superseded,
//!   cessationOfOperation);
//! - another account that holds valid authorizations for every name of the
//!   certificate: it controls the names, not the key, so the recorded reason is
//!   cessationOfOperation whatever it asked for;
//! - whoever signs with the certificate's key: the key is out of its holder's sole
//!   control, so the reason is keyCompromise and the key is blocked;
//! - an operator (`basalt admin revoke`): any reason, and also a serial whose
//!   certificate was never stored (only its precertificate was).
//!
//! A certificate revoked already stays as it was (`alreadyRevoked`), except that a
//! requester who proves the key compromised (its key, or an operator) may change the
//! reason to keyCompromise, keeping the revocation time.

use basalt_core::AccountId;
use basalt_core::AuthzStatus;
use basalt_core::BlockedKey;
use basalt_core::BlockedKeySource;
use basalt_core::CertStatus;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::IdentifierType;
use basalt_core::Requester;
use basalt_core::RevocationReason;
use basalt_core::RevokeRequest;
use basalt_core::Serial;
use basalt_policy::certificate_names;
use basalt_policy::certificate_spki;
use basalt_policy::spki_sha256;
use time::OffsetDateTime;
use tracing::error;
use tracing::info;
use tracing::warn;

use super::AUDIT;
use super::Ra;
use super::rfc3339;

/// The reasons a subscriber may give (RFC 8555 §7.6 leaves the choice to the CA;
/// these are Boulder's). privilegeWithdrawn is the CA's to give.
const SUBSCRIBER_REASONS: [RevocationReason; 5] = [
    RevocationReason::Unspecified,
    RevocationReason::KeyCompromise,
    RevocationReason::AffiliationChanged,
    RevocationReason::Superseded,
    RevocationReason::CessationOfOperation,
];

/// The serial to revoke, as the SA has it.
struct Target {
    /// The certificate, or the precertificate if that is all there is.
    der: Vec<u8>,
    /// The account it was issued to, when the certificate was stored.
    account_id: Option<AccountId>,
    /// Its current status.
    status: CertStatus,
    /// Its current reason, when revoked.
    reason: Option<RevocationReason>,
    /// When it was revoked, when revoked.
    revoked_at: Option<OffsetDateTime>,
}

impl Target {
    /// The SubjectPublicKeyInfo the stored certificate carries; a stored
    /// certificate that cannot be parsed is an internal error.
    fn spki(&self, serial: &Serial) -> Result<Vec<u8>, Error> {
        certificate_spki(&self.der).map_err(|err| {
            error!(serial = %serial, error = %err, "a stored certificate cannot be parsed");
            Error::internal("error reading the certificate")
        })
    }
}

/// How the revocation was authorized, for the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    /// By the account the certificate was issued to.
    Account,
    /// By an account holding valid authorizations for every name.
    Authorizations,
    /// By a request signed with the certificate's key.
    CertificateKey,
    /// By an operator.
    Operator,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Authorizations => "authorizations",
            Self::CertificateKey => "certificate_key",
            Self::Operator => "operator",
        }
    }

    /// Whether this requester proved the key compromised, and so may turn an
    /// earlier revocation into a keyCompromise one.
    fn proves_key_compromise(self) -> bool {
        matches!(self, Self::CertificateKey | Self::Operator)
    }
}

impl Ra {
    /// Revokes as [`basalt_core::RegistrationAuthority::revoke_certificate`] says.
    pub(super) async fn revoke(&self, request: RevokeRequest) -> Result<(), Error> {
        let RevokeRequest {
            serial,
            reason,
            requester,
        } = request;
        let target = self.revocation_target(&serial, &requester).await?;
        let (method, reason) = self
            .authorize_revocation(&serial, &target, &requester, reason)
            .await?;
        // Blocked first, so that a key proved compromised is blocked even when the
        // certificate was revoked already, and a failure leaves nothing half done.
        if reason == RevocationReason::KeyCompromise && method.proves_key_compromise() {
            self.block_compromised_key(&serial, &target, method).await?;
        }
        let sa = &self.inner.sa;
        let already = if target.status == CertStatus::Revoked {
            Some((target.reason, target.revoked_at))
        } else {
            match sa
                .revoke_certificate(&serial, reason, self.inner.clock.now())
                .await
            {
                Ok(()) => None,
                // Revoked by someone else since it was read.
                Err(err) if err.is(ErrorKind::AlreadyRevoked) => Some((None, None)),
                Err(err) => return Err(err),
            }
        };
        let rerevoked = match already {
            None => false,
            Some((previous, at)) => {
                let upgrade = reason == RevocationReason::KeyCompromise
                    && method.proves_key_compromise()
                    && previous != Some(RevocationReason::KeyCompromise);
                if !upgrade {
                    return Err(already_revoked(&serial, previous, at));
                }
                sa.rerevoke_for_key_compromise(&serial).await?;
                true
            }
        };
        info!(
            target: AUDIT,
            event = "certificate_revoked",
            serial = %serial,
            account_id = target.account_id.map(|id| id.to_string()),
            method = method.as_str(),
            requester = %requester_name(&requester),
            reason = reason.as_str(),
            reason_code = reason.code(),
            rerevocation = rerevoked,
            "certificate revoked"
        );
        basalt_telemetry::metrics::revocation(reason.as_str());
        Ok(())
    }

    /// The serial's certificate; for an operator, also a serial with only a
    /// precertificate.
    async fn revocation_target(
        &self,
        serial: &Serial,
        requester: &Requester,
    ) -> Result<Target, Error> {
        let sa = &self.inner.sa;
        let not_found = |err: Error| {
            if err.is(ErrorKind::NotFound) {
                Error::not_found("certificate not found")
            } else {
                err
            }
        };
        if let Requester::Operator(_) = requester {
            let status = sa.revocation_status(serial).await.map_err(not_found)?;
            let account_id = if status.precertificate {
                None
            } else {
                Some(sa.certificate(serial).await.map_err(not_found)?.account_id)
            };
            return Ok(Target {
                der: status.der,
                account_id,
                status: status.status,
                reason: status.revocation_reason,
                revoked_at: status.revoked_at,
            });
        }
        let certificate = sa.certificate(serial).await.map_err(not_found)?;
        Ok(Target {
            der: certificate.der,
            account_id: Some(certificate.account_id),
            status: certificate.status,
            reason: certificate.revocation_reason,
            revoked_at: certificate.revoked_at,
        })
    }

    /// Whether `requester` may revoke `target` for `reason`, and the reason to
    /// record.
    async fn authorize_revocation(
        &self,
        serial: &Serial,
        target: &Target,
        requester: &Requester,
        reason: RevocationReason,
    ) -> Result<(Method, RevocationReason), Error> {
        match requester {
            Requester::Account(account_id) => {
                check_subscriber_reason(reason)?;
                if target.account_id == Some(*account_id) {
                    return Ok((Method::Account, reason));
                }
                if self.controls_every_name(*account_id, &target.der).await? {
                    // As Boulder: the account controls the names, not the key, and
                    // may only say the certificate is no longer needed.
                    return Ok((
                        Method::Authorizations,
                        RevocationReason::CessationOfOperation,
                    ));
                }
                warn!(
                    target: AUDIT,
                    event = "revocation_refused",
                    serial = %serial,
                    account_id = %account_id,
                    owner_account_id = target.account_id.map(|id| id.to_string()),
                    "revocation refused: another account's certificate, and no authorization \
                     for all of its names"
                );
                Err(Error::unauthorized(
                    "the certificate was issued to another account, and this account does not \
                     hold valid authorizations for all of its names",
                ))
            }
            Requester::CertificateKey(spki) => {
                let certified = target.spki(serial)?;
                if certified != *spki {
                    warn!(
                        target: AUDIT,
                        event = "revocation_refused",
                        serial = %serial,
                        owner_account_id = target.account_id.map(|id| id.to_string()),
                        "revocation refused: not signed by the certificate's key"
                    );
                    return Err(Error::unauthorized(
                        "the request was not signed by the certificate's key",
                    ));
                }
                // As Boulder: whatever reason was given, the key is out of its
                // holder's sole control. (Refusing other reasons would break clients
                // such as certbot, which send none by default.)
                Ok((Method::CertificateKey, RevocationReason::KeyCompromise))
            }
            Requester::Operator(_) => Ok((Method::Operator, reason)),
        }
    }

    /// Whether `account_id` holds a valid, unexpired authorization for every name
    /// of the certificate (for `*.example.com`, one for `example.com`).
    async fn controls_every_name(&self, account_id: AccountId, der: &[u8]) -> Result<bool, Error> {
        let names = certificate_names(der).map_err(|err| {
            error!(error = %err, "a stored certificate's names cannot be read");
            Error::internal("error reading the certificate")
        })?;
        let mut bases: Vec<Identifier> = names.iter().map(authorization_identifier).collect();
        bases.sort();
        bases.dedup();
        let now = self.inner.clock.now();
        let authzs = self
            .inner
            .sa
            .authzs_for_reuse(account_id, &bases, now)
            .await?;
        Ok(bases.iter().all(|base| {
            authzs.iter().any(|authz| {
                authz.account_id == account_id
                    && authz.status == AuthzStatus::Valid
                    && authz.expires > now
                    && authz.identifier == *base
            })
        }))
    }

    /// Puts the target's key on the blocked-keys list (as Boulder does): no account
    /// and no certificate may use it again.
    async fn block_compromised_key(
        &self,
        serial: &Serial,
        target: &Target,
        method: Method,
    ) -> Result<(), Error> {
        let spki = target.spki(serial)?;
        let hash = spki_sha256(&spki);
        let by = match method {
            Method::Operator => "by an operator",
            _ => "by a request signed with its key",
        };
        self.inner
            .sa
            .block_key(BlockedKey {
                spki_sha256: hash,
                added_at: self.inner.clock.now(),
                source: BlockedKeySource::KeyCompromise,
                comment: format!("certificate {serial} revoked for keyCompromise {by}"),
            })
            .await?;
        info!(
            target: AUDIT,
            event = "key_blocked",
            spki_sha256 = %hash,
            serial = %serial,
            account_id = target.account_id.map(|id| id.to_string()),
            source = %BlockedKeySource::KeyCompromise,
            method = method.as_str(),
            "key blocked after a keyCompromise revocation"
        );
        Ok(())
    }
}

/// `badRevocationReason` for a reason a subscriber may not give.
fn check_subscriber_reason(reason: RevocationReason) -> Result<(), Error> {
    if SUBSCRIBER_REASONS.contains(&reason) {
        return Ok(());
    }
    let allowed: Vec<String> = SUBSCRIBER_REASONS
        .iter()
        .map(|reason| format!("{reason} ({})", reason.code()))
        .collect();
    Err(Error::new(
        ErrorKind::BadRevocationReason,
        format!(
            "revocation reason {reason} ({}) is not for subscribers; use one of {}",
            reason.code(),
            allowed.join(", ")
        ),
    ))
}

/// `alreadyRevoked`, saying how and when when known.
fn already_revoked(
    serial: &Serial,
    reason: Option<RevocationReason>,
    at: Option<OffsetDateTime>,
) -> Error {
    let mut detail = format!("certificate {serial} is already revoked");
    if let Some(reason) = reason {
        detail.push_str(&format!(" ({reason})"));
    }
    if let Some(at) = at {
        detail.push_str(&format!(" since {}", rfc3339(at)));
    }
    Error::new(ErrorKind::AlreadyRevoked, detail)
}

/// The requester, for the audit log: `account:42`, `certificate_key:<spki sha256>`
/// or `operator:<name>`.
fn requester_name(requester: &Requester) -> String {
    match requester {
        Requester::Account(id) => format!("account:{id}"),
        Requester::CertificateKey(spki) => format!("certificate_key:{}", spki_sha256(spki)),
        Requester::Operator(name) => format!("operator:{name}"),
    }
}

/// The identifier an authorization for `name` is for: a wildcard's base name.
pub(super) fn authorization_identifier(name: &Identifier) -> Identifier {
    match (name.kind, name.value.strip_prefix("*.")) {
        (IdentifierType::Dns, Some(base)) => Identifier::dns(base),
        _ => name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_may_not_withdraw_privileges() {
        for reason in RevocationReason::ALL {
            let allowed = check_subscriber_reason(reason).is_ok();
            assert_eq!(
                allowed,
                reason != RevocationReason::PrivilegeWithdrawn,
                "{reason}"
            );
        }
        let err = check_subscriber_reason(RevocationReason::PrivilegeWithdrawn).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRevocationReason);
        assert!(
            err.detail.contains("privilegeWithdrawn (9)"),
            "{}",
            err.detail
        );
        assert!(err.detail.contains("superseded (4)"), "{}", err.detail);
    }

    #[test]
    fn wildcards_are_authorized_by_their_base_name() {
        assert_eq!(
            authorization_identifier(&Identifier::dns("*.a.example")),
            Identifier::dns("a.example")
        );
        assert_eq!(
            authorization_identifier(&Identifier::dns("a.example")),
            Identifier::dns("a.example")
        );
        assert_eq!(
            authorization_identifier(&Identifier::ip("192.0.2.1")),
            Identifier::ip("192.0.2.1")
        );
    }
}
