//! The one SQL interface of the ledger, over SQLite (rusqlite, in process)
//! or PostgreSQL (a connection on its own thread, see `pg.rs`). The ledger
//! writes each statement once, in the SQL both understand, with SQLite's
//! `?N` parameters (rewritten to `$N` for PostgreSQL); the few statements
//! that differ branch on [`Conn::is_postgres`]. The method names are
//! rusqlite's, so the ledger reads as it did.
//!
//! Transactions: [`Behavior::Immediate`] is SQLite's single writer; on
//! PostgreSQL it takes one advisory lock for the transaction, so the
//! read-then-write logic the ledger relies on is serialised the same way
//! across every process of the deployment. The delivery hot path uses
//! [`Behavior::Deferred`] with row locks instead (`FOR UPDATE SKIP LOCKED`).

mod pg;
mod placeholders;
mod value;

use std::cell::{Cell, RefCell};

pub use pg::PgConn;
pub use value::{FromValue, Numbered, Params, ToValue, Value, ValueRef};

use value::conversion;

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Postgres(String),
    /// The connection died, or the server cannot serve it now (see
    /// `pg::transient`): trying again later may succeed.
    #[error("the database connection is lost: {0}")]
    Lost(String),
    #[error("query returned no rows")]
    NoRows,
    #[error("column {column}: {message}")]
    Conversion { column: String, message: String },
}

impl SqlError {
    /// The database went away (not a refusal of this statement): worth
    /// waiting and trying again.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Self::Lost(_))
    }
}

pub type Result<T, E = SqlError> = std::result::Result<T, E>;

/// `Ok(None)` for a query that found no row.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(SqlError::NoRows) | Err(SqlError::Sqlite(rusqlite::Error::QueryReturnedNoRows)) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// How a transaction begins (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    Deferred,
    Immediate,
}

/// Key of the advisory lock that serialises immediate transactions on
/// PostgreSQL ("allerta!" in ASCII).
const WRITER_LOCK: i64 = 0x616c_6c65_7274_6121;

enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres(PgConn),
}

pub struct Conn {
    backend: Backend,
    changes: Cell<u64>,
    /// Statements [`Stmt::queue`]d on PostgreSQL, not sent yet: sent
    /// together before anything else is (and so before a commit).
    queued: RefCell<Vec<(String, Vec<Value>)>>,
}

/// Queued statements are sent when this many wait.
const QUEUE_LIMIT: usize = 2000;

impl Conn {
    pub fn sqlite(conn: rusqlite::Connection) -> Self {
        Self {
            backend: Backend::Sqlite(conn),
            changes: Cell::new(0),
            queued: RefCell::new(Vec::new()),
        }
    }

    pub fn postgres(conn: PgConn) -> Self {
        Self {
            backend: Backend::Postgres(conn),
            changes: Cell::new(0),
            queued: RefCell::new(Vec::new()),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// The SQLite connection, for what only SQLite has (pragmas).
    pub fn as_sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.backend {
            Backend::Sqlite(c) => Some(c),
            Backend::Postgres(_) => None,
        }
    }

    /// An SQL expression for the database's own clock, in microseconds
    /// since the epoch (the same for every worker whatever its clock says:
    /// what leases and send slots are measured by on PostgreSQL).
    pub fn clock_us(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
            Backend::Postgres(_) => {
                "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000 AS bigint)"
            }
        }
    }

