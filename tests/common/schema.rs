//! The ledger's schema as both databases describe it, and what differs
//! (tests/pg_schema.rs). SQLite is read with its table-valued pragmas,
//! PostgreSQL from information_schema and pg_catalog; both become the same
//! [`Schema`], and [`differences`] names every table and column where
//! PostgreSQL does not store what SQLite code binds and reads (SPEC §18:
//! one ledger code for both).
//!
//! Included with `#[path = "common/schema.rs"] mod schema;`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

/// Tables only one side has by design: SQLite's own (`sqlite_sequence`
/// for AUTOINCREMENT) and PostgreSQL's migration record (SQLite keeps its
/// version in `user_version`).
const PG_ONLY: &[&str] = &["schema_version"];

/// Tables the ledger's SQL orders by SQLite's implicit `rowid`: on
/// PostgreSQL they need the explicit `rowid` column.
pub const NEED_ROWID: &[&str] = &["alerts", "plan_pending", "voice_calls"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// SQLite: the declared type (`INTEGER`); PostgreSQL: `data_type`.
    pub ty: String,
    pub not_null: bool,
    /// The default, normalised (`'pending'`, `0`), if any.
    pub default: Option<String>,
    /// PostgreSQL: `a` (ALWAYS) or `d` (BY DEFAULT) for an identity column.
    pub identity: Option<char>,
    /// PostgreSQL text columns: their collation.
    pub collation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub columns: Vec<String>,
    pub unique: bool,
    /// A partial index's WHERE clause, normalised.
    pub predicate: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub columns: BTreeMap<String, Column>,
    pub primary_key: Vec<String>,
    /// Column lists of UNIQUE constraints and unique indexes (not the key).
    pub uniques: BTreeSet<Vec<String>>,
    /// (column, referenced table, referenced column).
    pub foreign_keys: BTreeSet<(String, String, String)>,
    /// Indexes made with CREATE INDEX, by name.
    pub indexes: BTreeMap<String, Index>,
    /// CHECK constraints, each as its sorted words and literals (see
    /// [`check_words`]): enough to see a value or a column missing.
    pub checks: BTreeSet<String>,
    /// SQLite: the table has an implicit rowid (not WITHOUT ROWID, no
    /// INTEGER PRIMARY KEY standing for it).
    pub implicit_rowid: bool,
}

pub type Schema = BTreeMap<String, Table>;

/// `'pending'::text` → `'pending'`, `(0)` → `0`.
fn normalise_default(d: &str) -> String {
    let mut d = d.trim();
    while d.starts_with('(') && d.ends_with(')') {
        d = d[1..d.len() - 1].trim();
    }
    for cast in ["::text", "::bigint", "::integer", "::double precision"] {
        if let Some(s) = d.strip_suffix(cast) {
            return s.to_owned();
        }
    }
    d.to_owned()
}

/// `(state = 'sending'::text)` and `state = 'sending'` → `state='sending'`.
fn normalise_predicate(p: &str) -> String {
    p.replace("::text", "")
        .replace("::bigint", "")
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '(' | ')' | '"'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// A CHECK's column names, literals and comparison operators, sorted,
/// without the words either database writes differently: SQLite keeps
/// `state IN ('a', 'b')` as written, PostgreSQL shows it as
/// `CHECK ((state = ANY (ARRAY['a'::text, 'b'::text])))`.
pub fn check_words(expression: &str) -> String {
    const NOISE: &[&str] = &["check", "in", "any", "array", "text", "bigint", "integer"];
    let mut words = Vec::new();
    let mut chars = expression.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            let mut literal = String::from("'");
            while let Some(c) = chars.next() {
                literal.push(c);
                if c == '\'' {
                    if chars.peek() == Some(&'\'') {
                        chars.next();
                    } else {
                        break;
                    }
                }
            }
            words.push(literal);
        } else if c.is_alphanumeric() || c == '_' {
            let mut word = c.to_lowercase().collect::<String>();
            while let Some(&c) = chars.peek().filter(|c| c.is_alphanumeric() || **c == '_') {
                word.extend(c.to_lowercase());
                chars.next();
            }
            // `x = ANY (ARRAY[…])` is how PostgreSQL shows `x IN (…)`.
            if word == "any" && words.last().is_some_and(|w| w == "=") {
                words.pop();
            }
            if !NOISE.contains(&word.as_str()) {
                words.push(word);
            }
        } else if matches!(c, '<' | '>' | '=' | '!') {
            let mut op = String::from(c);
            while let Some(&c) = chars.peek().filter(|c| matches!(c, '<' | '>' | '=')) {
                op.push(c);
                chars.next();
            }
            // `==` and `=` are the same test; `!=` is PostgreSQL's `<>`.
            words.push(match op.as_str() {
                "==" => "=".into(),
                "!=" => "<>".into(),
                _ => op,
            });
        }
    }
    words.sort();
    words.join(" ")
}

