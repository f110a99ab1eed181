//! `allerta audit [--alert ID]` and `allerta audit verify`: the hash-chained
//! audit trail (SPEC §11). Read-only.

use clap::{Args, Subcommand};
use serde_json::json;

use super::Ctx;
use crate::error::Error;
use crate::ledger::Ledger;

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    /// Only the rows of this alert's thread
    #[arg(long, value_name = "ID")]
    alert: Option<String>,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Recompute the hash chain: exit 0 when whole, 1 naming the first bad row
    Verify,
}

pub fn run(ctx: &Ctx, args: AuditArgs) -> Result<(), Error> {
    let Some(ledger) = Ledger::open_existing_read_only(&ctx.config.general.database)? else {
        if ctx.json {
            super::print_json(&json!({ "audit": [], "verified": true }));
        } else {
            println!("no database yet: the audit trail is empty");
        }
        return Ok(());
    };
    match args.command {
        Some(AuditCommand::Verify) => match ledger.verify_audit()? {
            None => {
                let n = ledger.audit_rows(None)?.len();
                if ctx.json {
                    super::print_json(&json!({ "verified": true, "rows": n }));
                } else {
                    println!("audit trail verified: {n} rows, the hash chain is whole");
                }
                Ok(())
            }
            Some(b) => {
                if ctx.json {
                    super::print_json(
                        &json!({ "verified": false, "first_bad_row": b.row, "reason": b.reason }),
                    );
                }
                Err(Error::Runtime(format!(
                    "audit trail BROKEN at row {}: {} (rows from there on cannot be trusted)",
                    b.row, b.reason
                )))
            }
        },
        None => {
            let rows = ledger.audit_rows(args.alert.as_deref())?;
            if ctx.json {
                super::print_json(&json!({ "audit": rows }));
                return Ok(());
            }
            for r in rows {
                println!(
                    "{:>5} {} {}@{} {:<22} {} {}",
                    r.id,
                    super::deliver::local_time(&r.at, ctx.config.general.timezone),
                    r.operator,
                    r.host,
                    r.command,
                    r.alert_id.as_deref().unwrap_or("-"),
                    r.detail
                );
            }
            Ok(())
        }
    }
}
