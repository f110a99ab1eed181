//! Typed configuration (`allerta.toml`, SPEC §2): lookup order, unknown keys
//! rejected, paths made absolute against the file's directory, secrets read
//! from the environment or a file and never printed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::domain::{ChannelId, ZoneId};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no configuration found: pass --config FILE, set ALLERTA_CONFIG, or create ./allerta.toml or /etc/allerta/allerta.toml"
    )]
    NotFound,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// A secret value: readable only through `expose`, printed as `***`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The three spellings of a secret key `X`: `X`, `X_env`, `X_file`.
#[derive(Debug, Default, Clone)]
pub struct SecretSource {
    pub inline: Option<String>,
    pub env: Option<String>,
    pub file: Option<PathBuf>,
}

impl SecretSource {
    /// Reads the secret. `key` names it in errors (`channels.email.password`).
    /// `$CREDENTIALS_DIRECTORY` is expanded in file paths so a systemd
    /// credential can be named directly. An empty or blank secret is an
    /// error (SPEC §13): an empty shared token would let `?token=` forge
    /// reports, an empty password fails late and obscurely.
    pub fn resolve(&self, key: &str) -> Result<Option<Secret>, String> {
        if let Some(var) = &self.env {
            return match std::env::var(var) {
                Ok(value) if !value.trim().is_empty() => Ok(Some(Secret(value))),
                Ok(_) => Err(format!(
                    "{key}_env: environment variable {var} is empty or blank"
                )),
                Err(_) => Err(format!(
                    "{key}_env: environment variable {var} is not set (or empty)"
                )),
            };
        }
        if let Some(path) = &self.file {
            let expanded = expand_credentials_dir(path);
            return match std::fs::read_to_string(&expanded) {
                Ok(value) => {
                    let value = value.trim_end_matches(['\n', '\r']);
                    if value.trim().is_empty() {
                        Err(format!(
                            "{key}_file: {} is empty: write the secret into it",
                            expanded.display()
                        ))
                    } else {
                        Ok(Some(Secret(value.to_owned())))
                    }
                }
                Err(e) => Err(format!(
                    "{key}_file: cannot read {}: {e}",
                    expanded.display()
                )),
            };
        }
        match &self.inline {
            Some(v) if v.trim().is_empty() => Err(format!("{key}: is empty or blank")),
            other => Ok(other.clone().map(Secret)),
        }
    }

    fn is_given(&self) -> bool {
        self.inline.is_some() || self.env.is_some() || self.file.is_some()
    }
}

/// A configured secret, read only when a command uses it (SPEC §13: each
/// unit loads only the credentials its command uses, so `serve` must not
/// fail because the Telegram token file is absent). An inline value is
/// checked when the file loads; `_env`/`_file` when [`SecretRef::resolve`]
/// is called, and `allerta check` resolves every one.
#[derive(Debug, Clone)]
pub struct SecretRef {
    key: String,
    source: SecretSource,
}

impl SecretRef {
    /// The config key it was given under (`channels.sms.password`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Reads the secret now; the error names the key and where it looked,
    /// never a value.
    pub fn resolve(&self) -> Result<Secret, String> {
        match self.source.resolve(&self.key)? {
            Some(secret) => Ok(secret),
            None => Err(format!("{}: not set", self.key)),
        }
    }
}

/// Minimum length of `[serve] dlr_token` (SPEC §13).
pub const MIN_DLR_TOKEN_LEN: usize = 16;

/// Where the Debian package keeps the files systemd loads as credentials.
/// An officer's shell has no `$CREDENTIALS_DIRECTORY`; reading the same
/// files from here means `allerta send` works at 3 a.m. without the alias.
const PACKAGED_CREDENTIALS: &str = "/etc/allerta/credentials";

fn expand_credentials_dir(path: &Path) -> PathBuf {
    expand_credentials_dir_with(
        path,
        std::env::var("CREDENTIALS_DIRECTORY").ok(),
        Path::new(PACKAGED_CREDENTIALS),
    )
}

fn expand_credentials_dir_with(path: &Path, env: Option<String>, fallback: &Path) -> PathBuf {
    let text = path.to_string_lossy();
    if !text.contains("$CREDENTIALS_DIRECTORY") {
        return path.to_owned();
    }
    let dir = match env.filter(|d| !d.is_empty()) {
        Some(dir) => dir,
        None if fallback.is_dir() => fallback.to_string_lossy().into_owned(),
        None => return path.to_owned(),
    };
    PathBuf::from(text.replace("$CREDENTIALS_DIRECTORY", &dir))
}

#[derive(Debug)]
pub struct Config {
    pub path: PathBuf,
    pub general: General,
    pub zones: BTreeMap<ZoneId, Zone>,
    pub drill: Drill,
    /// `[test] prefix`: the marker on every `Test` message (SPEC §11).
    pub test_prefix: String,
    /// `[approval]`: the optional two-person rule (SPEC §11).
    pub approval: Option<Approval>,
    pub retry: Retry,
    pub channels: Channels,
    pub serve: Option<Serve>,
    /// `[watch]`: drafts from official bulletins (SPEC §16).
    pub watch: Option<crate::watch::config::Watch>,
    /// `[console]`: the officer console inside `serve` (SPEC §17).
    pub console: Option<crate::serve::console::ConsoleConfig>,
    /// `[escalation] steps`: who has not acknowledged gets the next step
    /// (SPEC §14); templates may have their own.
    pub escalation: Vec<crate::alert::escalation::Step>,
}

