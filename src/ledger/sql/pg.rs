//! The ledger's PostgreSQL connection: one connection owned by a thread of
//! its own, with its own single-threaded tokio runtime. The ledger's code
//! is synchronous (as with SQLite, a call blocks until the database
//! answers); a dedicated thread lets it be called from anywhere, inside
//! an async runtime included, without nesting runtimes.
//!
//! Values cross as SQLite's storage classes: a parameter is converted to
//! the type the server inferred for it, a column to the class the schema
//! mirrors (see `value.rs`). A connection that dies is made again on the
//! next statement, through the URL's hosts (a promoted standby), unless a
//! transaction was open on it: that transaction is lost and said so.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::mpsc::{SyncSender, sync_channel};

use bytes::BytesMut;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Statement};

use super::{SqlError, Value};
use crate::ledger::pg::{PgError, PgOptions};

pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

enum Request {
    Execute {
        sql: String,
        params: Vec<Value>,
        reply: SyncSender<Result<u64, SqlError>>,
    },
    Query {
        sql: String,
        params: Vec<Value>,
        reply: SyncSender<Result<ResultSet, SqlError>>,
    },
    Batch {
        sql: String,
        reply: SyncSender<Result<(), SqlError>>,
    },
    /// Statements sent without waiting for each answer (PostgreSQL runs
    /// them in order): one round trip for all of them.
    Pipeline {
        items: Vec<(String, Vec<Value>)>,
        reply: SyncSender<Result<(), SqlError>>,
    },
}

pub struct PgConn {
    requests: tokio::sync::mpsc::UnboundedSender<Request>,
}

impl PgConn {
    /// Connects and migrates the schema, or says why not.
    pub fn open(options: &PgOptions) -> Result<Self, PgError> {
        Self::connect(options, true)
    }

    /// The schema version of the database (0 before the first migration),
    /// connecting without changing anything.
    pub fn probe(options: &PgOptions) -> Result<i32, PgError> {
        let conn = Self::connect(options, false)?;
        let exists = conn
            .query(
                "SELECT to_regclass('schema_version') IS NOT NULL".into(),
                vec![],
            )
            .map_err(|e| PgError::Config(e.to_string()))?;
        if exists.rows.first().and_then(|r| r.first()) != Some(&Value::Int(1)) {
            return Ok(0);
        }
        let set = conn
            .query(
                "SELECT COALESCE(MAX(version), 0) FROM schema_version".into(),
                vec![],
            )
            .map_err(|e| PgError::Config(e.to_string()))?;
        match set.rows.first().and_then(|r| r.first()) {
            Some(Value::Int(v)) => Ok(*v as i32),
            _ => Err(PgError::Config("unreadable schema_version".into())),
        }
    }

    fn connect(options: &PgOptions, migrate: bool) -> Result<Self, PgError> {
        let (requests, mut inbox) = tokio::sync::mpsc::unbounded_channel::<Request>();
        let (ready, started) = sync_channel::<Result<(), PgError>>(1);
        let options = options.clone();
        std::thread::Builder::new()
            .name("allerta-pg".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready.send(Err(PgError::Config(format!("runtime: {e}"))));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let mut session = match Session::start(options, migrate).await {
                        Ok(s) => {
                            let _ = ready.send(Ok(()));
                            s
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    while let Some(request) = inbox.recv().await {
                        session.serve(request).await;
                    }
                });
            })
            .map_err(|e| PgError::Config(format!("cannot start the database thread: {e}")))?;
        started
            .recv()
            .map_err(|_| PgError::Config("the database thread stopped".into()))??;
        Ok(Self { requests })
    }

    fn ask<T>(
        &self,
        make: impl FnOnce(SyncSender<Result<T, SqlError>>) -> Request,
    ) -> Result<T, SqlError> {
        let (reply, answer) = sync_channel(1);
        self.requests
            .send(make(reply))
            .map_err(|_| SqlError::Lost("the database thread stopped".into()))?;
        answer
            .recv()
            .map_err(|_| SqlError::Lost("the database thread stopped".into()))?
    }

    pub fn execute(&self, sql: String, params: Vec<Value>) -> Result<u64, SqlError> {
        self.ask(|reply| Request::Execute { sql, params, reply })
    }

    pub fn query(&self, sql: String, params: Vec<Value>) -> Result<ResultSet, SqlError> {
        self.ask(|reply| Request::Query { sql, params, reply })
    }

    pub fn batch(&self, sql: String) -> Result<(), SqlError> {
        self.ask(|reply| Request::Batch { sql, reply })
    }

    pub fn pipeline(&self, items: Vec<(String, Vec<Value>)>) -> Result<(), SqlError> {
        self.ask(|reply| Request::Pipeline { items, reply })
    }
}

struct Session {
    options: PgOptions,
    client: Client,
    statements: HashMap<String, Statement>,
    in_transaction: bool,
    /// The server said it cannot serve this connection any more (it is
    /// shutting down, or became a standby): make a new one.
    broken: bool,
}

