//! Configuration from the environment only (SPEC §4).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;

/// A malformed variable stops startup; the message names it (and never echoes a secret).
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl ConfigError {
    fn new(var: &'static str, reason: impl Into<String>) -> Self {
        ConfigError { var, reason: reason.into() }
    }
}

/// Where messages are stored: an embedded SQLite file, a libSQL server, or an embedded replica of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Local(PathBuf),
    Remote(Server),
    Replica(Replica),
}

/// A local copy of a libSQL server's database: reads are served from the file, writes go to the server, and
/// the copy catches up every `sync_interval` (and at once after this instance's own writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub path: PathBuf,
    pub server: Server,
    pub sync_interval: std::time::Duration,
}

pub const DEFAULT_SYNC_INTERVAL_SECS: u64 = 1;

/// A libSQL server (sqld, Turso) spoken to over HTTP (Hrana).
#[derive(Clone, PartialEq, Eq)]
pub struct Server {
    pub url: String,
    /// `LIBSQL_AUTH_TOKEN`; empty when the server needs none.
    pub auth_token: String,
}

impl fmt::Debug for Server {
    /// Scheme and host only: a URL may carry credentials, and the token never leaves this struct.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("", &self.url));
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
        f.debug_struct("Server")
            .field("url", &format_args!("{scheme}://{host}"))
            .field("auth_token", &if self.auth_token.is_empty() { "<none>" } else { "<configured>" })
            .finish()
    }
}

impl Database {
    /// Reads a `DATABASE_URL` value (SPEC §3); `auth_token` is `LIBSQL_AUTH_TOKEN`, for a server.
    pub fn parse(url: &str, auth_token: Option<String>) -> Result<Database, ConfigError> {
        let err = |reason: &str| ConfigError::new("DATABASE_URL", reason);
        if url.starts_with("libsql://") || url.starts_with("https://") || url.starts_with("http://") {
            if !cfg!(feature = "remote") {
                return Err(err("this build has no libSQL server support; build it with the `remote` cargo feature \
                     (on by default)"));
            }
            let host = url.split_once("://").map(|(_, rest)| rest).unwrap_or_default();
            if host.is_empty() || host.starts_with('/') {
                return Err(err("names no server host"));
            }
            return Ok(Database::Remote(Server { url: url.to_owned(), auth_token: auth_token.unwrap_or_default() }));
        }
        // `sqlite:////abs` is an absolute path, `sqlite:///rel` a relative one (SQLAlchemy's convention).
        let path = if let Some(rest) = url.strip_prefix("sqlite:///") {
            rest
        } else if let Some(rest) = url.strip_prefix("file:") {
            rest.split('?').next().unwrap_or_default()
        } else if url.contains("://") || url.starts_with("sqlite:") {
            return Err(err(
                "unsupported form; use sqlite:////abs/path.db, sqlite:///rel/path.db, file:path, a plain path, \
                 or libsql://, https://, http:// for a libSQL server",
            ));
        } else {
            url
        };
        if path.is_empty() || path == "/" || path.ends_with('/') {
            return Err(err("names no database file"));
        }
        if path == ":memory:" {
            return Err(err("an in-memory database would lose every message on restart; name a file"));
        }
        Ok(Database::Local(PathBuf::from(path)))
    }
}

/// How much is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    /// Accepts the SPEC's names and Lambda's (`TRACE`, `FATAL`, `WARNING`), in any case.
    pub fn parse(s: &str) -> Option<LogLevel> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ERROR" | "FATAL" | "CRITICAL" => Some(LogLevel::Error),
            "WARN" | "WARNING" => Some(LogLevel::Warn),
            "INFO" => Some(LogLevel::Info),
            "DEBUG" | "TRACE" => Some(LogLevel::Debug),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "ERROR",
            LogLevel::Warn => "WARN",
            LogLevel::Info => "INFO",
            LogLevel::Debug => "DEBUG",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Current and (during a rotation) previous HMAC secrets; empty when not configured.
    pub secrets: Vec<String>,
    pub database: Database,
    pub log_level: LogLevel,
    pub listen_addr: SocketAddr,
    pub max_body_bytes: usize,
    /// Also write each request's metrics as a CloudWatch Embedded Metric Format line.
    pub metrics_emf: bool,
    /// When set, the read endpoints require `Authorization: Bearer <token>`.
    pub read_api_token: Option<String>,
    /// Connections the local listener serves at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// The WhatsApp app's current and (during a rotation) previous secrets; empty when not configured.
    pub whatsapp_secrets: Vec<String>,
    /// The token Meta's subscription handshake must present.
    pub whatsapp_verify_token: Option<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("secrets", &format_args!("<{} configured>", self.secrets.len()))
            .field("database", &self.database)
            .field("log_level", &self.log_level)
            .field("listen_addr", &self.listen_addr)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("metrics_emf", &self.metrics_emf)
            .field("read_api_token", &self.read_api_token.as_ref().map(|_| "<configured>"))
            .field("max_connections", &self.max_connections)
            .field("whatsapp_secrets", &format_args!("<{} configured>", self.whatsapp_secrets.len()))
            .field("whatsapp_verify_token", &self.whatsapp_verify_token.as_ref().map(|_| "<configured>"))
            .finish()
    }
}