#[derive(Debug)]
pub struct General {
    /// A SQLite file, or a PostgreSQL database (SPEC §18).
    pub database: crate::ledger::Database,
    pub templates_dir: PathBuf,
    pub contacts_dir: PathBuf,
    pub outbox_dir: PathBuf,
    pub sender: String,
    pub sender_id: String,
    pub default_language: String,
    pub default_region: crate::domain::PhoneRegion,
    pub timezone: chrono_tz::Tz,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    pub name: String,
    pub polygon: Option<String>,
    /// Optional CAP geocode, e.g. ISTAT code `{ ISTAT = "048028" }`.
    #[serde(default)]
    pub geocode: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Drill {
    pub audience: Vec<String>,
    pub prefix: String,
}

/// The two-person rule: alerts of these statuses wait for a second
/// approver before anything is sent.
#[derive(Debug, Clone)]
pub struct Approval {
    pub statuses: Vec<crate::domain::CapStatus>,
    /// OS user names allowed to approve or reject.
    pub approvers: Vec<String>,
    pub timeout: Duration,
}

/// When transient failures stop being retried (SPEC §7).
#[derive(Debug, Clone)]
pub struct Retry {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

#[derive(Debug, Default)]
pub struct Channels {
    pub telegram: Option<Telegram>,
    pub sms: Option<Sms>,
    pub email: Option<Email>,
    pub banner: Option<Banner>,
    /// Social accounts (SPEC §15).
    pub facebook: Option<crate::channel::social::config::Facebook>,
    pub mastodon: Option<crate::channel::social::config::Mastodon>,
    pub bluesky: Option<crate::channel::social::config::Bluesky>,
    pub voice: Option<crate::channel::voice::config::Voice>,
}

impl Channels {
    /// The transport of a configured social channel.
    pub fn social_transport(
        &self,
        channel: ChannelId,
    ) -> Option<crate::channel::social::config::SocialTransport> {
        match channel {
            ChannelId::Facebook => self.facebook.as_ref().map(|c| c.transport),
            ChannelId::Mastodon => self.mastodon.as_ref().map(|c| c.transport),
            ChannelId::Bluesky => self.bluesky.as_ref().map(|c| c.transport),
            _ => None,
        }
    }

    /// The transport a channel is configured with (`outbox`, `kannel`…),
    /// recorded with every alert so `resume` never sends a training alert
    /// for real after the transport changed.
    pub fn transport_kind(&self, channel: ChannelId) -> Option<&'static str> {
        match channel {
            ChannelId::Telegram => self.telegram.as_ref().map(|t| match t.transport {
                TelegramTransport::BotApi => "bot-api",
                TelegramTransport::Outbox => "outbox",
            }),
            ChannelId::Sms => self.sms.as_ref().map(|s| match s.transport {
                SmsTransport::Kannel => "kannel",
                SmsTransport::Http => "http",
                SmsTransport::Outbox => "outbox",
            }),
            ChannelId::Email => self.email.as_ref().map(|e| match e.transport {
                EmailTransport::Smtp => "smtp",
                EmailTransport::Outbox => "outbox",
            }),
            ChannelId::Banner => self.banner.as_ref().map(|b| match b.transport {
                BannerTransport::Files => "files",
                BannerTransport::Outbox => "outbox",
            }),
            ChannelId::Facebook | ChannelId::Mastodon | ChannelId::Bluesky => {
                self.social_transport(channel).map(|t| t.as_str())
            }
            ChannelId::Voice => self.voice.as_ref().map(|v| match v.transport {
                crate::channel::voice::config::VoiceTransport::Http => "http",
                crate::channel::voice::config::VoiceTransport::Outbox => "outbox",
            }),
        }
    }

