//! GSM 03.38 analysis of SMS text, counted the way a mobile operator bills it.
//!
//! This module owns the decision GSM-7 vs UCS-2, the septet / UTF-16 unit
//! count, the segment count and the actual split into concatenated-SMS parts.
//! [`analyze`] and [`split`] share one splitting routine, so
//! `analyze(t).segments == split(t).len()` always holds.
//!
//! Limits (3GPP TS 23.040 with a 6-octet concatenation UDH):
//! * GSM-7: 160 septets in a single message, 153 per part otherwise; an
//!   extension character (ESC + code, 2 septets) is never split across parts.
//! * UCS-2: 70 UTF-16 units in a single message, 67 per part otherwise; a
//!   surrogate pair (e.g. an emoji) is never split across parts.

use std::ops::Range;

/// Character encoding an SMS will be sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// GSM 03.38 7-bit default alphabet (plus extension table).
    Gsm7,
    /// UCS-2 / UTF-16, used as soon as one character is outside GSM 03.38.
    Ucs2,
}

impl Encoding {
    /// Display name: `"GSM-7"` or `"UCS-2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        }
    }
}

/// Result of [`analyze`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsAnalysis {
    pub encoding: Encoding,
    /// Unicode scalar values in the text.
    pub chars: usize,
    /// GSM-7: septets (extension chars count 2). UCS-2: UTF-16 code units.
    pub units: usize,
    /// Number of SMS parts the text is sent as (0 for empty text).
    pub segments: usize,
    /// Distinct characters (first-appearance order) outside the GSM 03.38
    /// basic and extension tables; non-empty iff `encoding == Ucs2`.
    pub ucs2_forcing: Vec<char>,
    /// Distinct GSM extension-table characters used (first-appearance order).
    /// Each costs 2 septets when the text is GSM-7; listed regardless of the
    /// final encoding.
    pub extension_chars: Vec<char>,
}

const GSM7_SINGLE: usize = 160;
const GSM7_PART: usize = 153;
const UCS2_SINGLE: usize = 70;
const UCS2_PART: usize = 67;

/// GSM 03.38 / 3GPP TS 23.038 §6.2.1 default alphabet, basic table
/// (code points 0x00..=0x7F, excluding 0x1B ESC).
fn is_gsm_basic(c: char) -> bool {
    matches!(
        c,
        // 0x00-0x0F
        '@' | '£' | '$' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | '\n' | 'Ø' | 'ø' | '\r' | 'Å' | 'å'
        // 0x10-0x1F (0x1B is ESC)
        | 'Δ' | '_' | 'Φ' | 'Γ' | 'Λ' | 'Ω' | 'Π' | 'Ψ' | 'Σ' | 'Θ' | 'Ξ' | 'Æ' | 'æ' | 'ß' | 'É'
        // 0x20-0x3F
        | ' ' | '!' | '"' | '#' | '¤' | '%' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | '-' | '.' | '/'
        | '0'..='9' | ':' | ';' | '<' | '=' | '>' | '?'
        // 0x40-0x5F
        | '¡' | 'A'..='Z' | 'Ä' | 'Ö' | 'Ñ' | 'Ü' | '§'
        // 0x60-0x7F
        | '¿' | 'a'..='z' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à'
    )
}

/// GSM 03.38 / 3GPP TS 23.038 §6.2.1.1 default alphabet extension table:
/// sent as ESC (0x1B) + code, i.e. 2 septets each.
fn is_gsm_extension(c: char) -> bool {
    matches!(
        c,
        '\u{0C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€'
    )
}

/// Cost of `c` in units of `encoding` (septets or UTF-16 code units).
/// Only meaningful for characters representable in `encoding`.
fn weight(c: char, encoding: Encoding) -> usize {
    match encoding {
        Encoding::Gsm7 if is_gsm_extension(c) => 2,
        Encoding::Gsm7 => 1,
        Encoding::Ucs2 => c.len_utf16(),
    }
}

