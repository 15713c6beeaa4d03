//! Fresh databases for tests, on every engine, and what a test needs to look behind
//! the storage traits (row counts, injected failures).
//!
//! SQLite databases are files in the temp dir. PostgreSQL and MySQL databases are
//! created on the servers named by `BASALT_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and `BASALT_TEST_MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/test`), one per test (`basalt_test_<random>`), and
//! dropped afterwards, so tests run in parallel. When a server is not reachable its
//! tests FAIL, naming the variable: they never pass without the server. To leave an
//! engine out on a machine without it, filter its tests out, e.g.
//! `cargo nextest run -E 'not test(/::mysql::/)'`, and nextest counts them as skipped.

use std::path::PathBuf;
use std::sync::Arc;

use basalt_core::FixedClock;
use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;
use sqlx::Connection;
use sqlx::Row;

use crate::Engine;
use crate::SqlStorage;

/// The PostgreSQL server used when `BASALT_TEST_POSTGRES_URL` is not set.
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The MySQL/MariaDB server used when `BASALT_TEST_MYSQL_URL` is not set.
const DEFAULT_MYSQL: &str = "mysql://root@127.0.0.1:3306/test";

/// The server URL tests of `engine` use (`None` for SQLite, which needs none).
pub(crate) fn server_url(engine: Engine) -> Option<String> {
    let (variable, default) = match engine {
        Engine::Sqlite => return None,
        Engine::Postgres => ("BASALT_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        Engine::MySql => ("BASALT_TEST_MYSQL_URL", DEFAULT_MYSQL),
    };
    Some(std::env::var(variable).unwrap_or_else(|_| default.to_owned()))
}

fn server_variable(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "",
        Engine::Postgres => "BASALT_TEST_POSTGRES_URL",
        Engine::MySql => "BASALT_TEST_MYSQL_URL",
    }
}

/// `url` with its database replaced by `name`, query string kept.
pub(crate) fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(i) => &base[..host_start + i],
        None => base,
    };
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    format!("{base}/{name}{query}")
}

async fn admin_connection(engine: Engine, server: &str) -> AnyConnection {
    sqlx::any::install_default_drivers();
    match AnyConnection::connect(server).await {
        Ok(conn) => conn,
        Err(err) => panic!(
            "{engine} is not reachable at {server} ({err}): these tests need a running \
             server; start one or point {} at one",
            server_variable(engine)
        ),
    }
}

/// A database of its own for one test; dropping it removes the database.
pub(crate) struct TestDatabase {
    engine: Engine,
    /// The server's URL (its maintenance database), for the drop.
    server: Option<String>,
    /// The database's name, or the SQLite file's path.
    name: String,
    /// What `SqlStorage::connect` takes.
    pub(crate) url: String,
}

impl TestDatabase {
    /// Creates an empty database on `engine`.
    pub(crate) async fn create(engine: Engine) -> Self {
        let db = Self::named(engine);
        let Some(server) = db.server.clone() else {
            return db;
        };
        let mut conn = admin_connection(engine, &server).await;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {}", db.name)))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        db
    }

    /// A fresh name on `engine`'s server, with no database behind it yet (dropped
    /// all the same, if a test creates it).
    pub(crate) fn named(engine: Engine) -> Self {
        let name = format!("basalt_test_{:016x}", rand::random::<u64>());
        let Some(server) = server_url(engine) else {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            return Self {
                engine,
                server: None,
                url: format!("sqlite://{}", path.display()),
                name: path.display().to_string(),
            };
        };
        let url = with_database(&server, &name);
        Self {
            engine,
            server: Some(server),
            name,
            url,
        }
    }