    /// An SQL expression giving a fresh random token of 32 lowercase hex
    /// digits (a delivery's secret for its links): 128 random bits on
    /// SQLite, a version 4 UUID's 122 from the server's strong random
    /// source on PostgreSQL.
    pub fn random_token(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "lower(hex(randomblob(16)))",
            Backend::Postgres(_) => "replace(CAST(gen_random_uuid() AS text), '-', '')",
        }
    }

    /// `FROM` items listing the text values of a JSON array (a parameter or
    /// a column), as a one-column table whose column is `value`.
    pub fn json_each(&self, array: &str) -> String {
        match self.backend {
            Backend::Sqlite(_) => format!("json_each({array})"),
            Backend::Postgres(_) => format!("json_array_elements_text(CAST({array} AS json))"),
        }
    }

    /// The text at `key` of a JSON object (a column), or NULL.
    pub fn json_text(&self, object: &str, key: &str) -> String {
        match self.backend {
            Backend::Sqlite(_) => format!("CAST(json_extract({object}, '$.' || {key}) AS text)"),
            Backend::Postgres(_) => format!("(CAST({object} AS json) ->> {key})"),
        }
    }

    /// Rows changed by the last `execute`.
    pub fn changes(&self) -> u64 {
        self.changes.get()
    }

    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Backend::Postgres(c) => {
                if sql.trim().eq_ignore_ascii_case("ROLLBACK") {
                    self.queued.borrow_mut().clear();
                } else {
                    self.flush()?;
                }
                c.batch(sql.to_owned())
            }
        }
    }

    /// Sends the queued statements (PostgreSQL); their first error.
    fn flush(&self) -> Result<()> {
        let Backend::Postgres(c) = &self.backend else {
            return Ok(());
        };
        let items = std::mem::take(&mut *self.queued.borrow_mut());
        if items.is_empty() {
            return Ok(());
        }
        c.pipeline(items)
    }

    pub fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>> {
        Ok(Stmt {
            conn: self,
            kind: match &self.backend {
                Backend::Sqlite(c) => StmtKind::Sqlite(c.prepare(sql)?),
                Backend::Postgres(_) => StmtKind::Postgres(placeholders::to_dollars(sql)),
            },
        })
    }

    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_>> {
        Ok(Stmt {
            conn: self,
            kind: match &self.backend {
                Backend::Sqlite(c) => StmtKind::SqliteCached(c.prepare_cached(sql)?),
                Backend::Postgres(_) => StmtKind::Postgres(placeholders::to_dollars(sql)),
            },
        })
    }

    pub fn transaction(&mut self) -> Result<Tx<'_>> {
        self.unchecked_transaction()
    }

    pub fn transaction_with_behavior(&mut self, behavior: Behavior) -> Result<Tx<'_>> {
        self.begin(behavior)
    }

    /// A transaction through a shared reference (rusqlite's name): the
    /// caller makes sure no other transaction is open on this connection.
    pub fn unchecked_transaction(&self) -> Result<Tx<'_>> {
        self.begin(Behavior::Deferred)
    }

    /// An immediate transaction through a shared reference (see
    /// [`Conn::unchecked_transaction`]).
    pub fn unchecked_immediate_transaction(&self) -> Result<Tx<'_>> {
        self.begin(Behavior::Immediate)
    }

    fn begin(&self, behavior: Behavior) -> Result<Tx<'_>> {
        match (&self.backend, behavior) {
            (Backend::Sqlite(c), Behavior::Deferred) => c.execute_batch("BEGIN DEFERRED")?,
            (Backend::Sqlite(c), Behavior::Immediate) => c.execute_batch("BEGIN IMMEDIATE")?,
            (Backend::Postgres(c), Behavior::Deferred) => c.batch("BEGIN".into())?,
            (Backend::Postgres(c), Behavior::Immediate) => {
                c.batch("BEGIN".into())?;
                let tx = Tx {
                    conn: self,
                    done: false,
                };
                tx.query_row(
                    "SELECT pg_advisory_xact_lock(?1)",
                    [WRITER_LOCK],
                    |_| Ok(()),
                )?;
                return Ok(tx);
            }
        }
        Ok(Tx {
            conn: self,
            done: false,
        })
    }
}

/// An open transaction; dropped without [`Tx::commit`], it rolls back.
pub struct Tx<'c> {
    conn: &'c Conn,
    done: bool,
}

impl Tx<'_> {
    /// Commits; if that fails (the queued statements were refused, the
    /// connection died) the transaction is rolled back, as rusqlite does,
    /// so the connection is never left inside it.
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        let r = self.conn.execute_batch("COMMIT");
        if r.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        r
    }

    pub fn rollback(mut self) -> Result<()> {
        self.done = true;
        self.conn.execute_batch("ROLLBACK")
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        self.conn
    }
}

enum StmtKind<'c> {
    Sqlite(rusqlite::Statement<'c>),
    SqliteCached(rusqlite::CachedStatement<'c>),
    Postgres(placeholders::Dollars),
}

pub struct Stmt<'c> {
    conn: &'c Conn,
    kind: StmtKind<'c>,
}

/// The values of `params` PostgreSQL gets for `statement`.
fn owned(statement: &placeholders::Dollars, params: &impl Params) -> Result<Vec<Value>> {
    let values: Vec<Value> = params
        .values()
        .into_iter()
        .map(ValueRef::to_owned)
        .collect();
    statement.pick(&values).ok_or_else(|| {
        SqlError::Postgres(format!(
            "the statement uses parameter ?{} but only {} were given",
            statement.used.iter().max().copied().unwrap_or(0),
            values.len()
        ))
    })
}