    pub fn configured(&self) -> Vec<ChannelId> {
        let mut ids = Vec::new();
        if self.telegram.is_some() {
            ids.push(ChannelId::Telegram);
        }
        if self.sms.is_some() {
            ids.push(ChannelId::Sms);
        }
        if self.email.is_some() {
            ids.push(ChannelId::Email);
        }
        if self.banner.is_some() {
            ids.push(ChannelId::Banner);
        }
        for social in ChannelId::SOCIAL {
            if self.social_transport(social).is_some() {
                ids.push(social);
            }
        }
        if self.voice.is_some() {
            ids.push(ChannelId::Voice);
        }
        ids
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TelegramTransport {
    BotApi,
    Outbox,
}

#[derive(Debug)]
pub struct Telegram {
    pub transport: TelegramTransport,
    pub api_url: String,
    pub token: Option<SecretRef>,
    pub broadcast_chat: Option<String>,
    pub rate_per_second: Option<f64>,
    /// Telegram user ids allowed to ask the bot for `/ultima` (status of the
    /// latest alert). User ids, not chats: in a group every member shares the
    /// chat id.
    pub admin_chats: Vec<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsTransport {
    Kannel,
    Http,
    Outbox,
}

#[derive(Debug)]
pub struct Sms {
    pub transport: SmsTransport,
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<SecretRef>,
    pub sender: Option<String>,
    pub rate_per_second: Option<f64>,
    pub max_segments: usize,
    pub dlr_url: Option<String>,
    /// Sends in flight at once (sendsms or HTTP requests).
    pub max_connections: usize,
    /// The request of `transport = "http"` (`[channels.sms.http]`).
    pub http: Option<crate::channel::sms::http_config::SmsHttp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransport {
    Smtp,
    Outbox,
}

#[derive(Debug)]
pub struct Email {
    pub transport: EmailTransport,
    pub url: Option<String>,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<SecretRef>,
    pub max_connections: usize,
    pub rate_per_second: Option<f64>,
    pub unsubscribe_url: Option<String>,
    pub timeout: Duration,
    /// Extra trusted CA certificates (PEM), for a mail server with a
    /// private CA.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BannerTransport {
    Files,
    Outbox,
}

#[derive(Debug)]
pub struct Banner {
    pub transport: BannerTransport,
    pub output_dir: PathBuf,
    pub public_url: Option<String>,
}

#[derive(Debug)]
pub struct Serve {
    pub listen: String,
    pub dlr_token: Option<SecretRef>,
    /// `/metrics` without the bearer token (default false).
    pub metrics_public: bool,
    pub limits: ServeLimits,
}

impl Serve {
    /// The delivery-report token, read now and checked: at least
    /// [`MIN_DLR_TOKEN_LEN`] characters.
    pub fn dlr_token(&self) -> Result<Secret, String> {
        let source = self.dlr_token.as_ref().ok_or_else(|| {
            "serve.dlr_token: not set (dlr_token, dlr_token_env or dlr_token_file): every report must be authenticated".to_owned()
        })?;
        let token = source.resolve()?;
        check_dlr_token(token.expose())?;
        Ok(token)
    }
}

/// A delivery-report token is long enough to resist guessing.
pub fn check_dlr_token(token: &str) -> Result<(), String> {
    let len = token.chars().count();
    if len < MIN_DLR_TOKEN_LEN {
        return Err(format!(
            "serve.dlr_token: too short ({len} characters, at least {MIN_DLR_TOKEN_LEN}): generate one, e.g. `head -c 24 /dev/urandom | base64 | tr -d '/+='`"
        ));
    }
    Ok(())
}

/// Limits of the public HTTP receiver (SPEC §13). The keys exist so tests
/// can shorten the timeouts; values above the SPEC's bounds are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeLimits {
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
    pub max_body_bytes: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_body_bytes: 64 * 1024,
        }
    }
}

// ---- raw TOML shapes -------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    general: RawGeneral,
    #[serde(default)]
    zones: BTreeMap<String, Zone>,
    drill: Option<RawDrill>,
    test: Option<RawTest>,
    approval: Option<RawApproval>,
    retry: Option<RawRetry>,
    #[serde(default)]
    channels: RawChannels,
    serve: Option<RawServe>,
    watch: Option<crate::watch::config::RawWatch>,
    console: Option<crate::serve::console::RawConsole>,
    escalation: Option<crate::alert::escalation::RawEscalation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGeneral {
    database: String,
    database_password_env: Option<String>,
    database_password_file: Option<PathBuf>,
    database_ca_file: Option<PathBuf>,
    lease: Option<String>,
    #[serde(default = "default_templates_dir")]
    templates_dir: PathBuf,
    #[serde(default = "default_contacts_dir")]
    contacts_dir: PathBuf,
    #[serde(default = "default_outbox_dir")]
    outbox_dir: PathBuf,
    sender: String,
    sender_id: String,
    #[serde(default = "default_language")]
    default_language: String,
    #[serde(default = "default_region")]
    default_region: String,
    #[serde(default = "default_timezone")]
    timezone: String,
}

/// `general.database` and the keys that go with a PostgreSQL URL.
fn database(
    g: &RawGeneral,
    rel: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<crate::ledger::Database, (&'static str, String)> {
    use crate::ledger::{Database, pg};
    let url = g.database.trim();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        for (key, set) in [
            (
                "general.database_password_env",
                g.database_password_env.is_some(),
            ),
            (
                "general.database_password_file",
                g.database_password_file.is_some(),
            ),
            ("general.database_ca_file", g.database_ca_file.is_some()),
            ("general.lease", g.lease.is_some()),
        ] {
            if set {
                return Err((
                    key,
                    "only for a PostgreSQL database (general.database = \"postgres://…\")".into(),
                ));
            }
        }
        if url.contains("://") {
            return Err((
                "general.database",
                "a SQLite file path, or a URL starting with postgres://".into(),
            ));
        }
        return Ok(Database::Sqlite(rel(PathBuf::from(&g.database))));
    }
    let mut options = pg::PgOptions::new(url);
    options.password = pg::resolve_password(
        g.database_password_env.as_deref(),
        g.database_password_file
            .as_deref()
            .map(|p| rel(expand_credentials_dir(p)))
            .as_deref(),
    )
    .map_err(|e| {
        let key = if g.database_password_file.is_some() {
            "general.database_password_file"
        } else {
            "general.database_password_env"
        };
        (key, e.to_string())
    })?;
    options.ca_file = g.database_ca_file.clone().map(rel);
    if let Some(lease) = &g.lease {
        let lease = humantime::parse_duration(lease)
            .map_err(|e| ("general.lease", format!("`{lease}`: {e}")))?;
        if lease < std::time::Duration::from_secs(1) {
            return Err(("general.lease", "at least 1s".into()));
        }
        options.lease = lease;
    }
    options
        .validate()
        .map_err(|e| ("general.database", e.to_string()))?;
    Ok(Database::Postgres(options))
}

fn default_templates_dir() -> PathBuf {
    "templates".into()
}
fn default_contacts_dir() -> PathBuf {
    "contacts".into()
}
fn default_outbox_dir() -> PathBuf {
    "outbox".into()
}
fn default_language() -> String {
    "it".into()
}
fn default_region() -> String {
    "IT".into()
}
fn default_timezone() -> String {
    "Europe/Rome".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrill {
    #[serde(default)]
    audience: Vec<String>,
    #[serde(default = "default_drill_prefix")]
    prefix: String,
}

fn default_drill_prefix() -> String {
    "[ESERCITAZIONE]".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    #[serde(default = "default_test_prefix")]
    prefix: String,
}

fn default_test_prefix() -> String {
    "[TEST]".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApproval {
    #[serde(default = "default_approval_statuses")]
    statuses: Vec<String>,
    approvers: Vec<String>,
    #[serde(default = "default_approval_timeout")]
    timeout: String,
}

fn default_approval_statuses() -> Vec<String> {
    vec!["Actual".into()]
}

fn default_approval_timeout() -> String {
    "15m".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    max_attempts: Option<u32>,
    initial_backoff: Option<String>,
    max_backoff: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawChannels {
    telegram: Option<RawTelegram>,
    sms: Option<RawSms>,
    email: Option<RawEmail>,
    banner: Option<RawBanner>,
    facebook: Option<crate::channel::social::config::RawFacebook>,
    mastodon: Option<crate::channel::social::config::RawMastodon>,
    bluesky: Option<crate::channel::social::config::RawBluesky>,
    voice: Option<crate::channel::voice::config::RawVoice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTelegram {
    transport: TelegramTransport,
    api_url: Option<String>,
    token: Option<String>,
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    broadcast_chat: Option<String>,
    rate_per_second: Option<f64>,
    #[serde(default)]
    admin_chats: Vec<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSms {
    transport: SmsTransport,
    url: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    sender: Option<String>,
    rate_per_second: Option<f64>,
    max_segments: Option<usize>,
    dlr_url: Option<String>,
    max_connections: Option<usize>,
    http: Option<crate::channel::sms::http_config::SmsHttp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    transport: EmailTransport,
    url: Option<String>,
    from: String,
    username: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    max_connections: Option<usize>,
    rate_per_second: Option<f64>,
    unsubscribe_url: Option<String>,
    timeout: Option<String>,
    ca_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBanner {
    transport: BannerTransport,
    output_dir: Option<PathBuf>,
    public_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServe {
    listen: String,
    dlr_token: Option<String>,
    dlr_token_env: Option<String>,
    dlr_token_file: Option<PathBuf>,
    #[serde(default)]
    metrics_public: bool,
    header_read_timeout: Option<String>,
    request_timeout: Option<String>,
    max_connections: Option<usize>,
}

// ---- loading ---------------------------------------------------------------

/// Finds the file: `--config`, `$ALLERTA_CONFIG`, `./allerta.toml`,
/// `/etc/allerta/allerta.toml`.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    if let Some(path) = std::env::var_os("ALLERTA_CONFIG").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let here = Path::new("allerta.toml");
    if here.is_file() {
        match trusted_here(here) {
            Ok(()) => return Ok(here.to_owned()),
            // Not an error: the packaged config is the one to use then.
            Err(why) => eprintln!("warning: ignoring ./allerta.toml: {why}"),
        }
    }
    let packaged = Path::new("/etc/allerta/allerta.toml");
    if packaged.is_file() {
        return Ok(packaged.to_owned());
    }
    Err(ConfigError::NotFound)
}

/// A config found in the current directory is used only if whoever runs
/// allerta could have written it alone: owned by the effective user (or
/// root) and writable by nobody else. Otherwise a file planted in a
/// shared directory, or an officer's file under `sudo -u allerta`, would
/// choose the database, the channels and the credential files.
fn trusted_here(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    trusted_owner(meta.uid(), meta.mode(), euid, meta.file_type().is_symlink())
}

fn trusted_owner(owner: u32, mode: u32, euid: u32, symlink: bool) -> Result<(), String> {
    if symlink {
        return Err("it is a symbolic link; pass --config FILE to use it".into());
    }
    if owner != euid && owner != 0 {
        return Err(format!(
            "it belongs to user id {owner}, not to the user running allerta ({euid}); pass --config FILE to use it"
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "others may write it (mode {:o}); `chmod go-w allerta.toml` or pass --config FILE",
            mode & 0o777
        ));
    }
    Ok(())
}

/// Describes a TOML error by position and message only: never the
/// offending source line, which toml's own Display quotes. Pointed at
/// another file (`--config /etc/allerta/credentials/telegram-token`
/// through sudo), that line would be the secret.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

impl Config {
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let path = locate(explicit)?;
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(&path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            message: describe_toml_error(text, &e),
        })?;
        let base = path.parent().map(Path::to_owned).unwrap_or_default();
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.clone(),
            key: key.to_owned(),
            message,
        };
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let g = raw.general;
        let timezone = g.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
            invalid(
                "general.timezone",
                format!("unknown time zone `{}`", g.timezone),
            )
        })?;
        let default_region = crate::domain::PhoneRegion::parse(&g.default_region)
            .map_err(|m| invalid("general.default_region", m))?;
        let database = database(&g, &rel).map_err(|(key, m)| invalid(key, m))?;
        let general = General {
            database,
            templates_dir: rel(g.templates_dir),
            contacts_dir: rel(g.contacts_dir),
            outbox_dir: rel(g.outbox_dir),
            sender: g.sender,
            sender_id: g.sender_id,
            default_language: g.default_language,
            default_region,
            timezone,
        };

        let mut zones = BTreeMap::new();
        for (id, zone) in raw.zones {
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(
                    &format!("zones.{id}"),
                    "zone ids use letters, digits, - and _ only".into(),
                ));
            }
            zones.insert(ZoneId::declared(&id), zone);
        }

        let drill = match raw.drill {
            Some(d) => Drill {
                audience: d.audience,
                prefix: d.prefix,
            },
            None => Drill {
                audience: Vec::new(),
                prefix: default_drill_prefix(),
            },
        };

        let retry_raw = raw.retry.unwrap_or(RawRetry {
            max_attempts: None,
            initial_backoff: None,
            max_backoff: None,
        });
        let duration = |key: &str, value: Option<String>, default: Duration| match value {
            None => Ok(default),
            Some(v) => humantime::parse_duration(&v)
                .map_err(|e| invalid(key, format!("`{v}` is not a duration ({e})"))),
        };
        let retry = Retry {
            max_attempts: retry_raw.max_attempts.unwrap_or(8).max(1),
            initial_backoff: duration(
                "retry.initial_backoff",
                retry_raw.initial_backoff,
                Duration::from_secs(2),
            )?,
            max_backoff: duration(
                "retry.max_backoff",
                retry_raw.max_backoff,
                Duration::from_secs(300),
            )?,
        };

        let secret =
            |key: &str, inline: Option<String>, env: Option<String>, file: Option<PathBuf>| {
                let source = SecretSource {
                    inline,
                    env,
                    file: file.map(|f| {
                        if f.to_string_lossy().starts_with('$') {
                            f
                        } else {
                            rel(f)
                        }
                    }),
                };
                if !source.is_given() {
                    return Ok(None);
                }
                // An inline value is in this file: judge it now. The others
                // are read when a command uses them.
                if source.env.is_none() && source.file.is_none() {
                    source.resolve(key).map_err(|m| invalid(key, m))?;
                }
                Ok(Some(SecretRef {
                    key: key.to_owned(),
                    source,
                }))
            };
        let rate = |key: &str, r: Option<f64>| match r {
            Some(v) if !(v > 0.0 && v.is_finite()) => {
                Err(invalid(key, format!("must be a positive number, got {v}")))
            }
            other => Ok(other),
        };

        let mut channels = Channels::default();
        if let Some(t) = raw.channels.telegram {
            let needs_token = t.transport == TelegramTransport::BotApi;
            let token = if needs_token {
                secret(
                    "channels.telegram.token",
                    t.token,
                    t.token_env,
                    t.token_file,
                )?
            } else {
                None
            };
            if needs_token && token.is_none() {
                return Err(invalid(
                    "channels.telegram.token",
                    "the bot-api transport needs token, token_env or token_file".into(),
                ));
            }
            channels.telegram = Some(Telegram {
                transport: t.transport,
                api_url: t
                    .api_url
                    .unwrap_or_else(|| "https://api.telegram.org".into()),
                token,
                broadcast_chat: t.broadcast_chat,
                rate_per_second: rate("channels.telegram.rate_per_second", t.rate_per_second)?,
                admin_chats: t.admin_chats,
            });
        }
        if let Some(s) = raw.channels.sms {
            let live = s.transport != SmsTransport::Outbox;
            if live && s.url.is_none() {
                return Err(invalid(
                    "channels.sms.url",
                    "required for this transport".into(),
                ));
            }
            if s.transport == SmsTransport::Http && s.http.is_none() {
                return Err(invalid(
                    "channels.sms.http",
                    "transport = \"http\" needs a [channels.sms.http] table (method, fields, success rule)".into(),
                ));
            }
            channels.sms = Some(Sms {
                transport: s.transport,
                url: s.url,
                username: s.username,
                password: if live {
                    secret(
                        "channels.sms.password",
                        s.password,
                        s.password_env,
                        s.password_file,
                    )?
                } else {
                    None
                },
                sender: s.sender,
                rate_per_second: rate("channels.sms.rate_per_second", s.rate_per_second)?,
                max_segments: s.max_segments.unwrap_or(3).max(1),
                dlr_url: s.dlr_url,
                max_connections: s.max_connections.unwrap_or(8).clamp(1, 64),
                http: s.http,
            });
        }
        if let Some(e) = raw.channels.email {
            let live = e.transport == EmailTransport::Smtp;
            if live && e.url.is_none() {
                return Err(invalid(
                    "channels.email.url",
                    "required for transport = \"smtp\"".into(),
                ));
            }
            if e.from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(invalid(
                    "channels.email.from",
                    format!("`{}` is not a mailbox (Name <address@domain>)", e.from),
                ));
            }
            let password = if live {
                secret(
                    "channels.email.password",
                    e.password,
                    e.password_env,
                    e.password_file,
                )?
            } else {
                None
            };
            if e.username.is_some() && live && password.is_none() {
                return Err(invalid(
                    "channels.email.password",
                    "username is set but no password, password_env or password_file".into(),
                ));
            }
            channels.email = Some(Email {
                transport: e.transport,
                url: e.url,
                from: e.from,
                username: e.username,
                password,
                max_connections: e.max_connections.unwrap_or(8).clamp(1, 64),
                rate_per_second: rate("channels.email.rate_per_second", e.rate_per_second)?,
                unsubscribe_url: e.unsubscribe_url,
                timeout: duration("channels.email.timeout", e.timeout, Duration::from_secs(30))?,
                ca_file: e.ca_file.map(rel),
            });
        }
        if let Some(b) = raw.channels.banner {
            channels.banner = Some(Banner {
                transport: b.transport,
                output_dir: rel(b.output_dir.unwrap_or_else(|| "public".into())),
                public_url: b.public_url,
            });
        }
        {
            let secret: crate::channel::social::config::SecretFn<'_, ConfigError> = &secret;
            let invalid: crate::channel::social::config::InvalidFn<'_, ConfigError> = &invalid;
            let c = &mut channels;
            c.facebook = raw
                .channels
                .facebook
                .map(|f| f.resolve(secret, invalid))
                .transpose()?;
            c.mastodon = raw
                .channels
                .mastodon
                .map(|m| m.resolve(secret, invalid))
                .transpose()?;
            c.bluesky = raw
                .channels
                .bluesky
                .map(|b| b.resolve(secret, invalid))
                .transpose()?;
        }

