//! Buckets and runtime overrides in a Redis the RAs share, over a small RESP2
//! client.
//!
//! One connection, opened on first use and replaced after any error, carries
//! every command; each operation (waiting for the connection, connecting,
//! authenticating and the command itself) is bounded by the configured timeout. A
//! batch of buckets is one Lua script (`redis.lua`), so a spend across keys is
//! atomic even with many RAs. A command is never retried: a spend whose reply was
//! lost may have happened, and spending twice is worse than failing open once.

use std::time::Duration;

use basalt_core::RateLimit;
use basalt_core::RateLimitOverride;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::sync::MutexGuard;

use crate::LimitName;
use crate::gcra;
use crate::resp;
use crate::resp::Reply;
use crate::store::Bucket;
use crate::store::Mode;
use crate::store::StoreError;
use crate::store::Verdict;
use crate::store::override_field;

/// The script that spends, checks and refunds.
const SCRIPT: &str = include_str!("redis.lua");

/// Where Redis is and how to log in, from a `redis://` URL.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Host name or address (an IPv6 address without brackets).
    pub(crate) host: String,
    /// Port, 6379 unless given.
    pub(crate) port: u16,
    /// The ACL user, if the URL names one.
    pub(crate) username: Option<String>,
    /// The password, if any.
    pub(crate) password: Option<String>,
    /// The database number, 0 unless given.
    pub(crate) db: u32,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("db", &self.db)
            .finish()
    }
}

impl Target {
    /// Parses `redis://[[user]:password@]host[:port][/db]`; the error says what is
    /// wrong without repeating the URL (it may hold a password).
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let Some(rest) = url.strip_prefix("redis://") else {
            return Err(if url.starts_with("rediss://") {
                "TLS (rediss://) is not supported; use redis://".to_owned()
            } else {
                "must start with redis://".to_owned()
            });
        };
        let (authority, db) = match rest.split_once('/') {
            Some((authority, "")) => (authority, 0),
            Some((authority, db)) => (
                authority,
                db.parse()
                    .map_err(|_| "the database after the / must be a number".to_owned())?,
            ),
            None => (rest, 0),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').ok_or_else(|| {
                    "credentials must be written :password@ or user:password@".to_owned()
                })?;
                let user = percent_decode(user)?;
                let password = percent_decode(password)?;
                ((!user.is_empty()).then_some(user), Some(password))
            }
        };
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| "unclosed [ in the host".to_owned())?;
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err("unexpected text after the ]".to_owned()),
                },
            }
        } else {
            match hostport.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err("no host".to_owned());
        }
        let port = match port {
            None => 6379,
            Some(port) => port
                .parse()
                .map_err(|_| "the port must be a number from 1 to 65535".to_owned())?,
        };
        if port == 0 {
            return Err("the port must be a number from 1 to 65535".to_owned());
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            username,
            password,
            db,
        })
    }
}

/// Decodes `%XX` escapes (for passwords holding `@`, `:` or `/`).
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| "bad %-escape in the credentials".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the credentials are not UTF-8".to_owned())
}

/// One connection.
struct Conn {
    stream: TcpStream,
    /// Bytes read and not yet parsed.
    buf: Vec<u8>,
}

