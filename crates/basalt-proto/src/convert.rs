//! Conversions between generated messages and basalt-core types.
//!
//! Domain → message is infallible (`From`); message → domain is `TryFrom`, and a
//! missing or garbled field is an [`ErrorKind::Internal`] error: a peer service sent
//! something no Basalt service produces.

use std::net::IpAddr;

use basalt_core::Account;
use basalt_core::AccountId;
use basalt_core::Authz;
use basalt_core::AuthzId;
use basalt_core::CertificateQuery;
use basalt_core::CertificateRecord;
use basalt_core::CertificateSelector;
use basalt_core::CertificateSummary;
use basalt_core::Challenge;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::IdentifierType;
use basalt_core::Order;
use basalt_core::OrderId;
use basalt_core::PerspectiveOutcome;
use basalt_core::RevocationReason;
use basalt_core::Serial;
use basalt_core::SpkiHash;
use basalt_core::SubError;
use basalt_core::ValidationRecord;
use time::OffsetDateTime;

use crate::sa;
use crate::sa::search_certificates_request::Selector;
use crate::types as pb;

/// A message field that must be present.
pub fn required<T>(field: Option<T>, name: &str) -> Result<T, Error> {
    field.ok_or_else(|| Error::internal(format!("missing field {name} in gRPC message")))
}

/// A time as a protobuf timestamp.
pub fn timestamp(at: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.unix_timestamp(),
        // Always in 0..1_000_000_000.
        nanos: at.nanosecond() as i32,
    }
}

/// An optional time as an optional timestamp (unset means absent).
pub fn opt_timestamp(at: Option<OffsetDateTime>) -> Option<prost_types::Timestamp> {
    at.map(timestamp)
}

/// A protobuf timestamp as a time.
pub fn from_timestamp(ts: prost_types::Timestamp) -> Result<OffsetDateTime, Error> {
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|err| Error::internal(format!("timestamp out of range: {err}")))
}

/// A required timestamp field as a time.
pub fn required_time(
    ts: Option<prost_types::Timestamp>,
    name: &str,
) -> Result<OffsetDateTime, Error> {
    from_timestamp(required(ts, name)?)
}

/// An optional timestamp as an optional time.
pub fn opt_from_timestamp(
    ts: Option<prost_types::Timestamp>,
) -> Result<Option<OffsetDateTime>, Error> {
    ts.map(from_timestamp).transpose()
}

/// Parses a string field that holds one of basalt-core's wire names.
pub fn parse_field<T: std::str::FromStr<Err = Error>>(value: &str, name: &str) -> Result<T, Error> {
    value
        .parse()
        .map_err(|err: Error| Error::internal(format!("field {name}: {}", err.detail)))
}

/// A serial as sent on the wire (lowercase hex).
pub fn serial(value: &str) -> Result<Serial, Error> {
    parse_field(value, "serial")
}

/// An optional serial: empty means none.
pub fn opt_serial(value: &str) -> Result<Option<Serial>, Error> {
    match value {
        "" => Ok(None),
        text => serial(text).map(Some),
    }
}

/// An optional revocation reason code.
pub fn opt_reason(code: Option<u32>) -> Result<Option<RevocationReason>, Error> {
    code.map(reason).transpose()
}

/// A revocation reason code.
pub fn reason(code: u32) -> Result<RevocationReason, Error> {
    u8::try_from(code)
        .map_err(|_| {
            Error::new(
                ErrorKind::BadRevocationReason,
                format!("revocation reason {code} is not allowed"),
            )
        })
        .and_then(RevocationReason::try_from)
}

impl From<Identifier> for pb::Identifier {
    fn from(id: Identifier) -> Self {
        let kind = match id.kind {
            IdentifierType::Dns => "dns",
            IdentifierType::Ip => "ip",
        };
        Self {
            r#type: kind.to_owned(),
            value: id.value,
        }
    }
}

impl TryFrom<pb::Identifier> for Identifier {
    type Error = Error;

    fn try_from(id: pb::Identifier) -> Result<Self, Error> {
        let kind = match id.r#type.as_str() {
            "dns" => IdentifierType::Dns,
            "ip" => IdentifierType::Ip,
            other => {
                return Err(Error::new(
                    ErrorKind::UnsupportedIdentifier,
                    format!("identifier type {other:?} is not supported"),
                ));
            }
        };
        Ok(Self {
            kind,
            value: id.value,
        })
    }
}

/// Converts a list of messages, failing on the first bad one.
pub fn try_vec<P, T: TryFrom<P, Error = Error>>(items: Vec<P>) -> Result<Vec<T>, Error> {
    items.into_iter().map(T::try_from).collect()
}

