//! Row decoding into domain types, and the small conversions the queries need.

use std::fmt;
use std::str::FromStr;

use basalt_core::Account;
use basalt_core::AccountId;
use basalt_core::Challenge;
use basalt_core::EabKey;
use basalt_core::Error;
use basalt_core::Identifier;
use basalt_core::IdentifierType;
use basalt_core::Incident;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use tracing::error;

/// The column types Basalt's schema uses, read by name from a row.
pub(crate) trait Columns {
    /// A BIGINT / INTEGER column.
    fn int(&self, column: &'static str) -> Result<i64, Error>;
    /// A nullable integer column.
    fn opt_int(&self, column: &'static str) -> Result<Option<i64>, Error>;
    /// A TEXT column.
    fn text(&self, column: &'static str) -> Result<String, Error>;
    /// A nullable TEXT column.
    fn opt_text(&self, column: &'static str) -> Result<Option<String>, Error>;
    /// A BLOB / BYTEA column.
    fn bytes(&self, column: &'static str) -> Result<Vec<u8>, Error>;
}

impl Columns for AnyRow {
    fn int(&self, column: &'static str) -> Result<i64, Error> {
        self.try_get(column).map_err(row_error)
    }

    fn opt_int(&self, column: &'static str) -> Result<Option<i64>, Error> {
        self.try_get(column).map_err(row_error)
    }

    fn text(&self, column: &'static str) -> Result<String, Error> {
        self.try_get(column).map_err(row_error)
    }

    fn opt_text(&self, column: &'static str) -> Result<Option<String>, Error> {
        self.try_get(column).map_err(row_error)
    }

    fn bytes(&self, column: &'static str) -> Result<Vec<u8>, Error> {
        self.try_get(column).map_err(row_error)
    }
}

fn row_error(err: sqlx::Error) -> Error {
    error!(error = %err, "cannot read a database row");
    Error::internal(format!("database error while reading a row: {err}"))
}

pub(crate) fn account_from_row(row: &impl Columns) -> Result<Account, Error> {
    Ok(Account {
        id: AccountId(row.int("id")?),
        key_jwk: row.text("key_jwk")?,
        key_thumbprint: row.text("key_thumbprint")?,
        contacts: from_json(&row.text("contacts")?, "contacts")?,
        status: parse_wire(&row.text("status")?, "accounts.status")?,
        created_at: from_unix(row.int("created_at")?)?,
    })
}

pub(crate) fn eab_key_from_row(row: &impl Columns) -> Result<EabKey, Error> {
    Ok(EabKey {
        key_id: row.text("key_id")?,
        hmac_key: row.bytes("hmac_key")?,
        comment: row.text("comment")?,
        created_at: from_unix(row.int("created_at")?)?,
        revoked: row.int("revoked")? != 0,
        account_id: row.opt_int("account_id")?.map(AccountId),
    })
}

pub(crate) fn incident_from_row(row: &impl Columns) -> Result<Incident, Error> {
    let serials = row.int("serial_count")?;
    Ok(Incident {
        id: row.int("id")?,
        name: row.text("name")?,
        url: row.text("url")?,
        created_at: from_unix(row.int("created_at")?)?,
        serials: u64::try_from(serials)
            .map_err(|_| corrupt(format!("incidents.serial_count {serials}")))?,
    })
}

pub(crate) fn challenge_from_row(row: &impl Columns) -> Result<Challenge, Error> {
    Ok(Challenge {
        kind: parse_wire(&row.text("kind")?, "challenges.kind")?,
        token: row.text("token")?,
        status: parse_wire(&row.text("status")?, "challenges.status")?,
        validated: row.opt_int("validated")?.map(from_unix).transpose()?,
        error: row
            .opt_text("error")?
            .map(|text| from_json(&text, "challenges.error"))
            .transpose()?,
        validation_records: from_json(&row.text("validation_records")?, "validation_records")?,
    })
}

pub(crate) fn identifier_from_row(row: &impl Columns) -> Result<Identifier, Error> {
    let kind = match row.text("identifier_type")?.as_str() {
        "dns" => IdentifierType::Dns,
        "ip" => IdentifierType::Ip,
        other => return Err(corrupt(format!("identifier_type {other:?}"))),
    };
    Ok(Identifier {
        kind,
        value: row.text("identifier_value")?,
    })
}

/// The one answer for every unusable EAB key, so a caller cannot tell an unknown key
/// from a used one.
pub(crate) fn eab_refused() -> Error {
    Error::unauthorized("external account binding key ID is unknown, revoked or already used")
}

pub(crate) fn identifier_type_str(kind: IdentifierType) -> &'static str {
    match kind {
        IdentifierType::Dns => "dns",
        IdentifierType::Ip => "ip",
    }
}

/// Reads a cursor that `orders_for_account` made: `"<created_at>.<id>"`, both
/// non-negative decimal integers. Anything else is the client's doing.
pub(crate) fn parse_cursor(cursor: &str) -> Result<(i64, i64), Error> {
    let number = |text: &str| {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse::<i64>().ok()
    };
    cursor
        .split_once('.')
        .and_then(|(created_at, id)| Some((number(created_at)?, number(id)?)))
        .ok_or_else(|| Error::malformed("invalid cursor"))
}

/// A random positive ID: unguessable, and no sequence for a distributed engine to
/// coordinate.
pub(crate) fn new_id() -> i64 {
    rand::random_range(1..i64::MAX)
}

pub(crate) fn unix(at: OffsetDateTime) -> i64 {
    at.unix_timestamp()
}

pub(crate) fn from_unix(seconds: i64) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|_| corrupt(format!("timestamp {seconds}")))
}

pub(crate) fn position_value(position: usize) -> Result<i64, Error> {
    i64::try_from(position).map_err(|_| Error::malformed("too many items"))
}

pub(crate) fn parse_wire<T: FromStr>(text: &str, column: &str) -> Result<T, Error> {
    text.parse()
        .map_err(|_| corrupt(format!("{column} {text:?}")))
}

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value)
        .map_err(|err| Error::internal(format!("cannot encode a column as json: {err}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(text: &str, column: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|err| corrupt(format!("{column}: {err}")))
}

/// A row that does not decode: a bug or a hand-edited database, never client input.
pub(crate) fn corrupt(what: impl fmt::Display) -> Error {
    error!(detail = %what, "corrupt database row");
    Error::internal(format!("corrupt database row: {what}"))
}

pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|err| err.is_unique_violation())
}

/// Maps a database failure to the cross-service error, logging the cause. A lost
/// connection or a server going down is `unavailable`, which callers retry; anything
/// else is `internal`.
pub(crate) fn db_error(operation: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |err| {
        error!(operation, error = %err, "database error");
        if connection_lost(&err) {
            Error::unavailable(format!("database unavailable while {operation}: {err}"))
        } else {
            Error::internal(format!("database error while {operation}: {err}"))
        }
    }
}

/// Whether `err` says the connection or the server went away rather than that the
/// statement failed.
fn connection_lost(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                // Server shutting down, connection killed, query interrupted by a
                // KILL, lost or gone connection.
                return matches!(mysql.number(), 1053 | 1077 | 1317 | 1927 | 2006 | 2013);
            }
            // PostgreSQL's SQLSTATE classes 08 (connection exception) and 57 (operator
            // intervention: admin shutdown, crash shutdown, cannot connect now).
            db.code()
                .is_some_and(|code| code.starts_with("08") || code.starts_with("57"))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_are_unavailable_and_the_rest_internal() {
        assert_eq!(
            db_error("testing")(sqlx::Error::PoolTimedOut).kind,
            basalt_core::ErrorKind::Unavailable
        );
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(
            db_error("testing")(sqlx::Error::Io(io)).kind,
            basalt_core::ErrorKind::Unavailable
        );
        assert_eq!(
            db_error("testing")(sqlx::Error::RowNotFound).kind,
            basalt_core::ErrorKind::Internal
        );
    }
}
