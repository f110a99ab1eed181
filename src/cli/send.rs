//! `allerta send`: validate everything (template, variables, audience,
//! channels, contacts) before anything leaves, confirm, write the whole
//! plan in one transaction, then fan out.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};

use chrono::Utc;
use clap::Args;
use serde_json::json;

use super::{Ctx, deliver};
use crate::audience::{Audience, Selector};
use crate::config::Config;
use crate::contacts;
use crate::domain::{AlertId, CapStatus, ChannelId, MsgType};
use crate::error::Error;
use crate::ledger::{Ledger, LedgerError, NewAlert, Planner};
use crate::template::{RenderOptions, Rendered, Template, gsm};

#[derive(Args, Debug)]
pub struct SendArgs {
    /// Template id (file name in templates/ without .toml)
    template: String,
    /// Template variable, NAME=VALUE (repeat)
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = super::parse_var)]
    vars: Vec<(String, String)>,
    /// Send to recipients in this zone (repeat)
    #[arg(long, value_name = "ZONE")]
    zone: Vec<String>,
    /// Send to recipients in this group (repeat)
    #[arg(long, value_name = "GROUP")]
    group: Vec<String>,
    /// Send to everyone
    #[arg(long)]
    all: bool,
    /// Only these channels (repeat; default: every configured channel)
    #[arg(long, value_name = "CHANNEL")]
    channel: Vec<String>,
    /// Drill: CAP status Exercise, drill audience and prefix
    #[arg(long, conflicts_with = "test")]
    drill: bool,
    /// Technical test: CAP status Test
    #[arg(long)]
    test: bool,
    /// Validity, e.g. 12h or 2d (default: the template's expires_after)
    #[arg(long, value_name = "DURATION")]
    expires: Option<String>,
    /// Idempotency key: the same key again resumes that alert
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// Resolve and render everything, print it, send and write nothing
    #[arg(long)]
    dry_run: bool,
    /// Do not ask for confirmation
    #[arg(long)]
    yes: bool,
    /// Leave out invalid contact rows instead of refusing to send
    #[arg(long)]
    skip_invalid: bool,
}

impl SendArgs {
    /// `--dry-run` writes nothing, not even the expiry sweep of the web files.
    pub(super) fn is_dry_run(&self) -> bool {
        self.dry_run
    }
}

/// A send request after every input was checked.
pub struct Prepared {
    pub template: Template,
    pub vars: BTreeMap<String, String>,
    pub status: CapStatus,
    pub msg_type: MsgType,
    pub references: Vec<String>,
    pub audience: Audience,
    pub channels: Vec<ChannelId>,
    pub rendered: Rendered,
    pub expires_at: Option<chrono::DateTime<Utc>>,
    pub skipped_channels: Vec<String>,
}

/// Per-channel recipient counts from the contact scan.
pub struct Scan {
    /// Distinct addresses per channel, as the plan will count them.
    pub per_channel: BTreeMap<ChannelId, u64>,
    seen: std::collections::HashSet<(ChannelId, u64)>,
    pub problems: Vec<contacts::RowError>,
}