impl Conn {
    /// Connects, then logs in and selects the database as the URL says.
    async fn open(target: &Target) -> Result<Self, StoreError> {
        let stream = TcpStream::connect((target.host.as_str(), target.port)).await?;
        stream.set_nodelay(true)?;
        let mut conn = Self {
            stream,
            buf: Vec::new(),
        };
        if let Some(password) = &target.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(username) = &target.username {
                args.push(username.as_bytes());
            }
            args.push(password.as_bytes());
            expect_ok(conn.call(&args).await?)?;
        }
        if target.db != 0 {
            let db = target.db.to_string();
            expect_ok(conn.call(&[b"SELECT", db.as_bytes()]).await?)?;
        }
        Ok(conn)
    }

    /// Sends one command and reads its reply. An error reply is returned as
    /// [`Reply::Error`]; the caller decides.
    async fn call(&mut self, args: &[&[u8]]) -> Result<Reply, StoreError> {
        let mut out = Vec::new();
        resp::encode(args, &mut out);
        self.stream.write_all(&out).await?;
        loop {
            if let Some((reply, used)) = resp::parse(&self.buf).map_err(StoreError::Protocol)? {
                self.buf.drain(..used);
                return Ok(reply);
            }
            let mut chunk = [0; 8192];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(StoreError::Protocol(
                    "connection closed before the reply was complete".to_owned(),
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// `+OK`, or the error.
fn expect_ok(reply: Reply) -> Result<(), StoreError> {
    match reply {
        Reply::Status(status) if status == "OK" => Ok(()),
        other => Err(unexpected(other)),
    }
}

/// An error for a reply that is not what the command returns.
fn unexpected(reply: Reply) -> StoreError {
    match reply {
        Reply::Error(message) => StoreError::Server(message),
        other => StoreError::Protocol(format!("unexpected reply {other:?}")),
    }
}

/// The connection and what is known about the server.
#[derive(Default)]
struct State {
    conn: Option<Conn>,
    /// The script's SHA-1 digest, as `SCRIPT LOAD` returned it.
    script_sha: Option<Vec<u8>>,
}

/// The Redis store.
pub(crate) struct RedisStore {
    target: Target,
    timeout: Duration,
    /// `<prefix>:rl:`, the start of every key.
    namespace: String,
    state: Mutex<State>,
}

impl RedisStore {
    /// A store that connects on first use.
    pub(crate) fn new(target: Target, timeout: Duration, prefix: &str) -> Self {
        Self {
            target,
            timeout,
            namespace: format!("{prefix}:rl:"),
            state: Mutex::new(State::default()),
        }
    }

    /// The hash of runtime overrides.
    fn overrides_key(&self) -> String {
        format!("{}overrides", self.namespace)
    }

    /// The key of a bucket.
    fn bucket_key(&self, bucket: &Bucket) -> String {
        format!("{}{}", self.namespace, bucket.override_field())
    }

    /// Takes the connection (opening one if there is none) with the lock that
    /// guards it. Whoever takes it puts it back only after a clean exchange, so a
    /// connection left mid-reply by an error or a timeout is dropped, never reused.
    async fn session(&self) -> Result<(MutexGuard<'_, State>, Conn), StoreError> {
        let mut state = self.state.lock().await;
        let conn = match state.conn.take() {
            Some(conn) => conn,
            None => Conn::open(&self.target).await?,
        };
        Ok((state, conn))
    }

    /// Runs `command` on the connection within the timeout.
    pub(crate) async fn command(&self, args: &[&[u8]]) -> Result<Reply, StoreError> {
        let exchange = async {
            let (mut state, mut conn) = self.session().await?;
            let reply = conn.call(args).await?;
            if let Reply::Error(message) = reply {
                return Err(StoreError::Server(message));
            }
            state.conn = Some(conn);
            Ok(reply)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| StoreError::Timeout(self.timeout))?
    }

    /// Runs the script within the timeout: `EVALSHA`, loading the script first if
    /// its digest is not known yet, and `EVAL` if the server has forgotten it.
    async fn eval(&self, keys: &[String], args: &[String]) -> Result<Reply, StoreError> {
        let exchange = async {
            let (mut state, mut conn) = self.session().await?;
            let sha = match state.script_sha.clone() {
                Some(sha) => sha,
                None => match conn.call(&[b"SCRIPT", b"LOAD", SCRIPT.as_bytes()]).await? {
                    Reply::Bulk(sha) => {
                        state.script_sha = Some(sha.clone());
                        sha
                    }
                    other => return Err(unexpected(other)),
                },
            };
            let numkeys = keys.len().to_string();
            let tail = || {
                std::iter::once(numkeys.as_bytes())
                    .chain(keys.iter().map(|key| key.as_bytes()))
                    .chain(args.iter().map(|arg| arg.as_bytes()))
            };
            let evalsha: Vec<&[u8]> = [b"EVALSHA".as_slice(), &sha]
                .into_iter()
                .chain(tail())
                .collect();
            let reply = match conn.call(&evalsha).await? {
                Reply::Error(message) if message.starts_with("NOSCRIPT") => {
                    let eval: Vec<&[u8]> = [b"EVAL".as_slice(), SCRIPT.as_bytes()]
                        .into_iter()
                        .chain(tail())
                        .collect();
                    conn.call(&eval).await?
                }
                reply => reply,
            };
            if let Reply::Error(message) = reply {
                return Err(StoreError::Server(message));
            }
            state.conn = Some(conn);
            Ok(reply)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| StoreError::Timeout(self.timeout))?
    }

    /// Applies `mode` to every bucket in one script run.
    pub(crate) async fn apply(
        &self,
        mode: Mode,
        buckets: &[Bucket],
        now: i128,
    ) -> Result<Vec<Verdict>, StoreError> {
        if buckets.is_empty() {
            return Ok(Vec::new());
        }
        let now = now.max(0);
        let mut keys = Vec::with_capacity(buckets.len() + 1);
        keys.push(self.overrides_key());
        let mut args = Vec::with_capacity(3 + 5 * buckets.len());
        args.push(mode.as_str().to_owned());
        args.push((now / 1_000_000_000).to_string());
        args.push((now % 1_000_000_000).to_string());
        for bucket in buckets {
            keys.push(self.bucket_key(bucket));
            args.push(bucket.cost.to_string());
            args.push(bucket.rate.count.to_string());
            args.push(bucket.rate.period.as_nanos().to_string());
            args.push(bucket.rate.burst.to_string());
            args.push(bucket.override_field());
        }
        let reply = self.eval(&keys, &args).await?;
        parse_verdicts(reply, buckets.len())
    }

    /// Adds or replaces a runtime override.
    pub(crate) async fn set_override(
        &self,
        limit: LimitName,
        entry: &RateLimitOverride,
    ) -> Result<(), StoreError> {
        let key = self.overrides_key();
        let field = override_field(limit, &entry.key);
        let value = format!(
            "{}/{}/{}/{}",
            entry.rate.count,
            entry.rate.period.as_nanos(),
            entry.rate.burst,
            entry.comment
        );
        match self
            .command(&[b"HSET", key.as_bytes(), field.as_bytes(), value.as_bytes()])
            .await?
        {
            Reply::Integer(_) => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Removes a runtime override; whether there was one.
    pub(crate) async fn remove_override(
        &self,
        limit: LimitName,
        key: &str,
    ) -> Result<bool, StoreError> {
        let hash = self.overrides_key();
        let field = override_field(limit, key);
        match self
            .command(&[b"HDEL", hash.as_bytes(), field.as_bytes()])
            .await?
        {
            Reply::Integer(removed) => Ok(removed > 0),
            other => Err(unexpected(other)),
        }
    }

    /// Every runtime override, sorted by limit and key. An entry that cannot be
    /// read (written by hand, or by a newer version) is logged and left out.
    pub(crate) async fn overrides(&self) -> Result<Vec<RateLimitOverride>, StoreError> {
        let hash = self.overrides_key();
        let items = match self.command(&[b"HGETALL", hash.as_bytes()]).await? {
            Reply::Array(items) => items,
            other => return Err(unexpected(other)),
        };
        if items.len() % 2 != 0 {
            return Err(StoreError::Protocol(
                "HGETALL returned an odd number of items".to_owned(),
            ));
        }
        let mut entries = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(field), Some(value)) = (items.next(), items.next()) {
            let (Reply::Bulk(field), Reply::Bulk(value)) = (field, value) else {
                return Err(StoreError::Protocol(
                    "HGETALL returned a non-string item".to_owned(),
                ));
            };
            let field = String::from_utf8_lossy(&field).into_owned();
            let value = String::from_utf8_lossy(&value).into_owned();
            match parse_override(&field, &value) {
                Some(entry) => entries.push(entry),
                None => tracing::warn!(
                    field = %field,
                    hash = %hash,
                    "ignoring unreadable rate limit override in redis"
                ),
            }
        }
        entries.sort_by(|a, b| (&a.limit, &a.key).cmp(&(&b.limit, &b.key)));
        Ok(entries)
    }

    /// `<prefix>:rl:`, for the tests.
    #[cfg(test)]
    pub(crate) fn namespace_for_tests(&self) -> &str {
        &self.namespace
    }

    /// Whether Redis answers, for the tests that need it.
    #[cfg(test)]
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        match self.command(&[b"PING"]).await? {
            Reply::Status(status) if status == "PONG" => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Deletes every key of this store's namespace, for the tests.
    #[cfg(test)]
    pub(crate) async fn purge(&self) -> Result<(), StoreError> {
        let pattern = format!("{}*", self.namespace);
        let mut cursor = b"0".to_vec();
        loop {
            let reply = self
                .command(&[
                    b"SCAN",
                    &cursor,
                    b"MATCH",
                    pattern.as_bytes(),
                    b"COUNT",
                    b"1000",
                ])
                .await?;
            let Reply::Array(mut parts) = reply else {
                return Err(unexpected(reply));
            };
            let (Some(Reply::Array(keys)), Some(Reply::Bulk(next))) = (parts.pop(), parts.pop())
            else {
                return Err(StoreError::Protocol("bad SCAN reply".to_owned()));
            };
            for key in keys {
                if let Reply::Bulk(key) = key {
                    self.command(&[b"DEL", &key]).await?;
                }
            }
            if next == b"0" {
                return Ok(());
            }
            cursor = next;
        }
    }
}

/// The script's reply: five strings per bucket.
fn parse_verdicts(reply: Reply, buckets: usize) -> Result<Vec<Verdict>, StoreError> {
    let bad = |why: &str| StoreError::Protocol(format!("bad script reply: {why}"));
    let Reply::Array(items) = reply else {
        return Err(bad("not an array"));
    };
    if items.len() != buckets * 5 {
        return Err(bad("wrong number of items"));
    }
    let texts = items
        .into_iter()
        .map(|item| match item {
            Reply::Bulk(bytes) => String::from_utf8(bytes).map_err(|_| bad("not UTF-8")),
            _ => Err(bad("an item is not a string")),
        })
        .collect::<Result<Vec<String>, StoreError>>()?;
    texts
        .chunks_exact(5)
        .map(|chunk| {
            let [allowed, retry, count, period, burst] = chunk else {
                return Err(bad("wrong number of items"));
            };
            let number = |text: &str| text.parse::<i128>().map_err(|_| bad("not a number"));
            let small = |text: &str| text.parse::<u32>().map_err(|_| bad("not a count"));
            Ok(Verdict {
                allowed: match allowed.as_str() {
                    "1" => true,
                    "0" => false,
                    _ => return Err(bad("not a verdict")),
                },
                retry_after: gcra::duration(number(retry)?),
                rate: RateLimit {
                    count: small(count)?,
                    period: gcra::duration(number(period)?),
                    burst: small(burst)?,
                },
            })
        })
        .collect()
}

/// A runtime override from its field (`<limit>:<key>`) and value
/// (`count/period_ns/burst/comment`).
fn parse_override(field: &str, value: &str) -> Option<RateLimitOverride> {
    let (limit, key) = field.split_once(':')?;
    let limit: LimitName = limit.parse().ok()?;
    let mut parts = value.splitn(4, '/');
    let count = parts.next()?.parse().ok()?;
    let period: u64 = parts.next()?.parse().ok()?;
    let burst = parts.next()?.parse().ok()?;
    let comment = parts.next()?.to_owned();
    Some(RateLimitOverride {
        limit: limit.as_str().to_owned(),
        key: key.to_owned(),
        rate: RateLimit {
            count,
            period: Duration::from_nanos(period),
            burst,
        },
        comment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let plain = Target::parse("redis://127.0.0.1:6379/0").unwrap();
        assert_eq!(
            plain,
            Target {
                host: "127.0.0.1".into(),
                port: 6379,
                username: None,
                password: None,
                db: 0,
            }
        );
        let full = Target::parse("redis://:s%40cret:x@redis.internal:6380/3").unwrap();
        assert_eq!(full.host, "redis.internal");
        assert_eq!(full.port, 6380);
        assert_eq!(full.username, None);
        assert_eq!(full.password.as_deref(), Some("s@cret:x"));
        assert_eq!(full.db, 3);
        let acl = Target::parse("redis://ra:pw@[::1]").unwrap();
        assert_eq!(
            (acl.host.as_str(), acl.port, acl.username.as_deref(), acl.db),
            ("::1", 6379, Some("ra"), 0)
        );
        assert_eq!(Target::parse("redis://h/").unwrap().db, 0);
        assert!(!format!("{full:?}").contains("cret"));
        for bad in [
            "",
            "http://h",
            "rediss://h",
            "redis://",
            "redis://:6379",
            "redis://h:0",
            "redis://h:port",
            "redis://h/db",
            "redis://pw@h",
            "redis://:%zz@h",
            "redis://[::1",
            "redis://[::1]x",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn script_replies_parse_strictly() {
        let bulk = |text: &str| Reply::Bulk(text.as_bytes().to_vec());
        let good = Reply::Array(
            ["0", "3600000000000", "3", "10800000000000", "3"]
                .map(bulk)
                .to_vec(),
        );
        let verdicts = parse_verdicts(good, 1).unwrap();
        assert_eq!(
            verdicts,
            [Verdict {
                allowed: false,
                retry_after: Duration::from_secs(3600),
                rate: RateLimit {
                    count: 3,
                    period: Duration::from_secs(10800),
                    burst: 3,
                },
            }]
        );
        for bad in [
            Reply::Nil,
            Reply::Integer(1),
            Reply::Array(vec![bulk("1")]),
            Reply::Array(["2", "0", "3", "1", "3"].map(bulk).to_vec()),
            Reply::Array(["1", "x", "3", "1", "3"].map(bulk).to_vec()),
            Reply::Array(["1", "0", "-3", "1", "3"].map(bulk).to_vec()),
            Reply::Array(vec![
                bulk("1"),
                Reply::Integer(0),
                bulk("3"),
                bulk("1"),
                bulk("3"),
            ]),
        ] {
            assert!(parse_verdicts(bad.clone(), 1).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn overrides_read_back() {
        let entry =
            parse_override("new_orders_per_account:42", "1000/10800000000000/500/a/b").unwrap();
        assert_eq!(entry.limit, "new_orders_per_account");
        assert_eq!(entry.key, "42");
        assert_eq!(entry.rate.count, 1000);
        assert_eq!(entry.rate.period, Duration::from_secs(10800));
        assert_eq!(entry.rate.burst, 500);
        assert_eq!(entry.comment, "a/b");
        let ipv6 = parse_override("new_accounts_per_ip:2001:db8::1", "1/1/1/").unwrap();
        assert_eq!(ipv6.key, "2001:db8::1");
        for (field, value) in [
            ("nope:42", "1/1/1/"),
            ("new_orders_per_account", "1/1/1/"),
            ("new_orders_per_account:42", "1/1/1"),
            ("new_orders_per_account:42", "x/1/1/"),
        ] {
            assert!(parse_override(field, value).is_none(), "{field} {value}");
        }
    }
}
