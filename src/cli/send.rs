//! `allerta send`: parse the arguments into a `SendRequest` and hand it to
//! the alert layer, which owns every rule (SPEC §11); print the outcome.

use std::collections::BTreeMap;

use clap::Args;
use serde_json::json;

use super::{Ctx, deliver};
use crate::alert::send::{DryRun, Sent};
use crate::alert::{self, SendRequest};
use crate::error::Error;

#[derive(Args, Debug)]
pub struct SendArgs {
    /// Template id (file name in templates/ without .toml)
    #[arg(required_unless_present = "draft")]
    template: Option<String>,
    /// Send a draft made by `allerta watch` (its template, variables and
    /// audience), with the usual confirmation and rules
    #[arg(long, value_name = "ID", conflicts_with_all = ["template", "vars", "zone", "group", "all"])]
    draft: Option<String>,
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
    /// Technical test: CAP status Test, with the [test] prefix
    #[arg(long)]
    test: bool,
    /// Validity, e.g. 12h or 2d (default: the template's expires_after)
    #[arg(long, value_name = "DURATION")]
    expires: Option<String>,
    /// Idempotency key: the same command again resumes that alert
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

    fn request(&self) -> SendRequest {
        SendRequest {
            template: self.template.clone().unwrap_or_default(),
            vars: self.vars.clone(),
            zones: self.zone.clone(),
            groups: self.group.clone(),
            all: self.all,
            channels: self.channel.clone(),
            drill: self.drill,
            test: self.test,
            expires: self.expires.clone(),
            key: self.key.clone(),
            dry_run: self.dry_run,
            skip_invalid: self.skip_invalid,
        }
    }
}

pub async fn run(ctx: &Ctx, args: SendArgs) -> Result<(), Error> {
    let notes = deliver::Notes::new(ctx);
    let session = deliver::session(ctx, args.yes, &notes);
    let sent = match &args.draft {
        Some(draft) => alert::draft::send(&session, draft, &args.request()).await?,
        None => alert::send::send(&session, &args.request()).await?,
    };
    match sent {
        Sent::DryRun(d) => {
            print_dry_run(ctx, &d);
            Ok(())
        }
        Sent::AwaitingApproval { id } => {
            if ctx.json {
                super::print_json(
                    &json!({ "alert": { "id": id, "state": "awaiting_approval" },
                    "approve": format!("allerta approve {id}") }),
                );
            } else {
                println!(
                    "alert {id} is planned and WAITING FOR APPROVAL: nothing was sent.\n  a second approver runs:  allerta approve {id}\n  to withdraw it:          allerta reject {id}"
                );
            }
            Ok(())
        }
        Sent::Done { id, ledger } => deliver::report(ctx, &ledger, &id),
    }
}

fn print_dry_run(ctx: &Ctx, d: &DryRun) {
    let p = &d.prepared;
    if ctx.json {
        let counts: BTreeMap<String, u64> = p
            .channels
            .iter()
            .map(|c| {
                (
                    c.to_string(),
                    d.reach.per_channel.get(c).copied().unwrap_or(0),
                )
            })
            .collect();
        super::print_json(&json!({
            "dry_run": true,
            "template": p.template.id,
            "status": p.status.as_str(),
            "audience": p.audience.describe(),
            "recipients": counts,
            "outside_drill_audience": d.reach.outside_drill,
            "transports": d.transports.iter().map(|t| (t.id().to_string(), t.describe())).collect::<BTreeMap<_, _>>(),
            "skipped_channels": p.skipped_channels,
            "skipped_rows": d.reach.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "rendered": p.rendered,
        }));
        return;
    }
    println!("DRY RUN: nothing is written and nothing is sent.");
    println!(
        "template {} ({}), status {}, audience {}",
        p.template.id,
        p.template.title,
        p.status.as_str().to_uppercase(),
        p.audience.describe()
    );
    for line in d.reach.lines(p) {
        println!("{line}");
    }
    println!(
        "  {} of these deliveries are outside the drill audience{}",
        d.reach.outside_drill,
        if d.reach.outside_drill > 0 {
            " (sending needs confirmation)"
        } else {
            ""
        }
    );
    for t in &d.transports {
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
