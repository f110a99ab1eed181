//! Keeps the ledger's contact registry in step with the contact files: a
//! send plans from it with one statement (SPEC §10, first message), and it
//! is rebuilt — every row parsed and validated again — whenever a file, or
//! a setting that judges them (default region, declared zones, this
//! program's version), changed since it was built.

use ring::digest::{Context, SHA256};

use crate::audience::{Audience, Selector};
use crate::config::Config;
use crate::contacts;
use crate::domain::ChannelId;
use crate::error::Error;
use crate::ledger::{AudienceFilter, Ledger, RegistryContact};

/// Bumped when what the registry stores, or how rows are judged, changes.
const FORMAT: &str = "registry-2"; // 2: voice addresses (SPEC §14)

/// SHA-256 over everything the registry's content depends on.
pub fn fingerprint(config: &Config) -> String {
    let mut h = Context::new(&SHA256);
    for part in [
        FORMAT,
        env!("CARGO_PKG_VERSION"),
        &format!("{:?}", config.general.default_region),
        &config.general.contacts_dir.display().to_string(),
    ] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    for zone in config.zones.keys() {
        h.update(zone.as_str().as_bytes());
        h.update(&[0]);
    }
    match contacts::files(&config.general.contacts_dir) {
        Err(e) => h.update(e.to_string().as_bytes()),
        Ok(files) => {
            for file in files {
                h.update(file.display().to_string().as_bytes());
                h.update(&[0]);
                match std::fs::read(&file) {
                    Ok(bytes) => {
                        h.update(&(bytes.len() as u64).to_le_bytes());
                        h.update(&bytes);
                    }
                    Err(e) => h.update(e.to_string().as_bytes()),
                }
            }
        }
    }
    h.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Rebuilds the registry unless it was built from exactly these files.
/// Returns true when it had to.
pub fn ensure(config: &Config, ledger: &mut Ledger) -> Result<bool, Error> {
    let wanted = fingerprint(config);
    if ledger.registry_fingerprint()?.as_deref() == Some(wanted.as_str()) {
        return Ok(false);
    }
    let mut writer = ledger.rebuild_registry(&wanted)?;
    let mut failure = None;
    contacts::scan::<()>(config, |row| {
        let result = match row {
            Ok(c) => {
                let addresses: Vec<(ChannelId, &str)> = ChannelId::ALL
                    .into_iter()
                    .filter_map(|ch| c.address(ch).map(|a| (ch, a)))
                    .collect();
                writer.contact(&RegistryContact {
                    id: &c.id,
                    language: c.language.as_deref(),
                    zones: c.zones.iter().map(|z| z.as_str()).collect(),
                    groups: c.groups.iter().map(String::as_str).collect(),
                    addresses: &addresses,
                })
            }
            Err(e) => writer.problem(&e.to_string()),
        };
        result.map_err(|e| {
            failure = Some(e);
        })
    })
    .ok();
    if let Some(e) = failure {
        return Err(e.into());
    }
    writer.commit()?;
    Ok(true)
}

/// An audience as the registry's filter.
pub fn filter(audience: &Audience) -> AudienceFilter {
    let mut f = AudienceFilter {
        all: false,
        zones: Vec::new(),
        groups: Vec::new(),
    };
    for s in &audience.selectors {
        match s {
            Selector::All => f.all = true,
            Selector::Zone(z) => f.zones.push(z.as_str().to_owned()),
            Selector::Group(g) => f.groups.push(g.clone()),
        }
    }
    f
}
