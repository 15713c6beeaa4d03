//! Certificate search for operators (`basalt admin certs`, `revoke-key`): by name,
//! by account, by key.
//!
//! The names and the key of each precertificate are indexed when it is stored, in the
//! same transaction ([`index_precertificate`]), in `issued_names` and
//! `key_hash_serials`. A DNS name is indexed with its labels reversed
//! (`www.example.com` as `com.example.www`), so "this name and the names under it" is
//! one range of the index. Precertificates stored before the tables existed are not
//! indexed (their migration says why), so only a search by account finds them.
//!
//! Every search reads precertificates with their status: a serial whose certificate
//! was never stored (the CA stopped in between) is found too, since the issuer key
//! may have signed it.

use std::net::IpAddr;

use async_trait::async_trait;
use basalt_core::AccountId;
use basalt_core::CertStatus;
use basalt_core::CertificateQuery;
use basalt_core::CertificateSearch;
use basalt_core::CertificateSelector;
use basalt_core::CertificateSummary;
use basalt_core::Error;
use basalt_core::Identifier;
use basalt_core::IdentifierType;
use basalt_core::Serial;
use basalt_policy::certificate_names;
use basalt_policy::certificate_spki;
use basalt_policy::spki_sha256;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use tracing::warn;

use super::SqlStorage;
use super::db_error;
use super::get;
use super::revocation_reason;
use crate::common::from_unix;
use crate::common::identifier_type_str;
use crate::common::parse_wire;
use crate::common::unix;
use crate::engine::sql;

// Each search returns, per certificate, its precertificate (for its names) and its
// serial's status; and filters on `s.status IN (…, …)` and an expiry after a time: a
// search for every certificate binds both statuses and the earliest time, one for
// active certificates only binds "good" twice and now, so each is one query text.

/// The certificates that name one identifier, or one of a range of reversed names
/// (an empty range names none).
pub(super) const SEARCH_BY_NAME: &str = "SELECT p.serial, p.account_id, p.der, p.issued_at,
     s.status, s.not_after, s.revoked_at, s.revoked_reason
     FROM precertificates p JOIN certificate_status s ON s.serial = p.serial
     WHERE p.serial IN (SELECT n.serial FROM issued_names n
         WHERE n.identifier_type = $1
         AND (n.reversed_name = $2 OR (n.reversed_name > $3 AND n.reversed_name < $4)))
     AND s.status IN ($5, $6) AND s.not_after > $7
     ORDER BY p.issued_at DESC, p.serial DESC
     LIMIT $8";

/// The certificates of one account.
pub(super) const SEARCH_BY_ACCOUNT: &str = "SELECT p.serial, p.account_id, p.der, p.issued_at,
     s.status, s.not_after, s.revoked_at, s.revoked_reason
     FROM precertificates p JOIN certificate_status s ON s.serial = p.serial
     WHERE p.account_id = $1
     AND s.status IN ($2, $3) AND s.not_after > $4
     ORDER BY p.issued_at DESC, p.serial DESC
     LIMIT $5";

/// The certificates of one key.
pub(super) const SEARCH_BY_KEY: &str = "SELECT p.serial, p.account_id, p.der, p.issued_at,
     s.status, s.not_after, s.revoked_at, s.revoked_reason
     FROM precertificates p JOIN certificate_status s ON s.serial = p.serial
     WHERE p.serial IN (SELECT k.serial FROM key_hash_serials k
         WHERE k.spki_sha256 = $1 AND k.not_after > $2)
     AND s.status IN ($3, $4)
     ORDER BY p.issued_at DESC, p.serial DESC
     LIMIT $5";

