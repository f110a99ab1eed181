//! Contact lists (`contacts/*.csv`, SPEC §5), read as a stream so memory
//! stays flat however long the lists are. Every bad row is reported with
//! its file, line and reason.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Config;
use crate::domain::{ChannelId, ChatId, EmailAddress, PhoneNumber, ZoneId};

const COLUMNS: [&str; 9] = [
    "id",
    "name",
    "phone",
    "email",
    "telegram_chat_id",
    "zones",
    "groups",
    "language",
    "channels",
];

#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    pub id: String,
    pub name: String,
    pub phone: Option<PhoneNumber>,
    pub email: Option<EmailAddress>,
    pub telegram: Option<ChatId>,
    pub zones: Vec<ZoneId>,
    pub groups: Vec<String>,
    pub language: Option<String>,
    /// `None`: every channel they have an address for.
    pub channels: Option<Vec<ChannelId>>,
}

impl Contact {
    /// The address on `channel`, if they have one and accept that channel.
    pub fn address(&self, channel: ChannelId) -> Option<&str> {
        if let Some(accepted) = &self.channels
            && !accepted.contains(&channel)
        {
            return None;
        }
        match channel {
            ChannelId::Sms => self.phone.as_ref().map(PhoneNumber::as_str),
            ChannelId::Email => self.email.as_ref().map(EmailAddress::as_str),
            ChannelId::Telegram => self.telegram.as_ref().map(ChatId::as_str),
            ChannelId::Banner => None,
        }
    }
}

/// One problem in a contact file, with where it is.
#[derive(Debug, Clone, Serialize)]
pub struct RowError {
    pub file: PathBuf,
    pub line: u64,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// The CSV files of the contacts directory, sorted so line numbers and
/// duplicates are reported the same way every time.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>, RowError> {
    let entries = std::fs::read_dir(dir).map_err(|e| RowError {
        file: dir.to_owned(),
        line: 0,
        message: format!("cannot read contacts directory: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads every contact file, calling `visit` with each valid contact or
/// row error in file order. `visit` may stop the scan by returning `Err`.
pub fn scan<E>(
    config: &Config,
    mut visit: impl FnMut(Result<Contact, RowError>) -> Result<(), E>,
) -> Result<(), E> {
    let files = match files(&config.general.contacts_dir) {
        Ok(f) => f,
        Err(e) => return visit(Err(e)),
    };
    let mut seen_ids = HashSet::new();
    for file in files {
        scan_file(config, &file, &mut seen_ids, &mut visit)?;
    }
    Ok(())
}

fn scan_file<E>(
    config: &Config,
    file: &Path,
    seen_ids: &mut HashSet<String>,
    visit: &mut impl FnMut(Result<Contact, RowError>) -> Result<(), E>,
) -> Result<(), E> {
    let err = |line: u64, message: String| RowError {
        file: file.to_owned(),
        line,
        message,
    };
    let mut reader = match csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_path(file)
    {
        Ok(r) => r,
        Err(e) => return visit(Err(err(0, format!("cannot open: {e}")))),
    };
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return visit(Err(err(1, format!("unreadable header: {e}")))),
    };
    let mut index = [None; COLUMNS.len()];
    for (i, name) in headers.iter().enumerate() {
        match COLUMNS.iter().position(|c| *c == name) {
            Some(col) if index[col].is_none() => index[col] = Some(i),
            Some(_) => return visit(Err(err(1, format!("column `{name}` appears twice")))),
            None => {
                return visit(Err(err(
                    1,
                    format!("unknown column `{name}` (allowed: {})", COLUMNS.join(", ")),
                )));
            }
        }
    }
    if index[0].is_none() {
        return visit(Err(err(1, "missing the `id` column".into())));
    }

    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() + 1;
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = record.position().map_or(line, |p| p.line());
                let field = |col: usize| index[col].and_then(|i| record.get(i)).unwrap_or("");
                let row = parse_row(config, field).map_err(|m| err(line, m));
                let row = row.and_then(|c| {
                    if seen_ids.insert(c.id.clone()) {
                        Ok(c)
                    } else {
                        Err(err(line, format!("duplicate contact id `{}`", c.id)))
                    }
                });
                visit(row)?;
            }
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                visit(Err(err(line, format!("malformed CSV: {e}"))))?;
                if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    return Ok(());
                }
            }
        }
    }
}

fn parse_row<'r>(config: &Config, field: impl Fn(usize) -> &'r str) -> Result<Contact, String> {
    let id = field(0);
    if id.is_empty() {
        return Err("empty id".into());
    }
    let phone = non_empty(field(2))
        .map(|p| PhoneNumber::parse(p, &config.general.default_region))
        .transpose()
        .map_err(|m| format!("phone: {m}"))?;
    let email = non_empty(field(3))
        .map(EmailAddress::parse)
        .transpose()
        .map_err(|m| format!("email: {m}"))?;
    let telegram = non_empty(field(4))
        .map(ChatId::parse)
        .transpose()
        .map_err(|m| format!("telegram_chat_id: {m}"))?;
    let zones = list(field(5))
        .map(|z| config.zone(z))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| format!("zones: {m}"))?;
    let groups = list(field(6)).map(str::to_owned).collect();
    let language = non_empty(field(7))
        .map(|l| {
            if (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_lowercase()) {
                Ok(l.to_owned())
            } else {
                Err(format!(
                    "language: `{l}` is not a language code like it or en"
                ))
            }
        })
        .transpose()?;
    let channels = non_empty(field(8))
        .map(|c| {
            list(c)
                .map(|c| c.parse::<ChannelId>())
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(|m| format!("channels: {m}"))?;
    if phone.is_none() && email.is_none() && telegram.is_none() {
        return Err("no phone, email or telegram_chat_id: this person cannot be reached".into());
    }
    Ok(Contact {
        id: id.to_owned(),
        name: field(1).to_owned(),
        phone,
        email,
        telegram,
        zones,
        groups,
        language,
        channels,
    })
}

fn non_empty(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(';').map(str::trim).filter(|x| !x.is_empty())
}

/// Every problem in every contact file (for `contacts check` and `send`).
pub fn problems(config: &Config) -> (usize, Vec<RowError>) {
    let mut valid = 0;
    let mut errors = Vec::new();
    let _ = scan::<()>(config, |row| {
        match row {
            Ok(_) => valid += 1,
            Err(e) => errors.push(e),
        }
        Ok(())
    });
    (valid, errors)
}