pub async fn run(ctx: &Ctx, args: SendArgs) -> Result<(), Error> {
    let config = &ctx.config;
    let status = if args.drill {
        CapStatus::Exercise
    } else if args.test {
        CapStatus::Test
    } else {
        CapStatus::Actual
    };
    let audience = audience_from_args(config, &args.zone, &args.group, args.all, args.drill)?;
    let template = Template::load(&config.general.templates_dir, &args.template)?;
    let requested = args
        .channel
        .iter()
        .map(|c| c.parse::<ChannelId>().map_err(Error::Input))
        .collect::<Result<Vec<_>, _>>()?;
    let prepared = prepare(
        config,
        template,
        &args.vars,
        status,
        MsgType::Alert,
        Vec::new(),
        audience,
        &requested,
        args.expires.as_deref(),
    )?;
    let transports = deliver::build_channels(config, &prepared.channels)?;

    // An idempotent re-run resumes the alert the key created.
    if let Some(key) = &args.key
        && !args.dry_run
    {
        let ledger = Ledger::open(&config.general.database)?;
        if let Some(id) = ledger.alert_by_key(key)? {
            if !ctx.json {
                eprintln!("alert {id} was already created with key `{key}`: resuming it");
            }
            ledger.audit(
                &ctx.actor,
                "send --key (resume)",
                Some(&id),
                &json!({ "key": key }),
            )?;
            let reset = ledger.reset_sending(&id)?;
            if reset > 0 {
                tracing::warn!(reset, "deliveries with unknown outcome will be re-sent");
            }
            return deliver::deliver_and_report(ctx, ledger, &id).await;
        }
    }

    // Counting the audience takes a pass over the contacts; only a dry run
    // and the confirmation need it. Otherwise the plan's own pass validates
    // every row and rolls back on the first problem list, so invalid
    // contacts still stop the send before anything leaves.
    if args.dry_run || (status == CapStatus::Actual && !args.yes) {
        let scan = scan_contacts(config, &prepared, args.skip_invalid)?;
        let subscriber_count = count_subscribers(config, &prepared)?;
        if args.dry_run {
            print_dry_run(ctx, &prepared, &scan, subscriber_count, &transports);
            return Ok(());
        }
        confirm(ctx, &prepared, &scan, subscriber_count)?;
    }

    let mut ledger = Ledger::open(&config.general.database)?;
    let id = AlertId::generate(Utc::now());
    let new = new_alert(ctx, &prepared, &id, args.key.clone());
    ledger.plan(&new, |planner| {
        fill_plan(config, &prepared, planner, args.skip_invalid)
    })?;
    ledger.audit(
        &ctx.actor,
        "send",
        Some(id.as_str()),
        &json!({ "template": prepared.template.id, "variables": prepared.vars, "status": status.as_str(),
                 "audience": prepared.audience.describe(), "channels": prepared.channels, "key": args.key }),
    )?;
    if !ctx.json {
        eprintln!(
            "alert {id} created ({}, {})",
            prepared.template.id,
            status.as_str()
        );
    }
    deliver::deliver_and_report(ctx, ledger, id.as_str()).await
}

pub fn audience_from_args(
    config: &Config,
    zones: &[String],
    groups: &[String],
    all: bool,
    drill: bool,
) -> Result<Audience, Error> {
    let mut selectors = Vec::new();
    if all {
        selectors.push(Selector::All);
    }
    for z in zones {
        selectors.push(Selector::Zone(config.zone(z).map_err(Error::Input)?));
    }
    for g in groups {
        selectors.push(Selector::Group(g.trim().to_owned()));
    }
    if selectors.is_empty() && drill {
        for entry in &config.drill.audience {
            selectors.push(Selector::parse(entry, config).map_err(Error::Input)?);
        }
        if selectors.is_empty() {
            return Err(Error::Input(
                "--drill without an audience, and [drill] audience is empty in the config".into(),
            ));
        }
    }
    if selectors.is_empty() {
        return Err(Error::Input(
            "no audience: give --zone ZONE, --group GROUP or --all (drills default to [drill] audience)".into(),
        ));
    }
    Ok(Audience { selectors })
}

#[allow(clippy::too_many_arguments)]
pub fn prepare(
    config: &Config,
    template: Template,
    given_vars: &[(String, String)],
    status: CapStatus,
    msg_type: MsgType,
    references: Vec<String>,
    audience: Audience,
    requested: &[ChannelId],
    expires: Option<&str>,
) -> Result<Prepared, Error> {
    let vars = template.resolve_vars(given_vars)?;
    let drill_prefix = (status == CapStatus::Exercise).then_some(config.drill.prefix.as_str());
    let rendered = template.render(
        &vars,
        &RenderOptions {
            default_language: &config.general.default_language,
            drill_prefix,
        },
    )?;
    let configured = config.channels.configured();
    for c in requested {
        if !configured.contains(c) {
            return Err(Error::Input(format!(
                "--channel {c}: the channel is not configured ([channels.{c}] is missing in {})",
                config.path.display()
            )));
        }
    }
    let wanted: Vec<ChannelId> = if requested.is_empty() {
        configured
    } else {
        requested.to_vec()
    };
    let mut channels = Vec::new();
    let mut skipped_channels = Vec::new();
    for c in wanted {
        if rendered.channels.contains_key(&c) {
            channels.push(c);
        } else {
            skipped_channels.push(format!(
                "{c}: template `{}` has no text for it",
                template.id
            ));
        }
    }
    if channels.is_empty() {
        return Err(Error::Input(format!(
            "nothing to send: template `{}` has no text for the selected channels",
            template.id
        )));
    }
    let problems = limit_problems(config, &rendered);
    if !problems.is_empty() {
        return Err(Error::Input(format!(
            "template `{}` renders texts that cannot be sent:\n  {}",
            template.id,
            problems.join("\n  ")
        )));
    }
    let validity = match expires {
        Some(e) => Some(
            humantime::parse_duration(e)
                .map_err(|err| Error::Input(format!("--expires `{e}`: {err}")))?,
        ),
        None => template.expires_after,
    };
    let expires_at = validity
        .map(|d| chrono::Duration::from_std(d).map(|d| Utc::now() + d))
        .transpose()
        .map_err(|e| Error::Input(format!("--expires: {e}")))?;
    Ok(Prepared {
        template,
        vars,
        status,
        msg_type,
        references,
        audience,
        channels,
        rendered,
        expires_at,
        skipped_channels,
    })
}

