//! From `general.database = "postgres://…"` to a connection. The
//! password comes from `database_password_env` or `database_password_file`
//! (never needed in the URL, which sits in a config file and in logs);
//! several hosts with `target_session_attrs=read-write` make each new
//! connection skip hosts that are down or read-only (a standby), which is
//! how a promoted standby takes over (SPEC §18). TLS is rustls, with the
//! web PKI roots plus an optional CA file; `sslmode` works as libpq's
//! `disable`/`prefer`/`require` (tokio-postgres parses it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::PgError;

/// A host that does not answer within this is skipped for the next one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything needed to reach the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user@host1:5432,host2:5432/db?target_session_attrs=read-write`
    pub url: String,
    /// The password, already read (see [`resolve_password`]).
    pub password: Option<String>,
    /// Extra trusted CA certificates (PEM), for a server with a private CA.
    pub ca_file: Option<PathBuf>,
    /// `[general] lease`: how long a claim holds a delivery (default 30 s).
    pub lease: Duration,
    /// Connections in the pool.
    pub max_connections: usize,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            password: None,
            ca_file: None,
            lease: Duration::from_secs(30),
            max_connections: 8,
        }
    }
}

impl PgOptions {
    /// Checks the URL (and that the password is not given twice), without
    /// connecting.
    pub fn validate(&self) -> Result<(), PgError> {
        config(self).map(|_| ())
    }

    /// `postgres://user@host:port,…/db`, without a password: for messages
    /// and logs.
    pub fn redacted(&self) -> String {
        let Ok(c) = config(self) else {
            return "postgres://(not a valid URL)".into();
        };
        let ports = c.get_ports();
        let hosts = c
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let host = match h {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                };
                match ports.get(i).or(ports.first()) {
                    Some(p) => format!("{host}:{p}"),
                    None => host,
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        format!(
            "postgres://{}@{hosts}/{}",
            c.get_user().unwrap_or(""),
            c.get_dbname().unwrap_or("")
        )
    }
}

/// `database_password_env` (the name of an environment variable) or
/// `database_password_file` (a file whose content, without its final line
/// break, is the password); at most one of them. An empty password, an
/// unset variable or an unreadable file is an error naming where it looked.
pub fn resolve_password(env: Option<&str>, file: Option<&Path>) -> Result<Option<String>, PgError> {
    let password = match (env, file) {
        (Some(_), Some(_)) => {
            return Err(PgError::Password(
                "set database_password_env or database_password_file, not both".into(),
            ));
        }
        (Some(var), None) => std::env::var(var).map_err(|_| {
            PgError::Password(format!(
                "database_password_env names `{var}`, which is not set (or not UTF-8)"
            ))
        })?,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                PgError::Password(format!("database_password_file {}: {e}", path.display()))
            })?;
            text.strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(&text)
                .to_owned()
        }
        (None, None) => return Ok(None),
    };
    if password.is_empty() {
        return Err(PgError::Password(match (env, file) {
            (Some(var), _) => format!("`{var}` is empty"),
            (_, Some(path)) => format!("database_password_file {} is empty", path.display()),
            _ => "empty".into(),
        }));
    }
    Ok(Some(password))
}

/// The URL parsed, with the password and defaults added. Errors never
/// repeat the URL (it may hold a password).
pub(super) fn config(options: &PgOptions) -> Result<tokio_postgres::Config, PgError> {
    let url = options.url.trim();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(PgError::Config(
            "a PostgreSQL URL starts with `postgres://` or `postgresql://`".into(),
        ));
    }
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| PgError::Config(format!("not a valid PostgreSQL URL ({e})")))?;
    if config.get_hosts().is_empty() {
        return Err(PgError::Config("the URL names no host".into()));
    }
    if let Some(password) = &options.password {
        if config.get_password().is_some() {
            return Err(PgError::Config(
                "the URL has a password and database_password_env/_file gives one too: \
                 keep it out of the URL"
                    .into(),
            ));
        }
        config.password(password.as_bytes());
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("allerta");
    }
    Ok(config)
}

pub(super) fn tls(
    ca_file: Option<&Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| PgError::Tls(format!("CA file {}: {e}", path.display())))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                PgError::Tls(format!(
                    "CA file {}: not PEM certificates ({e})",
                    path.display()
                ))
            })?;
        if certs.is_empty() {
            return Err(PgError::Tls(format!(
                "CA file {}: no certificate in it",
                path.display()
            )));
        }
        for der in certs {
            roots.add(der).map_err(|e| {
                PgError::Tls(format!(
                    "CA file {}: unusable certificate ({e})",
                    path.display()
                ))
            })?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| PgError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_without_repeating_them() {
        let err = config(&PgOptions::new("mysql://u:hunter2@h/db")).unwrap_err();
        assert!(err.to_string().contains("postgres://"), "{err}");
        let err = config(&PgOptions::new("postgres://u:hunter2@h/db?sslmode=bogus")).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let mut o = PgOptions::new("postgres://u:hunter2@h/db");
        o.password = Some("other".into());
        assert!(
            config(&o)
                .unwrap_err()
                .to_string()
                .contains("out of the URL")
        );
    }

    #[test]
    fn several_hosts_and_read_write_sessions_are_understood() {
        let mut o = PgOptions::new(
            "postgres://allerta@10.0.0.1:5432,10.0.0.2:5433/allerta?target_session_attrs=read-write",
        );
        o.password = Some("pw".into());
        let c = config(&o).unwrap();
        assert_eq!(c.get_hosts().len(), 2);
        assert_eq!(c.get_ports(), &[5432, 5433]);
        assert_eq!(
            c.get_target_session_attrs(),
            tokio_postgres::config::TargetSessionAttrs::ReadWrite
        );
        assert_eq!(c.get_password(), Some(&b"pw"[..]));
        assert_eq!(c.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
    }

    #[test]
    fn passwords_come_from_one_place_and_are_never_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        assert_eq!(
            resolve_password(None, Some(&file)).unwrap().as_deref(),
            Some("s3cret")
        );
        std::fs::write(&file, "").unwrap();
        assert!(resolve_password(None, Some(&file)).is_err());
        assert!(resolve_password(Some("X"), Some(&file)).is_err());
        let missing = resolve_password(Some("ALLERTA_TEST_UNSET_PASSWORD_VAR"), None).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("ALLERTA_TEST_UNSET_PASSWORD_VAR"),
            "{missing}"
        );
        assert_eq!(resolve_password(None, None).unwrap(), None);
    }
}