/// Byte ranges of the parts `text` is sent as. Greedy fill up to the
/// per-part limit; a character (escape pair / surrogate pair) is atomic and
/// moves whole to the next part if it would overflow the current one.
fn part_ranges(text: &str, encoding: Encoding, total_units: usize) -> Vec<Range<usize>> {
    if text.is_empty() {
        return Vec::new();
    }
    let (single, part) = match encoding {
        Encoding::Gsm7 => (GSM7_SINGLE, GSM7_PART),
        Encoding::Ucs2 => (UCS2_SINGLE, UCS2_PART),
    };
    if total_units <= single {
        return vec![Range {
            start: 0,
            end: text.len(),
        }];
    }
    let mut ranges = Vec::with_capacity(total_units.div_ceil(part) + 1);
    let mut start = 0;
    let mut used = 0;
    for (i, c) in text.char_indices() {
        let w = weight(c, encoding);
        if used + w > part {
            ranges.push(start..i);
            start = i;
            used = 0;
        }
        used += w;
    }
    ranges.push(start..text.len());
    ranges
}

fn push_distinct(list: &mut Vec<char>, c: char) {
    if !list.contains(&c) {
        list.push(c);
    }
}

/// Analyse `text` as an operator would: encoding, units, segment count and
/// the characters responsible for UCS-2 or for double-septet cost.
pub fn analyze(text: &str) -> SmsAnalysis {
    let mut chars = 0;
    let mut ucs2_forcing = Vec::new();
    let mut extension_chars = Vec::new();
    for c in text.chars() {
        chars += 1;
        if is_gsm_basic(c) {
            continue;
        }
        if is_gsm_extension(c) {
            push_distinct(&mut extension_chars, c);
        } else {
            push_distinct(&mut ucs2_forcing, c);
        }
    }
    let encoding = if ucs2_forcing.is_empty() {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    };
    let units = text.chars().map(|c| weight(c, encoding)).sum();
    let segments = part_ranges(text, encoding, units).len();
    SmsAnalysis {
        encoding,
        chars,
        units,
        segments,
        ucs2_forcing,
        extension_chars,
    }
}

