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
    // `numbered` leaves text and numbers alternating around its markers.
    let marked = numbered(sql);
    let number = |part: &str| -> usize { part.parse().expect("a marked number") };
    let mut used: Vec<usize> = marked
        .split('\u{0}')
        .skip(1)
        .step_by(2)
        .map(number)
        .collect();
    used.sort_unstable();
    used.dedup();
    let mut out = String::with_capacity(marked.len());
    for (i, part) in marked.split('\u{0}').enumerate() {
        if i % 2 == 0 {
            out.push_str(part);
        } else {
            let k = used.binary_search(&number(part)).expect("a used number") + 1;
            out.push('$');
            out.push_str(&k.to_string());
        }
    }
    Dollars { sql: out, used }
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
