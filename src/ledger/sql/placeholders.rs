//! SQLite's parameters (`?1`, `?`) as PostgreSQL's (`$1`), so one SQL text
//! serves both. Quoted strings, quoted identifiers and comments are copied
//! as they are. A bare `?` takes the number after the largest one so far,
//! as in SQLite.
//!
//! PostgreSQL wants every parameter `$1..$n` used in the statement, while
//! SQLite allows gaps (`?1`, `?11`): the numbers used are renumbered densely
//! in their order, and [`Dollars::used`] says which SQLite parameter each
//! `$k` is.

pub struct Dollars {
    pub sql: String,
    /// `used[k - 1]` is the SQLite number (1-based) of `$k`.
    pub used: Vec<usize>,
}

impl Dollars {
    /// The values PostgreSQL gets, from SQLite's numbering.
    pub fn pick<T: Clone>(&self, values: &[T]) -> Option<Vec<T>> {
        self.used
            .iter()
            .map(|n| values.get(n - 1).cloned())
            .collect()
    }
}

pub fn to_dollars(sql: &str) -> Dollars {
    let numbered = numbered(sql);
    let mut used: Vec<usize> = Vec::new();
    let mut out = String::with_capacity(numbered.len());
    let mut rest = numbered.as_str();
    while let Some(at) = rest.find('\u{0}') {
        out.push_str(&rest[..at]);
        let end = rest[at + 1..].find('\u{0}').expect("closing marker") + at + 1;
        let n: usize = rest[at + 1..end].parse().expect("a number");
        let k = match used.iter().position(|u| *u == n) {
            Some(i) => i + 1,
            None => {
                used.push(n);
                used.len()
            }
        };
        out.push('$');
        out.push_str(&k.to_string());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    // Dense numbering in the order of the SQLite numbers, so `$k` keeps
    // the order of the parameters (readable in the server's logs).
    let mut sorted = used.clone();
    sorted.sort_unstable();
    if sorted != used {
        let remap: Vec<usize> = used
            .iter()
            .map(|n| sorted.iter().position(|s| s == n).expect("present") + 1)
            .collect();
        out = renumber(&out, &remap);
        used = sorted;
    }
    Dollars { sql: out, used }
}

/// `$k` → `$remap[k-1]`, outside quotes (only our own `$k` are there).
fn renumber(sql: &str, remap: &[usize]) -> String {
    let mut out = String::with_capacity(sql.len());
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'$' => {
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                if digits > 0 {
                    let k: usize = sql[i + 1..i + 1 + digits].parse().unwrap_or(0);
                    out.push_str(&sql[copied..i]);
                    out.push('$');
                    out.push_str(&remap.get(k - 1).copied().unwrap_or(k).to_string());
                    i += 1 + digits;
                    copied = i;
                    continue;
                }
            }
            None => {}
        }
        i += 1;
    }
    out.push_str(&sql[copied..]);
    out
}

/// SQLite's parameters marked as `\0N\0` (every bare `?` numbered).
fn numbered(sql: &str) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut largest = 0usize;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        // A doubled quote is an escaped one.
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'?' => {
                out.push_str(&sql[copied..i]);
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let n = if digits == 0 {
                    largest + 1
                } else {
                    sql[i + 1..i + 1 + digits].parse().unwrap_or(0)
                };
                largest = largest.max(n);
                out.push('\u{0}');
                out.push_str(&n.to_string());
                out.push('\u{0}');
                i += 1 + digits;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::to_dollars;

    fn sql(s: &str) -> String {
        to_dollars(s).sql
    }

    #[test]
    fn numbered_and_bare_parameters_become_dollars() {
        assert_eq!(
            sql("SELECT a FROM t WHERE b = ?1 AND c = ?2 AND d = ?1"),
            "SELECT a FROM t WHERE b = $1 AND c = $2 AND d = $1"
        );
        assert_eq!(sql("VALUES (?, ?, ?)"), "VALUES ($1, $2, $3)");
    }

    #[test]
    fn gaps_are_closed_and_the_values_picked_to_match() {
        let d = to_dollars("WHERE a = ?12 AND b = ?1 AND c = ?3 AND d = ?12 AND e = ?");
        assert_eq!(
            d.sql,
            "WHERE a = $3 AND b = $1 AND c = $2 AND d = $3 AND e = $4"
        );
        assert_eq!(d.used, vec![1, 3, 12, 13]);
        let values: Vec<i32> = (1..=13).collect();
        assert_eq!(d.pick(&values), Some(vec![1, 3, 12, 13]));
        assert_eq!(d.pick(&values[..5]), None);
    }

    #[test]
    fn quoted_text_and_comments_are_left_alone() {
        assert_eq!(
            sql("SELECT '?1', \"a?\" -- what?\n FROM t WHERE x = ? /* ?2 */"),
            "SELECT '?1', \"a?\" -- what?\n FROM t WHERE x = $1 /* ?2 */"
        );
        assert_eq!(
            sql("SELECT 'it''s ?' WHERE y = ?1"),
            "SELECT 'it''s ?' WHERE y = $1"
        );
    }
}
