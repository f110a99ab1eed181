//! The command line (SPEC §6): clap definitions, then one file per
//! subcommand that turns raw arguments into a validated request and calls
//! into the library. Only this module prints.

mod approve;
mod audit;
mod bot;
mod cancel;
mod check;
mod console;
mod contacts;
mod deliver;
mod drafts;
mod escalation;
mod generate;
mod preview;
mod progress;
mod resume;
mod safe_text;
mod send;
mod serve;
mod sms_status;
mod status;
mod subscribers;
mod templates;
mod update;
mod watch;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::{Actor, Error};

#[derive(Parser, Debug)]
#[command(
    name = "allerta",
    version,
    about = "Emergency communication broadcaster for civil protection"
)]
pub struct Cli {
    /// Configuration file (default: $ALLERTA_CONFIG, ./allerta.toml, /etc/allerta/allerta.toml)
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print one JSON document on stdout instead of human output
    #[arg(long, global = true)]
    json: bool,
    /// Name recorded in the audit trail (default: the OS user)
    #[arg(long, global = true, value_name = "NAME")]
    operator: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create an alert and fan it out to every channel
    Send(send::SendArgs),
    /// Render every channel's text, with SMS length, encoding and segments
    Preview(preview::PreviewArgs),
    /// Per-channel counts by state for one alert (default: the latest)
    Status(status::StatusArgs),
    /// The alerts, newest first
    List(status::ListArgs),
    /// Finish every unsettled delivery of one or all unfinished alerts
    Resume(resume::ResumeArgs),
    /// Re-queue failed deliveries for another round
    Retry(resume::RetryArgs),
    /// Every delivery of an alert, for the after-action report
    Export(status::ExportArgs),
    /// Send a CAP Update of an alert to the same audience; replaces its banner
    Update(update::UpdateArgs),
    /// Stop an alert's undelivered messages, send the revocation, publish a CAP Cancel
    Cancel(cancel::CancelArgs),
    /// Approve an alert waiting for a second person, and send it (two-person rule)
    Approve(approve::ApproveArgs),
    /// Reject an alert waiting for approval: nothing is sent
    Reject(approve::RejectArgs),
    /// The hash-chained audit trail; `audit verify` checks the chain
    Audit(audit::AuditArgs),
    /// Receive SMS delivery reports; /healthz and /metrics (long-running)
    Serve(serve::ServeArgs),
    /// List or check templates
    #[command(subcommand)]
    Templates(TemplatesCommand),
    /// Check or list contacts
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// Readiness: config, templates, contacts, database and every enabled
    /// channel reachable with its credentials (nothing is sent)
    ///
    /// One line per item (with --json, one document: {"ready", "items"});
    /// each failure says what to fix. Exit 0 only when everything is ready;
    /// 2 when the configuration, a template or a contact file needs fixing;
    /// 1 when the database, the outbox directory or a channel's service or
    /// credentials do.
    Check,
    /// Generate man pages or shell completions (for packagers)
    #[command(subcommand, hide = true)]
    Generate(generate::GenerateCommand),
    /// Telegram bot subscribers: list, export, forget (erase)
    #[command(subcommand)]
    Subscribers(subscribers::SubscribersCommand),
    /// Run the Telegram subscription bot (long polling; stops on SIGTERM)
    Bot,
    /// Poll the official bulletins (DPC, CAP feeds) and make drafts for the
    /// officers; never sends to citizens (stops on SIGTERM)
    Watch(watch::WatchArgs),
    /// Drafts made by `watch`: list, show, discard
    #[command(subcommand)]
    Drafts(drafts::DraftsCommand),
    /// The officer console of `serve`: `console passwd NAME` makes a user's hash
    #[command(subcommand)]
    Console(console::ConsoleCommand),
}

impl Command {
    /// Whether the command may refresh the public web files (expired alerts
    /// leave the banner): never for read-only commands or a dry run.
    fn may_write_web(&self) -> bool {
        !self.is_read_only()
            && !matches!(self, Self::Send(a) if a.is_dry_run())
            && !matches!(self, Self::Subscribers(_))
    }

    /// Commands that only print: safe to end at once when stdout closes,
    /// and that never write the public web files.
    fn is_read_only(&self) -> bool {
        matches!(
            self,
            Self::Preview(_)
                | Self::Status(_)
                | Self::List(_)
                | Self::Export(_)
                | Self::Templates(_)
                | Self::Contacts(_)
                | Self::Audit(_)
                | Self::Subscribers(subscribers::SubscribersCommand::List)
                | Self::Drafts(drafts::DraftsCommand::List | drafts::DraftsCommand::Show { .. })
        )
    }
}