/// Channel limits a rendered text must respect: SMS segments, Telegram's
/// 4096 characters, no empty message.
pub fn limit_problems(config: &Config, rendered: &Rendered) -> Vec<String> {
    let max_segments = config.channels.sms.as_ref().map_or(3, |s| s.max_segments);
    let mut problems = Vec::new();
    for (channel, by_lang) in &rendered.channels {
        for (lang, text) in by_lang {
            if text.text.trim().is_empty() {
                problems.push(format!("[{lang}] {channel}: the text is empty"));
                continue;
            }
            match channel {
                ChannelId::Sms => {
                    let a = gsm::analyze(&text.text);
                    if a.segments > max_segments {
                        problems.push(format!(
                            "[{lang}] sms: {} segments ({} {}, {} units) exceed max_segments = {max_segments}{}",
                            a.segments,
                            a.chars,
                            if a.chars == 1 { "character" } else { "characters" },
                            a.units,
                            if a.ucs2_forcing.is_empty() {
                                String::new()
                            } else {
                                format!("; UCS-2 forced by {}", a.ucs2_forcing.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(" "))
                            }
                        ));
                    }
                }
                ChannelId::Telegram => {
                    let n = text.text.chars().count();
                    if n > 4096 {
                        problems.push(format!(
                            "[{lang}] telegram: {n} characters exceed Telegram's 4096"
                        ));
                    }
                }
                ChannelId::Email | ChannelId::Banner => {}
            }
        }
    }
    problems
}

impl Scan {
    pub fn from_counts(per_channel: BTreeMap<ChannelId, u64>) -> Self {
        Self {
            per_channel,
            seen: std::collections::HashSet::new(),
            problems: Vec::new(),
        }
    }
}

/// First pass over the contacts: validate every row, count recipients.
fn scan_contacts(config: &Config, p: &Prepared, skip_invalid: bool) -> Result<Scan, Error> {
    let mut scan = Scan {
        per_channel: BTreeMap::new(),
        seen: std::collections::HashSet::new(),
        problems: Vec::new(),
    };
    contacts::scan::<()>(config, |row| {
        match row {
            Ok(c) if p.audience.matches(&c.zones, &c.groups) => {
                for ch in &p.channels {
                    // A 64-bit hash per address keeps this exact and small
                    // (8 bytes a recipient) however long the lists are.
                    if let Some(address) = c.address(*ch)
                        && scan.seen.insert((*ch, hash(address)))
                    {
                        *scan.per_channel.entry(*ch).or_default() += 1;
                    }
                }
            }
            Ok(_) => {}
            Err(e) => scan.problems.push(e),
        }
        Ok(())
    })
    .ok();
    if !scan.problems.is_empty() && !skip_invalid {
        return Err(contact_problems(&scan.problems));
    }
    Ok(scan)
}

fn hash(s: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(s)
}

fn count_subscribers(config: &Config, p: &Prepared) -> Result<u64, Error> {
    if !p.channels.contains(&ChannelId::Telegram) {
        return Ok(0);
    }
    let Some(ledger) = Ledger::open_existing_read_only(&config.general.database)? else {
        return Ok(0);
    };
    let mut n = 0;
    for_each_subscriber(ledger.conn(), &p.audience, |_, _| {
        n += 1;
        Ok(())
    })?;
    Ok(n)
}