        if let Some(mut v) = raw.channels.voice {
            let token = if v.transport == crate::channel::voice::config::VoiceTransport::Http {
                secret(
                    "channels.voice.auth_token",
                    v.auth_token.take(),
                    v.auth_token_env.take(),
                    v.auth_token_file.take(),
                )?
            } else {
                None
            };
            channels.voice = Some(v.resolve(token).map_err(|(key, m)| invalid(&key, m))?);
        }
        let escalation = match raw.escalation {
            None => Vec::new(),
            Some(e) => e
                .resolve(&channels.configured())
                .map_err(|m| invalid("escalation.steps", m))?,
        };

        let serve = match raw.serve {
            Some(s) => {
                if let Some(inline) = &s.dlr_token {
                    check_dlr_token(inline).map_err(|m| invalid("serve.dlr_token", m))?;
                }
                let defaults = ServeLimits::default();
                let bounded = |key: &str, value: Option<String>, max: Duration| {
                    let d = duration(key, value, max)?;
                    if d > max || d.is_zero() {
                        return Err(invalid(
                            key,
                            format!(
                                "must be more than 0 and at most {}",
                                humantime::format_duration(max)
                            ),
                        ));
                    }
                    Ok(d)
                };
                let limits = ServeLimits {
                    header_read_timeout: bounded(
                        "serve.header_read_timeout",
                        s.header_read_timeout,
                        defaults.header_read_timeout,
                    )?,
                    request_timeout: bounded(
                        "serve.request_timeout",
                        s.request_timeout,
                        defaults.request_timeout,
                    )?,
                    max_connections: match s.max_connections {
                        None => defaults.max_connections,
                        Some(n) if n >= 1 => n,
                        Some(n) => {
                            return Err(invalid(
                                "serve.max_connections",
                                format!("must be at least 1, got {n}"),
                            ));
                        }
                    },
                    max_body_bytes: defaults.max_body_bytes,
                };
                Some(Serve {
                    listen: s.listen,
                    dlr_token: secret(
                        "serve.dlr_token",
                        s.dlr_token,
                        s.dlr_token_env,
                        s.dlr_token_file,
                    )?,
                    metrics_public: s.metrics_public,
                    limits,
                })
            }
            None => None,
        };