    /// Has the server close every connection to this database but the one asking.
    pub(crate) async fn drop_connections(&self) {
        let server = self.server.as_deref().expect("a server engine");
        let mut conn = admin_connection(self.engine, server).await;
        let victims = match self.engine {
            Engine::Postgres => format!(
                "SELECT CAST(pid AS BIGINT) AS id FROM pg_stat_activity
                 WHERE datname = '{}' AND pid <> pg_backend_pid()",
                self.name
            ),
            _ => format!(
                "SELECT CAST(id AS SIGNED) AS id FROM information_schema.processlist
                 WHERE db = '{}' AND id <> CONNECTION_ID()",
                self.name
            ),
        };
        let ids: Vec<i64> = sqlx::query(AssertSqlSafe(victims))
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get("id"))
            .collect();
        assert!(!ids.is_empty(), "the SA holds no connection to drop");
        conn.close().await.unwrap();
        for id in ids {
            self.end_connection(id).await;
        }
    }

    /// Has the server end the connection with server-side id `id`.
    pub(crate) async fn end_connection(&self, id: i64) {
        let server = self.server.as_deref().expect("a server engine");
        let mut conn = admin_connection(self.engine, server).await;
        let kill = match self.engine {
            Engine::Postgres => format!("SELECT pg_terminate_backend({id})"),
            _ => format!("KILL CONNECTION {id}"),
        };
        // A connection may close on its own in the meantime.
        let _ = sqlx::raw_sql(AssertSqlSafe(kill)).execute(&mut conn).await;
        conn.close().await.unwrap();
    }

    /// A migrated storage on a fresh database, with `clock`.
    pub(crate) async fn fresh(engine: Engine, clock: &FixedClock) -> (SqlStorage, Self) {
        let db = Self::create(engine).await;
        let sa = SqlStorage::connect(&db.url, Arc::new(clock.clone()))
            .await
            .unwrap();
        (sa, db)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(server) = self.server.clone() else {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(PathBuf::from(format!("{}{suffix}", self.name)));
            }
            return;
        };
        let drop_statement = match self.engine {
            Engine::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            _ => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of
        // its own with a runtime of its own drops the database.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = AnyConnection::connect(&server).await {
                    let _ = sqlx::query(AssertSqlSafe(drop_statement))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// Test-only access behind the storage traits.
impl SqlStorage {
    /// How many rows `table` holds.
    pub(crate) async fn count_rows(&self, table: &str) -> i64 {
        sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
            .fetch_one(self.pool())
            .await
            .unwrap()
            .get("n")
    }

    /// Makes every `event` (`INSERT` or `UPDATE`) on `table` fail while `when` (a
    /// condition on `NEW`, or `None` for always) holds, until
    /// [`SqlStorage::drop_trigger`].
    pub(crate) async fn add_failing_trigger(
        &self,
        name: &str,
        event: &str,
        table: &str,
        when: Option<&str>,
    ) {
        match self.engine() {
            Engine::Sqlite => {
                let when = when.map(|when| format!("WHEN {when}")).unwrap_or_default();
                self.run(format!(
                    "CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW {when}
                     BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                ))
                .await;
            }
            Engine::Postgres => {
                self.run(
                    "CREATE OR REPLACE FUNCTION basalt_test_fail() RETURNS trigger
                     LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
                        .to_owned(),
                )
                .await;
                let when = when
                    .map(|when| format!("WHEN ({when})"))
                    .unwrap_or_default();
                self.run(format!(
                    "CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW {when}
                     EXECUTE FUNCTION basalt_test_fail()"
                ))
                .await;
            }
            Engine::MySql => {
                let when = when.unwrap_or("TRUE");
                self.run(format!(
                    "CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW
                     BEGIN
                       IF {when} THEN
                         SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure';
                       END IF;
                     END"
                ))
                .await;
            }
        }
    }

    /// Removes a trigger that [`SqlStorage::add_failing_trigger`] added.
    pub(crate) async fn drop_trigger(&self, name: &str, table: &str) {
        match self.engine() {
            Engine::Postgres => self.run(format!("DROP TRIGGER {name} ON {table}")).await,
            Engine::Sqlite | Engine::MySql => self.run(format!("DROP TRIGGER {name}")).await,
        }
    }

    async fn run(&self, statement: String) {
        sqlx::raw_sql(AssertSqlSafe(statement))
            .execute(self.pool())
            .await
            .unwrap();
    }
}

#[test]
fn test_databases_replace_the_server_url_database() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgresql://u:p@db/test?sslmode=disable", "x"),
        "postgresql://u:p@db/x?sslmode=disable"
    );
    assert_eq!(with_database("mysql://root@db", "x"), "mysql://root@db/x");
}