pub const DEFAULT_MAX_BODY_BYTES: usize = 262_144;
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let on_lambda = lookup("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let vars = Vars(&lookup);
        Ok(Config {
            secrets: secrets(&vars, "WEBHOOK_SECRET", "WEBHOOK_SECRET_PREVIOUS"),
            database: database(&vars, on_lambda)?,
            log_level: log_level(&vars)?,
            listen_addr: listen_addr(&vars)?,
            max_body_bytes: vars.positive("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, " of bytes")?,
            metrics_emf: metrics_emf(&vars, on_lambda)?,
            read_api_token: token(&vars, "READ_API_TOKEN")?,
            max_connections: vars.positive("MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, "")?,
            whatsapp_secrets: secrets(&vars, "WHATSAPP_APP_SECRET", "WHATSAPP_APP_SECRET_PREVIOUS"),
            whatsapp_verify_token: token(&vars, "WHATSAPP_VERIFY_TOKEN")?,
        })
    }
}

/// The environment as a lookup; a variable set to the empty string counts as unset.
struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|s| !s.is_empty())
    }

    /// A positive whole number, or `default` when unset.
    fn positive(&self, name: &'static str, default: usize, unit: &str) -> Result<usize, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError::new(name, format!("{value:?} is not a positive whole number{unit}"))),
        }
    }
}

/// The current secret and, during a rotation, the previous one. A previous secret alone would mean
/// accepting only the retired key, so it counts only beside a current one.
fn secrets(vars: &Vars, current: &str, previous: &str) -> Vec<String> {
    match vars.get(current) {
        None => Vec::new(),
        Some(current) => std::iter::once(current).chain(vars.get(previous)).collect(),
    }
}

/// `DATABASE_URL` (on Lambda only /tmp is writable; elsewhere a file under ./data/), or with
/// `LIBSQL_SYNC_URL` a replica of that server in the `DATABASE_URL` file.
fn database(vars: &Vars, on_lambda: bool) -> Result<Database, ConfigError> {
    let default_db = if on_lambda { "/tmp/app.db" } else { "./data/app.db" };
    let url = vars.get("DATABASE_URL").unwrap_or_else(|| default_db.to_owned());
    let auth_token = vars.get("LIBSQL_AUTH_TOKEN");
    let Some(sync_url) = vars.get("LIBSQL_SYNC_URL") else {
        return Database::parse(&url, auth_token);
    };
    let Database::Remote(server) =
        Database::parse(&sync_url, auth_token).map_err(|e| ConfigError::new("LIBSQL_SYNC_URL", e.reason))?
    else {
        return Err(ConfigError::new("LIBSQL_SYNC_URL", "is not a libsql://, https:// or http:// URL"));
    };
    let Database::Local(path) = Database::parse(&url, None)? else {
        return Err(ConfigError::new(
            "DATABASE_URL",
            "with LIBSQL_SYNC_URL set, names the local file of the replica, not a server",
        ));
    };
    let sync_interval = sync_interval(vars.get("LIBSQL_SYNC_INTERVAL"))?;
    Ok(Database::Replica(Replica { path, server, sync_interval }))
}

/// `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's logging configuration) before `LOG_LEVEL`.
fn log_level(vars: &Vars) -> Result<LogLevel, ConfigError> {
    let set = ["AWS_LAMBDA_LOG_LEVEL", "LOG_LEVEL"].into_iter().find_map(|name| vars.get(name).map(|v| (name, v)));
    match set {
        None => Ok(LogLevel::Info),
        Some((name, value)) => LogLevel::parse(&value)
            .ok_or_else(|| ConfigError::new(name, format!("{value:?} is not one of ERROR, WARN, INFO, DEBUG"))),
    }
}

fn listen_addr(vars: &Vars) -> Result<SocketAddr, ConfigError> {
    match vars.get("LISTEN_ADDR") {
        None => Ok(SocketAddr::from(([127, 0, 0, 1], 8000))),
        Some(value) => value
            .parse()
            .map_err(|_| ConfigError::new("LISTEN_ADDR", format!("{value:?} is not an address like 0.0.0.0:8000"))),
    }
}