/// Split `text` into the parts it would be sent as (empty for empty text).
/// Never splits a GSM-7 escape pair or a UTF-16 surrogate pair; the parts
/// concatenate back to `text` and their count equals `analyze(text).segments`.
pub fn split(text: &str) -> Vec<String> {
    let a = analyze(text);
    part_ranges(text, a.encoding, a.units)
        .into_iter()
        .map(|r| text[r].to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units of one part in the given encoding.
    fn part_units(part: &str, enc: Encoding) -> usize {
        part.chars().map(|c| weight(c, enc)).sum()
    }

    /// Every basic-table character (0x00..=0x7F except ESC), in table order.
    const BASIC_TABLE: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
        ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

    #[test]
    fn encoding_names() {
        assert_eq!(Encoding::Gsm7.as_str(), "GSM-7");
        assert_eq!(Encoding::Ucs2.as_str(), "UCS-2");
    }

    #[test]
    fn empty_text() {
        let a = analyze("");
        assert_eq!(a.encoding, Encoding::Gsm7);
        assert_eq!((a.chars, a.units, a.segments), (0, 0, 0));
        assert!(a.ucs2_forcing.is_empty());
        assert!(a.extension_chars.is_empty());
        assert!(split("").is_empty());
    }

    #[test]
    fn full_basic_table_is_gsm7_one_septet_each() {
        // 128 code points minus ESC; the line continuation in the const eats
        // the leading whitespace of the second line.
        assert_eq!(BASIC_TABLE.chars().count(), 127);
        let a = analyze(BASIC_TABLE);
        assert_eq!(a.encoding, Encoding::Gsm7);
        assert_eq!(a.units, 127);
        assert_eq!(a.segments, 1);
        assert!(a.ucs2_forcing.is_empty());
        assert!(a.extension_chars.is_empty());
    }

    #[test]
    fn full_extension_table_counts_double() {
        let ext = "\u{0C}^{}\\[~]|€";
        let a = analyze(ext);
        assert_eq!(a.encoding, Encoding::Gsm7);
        assert_eq!(a.chars, 10);
        assert_eq!(a.units, 20);
        assert_eq!(a.extension_chars, ext.chars().collect::<Vec<_>>());
        assert!(a.ucs2_forcing.is_empty());
    }

    #[test]
    fn gsm7_160_is_one_segment_161_is_two() {
        let t = "a".repeat(160);
        let a = analyze(&t);
        assert_eq!((a.encoding, a.units, a.segments), (Encoding::Gsm7, 160, 1));
        assert_eq!(split(&t), vec![t.clone()]);

        let t = "a".repeat(161);
        let a = analyze(&t);
        assert_eq!((a.units, a.segments), (161, 2));
        let parts = split(&t);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].len(), 153);
        assert_eq!(parts[1].len(), 8);
    }

    #[test]
    fn gsm7_two_part_boundary_306_307() {
        assert_eq!(analyze(&"x".repeat(306)).segments, 2);
        assert_eq!(analyze(&"x".repeat(307)).segments, 3);
        let parts = split(&"x".repeat(307));
        assert_eq!(
            parts.iter().map(String::len).collect::<Vec<_>>(),
            [153, 153, 1]
        );
    }

    #[test]
    fn euro_counts_two_septets() {
        let a = analyze(&"€".repeat(80));
        assert_eq!(a.encoding, Encoding::Gsm7);
        assert_eq!((a.chars, a.units, a.segments), (80, 160, 1));
        assert_eq!(a.extension_chars, vec!['€']);

        let t = "€".repeat(81);
        let a = analyze(&t);
        assert_eq!((a.chars, a.units, a.segments), (81, 162, 2));
        let parts = split(&t);
        // 76 € = 152 septets; the 77th would straddle 153.
        assert_eq!(parts[0].chars().count(), 76);
        assert_eq!(parts[1].chars().count(), 5);
    }

    #[test]
    fn extension_char_at_153_moves_to_next_part() {
        let t = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let parts = split(&t);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], "a".repeat(152));
        assert_eq!(parts[1], format!("€{}", "b".repeat(10)));
        assert_eq!(analyze(&t).segments, 2);
    }

    #[test]
    fn straddling_extension_char_adds_a_segment() {
        // 152 + 2 + 152 = 306 septets: naive ceil(306/153) = 2, real = 3.
        let t = format!("{}{{{}", "a".repeat(152), "a".repeat(152));
        let a = analyze(&t);
        assert_eq!(a.units, 306);
        assert_eq!(a.segments, 3);
        let parts = split(&t);
        assert_eq!(
            parts
                .iter()
                .map(|p| part_units(p, Encoding::Gsm7))
                .collect::<Vec<_>>(),
            [152, 153, 1]
        );
        assert!(parts[1].starts_with('{'));
    }

    #[test]
    fn capital_e_grave_forces_ucs2_and_is_listed() {
        let a = analyze("È previsto un allerta rossa");
        assert_eq!(a.encoding, Encoding::Ucs2);
        assert_eq!(a.ucs2_forcing, vec!['È']);
        assert_eq!(a.units, a.chars);
    }

    #[test]
    fn other_italian_capitals_force_ucs2() {
        for c in ['À', 'Ì', 'Ò', 'Ù', 'È'] {
            let a = analyze(&format!("abc{c}"));
            assert_eq!(a.encoding, Encoding::Ucs2, "{c}");
            assert_eq!(a.ucs2_forcing, vec![c]);
        }
    }

    #[test]
    fn typographic_quotes_force_ucs2() {
        let a = analyze("L’allerta è “rossa”");
        assert_eq!(a.encoding, Encoding::Ucs2);
        assert_eq!(a.ucs2_forcing, vec!['’', '“', '”']);
        assert_eq!(analyze("L'allerta è \"rossa\"").encoding, Encoding::Gsm7);
    }

    #[test]
    fn italian_lowercase_accents_stay_gsm7() {
        let a = analyze("è é ù ì ò à: perché già più così però");
        assert_eq!(a.encoding, Encoding::Gsm7);
        assert!(a.ucs2_forcing.is_empty());
        assert_eq!(a.units, a.chars);
    }

    #[test]
    fn non_gsm_lookalikes_force_ucs2() {
        // Backtick, tab, lowercase ç, ê and Greek lowercase are not in 03.38.
        for c in ['`', '\t', 'ç', 'ê', 'α'] {
            assert_eq!(analyze(&c.to_string()).encoding, Encoding::Ucs2, "{c:?}");
        }
    }

    #[test]
    fn ucs2_distinct_forcing_chars_in_first_appearance_order() {
        let a = analyze("ÈxÀÈ’À€");
        assert_eq!(a.ucs2_forcing, vec!['È', 'À', '’']);
        assert_eq!(a.extension_chars, vec!['€']);
        // In UCS-2 the euro sign is a single unit.
        assert_eq!(a.units, 7);
    }

    #[test]
    fn ucs2_70_is_one_segment_71_is_two() {
        let t = format!("È{}", "a".repeat(69));
        let a = analyze(&t);
        assert_eq!((a.encoding, a.units, a.segments), (Encoding::Ucs2, 70, 1));

        let t = format!("È{}", "a".repeat(70));
        let a = analyze(&t);
        assert_eq!((a.units, a.segments), (71, 2));
        let parts = split(&t);
        assert_eq!(parts[0].chars().count(), 67);
        assert_eq!(parts[1].chars().count(), 4);
    }

    #[test]
    fn emoji_counts_two_units() {
        let a = analyze("🚨");
        assert_eq!(a.encoding, Encoding::Ucs2);
        assert_eq!((a.chars, a.units, a.segments), (1, 2, 1));
        assert_eq!(a.ucs2_forcing, vec!['🚨']);
    }

    #[test]
    fn emoji_at_67_boundary_is_not_split() {
        // 66 units, then a 2-unit emoji that would straddle 67.
        let t = format!("È{}🚨{}", "a".repeat(65), "b".repeat(10));
        let a = analyze(&t);
        assert_eq!(a.units, 78);
        let parts = split(&t);
        assert_eq!(parts.len(), 2);
        assert_eq!(a.segments, 2);
        assert_eq!(part_units(&parts[0], Encoding::Ucs2), 66);
        assert!(parts[1].starts_with('🚨'));
        assert_eq!(parts.concat(), t);
    }

    #[test]
    fn straddling_emoji_adds_a_segment() {
        // 66 + 2 + 66 = 134 units: naive ceil(134/67) = 2, real = 3.
        let t = format!("È{}🌊{}", "a".repeat(65), "a".repeat(66));
        let a = analyze(&t);
        assert_eq!(a.units, 134);
        assert_eq!(a.segments, 3);
        assert_eq!(split(&t).len(), 3);
    }

    /// Tiny deterministic PRNG (xorshift64) for the property test.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    fn check_split_invariants(t: &str) {
        let a = analyze(t);
        let parts = split(t);
        assert_eq!(parts.concat(), t, "concat mismatch for {t:?}");
        assert_eq!(parts.len(), a.segments, "segments mismatch for {t:?}");
        let (single, part) = match a.encoding {
            Encoding::Gsm7 => (GSM7_SINGLE, GSM7_PART),
            Encoding::Ucs2 => (UCS2_SINGLE, UCS2_PART),
        };
        let limit = if parts.len() <= 1 { single } else { part };
        let mut total = 0;
        for p in &parts {
            assert!(!p.is_empty());
            let u = part_units(p, a.encoding);
            assert!(u <= limit, "part of {u} units over {limit}");
            total += u;
        }
        assert_eq!(total, a.units);
        if a.encoding == Encoding::Ucs2 {
            let utf16: usize = parts.iter().map(|p| p.encode_utf16().count()).sum();
            assert_eq!(utf16, t.encode_utf16().count());
        }
    }

    #[test]
    fn split_concat_roundtrip_property() {
        let fixed = [
            String::new(),
            "Allerta meteo: codice arancione.".to_owned(),
            "a".repeat(1000),
            "€".repeat(500),
            format!("{}{}", "x".repeat(153), "[]".repeat(77)),
            "🚨".repeat(100),
            format!("È{}", "🌊a".repeat(90)),
            BASIC_TABLE.repeat(5),
        ];
        for t in &fixed {
            check_split_invariants(t);
        }

        let pools: [&[char]; 3] = [
            &['a', ' ', 'è', '€', '{', '\n', 'Δ', '|'],
            &['a', 'È', '🚨', '’', ' ', '€', 'à'],
            &['b', '🌊', '👍'],
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for pool in pools {
            for _ in 0..200 {
                let len = (next(&mut state) % 400) as usize;
                let t: String = (0..len)
                    .map(|_| pool[(next(&mut state) % pool.len() as u64) as usize])
                    .collect();
                check_split_invariants(&t);
            }
        }
    }
}