/// The CHECK clauses of a CREATE TABLE as SQLite keeps it (comments
/// dropped), each the balanced parentheses after `CHECK`.
fn sqlite_checks(create: &str) -> Vec<String> {
    let text: String = create
        .lines()
        .map(|l| l.split_once("--").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    let upper = text.to_ascii_uppercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = upper[from..].find("CHECK").map(|i| i + from) {
        from = at + 5;
        let before = upper[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(open) = text[from..].find('(').map(|i| i + from) else {
            break;
        };
        let mut depth = 0;
        let mut quoted = false;
        for (i, c) in text[open..].char_indices() {
            match c {
                '\'' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted => {
                    depth -= 1;
                    if depth == 0 {
                        out.push(text[open..=open + i].to_owned());
                        from = open + i;
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    out
}

pub fn sqlite(conn: &rusqlite::Connection) -> rusqlite::Result<Schema> {
    let mut schema = Schema::new();
    let tables: Vec<(String, bool)> = conn
        .prepare(
            "SELECT name, wr FROM pragma_table_list
             WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%'",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? == 1)))?
        .collect::<Result<_, _>>()?;
    for (name, without_rowid) in tables {
        let mut table = Table::default();
        let mut key: Vec<(i64, String)> = Vec::new();
        let mut stmt = conn
            .prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)")?;
        let mut rows = stmt.query([&name])?;
        while let Some(r) = rows.next()? {
            let (column, ty): (String, String) = (r.get(0)?, r.get(1)?);
            let pk: i64 = r.get(4)?;
            if pk > 0 {
                key.push((pk, column.clone()));
            }
            let default: Option<String> = r.get(3)?;
            table.columns.insert(
                column,
                Column {
                    ty,
                    // A key's columns are NOT NULL on PostgreSQL; nothing
                    // stores NULL in one on SQLite either.
                    not_null: r.get::<_, i64>(2)? == 1 || pk > 0,
                    default: default.as_deref().map(normalise_default),
                    identity: None,
                    collation: None,
                },
            );
        }
        key.sort();
        table.primary_key = key.into_iter().map(|(_, c)| c).collect();
        let rowid_alias = table.primary_key.len() == 1
            && table.columns[&table.primary_key[0]]
                .ty
                .eq_ignore_ascii_case("INTEGER");
        table.implicit_rowid = !without_rowid && !rowid_alias;

        let indexes: Vec<(String, bool, String, bool)> = conn
            .prepare("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)")?
            .query_map([&name], |r| {
                Ok((
                    r.get(0)?,
                    r.get::<_, i64>(1)? == 1,
                    r.get(2)?,
                    r.get::<_, i64>(3)? == 1,
                ))
            })?
            .collect::<Result<_, _>>()?;
        for (index, unique, origin, partial) in indexes {
            if origin == "pk" {
                continue;
            }
            let columns: Vec<String> = conn
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?
                .query_map([&index], |r| {
                    Ok(r.get::<_, Option<String>>(0)?
                        .unwrap_or_else(|| "<expression>".into()))
                })?
                .collect::<Result<_, _>>()?;
            if unique && !partial {
                table.uniques.insert(columns.clone());
            }
            if origin == "c" {
                let predicate = if partial {
                    let sql: String = conn.query_row(
                        "SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?1",
                        [&index],
                        |r| r.get(0),
                    )?;
                    let at = sql.to_ascii_uppercase().rfind(" WHERE ").map(|i| i + 7);
                    at.map(|i| normalise_predicate(&sql[i..]))
                } else {
                    None
                };
                table.indexes.insert(
                    index,
                    Index {
                        columns,
                        unique,
                        predicate,
                    },
                );
            }
        }

        let fks: Vec<(String, String, Option<String>)> = conn
            .prepare("SELECT \"from\", \"table\", \"to\" FROM pragma_foreign_key_list(?1)")?
            .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (from, to_table, to) in fks {
            table
                .foreign_keys
                .insert((from, to_table, to.unwrap_or_else(|| "<its key>".into())));
        }
        let create: String = conn.query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [&name],
            |r| r.get(0),
        )?;
        table.checks = sqlite_checks(&create)
            .iter()
            .map(|c| check_words(c))
            .collect();
        schema.insert(name, table);
    }
    Ok(schema)
}

pub async fn postgres(
    client: &impl tokio_postgres::GenericClient,
) -> Result<Schema, tokio_postgres::Error> {
    let mut schema = Schema::new();
    for r in client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            &[],
        )
        .await?
    {
        let name: String = r.get(0);
        if !PG_ONLY.contains(&name.as_str()) {
            schema.insert(name, Table::default());
        }
    }
    for r in client
        .query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, NULL),
                    a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity::text,
                    co.collname::text
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 0
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
               AND a.attnum > 0 AND NOT a.attisdropped",
            &[],
        )
        .await?
    {
        let Some(table) = schema.get_mut(&r.get::<_, String>(0)) else {
            continue;
        };
        let default: Option<String> = r.get(4);
        let identity: String = r.get(5);
        table.columns.insert(
            r.get(1),
            Column {
                ty: r.get(2),
                not_null: r.get(3),
                default: default.as_deref().map(normalise_default),
                identity: identity.chars().next(),
                collation: r.get(6),
            },
        );
    }
    // Every index: the key and UNIQUE constraints' ones as well as those
    // made with CREATE INDEX (`constraint` says which).
    for r in client
        .query(
            "SELECT t.relname::text, i.relname::text, ix.indisprimary, ix.indisunique,
                    pg_get_expr(ix.indpred, ix.indrelid),
                    ARRAY(SELECT pg_get_indexdef(ix.indexrelid, k, false)
                          FROM generate_series(1, ix.indnkeyatts) AS k ORDER BY k),
                    EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = ix.indexrelid)
             FROM pg_index ix
             JOIN pg_class t ON t.oid = ix.indrelid
             JOIN pg_class i ON i.oid = ix.indexrelid
             WHERE t.relnamespace = 'public'::regnamespace",
            &[],
        )
        .await?
    {
        let Some(table) = schema.get_mut(&r.get::<_, String>(0)) else {
            continue;
        };
        let (primary, unique, constraint): (bool, bool, bool) = (r.get(2), r.get(3), r.get(6));
        let predicate: Option<String> = r.get(4);
        let columns: Vec<String> = r
            .get::<_, Vec<String>>(5)
            .into_iter()
            .map(|c| {
                let c = c.trim_matches('"');
                if c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                    c.to_owned()
                } else {
                    "<expression>".into()
                }
            })
            .collect();
        if primary {
            table.primary_key = columns;
            continue;
        }
        if unique && predicate.is_none() {
            table.uniques.insert(columns.clone());
        }
        if !constraint {
            table.indexes.insert(
                r.get(1),
                Index {
                    columns,
                    unique,
                    predicate: predicate.as_deref().map(normalise_predicate),
                },
            );
        }
    }
    for r in client
        .query(
            "SELECT con.conrelid::regclass::text, a.attname::text,
                    con.confrelid::regclass::text, af.attname::text
             FROM pg_constraint con
             CROSS JOIN LATERAL unnest(con.conkey, con.confkey) AS k(col, fcol)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.col
             JOIN pg_attribute af ON af.attrelid = con.confrelid AND af.attnum = k.fcol
             WHERE con.contype = 'f' AND con.connamespace = 'public'::regnamespace",
            &[],
        )
        .await?
    {
        if let Some(table) = schema.get_mut(&r.get::<_, String>(0)) {
            table.foreign_keys.insert((r.get(1), r.get(2), r.get(3)));
        }
    }
    for r in client
        .query(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid)
             FROM pg_constraint WHERE contype = 'c' AND connamespace = 'public'::regnamespace",
            &[],
        )
        .await?
    {
        if let Some(table) = schema.get_mut(&r.get::<_, String>(0)) {
            table.checks.insert(check_words(&r.get::<_, String>(1)));
        }
    }
    Ok(schema)
}