/// Active Telegram subscribers whose zones match the audience.
fn for_each_subscriber(
    conn: &rusqlite::Connection,
    audience: &Audience,
    mut visit: impl FnMut(&str, &str) -> Result<(), LedgerError>,
) -> Result<(), LedgerError> {
    let exists: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'subscribers'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)?;
    if !exists {
        return Ok(());
    }
    let mut stmt = conn.prepare(
        "SELECT chat_id, zones, language FROM subscribers WHERE active = 1 ORDER BY chat_id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let chat: String = r.get(0)?;
        let zones: String = r.get(1)?;
        let language: String = r.get(2)?;
        let zones: Vec<crate::domain::ZoneId> = zones
            .split(';')
            .filter(|z| !z.is_empty())
            .map(crate::domain::ZoneId::declared)
            .collect();
        if audience.matches(&zones, &[]) {
            visit(&chat, &language)?;
        }
    }
    Ok(())
}

fn contact_problems(problems: &[contacts::RowError]) -> Error {
    let shown: Vec<String> = problems.iter().take(50).map(ToString::to_string).collect();
    let more = problems.len().saturating_sub(shown.len());
    Error::Input(format!(
        "contact files have {} problem(s); nothing was sent (fix them, or pass --skip-invalid to leave those rows out):\n  {}{}",
        problems.len(),
        shown.join("\n  "),
        if more > 0 {
            format!("\n  … and {more} more (allerta contacts check lists all)")
        } else {
            String::new()
        }
    ))
}

/// The plan's pass, inside its transaction: one delivery per
/// (channel, address).
fn fill_plan(
    config: &Config,
    p: &Prepared,
    planner: &mut Planner<'_>,
    skip_invalid: bool,
) -> Result<(), Error> {
    let default_lang = &config.general.default_language;
    let mut failure: Option<Error> = None;
    let mut problems = Vec::new();
    contacts::scan::<()>(config, |row| {
        match row {
            Ok(c) if p.audience.matches(&c.zones, &c.groups) => {
                let lang = c.language.as_deref().unwrap_or(default_lang);
                for ch in &p.channels {
                    if let Some(address) = c.address(*ch)
                        && let Err(e) = planner.add(*ch, address, Some(&c.id), lang)
                    {
                        failure = Some(e.into());
                        return Err(());
                    }
                }
            }
            Ok(_) => {}
            Err(e) if skip_invalid => planner.skipped_rows.push(e.to_string()),
            Err(e) => problems.push(e),
        }
        Ok(())
    })
    .ok();
    if let Some(e) = failure {
        return Err(e);
    }
    if !problems.is_empty() {
        // Returning an error rolls the whole plan back: nothing is sent.
        return Err(contact_problems(&problems));
    }
    if p.channels.contains(&ChannelId::Telegram) {
        // Subscribers live in this database; read them through the plan's
        // transaction so the plan is consistent.
        let mut subscribers = Vec::new();
        for_each_subscriber(planner.conn(), &p.audience, |chat, lang| {
            subscribers.push((chat.to_owned(), lang.to_owned()));
            Ok(())
        })?;
        for (chat, lang) in subscribers {
            planner.add(
                ChannelId::Telegram,
                &chat,
                Some(&format!("subscriber:{chat}")),
                &lang,
            )?;
        }
        let broadcast = config
            .channels
            .telegram
            .as_ref()
            .and_then(|t| t.broadcast_chat.as_deref());
        if let Some(chat) = broadcast
            && p.status == CapStatus::Actual
        {
            planner.add(ChannelId::Telegram, chat, Some("broadcast"), default_lang)?;
        }
    }
    if p.channels.contains(&ChannelId::Banner) {
        let address = if p.status == CapStatus::Actual {
            "public"
        } else {
            "drill"
        };
        planner.add(ChannelId::Banner, address, None, default_lang)?;
    }
    Ok(())
}

pub(super) fn new_alert(ctx: &Ctx, p: &Prepared, id: &AlertId, key: Option<String>) -> NewAlert {
    NewAlert {
        id: id.to_string(),
        idem_key: key,
        template: p.template.id.clone(),
        variables: json!(p.vars),
        status: p.status.as_str(),
        msg_type: p.msg_type.as_str(),
        references: p.references.clone(),
        audience: json!(p.audience),
        channels: p.channels.clone(),
        rendered: serde_json::to_value(&p.rendered).unwrap_or_default(),
        headline: p.rendered.headline().to_owned(),
        created_at: Utc::now().to_rfc3339(),
        expires_at: p.expires_at.map(|t| t.to_rfc3339()),
        operator: ctx.actor.operator.clone(),
        host: ctx.actor.host.clone(),
    }
}

