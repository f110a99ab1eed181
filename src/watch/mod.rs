//! `allerta watch` (SPEC §16): polls the official bulletins, and turns what
//! they say about the comune into **drafts** for the officers — never into
//! a message to citizens.
//!
//! - [`config`]: `[watch]`, `[[watch.source]]`, `[[watch.rule]]`.
//! - [`fetch`]: reading a source (`https://`, `http://`, `file://`), retried.
//! - [`dpc`], [`cap`]: the two formats (DPC GeoJSON bulletin, CAP Atom feed).
//! - [`rules`]: names compared loosely, the decision new/raised/ended.
//! - [`notify`]: the officers' Telegram chats and email addresses.
//!
//! One poll reads every source at once; a source that fails is reported by
//! name and never stops the others.

pub mod cap;
pub mod config;
pub mod dpc;
pub mod fetch;
pub mod level;
pub mod notify;
pub mod rules;

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use serde_json::json;

use self::config::{Rule, Source, SourceKind, Watch};
use self::level::Level;
use self::rules::Decision;
use crate::config::Config;
use crate::domain::MsgType;
use crate::error::Error;
use crate::ledger::{Ledger, NewDraft};
use crate::template::Rendered;

/// What one source said in one poll.
#[derive(Debug)]
pub struct SourceReport {
    pub name: String,
    /// `Err` when the source could not be read or understood.
    pub result: Result<Vec<DayReport>, String>,
}

/// What one source says about one day, and what came of it.
#[derive(Debug)]
pub struct DayReport {
    pub day: String,
    /// Where the subject was found (DPC zone names; CAP areas).
    pub found_in: Vec<String>,
    pub levels: BTreeMap<String, Level>,
    pub drafts: Vec<i64>,
}

/// What one poll did.
#[derive(Debug, Default)]
pub struct PollReport {
    pub sources: Vec<SourceReport>,
    /// Notifications that could not be delivered to an officer.
    pub notify_failures: Vec<String>,
}

impl PollReport {
    pub fn failed_sources(&self) -> Vec<&SourceReport> {
        self.sources.iter().filter(|s| s.result.is_err()).collect()
    }
}

/// What one poll read: each source's bytes or why it could not be read.
pub struct Fetched(Vec<Option<Result<Vec<u8>, String>>>);

/// Everything `watch` needs across polls.
pub struct Watcher<'a> {
    config: &'a Config,
    watch: &'a Watch,
    http: reqwest::Client,
    officers: notify::Officers,
    actor: &'a crate::Actor,
}

impl<'a> Watcher<'a> {
    /// Checks the rules (each template renders with its variables for the
    /// audience, as `send` would) and builds the clients: a broken rule is
    /// found when `watch` starts, not at 3 a.m. when a bulletin needs it.
    pub fn new(config: &'a Config, actor: &'a crate::Actor) -> Result<Self, Error> {
        let watch = config.watch.as_ref().ok_or_else(|| {
            Error::Input(format!(
                "no [watch] section in {}: add [[watch.source]] and [[watch.rule]] (see the README, \"Drafts from official bulletins\")",
                config.path.display()
            ))
        })?;
        if watch.sources.is_empty() {
            return Err(Error::Input("[watch] has no [[watch.source]]".into()));
        }
        if watch.rules.is_empty() {
            return Err(Error::Input(
                "[watch] has no [[watch.rule]]: no level would ever make a draft".into(),
            ));
        }
        let today = config_today(config);
        for (i, rule) in watch.rules.iter().enumerate() {
            let vars = fill_vars(rule, rule.level, &rule.risk, &today)
                .map_err(|m| Error::Input(format!("watch.rule[{i}]: {m}")))?;
            crate::alert::draft::prepare(
                config,
                &rule.template,
                &vars,
                &rule.audience,
                MsgType::Alert,
            )
            .map_err(|e| {
                Error::Input(format!(
                    "watch.rule[{i}] (level {}, risk {}): {e}",
                    rule.level, rule.risk
                ))
            })?;
        }
        let http = fetch::client().map_err(Error::Runtime)?;
        let officers = notify::Officers::new(config, watch)?;
        Ok(Self {
            config,
            watch,
            http,
            officers,
            actor,
        })
    }

