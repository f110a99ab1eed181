//! `allerta subscribers list|export|forget`: the Telegram bot's subscribers
//! (SPEC §6), with export and erasure for data protection requests.

use clap::{Args, Subcommand, ValueEnum};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;

use super::Ctx;
use crate::domain::ChatId;
use crate::error::Error;
use crate::ledger::Ledger;

#[derive(Subcommand, Debug)]
pub enum SubscribersCommand {
    /// The subscribers, active or not
    List,
    /// Everything stored about the subscribers (or one of them, with its deliveries)
    Export(ExportArgs),
    /// Erase a subscriber: delete it and anonymise its chat id in the delivery record
    Forget(ForgetArgs),
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Only this chat, with every Telegram delivery sent to it (JSON)
    #[arg(long, value_name = "CHAT_ID")]
    chat: Option<String>,
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// The subscriber's Telegram chat id
    chat_id: String,
}

pub fn run(ctx: &Ctx, command: SubscribersCommand) -> Result<(), Error> {
    let mut ledger = Ledger::open(&ctx.config.general.database)?;
    match command {
        SubscribersCommand::List => list(ctx, &ledger),
        SubscribersCommand::Export(args) => export(&ledger, args),
        SubscribersCommand::Forget(args) => forget(ctx, &mut ledger, args),
    }
}

fn list(ctx: &Ctx, ledger: &Ledger) -> Result<(), Error> {
    let all = ledger.subscribers()?;
    if ctx.json {
        super::print_json(&json!({ "subscribers": all }));
        return Ok(());
    }
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header(["chat id", "zones", "language", "active", "since"]);
    for s in &all {
        table.add_row([
            s.chat_id.clone(),
            s.zones.join(";"),
            s.language.clone(),
            if s.active {
                "yes"
            } else {
                "no (/stop or blocked)"
            }
            .to_owned(),
            s.created_at.clone(),
        ]);
    }
    println!("{table}");
    let active = all.iter().filter(|s| s.active).count();
    println!("{} subscriber(s), {active} active", all.len());
    Ok(())
}

/// Always JSON or CSV on stdout, whatever `--json` says: it is an export.
fn export(ledger: &Ledger, args: ExportArgs) -> Result<(), Error> {
    if let Some(chat) = &args.chat {
        let chat = ChatId::parse(chat).map_err(Error::Input)?;
        if args.format == Format::Csv {
            return Err(Error::Input(
                "--chat exports one person's data with its deliveries: use --format json".into(),
            ));
        }
        let subscriber = ledger.subscriber(chat.as_str())?;
        let deliveries = ledger.deliveries_to_chat(chat.as_str())?;
        if subscriber.is_none() && deliveries.is_empty() {
            return Err(Error::Input(format!("nothing is stored about chat {chat}")));
        }
        super::print_json(&json!({
            "chat_id": chat.as_str(),
            "subscriber": subscriber,
            "deliveries": deliveries,
        }));
        return Ok(());
    }
    let all = ledger.subscribers()?;
    match args.format {
        Format::Json => super::print_json(&json!({ "subscribers": all })),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            w.write_record([
                "chat_id",
                "zones",
                "language",
                "active",
                "created_at",
                "updated_at",
            ])
            .map_err(|e| Error::Runtime(e.to_string()))?;
            for s in &all {
                w.write_record([
                    s.chat_id.as_str(),
                    &s.zones.join(";"),
                    &s.language,
                    if s.active { "1" } else { "0" },
                    &s.created_at,
                    &s.updated_at,
                ])
                .map_err(|e| Error::Runtime(e.to_string()))?;
            }
            w.flush().map_err(|e| Error::Runtime(e.to_string()))?;
        }
    }
    Ok(())
}

fn forget(ctx: &Ctx, ledger: &mut Ledger, args: ForgetArgs) -> Result<(), Error> {
    let chat = ChatId::parse(&args.chat_id).map_err(Error::Input)?;
    let erased = ledger.erase_subscriber(chat.as_str())?;
    let outbox = ctx.config.general.outbox_dir.join("telegram.jsonl");
    crate::bot::erasure::scrub_outbox(&outbox, chat.as_str()).map_err(|e| {
        Error::Runtime(format!(
            "the ledger is erased, but {} still holds the chat id: {e}",
            outbox.display()
        ))
    })?;
    if !erased.subscriber && erased.deliveries_anonymised == 0 {
        return Err(Error::Input(format!("nothing is stored about chat {chat}")));
    }
    // The audit row must not keep the chat id the erasure removed.
    ledger.audit(&ctx.actor, "subscribers forget", None, &json!(erased))?;
    if ctx.json {
        super::print_json(&json!(erased));
    } else {
        println!(
            "chat {chat}: {}; {} Telegram deliveries anonymised ({} not yet sent were skipped)",
            if erased.subscriber {
                "subscriber deleted"
            } else {
                "was not a subscriber"
            },
            erased.deliveries_anonymised,
            erased.deliveries_skipped
        );
        println!(
            "note: if the chat id is also in a contact file (telegram_chat_id), remove it there too"
        );
    }
    Ok(())
}
