//! Readiness of the files allerta writes, judged without creating or
//! changing anything (SPEC §13): `check` may run as root, from a timer or
//! from a test, and a database, WAL or directory it created would belong
//! to the wrong user. So nothing here opens SQLite: the schema version and
//! journal mode come from the database header, writability from
//! `access(2)` and, for root (whom `access` never refuses), from owners:
//! a root-owned file in a directory that belongs to another user is one
//! the services cannot write.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Item;

/// Whether the real user may write `path` (`access(W_OK)`).
fn may_write(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    unsafe {
        libc::access(
            c.as_ptr(),
            libc::W_OK | if path.is_dir() { libc::X_OK } else { 0 },
        ) == 0
    }
}

/// The effective user id.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The nearest existing directory at or above `path`.
fn existing_ancestor(path: &Path) -> Option<&Path> {
    path.ancestors().find(|p| p.is_dir())
}

/// A regular file on the way from `base` down to `dir` (`blocked/public`
/// with `blocked` a file): even root cannot create `dir` then.
fn blocker<'a>(dir: &'a Path, base: &Path) -> Option<&'a Path> {
    dir.ancestors()
        .take_while(|p| *p != base)
        .find(|p| p.exists() && !p.is_dir())
}

/// A file owned by root in a directory owned by someone else (the allerta
/// user): root ran a command there once, and the services (which `access`
/// cannot speak for when `check` itself runs as root) cannot write it.
fn root_left_behind(file_owner: u32, dir_owner: Option<u32>) -> bool {
    file_owner == 0 && dir_owner.is_some_and(|o| o != 0)
}

/// The database file and, when present, its `-wal` and `-shm`.
fn database_files(db: &Path) -> Vec<PathBuf> {
    let mut files = vec![db.to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let p = PathBuf::from(name);
        if p.exists() {
            files.push(p);
        }
    }
    files
}

/// Schema version (`user_version`) and whether the file is in WAL mode,
/// read from the 100-byte SQLite header.
fn header(db: &Path) -> Result<(u32, bool), String> {
    use std::io::Read;
    let mut head = [0u8; 100];
    std::fs::File::open(db)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(|e| format!("cannot read: {e}"))?;
    if &head[..16] != b"SQLite format 3\0" {
        return Err("not an SQLite database".into());
    }
    let version = u32::from_be_bytes([head[60], head[61], head[62], head[63]]);
    Ok((version, head[18] == 2 && head[19] == 2))
}

/// The database: its directory takes new files (SQLite creates the WAL
/// there), the file and its WAL are writable by this user, not left
/// behind by root in another user's directory, and without world access. A database that does not exist yet
/// is fine when it could be created (by the right user).
pub fn database(db: &Path, latest: usize) -> Item {
    let shown = db.display();
    let fix_perm = format!(
        "make {shown} and its directory writable by the user that runs allerta (on a Debian install: the allerta user, e.g. `sudo -u allerta allerta check`)"
    );
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !db.exists() {
        let Some(base) = existing_ancestor(dir) else {
            return Item::fail(
                "database",
                format!("{shown}: no directory to create it in"),
                fix_perm,
            );
        };
        if let Some(b) = blocker(dir, base) {
            return Item::fail(
                "database",
                format!(
                    "{shown}: cannot be created: {} is not a directory",
                    b.display()
                ),
                fix_perm,
            );
        }
        if !may_write(base) {
            return Item::fail(
                "database",
                format!(
                    "{shown} does not exist and {} is not writable",
                    base.display()
                ),
                fix_perm,
            );
        }
        if let Ok(meta) = std::fs::metadata(base)
            && euid() == 0
            && meta.uid() != 0
        {
            return Item::fail(
                "database",
                format!(
                    "{shown} does not exist yet and this runs as root: it would be created owned by root, and the services (user id {}) could not write it",
                    meta.uid()
                ),
                "run allerta as the owner of its directory, e.g. `sudo -u allerta allerta check`",
            );
        }
        return Item::ok(
            "database",
            format!("{shown}: not created yet; {} is writable", base.display()),
        );
    }
    let (version, wal) = match header(db) {
        Ok(h) => h,
        Err(e) => return Item::fail("database", format!("{shown}: {e}"), fix_perm),
    };
    let dir_owner = std::fs::metadata(dir).map(|m| m.uid()).ok();
    for file in std::iter::once(dir.to_owned()).chain(database_files(db)) {
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let f = file.display();
        if !may_write(&file) {
            return Item::fail(
                "database",
                format!("{f}: not writable by this user"),
                fix_perm,
            );
        }
        if file != dir && root_left_behind(meta.uid(), dir_owner) {
            return Item::fail(
                "database",
                format!(
                    "{f} is owned by user id {}, its directory by {}: the other user cannot write it (a command once run as root?)",
                    meta.uid(),
                    dir_owner.unwrap_or_default()
                ),
                format!(
                    "chown it to the owner of {} (Debian install: `chown allerta:allerta {f}`)",
                    dir.display()
                ),
            );
        }
        if file != dir && meta.mode() & 0o007 != 0 {
            return Item::fail(
                "database",
                format!("{f} is world-accessible (mode {:o})", meta.mode() & 0o777),
                format!("`chmod o-rwx {f}`: the ledger holds phone numbers and addresses"),
            );
        }
    }
    let schema = if version as usize >= latest {
        format!("schema version {version}")
    } else {
        format!("schema version {version}, migrated to {latest} at the next write")
    };
    let journal = if wal { "wal" } else { "not wal yet" };
    Item::ok(
        "database",
        format!("{shown}: writable, {schema}, journal {journal}"),
    )
}