async fn connect(options: &PgOptions) -> Result<Client, PgError> {
    let config = crate::ledger::pg::client_config(options)?;
    let tls = crate::ledger::pg::tls_connector(options)?;
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "database connection lost");
        }
    });
    Ok(client)
}

impl Session {
    async fn start(options: PgOptions, migrate: bool) -> Result<Self, PgError> {
        let mut client = connect(&options).await?;
        if migrate {
            crate::ledger::pg::migrate_to_latest(&mut client).await?;
        }
        Ok(Self {
            options,
            client,
            statements: HashMap::new(),
            in_transaction: false,
            broken: false,
        })
    }

    async fn serve(&mut self, request: Request) {
        match request {
            Request::Execute { sql, params, reply } => {
                let r = self.execute(&sql, &params).await;
                let _ = reply.send(r);
            }
            Request::Query { sql, params, reply } => {
                let r = self.query(&sql, &params).await;
                let _ = reply.send(r);
            }
            Request::Batch { sql, reply } => {
                let r = self.batch(&sql).await;
                let _ = reply.send(r);
            }
            Request::Pipeline { items, reply } => {
                let r = self.pipeline(&items).await;
                let _ = reply.send(r);
            }
        }
    }

    /// A live connection: the one there is, or a new one when it died
    /// outside a transaction.
    async fn ready(&mut self) -> Result<(), SqlError> {
        if !self.client.is_closed() && !self.broken {
            return Ok(());
        }
        if self.in_transaction {
            return Err(SqlError::Lost(
                "the connection closed in the middle of a transaction".into(),
            ));
        }
        self.statements.clear();
        self.client = connect(&self.options)
            .await
            .map_err(|e| SqlError::Lost(e.to_string()))?;
        self.broken = false;
        Ok(())
    }

    /// The error of `sql`, classified; a connection the server gave up on
    /// is made again at the next statement.
    fn fail(&mut self, e: tokio_postgres::Error, sql: &str) -> SqlError {
        // Transient, and not a serialisation failure or deadlock (class 40),
        // which the same connection survives.
        if e.code()
            .is_some_and(|c| transient(c.code()) && !c.code().starts_with("40"))
        {
            self.broken = true;
        }
        in_statement(error(e), sql)
    }

    async fn statement(&mut self, sql: &str) -> Result<Statement, SqlError> {
        self.ready().await?;
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = match self.client.prepare(sql).await {
            Ok(s) => s,
            Err(e) => return Err(self.fail(e, sql)),
        };
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, SqlError> {
        let statement = self.statement(sql).await?;
        let params: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let r = self.client.execute(&statement, &refs).await;
        drop(refs);
        r.map_err(|e| self.fail(e, sql))
    }

    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<ResultSet, SqlError> {
        let statement = self.statement(sql).await?;
        let params: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let r = self.client.query(&statement, &refs).await;
        drop(refs);
        let rows = r.map_err(|e| self.fail(e, sql))?;
        let columns = statement
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect::<Vec<_>>();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut values = Vec::with_capacity(columns.len());
            for (i, name) in columns.iter().enumerate() {
                let Column(v) = row.try_get(i).map_err(|e| SqlError::Conversion {
                    column: name.clone(),
                    message: e.to_string(),
                })?;
                values.push(v);
            }
            out.push(values);
        }
        Ok(ResultSet { columns, rows: out })
    }

    async fn pipeline(&mut self, items: &[(String, Vec<Value>)]) -> Result<(), SqlError> {
        let mut statements = Vec::with_capacity(items.len());
        for (sql, _) in items {
            statements.push(self.statement(sql).await?);
        }
        let params: Vec<Vec<Param<'_>>> = items
            .iter()
            .map(|(_, values)| values.iter().map(Param).collect())
            .collect();
        let refs: Vec<Vec<&(dyn ToSql + Sync)>> = params
            .iter()
            .map(|p| p.iter().map(|v| v as &(dyn ToSql + Sync)).collect())
            .collect();
        let client = &self.client;
        let r = futures_util::future::try_join_all(
            statements
                .iter()
                .zip(&refs)
                .map(|(s, p)| client.execute(s, p.as_slice())),
        )
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                // Which statement failed is not known: name the first kind.
                let sql = items.first().map(|(s, _)| s.clone()).unwrap_or_default();
                drop(refs);
                Err(self.fail(e, &sql))
            }
        }
    }

    async fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        let word = sql.trim().to_ascii_uppercase();
        let ends = word == "COMMIT" || word == "ROLLBACK";
        if word == "ROLLBACK" {
            // Whatever happens now, the transaction is over.
            self.in_transaction = false;
            if self.client.is_closed() || self.broken {
                // Nothing to undo on a dead connection: the server did it.
                return Ok(());
            }
            let r = self.client.batch_execute(sql).await;
            return r.map_err(|e| self.fail(e, sql));
        }
        self.ready().await?;
        let r = self.client.batch_execute(sql).await;
        let r = r.map_err(|e| self.fail(e, sql));
        if word.starts_with("BEGIN") {
            self.in_transaction = r.is_ok();
        } else if ends {
            self.in_transaction = false;
        }
        r
    }
}