fn audience_lines(p: &Prepared, scan: &Scan, subscribers: u64) -> Vec<String> {
    let mut lines = Vec::new();
    for ch in &p.channels {
        let mut n = scan.per_channel.get(ch).copied().unwrap_or(0);
        let mut extra = String::new();
        match ch {
            ChannelId::Telegram => {
                n += subscribers;
                extra = format!(" (incl. {subscribers} bot subscribers)");
            }
            ChannelId::Banner => {
                n = 1;
                extra = if p.status == CapStatus::Actual {
                    " (public banner + CAP feed)".into()
                } else {
                    " (drill banner)".into()
                };
            }
            ChannelId::Sms => {
                let segments = p
                    .rendered
                    .channels
                    .get(ch)
                    .map(|t| {
                        t.values()
                            .map(|t| gsm::analyze(&t.text).segments)
                            .max()
                            .unwrap_or(0)
                    })
                    .unwrap_or(0) as u64;
                extra = format!(" × {segments} segment(s) = up to {} SMS", n * segments);
            }
            ChannelId::Email => {}
        }
        lines.push(format!("  {:<9} {n} recipient(s){extra}", ch.as_str()));
    }
    lines
}

fn print_dry_run(
    ctx: &Ctx,
    p: &Prepared,
    scan: &Scan,
    subscribers: u64,
    transports: &[std::sync::Arc<dyn crate::channel::Channel>],
) {
    if ctx.json {
        let counts: BTreeMap<String, u64> = p
            .channels
            .iter()
            .map(|c| {
                (
                    c.to_string(),
                    scan.per_channel.get(c).copied().unwrap_or(0)
                        + if *c == ChannelId::Telegram {
                            subscribers
                        } else {
                            0
                        },
                )
            })
            .collect();
        super::print_json(&json!({
            "dry_run": true,
            "template": p.template.id,
            "status": p.status.as_str(),
            "audience": p.audience.describe(),
            "recipients": counts,
            "transports": transports.iter().map(|t| (t.id().to_string(), t.describe())).collect::<BTreeMap<_, _>>(),
            "skipped_channels": p.skipped_channels,
            "skipped_rows": scan.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "rendered": p.rendered,
        }));
        return;
    }
    println!("DRY RUN: nothing is written and nothing is sent.");
    println!(
        "template {} ({}), status {}, audience {}",
        p.template.id,
        p.template.title,
        p.status.as_str(),
        p.audience.describe()
    );
    for line in audience_lines(p, scan, subscribers) {
        println!("{line}");
    }
    for t in transports {
        println!("  {} → {}", t.id(), t.describe());
    }
    for s in &p.skipped_channels {
        println!("  not sent: {s}");
    }
    for (ch, by_lang) in &p.rendered.channels {
        for (lang, text) in by_lang {
            println!("\n--- {ch} [{lang}] ---");
            if let Some(s) = &text.subject {
                println!("Subject: {s}");
            }
            println!("{}", text.text);
        }
    }
}

/// Asks on the terminal before an Actual alert; refuses without one.
pub(super) fn confirm(ctx: &Ctx, p: &Prepared, scan: &Scan, subscribers: u64) -> Result<(), Error> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Error::Refused(
            "refusing to send a real (Actual) alert without a terminal to confirm on: add --yes if you mean it".into(),
        ));
    }
    let mut err = std::io::stderr();
    let _ = writeln!(
        err,
        "\nREAL ALERT: {} — \"{}\"",
        p.template.title,
        p.rendered.headline()
    );
    let _ = writeln!(err, "audience: {}", p.audience.describe());
    for line in audience_lines(p, scan, subscribers) {
        let _ = writeln!(err, "{line}");
    }
    if let Some(sms) = p
        .rendered
        .text(ChannelId::Sms, &ctx.config.general.default_language)
    {
        let a = gsm::analyze(&sms.text);
        let _ = writeln!(
            err,
            "SMS ({}, {} segment(s)): {}",
            a.encoding.as_str(),
            a.segments,
            sms.text
        );
    }
    for (lang, info) in &p.rendered.info {
        let _ = writeln!(err, "[{lang}] {}", info.headline);
    }
    let _ = write!(err, "Send this alert now? Type 'si' or 'yes' to confirm: ");
    let _ = err.flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::Refused(format!("no answer: {e}")))?;
    match answer.trim().to_lowercase().as_str() {
        "si" | "sì" | "yes" | "y" | "s" => Ok(()),
        _ => Err(Error::Refused("not confirmed: nothing was sent".into())),
    }
}