    pub fn interval(&self) -> std::time::Duration {
        self.watch.interval
    }

    /// Reads every source (at the same time) and records what they say.
    pub async fn poll(&self) -> PollReport {
        let fetched = self.fetch_all().await;
        self.record_all(fetched).await
    }

    /// Reads every source at the same time. Safe to abandon (SIGTERM):
    /// nothing is recorded yet.
    pub async fn fetch_all(&self) -> Fetched {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, source) in self.watch.sources.iter().enumerate() {
            let http = self.http.clone();
            let source = source.clone();
            tasks.spawn(async move { (i, fetch::fetch(&http, &source).await) });
        }
        let mut fetched: Vec<Option<Result<Vec<u8>, String>>> =
            self.watch.sources.iter().map(|_| None).collect();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((i, result)) => fetched[i] = Some(result),
                Err(e) => tracing::error!(error = %e, "a source task failed"),
            }
        }
        Fetched(fetched)
    }

    /// Understands what was read, stores drafts and levels, notifies the
    /// officers. Short (local work and notifications): a daemon lets it
    /// finish before it stops, so no draft is left without its note.
    pub async fn record_all(&self, fetched: Fetched) -> PollReport {
        let mut report = PollReport::default();
        for (source, bytes) in self.watch.sources.iter().zip(fetched.0) {
            let bytes = bytes.unwrap_or_else(|| Err("the reading task failed".into()));
            // Each source is parsed and dropped in turn: one bulletin's
            // bytes at a time, not all of them.
            let result = match bytes {
                Ok(bytes) => {
                    self.record(source, &bytes, &mut report.notify_failures)
                        .await
                }
                Err(e) => Err(e),
            };
            report.sources.push(SourceReport {
                name: source.name.clone(),
                result,
            });
        }
        report
    }

    /// Understands one source's bytes and records the days it covers.
    async fn record(
        &self,
        source: &Source,
        bytes: &[u8],
        notify_failures: &mut Vec<String>,
    ) -> Result<Vec<DayReport>, String> {
        let mut ledger = Ledger::open(&self.config.general.database).map_err(|e| e.to_string())?;
        let known = ledger
            .watch_levels(&source.name, &source.subject)
            .map_err(|e| e.to_string())?;
        let readings = match source.kind {
            SourceKind::Dpc => {
                let reading = dpc::read(bytes, &source.subject)?;
                let day = dpc::day_of(&source.url, today_date(self.config));
                vec![(iso(day), reading.zones, reading.levels)]
            }
            SourceKind::Cap => self.cap_readings(bytes, source, &known)?,
        };
        let mut days = Vec::new();
        for (day, found_in, levels) in readings {
            let before: BTreeMap<String, Level> = known
                .get(&day)
                .map(|m| {
                    m.iter()
                        .filter_map(|(r, l)| Level::parse(l).map(|l| (r.clone(), l)))
                        .collect()
                })
                .unwrap_or_default();
            let drafts = match rules::decide(&self.watch.rules, &before, &levels) {
                Decision::Nothing => Vec::new(),
                Decision::Drafts(list) => list
                    .into_iter()
                    .map(|(risk, level, rule)| {
                        self.draft(source, &day, &levels, &risk, level, rule)
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Decision::Ended => self.cessata(&ledger, source, &day)?,
            };
            let stored: BTreeMap<String, String> = levels
                .iter()
                .map(|(r, l)| (r.clone(), l.as_str().to_owned()))
                .collect();
            let new: Vec<NewDraft> = drafts.iter().map(|(d, _)| d.clone()).collect();
            let Some(ids) = ledger
                .record_bulletin(
                    &source.name,
                    &source.subject,
                    &day,
                    known.get(&day),
                    &stored,
                    &new,
                )
                .map_err(|e| e.to_string())?
            else {
                tracing::info!(source = %source.name, day, "recorded by another watch meanwhile");
                continue;
            };
            for (id, (draft, rendered)) in ids.iter().zip(&drafts) {
                if let Err(e) = ledger.audit(
                    self.actor,
                    "watch (draft)",
                    draft.cancels.as_deref(),
                    &json!({ "draft": id, "source": source.name, "subject": source.subject,
                             "day": day, "levels": draft.levels, "template": draft.template }),
                ) {
                    tracing::warn!(draft = id, error = %e, "audit row not written");
                }
                notify_failures.extend(self.notify(*id, source, &found_in, draft, rendered).await);
            }
            days.push(DayReport {
                day,
                found_in,
                levels,
                drafts: ids,
            });
        }
        Ok(days)
    }

    /// CAP entries in force for the area, by day and rule risk; the days
    /// this source said something about before and says nothing now are
    /// read as "no alert" (their entries ended or were cancelled).
    fn cap_readings(
        &self,
        bytes: &[u8],
        source: &Source,
        known: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Vec<Reading>, String> {
        let tz = self.config.general.timezone;
        let today = today_date(self.config);
        let now = Utc::now();
        let mut by_day: BTreeMap<String, (Vec<String>, BTreeMap<String, Level>)> = BTreeMap::new();
        for entry in cap::entries(bytes)? {
            if !entry.in_force(now) || !entry.covers(&source.subject) {
                continue;
            }
            let Some(level) = entry.level() else {
                continue;
            };
            let risks = rules::cap_risks(&self.watch.rules, &entry.risk_text());
            if risks.is_empty() {
                continue;
            }
            let (areas, levels) = by_day.entry(iso(entry.day(tz, today))).or_default();
            for area in &entry.areas {
                if !areas.contains(area) {
                    areas.push(area.clone());
                }
            }
            for risk in risks {
                let l = levels.entry(risk).or_insert(level);
                *l = (*l).max(level);
            }
        }
        let today = iso(today);
        for day in known.keys().filter(|d| **d >= today) {
            by_day.entry(day.clone()).or_default();
        }
        Ok(by_day
            .into_iter()
            .map(|(day, (areas, levels))| (day, areas, levels))
            .collect())
    }

    fn draft(
        &self,
        source: &Source,
        day: &str,
        levels: &BTreeMap<String, Level>,
        risk: &str,
        level: Level,
        rule: &Rule,
    ) -> Result<(NewDraft, Rendered), String> {
        let vars = fill_vars(rule, level, risk, day)?;
        let prepared = crate::alert::draft::prepare(
            self.config,
            &rule.template,
            &vars,
            &rule.audience,
            MsgType::Alert,
        )
        .map_err(|e| format!("rule for {risk} {level}: {e}"))?;
        let draft = NewDraft {
            source: source.name.clone(),
            subject: source.subject.clone(),
            day: day.to_owned(),
            levels: levels
                .iter()
                .map(|(r, l)| (r.clone(), l.as_str().to_owned()))
                .collect(),
            template: rule.template.clone(),
            variables: vars.into_iter().collect(),
            audience: rule.audience.clone(),
            cancels: None,
            text: preview_text(self.config, &prepared),
        };
        Ok((draft, prepared.rendered))
    }

    /// Every alert sent from a draft of this bulletin day, still in force,
    /// gets a cessata-allerta draft (once).
    fn cessata(
        &self,
        ledger: &Ledger,
        source: &Source,
        day: &str,
    ) -> Result<Vec<(NewDraft, Rendered)>, String> {
        let mut drafts = Vec::new();
        for sent in ledger
            .sent_drafts_for(&source.name, &source.subject, day)
            .map_err(|e| e.to_string())?
        {
            let Some(alert_id) = sent.alert_id.clone() else {
                continue;
            };
            if ledger
                .cessata_exists(&alert_id)
                .map_err(|e| e.to_string())?
            {
                continue;
            }
            let Ok(alert) = ledger.alert(Some(&alert_id)) else {
                continue;
            };
            if matches!(alert.state.as_str(), "cancelled" | "rejected") {
                continue;
            }
            let vars = vec![("evento".to_owned(), alert.headline.clone())];
            let prepared = crate::alert::draft::prepare(
                self.config,
                CESSATA,
                &vars,
                &sent.audience,
                MsgType::Cancel,
            )
            .map_err(|e| format!("cessata-allerta of alert {alert_id}: {e}"))?;
            let draft = NewDraft {
                source: source.name.clone(),
                subject: source.subject.clone(),
                day: day.to_owned(),
                levels: BTreeMap::new(),
                template: CESSATA.to_owned(),
                variables: BTreeMap::new(),
                audience: sent.audience.clone(),
                cancels: Some(alert_id),
                text: preview_text(self.config, &prepared),
            };
            drafts.push((draft, prepared.rendered));
        }
        Ok(drafts)
    }

    async fn notify(
        &self,
        id: i64,
        source: &Source,
        found_in: &[String],
        draft: &NewDraft,
        rendered: &Rendered,
    ) -> Vec<String> {
        let (subject, body) = note_text(id, source, found_in, draft);
        self.officers
            .notify(&notify::Note {
                draft_id: id,
                subject,
                body,
                rendered,
            })
            .await
    }
}

/// One day of a source: the day, where the subject was found, risk → level.
type Reading = (String, Vec<String>, BTreeMap<String, Level>);

const CESSATA: &str = "cessata-allerta";

fn fill_vars(
    rule: &Rule,
    level: Level,
    risk: &str,
    day: &str,
) -> Result<Vec<(String, String)>, String> {
    rule.vars
        .iter()
        .map(|(k, v)| rules::fill(v, level, risk, day).map(|v| (k.clone(), v)))
        .collect()
}

/// The text officers read: the headline and the SMS (short, plain), else
/// the email text.
fn preview_text(config: &Config, p: &crate::alert::Prepared) -> String {
    use crate::domain::ChannelId;
    let lang = &config.general.default_language;
    let body = [ChannelId::Sms, ChannelId::Email, ChannelId::Telegram]
        .into_iter()
        .find_map(|c| p.rendered.text(c, lang))
        .map(|t| t.text.trim().to_owned())
        .unwrap_or_default();
    format!("{}\n{body}", p.rendered.headline())
}

/// Subject and body of the officers' notification.
fn note_text(id: i64, source: &Source, found_in: &[String], d: &NewDraft) -> (String, String) {
    let place = match (source.kind, found_in.is_empty()) {
        (_, true) => d.subject.clone(),
        (SourceKind::Dpc, false) => format!("{} (zone {})", d.subject, found_in.join(", ")),
        (SourceKind::Cap, false) => format!("{} (areaDesc {})", d.subject, found_in.join(" | ")),
    };
    let levels = if d.levels.is_empty() {
        "no alert any more".to_owned()
    } else {
        d.levels
            .iter()
            .map(|(r, l)| format!("{r} {l}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let what = match &d.cancels {
        Some(alert) => format!("cessata-allerta draft {id}: ends alert {alert}"),
        None => format!("draft {id}"),
    };
    let subject = format!(
        "[allerta] {what} — {} {}: {levels}",
        d.subject,
        rules::italian_day(&d.day)
    );
    let body = format!(
        "allerta watch: new {what}.\n\
         Source {} ({}) for {place} on {} ({}): {levels}.\n\
         Template {}, audience {}.\n\
         \n\
         {}\n\
         \n\
         Nothing has been sent. To send it (you will be asked to confirm):\n\
         \x20 allerta send --draft {id}\n\
         To see it: allerta drafts show {id}    To discard it: allerta drafts discard {id}\n",
        source.name,
        source.kind.as_str(),
        rules::italian_day(&d.day),
        d.day,
        d.template,
        d.audience.join(", "),
        d.text,
    );
    (subject, body)
}

fn today_date(config: &Config) -> NaiveDate {
    Utc::now()
        .with_timezone(&config.general.timezone)
        .date_naive()
}

fn config_today(config: &Config) -> String {
    iso(today_date(config))
}

fn iso(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}