/// `allerta status | head` should end quietly, not panic on EPIPE. Rust
/// ignores SIGPIPE by default; read-only commands restore the default, so a
/// closed pipe ends them like any Unix tool. Commands that send keep it
/// ignored: nothing may kill a send half way.
fn die_quietly_on_closed_pipe() {
    // SAFETY: called once at start-up, before any thread is spawned;
    // SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[derive(Subcommand, Debug)]
enum TemplatesCommand {
    /// List templates with their variables
    List,
    /// Render every template in every language with its example values
    Check,
}

#[derive(Subcommand, Debug)]
enum ContactsCommand {
    /// Validate every contact file; exit 2 on any problem
    Check,
    /// List recipients
    List(ContactsListArgs),
    /// Per zone: how many recipients each channel reaches, and who none reaches
    ///
    /// Recipients are the contacts and the active Telegram subscribers. After
    /// the table comes, per zone, the list of people no configured channel
    /// reaches (name, id, file:line): the people to reach another way. With
    /// --json: {"zones": {"<zone>": {"total", "channels": {...}, "none"}}}.
    Coverage(ContactsListArgs),
}

#[derive(Args, Debug)]
struct ContactsListArgs {
    /// Only recipients in this zone
    #[arg(long)]
    zone: Option<String>,
}

/// What every command gets: the loaded config and output preferences.
pub struct Ctx {
    pub config: Config,
    pub json: bool,
    pub actor: Actor,
}

impl Ctx {
    /// Human output on stdout (suppressed with --json).
    pub fn say(&self, text: impl AsRef<str>) {
        if !self.json {
            println!("{}", text.as_ref());
        }
    }
}

pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.is_read_only() {
        die_quietly_on_closed_pipe();
    }
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors may quote a provider's reply: no escape sequences.
            eprintln!("error: {}", safe_text::lines_for_terminal(&e.to_string()));
            e.exit_code()
        }
    }
}

/// Logs go to stderr: human lines on a terminal, one JSON object per line
/// for the daemons (`ALLERTA_LOG_FORMAT=json`, or by default when systemd
/// started us — it sets INVOCATION_ID — and stderr is not a terminal), so
/// the journal keeps structured fields. `ALLERTA_LOG_FORMAT=human` forces
/// human lines. Secrets are wrapped types that never print their value.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ALLERTA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let on_terminal = std::io::stderr().is_terminal();
    let json = match std::env::var("ALLERTA_LOG_FORMAT") {
        Ok(format) => format.eq_ignore_ascii_case("json"),
        Err(_) => std::env::var_os("INVOCATION_ID").is_some() && !on_terminal,
    };
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.with_ansi(on_terminal).try_init()
    };
}

async fn run(cli: Cli) -> Result<(), Error> {
    // These two work without (or report on) the configuration.
    match &cli.command {
        Command::Check => return check::run(cli.config.as_deref(), cli.json).await,
        Command::Generate(g) => return generate::run(g),
        _ => {}
    }
    // Hashing a password needs no configuration.
    if let Command::Console(c) = &cli.command {
        return console::run(c, cli.json);
    }
    let config = Config::load(cli.config.as_deref())?;
    let ctx = Ctx {
        config,
        json: cli.json,
        actor: Actor::current(cli.operator.as_deref()),
    };
    // Expired alerts leave the public web files whenever a command that
    // writes runs. Read-only commands never touch them (SPEC §13): root
    // running `allerta list` from cron would leave root-owned files there
    // and the services could never publish again.
    if cli.command.may_write_web() {
        crate::web::sweep(&ctx.config);
    }
    match cli.command {
        Command::Send(args) => send::run(&ctx, args).await,
        Command::Preview(args) => preview::run(&ctx, args),
        Command::Status(args) => status::status(&ctx, args),
        Command::List(args) => status::list(&ctx, args),
        Command::Export(args) => status::export(&ctx, args),
        Command::Resume(args) => resume::resume(&ctx, args).await,
        Command::Retry(args) => resume::retry(&ctx, args).await,
        Command::Update(args) => update::run(&ctx, args).await,
        Command::Cancel(args) => cancel::run(&ctx, args).await,
        Command::Approve(args) => approve::approve(&ctx, args).await,
        Command::Reject(args) => approve::reject(&ctx, args),
        Command::Audit(args) => audit::run(&ctx, args),
        Command::Serve(args) => serve::run(&ctx, args).await,
        Command::Templates(TemplatesCommand::List) => templates::list(&ctx),
        Command::Templates(TemplatesCommand::Check) => templates::check(&ctx),
        Command::Contacts(ContactsCommand::Check) => contacts::check(&ctx),
        Command::Contacts(ContactsCommand::List(a)) => contacts::list(&ctx, a.zone.as_deref()),
        Command::Contacts(ContactsCommand::Coverage(a)) => {
            contacts::coverage(&ctx, a.zone.as_deref())
        }
        Command::Check | Command::Generate(_) | Command::Console(_) => Ok(()), // handled above
        Command::Subscribers(c) => subscribers::run(&ctx, c),
        Command::Bot => bot::run(&ctx).await,
        Command::Watch(args) => watch::run(&ctx, args).await,
        Command::Drafts(c) => drafts::run(&ctx, c),
    }
}

/// `K=V` for `--var`.
fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}
