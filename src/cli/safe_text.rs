//! Text from outside (provider replies, contact files) made safe for where
//! the CLI puts it (SPEC §13): a terminal, where escape sequences could
//! rewrite the screen or the title, and a CSV file, which a spreadsheet
//! would run as a formula.

use std::borrow::Cow;

/// Without control characters (C0, DEL, C1: ESC sequences, CR overprint,
/// bells), each replaced by `?`. Newlines and tabs become spaces, so one
/// delivery stays on one line.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match c {
                '\n' | '\t' => ' ',
                c if c.is_control() => '?',
                c => c,
            })
            .collect(),
    )
}

/// Like [`for_terminal`] but keeps line breaks (multi-line error messages).
pub fn lines_for_terminal(text: &str) -> String {
    text.split('\n')
        .map(for_terminal)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A CSV cell a spreadsheet will not run: a leading `=`, `+`, `-`, `@`,
/// tab or CR gets a `'` in front (OWASP's advice for CSV injection).
pub fn for_csv(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_overprints_do_not_reach_the_terminal() {
        let raw = "rejected\x1b]0;pwned\x07\x1b[2J\rOK\u{9b}31m\nnext";
        let safe = for_terminal(raw);
        assert!(!safe.chars().any(char::is_control), "{safe:?}");
        assert_eq!(safe, "rejected?]0;pwned??[2J?OK?31m next");
        assert!(matches!(for_terminal("plain è 🌊"), Cow::Borrowed(_)));
    }

    #[test]
    fn formula_cells_are_neutralised_and_others_kept() {
        for cell in [
            "=HYPERLINK(\"x\")",
            "+39333",
            "-1+1",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            assert_eq!(for_csv(cell), format!("'{cell}"));
        }
        for cell in ["", "Anna", "a=b", "393331234567"] {
            assert_eq!(for_csv(cell), cell);
        }
    }
}
