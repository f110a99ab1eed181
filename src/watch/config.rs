//! `[watch]`, `[[watch.source]]` and `[[watch.rule]]` of `allerta.toml`
//! (SPEC §16): unknown keys rejected like the rest of the file, every value
//! checked when the configuration loads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::level::Level;
use crate::config::{Config, ConfigError};

/// Time between two polls when `[watch] interval` is not set.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// How long one request to a source may take when `timeout` is not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The DPC national criticality bulletin (GeoJSON).
    Dpc,
    /// A CAP 1.2 Atom feed (MeteoAlarm).
    Cap,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dpc => "dpc",
            Self::Cap => "cap",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub kind: SourceKind,
    pub url: url::Url,
    /// The comune (dpc) or the area (cap) this source is read for.
    pub subject: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub level: Level,
    pub risk: String,
    pub template: String,
    pub vars: BTreeMap<String, String>,
    pub audience: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Watch {
    pub notify_chats: Vec<String>,
    pub notify_emails: Vec<String>,
    pub interval: Duration,
    pub sources: Vec<Source>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWatch {
    #[serde(default)]
    notify_chats: Vec<ChatRef>,
    #[serde(default)]
    notify_emails: Vec<String>,
    interval: Option<String>,
    #[serde(default)]
    source: Vec<RawSource>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

/// A Telegram chat: a numeric id or a `@channel` name.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ChatRef {
    Id(i64),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: String,
    kind: SourceKind,
    url: String,
    comune: Option<String>,
    area: Option<String>,
    timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    level: Level,
    risk: String,
    template: String,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    audience: Vec<String>,
}

fn duration(value: Option<&str>, default: Duration) -> Result<Duration, String> {
    match value {
        None => Ok(default),
        Some(v) => match humantime::parse_duration(v) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err(format!("`{v}` must be longer than zero")),
            Err(e) => Err(format!("`{v}` is not a duration ({e})")),
        },
    }
}

impl RawWatch {
    /// Checks and resolves `[watch]`; `base` is the config file's directory
    /// (a relative `file://` path is relative to it, like every path).
    pub fn resolve(self, path: &Path, base: &Path) -> Result<Watch, ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            message,
        };
        let interval = duration(self.interval.as_deref(), DEFAULT_INTERVAL)
            .map_err(|m| invalid("watch.interval".into(), m))?;
        let mut notify_chats = Vec::new();
        for chat in self.notify_chats {
            let chat = match chat {
                ChatRef::Id(id) => id.to_string(),
                ChatRef::Name(name) => name.trim().to_owned(),
            };
            crate::channel::telegram::recipient(&chat)
                .map_err(|m| invalid("watch.notify_chats".into(), m))?;
            notify_chats.push(chat);
        }
        for email in &self.notify_emails {
            if email.parse::<lettre::message::Mailbox>().is_err() {
                return Err(invalid(
                    "watch.notify_emails".into(),
                    format!("`{email}` is not an email address"),
                ));
            }
        }
        let mut names = BTreeSet::new();
        let mut sources = Vec::new();
        for (i, s) in self.source.into_iter().enumerate() {
            let key = |field: &str| format!("watch.source[{i}].{field}");
            let name = s.name.trim().to_owned();
            if name.is_empty() {
                return Err(invalid(key("name"), "must not be empty".into()));
            }
            if !names.insert(name.clone()) {
                return Err(invalid(
                    key("name"),
                    format!("two sources are named `{name}`"),
                ));
            }
            let url = source_url(&s.url, base).map_err(|m| invalid(key("url"), m))?;
            let subject = match (s.kind, s.comune, s.area) {
                (SourceKind::Dpc, Some(c), None) if !c.trim().is_empty() => c.trim().to_owned(),
                (SourceKind::Cap, None, Some(a)) if !a.trim().is_empty() => a.trim().to_owned(),
                (SourceKind::Dpc, _, _) => {
                    return Err(invalid(
                        key("comune"),
                        "kind = \"dpc\" needs `comune` (the comune's name as the bulletin lists it) and no `area`".into(),
                    ));
                }
                (SourceKind::Cap, _, _) => {
                    return Err(invalid(
                        key("area"),
                        "kind = \"cap\" needs `area` (text its entries' areaDesc contains) and no `comune`".into(),
                    ));
                }
            };
            let timeout = duration(s.timeout.as_deref(), DEFAULT_TIMEOUT)
                .map_err(|m| invalid(key("timeout"), m))?;
            sources.push(Source {
                name,
                kind: s.kind,
                url,
                subject,
                timeout,
            });
        }
        let mut rules = Vec::new();
        for (i, r) in self.rule.into_iter().enumerate() {
            let key = |field: &str| format!("watch.rule[{i}].{field}");
            let risk = r.risk.trim().to_lowercase();
            if risk.is_empty() {
                return Err(invalid(key("risk"), "must not be empty".into()));
            }
            if r.template.trim().is_empty() {
                return Err(invalid(key("template"), "must not be empty".into()));
            }
            if r.audience.is_empty() {
                return Err(invalid(
                    key("audience"),
                    "name who the alert is for: [\"zone:…\", \"group:…\"] or [\"all\"]".into(),
                ));
            }
            for (name, value) in &r.vars {
                super::rules::fill(value, Level::Giallo, &risk, "2000-01-01")
                    .map_err(|m| invalid(key(&format!("vars.{name}")), m))?;
            }
            rules.push(Rule {
                level: r.level,
                risk,
                template: r.template.trim().to_owned(),
                vars: r.vars,
                audience: r.audience,
            });
        }
        Ok(Watch {
            notify_chats,
            notify_emails: self.notify_emails,
            interval,
            sources,
            rules,
        })
    }
}

/// `https://`, `http://` or `file://` (a relative file path is relative
/// to the configuration file).
fn source_url(text: &str, base: &Path) -> Result<url::Url, String> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("file://")
        && !rest.starts_with('/')
    {
        let file: PathBuf = base.join(rest);
        return url::Url::from_file_path(&file)
            .map_err(|()| format!("`{text}`: cannot make a file URL of {}", file.display()));
    }
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL ({e})"))?;
    match url.scheme() {
        "https" | "http" | "file" => Ok(url),
        other => Err(format!(
            "`{text}`: scheme `{other}` is not supported (https://, http:// or file://)"
        )),
    }
}

impl Watch {
    /// Checks what needs the rest of the configuration: audiences name
    /// declared zones, officers can be notified on configured channels.
    pub fn check(&self, config: &Config) -> Result<(), ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid {
            path: config.path.clone(),
            key,
            message,
        };
        for (i, r) in self.rules.iter().enumerate() {
            for entry in &r.audience {
                crate::audience::Selector::parse(entry, config)
                    .map_err(|m| invalid(format!("watch.rule[{i}].audience"), m))?;
            }
        }
        if !self.notify_chats.is_empty() && config.channels.telegram.is_none() {
            return Err(invalid(
                "watch.notify_chats".into(),
                "officers are notified through [channels.telegram], which is not configured".into(),
            ));
        }
        if !self.notify_emails.is_empty() && config.channels.email.is_none() {
            return Err(invalid(
                "watch.notify_emails".into(),
                "officers are notified through [channels.email], which is not configured".into(),
            ));
        }
        Ok(())
    }
}
