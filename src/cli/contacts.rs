//! `contacts check` and `contacts list`.

use serde_json::json;

use super::Ctx;
use crate::contacts;
use crate::error::Error;

pub fn check(ctx: &Ctx) -> Result<(), Error> {
    let (valid, problems) = contacts::problems(&ctx.config);
    if ctx.json {
        super::print_json(&json!({ "valid": valid, "problems": problems }));
    } else {
        for p in &problems {
            println!("{p}");
        }
        println!("{valid} valid contact(s), {} problem(s)", problems.len());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "{} problem(s) in contact files",
            problems.len()
        )))
    }
}

pub fn list(ctx: &Ctx, zone: Option<&str>) -> Result<(), Error> {
    let zone = zone
        .map(|z| ctx.config.zone(z))
        .transpose()
        .map_err(Error::Input)?;
    let mut rows = Vec::new();
    let mut problems = 0;
    contacts::scan::<()>(&ctx.config, |row| {
        match row {
            Ok(c) if zone.as_ref().is_none_or(|z| c.zones.contains(z)) => {
                if ctx.json {
                    rows.push(json!(c));
                } else {
                    let zones: Vec<&str> = c.zones.iter().map(|z| z.as_str()).collect();
                    println!(
                        "{:<12} {:<24} {:<14} {:<30} {:<12} zones={} groups={}",
                        c.id,
                        c.name,
                        c.phone.as_ref().map(|p| p.as_str()).unwrap_or("-"),
                        c.email.as_ref().map(|e| e.as_str()).unwrap_or("-"),
                        c.telegram.as_ref().map(|t| t.as_str()).unwrap_or("-"),
                        zones.join(";"),
                        c.groups.join(";")
                    );
                }
            }
            Ok(_) => {}
            Err(e) => {
                problems += 1;
                eprintln!("warning: {e}");
            }
        }
        Ok(())
    })
    .ok();
    if ctx.json {
        super::print_json(&json!({ "contacts": rows, "problems": problems }));
    }
    Ok(())
}