        // Twilio fetches each call's instructions from `allerta serve`: a
        // voice channel on http without it would ring phones that say nothing.
        if serve.is_none()
            && channels
                .voice
                .as_ref()
                .is_some_and(|v| v.transport == crate::channel::voice::config::VoiceTransport::Http)
        {
            return Err(invalid(
                "channels.voice",
                "transport = \"http\" needs a [serve] section: `allerta serve` answers the call's instructions and callbacks at callback_url".into(),
            ));
        }
        // An empty marker would make a drill or a test look exactly like a
        // real alert to the citizen who receives it.
        if drill.prefix.trim().is_empty() {
            return Err(invalid(
                "drill.prefix",
                "must not be empty: every drill message carries it".into(),
            ));
        }
        let test_prefix = raw.test.map_or_else(default_test_prefix, |t| t.prefix);
        if test_prefix.trim().is_empty() {
            return Err(invalid(
                "test.prefix",
                "must not be empty: every Test message carries it".into(),
            ));
        }
        let approval = match raw.approval {
            None => None,
            Some(a) => {
                let statuses = a
                    .statuses
                    .iter()
                    .map(|s| {
                        s.parse::<crate::domain::CapStatus>()
                            .map_err(|m| invalid("approval.statuses", m))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let approvers: Vec<String> = a
                    .approvers
                    .iter()
                    .map(|u| u.trim().to_owned())
                    .filter(|u| !u.is_empty())
                    .collect();
                if approvers.len() < 2 {
                    return Err(invalid(
                        "approval.approvers",
                        "name at least two OS users: the creator of an alert cannot approve it"
                            .into(),
                    ));
                }
                let timeout = humantime::parse_duration(&a.timeout)
                    .map_err(|e| invalid("approval.timeout", format!("`{}`: {e}", a.timeout)))?;
                Some(Approval {
                    statuses,
                    approvers,
                    timeout,
                })
            }
        };

        let watch = raw.watch.map(|w| w.resolve(&path, &base)).transpose()?;
        let console = raw
            .console
            .map(|c| c.resolve())
            .transpose()
            .map_err(|(key, m)| invalid(&key, m))?;
        let config = Config {
            path: path.clone(),
            general,
            zones,
            drill,
            test_prefix,
            approval,
            retry,
            channels,
            serve,
            watch,
            console,
            escalation,
        };
        if let Some(watch) = &config.watch {
            watch.check(&config)?;
        }
        for entry in &config.drill.audience {
            crate::audience::Selector::parse(entry, &config)
                .map_err(|m| invalid("drill.audience", m))?;
        }
        Ok(config)
    }

    /// Resolves a zone id a user typed; undeclared zones are an error.
    pub fn zone(&self, id: &str) -> Result<ZoneId, String> {
        let id = id.trim();
        let zone = ZoneId::declared(id);
        if self.zones.contains_key(&zone) {
            Ok(zone)
        } else {
            let known: Vec<&str> = self.zones.keys().map(ZoneId::as_str).collect();
            Err(format!(
                "unknown zone `{id}` (declared zones: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[general]
database = "allerta.db"
sender = "Comune di Prova"
sender_id = "pc@comune.example.it"
[zones.centro]
name = "Centro"
"#;

    #[test]
    fn relative_paths_are_relative_to_the_file() {
        let c = Config::parse(Path::new("/etc/allerta/allerta.toml"), MINIMAL).unwrap();
        assert_eq!(
            c.general.database.sqlite_path(),
            Some(std::path::Path::new("/etc/allerta/allerta.db"))
        );
        assert_eq!(
            c.general.templates_dir,
            PathBuf::from("/etc/allerta/templates")
        );
    }

    #[test]
    fn a_postgresql_password_problem_is_reported_under_the_key_that_gave_it() {
        let url = "database = \"postgres://allerta@db:5432/allerta\"";
        let with = |extra: &str| {
            let text = MINIMAL.replace("database = \"allerta.db\"", &format!("{url}\n{extra}"));
            Config::parse(Path::new("/nonexistent-dir/allerta.toml"), &text)
        };
        let err = with("database_password_file = \"db-password\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("general.database_password_file") && err.contains("db-password"),
            "{err}"
        );
        let err = with("database_password_env = \"ALLERTA_TEST_UNSET_DB_PASSWORD\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("general.database_password_env")
                && err.contains("ALLERTA_TEST_UNSET_DB_PASSWORD"),
            "{err}"
        );
        let err = Config::parse(
            Path::new("/x/allerta.toml"),
            &MINIMAL.replace("[zones.centro]", "lease = \"30s\"\n[zones.centro]"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("general.lease") && err.contains("PostgreSQL"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let text = format!(
            "{MINIMAL}\n[channels.email]\ntransport = \"outbox\"\nfrom = \"a <a@b.it>\"\nmax_conections = 3\n"
        );
        let err = Config::parse(Path::new("/x/allerta.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_conections"), "{err}");
    }

    #[test]
    fn missing_secret_env_names_the_key_and_variable_but_not_a_value() {
        let text = format!(
            "{MINIMAL}\n[channels.email]\ntransport = \"smtp\"\nurl = \"smtp://127.0.0.1:1\"\nfrom = \"a <a@b.it>\"\nusername = \"u\"\npassword_env = \"ALLERTA_TEST_SURELY_UNSET\"\n"
        );
        // Read when the channel is used, not when the file loads.
        let config = Config::parse(Path::new("/x/allerta.toml"), &text).unwrap();
        let err = config
            .channels
            .email
            .unwrap()
            .password
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(err.contains("channels.email.password_env"), "{err}");
        assert!(err.contains("ALLERTA_TEST_SURELY_UNSET"), "{err}");
    }

    #[test]
    fn credentials_directory_falls_back_to_the_packaged_one_for_officers() {
        let packaged = tempfile::tempdir().unwrap();
        let named = Path::new("$CREDENTIALS_DIRECTORY/smtp-password");
        // Under systemd the variable wins.
        assert_eq!(
            expand_credentials_dir_with(named, Some("/run/credentials/x".into()), packaged.path()),
            PathBuf::from("/run/credentials/x/smtp-password")
        );
        // In an officer's shell the packaged directory is used.
        assert_eq!(
            expand_credentials_dir_with(named, None, packaged.path()),
            packaged.path().join("smtp-password")
        );
        // Neither: left as written, so the error names the variable.
        let missing = packaged.path().join("nope");
        assert_eq!(expand_credentials_dir_with(named, None, &missing), named);
        // Plain paths are untouched.
        let plain = Path::new("/etc/allerta/mail-ca.pem");
        assert_eq!(
            expand_credentials_dir_with(plain, None, packaged.path()),
            plain
        );
    }

    fn with(extra: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/x/allerta.toml"), &format!("{MINIMAL}\n{extra}"))
    }

    #[test]
    fn empty_or_blank_secrets_are_config_errors() {
        // Inline: refused when the file loads.
        let err = with("[channels.email]\ntransport = \"smtp\"\nurl = \"smtp://127.0.0.1:1\"\nfrom = \"a <a@b.it>\"\nusername = \"u\"\npassword = \"  \"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("channels.email.password") && err.contains("blank"),
            "{err}"
        );
        // From a file: refused when resolved.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, " \n").unwrap();
        let config = with(&format!(
            "[channels.telegram]\ntransport = \"bot-api\"\ntoken_file = \"{}\"\n",
            file.display()
        ))
        .unwrap();
        let err = config
            .channels
            .telegram
            .unwrap()
            .token
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(err.contains("token_file") && err.contains("empty"), "{err}");
        // From the environment: refused when resolved.
        let env = SecretSource {
            env: Some("PATH_SURELY_NOT_SET_ALLERTA_BLANK".into()),
            ..SecretSource::default()
        };
        assert!(env.resolve("k").is_err());
    }

    #[test]
    fn a_short_delivery_report_token_is_refused() {
        let err = with("[serve]\nlisten = \"127.0.0.1:0\"\ndlr_token = \"t0ken\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("serve.dlr_token") && err.contains("16"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dlr");
        std::fs::write(&file, "short\n").unwrap();
        let config = with(&format!(
            "[serve]\nlisten = \"127.0.0.1:0\"\ndlr_token_file = \"{}\"\n",
            file.display()
        ))
        .unwrap();
        let serve = config.serve.unwrap();
        assert!(serve.dlr_token().unwrap_err().contains("too short"));
        std::fs::write(&file, "0123456789abcdef\n").unwrap();
        assert_eq!(serve.dlr_token().unwrap().expose(), "0123456789abcdef");
    }

    #[test]
    fn serve_limits_default_to_the_spec_bounds_and_refuse_larger_ones() {
        let config = with("[serve]\nlisten = \"127.0.0.1:0\"\n").unwrap();
        let limits = config.serve.unwrap().limits;
        assert!(limits.header_read_timeout <= Duration::from_secs(10));
        assert!(limits.request_timeout <= Duration::from_secs(30));
        assert!(limits.max_connections >= 1000);
        assert!(limits.max_body_bytes <= 64 * 1024);
        assert_eq!(limits, ServeLimits::default());
        let err = with("[serve]\nlisten = \"127.0.0.1:0\"\nheader_read_timeout = \"11s\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("serve.header_read_timeout"), "{err}");
        let err = with("[serve]\nlisten = \"127.0.0.1:0\"\nrequest_timeout = \"31s\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("serve.request_timeout"), "{err}");
    }

    #[test]
    fn a_parse_error_never_quotes_the_file() {
        // What `--config /etc/allerta/credentials/telegram-token` reads.
        for text in [
            "123456789:AAH-secret-token-value\n",
            "secret-token-value\n",
            "x = 1\nsecret-token-value = \n",
        ] {
            let err = Config::parse(Path::new("/etc/allerta/credentials/telegram-token"), text)
                .unwrap_err()
                .to_string();
            assert!(!err.contains("secret-token-value"), "{err}");
            assert!(err.contains("line "), "{err}");
        }
        // A real config error still says where and what.
        let err = with(
            "[channels.email]\ntransport = \"outbox\"\nfrom = \"a <a@b.it>\"\nmax_conections = 3\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("max_conections") && err.contains("line "),
            "{err}"
        );
    }

    #[test]
    fn a_config_in_the_current_directory_must_be_the_users_own() {
        assert!(trusted_owner(1000, 0o100644, 1000, false).is_ok());
        assert!(trusted_owner(0, 0o100644, 1000, false).is_ok());
        assert!(trusted_owner(0, 0o100600, 0, false).is_ok());
        // Planted by someone else, or writable by others, or a symlink.
        assert!(trusted_owner(1001, 0o100644, 1000, false).is_err());
        assert!(trusted_owner(1000, 0o100644, 0, false).is_err());
        assert!(trusted_owner(1000, 0o100664, 1000, false).is_err());
        assert!(trusted_owner(0, 0o100646, 0, false).is_err());
        assert!(trusted_owner(0, 0o100644, 0, true).is_err());
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn undeclared_zone_is_an_error_listing_declared_ones() {
        let c = Config::parse(Path::new("/x/allerta.toml"), MINIMAL).unwrap();
        assert!(c.zone("centro").is_ok());
        let err = c.zone("centor").unwrap_err();
        assert!(err.contains("centor") && err.contains("centro"), "{err}");
    }

    #[test]
    fn voice_and_escalation_are_checked_at_load() {
        let parse = |extra: &str| {
            Config::parse(Path::new("/tmp/allerta.toml"), &format!("{MINIMAL}{extra}"))
        };
        let voice = "[channels.voice]\ntransport = \"http\"\nurl = \"http://127.0.0.1:9/Calls.json\"\nfrom = \"+390571000000\"\ncallback_url = \"https://x/voice\"\nauth_token = \"tok\"\n[channels.voice.http]\nfields = { To = \"{{ to }}\" }\n";
        let serve = "[serve]\nlisten = \"127.0.0.1:0\"\ndlr_token = \"0123456789abcdef\"\n";
        let ok = parse(&format!("{voice}{serve}")).expect("voice config");
        let v = ok.channels.voice.as_ref().expect("voice");
        assert_eq!((v.attempts, v.retry_after), (3, Duration::from_secs(300)));
        assert_eq!(ok.channels.transport_kind(ChannelId::Voice), Some("http"));
        let err = |extra: &str| parse(extra).expect_err("refused").to_string();
        assert!(err(voice).contains("needs a [serve] section"));
        assert!(
            err(&format!(
                "{}{serve}",
                voice.replace("auth_token = \"tok\"\n", "")
            ))
            .contains("auth_token")
        );
        assert!(
            err(&format!(
                "{}{serve}",
                voice.replace("from = \"+390571000000\"\n", "")
            ))
            .contains("channels.voice.from")
        );
        assert!(
            err("[channels.voice]\ntransport = \"outbox\"\nattempts = 0\n").contains("attempts")
        );
        // Escalation steps name configured channels only.
        let steps = "[escalation]\nsteps = [{ after = \"10m\", channel = \"voice\" }]\n";
        assert!(err(steps).contains("not configured"));
        let ok = parse(&format!(
            "[channels.voice]\ntransport = \"outbox\"\n{steps}"
        ))
        .expect("steps");
        assert_eq!(ok.escalation.len(), 1);
    }
}