/// On by default on Lambda, where `/metrics` sees one instance: EMF lines give CloudWatch the whole fleet
/// without a scraper.
fn metrics_emf(vars: &Vars, on_lambda: bool) -> Result<bool, ConfigError> {
    match vars.get("METRICS_EMF") {
        None => Ok(on_lambda),
        Some(value) => match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::new("METRICS_EMF", format!("{value:?} is not true or false"))),
        },
    }
}

/// A token of surrounding whitespace only would be a lock anyone could open with an empty header.
fn token(vars: &Vars, name: &'static str) -> Result<Option<String>, ConfigError> {
    match vars.get(name) {
        Some(token) if token.trim().is_empty() => Err(ConfigError::new(name, "is only whitespace")),
        token => Ok(token),
    }
}

/// `LIBSQL_SYNC_INTERVAL`: seconds, fractions allowed, from 0.01 to a day.
fn sync_interval(value: Option<String>) -> Result<std::time::Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(std::time::Duration::from_secs(DEFAULT_SYNC_INTERVAL_SECS));
    };
    value
        .parse::<f64>()
        .ok()
        .filter(|secs| secs.is_finite() && (0.01..=86_400.0).contains(secs))
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| {
            ConfigError::new(
                "LIBSQL_SYNC_INTERVAL",
                format!("{value:?} is not a number of seconds between 0.01 and 86400"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert!(c.secrets.is_empty());
        assert_eq!(c.database, Database::Local("./data/app.db".into()));
        assert_eq!(c.log_level, LogLevel::Info);
        assert_eq!(c.listen_addr.to_string(), "127.0.0.1:8000");
        assert_eq!(c.max_body_bytes, 262_144);
        assert!(!c.metrics_emf);
        assert_eq!(c.read_api_token, None);
        assert_eq!(c.max_connections, 512);
        let lambda = config(&[("AWS_LAMBDA_FUNCTION_NAME", "f")]).unwrap();
        assert_eq!(lambda.database, Database::Local("/tmp/app.db".into()));
        assert!(lambda.metrics_emf);
        assert!(!config(&[("AWS_LAMBDA_FUNCTION_NAME", "f"), ("METRICS_EMF", "off")]).unwrap().metrics_emf);
        assert!(config(&[("METRICS_EMF", "TRUE")]).unwrap().metrics_emf);
    }

    #[test]
    fn database_url_forms() {
        let local = |url: &str| Database::parse(url, None).unwrap();
        assert_eq!(local("sqlite:////data/app.db"), Database::Local("/data/app.db".into()));
        assert_eq!(local("sqlite:///data/app.db"), Database::Local("data/app.db".into()));
        assert_eq!(local("file:data/app.db"), Database::Local("data/app.db".into()));
        assert_eq!(local("file:/abs/app.db?mode=rwc"), Database::Local("/abs/app.db".into()));
        assert_eq!(local("./x.db"), Database::Local("./x.db".into()));
        for bad in [
            "postgres://x",
            "sqlite://x.db",
            "sqlite:x.db",
            "sqlite:///",
            ":memory:",
            "file:",
            "libsql://",
            "http:///path",
        ] {
            assert_eq!(Database::parse(bad, None).unwrap_err().var, "DATABASE_URL", "{bad}");
        }
    }

    #[test]
    fn a_sync_url_makes_the_local_file_a_replica() {
        if !cfg!(feature = "remote") {
            return;
        }
        let c = config(&[
            ("DATABASE_URL", "sqlite:////data/replica.db"),
            ("LIBSQL_SYNC_URL", "libsql://db.example.com"),
            ("LIBSQL_AUTH_TOKEN", "tok-1c2d"),
            ("LIBSQL_SYNC_INTERVAL", "0.5"),
        ])
        .unwrap();
        let server = Server { url: "libsql://db.example.com".into(), auth_token: "tok-1c2d".into() };
        let replica = Replica { path: "/data/replica.db".into(), server, sync_interval: Duration::from_millis(500) };
        assert_eq!(c.database, Database::Replica(replica));
        assert!(!format!("{c:?}").contains("tok-1c2d"));
        let replica_default = config(&[("LIBSQL_SYNC_URL", "http://127.0.0.1:8080")]).unwrap();
        assert!(matches!(replica_default.database, Database::Replica(r) if r.sync_interval == Duration::from_secs(1)));
        for (vars, var) in [
            (&[("LIBSQL_SYNC_URL", "ftp://x")][..], "LIBSQL_SYNC_URL"),
            (&[("LIBSQL_SYNC_URL", "http://x"), ("DATABASE_URL", "http://y")][..], "DATABASE_URL"),
            (&[("LIBSQL_SYNC_URL", "http://x"), ("LIBSQL_SYNC_INTERVAL", "0")][..], "LIBSQL_SYNC_INTERVAL"),
            (&[("LIBSQL_SYNC_URL", "http://x"), ("LIBSQL_SYNC_INTERVAL", "soon")][..], "LIBSQL_SYNC_INTERVAL"),
        ] {
            assert_eq!(config(vars).unwrap_err().var, var, "{vars:?}");
        }
    }

    #[test]
    fn a_server_url_is_remote_with_the_token_when_built_with_remote() {
        let parsed = Database::parse("libsql://db-user.turso.io", Some("secret-token".into()));
        if cfg!(feature = "remote") {
            let server = Server { url: "libsql://db-user.turso.io".into(), auth_token: "secret-token".into() };
            assert_eq!(parsed, Ok(Database::Remote(server)));
            let c = config(&[
                ("DATABASE_URL", "https://user:pw-5e1@db.example.com/x?authToken=t-9b1"),
                ("LIBSQL_AUTH_TOKEN", "tok-7f3a"),
            ])
            .unwrap();
            let shown = format!("{c:?}");
            assert!(shown.contains("https://db.example.com"), "{shown}");
            for secret in ["tok-7f3a", "t-9b1", "pw-5e1"] {
                assert!(!shown.contains(secret), "{shown}");
            }
        } else {
            assert!(parsed.unwrap_err().reason.contains("remote"));
        }
    }

    #[test]
    fn malformed_values_name_their_variable() {
        assert_eq!(config(&[("MAX_BODY_BYTES", "abc")]).unwrap_err().var, "MAX_BODY_BYTES");
        assert_eq!(config(&[("MAX_BODY_BYTES", "0")]).unwrap_err().var, "MAX_BODY_BYTES");
        assert_eq!(config(&[("LISTEN_ADDR", "localhost")]).unwrap_err().var, "LISTEN_ADDR");
        assert_eq!(config(&[("LOG_LEVEL", "loud")]).unwrap_err().var, "LOG_LEVEL");
        assert_eq!(config(&[("METRICS_EMF", "sometimes")]).unwrap_err().var, "METRICS_EMF");
        assert_eq!(config(&[("MAX_CONNECTIONS", "0")]).unwrap_err().var, "MAX_CONNECTIONS");
        assert_eq!(config(&[("READ_API_TOKEN", "  ")]).unwrap_err().var, "READ_API_TOKEN");
        assert_eq!(config(&[("WHATSAPP_VERIFY_TOKEN", " ")]).unwrap_err().var, "WHATSAPP_VERIFY_TOKEN");
        assert_eq!(
            config(&[("AWS_LAMBDA_LOG_LEVEL", "x"), ("LOG_LEVEL", "INFO")]).unwrap_err().var,
            "AWS_LAMBDA_LOG_LEVEL"
        );
    }

    #[test]
    fn lambda_log_level_wins() {
        let c = config(&[("AWS_LAMBDA_LOG_LEVEL", "debug"), ("LOG_LEVEL", "ERROR")]).unwrap();
        assert_eq!(c.log_level, LogLevel::Debug);
    }

    #[test]
    fn secrets_rotation_and_redaction() {
        let c = config(&[("WEBHOOK_SECRET", "new-secret"), ("WEBHOOK_SECRET_PREVIOUS", "old-secret")]).unwrap();
        assert_eq!(c.secrets, ["new-secret", "old-secret"]);
        let shown = format!("{c:?}");
        assert!(!shown.contains("new-secret") && !shown.contains("old-secret"), "{shown}");
        assert!(config(&[("WEBHOOK_SECRET", "")]).unwrap().secrets.is_empty());
        assert!(config(&[("WEBHOOK_SECRET_PREVIOUS", "old")]).unwrap().secrets.is_empty());

        let c = config(&[("READ_API_TOKEN", "read-token-1")]).unwrap();
        assert_eq!(c.read_api_token.as_deref(), Some("read-token-1"));
        assert!(!format!("{c:?}").contains("read-token-1"));
        assert_eq!(config(&[("READ_API_TOKEN", "")]).unwrap().read_api_token, None);

        let c = config(&[
            ("WHATSAPP_APP_SECRET", "wa-new"),
            ("WHATSAPP_APP_SECRET_PREVIOUS", "wa-old"),
            ("WHATSAPP_VERIFY_TOKEN", "wa-verify"),
        ])
        .unwrap();
        assert_eq!(c.whatsapp_secrets, ["wa-new", "wa-old"]);
        assert_eq!(c.whatsapp_verify_token.as_deref(), Some("wa-verify"));
        assert!(c.secrets.is_empty());
        let shown = format!("{c:?}");
        assert!(["wa-new", "wa-old", "wa-verify"].iter().all(|s| !shown.contains(s)), "{shown}");
        assert!(config(&[("WHATSAPP_APP_SECRET_PREVIOUS", "wa-old")]).unwrap().whatsapp_secrets.is_empty());
    }
}
