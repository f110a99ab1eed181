//! Contact lists (`contacts/*.csv` and `*.xlsx`, SPEC §5 and §12). Every
//! bad row is reported with its file, physical line and reason, and never
//! stops the reading of the rows after it. `table` turns a file into rows of
//! text; this module turns rows into contacts.

pub mod coverage;
mod table;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Config;
use crate::domain::{ChannelId, ChatId, EmailAddress, PhoneNumber, ZoneId};

const COLUMNS: [&str; 10] = [
    "id",
    "name",
    "phone",
    "landline",
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
    /// The `phone` column: a mobile or a landline.
    pub phone: Option<PhoneNumber>,
    /// The `landline` column, for voice calls.
    pub landline: Option<PhoneNumber>,
    pub email: Option<EmailAddress>,
    pub telegram: Option<ChatId>,
    pub zones: Vec<ZoneId>,
    pub groups: Vec<String>,
    pub language: Option<String>,
    /// `None`: every channel they have an address for.
    pub channels: Option<Vec<ChannelId>>,
    /// Where the row is written (file, physical line).
    #[serde(skip)]
    pub file: PathBuf,
    #[serde(skip)]
    pub line: u64,
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
            ChannelId::Sms => self.sms_number().map(PhoneNumber::as_str),
            ChannelId::Email => self.email.as_ref().map(EmailAddress::as_str),
            ChannelId::Telegram => self.telegram.as_ref().map(ChatId::as_str),
            ChannelId::Banner | ChannelId::Facebook | ChannelId::Mastodon | ChannelId::Bluesky => {
                None
            }
            ChannelId::Voice => self.voice_number().map(PhoneNumber::as_str),
        }
    }

    /// Where an SMS can go: a mobile, never a fixed line (a mobile written
    /// in the `landline` column still gets it).
    pub fn sms_number(&self) -> Option<&PhoneNumber> {
        [&self.phone, &self.landline]
            .into_iter()
            .flatten()
            .find(|p| p.is_mobile())
    }

    /// Where a voice call goes (SPEC §14): the landline if there is one,
    /// else the phone.
    pub fn voice_number(&self) -> Option<&PhoneNumber> {
        self.landline.as_ref().or(self.phone.as_ref())
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

/// The CSV and Excel files of the contacts directory, sorted so line
/// numbers and duplicates are reported the same way every time.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>, RowError> {
    let entries = std::fs::read_dir(dir).map_err(|e| RowError {
        file: dir.to_owned(),
        line: 0,
        message: format!("cannot read contacts directory: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| table::is_contact_file(p))
        // Excel's lock file for an open workbook (`~$lista.xlsx`).
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("~$"))
        })
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
    let table = match table::read(file) {
        Ok(t) => t,
        Err((line, message)) => return visit(Err(err(line, message))),
    };
    let mut index = [None; COLUMNS.len()];
    // Columns without a name (Excel's trailing `;;;` or formatted empty
    // cells): ignored, as long as no row writes in them.
    let mut nameless = Vec::new();
    for (i, name) in table.header.iter().enumerate() {
        let name = name.trim();
        if name.is_empty() {
            nameless.push(i);
            continue;
        }
        match COLUMNS.iter().position(|c| c.eq_ignore_ascii_case(name)) {
            Some(col) if index[col].is_none() => index[col] = Some(i),
            Some(_) => {
                return visit(Err(err(
                    table.header_line,
                    format!("column `{name}` appears twice"),
                )));
            }
            None => {
                return visit(Err(err(
                    table.header_line,
                    format!("unknown column `{name}` (allowed: {})", COLUMNS.join(", ")),
                )));
            }
        }
    }
    if index[0].is_none() {
        return visit(Err(err(
            table.header_line,
            "missing the `id` column".into(),
        )));
    }

    for row in table.rows {
        let line = row.line;
        let fields = match row.fields {
            Ok(f) => f,
            Err(m) => {
                visit(Err(err(line, m)))?;
                continue;
            }
        };
        // Rows left empty (`;;;;` from Excel) are not contacts.
        if fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if fields.len() > table.header.len()
            && fields[table.header.len()..]
                .iter()
                .any(|f| !f.trim().is_empty())
        {
            visit(Err(err(
                line,
                format!(
                    "{} fields, but the header has {} columns (a separator inside a value? \
                     quote it)",
                    fields.len(),
                    table.header.len()
                ),
            )))?;
            continue;
        }
        if let Some(i) = nameless
            .iter()
            .find(|i| fields.get(**i).is_some_and(|f| !f.trim().is_empty()))
        {
            visit(Err(err(
                line,
                format!(
                    "a value in column {}, which has no name in the header",
                    i + 1
                ),
            )))?;
            continue;
        }
        let field = |col: usize| {
            index[col]
                .and_then(|i| fields.get(i))
                .map_or("", |f| f.trim())
        };
        let row = parse_row(config, field)
            .map(|c| Contact {
                file: file.to_owned(),
                line,
                ..c
            })
            .map_err(|m| err(line, m));
        let row = row.and_then(|c| {
            if seen_ids.insert(c.id.clone()) {
                Ok(c)
            } else {
                Err(err(line, format!("duplicate contact id `{}`", c.id)))
            }
        });
        visit(row)?;
    }
    Ok(())
}

