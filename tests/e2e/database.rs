//! A database of its own for one [`DevCa`](crate::harness::DevCa) on a PostgreSQL or
//! MariaDB server, made and dropped with the server's command-line client (`psql`,
//! `mariadb`) so the tests need no database driver.
//!
//! The servers are `BASALT_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and `BASALT_TEST_MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/test`), as for the SA's own tests. When the server is
//! not reachable the test FAILS: these tests never pass without their engine.

use std::process::Command;
use std::time::Duration;

use crate::harness::CmdOutput;
use crate::harness::random_u64;
use crate::harness::run;

/// How long one client command may take, connecting included.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a client waits for the server to answer a connection.
const CONNECT_TIMEOUT_SECS: &str = "10";

/// A database server engine `basalt dev --db` runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Engine {
    MariaDb,
    Postgres,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Self::MariaDb => "MariaDB",
            Self::Postgres => "PostgreSQL",
        }
    }

    /// The variable naming the server, and the server when it is unset.
    fn server_variable(self) -> (&'static str, &'static str) {
        match self {
            Self::MariaDb => ("BASALT_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
            Self::Postgres => (
                "BASALT_TEST_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432/test",
            ),
        }
    }
}

/// A freshly created database, dropped (whatever holds connections to it) when
/// this is dropped.
pub(crate) struct TestDatabase {
    engine: Engine,
    server: ServerUrl,
    name: String,
}

impl TestDatabase {
    /// Creates `basalt_e2e_<random hex>` on the engine's test server; panics,
    /// naming the server and the variable to set, if that fails.
    pub(crate) fn create(engine: Engine) -> Self {
        let (variable, default) = engine.server_variable();
        let url = std::env::var(variable).unwrap_or_else(|_| default.to_owned());
        let server = ServerUrl::parse(&url)
            .unwrap_or_else(|why| panic!("{variable}={url:?} is not a server URL: {why}"));
        let name = format!("basalt_e2e_{:016x}", random_u64());
        let output = admin(engine, &server, &format!("CREATE DATABASE {name}"));
        assert!(
            output.status.success(),
            "cannot create a database on the {} server {} ({}): the {} end-to-end tests need \
             a running server; start one or set {variable}\n{}",
            engine.name(),
            server.display(),
            output.status,
            engine.name(),
            output.text().trim()
        );
        Self {
            engine,
            server,
            name,
        }
    }

    /// The URL `basalt dev --db` takes.
    pub(crate) fn url(&self) -> String {
        self.server.with_database(&self.name)
    }

    /// How many rows `table` holds, asked of the server directly.
    pub(crate) fn count_rows(&self, table: &str) -> u64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let count = self.query_scalar(&sql);
        count
            .parse()
            .unwrap_or_else(|_| panic!("{sql} in {}: {count:?}", self.name))
    }

    /// Runs `sql` in this database and returns its one value, as text.
    pub(crate) fn query_scalar(&self, sql: &str) -> String {
        let rows = self.query_rows(sql);
        match &rows[..] {
            [row] if row.len() == 1 => row[0].clone(),
            _ => panic!("{sql} in {} gave {rows:?}, not one value", self.name),
        }
    }

    /// Runs `sql` in this database and returns its rows, each a list of its
    /// columns as the client prints them (text; PostgreSQL prints NULL as an empty
    /// string, MariaDB as `NULL`). Columns must not hold tabs or newlines: encode
    /// binary columns in the query, e.g. `encode(der, 'hex')`.
    pub(crate) fn query_rows(&self, sql: &str) -> Vec<Vec<String>> {
        let output = match self.engine {
            Engine::MariaDb => run(
                mariadb(&self.server)
                    .args(["--batch", "--skip-column-names", "--database"])
                    .arg(&self.name)
                    .args(["-e", sql]),
                CLIENT_TIMEOUT,
            ),
            Engine::Postgres => run(
                psql(&self.url()).args(["-A", "-t", "-F", "\t", "-c", sql]),
                CLIENT_TIMEOUT,
            ),
        };
        assert!(
            output.status.success(),
            "{sql} in {}: {}",
            self.name,
            output.text()
        );
        output
            .stdout
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| line.split('\t').map(str::to_owned).collect())
            .collect()
    }

    /// Ends every connection to this database but the asking one, as a database
    /// failover or an operator's `pg_terminate_backend` does; returns how many were
    /// ended. PostgreSQL only.
    pub(crate) fn terminate_connections(&self) -> usize {
        assert_eq!(
            self.engine,
            Engine::Postgres,
            "terminate_connections is written for PostgreSQL"
        );
        let sql = format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            self.name
        );
        self.query_rows(&sql)
            .iter()
            .filter(|row| row.first().is_some_and(|ended| ended == "t"))
            .count()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = match self.engine {
            Engine::MariaDb => format!("DROP DATABASE IF EXISTS {}", self.name),
            Engine::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        };
        // A database left behind costs disk, not correctness: say so, but do not
        // fail a test that passed (nor panic while one is failing).
        let output = admin(self.engine, &self.server, &sql);
        if !output.status.success() {
            eprintln!(
                "cannot drop the test database {} on {}: {}",
                self.name,
                self.server.display(),
                output.text().trim()
            );
        }
    }
}