/// The PostgreSQL type that stores what SQLite code binds as `declared`.
fn pg_type_for(declared: &str) -> Option<&'static str> {
    match declared.to_ascii_uppercase().as_str() {
        "INTEGER" => Some("bigint"),
        "TEXT" => Some("text"),
        "REAL" => Some("double precision"),
        "BLOB" => Some("bytea"),
        _ => None,
    }
}

fn list(columns: &[String]) -> String {
    format!("({})", columns.join(", "))
}

/// Every way PostgreSQL's schema is not SQLite's, one line each, naming
/// the table and column (empty: they match).
pub fn differences(sqlite: &Schema, pg: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for name in pg.keys().filter(|t| !sqlite.contains_key(*t)) {
        out.push(format!("table {name}: only in PostgreSQL"));
    }
    for (name, lite) in sqlite {
        let Some(table) = pg.get(name) else {
            out.push(format!("table {name}: only in SQLite"));
            continue;
        };
        compare_columns(name, lite, table, &mut out);
        compare_keys(name, lite, table, &mut out);
    }
    out
}

fn compare_columns(name: &str, lite: &Table, pg: &Table, out: &mut Vec<String>) {
    let integer_key =
        (lite.primary_key.len() == 1 && !lite.implicit_rowid).then(|| lite.primary_key[0].as_str());
    for (column, l) in &lite.columns {
        let at = format!("{name}.{column}");
        let want = pg_type_for(&l.ty);
        if want.is_none() {
            out.push(format!(
                "{at}: SQLite declares `{}`; declare INTEGER, TEXT, REAL or BLOB",
                l.ty
            ));
        }
        let Some(p) = pg.columns.get(column) else {
            out.push(format!("{at}: only in SQLite"));
            continue;
        };
        if let Some(want) = want
            && want != p.ty
        {
            out.push(format!(
                "{at}: SQLite {} is PostgreSQL {want}, found {}",
                l.ty, p.ty
            ));
        }
        if l.not_null != p.not_null {
            let null = |n| if n { "NOT NULL" } else { "nullable" };
            out.push(format!(
                "{at}: {} on SQLite, {} on PostgreSQL",
                null(l.not_null),
                null(p.not_null)
            ));
        }
        if l.default != p.default {
            out.push(format!(
                "{at}: default {:?} on SQLite, {:?} on PostgreSQL",
                l.default, p.default
            ));
        }
        if p.ty == "text" && p.collation.as_deref() != Some("C") {
            out.push(format!(
                "{at}: text without COLLATE \"C\" on PostgreSQL (collation {:?}): \
                 it must compare bytewise, as SQLite does",
                p.collation
            ));
        }
        let want_identity = (integer_key == Some(column.as_str())).then_some('d');
        if p.identity != want_identity {
            out.push(format!(
                "{at}: identity {:?} on PostgreSQL, want {:?} (INTEGER PRIMARY KEY → \
                 GENERATED BY DEFAULT AS IDENTITY)",
                p.identity, want_identity
            ));
        }
    }
    for column in pg.columns.keys().filter(|c| !lite.columns.contains_key(*c)) {
        let at = format!("{name}.{column}");
        if column != "rowid" {
            out.push(format!("{at}: only in PostgreSQL"));
        } else if !lite.implicit_rowid {
            out.push(format!(
                "{at}: on PostgreSQL, but the SQLite table has no implicit rowid"
            ));
        } else {
            let p = &pg.columns[column];
            if p.ty != "bigint" || p.identity != Some('a') {
                out.push(format!(
                    "{at}: must be bigint GENERATED ALWAYS AS IDENTITY on PostgreSQL"
                ));
            }
        }
    }
    if NEED_ROWID.contains(&name) && !pg.columns.contains_key("rowid") {
        out.push(format!(
            "{name}.rowid: missing on PostgreSQL (the ledger orders {name} by rowid)"
        ));
    }
}