/// Converts a list of domain values into messages.
pub fn to_vec<T, P: From<T>>(items: Vec<T>) -> Vec<P> {
    items.into_iter().map(P::from).collect()
}

impl From<Error> for pb::Problem {
    fn from(err: Error) -> Self {
        Self {
            kind: err.kind.as_str().to_owned(),
            detail: err.detail,
            subproblems: err
                .subproblems
                .into_iter()
                .map(|sub| pb::SubProblem {
                    identifier: Some(sub.identifier.into()),
                    kind: sub.kind.as_str().to_owned(),
                    detail: sub.detail,
                })
                .collect(),
        }
    }
}

impl TryFrom<pb::Problem> for Error {
    type Error = Self;

    fn try_from(problem: pb::Problem) -> Result<Self, Self> {
        let subproblems = problem
            .subproblems
            .into_iter()
            .map(|sub| {
                Ok(SubError {
                    identifier: required(sub.identifier, "subproblem.identifier")?.try_into()?,
                    kind: parse_field(&sub.kind, "subproblem.kind")?,
                    detail: sub.detail,
                })
            })
            .collect::<Result<_, Self>>()?;
        Ok(
            Self::new(parse_field(&problem.kind, "problem.kind")?, problem.detail)
                .with_subproblems(subproblems),
        )
    }
}

impl From<Account> for pb::Account {
    fn from(account: Account) -> Self {
        Self {
            id: account.id.0,
            key_jwk: account.key_jwk,
            key_thumbprint: account.key_thumbprint,
            contacts: account.contacts,
            status: account.status.as_str().to_owned(),
            created_at: Some(timestamp(account.created_at)),
        }
    }
}

impl TryFrom<pb::Account> for Account {
    type Error = Error;

    fn try_from(account: pb::Account) -> Result<Self, Error> {
        Ok(Self {
            id: AccountId(account.id),
            key_jwk: account.key_jwk,
            key_thumbprint: account.key_thumbprint,
            contacts: account.contacts,
            status: parse_field(&account.status, "account.status")?,
            created_at: required_time(account.created_at, "account.created_at")?,
        })
    }
}

impl From<ValidationRecord> for pb::ValidationRecord {
    fn from(record: ValidationRecord) -> Self {
        Self {
            url: record.url.unwrap_or_default(),
            hostname: record.hostname,
            port: record.port.map(u32::from).unwrap_or_default(),
            addresses_resolved: record
                .addresses_resolved
                .iter()
                .map(IpAddr::to_string)
                .collect(),
            address_used: record
                .address_used
                .map(|ip| ip.to_string())
                .unwrap_or_default(),
            perspectives: record
                .perspectives
                .into_iter()
                .map(|outcome| pb::PerspectiveOutcome {
                    perspective: outcome.perspective,
                    region: outcome.region,
                    succeeded: outcome.succeeded,
                    detail: outcome.detail,
                })
                .collect(),
        }
    }
}

impl TryFrom<pb::ValidationRecord> for ValidationRecord {
    type Error = Error;

    fn try_from(record: pb::ValidationRecord) -> Result<Self, Error> {
        let ip = |text: &str| {
            text.parse::<IpAddr>().map_err(|_| {
                Error::internal(format!("invalid IP address {text:?} in validation record"))
            })
        };
        Ok(Self {
            url: Some(record.url).filter(|url| !url.is_empty()),
            hostname: record.hostname,
            port: match record.port {
                0 => None,
                port => Some(u16::try_from(port).map_err(|_| {
                    Error::internal(format!("invalid port {port} in validation record"))
                })?),
            },
            addresses_resolved: record
                .addresses_resolved
                .iter()
                .map(|text| ip(text))
                .collect::<Result<_, _>>()?,
            address_used: match record.address_used.as_str() {
                "" => None,
                text => Some(ip(text)?),
            },
            perspectives: record
                .perspectives
                .into_iter()
                .map(|outcome| PerspectiveOutcome {
                    perspective: outcome.perspective,
                    region: outcome.region,
                    succeeded: outcome.succeeded,
                    detail: outcome.detail,
                })
                .collect(),
        })
    }
}

impl From<Challenge> for pb::Challenge {
    fn from(challenge: Challenge) -> Self {
        Self {
            r#type: challenge.kind.as_str().to_owned(),
            token: challenge.token,
            status: challenge.status.as_str().to_owned(),
            validated: opt_timestamp(challenge.validated),
            error: challenge.error.map(Into::into),
            validation_records: to_vec(challenge.validation_records),
        }
    }
}