/// A refused statement names itself (its start), so the error can be found.
fn in_statement(e: SqlError, sql: &str) -> SqlError {
    match e {
        SqlError::Postgres(m) => {
            let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
            let cut: String = flat.chars().take(160).collect();
            SqlError::Postgres(format!("{m}, in `{cut}`"))
        }
        other => other,
    }
}

/// Whether the server's SQLSTATE means it cannot serve this connection
/// now rather than refusing the statement: class 08 (connection
/// exception), 57P01–57P03 (shutdown, crash, starting up) and 25006 (a
/// read-only transaction: the server became a standby), or a
/// serialisation failure or deadlock (40001, 40P01), which a second try
/// resolves.
fn transient(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "25006" | "40001" | "40P01"
        )
}

fn error(e: tokio_postgres::Error) -> SqlError {
    let io = e.as_db_error().is_none() && e.source().is_some_and(|s| s.is::<std::io::Error>());
    let code = e.code().map(|c| c.code().to_owned());
    if e.is_closed() || io || code.as_deref().is_some_and(transient) {
        return SqlError::Lost(crate::ledger::pg::describe(&e));
    }
    SqlError::Postgres(crate::ledger::pg::describe(&e))
}

/// A parameter, converted to the type the server expects there.
#[derive(Debug)]
struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        let bad = || -> Box<dyn StdError + Sync + Send> {
            format!("cannot bind {:?} as {ty}", self.0).into()
        };
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i).map_err(|_| bad())?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i).map_err(|_| bad())?.to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    i.to_string().to_sql(&Type::TEXT, out)
                }
                _ => Err(bad()),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => {
                    f.to_string().to_sql(&Type::TEXT, out)
                }
                _ => Err(bad()),
            },
            Value::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    s.as_str().to_sql(&Type::TEXT, out)
                }
                Type::JSON => {
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                Type::JSONB => {
                    out.extend_from_slice(&[1]);
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                _ => Err(bad()),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => b.as_slice().to_sql(ty, out),
                _ => Err(bad()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A column, read into the storage class the schema mirrors.
struct Column(Value);

impl<'a> FromSql<'a> for Column {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Column(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::OID => Value::Int(u32::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::NUMERIC => numeric(raw)?,
            Type::BYTEA => Value::Blob(raw.to_vec()),
            Type::JSONB => match raw.split_first() {
                Some((1, text)) => Value::Text(std::str::from_utf8(text)?.to_owned()),
                _ => return Err("unknown jsonb version".into()),
            },
            _ => Value::Text(std::str::from_utf8(raw)?.to_owned()),
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Column(Value::Null))
    }

    fn accepts(ty: &Type) -> bool {
        // Every type whose binary form is its text, plus the ones above.
        !matches!(
            *ty,
            Type::TIMESTAMPTZ
                | Type::TIMESTAMP
                | Type::DATE
                | Type::TIME
                | Type::INTERVAL
                | Type::UUID
        )
    }
}

/// PostgreSQL's binary `numeric` (what `SUM` of a `bigint` gives): an
/// integer when it has no fraction, else a real.
fn numeric(raw: &[u8]) -> Result<Value, Box<dyn StdError + Sync + Send>> {
    let word = |i: usize| -> Result<u16, Box<dyn StdError + Sync + Send>> {
        raw.get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "short numeric".into())
    };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i16 as i32;
    let sign = word(4)?;
    if sign == 0xC000 {
        return Err("NaN".into());
    }
    let mut int: i128 = 0;
    let mut real = 0f64;
    let mut fraction = false;
    for k in 0..ndigits {
        let digit = word(8 + 2 * k)? as i128;
        let power = weight - k as i32;
        real += digit as f64 * 10000f64.powi(power);
        if power >= 0 {
            int = 10000i128
                .checked_pow(power as u32)
                .and_then(|scale| digit.checked_mul(scale))
                .and_then(|term| int.checked_add(term))
                .ok_or("numeric out of range")?;
        } else if digit != 0 {
            fraction = true;
        }
    }
    let negative = sign == 0x4000;
    if fraction {
        return Ok(Value::Real(if negative { -real } else { real }));
    }
    let int = if negative { -int } else { int };
    Ok(Value::Int(
        i64::try_from(int).map_err(|_| "numeric out of range")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(ndigits: &[u16], weight: i16, sign: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(ndigits.len() as u16).to_be_bytes());
        v.extend_from_slice(&weight.to_be_bytes());
        v.extend_from_slice(&sign.to_be_bytes());
        v.extend_from_slice(&0u16.to_be_bytes());
        for d in ndigits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numeric_sums_are_read_as_integers() {
        assert_eq!(numeric(&encode(&[], 0, 0)).unwrap(), Value::Int(0));
        assert_eq!(
            numeric(&encode(&[12, 3456], 1, 0)).unwrap(),
            Value::Int(123456)
        );
        assert_eq!(
            numeric(&encode(&[1], 2, 0x4000)).unwrap(),
            Value::Int(-100_000_000)
        );
        assert_eq!(
            numeric(&encode(&[1, 5000], 0, 0)).unwrap(),
            Value::Real(1.5)
        );
    }
}
