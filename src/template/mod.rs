//! Alert templates (SPEC §4): loading `templates/<id>.toml`, checking the
//! officer's variables, and rendering every channel's text per language with
//! strict undefined variables and per-output escaping.

pub mod gsm;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

use crate::domain::ChannelId;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown template `{id}` in {dir} (available: {available})")]
    Unknown {
        id: String,
        dir: PathBuf,
        available: String,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("template `{template}`: {message}")]
    Variables { template: String, message: String },
    #[error("template `{template}`, [{lang}] {field}: {message}")]
    Render {
        template: String,
        lang: String,
        field: String,
        message: String,
    },
}

/// One declared variable.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VariableSpec {
    pub description: String,
    pub default: Option<String>,
    pub allowed: Option<Vec<String>>,
    pub example: Option<String>,
}

impl VariableSpec {
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }

    /// A value that makes the template render for `templates check`.
    pub fn sample(&self) -> Option<&str> {
        self.example
            .as_deref()
            .or(self.default.as_deref())
            .or_else(|| {
                self.allowed
                    .as_ref()
                    .and_then(|a| a.first().map(String::as_str))
            })
    }
}

/// The texts of one language, as written in the template file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LangTexts {
    pub headline: Option<String>,
    pub description: Option<String>,
    pub instruction: Option<String>,
    pub sms: Option<String>,
    pub telegram: Option<String>,
    pub email_subject: Option<String>,
    pub email_text: Option<String>,
    pub email_html: Option<String>,
    pub banner: Option<String>,
    /// The public post on the social accounts (plain text; the link to
    /// the alert page is added when posting).
    pub social: Option<String>,
    /// Plain text spoken by a voice call (SPEC §14).
    pub voice: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub id: String,
    pub path: PathBuf,
    pub title: String,
    meta: BTreeMap<&'static str, String>,
    pub expires_after: Option<Duration>,
    pub variables: BTreeMap<String, VariableSpec>,
    pub languages: BTreeMap<String, LangTexts>,
    /// `[escalation] steps` of this template (overrides the config's).
    pub escalation: Option<Vec<crate::alert::escalation::Step>>,
}

/// CAP `<info>` metadata after rendering.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CapMeta {
    pub event: String,
    pub category: String,
    pub severity: String,
    pub urgency: String,
    pub certainty: String,
    pub response_type: Option<String>,
    pub instruction: Option<String>,
}

/// What one channel sends for one language.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChannelText {
    pub subject: Option<String>,
    pub text: String,
    pub html: Option<String>,
}

/// Texts shown on the public banner and in CAP `<info>` for one language.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InfoText {
    pub headline: String,
    pub description: String,
    pub instruction: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rendered {
    pub meta: CapMeta,
    pub default_language: String,
    pub info: BTreeMap<String, InfoText>,
    /// channel → language → text. A channel absent here has no text in
    /// this template and is not sent.
    pub channels: BTreeMap<ChannelId, BTreeMap<String, ChannelText>>,
}

impl Rendered {
    /// The text for a recipient's language, falling back to the default.
    pub fn text(&self, channel: ChannelId, lang: &str) -> Option<&ChannelText> {
        let by_lang = self.channels.get(&channel)?;
        by_lang
            .get(lang)
            .or_else(|| by_lang.get(&self.default_language))
    }

    pub fn headline(&self) -> &str {
        self.info
            .get(&self.default_language)
            .or_else(|| self.info.values().next())
            .map_or("", |i| i.headline.as_str())
    }
}

pub struct RenderOptions<'a> {
    pub default_language: &'a str,
    /// Prepended to every text of every channel: the drill or test marker.
    pub prefix: Option<&'a str>,
}

const META_KEYS: [&str; 7] = [
    "event",
    "category",
    "severity",
    "urgency",
    "certainty",
    "response_type",
    "instruction",
];
const REQUIRED_META: [&str; 5] = ["event", "category", "severity", "urgency", "certainty"];

/// Lists the template ids in `dir`, sorted.
pub fn list_ids(dir: &Path) -> Result<Vec<String>, TemplateError> {
    let entries = std::fs::read_dir(dir).map_err(|e| TemplateError::File {
        path: dir.to_owned(),
        message: format!("cannot read templates directory: {e}"),
    })?;
    let mut ids: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    ids.sort();
    Ok(ids)
}