/// `dir` takes new files: it exists and is writable, or the nearest
/// existing directory above it is (it is created at the first write).
/// `key` names the setting in the fix. Nothing is created.
pub fn writable_dir(item: &str, dir: &Path, key: &str, note: &str) -> Item {
    let shown = dir.display();
    let fix = format!("make {shown} writable by the user that runs allerta ({key})");
    if dir.exists() && !dir.is_dir() {
        return Item::fail(item, format!("{shown} is not a directory"), fix);
    }
    let Some(base) = existing_ancestor(dir) else {
        return Item::fail(
            item,
            format!("cannot create {shown}: no parent directory"),
            fix,
        );
    };
    if let Some(blocker) = blocker(dir, base) {
        return Item::fail(
            item,
            format!(
                "cannot create {shown}: {} is not a directory",
                blocker.display()
            ),
            fix,
        );
    }
    if !may_write(base) {
        return Item::fail(item, format!("{}: not writable", base.display()), fix);
    }
    if base == dir {
        Item::ok(item, format!("{shown}: writable; {note}"))
    } else {
        Item::ok(
            item,
            format!(
                "{shown}: created at the first write ({} is writable); {note}",
                base.display()
            ),
        )
    }
}

/// The first problem with a file in the outbox directory, if any: not
/// writable, left behind by root in another user's directory, or
/// world-accessible.
pub fn outbox_files(dir: &Path) -> Option<Item> {
    let dir_owner = std::fs::metadata(dir).ok()?.uid();
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let f = path.display();
        let fix = format!("`chown --reference={} {f}; chmod o-rwx {f}`", dir.display());
        if !may_write(&path) {
            return Some(Item::fail(
                "outbox",
                format!("{f}: not writable by this user"),
                fix,
            ));
        }
        if root_left_behind(meta.uid(), Some(dir_owner)) {
            return Some(Item::fail(
                "outbox",
                format!(
                    "{f} is owned by user id {}, its directory by {dir_owner}: the other user cannot append to it",
                    meta.uid()
                ),
                fix,
            ));
        }
        if meta.mode() & 0o007 != 0 {
            return Some(Item::fail(
                "outbox",
                format!(
                    "{f} is world-accessible (mode {:o}); it holds phone numbers and addresses",
                    meta.mode() & 0o777
                ),
                fix,
            ));
        }
    }
    None
}

/// A note when a directory of personal data is open to every local user.
pub fn world_readable_note(dir: &Path) -> Option<String> {
    let mode = std::fs::metadata(dir).ok()?.mode();
    (mode & 0o007 != 0).then(|| {
        format!(
            "; warning: {} is world-readable (mode {:o}): `chmod o-rwx` it, it names people",
            dir.display(),
            mode & 0o777
        )
    })
}
