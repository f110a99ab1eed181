//! A contact file as a header and numbered rows of text, whatever the
//! officer's program wrote: CSV in UTF-8 (with or without a BOM) or, when the
//! bytes are not UTF-8, Windows-1252 (Excel's "CSV" in Italian); `,` or `;`
//! separators, sniffed from the header; or an `.xlsx` workbook (its first
//! sheet). Line numbers are physical: the header is line 1, and CRLF and
//! line breaks inside quoted fields are counted, so `file:line` is what an
//! editor shows (for `.xlsx`, the spreadsheet's row number).
//!
//! A problem in one row never stops the reading of the rows after it.
//! A CSV file's bytes are read whole (to know whether they are UTF-8; a
//! comune's list is a few megabytes at most) and its rows are decoded one
//! at a time, so memory does not grow with the rows.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use calamine::{Data, Reader, Xlsx};

/// One row: its physical line and its fields, or why it cannot be read.
pub struct Row {
    pub line: u64,
    pub fields: Result<Vec<String>, String>,
}

/// A contact file read into a header and its rows.
pub struct Table {
    pub header: Vec<String>,
    pub header_line: u64,
    pub rows: Box<dyn Iterator<Item = Row>>,
}

/// Whether `path` is a file this module reads.
pub fn is_contact_file(path: &Path) -> bool {
    path.extension()
        .and_then(|x| x.to_str())
        .is_some_and(|x| x.eq_ignore_ascii_case("csv") || x.eq_ignore_ascii_case("xlsx"))
}

/// Reads a `.csv` or `.xlsx` file. `Err` is a problem with the file as a
/// whole (unreadable, no header), reported at line 1 (0 when unopenable).
pub fn read(path: &Path) -> Result<Table, (u64, String)> {
    let is_xlsx = path
        .extension()
        .and_then(|x| x.to_str())
        .is_some_and(|x| x.eq_ignore_ascii_case("xlsx"));
    if is_xlsx {
        read_xlsx(path)
    } else {
        let bytes = std::fs::read(path).map_err(|e| (0, format!("cannot read: {e}")))?;
        read_csv(bytes)
    }
}

/// The bytes Windows-1252 leaves undefined (WHATWG maps them to C1 controls).
const UNDEFINED_IN_CP1252: [u8; 5] = [0x81, 0x8D, 0x8F, 0x90, 0x9D];

pub fn read_csv(mut bytes: Vec<u8>) -> Result<Table, (u64, String)> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    let utf8 = std::str::from_utf8(&bytes).is_ok();
    let delimiter = sniff_delimiter(&bytes);
    let bytes: Arc<[u8]> = bytes.into();
    let mut rows = CsvRows {
        reader: csv_reader(&bytes, 0, delimiter),
        lines: LineCounter::new(bytes.clone()),
        bytes,
        start: 0,
        delimiter,
        utf8,
        columns: None,
        record: csv::ByteRecord::new(),
        done: false,
    };
    let first = rows.next().ok_or((1, "empty file: no header".to_owned()))?;
    let header = first
        .fields
        .map_err(|m| (first.line, format!("unreadable header: {m}")))?;
    rows.columns = Some(header.len());
    Ok(Table {
        header,
        header_line: first.line,
        rows: Box::new(rows),
    })
}

fn csv_reader(bytes: &Arc<[u8]>, start: usize, delimiter: u8) -> csv::Reader<Cursor<Arc<[u8]>>> {
    let mut source = Cursor::new(bytes.clone());
    source.set_position(start as u64);
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .comment(Some(b'#'))
        .from_reader(source)
}

/// The records of a CSV file, decoded one at a time: only the file's bytes
/// are held, never all of its rows (memory stays flat however long the
/// list). A double quote that is never closed makes csv read the following
/// lines as one value, up to the next quote or the end of the file, which
/// would silently drop the rows in between. A value that spans lines
/// holding as many separators as a row has is taken for that: the record
/// becomes an error, and reading starts again on the line after its first
/// one.
struct CsvRows {
    bytes: Arc<[u8]>,
    reader: csv::Reader<Cursor<Arc<[u8]>>>,
    /// Where `reader` started reading (its positions are relative to it).
    start: usize,
    lines: LineCounter,
    delimiter: u8,
    utf8: bool,
    /// The header's width, once the header was read.
    columns: Option<usize>,
    record: csv::ByteRecord,
    done: bool,
}