impl TryFrom<pb::Challenge> for Challenge {
    type Error = Error;

    fn try_from(challenge: pb::Challenge) -> Result<Self, Error> {
        Ok(Self {
            kind: parse_field(&challenge.r#type, "challenge.type")?,
            token: challenge.token,
            status: parse_field(&challenge.status, "challenge.status")?,
            validated: opt_from_timestamp(challenge.validated)?,
            error: challenge.error.map(Error::try_from).transpose()?,
            validation_records: try_vec(challenge.validation_records)?,
        })
    }
}

impl From<Authz> for pb::Authorization {
    fn from(authz: Authz) -> Self {
        Self {
            id: authz.id.0,
            account_id: authz.account_id.0,
            identifier: Some(authz.identifier.into()),
            status: authz.status.as_str().to_owned(),
            expires: Some(timestamp(authz.expires)),
            wildcard: authz.wildcard,
            challenges: to_vec(authz.challenges),
        }
    }
}

impl TryFrom<pb::Authorization> for Authz {
    type Error = Error;

    fn try_from(authz: pb::Authorization) -> Result<Self, Error> {
        Ok(Self {
            id: AuthzId(authz.id),
            account_id: AccountId(authz.account_id),
            identifier: required(authz.identifier, "authorization.identifier")?.try_into()?,
            status: parse_field(&authz.status, "authorization.status")?,
            expires: required_time(authz.expires, "authorization.expires")?,
            wildcard: authz.wildcard,
            challenges: try_vec(authz.challenges)?,
        })
    }
}

impl From<Order> for pb::Order {
    fn from(order: Order) -> Self {
        Self {
            id: order.id.0,
            account_id: order.account_id.0,
            identifiers: to_vec(order.identifiers),
            status: order.status.as_str().to_owned(),
            expires: Some(timestamp(order.expires)),
            authz_ids: order.authz_ids.iter().map(|id| id.0).collect(),
            error: order.error.map(Into::into),
            certificate_serial: order
                .certificate_serial
                .map(String::from)
                .unwrap_or_default(),
            created_at: Some(timestamp(order.created_at)),
            profile: order.profile,
            not_before: opt_timestamp(order.not_before),
            not_after: opt_timestamp(order.not_after),
            replaces: order.replaces.map(String::from).unwrap_or_default(),
        }
    }
}

impl TryFrom<pb::Order> for Order {
    type Error = Error;

    fn try_from(order: pb::Order) -> Result<Self, Error> {
        Ok(Self {
            id: OrderId(order.id),
            account_id: AccountId(order.account_id),
            identifiers: try_vec(order.identifiers)?,
            status: parse_field(&order.status, "order.status")?,
            expires: required_time(order.expires, "order.expires")?,
            authz_ids: order.authz_ids.into_iter().map(AuthzId).collect(),
            error: order.error.map(Error::try_from).transpose()?,
            certificate_serial: opt_serial(&order.certificate_serial)?,
            created_at: required_time(order.created_at, "order.created_at")?,
            profile: order.profile,
            not_before: opt_from_timestamp(order.not_before)?,
            not_after: opt_from_timestamp(order.not_after)?,
            replaces: opt_serial(&order.replaces)?,
        })
    }
}

impl From<CertificateRecord> for pb::Certificate {
    fn from(cert: CertificateRecord) -> Self {
        Self {
            serial: cert.serial.to_string(),
            account_id: cert.account_id.0,
            der: cert.der,
            chain: cert.chain,
            issued_at: Some(timestamp(cert.issued_at)),
            expires_at: Some(timestamp(cert.expires_at)),
            status: cert.status.as_str().to_owned(),
            revoked_at: opt_timestamp(cert.revoked_at),
            revocation_reason: cert
                .revocation_reason
                .map(|reason| u32::from(reason.code())),
        }
    }
}

impl TryFrom<pb::Certificate> for CertificateRecord {
    type Error = Error;

    fn try_from(cert: pb::Certificate) -> Result<Self, Error> {
        Ok(Self {
            serial: serial(&cert.serial)?,
            account_id: AccountId(cert.account_id),
            der: cert.der,
            chain: cert.chain,
            issued_at: required_time(cert.issued_at, "certificate.issued_at")?,
            expires_at: required_time(cert.expires_at, "certificate.expires_at")?,
            status: parse_field(&cert.status, "certificate.status")?,
            revoked_at: opt_from_timestamp(cert.revoked_at)?,
            revocation_reason: opt_reason(cert.revocation_reason)?,
        })
    }
}

impl From<CertificateQuery> for sa::SearchCertificatesRequest {
    fn from(query: CertificateQuery) -> Self {
        let selector = match query.selector {
            CertificateSelector::Account(id) => Selector::AccountId(id.0),
            CertificateSelector::Key(hash) => Selector::SpkiSha256(hash.as_bytes().to_vec()),
            CertificateSelector::Name {
                identifier,
                subdomains,
            } => Selector::Name(sa::NameSelector {
                identifier: Some(identifier.into()),
                subdomains,
            }),
        };
        Self {
            selector: Some(selector),
            active_only: query.active_only,
            limit: query.limit,
        }
    }
}

impl TryFrom<sa::SearchCertificatesRequest> for CertificateQuery {
    type Error = Error;