fn parse_row<'r>(config: &Config, field: impl Fn(usize) -> &'r str) -> Result<Contact, String> {
    let id = field(0);
    if id.is_empty() {
        return Err("empty id".into());
    }
    let region = config.general.default_region;
    let phone = non_empty(field(2))
        .map(|p| PhoneNumber::parse(p, region))
        .transpose()
        .map_err(|m| format!("phone: {m}"))?;
    let landline = non_empty(field(3))
        .map(|p| PhoneNumber::parse(p, region))
        .transpose()
        .map_err(|m| format!("landline: {m}"))?;
    let email = non_empty(field(4))
        .map(EmailAddress::parse)
        .transpose()
        .map_err(|m| format!("email: {m}"))?;
    let telegram = non_empty(field(5))
        .map(ChatId::parse)
        .transpose()
        .map_err(|m| format!("telegram_chat_id: {m}"))?;
    let zones = list(field(6))
        .map(|z| config.zone(z))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| format!("zones: {m}"))?;
    let groups = list(field(7)).map(str::to_owned).collect();
    let language = non_empty(field(8))
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
    let channels = non_empty(field(9))
        .map(|c| {
            list(c)
                .map(|c| c.parse::<ChannelId>())
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(|m| format!("channels: {m}"))?;
    if phone.is_none() && landline.is_none() && email.is_none() && telegram.is_none() {
        return Err(
            "no phone, landline, email or telegram_chat_id: this person cannot be reached".into(),
        );
    }
    Ok(Contact {
        id: id.to_owned(),
        name: field(1).to_owned(),
        phone,
        landline,
        email,
        telegram,
        zones,
        groups,
        language,
        channels,
        file: PathBuf::new(),
        line: 0,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PhoneRegion;

    fn contact(phone: Option<&str>, landline: Option<&str>) -> Contact {
        let it = PhoneRegion::parse("IT").unwrap();
        let parse = |n: &str| PhoneNumber::parse(n, it).unwrap();
        Contact {
            id: "x".into(),
            name: String::new(),
            phone: phone.map(parse),
            landline: landline.map(parse),
            email: None,
            telegram: None,
            zones: Vec::new(),
            groups: Vec::new(),
            language: None,
            channels: None,
            file: PathBuf::new(),
            line: 0,
        }
    }

    #[test]
    fn sms_goes_to_a_mobile_and_calls_prefer_the_landline() {
        let both = contact(Some("333 000 0001"), Some("0571 123456"));
        assert_eq!(both.address(ChannelId::Sms), Some("+393330000001"));
        assert_eq!(both.voice_number().unwrap().as_str(), "+390571123456");

        let landline_in_phone = contact(Some("055 1234567"), None);
        assert_eq!(landline_in_phone.address(ChannelId::Sms), None);
        assert_eq!(
            landline_in_phone.voice_number().unwrap().as_str(),
            "+390551234567"
        );

        let toll_free = contact(Some("800 123456"), None);
        assert_eq!(toll_free.address(ChannelId::Sms), None);

        let mobile_only = contact(Some("+39 347 000 0002"), None);
        assert_eq!(
            mobile_only.voice_number().unwrap().as_str(),
            "+393470000002"
        );
    }
}