impl Iterator for CsvRows {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        if self.done {
            return None;
        }
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                let offset = self.start as u64 + self.record.position().map_or(0, |p| p.byte());
                let (line, at) = self.lines.line_at(offset);
                if let Some(columns) = self.columns
                    && swallows_rows(&self.record, self.delimiter, columns)
                {
                    match self.bytes[at..].iter().position(|b| *b == b'\n') {
                        Some(p) if at + p + 1 < self.bytes.len() => {
                            self.start = at + p + 1;
                            self.reader = csv_reader(&self.bytes, self.start, self.delimiter);
                        }
                        _ => self.done = true,
                    }
                    return Some(Row {
                        line,
                        fields: Err("a double quote opened on this line is never closed, so \
                                     the next lines would be read as one value; fix the \
                                     quotes (reading goes on with the next line)"
                            .to_owned()),
                    });
                }
                Some(Row {
                    line,
                    fields: decode(&self.record, self.utf8),
                })
            }
            // Reading from memory, csv's only errors are I/O and UTF-8 ones,
            // which byte records cannot have; stop rather than loop.
            Err(e) => {
                self.done = true;
                let offset = self.start as u64 + e.position().map_or(0, |p| p.byte());
                Some(Row {
                    line: self.lines.line_at(offset).0,
                    fields: Err(format!("malformed CSV: {e}")),
                })
            }
        }
    }
}

/// Whether a value spans lines that look like rows of their own.
fn swallows_rows(record: &csv::ByteRecord, delimiter: u8, columns: usize) -> bool {
    let needed = columns.saturating_sub(1).max(1);
    record.iter().any(|field| {
        field
            .split(|b| *b == b'\n')
            .skip(1)
            .any(|line| line.iter().filter(|b| **b == delimiter).count() >= needed)
    })
}

/// `;` when the header has more of them than `,` (Excel in Italian), tab for
/// a tab-separated export, `,` otherwise.
fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let header_end = bytes
        .iter()
        .position(|b| *b == b'\n')
        .unwrap_or(bytes.len());
    let header = &bytes[..header_end];
    let count = |d: u8| header.iter().filter(|b| **b == d).count();
    let (commas, semicolons, tabs) = (count(b','), count(b';'), count(b'\t'));
    if semicolons > commas && semicolons >= tabs {
        b';'
    } else if tabs > commas && tabs > semicolons {
        b'\t'
    } else {
        b','
    }
}

fn decode(record: &csv::ByteRecord, utf8: bool) -> Result<Vec<String>, String> {
    record
        .iter()
        .map(|field| {
            if utf8 {
                // The whole file is UTF-8, so every field is.
                return Ok(String::from_utf8_lossy(field).into_owned());
            }
            if let Some(b) = field.iter().find(|b| UNDEFINED_IN_CP1252.contains(b)) {
                return Err(format!(
                    "byte 0x{b:02X} is not a character: the file is not UTF-8, and \
                     Windows-1252 has no character for that byte either (save the \
                     file as \"CSV UTF-8\")"
                ));
            }
            let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(field);
            Ok(text.into_owned())
        })
        .collect()
}

/// Physical line of a byte offset, for offsets asked in increasing order.
struct LineCounter {
    bytes: Arc<[u8]>,
    offset: usize,
    line: u64,
}

impl LineCounter {
    fn new(bytes: Arc<[u8]>) -> Self {
        Self {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// The physical line where the record csv reports at `offset` starts,
    /// and the byte where it starts. csv's offset is where it stopped after
    /// the previous record: possibly before that record's line break, blank
    /// lines and `#` comment lines, all of which belong before this record.
    fn line_at(&mut self, offset: u64) -> (u64, usize) {
        let mut target = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len())
            .max(self.offset);
        loop {
            match self.bytes.get(target) {
                Some(b'\r' | b'\n') => target += 1,
                Some(b'#') => {
                    target = self.bytes[target..]
                        .iter()
                        .position(|b| *b == b'\n')
                        .map_or(self.bytes.len(), |p| target + p + 1);
                }
                _ => break,
            }
        }
        (self.count_to(target), target)
    }

    /// LF ends a line, and so does a CR not followed by LF (old Mac files).
    fn count_to(&mut self, target: usize) -> u64 {
        while self.offset < target {
            match self.bytes[self.offset] {
                b'\n' => self.line += 1,
                b'\r' if self.bytes.get(self.offset + 1) != Some(&b'\n') => self.line += 1,
                _ => {}
            }
            self.offset += 1;
        }
        self.line
    }
}

fn read_xlsx(path: &Path) -> Result<Table, (u64, String)> {
    let mut workbook: Xlsx<_> =
        calamine::open_workbook(path).map_err(|e| (0, format!("cannot read workbook: {e}")))?;
    let range = workbook
        .worksheet_range_at(0)
        .ok_or((0, "the workbook has no sheet".to_owned()))?
        .map_err(|e| (0, format!("cannot read the first sheet: {e}")))?;
    // Spreadsheet rows are 1-based; calamine's are 0-based from the first
    // used cell.
    let first_row = u64::from(range.start().map_or(0, |(row, _)| row)) + 1;
    let mut rows: Vec<Row> = range
        .rows()
        .zip(first_row..)
        .map(|(cells, line)| Row {
            line,
            fields: Ok(cells.iter().map(cell_text).collect()),
        })
        .collect::<Vec<_>>();
    // Trailing empty rows are formatting, not contacts.
    while rows.last().is_some_and(|r| {
        r.fields
            .as_ref()
            .is_ok_and(|f| f.iter().all(|c| c.trim().is_empty()))
    }) {
        rows.pop();
    }
    let mut rows = rows.into_iter();
    let first = rows
        .next()
        .ok_or((1, "empty sheet: no header".to_owned()))?;
    let header = first.fields.unwrap_or_default();
    Ok(Table {
        header,
        header_line: first.line,
        rows: Box::new(rows),
    })
}

/// A cell as the text the officer sees. Phone numbers typed into Excel are
/// often numbers: 3331234567, not 3.331234567e9.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => d.to_string(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Fields = Result<Vec<String>, String>;