    fn try_from(request: sa::SearchCertificatesRequest) -> Result<Self, Error> {
        let selector = match required(request.selector, "search_certificates.selector")? {
            Selector::AccountId(id) => CertificateSelector::Account(AccountId(id)),
            Selector::SpkiSha256(bytes) => CertificateSelector::Key(
                SpkiHash::from_slice(&bytes)
                    .map_err(|err| Error::internal(format!("field spki_sha256: {}", err.detail)))?,
            ),
            Selector::Name(name) => CertificateSelector::Name {
                identifier: required(name.identifier, "name.identifier")?.try_into()?,
                subdomains: name.subdomains,
            },
        };
        Ok(Self {
            selector,
            active_only: request.active_only,
            limit: request.limit,
        })
    }
}

impl From<CertificateSummary> for sa::CertificateSummary {
    fn from(summary: CertificateSummary) -> Self {
        Self {
            serial: summary.serial.to_string(),
            account_id: summary.account_id.0,
            names: to_vec(summary.names),
            not_before: Some(timestamp(summary.not_before)),
            not_after: Some(timestamp(summary.not_after)),
            status: summary.status.as_str().to_owned(),
            revoked_at: opt_timestamp(summary.revoked_at),
            revocation_reason: summary
                .revocation_reason
                .map(|reason| u32::from(reason.code())),
        }
    }
}

impl TryFrom<sa::CertificateSummary> for CertificateSummary {
    type Error = Error;

