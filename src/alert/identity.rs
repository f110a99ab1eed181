//! Who is behind a command, for the two-person rule: the OS user, never
//! `--operator` or `$USER` (both are typed by the caller).
//!
//! Officers reach the ledger through `sudo -u allerta` (see
//! docs/install-debian.md), so the process runs as the service account
//! and sudo records the officer in `SUDO_UID`. That variable is trusted
//! only when the process runs as root or as the account that owns the
//! database — accounts an officer reaches only through sudo, which resets
//! the environment and sets `SUDO_UID` itself. Anyone else is their own
//! uid. On PostgreSQL, where there is no database file, the outbox
//! directory (owned by the service account too) stands in for it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub fn os_identity(database: &Path) -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let owner = std::fs::metadata(database).ok().map(|m| m.uid());
    if (uid == 0 || owner == Some(uid))
        && let Some(sudo_uid) = std::env::var("SUDO_UID")
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
        && let Some(name) = user_name(sudo_uid)
    {
        return name;
    }
    user_name(uid).unwrap_or_else(|| format!("uid:{uid}"))
}

fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 2 && fields[2] == uid.to_string()).then(|| fields[0].to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_known_by_name() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }
}