impl<'c> Stmt<'c> {
    fn sqlite(&mut self) -> Option<&mut rusqlite::Statement<'c>> {
        match &mut self.kind {
            StmtKind::Sqlite(s) => Some(s),
            StmtKind::SqliteCached(s) => Some(s),
            StmtKind::Postgres(_) => None,
        }
    }

    fn pg(&self) -> (&PgConn, &placeholders::Dollars) {
        match (&self.conn.backend, &self.kind) {
            (Backend::Postgres(c), StmtKind::Postgres(sql)) => (c, sql),
            _ => unreachable!("a PostgreSQL statement on a PostgreSQL connection"),
        }
    }

    /// Executes, or on PostgreSQL queues the statement to be sent with
    /// the next ones in one round trip (before any other statement of this
    /// connection, and before a commit): for writes whose count is not
    /// needed. An error shows at the statement that sends the queue.
    pub fn queue<P: Params>(&mut self, params: P) -> Result<()> {
        if self.sqlite().is_some() {
            self.execute(params)?;
            return Ok(());
        }
        let (_, sql) = self.pg();
        let item = (sql.sql.clone(), owned(sql, &params)?);
        let full = {
            let mut queued = self.conn.queued.borrow_mut();
            queued.push(item);
            queued.len() >= QUEUE_LIMIT
        };
        if full {
            self.conn.flush()?;
        }
        Ok(())
    }

    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        self.conn.flush()?;
        let changes = &self.conn.changes;
        let n = if let Some(s) = self.sqlite() {
            let values = params.values();
            s.execute(rusqlite::params_from_iter(values.iter()))? as u64
        } else {
            let (c, sql) = self.pg();
            c.execute(sql.sql.clone(), owned(sql, &params)?)?
        };
        changes.set(n);
        Ok(n as usize)
    }

    pub fn query<P: Params>(&mut self, params: P) -> Result<Rows<'_>> {
        self.conn.flush()?;
        if self.sqlite().is_some() {
            let values = params.values();
            let s = self.sqlite().expect("sqlite");
            Ok(Rows::Sqlite(s.query(rusqlite::params_from_iter(values))?))
        } else {
            let (c, sql) = self.pg();
            let set = c.query(sql.sql.clone(), owned(sql, &params)?)?;
            Ok(Rows::Postgres { set, next: 0 })
        }
    }

    pub fn query_row<T, P, F>(&mut self, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        let mut rows = self.query(params)?;
        match rows.next()? {
            Some(row) => f(&row),
            None => Err(SqlError::NoRows),
        }
    }

    pub fn query_map<T, P, F>(
        &mut self,
        params: P,
        mut f: F,
    ) -> Result<std::vec::IntoIter<Result<T>>>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> Result<T>,
    {
        let mut rows = self.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(f(&row));
        }
        Ok(out.into_iter())
    }

    pub fn exists<P: Params>(&mut self, params: P) -> Result<bool> {
        Ok(self.query(params)?.next()?.is_some())
    }
}

pub enum Rows<'s> {
    Sqlite(rusqlite::Rows<'s>),
    Postgres { set: pg::ResultSet, next: usize },
}

impl Rows<'_> {
    #[allow(clippy::should_implement_trait)] // a lending iterator, as rusqlite's
    pub fn next(&mut self) -> Result<Option<Row<'_>>> {
        match self {
            Self::Sqlite(rows) => Ok(rows.next()?.map(Row::Sqlite)),
            Self::Postgres { set, next } => {
                let Some(values) = set.rows.get(*next) else {
                    return Ok(None);
                };
                *next += 1;
                Ok(Some(Row::Postgres {
                    columns: &set.columns,
                    values,
                }))
            }
        }
    }
}

/// A column's position (rusqlite's `RowIndex`, positions only).
pub trait RowIndex {
    fn index(self) -> usize;
}

impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres {
        columns: &'a [String],
        values: &'a [Value],
    },
}

impl Row<'_> {
    pub fn get<I: RowIndex, T: FromValue>(&self, idx: I) -> Result<T> {
        let idx = idx.index();
        let value = self.get_ref(idx)?;
        T::from_value(value).map_err(|m| match self {
            Self::Postgres { columns, .. } => SqlError::Conversion {
                column: columns.get(idx).cloned().unwrap_or_else(|| idx.to_string()),
                message: m,
            },
            Self::Sqlite(r) => SqlError::Conversion {
                column: r
                    .as_ref()
                    .column_name(idx)
                    .map(str::to_owned)
                    .unwrap_or_else(|_| idx.to_string()),
                message: m,
            },
        })
    }

    pub fn get_ref(&self, idx: usize) -> Result<ValueRef<'_>> {
        match self {
            Self::Sqlite(r) => {
                use rusqlite::types::ValueRef as R;
                Ok(match r.get_ref(idx)? {
                    R::Null => ValueRef::Null,
                    R::Integer(i) => ValueRef::Int(i),
                    R::Real(f) => ValueRef::Real(f),
                    R::Text(t) => ValueRef::Text(
                        std::str::from_utf8(t).map_err(|e| conversion(idx, e.to_string()))?,
                    ),
                    R::Blob(b) => ValueRef::Blob(b),
                })
            }
            Self::Postgres { values, .. } => values
                .get(idx)
                .map(Value::as_ref)
                .ok_or_else(|| conversion(idx, "no such column".into())),
        }
    }
}

/// An error converting a column, for code that parses what it read.
pub fn conversion_error(column: usize, message: impl Into<String>) -> SqlError {
    conversion(column, message.into())
}

/// The ledger's parameters of mixed types (rusqlite's `params!`).
pub use crate::sql_params as params;
