//! What differs between the database engines, in one place.
//!
//! The SA runs the same queries on every engine through sqlx's `Any` driver. The
//! queries are written once, with PostgreSQL's numbered bind parameters (`$1`, `$2`, …),
//! which SQLite also accepts; [`sql`] rewrites them to MySQL's `?` when the connection
//! is a MySQL/MariaDB one. What cannot be written once lives here: how a transaction
//! starts, how each connection is set up, which failures a retry may cure, and the
//! schema (each engine has its own migrations).

use std::borrow::Cow;
use std::fmt;

use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;
use sqlx::error::DatabaseError;
use sqlx::mysql::MySqlDatabaseError;

/// A database engine the SA can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Engine {
    /// SQLite: the embedded default of `basalt dev` and single-node labs.
    Sqlite,
    /// PostgreSQL (and, within its limits, CockroachDB): the production engine.
    Postgres,
    /// MySQL or MariaDB, as Boulder runs.
    MySql,
}

/// How many connections an in-memory SQLite database may have: exactly one, since the
/// database lives only as long as a connection to it.
pub(crate) const SQLITE_MEMORY_CONNECTIONS: u32 = 1;

impl Engine {
    /// The engine a database URL names by its scheme: `sqlite:`, `postgres://` /
    /// `postgresql://`, or `mysql://` / `mariadb://`.
    pub fn from_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':')?.0;
        match scheme {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::MySql),
            _ => None,
        }
    }

    /// The engine behind an open connection.
    pub(crate) fn of(conn: &AnyConnection) -> Self {
        match conn.backend_name() {
            "PostgreSQL" => Self::Postgres,
            "MySQL" => Self::MySql,
            _ => Self::Sqlite,
        }
    }

    /// The statement that starts a transaction that reads and then writes.
    ///
    /// - SQLite: `BEGIN IMMEDIATE` takes the write lock at once, so two connections
    ///   never race on a row and a WAL reader never has to upgrade to a writer.
    /// - PostgreSQL: `SERIALIZABLE`; a transaction that would break serializability
    ///   fails with SQLSTATE 40001 and is run again whole (see [`Engine::is_retryable`]).
    /// - MySQL/MariaDB: `SERIALIZABLE` too, where InnoDB turns every read into a
    ///   shared lock; two transactions that read a row and then both write it deadlock,
    ///   one is rolled back (error 1213) and is run again whole.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN ISOLATION LEVEL SERIALIZABLE",
            Self::MySql => "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; START TRANSACTION",
        }
    }

    /// The statement that starts a transaction that only reads: a consistent snapshot
    /// that takes no locks and never fails to serialize.
    pub(crate) fn begin_read(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN",
            Self::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            Self::MySql => {
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; \
                 START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"
            }
        }
    }

    /// Statements run on every new connection.
    pub(crate) fn session_setup(self) -> &'static str {
        match self {
            // WAL lets readers run beside the writer; FULL makes a commit the SA
            // acknowledged survive a power cut, not only a crash; the busy timeout makes
            // a connection wait for another one's write lock rather than fail at once.
            Self::Sqlite => {
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000"
            }
            Self::Postgres => "",
            // Strict mode refuses a value that does not fit rather than truncating it;
            // a short lock wait turns a stuck row lock into a retry, not a 50 s hang.
            Self::MySql => {
                "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'; \
                 SET SESSION innodb_lock_wait_timeout = 5"
            }
        }
    }

    /// Whether a failed statement is one that running the whole transaction again
    /// may cure: a serialization failure or deadlock (SQLSTATE 40001, PostgreSQL's
    /// 40P01, MySQL's 1213), a lock wait that timed out (MySQL 1205), or SQLite's busy
    /// database.
    pub(crate) fn is_retryable(err: &dyn DatabaseError) -> bool {
        if let Some(mysql) = err.try_downcast_ref::<MySqlDatabaseError>() {
            return matches!(mysql.number(), 1205 | 1213);
        }
        match err.code().as_deref() {
            Some("40001" | "40P01") => true,
            // SQLITE_BUSY and SQLITE_LOCKED, with or without extended codes.
            Some(code) => matches!(code.parse::<u32>().map(|c| c & 0xff), Ok(5 | 6)),
            None => false,
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        })
    }
}

/// A query in Basalt's SQL as the engine behind `conn` wants it.
pub(crate) fn sql(conn: &AnyConnection, text: &'static str) -> AssertSqlSafe<Cow<'static, str>> {
    for_engine(Engine::of(conn), text)
}

/// A query in Basalt's SQL as `engine` wants it: MySQL gets `?` bind parameters.
pub(crate) fn for_engine(engine: Engine, text: &'static str) -> AssertSqlSafe<Cow<'static, str>> {
    match engine {
        Engine::MySql => AssertSqlSafe(Cow::Owned(question_marks(text))),
        Engine::Sqlite | Engine::Postgres => AssertSqlSafe(Cow::Borrowed(text)),
    }
}

/// Replaces `$1`, `$2`, … with `?`. MySQL binds by position, so the numbers must run
/// 1, 2, 3… in the text, each used once; every query is written so, and the
/// conformance suite runs every query on MySQL, so a debug build catches a slip.
fn question_marks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    let mut expected = 1u32;
    while let Some((_, c)) = chars.next() {
        if c != '$' || !chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) {
            out.push(c);
            continue;
        }
        let mut number = 0u32;
        while let Some((_, d)) = chars.peek().copied().filter(|(_, d)| d.is_ascii_digit()) {
            number = number
                .saturating_mul(10)
                .saturating_add(d.to_digit(10).unwrap_or(0));
            chars.next();
        }
        debug_assert_eq!(number, expected, "bind parameters out of order in: {text}");
        expected += 1;
        out.push('?');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_engine() {
        assert_eq!(Engine::from_url("sqlite::memory:"), Some(Engine::Sqlite));
        assert_eq!(
            Engine::from_url("sqlite:///var/lib/b.db"),
            Some(Engine::Sqlite)
        );
        assert_eq!(
            Engine::from_url("postgres://u@h/db"),
            Some(Engine::Postgres)
        );
        assert_eq!(
            Engine::from_url("postgresql://u@h/db"),
            Some(Engine::Postgres)
        );
        assert_eq!(Engine::from_url("mysql://root@h/db"), Some(Engine::MySql));
        assert_eq!(Engine::from_url("mariadb://root@h/db"), Some(Engine::MySql));
        assert_eq!(Engine::from_url("oracle://h/db"), None);
        assert_eq!(Engine::from_url("basalt.db"), None);
    }

    #[test]
    fn mysql_gets_question_marks() {
        let text = "UPDATE t SET a = $1, b = $2 WHERE c = $3 AND d = '$x' AND e = $10";
        let rewritten = std::panic::catch_unwind(|| question_marks(text));
        // `$10` after `$3` is out of order: a debug build refuses it.
        assert_eq!(rewritten.is_err(), cfg!(debug_assertions));
        assert_eq!(
            question_marks("SELECT a FROM t WHERE b = $1 AND c = $2 LIMIT $3"),
            "SELECT a FROM t WHERE b = ? AND c = ? LIMIT ?"
        );
        assert_eq!(question_marks("SELECT '$' || x"), "SELECT '$' || x");
        assert_eq!(
            for_engine(Engine::Postgres, "SELECT $1").0,
            Cow::Borrowed("SELECT $1")
        );
    }
}
