//! Each engine's schema history, and applying it.
//!
//! A migration is applied once, in its own write transaction, and recorded in
//! `schema_migrations`; applying is safe to repeat and to run from two SAs at once.
//! PostgreSQL and SQLite make a migration and its record one transaction. MySQL commits
//! DDL implicitly, so there the migrator holds a named lock (`GET_LOCK`) for the whole
//! run and every MySQL migration is written to be safe to run again after a crash.

use std::sync::Arc;

use basalt_core::Clock;
use basalt_core::Error;
use sqlx::AnyConnection;
use sqlx::AnyPool;
use sqlx::AssertSqlSafe;
use sqlx::Connection;
use sqlx::Row;
use tracing::info;
use tracing::warn;

use crate::common::unix;
use crate::engine::Engine;
use crate::engine::for_engine;
use crate::engine::sql;
use crate::storage::db_error;

/// One schema change.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// SQLite's history, oldest first. Never edit an applied file: add one.
const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "orders_by_account",
        sql: include_str!("../migrations/sqlite/0002_orders_by_account.sql"),
    },
    Migration {
        version: 3,
        name: "profiles_replaces_eab",
        sql: include_str!("../migrations/sqlite/0003_profiles_replaces_eab.sql"),
    },
    Migration {
        version: 4,
        name: "maintenance",
        sql: include_str!("../migrations/sqlite/0004_maintenance.sql"),
    },
    Migration {
        version: 5,
        name: "processing_attempt",
        sql: include_str!("../migrations/sqlite/0005_processing_attempt.sql"),
    },
    Migration {
        version: 6,
        name: "challenge_attempt",
        sql: include_str!("../migrations/sqlite/0006_challenge_attempt.sql"),
    },
    Migration {
        version: 7,
        name: "blocked_keys",
        sql: include_str!("../migrations/sqlite/0007_blocked_keys.sql"),
    },
    Migration {
        version: 8,
        name: "precertificate_status",
        sql: include_str!("../migrations/sqlite/0008_precertificate_status.sql"),
    },
    Migration {
        version: 9,
        name: "incidents",
        sql: include_str!("../migrations/sqlite/0009_incidents.sql"),
    },
    Migration {
        version: 10,
        name: "crl_placement",
        sql: include_str!("../migrations/sqlite/0010_crl_placement.sql"),
    },
    Migration {
        version: 11,
        name: "certificate_search",
        sql: include_str!("../migrations/sqlite/0011_certificate_search.sql"),
    },
];

/// PostgreSQL's history. Version 1 is the end state of SQLite's versions 1 to 3;
/// later versions match SQLite's, less 2.
const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "maintenance",
        sql: include_str!("../migrations/postgres/0002_maintenance.sql"),
    },
    Migration {
        version: 3,
        name: "processing_attempt",
        sql: include_str!("../migrations/postgres/0003_processing_attempt.sql"),
    },
    Migration {
        version: 4,
        name: "challenge_attempt",
        sql: include_str!("../migrations/postgres/0004_challenge_attempt.sql"),
    },
    Migration {
        version: 5,
        name: "blocked_keys",
        sql: include_str!("../migrations/postgres/0005_blocked_keys.sql"),
    },
    Migration {
        version: 6,
        name: "precertificate_status",
        sql: include_str!("../migrations/postgres/0006_precertificate_status.sql"),
    },
    Migration {
        version: 7,
        name: "incidents",
        sql: include_str!("../migrations/postgres/0007_incidents.sql"),
    },
    Migration {
        version: 8,
        name: "crl_placement",
        sql: include_str!("../migrations/postgres/0008_crl_placement.sql"),
    },
    Migration {
        version: 9,
        name: "certificate_search",
        sql: include_str!("../migrations/postgres/0009_certificate_search.sql"),
    },
];

/// MySQL/MariaDB's history, numbered as PostgreSQL's.
const MYSQL: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/mysql/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "maintenance",
        sql: include_str!("../migrations/mysql/0002_maintenance.sql"),
    },
    Migration {
        version: 3,
        name: "processing_attempt",
        sql: include_str!("../migrations/mysql/0003_processing_attempt.sql"),
    },
    Migration {
        version: 4,
        name: "challenge_attempt",
        sql: include_str!("../migrations/mysql/0004_challenge_attempt.sql"),
    },
    Migration {
        version: 5,
        name: "blocked_keys",
        sql: include_str!("../migrations/mysql/0005_blocked_keys.sql"),
    },
    Migration {
        version: 6,
        name: "precertificate_status",
        sql: include_str!("../migrations/mysql/0006_precertificate_status.sql"),
    },
    Migration {
        version: 7,
        name: "incidents",
        sql: include_str!("../migrations/mysql/0007_incidents.sql"),
    },
    Migration {
        version: 8,
        name: "crl_placement",
        sql: include_str!("../migrations/mysql/0008_crl_placement.sql"),
    },
    Migration {
        version: 9,
        name: "certificate_search",
        sql: include_str!("../migrations/mysql/0009_certificate_search.sql"),
    },
];

/// The name of the lock MySQL migrators take, and how long one waits for it.
const MYSQL_LOCK: &str = "SELECT GET_LOCK('basalt_sa_migrate', 60) AS locked";
const MYSQL_UNLOCK: &str = "SELECT RELEASE_LOCK('basalt_sa_migrate') AS released";

pub(crate) fn history(engine: Engine) -> &'static [Migration] {
    match engine {
        Engine::Sqlite => SQLITE,
        Engine::Postgres => POSTGRES,
        Engine::MySql => MYSQL,
    }
}

/// The newest schema version this binary knows for `engine`.
pub(crate) fn latest(engine: Engine) -> i64 {
    history(engine).last().map_or(0, |m| m.version)
}