/// Runs one statement on `server`, outside any of its databases' objects.
fn admin(engine: Engine, server: &ServerUrl, sql: &str) -> CmdOutput {
    let mut command = match engine {
        Engine::MariaDb => mariadb(server),
        Engine::Postgres => psql(&server.url),
    };
    let flag = match engine {
        Engine::MariaDb => "-e",
        Engine::Postgres => "-c",
    };
    run(command.args([flag, sql]), CLIENT_TIMEOUT)
}

/// `psql` on the database `url` names.
fn psql(url: &str) -> Command {
    let mut command = Command::new("psql");
    command
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url])
        .env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_SECS);
    command
}

/// `mariadb` connected to `server`, no database selected.
fn mariadb(server: &ServerUrl) -> Command {
    let mut command = Command::new("mariadb");
    command
        .arg("--no-defaults")
        .args(["--protocol", "TCP", "--host", &server.host])
        .args(["--connect-timeout", CONNECT_TIMEOUT_SECS]);
    if let Some(port) = server.port {
        command.args(["--port", &port.to_string()]);
    }
    if let Some(user) = &server.user {
        command.args(["--user", user]);
    }
    // From the environment, so the password is not on a command line that
    // every user of the machine can read.
    if let Some(password) = &server.password {
        command.env("MYSQL_PWD", password);
    }
    command
}

/// The parts of `scheme://[user[:password]@]host[:port][/database][?query]` the
/// command-line clients take as flags.
#[derive(Debug, PartialEq, Eq)]
struct ServerUrl {
    /// The whole URL, as given.
    url: String,
    /// Everything before the database path, e.g. `mysql://root@127.0.0.1:3306`.
    base: String,
    /// `?…` with its question mark, or empty.
    query: String,
    user: Option<String>,
    password: Option<String>,
    host: String,
    port: Option<u16>,
}

impl ServerUrl {
    fn parse(url: &str) -> Result<Self, String> {
        let (rest, query) = match url.split_once('?') {
            Some((rest, query)) => (rest, format!("?{query}")),
            None => (url, String::new()),
        };
        let scheme_end = rest.find("://").ok_or("no scheme")? + 3;
        let authority_end = rest[scheme_end..]
            .find('/')
            .map_or(rest.len(), |i| scheme_end + i);
        let authority = &rest[scheme_end..authority_end];
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (user, password) = match userinfo.map(|u| u.split_once(':').unwrap_or((u, ""))) {
            Some((user, password)) => (
                Some(percent_decode(user)?).filter(|u| !u.is_empty()),
                Some(percent_decode(password)?).filter(|p| !p.is_empty()),
            ),
            None => (None, None),
        };
        // The port follows the last colon, unless that colon is inside `[v6]`.
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port = port.parse().map_err(|_| format!("bad port {port:?}"))?;
                (host, Some(port))
            }
            _ => (host_port, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err("no host".to_owned());
        }
        Ok(Self {
            url: url.to_owned(),
            base: rest[..authority_end].to_owned(),
            query,
            user,
            password,
            host: host.to_owned(),
            port,
        })
    }

    /// This server's URL naming database `name`, the query string kept.
    fn with_database(&self, name: &str) -> String {
        format!("{}/{name}{}", self.base, self.query)
    }

    /// The server for messages: no password.
    fn display(&self) -> String {
        let user = self
            .user
            .as_ref()
            .map(|user| format!("{user}@"))
            .unwrap_or_default();
        let port = self.port.map(|port| format!(":{port}")).unwrap_or_default();
        format!("{user}{}{port}", self.host)
    }
}

/// `%XX` escapes decoded, as URLs carry user names and passwords.
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .ok_or_else(|| format!("a % without two hex digits in {text:?}"))?;
            let byte = u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape %{hex}"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_url_gives_the_client_flags() {
        let url =
            ServerUrl::parse("mysql://root:p%40ss@db.example:3307/test?ssl-mode=DISABLED").unwrap();
        assert_eq!(url.user.as_deref(), Some("root"));
        assert_eq!(url.password.as_deref(), Some("p@ss"));
        assert_eq!(url.host, "db.example");
        assert_eq!(url.port, Some(3307));
        assert_eq!(
            url.with_database("basalt_e2e_1"),
            "mysql://root:p%40ss@db.example:3307/basalt_e2e_1?ssl-mode=DISABLED"
        );
        assert_eq!(url.display(), "root@db.example:3307");
    }

    #[test]
    fn a_server_url_may_omit_what_has_defaults() {
        let url = ServerUrl::parse("postgres://[::1]").unwrap();
        assert_eq!(url.user, None);
        assert_eq!(url.password, None);
        assert_eq!(url.host, "::1");
        assert_eq!(url.port, None);
        assert_eq!(url.with_database("x"), "postgres://[::1]/x");

        let url = ServerUrl::parse("postgres://postgres@[::1]:5433/test").unwrap();
        assert_eq!(url.user.as_deref(), Some("postgres"));
        assert_eq!(url.host, "::1");
        assert_eq!(url.port, Some(5433));
    }

    #[test]
    fn a_malformed_server_url_is_refused() {
        assert!(ServerUrl::parse("127.0.0.1:5432").is_err());
        assert!(ServerUrl::parse("postgres://host:port/test").is_err());
        assert!(ServerUrl::parse("postgres:///test").is_err());
        assert!(ServerUrl::parse("mysql://root:%4@host/test").is_err());
    }
}