    fn rows(bytes: &[u8]) -> (Vec<String>, Vec<(u64, Fields)>) {
        let t = read_csv(bytes.to_vec()).unwrap();
        (t.header, t.rows.map(|r| (r.line, r.fields)).collect())
    }

    #[test]
    fn lines_are_physical_with_crlf_and_multiline_fields() {
        let (header, rows) =
            rows(b"id,name\r\n1,Anna\r\n2,\"Via Roma 1\r\nsecondo piano\"\r\n\r\n3,Bruno\r\n");
        assert_eq!(header, ["id", "name"]);
        let lines: Vec<u64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(lines, [2, 3, 6]);
        assert_eq!(
            rows[1].1.as_ref().unwrap()[1],
            "Via Roma 1\r\nsecondo piano"
        );
    }

    #[test]
    fn an_unclosed_quote_spoils_its_row_not_the_rest_of_the_file() {
        let (_, rows) = rows(b"id,name\n1,\"Anna\n2,Bruno\n3,\"Carla\"\n4,Dario\n");
        let lines: Vec<u64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(lines, [2, 3, 4, 5]);
        assert!(rows[0].1.as_ref().unwrap_err().contains("never closed"));
        assert_eq!(rows[1].1.as_ref().unwrap(), &["2", "Bruno"]);
        assert_eq!(rows[2].1.as_ref().unwrap(), &["3", "Carla"]);
        assert_eq!(rows[3].1.as_ref().unwrap(), &["4", "Dario"]);
        // A quote inside an unquoted value is just a character.
        let (_, floppy) = super::tests::rows(b"id,name\n1,Floppy 5\" disk\n2,Bruno\n");
        assert_eq!(floppy[0].1.as_ref().unwrap()[1], "Floppy 5\" disk");
        assert_eq!(floppy.len(), 2);
    }

    #[test]
    fn comment_lines_are_counted_too() {
        let (_, rows) = rows(b"id,name\n# a comment\n1,Anna\n");
        assert_eq!(rows[0].0, 3);
    }

    #[test]
    fn excel_italian_semicolons_and_bom_read_as_is() {
        let (header, rows) = rows(b"\xEF\xBB\xBFid;name;zones\n1;Anna;\"centro;fibbiana\"\n");
        assert_eq!(header, ["id", "name", "zones"]);
        assert_eq!(rows[0].1.as_ref().unwrap()[2], "centro;fibbiana");
    }

    #[test]
    fn a_file_that_is_not_utf8_is_windows_1252_and_undefined_bytes_spoil_only_their_row() {
        let (_, rows) = rows(b"id;name\n1;Nicol\xF2\n2;Bad\x81byte\n3;\x80 Euro \x93ok\x94\n");
        assert_eq!(rows[0].1.as_ref().unwrap()[1], "Nicolò");
        let err = rows[1].1.as_ref().unwrap_err();
        assert!(err.contains("0x81"), "{err}");
        assert_eq!(rows[1].0, 3);
        assert_eq!(rows[2].1.as_ref().unwrap()[1], "€ Euro \u{201c}ok\u{201d}");
    }

    #[test]
    fn the_separator_is_sniffed_from_the_header_only() {
        assert_eq!(sniff_delimiter(b"id,name,zones\n1,a,\"x;y;z;w\"\n"), b',');
        assert_eq!(sniff_delimiter(b"id;name\n"), b';');
        assert_eq!(sniff_delimiter(b"id\tname\n"), b'\t');
        assert_eq!(sniff_delimiter(b"id\n"), b',');
    }

    #[test]
    fn numbers_typed_into_excel_cells_read_as_their_digits() {
        assert_eq!(cell_text(&Data::Float(3331234567.0)), "3331234567");
        assert_eq!(cell_text(&Data::Int(571123456)), "571123456");
        assert_eq!(cell_text(&Data::Float(1.5)), "1.5");
    }
}
