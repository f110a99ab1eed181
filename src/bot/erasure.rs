//! Erasing a chat id from the Telegram outbox (`outbox/telegram.jsonl`),
//! after `/cancellami` or `subscribers forget` erased it from the ledger.
//!
//! The file is not rewritten: a `send` may be appending to it at this very
//! moment (its open descriptor would keep writing to a replaced file), and
//! each delivery's provider id is its line's byte offset. So the id is
//! overwritten in place, byte for byte, with `x`: every line keeps its
//! length and stays valid JSON (`"to":"xxxxxxxxx"`).

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Overwrites `"to":"<chat>"` in every line of `file`; returns how many.
/// A missing file is nothing to erase.
pub fn scrub_outbox(file: &Path, chat: &str) -> std::io::Result<usize> {
    let mut f = match OpenOptions::new().read(true).write(true).open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let needle = format!("\"to\":{}", serde_json::Value::from(chat));
    let needle = needle.as_bytes();
    let mut offsets = Vec::new();
    let mut from = 0;
    while let Some(i) = find(&bytes[from..], needle) {
        offsets.push(from + i);
        from += i + needle.len();
    }
    // `"to":"` is 6 bytes; the id follows, then the closing quote.
    let blank = vec![b'x'; chat.len()];
    for at in &offsets {
        f.seek(SeekFrom::Start((at + 6) as u64))?;
        f.write_all(&blank)?;
    }
    if !offsets.is_empty() {
        f.sync_data()?;
    }
    Ok(offsets.len())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chat_id_is_overwritten_in_place_and_lines_keep_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("telegram.jsonl");
        let lines = [
            r#"{"alert_id":"a","to":"123456789","text":"uno"}"#,
            r#"{"alert_id":"a","to":"1234567890","text":"due 123456789"}"#,
            r#"{"alert_id":"b","to":"123456789","text":"tre"}"#,
        ];
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        let before = std::fs::read(&file).unwrap();

        assert_eq!(scrub_outbox(&file, "123456789").unwrap(), 2);

        let after = std::fs::read_to_string(&file).unwrap();
        assert_eq!(after.len(), before.len());
        let parsed: Vec<serde_json::Value> = after
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(parsed[0]["to"], "xxxxxxxxx");
        assert_eq!(parsed[1]["to"], "1234567890", "another chat is kept");
        assert_eq!(parsed[2]["to"], "xxxxxxxxx");
        assert_eq!(
            scrub_outbox(&dir.path().join("none.jsonl"), "1").unwrap(),
            0
        );
    }
}