impl Template {
    pub fn load(dir: &Path, id: &str) -> Result<Self, TemplateError> {
        let valid_id = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let path = dir.join(format!("{id}.toml"));
        if !valid_id || !path.is_file() {
            return Err(TemplateError::Unknown {
                id: id.to_owned(),
                dir: dir.to_owned(),
                available: list_ids(dir).map(|ids| ids.join(", ")).unwrap_or_default(),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|e| TemplateError::File {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Self::parse(id, &path, &text)
    }

    pub fn parse(id: &str, path: &Path, text: &str) -> Result<Self, TemplateError> {
        let file_err = |message: String| TemplateError::File {
            path: path.to_owned(),
            message,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| file_err(e.to_string()))?;
        let mut take_str = |key: &str| -> Result<Option<String>, TemplateError> {
            match table.remove(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(file_err(format!("`{key}` must be a string"))),
            }
        };
        let title = take_str("title")?.ok_or_else(|| file_err("missing `title`".into()))?;
        let mut meta = BTreeMap::new();
        for key in META_KEYS {
            if let Some(v) = take_str(key)? {
                meta.insert(key, v);
            }
        }
        let expires_after = take_str("expires_after")?
            .map(|v| {
                humantime::parse_duration(&v)
                    .map_err(|e| file_err(format!("expires_after `{v}`: {e}")))
            })
            .transpose()?;
        for key in REQUIRED_META {
            if !meta.contains_key(key) {
                return Err(file_err(format!("missing `{key}` (CAP metadata)")));
            }
        }
        let variables: BTreeMap<String, VariableSpec> = match table.remove("variables") {
            None => BTreeMap::new(),
            Some(v) => v
                .try_into()
                .map_err(|e: toml::de::Error| file_err(format!("[variables]: {e}")))?,
        };
        let escalation = match table.remove("escalation") {
            None => None,
            Some(v) => {
                let raw: crate::alert::escalation::RawEscalation = v
                    .try_into()
                    .map_err(|e: toml::de::Error| file_err(format!("[escalation]: {e}")))?;
                Some(
                    raw.parse()
                        .map_err(|m| file_err(format!("[escalation] steps: {m}")))?,
                )
            }
        };
        let mut languages = BTreeMap::new();
        for (key, value) in table {
            let is_lang =
                (2..=3).contains(&key.len()) && key.chars().all(|c| c.is_ascii_lowercase());
            if !is_lang || !value.is_table() {
                return Err(file_err(format!(
                    "unknown key `{key}` (expected title, {}, expires_after, [variables.*], [escalation] or a language table like [it])",
                    META_KEYS.join(", ")
                )));
            }
            let texts: LangTexts = value
                .try_into()
                .map_err(|e: toml::de::Error| file_err(format!("[{key}]: {e}")))?;
            languages.insert(key, texts);
        }
        if languages.is_empty() {
            return Err(file_err("no language table such as [it]".into()));
        }
        Ok(Self {
            id: id.to_owned(),
            path: path.to_owned(),
            title,
            meta,
            expires_after,
            variables,
            languages,
            escalation,
        })
    }

    /// Checks the officer's `--var K=V` against the declaration: unknown
    /// names (with a suggestion), missing required ones, values outside
    /// `allowed`. Returns every variable with defaults filled in.
    pub fn resolve_vars(
        &self,
        given: &[(String, String)],
    ) -> Result<BTreeMap<String, String>, TemplateError> {
        let mut problems = Vec::new();
        let mut values = BTreeMap::new();
        for (name, value) in given {
            match self.variables.get(name) {
                None => {
                    let hint = strsim_best(name, self.variables.keys())
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    problems.push(format!("unknown variable `{name}`{hint}"));
                }
                Some(spec) => {
                    if let Some((at, c)) = control_char(value) {
                        problems.push(format!(
                            "variable `{name}` contains the control character U+{:04X} at \
                             character {} (it would corrupt the CAP XML, the feed and the \
                             messages); remove it",
                            c as u32,
                            at + 1
                        ));
                    }
                    if let Some(allowed) = &spec.allowed
                        && !allowed.iter().any(|a| a == value)
                    {
                        problems.push(format!(
                            "variable `{name}` = `{value}` is not allowed (allowed: {})",
                            allowed.join(", ")
                        ));
                    }
                    if values.insert(name.clone(), value.clone()).is_some() {
                        problems.push(format!("variable `{name}` given twice"));
                    }
                }
            }
        }
        for (name, spec) in &self.variables {
            if values.contains_key(name) {
                continue;
            }
            match &spec.default {
                Some(d) => {
                    values.insert(name.clone(), d.clone());
                }
                None => problems.push(format!(
                    "missing required variable `{name}` ({}){}",
                    spec.description,
                    spec.example
                        .as_ref()
                        .map(|e| format!(", e.g. --var {name}=\"{e}\""))
                        .unwrap_or_default()
                )),
            }
        }
        if problems.is_empty() {
            Ok(values)
        } else {
            Err(TemplateError::Variables {
                template: self.id.clone(),
                message: problems.join("; "),
            })
        }
    }

    /// Values for `templates check`: each variable's example or default.
    pub fn sample_vars(&self) -> Vec<(String, String)> {
        self.variables
            .iter()
            .filter_map(|(k, v)| v.sample().map(|s| (k.clone(), s.to_owned())))
            .collect()
    }

    /// Renders metadata, info texts and every channel's text in every
    /// language of the template.
    pub fn render(
        &self,
        vars: &BTreeMap<String, String>,
        options: &RenderOptions<'_>,
    ) -> Result<Rendered, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        let ctx = minijinja::Value::from(minijinja::value::Serde(vars));
        let render = |lang: &str, field: &str, source: &str, html: bool| {
            let name = if html {
                format!("{field}.html")
            } else {
                field.to_owned()
            };
            env.render_named_str(&name, source, ctx.clone())
                .map(|s| s.trim().to_owned())
                .map_err(|e| TemplateError::Render {
                    template: self.id.clone(),
                    lang: lang.to_owned(),
                    field: field.to_owned(),
                    message: render_error(&e),
                })
        };

        let mut meta_values = BTreeMap::new();
        for (key, source) in &self.meta {
            meta_values.insert(*key, render("meta", key, source, false)?);
        }
        let get = |k: &str| meta_values.get(k).cloned().unwrap_or_default();
        let opt = |k: &str| meta_values.get(k).filter(|v| !v.is_empty()).cloned();
        let meta = CapMeta {
            event: get("event"),
            category: get("category"),
            severity: get("severity"),
            urgency: get("urgency"),
            certainty: get("certainty"),
            response_type: opt("response_type"),
            instruction: opt("instruction"),
        };
        check_cap_values(&self.id, &meta)?;

        let default_language = if self.languages.contains_key(options.default_language) {
            options.default_language.to_owned()
        } else {
            self.languages.keys().next().cloned().unwrap_or_default()
        };
        let fallback = self.languages.get(&default_language);
        let prefix = |text: String| match options.prefix {
            Some(p) if !p.is_empty() => format!("{p} {text}"),
            _ => text,
        };
        let html_prefix = |text: String| match options.prefix {
            Some(p) if !p.is_empty() => format!("{} {text}", html_escape(p)),
            _ => text,
        };

        let mut info = BTreeMap::new();
        let mut channels: BTreeMap<ChannelId, BTreeMap<String, ChannelText>> = BTreeMap::new();
        for (lang, texts) in &self.languages {
            // A field missing in this language falls back to the default one.
            let pick = |f: fn(&LangTexts) -> &Option<String>| {
                f(texts)
                    .as_ref()
                    .or_else(|| fallback.and_then(|d| f(d).as_ref()))
            };
            let field = |name: &str, f: fn(&LangTexts) -> &Option<String>, html: bool| {
                pick(f).map(|src| render(lang, name, src, html)).transpose()
            };
            let headline = field("headline", |t| &t.headline, false)?.ok_or_else(|| {
                TemplateError::Render {
                    template: self.id.clone(),
                    lang: lang.clone(),
                    field: "headline".into(),
                    message: "missing (every language needs a headline)".into(),
                }
            })?;
            let email_text = field("email_text", |t| &t.email_text, false)?;
            let description = match field("description", |t| &t.description, false)? {
                Some(d) => d,
                None => email_text.clone().unwrap_or_else(|| headline.clone()),
            };
            let instruction = field("instruction", |t| &t.instruction, false)?
                .or_else(|| meta.instruction.clone());
            info.insert(
                lang.clone(),
                InfoText {
                    headline: prefix(headline.clone()),
                    description: prefix(description),
                    instruction,
                },
            );

            let mut put = |channel: ChannelId, text: ChannelText| {
                channels
                    .entry(channel)
                    .or_default()
                    .insert(lang.clone(), text);
            };
            if let Some(sms) = field("sms", |t| &t.sms, false)? {
                put(
                    ChannelId::Sms,
                    ChannelText {
                        subject: None,
                        text: prefix(sms),
                        html: None,
                    },
                );
            }
            if let Some(tg) = field("telegram", |t| &t.telegram, true)? {
                put(
                    ChannelId::Telegram,
                    ChannelText {
                        subject: None,
                        text: html_prefix(tg),
                        html: None,
                    },
                );
            }
            if let Some(text) = email_text {
                let subject = field("email_subject", |t| &t.email_subject, false)?
                    .unwrap_or_else(|| headline.clone());
                // One message, one language: the HTML part comes from the
                // language the text part came from, never from another one.
                let html_source = if texts.email_text.is_some() {
                    texts.email_html.as_ref()
                } else {
                    fallback.and_then(|d| d.email_html.as_ref())
                };
                let html = html_source
                    .map(|src| render(lang, "email_html", src, true))
                    .transpose()?
                    .map(html_prefix);
                put(
                    ChannelId::Email,
                    ChannelText {
                        subject: Some(prefix(subject)),
                        text: prefix(text),
                        html,
                    },
                );
            }
            if let Some(social) = field("social", |t| &t.social, false)? {
                // One text for every network; each counts its own limit.
                for channel in ChannelId::SOCIAL {
                    put(
                        channel,
                        ChannelText {
                            subject: None,
                            text: prefix(social.clone()),
                            html: None,
                        },
                    );
                }
            }
            if let Some(voice) = field("voice", |t| &t.voice, false)? {
                put(
                    ChannelId::Voice,
                    ChannelText {
                        subject: None,
                        text: prefix(voice),
                        html: None,
                    },
                );
            }
            if let Some(banner) = field("banner", |t| &t.banner, false)? {
                put(
                    ChannelId::Banner,
                    ChannelText {
                        subject: Some(prefix(headline.clone())),
                        text: prefix(banner),
                        html: None,
                    },
                );
            }
        }
        Ok(Rendered {
            meta,
            default_language,
            info,
            channels,
        })
    }
}

/// The first control character of `value` that no output may carry: C0
/// other than tab, LF and CR, DEL, and C1 (U+0080–U+009F). XML 1.0 forbids
/// most of them outright, and none belongs in an SMS or an email.
fn control_char(value: &str) -> Option<(usize, char)> {
    value.chars().enumerate().find(|(_, c)| {
        let c = *c;
        (c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r'))
            || ('\u{80}'..='\u{9f}').contains(&c)
    })
}

fn render_error(e: &minijinja::Error) -> String {
    let mut message = e.to_string();
    if let Some(detail) = e.detail()
        && !message.contains(detail)
    {
        message.push_str(&format!(" ({detail})"));
    }
    message
}

fn strsim_best<'a>(name: &str, candidates: impl Iterator<Item = &'a String>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.as_str())
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// CAP 1.2 enumerations: a template that renders anything else is broken.
fn check_cap_values(template: &str, meta: &CapMeta) -> Result<(), TemplateError> {
    let checks: [(&str, &str, &[&str]); 4] = [
        (
            "category",
            &meta.category,
            &[
                "Geo",
                "Met",
                "Safety",
                "Security",
                "Rescue",
                "Fire",
                "Health",
                "Env",
                "Transport",
                "Infra",
                "CBRNE",
                "Other",
            ],
        ),
        (
            "severity",
            &meta.severity,
            &["Extreme", "Severe", "Moderate", "Minor", "Unknown"],
        ),
        (
            "urgency",
            &meta.urgency,
            &["Immediate", "Expected", "Future", "Past", "Unknown"],
        ),
        (
            "certainty",
            &meta.certainty,
            &["Observed", "Likely", "Possible", "Unlikely", "Unknown"],
        ),
    ];
    let response: &[&str] = &[
        "Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear",
        "None",
    ];
    let mut bad = Vec::new();
    for (key, value, allowed) in checks {
        if !allowed.contains(&value) {
            bad.push(format!(
                "{key} = `{value}` (CAP allows {})",
                allowed.join(", ")
            ));
        }
    }
    if let Some(r) = &meta.response_type
        && !response.contains(&r.as_str())
    {
        bad.push(format!(
            "response_type = `{r}` (CAP allows {})",
            response.join(", ")
        ));
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(TemplateError::Variables {
            template: template.to_owned(),
            message: format!("metadata renders outside CAP 1.2: {}", bad.join("; ")),
        })
    }
}

#[cfg(test)]
mod tests;