/// The versions the database has applied, oldest first; empty on a new database.
pub(crate) async fn applied(pool: &AnyPool, engine: Engine) -> Result<Vec<i64>, Error> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(db_error("reading schema_migrations"))?;
    create_table(&mut conn, engine).await?;
    let rows = sqlx::query(for_engine(
        engine,
        "SELECT version FROM schema_migrations ORDER BY version",
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error("reading schema_migrations"))?;
    rows.iter()
        .map(|row| row.try_get::<i64, _>("version"))
        .collect::<Result<_, _>>()
        .map_err(db_error("reading schema_migrations"))
}

async fn create_table(conn: &mut AnyConnection, engine: Engine) -> Result<(), Error> {
    sqlx::query(for_engine(
        engine,
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT NOT NULL PRIMARY KEY,
            applied_at BIGINT NOT NULL
        )",
    ))
    .execute(&mut *conn)
    .await
    .map_err(db_error("creating schema_migrations"))?;
    Ok(())
}

/// Applies every migration the database lacks, on one connection, and returns the
/// versions applied now (empty when the schema was current).
pub(crate) async fn apply(
    pool: &AnyPool,
    engine: Engine,
    clock: &Arc<dyn Clock>,
) -> Result<Vec<i64>, Error> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(db_error("migrating the database"))?;
    if engine == Engine::MySql {
        let locked: Option<i64> = sqlx::query(MYSQL_LOCK)
            .fetch_one(&mut *conn)
            .await
            .and_then(|row| row.try_get("locked"))
            .map_err(db_error("taking the migration lock"))?;
        if locked != Some(1) {
            return Err(Error::unavailable(
                "another SA held the migration lock for 60 s; try again",
            ));
        }
    }
    let result = apply_on(&mut conn, engine, clock).await;
    if engine == Engine::MySql {
        // The lock dies with the session anyway; releasing it lets a waiting SA go on.
        if let Err(err) = sqlx::query(MYSQL_UNLOCK).fetch_one(&mut *conn).await {
            warn!(error = %err, "could not release the migration lock");
        }
    }
    result
}

async fn apply_on(
    conn: &mut AnyConnection,
    engine: Engine,
    clock: &Arc<dyn Clock>,
) -> Result<Vec<i64>, Error> {
    create_table(conn, engine).await?;
    let mut applied_now = Vec::new();
    for migration in history(engine) {
        let mut tx = conn
            .begin_with(engine.begin_write())
            .await
            .map_err(db_error("starting a migration"))?;
        let applied = sqlx::query(sql(
            &tx,
            "SELECT version FROM schema_migrations WHERE version = $1",
        ))
        .bind(migration.version)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error("reading schema_migrations"))?;
        if applied.is_some() {
            continue;
        }
        sqlx::raw_sql(migration.sql)
            .execute(&mut *tx)
            .await
            .map_err(db_error("applying a migration"))?;
        sqlx::query(sql(
            &tx,
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
        ))
        .bind(migration.version)
        .bind(unix(clock.now()))
        .execute(&mut *tx)
        .await
        .map_err(db_error("recording a migration"))?;
        tx.commit()
            .await
            .map_err(db_error("committing a migration"))?;
        info!(
            engine = %engine,
            version = migration.version,
            name = migration.name,
            "database migration applied"
        );
        applied_now.push(migration.version);
    }
    Ok(applied_now)
}

/// Creates the database `url` names on its server if it does not exist yet, and says
/// whether it did; for `basalt dev --db` and first-time set-ups. SQLite files are
/// created when opened, so for SQLite this does nothing. The database name must be
/// letters, digits and underscores.
pub async fn create_database_if_missing(url: &str) -> Result<bool, Error> {
    sqlx::any::install_default_drivers();
    let engine = Engine::from_url(url)
        .ok_or_else(|| Error::internal("database.url: unsupported database url"))?;
    if engine == Engine::Sqlite {
        return Ok(false);
    }
    let mut server = url::Url::parse(url)
        .map_err(|err| Error::internal(format!("database.url: invalid url: {err}")))?;
    let name = server.path().trim_start_matches('/').to_owned();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Error::internal(format!(
            "database.url: database name {name:?} must be letters, digits and underscores"
        )));
    }
    // Connect to the server itself: PostgreSQL's maintenance database, or no
    // database at all on MySQL.
    server.set_path(match engine {
        Engine::Postgres => "/postgres",
        _ => "",
    });
    let mut conn = AnyConnection::connect(server.as_str())
        .await
        .map_err(db_error("connecting to the database server"))?;
    let created = match engine {
        Engine::Postgres => {
            let exists = sqlx::query("SELECT 1 AS found FROM pg_database WHERE datname = $1")
                .bind(&name)
                .fetch_optional(&mut conn)
                .await
                .map_err(db_error("looking for the database"))?;
            if exists.is_none() {
                let created = sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await;
                match created {
                    Ok(_) => true,
                    // Another process created it in the meantime.
                    Err(err)
                        if err.as_database_error().and_then(|e| e.code()).as_deref()
                            == Some("42P04") =>
                    {
                        false
                    }
                    Err(err) => return Err(db_error("creating the database")(err)),
                }
            } else {
                false
            }
        }
        _ => {
            let result = sqlx::query(AssertSqlSafe(format!(
                "CREATE DATABASE IF NOT EXISTS {name} \
                 CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )))
            .execute(&mut conn)
            .await
            .map_err(db_error("creating the database"))?;
            result.rows_affected() == 1
        }
    };
    let _ = conn.close().await;
    if created {
        info!(engine = %engine, database = %name, "database created");
    }
    Ok(created)
}