fn compare_keys(name: &str, lite: &Table, pg: &Table, out: &mut Vec<String>) {
    if lite.primary_key != pg.primary_key {
        out.push(format!(
            "{name}: primary key {} on SQLite, {} on PostgreSQL",
            list(&lite.primary_key),
            list(&pg.primary_key)
        ));
    }
    for (only, a, b) in [("SQLite", lite, pg), ("PostgreSQL", pg, lite)] {
        for u in a.uniques.difference(&b.uniques) {
            out.push(format!("{name}{}: UNIQUE only in {only}", list(u)));
        }
        for (from, table, to) in a.foreign_keys.difference(&b.foreign_keys) {
            out.push(format!(
                "{name}.{from}: foreign key to {table}.{to} only in {only}"
            ));
        }
        for check in a.checks.difference(&b.checks) {
            out.push(format!("{name}: CHECK [{check}] only in {only}"));
        }
        for (index, i) in &a.indexes {
            if !b.indexes.contains_key(index) {
                out.push(format!(
                    "{name}{}: index {index} only in {only}",
                    list(&i.columns)
                ));
            }
        }
    }
    for (index, l) in &lite.indexes {
        if let Some(p) = pg.indexes.get(index)
            && l != p
        {
            out.push(format!(
                "{name}{}: index {index} is {l:?} on SQLite, {p:?} on PostgreSQL",
                list(&l.columns)
            ));
        }
    }
}