#[async_trait]
impl CertificateSearch for SqlStorage {
    /// One query, so one consistent snapshot. A DNS name is searched for in
    /// lowercase and without a trailing dot, an IP address in its canonical text, as
    /// certificates carry them; a name that is empty, has an empty label, or is not
    /// ASCII (search for its `xn--` form) is malformed, as are `subdomains` of an IP
    /// address.
    async fn search_certificates(
        &self,
        query: &CertificateQuery,
    ) -> Result<Vec<CertificateSummary>, Error> {
        let limit = i64::from(query.effective_limit());
        let (statuses, expires_after) = if query.active_only {
            ([CertStatus::Good, CertStatus::Good], unix(self.clock.now()))
        } else {
            ([CertStatus::Good, CertStatus::Revoked], i64::MIN)
        };
        let [first, second] = statuses.map(CertStatus::as_str);
        let rows = match &query.selector {
            CertificateSelector::Name {
                identifier,
                subdomains,
            } => {
                let range = NameRange::new(identifier, *subdomains)?;
                sqlx::query(self.sql(SEARCH_BY_NAME))
                    .bind(identifier_type_str(identifier.kind))
                    .bind(range.exact)
                    .bind(range.after)
                    .bind(range.before)
                    .bind(first)
                    .bind(second)
                    .bind(expires_after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
            }
            CertificateSelector::Account(account_id) => {
                sqlx::query(self.sql(SEARCH_BY_ACCOUNT))
                    .bind(account_id.0)
                    .bind(first)
                    .bind(second)
                    .bind(expires_after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
            }
            CertificateSelector::Key(hash) => {
                sqlx::query(self.sql(SEARCH_BY_KEY))
                    .bind(hash.as_bytes().as_slice())
                    .bind(expires_after)
                    .bind(first)
                    .bind(second)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(db_error("searching certificates"))?;
        rows.iter().map(summary_from_row).collect()
    }
}

/// A row of the searches.
fn summary_from_row(row: &AnyRow) -> Result<CertificateSummary, Error> {
    let serial: String = get(row, "serial")?;
    let der: Vec<u8> = get(row, "der")?;
    Ok(CertificateSummary {
        // The CA sends only certificates it has linted, so the DER parses; a row
        // whose DER does not (written by hand, or by a test) is listed without
        // names rather than failing the whole search.
        names: certificate_names(&der).unwrap_or_default(),
        serial: parse_wire(&serial, "precertificates.serial")?,
        account_id: AccountId(get(row, "account_id")?),
        not_before: from_unix(get(row, "issued_at")?)?,
        not_after: from_unix(get(row, "not_after")?)?,
        status: parse_wire(&get::<String>(row, "status")?, "certificate_status.status")?,
        revoked_at: get::<Option<i64>>(row, "revoked_at")?
            .map(from_unix)
            .transpose()?,
        revocation_reason: revocation_reason(get(row, "revoked_reason")?)?,
    })
}

/// What a name search compares `issued_names.reversed_name` with: equal to `exact`,
/// or after `after` and before `before`.
#[derive(Debug, PartialEq, Eq)]
struct NameRange {
    exact: String,
    after: String,
    before: String,
}

impl NameRange {
    fn new(identifier: &Identifier, subdomains: bool) -> Result<Self, Error> {
        let exact = searched_name(identifier)?;
        let (after, before) = match (subdomains, identifier.kind) {
            (false, _) => (String::new(), String::new()),
            (true, IdentifierType::Dns) => (format!("{exact}."), format!("{exact}/")),
            (true, IdentifierType::Ip) => {
                return Err(Error::malformed(format!(
                    "an IP address ({}) has no subdomains",
                    identifier.value
                )));
            }
        };
        Ok(Self {
            exact,
            after,
            before,
        })
    }
}

/// The indexed form of a name searched for.
fn searched_name(identifier: &Identifier) -> Result<String, Error> {
    let value = identifier.value.trim();
    match identifier.kind {
        IdentifierType::Ip => value
            .parse::<IpAddr>()
            .map(|ip| ip.to_string())
            .map_err(|_| Error::malformed(format!("{value:?} is not an IP address"))),
        IdentifierType::Dns => {
            let name = value.strip_suffix('.').unwrap_or(value);
            if !name.is_ascii() {
                return Err(Error::malformed(format!(
                    "search for {name:?} in its ASCII form (xn--…), as certificates carry it"
                )));
            }
            if name.is_empty()
                || name.split('.').any(str::is_empty)
                || name.contains(|c: char| c.is_ascii_whitespace() || c.is_ascii_control())
            {
                return Err(Error::malformed(format!("{value:?} is not a DNS name")));
            }
            Ok(reversed(&name.to_ascii_lowercase()))
        }
    }
}

/// A DNS name with its labels in reverse order: `www.example.com` becomes
/// `com.example.www`.
fn reversed(name: &str) -> String {
    name.rsplit('.').collect::<Vec<_>>().join(".")
}

/// Indexes a precertificate being stored, inside the transaction that stores it:
/// its names with `not_before`, its key with `not_after`.
///
/// The CA stores only linted certificates, so a DER that cannot be read is not one
/// of its precertificates but a bug; it is stored unindexed, with a warning, rather
/// than refused: refusing it would stop issuance over a search index.
pub(super) async fn index_precertificate(
    conn: &mut AnyConnection,
    serial: &Serial,
    der: &[u8],
    not_before: i64,
    not_after: i64,
) -> Result<(), Error> {
    let (names, spki) = match (certificate_names(der), certificate_spki(der)) {
        (Ok(names), Ok(spki)) => (names, spki),
        (Err(err), _) | (_, Err(err)) => {
            warn!(
                serial = %serial,
                error = %err,
                "a precertificate cannot be read; it is not indexed for certificate search"
            );
            return Ok(());
        }
    };
    for name in &names {
        let indexed = match name.kind {
            IdentifierType::Dns => reversed(&name.value),
            IdentifierType::Ip => name.value.clone(),
        };
        sqlx::query(sql(
            conn,
            "INSERT INTO issued_names (identifier_type, reversed_name, serial, not_before)
             VALUES ($1, $2, $3, $4)",
        ))
        .bind(identifier_type_str(name.kind))
        .bind(indexed)
        .bind(serial.to_string())
        .bind(not_before)
        .execute(&mut *conn)
        .await
        .map_err(db_error("indexing a precertificate's names"))?;
    }
    sqlx::query(sql(
        conn,
        "INSERT INTO key_hash_serials (spki_sha256, serial, not_after) VALUES ($1, $2, $3)",
    ))
    .bind(spki_sha256(&spki).as_bytes().as_slice())
    .bind(serial.to_string())
    .bind(not_after)
    .execute(&mut *conn)
    .await
    .map_err(db_error("indexing a precertificate's key"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_reversed_by_label() {
        assert_eq!(reversed("www.example.com"), "com.example.www");
        assert_eq!(reversed("*.example.com"), "com.example.*");
        assert_eq!(reversed("localhost"), "localhost");
    }

    #[test]
    fn searched_names_are_normalized_like_certificate_names() {
        let range = NameRange::new(&Identifier::dns(" WWW.Example.COM. "), false).unwrap();
        assert_eq!(
            range,
            NameRange {
                exact: "com.example.www".into(),
                after: String::new(),
                before: String::new(),
            }
        );
        let range = NameRange::new(&Identifier::dns("example.com"), true).unwrap();
        assert_eq!(
            (range.after.as_str(), range.before.as_str()),
            ("com.example.", "com.example/")
        );
        // Everything under the name sorts inside the range; a sibling with a longer
        // label does not.
        for under in ["com.example.www", "com.example.*", "com.example.a.b"] {
            assert!(
                range.after.as_str() < under && under < range.before.as_str(),
                "{under}"
            );
        }
        for outside in [
            "com.example-1",
            "com.examples",
            "com.example0",
            "com.exampl",
        ] {
            assert!(
                !(range.after.as_str() < outside && outside < range.before.as_str()),
                "{outside}"
            );
        }
        let ip = NameRange::new(&Identifier::ip("2001:DB8:0::1"), false).unwrap();
        assert_eq!(ip.exact, "2001:db8::1");
    }

    #[test]
    fn unsearchable_names_are_malformed() {
        for (identifier, subdomains) in [
            (Identifier::dns(""), false),
            (Identifier::dns("."), false),
            (Identifier::dns("a..example"), false),
            (Identifier::dns("a example"), false),
            (Identifier::dns("bücher.example"), false),
            (Identifier::ip("192.0.2.300"), false),
            (Identifier::ip("192.0.2.1"), true),
        ] {
            let err = NameRange::new(&identifier, subdomains).unwrap_err();
            assert_eq!(
                err.kind,
                basalt_core::ErrorKind::Malformed,
                "{identifier:?}"
            );
        }
    }
}