    fn try_from(summary: sa::CertificateSummary) -> Result<Self, Error> {
        Ok(Self {
            serial: serial(&summary.serial)?,
            account_id: AccountId(summary.account_id),
            names: try_vec(summary.names)?,
            not_before: required_time(summary.not_before, "certificate_summary.not_before")?,
            not_after: required_time(summary.not_after, "certificate_summary.not_after")?,
            status: parse_field(&summary.status, "certificate_summary.status")?,
            revoked_at: opt_from_timestamp(summary.revoked_at)?,
            revocation_reason: opt_reason(summary.revocation_reason)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use basalt_core::AccountStatus;
    use basalt_core::AuthzStatus;
    use basalt_core::ChallengeStatus;
    use basalt_core::ChallengeType;
    use basalt_core::OrderStatus;
    use time::macros::datetime;

    use super::*;

    fn round_trip<T, P>(value: T)
    where
        T: Clone + PartialEq + std::fmt::Debug + TryFrom<P, Error = Error>,
        P: From<T>,
    {
        let back = T::try_from(P::from(value.clone())).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn domain_types_round_trip() {
        let at = datetime!(2026-11-29 10:00:00.5 UTC);
        round_trip::<_, pb::Account>(Account {
            id: AccountId(7),
            key_jwk: "{}".into(),
            key_thumbprint: "tp".into(),
            contacts: vec!["mailto:a@example.com".into()],
            status: AccountStatus::Valid,
            created_at: at,
        });
        let problem =
            Error::new(ErrorKind::IncorrectResponse, "wrong").with_subproblems(vec![SubError {
                identifier: Identifier::dns("a.example"),
                kind: ErrorKind::Dns,
                detail: "nx".into(),
            }]);
        round_trip::<_, pb::Authorization>(Authz {
            id: AuthzId(3),
            account_id: AccountId(7),
            identifier: Identifier::dns("a.example"),
            status: AuthzStatus::Invalid,
            expires: at,
            wildcard: false,
            challenges: vec![Challenge {
                kind: ChallengeType::Http01,
                token: "tok".into(),
                status: ChallengeStatus::Invalid,
                validated: Some(at),
                error: Some(problem.clone()),
                validation_records: vec![ValidationRecord {
                    url: Some("http://a.example/x".into()),
                    hostname: "a.example".into(),
                    port: Some(80),
                    addresses_resolved: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
                    address_used: Some("::1".parse().unwrap()),
                    perspectives: vec![PerspectiveOutcome {
                        perspective: "remote-1".into(),
                        region: "west".into(),
                        succeeded: false,
                        detail: "unreachable".into(),
                    }],
                }],
            }],
        });
        round_trip::<_, pb::Order>(Order {
            id: OrderId(9),
            account_id: AccountId(7),
            identifiers: vec![Identifier::dns("a.example"), Identifier::ip("192.0.2.1")],
            status: OrderStatus::Invalid,
            expires: at,
            authz_ids: vec![AuthzId(3), AuthzId(4)],
            error: Some(problem),
            certificate_serial: Some("7f01".parse().unwrap()),
            created_at: at,
            profile: "classic".into(),
            not_before: Some(at),
            not_after: None,
            replaces: Some("0a0b".parse().unwrap()),
        });
        round_trip::<_, pb::Certificate>(CertificateRecord {
            serial: "7f01".parse().unwrap(),
            account_id: AccountId(7),
            der: vec![1, 2, 3],
            chain: vec![vec![4, 5]],
            issued_at: at,
            expires_at: at,
            status: basalt_core::CertStatus::Revoked,
            revoked_at: Some(at),
            revocation_reason: Some(RevocationReason::KeyCompromise),
        });
    }

    #[test]
    fn certificate_searches_round_trip() {
        let at = datetime!(2026-11-29 10:00:00.5 UTC);
        for selector in [
            CertificateSelector::Account(AccountId(7)),
            CertificateSelector::Key(SpkiHash::new([0xab; 32])),
            CertificateSelector::Name {
                identifier: Identifier::dns("example.com"),
                subdomains: true,
            },
            CertificateSelector::Name {
                identifier: Identifier::ip("192.0.2.1"),
                subdomains: false,
            },
        ] {
            round_trip::<_, sa::SearchCertificatesRequest>(CertificateQuery {
                selector,
                active_only: true,
                limit: 1000,
            });
        }
        round_trip::<_, sa::CertificateSummary>(CertificateSummary {
            serial: "7f01".parse().unwrap(),
            account_id: AccountId(7),
            names: vec![Identifier::dns("a.example"), Identifier::ip("::1")],
            not_before: at,
            not_after: at + time::Duration::days(90),
            status: basalt_core::CertStatus::Revoked,
            revoked_at: Some(at),
            revocation_reason: Some(RevocationReason::KeyCompromise),
        });
        round_trip::<_, sa::CertificateSummary>(CertificateSummary {
            serial: "01".parse().unwrap(),
            account_id: AccountId(8),
            names: Vec::new(),
            not_before: at,
            not_after: at,
            status: basalt_core::CertStatus::Good,
            revoked_at: None,
            revocation_reason: None,
        });
    }

    #[test]
    fn garbled_searches_are_internal_errors() {
        let missing = CertificateQuery::try_from(sa::SearchCertificatesRequest::default());
        let err = missing.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Internal);
        assert!(err.detail.contains("selector"), "{err}");
        let short_hash = sa::SearchCertificatesRequest {
            selector: Some(Selector::SpkiSha256(vec![1; 31])),
            ..Default::default()
        };
        let err = CertificateQuery::try_from(short_hash).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Internal);
        assert!(err.detail.contains("spki_sha256"), "{err}");
        let nameless = sa::SearchCertificatesRequest {
            selector: Some(Selector::Name(sa::NameSelector::default())),
            ..Default::default()
        };
        assert_eq!(
            CertificateQuery::try_from(nameless).unwrap_err().kind,
            ErrorKind::Internal
        );
        let undated = sa::CertificateSummary {
            serial: "01".into(),
            status: "good".into(),
            ..Default::default()
        };
        let err = CertificateSummary::try_from(undated).unwrap_err();
        assert!(err.detail.contains("not_before"), "{err}");
    }

    #[test]
    fn garbled_messages_are_internal_errors() {
        let err = Authz::try_from(pb::Authorization::default()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Internal);
        let mut order = pb::Order::from(Order {
            id: OrderId(1),
            account_id: AccountId(1),
            identifiers: vec![],
            status: OrderStatus::Pending,
            expires: datetime!(2026-01-01 0:00 UTC),
            authz_ids: vec![],
            error: None,
            certificate_serial: None,
            created_at: datetime!(2026-01-01 0:00 UTC),
            profile: String::new(),
            not_before: None,
            not_after: None,
            replaces: None,
        });
        order.status = "bogus".into();
        assert_eq!(
            Order::try_from(order).unwrap_err().kind,
            ErrorKind::Internal
        );
        assert_eq!(reason(2).unwrap_err().kind, ErrorKind::BadRevocationReason);
    }
}
