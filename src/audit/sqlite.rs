//! SQLite backend: one file in WAL mode with synchronous=FULL (a commit is on disk before the
//! caller is answered). Every write goes through one dedicated OS thread that owns the only
//! writer connection (rusqlite, synchronous, prepared statements): the group commit, feedback,
//! parameter sets and purge chunks, in queue order. Reports and export read through a small
//! sqlx pool of read-only connections, which WAL lets run alongside the writer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::ids::{invocation_of_card, names_its_invocation};
use super::{
    CardColumns, EXPORT_PAGE, ExportPage, ExportedFeedback, ExportedInvocation, FeedbackRecord,
    FeedbackStored, Gather, GovernanceRows, InvocationRecord, Job, Message, PURGE_CHUNK, StatsRows,
    StorageConfig, StorageError, answer_all, answer_one, check_against_card, http_status, micros,
    offered_by, offered_by_named, parse_parameters, parse_string_list, parse_uuid,
    stored_rules_and_cards, unique_rules, warn_batch_failed, write_jsonl,
};

pub(super) const DEFAULT_FILE: &str = "rps-cds.db";

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "reconstructable",
        include_str!("../../migrations/sqlite/0002_reconstructable.sql"),
    ),
    (
        3,
        "lean indexes",
        include_str!("../../migrations/sqlite/0003_lean_indexes.sql"),
    ),
    (
        4,
        "compact record",
        include_str!("../../migrations/sqlite/0004_compact_record.sql"),
    ),
];

/// How the writer thread batches: at most `batch_max` records per commit, held back at most
/// `gather_max` for records announced (`AuditStore::expect_record`) and still on their way; at
/// light load nothing is announced and nothing waits.
#[derive(Debug, Clone, Copy)]
pub(super) struct WriterConfig {
    pub(super) batch_max: usize,
    pub(super) gather_max: Duration,
}

/// How long a statement waits for a lock held by another process (e.g. the CLI purging
/// while the service runs) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const READERS: u32 = 4;

const INSERT_INVOCATION: &str = "INSERT INTO invocations (id, time, service_id, hook, \
    hook_instance, ehr_issuer, knowledge_version, parameter_set, patient_id, request_sha256, \
    latency_ms, http_status, rules, cards) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
const INSERT_CARD_INDEX: &str =
    "INSERT INTO card_index (uuid, invocation_id, rule_id) VALUES (?1, ?2, ?3)";

/// Time as stored: UTC, microseconds, fixed width, so text order is time order.
fn ts(t: DateTime<Utc>) -> String {
    micros(t).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StorageError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StorageError::Corrupt(format!("not a timestamp: {s:?}")))
}

fn parse_suggestions(s: &str) -> Result<Vec<String>, StorageError> {
    parse_string_list(Some(s))
}

/// The connection options for a `sqlite:` URL or the default file; in-memory databases are
/// refused (the readers would not see the writer's data, and nothing would be durable).
pub(super) fn options(
    url: Option<&str>,
    cfg: &StorageConfig,
) -> Result<SqliteConnectOptions, StorageError> {
    let opts = match url {
        Some(url) => SqliteConnectOptions::from_str(url)
            .map_err(|_| StorageError::Config("not a valid sqlite: URL".into()))?,
        None => SqliteConnectOptions::new().filename(cfg.data_dir.join(DEFAULT_FILE)),
    };
    let file = opts.get_filename();
    if url.is_some_and(in_memory_url) || file.as_os_str().is_empty() {
        return Err(StorageError::Config(
            "the audit trail needs a SQLite file, not an in-memory database".into(),
        ));
    }
    Ok(opts
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        .synchronous(SqliteSynchronous::Full))
}

/// `sqlite::memory:`, `sqlite://` with no file, or `?mode=memory` (sqlx offers no getter).
fn in_memory_url(url: &str) -> bool {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (db, query) = rest.split_once('?').unwrap_or((rest, ""));
    db.is_empty() || db == ":memory:" || query.split('&').any(|p| p == "mode=memory")
}

/// The writes other than the group commit, run on the writer thread in queue order.
pub(super) enum Command {
    Feedback {
        service_id: String,
        items: Vec<FeedbackRecord>,
        received_at: DateTime<Utc>,
        reply: oneshot::Sender<Result<FeedbackStored, StorageError>>,
    },
    ParameterSet {
        digest: String,
        parameters: String,
        at: DateTime<Utc>,
        reply: oneshot::Sender<Result<(), StorageError>>,
    },
    /// Deletes up to `PURGE_CHUNK` invocations older than `cutoff`; answers how many.
    PurgeChunk {
        cutoff: DateTime<Utc>,
        reply: oneshot::Sender<Result<u64, StorageError>>,
    },
}

/// The writer thread's connection: WAL (set by the migrations, a property of the file),
/// `synchronous=FULL` (every commit fsynced before its callers are answered), foreign keys on
/// (purge relies on ON DELETE CASCADE) and the busy timeout for a CLI purging alongside.
pub(super) fn open_writer(path: &Path) -> Result<rusqlite::Connection, StorageError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Room for every statement the writer prepares, so none is ever re-prepared.
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// The dedicated writer thread: takes everything queued (up to `batch_max` records), writes
/// it in one transaction with prepared statements, commits, and only then answers every
/// caller. Other writes are done between batches, in queue order. Ends when the channel is
/// closed and drained.
fn run_writer(
    mut conn: rusqlite::Connection,
    mut receiver: mpsc::Receiver<Message>,
    config: WriterConfig,
    in_flight: Arc<AtomicUsize>,
    expected: Arc<Gather>,
) {
    let WriterConfig {
        batch_max,
        gather_max,
    } = config;
    // Callers whose withdrawal leaves nothing announced wake this thread.
    let _ = expected.writer.set(std::thread::current());
    let mut batch: Vec<Job> = Vec::with_capacity(batch_max);
    while let Some(first) = receiver.blocking_recv() {
        let next_command = match first {
            Message::Record(job) => {
                batch.push(job);
                gather(&mut receiver, &mut batch, batch_max, &expected, gather_max)
            }
            Message::Sqlite(command) => Some(command),
        };
        if !batch.is_empty() {
            commit_batch(&mut conn, &mut batch, &in_flight);
        }
        if let Some(command) = next_command {
            run_command(&mut conn, command);
        }
    }
}

/// Fills the batch from the queue without blocking and, while calls still evaluating have
/// announced their records (`AuditStore::expect_record`), holds the commit back for them, at
/// most `window` (`storage.gather_max_us`): one commit for all of them costs much less CPU
/// than one each (the fsync and page writes are per commit). At light load nothing is
/// announced and nothing waits.
/// Stops at the first other command, which is returned to run after this batch's commit.
fn gather(
    receiver: &mut mpsc::Receiver<Message>,
    batch: &mut Vec<Job>,
    batch_max: usize,
    expected: &Gather,
    window: Duration,
) -> Option<Command> {
    let deadline = Instant::now() + window;
    loop {
        // Read before draining: a call withdraws its announcement only once its record is
        // queued, so every record whose call this count no longer includes is taken below.
        let none_announced = expected.announced() == 0;
        while batch.len() < batch_max {
            match receiver.try_recv() {
                Ok(Message::Record(job)) => batch.push(job),
                Ok(Message::Sqlite(command)) => return Some(command),
                Err(_) => break,
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if none_announced || batch.len() >= batch_max || left.is_zero() {
            return None;
        }
        // No wake-up per record queued meanwhile: the queue is read again when the last
        // announced call has queued its record, or at the deadline.
        expected.wait_for_announced(left);
    }
}

fn commit_batch(conn: &mut rusqlite::Connection, batch: &mut Vec<Job>, in_flight: &AtomicUsize) {
    in_flight.store(batch.len(), Ordering::Relaxed);
    let started = Instant::now();
    let result = write_batch(conn, batch.iter().map(|j| &j.record));
    crate::telemetry::record_audit_commit(started.elapsed().as_secs_f64(), batch.len());
    match result {
        Ok(()) => answer_all(in_flight, batch, Ok(())),
        Err(e) if batch.len() > 1 => {
            warn_batch_failed(&e, batch.len());
            for job in batch.drain(..) {
                let result = write_batch(conn, std::iter::once(&job.record));
                answer_one(in_flight, job, result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "audit record not stored");
            answer_all(in_flight, batch, Err(e));
        }
    }
}

/// One transaction: a prepared INSERT per invocation (its rules and cards as JSON columns of
/// the row) and one into `card_index` per card whose uuid does not name the invocation (none
/// of the service's own: `ids`), then COMMIT. On any failure the transaction is
/// rolled back (dropped) and nothing of the batch is kept.
fn write_batch<'a>(
    conn: &mut rusqlite::Connection,
    records: impl Iterator<Item = &'a InvocationRecord>,
) -> Result<(), StorageError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut invocation = tx.prepare_cached(INSERT_INVOCATION)?;
        let mut card_index = tx.prepare_cached(INSERT_CARD_INDEX)?;
        let mut id_buf = Uuid::encode_buffer();
        let mut card_buf = Uuid::encode_buffer();
        let mut cards: Vec<CardColumns<'_>> = Vec::new();
        for rec in records {
            let id: &str = rec.id.as_hyphenated().encode_lower(&mut id_buf);
            let rules = serde_json::to_string(&unique_rules(&rec.rules_fired))?;
            cards.clear();
            cards.extend(rec.cards.iter().map(CardColumns::of));
            let cards_json = serde_json::to_string(&cards)?;
            invocation.execute(params![
                id,
                ts(rec.time),
                rec.service_id,
                rec.hook,
                rec.hook_instance,
                rec.ehr_issuer,
                rec.knowledge_version,
                rec.parameter_set,
                rec.patient_id,
                rec.request_sha256,
                rec.latency_ms,
                rec.http_status,
                rules,
                cards_json,
            ])?;
            // A card whose uuid names this invocation is found without a row (`ids`).
            for c in rec
                .cards
                .iter()
                .filter(|c| !names_its_invocation(c.uuid, rec.id))
            {
                let uuid: &str = c.uuid.as_hyphenated().encode_lower(&mut card_buf);
                card_index.execute(params![uuid, id, c.rule_id])?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

fn run_command(conn: &mut rusqlite::Connection, command: Command) {
    // A caller that gave up waiting drops its receiver; the write stands (or not) all the same.
    match command {
        Command::Feedback {
            service_id,
            items,
            received_at,
            reply,
        } => {
            let _ = reply.send(record_feedback(conn, &service_id, &items, received_at));
        }
        Command::ParameterSet {
            digest,
            parameters,
            at,
            reply,
        } => {
            let done = conn
                .prepare_cached(
                    "INSERT INTO parameter_sets (digest, parameters, first_seen) \
                     VALUES (?1, ?2, ?3) ON CONFLICT (digest) DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![digest, parameters, ts(at)]))
                .map(|_| ())
                .map_err(StorageError::from);
            let _ = reply.send(done);
        }
        Command::PurgeChunk { cutoff, reply } => {
            let _ = reply.send(purge_chunk(conn, cutoff));
        }
    }
}

/// Deletes up to `PURGE_CHUNK` invocations older than `cutoff` in one transaction: first
/// their cards' `card_index` rows (their feedback goes with them, ON DELETE CASCADE), then
/// the invocation rows, which hold the rules and cards themselves.
fn purge_chunk(
    conn: &mut rusqlite::Connection,
    cutoff: DateTime<Utc>,
) -> Result<u64, StorageError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let n = {
        let ids: Vec<String> = tx
            .prepare_cached("SELECT id FROM invocations WHERE time < ?1 LIMIT ?2")?
            .query_map(params![ts(cutoff), PURGE_CHUNK], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let ids = serde_json::to_string(&ids)?;
        tx.prepare_cached(
            "DELETE FROM card_index WHERE uuid IN (SELECT c.value ->> 0 \
             FROM invocations i, json_each(i.cards) c \
             WHERE i.id IN (SELECT value FROM json_each(?1)))",
        )?
        .execute(params![ids])?;
        tx.prepare_cached("DELETE FROM invocations WHERE id IN (SELECT value FROM json_each(?1))")?
            .execute(params![ids])?
    };
    tx.commit()?;
    Ok(n as u64)
}

/// All or nothing: the transaction is rolled back (dropped) at the first unknown card or
/// feedback that does not match its card.
fn record_feedback(
    conn: &mut rusqlite::Connection,
    service_id: &str,
    items: &[FeedbackRecord],
    received_at: DateTime<Utc>,
) -> Result<FeedbackStored, StorageError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut stored = FeedbackStored::default();
    {
        let mut card_query = tx.prepare_cached(
            "SELECT i.cards FROM card_index k JOIN invocations i ON i.id = k.invocation_id \
             WHERE k.uuid = ?1 AND i.service_id = ?2",
        )?;
        let mut named_query =
            tx.prepare_cached("SELECT cards FROM invocations WHERE id = ?1 AND service_id = ?2")?;
        let mut index_card = tx.prepare_cached(
            "INSERT INTO card_index (uuid, invocation_id, rule_id) VALUES (?1, ?2, ?3) \
             ON CONFLICT (uuid) DO NOTHING",
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO feedback (card_uuid, service_id, outcome, accepted_suggestions, \
             override_reason_code, override_reason_system, override_reason_display, \
             user_comment, outcome_timestamp, received_at, verified) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1) \
             ON CONFLICT (card_uuid, outcome, outcome_timestamp) DO NOTHING",
        )?;
        for (index, item) in items.iter().enumerate() {
            let card = item.card.to_string();
            let indexed: Option<String> = card_query
                .query_row(params![card, service_id], |r| r.get(0))
                .optional()?;
            let offered = match indexed {
                Some(cards) => offered_by(&cards, item.card)?,
                // Not indexed yet: the invocation its uuid names, if that lists it (`ids`).
                None => {
                    let Some(invocation) = invocation_of_card(item.card) else {
                        return Err(StorageError::UnknownCard(item.card));
                    };
                    let cards: Option<String> = named_query
                        .query_row(params![invocation.to_string(), service_id], |r| r.get(0))
                        .optional()?;
                    let offered = cards
                        .map(|cards| offered_by_named(&cards, item.card))
                        .transpose()?
                        .flatten()
                        .ok_or(StorageError::UnknownCard(item.card))?;
                    // The feedback row refers to it, and the reports read its rule from it.
                    index_card.execute(params![card, invocation.to_string(), offered.rule_id])?;
                    offered
                }
            };
            check_against_card(index, item, &offered.suggestions, &offered.reasons)?;
            let n = insert.execute(params![
                card,
                service_id,
                item.outcome,
                serde_json::to_string(&item.accepted_suggestions)?,
                item.override_reason_code,
                item.override_reason_system,
                item.override_reason_display,
                item.user_comment,
                ts(item.outcome_timestamp),
                ts(received_at),
            ])?;
            if n == 1 {
                stored.new += 1;
            } else {
                stored.duplicates += 1;
            }
        }
    }
    tx.commit()?;
    Ok(stored)
}

/// The columns of an invocation as export and replay read them.
const INVOCATION_COLUMNS: &str = "i.id, i.time, i.service_id, i.hook, i.hook_instance, \
    i.ehr_issuer, i.knowledge_version, i.parameter_set, p.parameters, i.patient_id, \
    i.request_sha256, i.latency_ms, i.http_status, i.rules, i.cards \
    FROM invocations i LEFT JOIN parameter_sets p ON p.digest = i.parameter_set";

type InvocationRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    f64,
    i64,
    String,
    String,
);

#[derive(Clone)]
pub(super) struct SqliteDb {
    read: SqlitePool,
}

impl SqliteDb {
    /// Creates the file if needed, applies the migrations (through sqlx, which keeps their
    /// checksums), then starts the writer thread on its own connection and the read pool.
    pub(super) async fn open(
        opts: SqliteConnectOptions,
        receiver: mpsc::Receiver<Message>,
        config: WriterConfig,
        in_flight: Arc<AtomicUsize>,
        expected: Arc<Gather>,
    ) -> Result<(Self, std::thread::JoinHandle<()>), StorageError> {
        let path: PathBuf = opts.get_filename().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut migrate = opts
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .connect()
            .await?;
        super::migrator(MIGRATIONS).run(&mut migrate).await?;
        migrate.close().await?;
        let writer = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || open_writer(&path))
                .await
                .map_err(|e| StorageError::Config(format!("opening the writer: {e}")))??
        };
        // WAL mode is a property of the file, already set.
        let read = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(opts.read_only(true))
            .await?;
        let thread = std::thread::Builder::new()
            .name("rps-audit-writer".into())
            .spawn(move || run_writer(writer, receiver, config, in_flight, expected))?;
        Ok((SqliteDb { read }, thread))
    }

    pub(super) async fn governance(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<(StatsRows, GovernanceRows), StorageError> {
        let from = from.map(ts);
        let to = to.map(ts);
        let mut conn = self.read.acquire().await?;
        // One read transaction: every query sees the same snapshot.
        let mut tx = conn.begin().await?;
        const RANGE: &str = "($1 IS NULL OR i.time >= $1) AND ($2 IS NULL OR i.time < $2)";
        macro_rules! rows {
            ($sql:expr) => {
                sqlx::query_as(sqlx::AssertSqlSafe($sql.replace("{range}", RANGE)))
                    .bind(&from)
                    .bind(&to)
                    .fetch_all(&mut *tx)
                    .await?
            };
        }
        let stats = StatsRows {
            // Rules and cards are JSON columns of the invocation row (0004); a card's rule id
            // is element 1 of its array.
            fired: rows!(
                "SELECT r.value, COUNT(*) FROM invocations i, json_each(i.rules) r \
                 WHERE {range} GROUP BY r.value"
            ),
            cards: rows!(
                "SELECT c.value ->> 1, COUNT(*) FROM invocations i, json_each(i.cards) c \
                 WHERE {range} GROUP BY c.value ->> 1"
            ),
            outcomes: rows!(
                "SELECT k.rule_id, f.outcome, COUNT(*) FROM feedback f \
                 JOIN card_index k ON k.uuid = f.card_uuid \
                 JOIN invocations i ON i.id = k.invocation_id \
                 WHERE f.verified AND {range} GROUP BY k.rule_id, f.outcome"
            ),
            reasons: rows!(
                "SELECT k.rule_id, f.override_reason_code, f.override_reason_system, \
                 f.override_reason_display, COUNT(*) FROM feedback f \
                 JOIN card_index k ON k.uuid = f.card_uuid \
                 JOIN invocations i ON i.id = k.invocation_id \
                 WHERE f.verified AND f.outcome = 'overridden' AND {range} \
                 GROUP BY k.rule_id, f.override_reason_code, f.override_reason_system, \
                 f.override_reason_display"
            ),
        };
        let governance = GovernanceRows {
            fired: rows!(
                "SELECT r.value, substr(i.time, 1, 10), COUNT(*) \
                 FROM invocations i, json_each(i.rules) r WHERE {range} \
                 GROUP BY r.value, substr(i.time, 1, 10)"
            ),
            outcomes: rows!(
                "SELECT k.rule_id, substr(i.time, 1, 10), f.outcome, COUNT(*) FROM feedback f \
                 JOIN card_index k ON k.uuid = f.card_uuid \
                 JOIN invocations i ON i.id = k.invocation_id \
                 WHERE f.verified AND {range} \
                 GROUP BY k.rule_id, substr(i.time, 1, 10), f.outcome"
            ),
            configurations: rows!(
                "SELECT substr(i.time, 1, 10), i.knowledge_version, i.parameter_set, COUNT(*) \
                 FROM invocations i WHERE {range} \
                 GROUP BY substr(i.time, 1, 10), i.knowledge_version, i.parameter_set"
            ),
            parameter_sets: rows!(
                "SELECT p.digest, p.parameters FROM parameter_sets p WHERE p.digest IN \
                 (SELECT DISTINCT i.parameter_set FROM invocations i WHERE {range})"
            ),
        };
        tx.commit().await?;
        Ok((stats, governance))
    }

    pub(super) async fn export(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        out: &mut (dyn Write + Send),
    ) -> Result<u64, StorageError> {
        let (from, to) = (ts(from), ts(to));
        let mut conn = self.read.acquire().await?;
        // One read transaction: WAL gives it a fixed snapshot for the whole export.
        let mut tx = conn.begin().await?;
        let mut after: Option<(String, String)> = None;
        let mut written = 0u64;
        loop {
            let rows: Vec<InvocationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {INVOCATION_COLUMNS} \
                 WHERE i.time >= $1 AND i.time < $2 \
                 AND ($3 IS NULL OR i.time > $3 OR (i.time = $3 AND i.id > $4)) \
                 ORDER BY i.time, i.id LIMIT $5"
            )))
            .bind(&from)
            .bind(&to)
            .bind(after.as_ref().map(|a| a.0.clone()))
            .bind(after.as_ref().map(|a| a.1.clone()))
            .bind(EXPORT_PAGE)
            .fetch_all(&mut *tx)
            .await?;
            let Some(last) = rows.last() else { break };
            after = Some((last.1.clone(), last.0.clone()));
            let full_page = rows.len() as i64 == EXPORT_PAGE;
            let invocations = page(&mut tx, rows).await?;
            write_jsonl(out, &invocations)?;
            written += invocations.len() as u64;
            if !full_page {
                break;
            }
        }
        tx.commit().await?;
        Ok(written)
    }

    pub(super) async fn invocation(
        &self,
        id: Uuid,
    ) -> Result<Option<ExportedInvocation>, StorageError> {
        let mut conn = self.read.acquire().await?;
        let mut tx = conn.begin().await?;
        let rows: Vec<InvocationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INVOCATION_COLUMNS} WHERE i.id = $1"
        )))
        .bind(id.to_string())
        .fetch_all(&mut *tx)
        .await?;
        let found = page(&mut tx, rows).await?.pop();
        tx.commit().await?;
        Ok(found)
    }

    pub(super) async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub(super) async fn close(&self) {
        self.read.close().await;
    }
}

/// Parses a page of invocation rows (their rules and cards are columns of the row), reads the
/// feedback on their cards and assembles them.
async fn page(
    tx: &mut SqliteConnection,
    rows: Vec<InvocationRow>,
) -> Result<Vec<ExportedInvocation>, StorageError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut invocations = Vec::with_capacity(rows.len());
    let mut card_uuids: Vec<String> = Vec::new();
    for r in rows {
        let (rules_fired, cards) = stored_rules_and_cards(&r.13, &r.14)?;
        card_uuids.extend(cards.iter().map(|c| c.uuid.to_string()));
        invocations.push(ExportedInvocation {
            id: parse_uuid(&r.0)?,
            time: parse_ts(&r.1)?,
            service_id: r.2,
            hook: r.3,
            hook_instance: r.4,
            ehr_issuer: r.5,
            knowledge_version: r.6,
            parameter_set: r.7,
            parameters: parse_parameters(r.8.as_deref())?,
            patient_id: r.9,
            request_sha256: r.10,
            latency_ms: r.11,
            http_status: http_status(r.12)?,
            rules_fired,
            cards,
        });
    }
    let card_uuids = serde_json::to_string(&card_uuids)?;
    type FeedbackRow = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        String,
        String,
    );
    let feedback_rows: Vec<FeedbackRow> = sqlx::query_as(
        "SELECT f.card_uuid, f.outcome, f.accepted_suggestions, f.override_reason_code, \
         f.override_reason_system, f.override_reason_display, f.user_comment, \
         f.outcome_timestamp, f.received_at, f.service_id \
         FROM feedback f WHERE f.card_uuid IN (SELECT value FROM json_each($1)) \
         ORDER BY f.card_uuid, f.outcome_timestamp, f.id",
    )
    .bind(&card_uuids)
    .fetch_all(&mut *tx)
    .await?;

    let feedback_capacity = feedback_rows.len();
    let mut page = ExportPage::new(invocations, feedback_capacity);
    for f in feedback_rows {
        page.feedback.push((
            parse_uuid(&f.0)?,
            ExportedFeedback {
                outcome: f.1,
                accepted_suggestions: parse_suggestions(&f.2)?,
                override_reason_code: f.3,
                override_reason_system: f.4,
                override_reason_display: f.5,
                user_comment: f.6,
                outcome_timestamp: parse_ts(&f.7)?,
                received_at: parse_ts(&f.8)?,
                service_id: f.9,
            },
        ));
    }
    Ok(page.assemble())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> (Job, oneshot::Receiver<Result<(), StorageError>>) {
        let (done, answer) = oneshot::channel();
        let record = InvocationRecord {
            id: Uuid::now_v7(),
            time: Utc::now(),
            service_id: "rps-patient-view".into(),
            hook: None,
            hook_instance: None,
            ehr_issuer: None,
            knowledge_version: "test".into(),
            parameter_set: None,
            patient_id: None,
            rules_fired: Vec::new(),
            cards: Vec::new(),
            request_sha256: None,
            latency_ms: 0.0,
            http_status: 200,
        };
        (Job { record, done }, answer)
    }

    /// With nothing announced the gather takes what is queued and returns at once, whatever
    /// its window.
    #[test]
    fn gather_without_announced_calls_does_not_wait() {
        let (sender, mut receiver) = mpsc::channel(8);
        for _ in 0..3 {
            sender.try_send(Message::Record(job().0)).unwrap();
        }
        let expected = Gather::default();
        let mut batch = vec![job().0];
        let window = Duration::from_secs(3600);
        assert!(gather(&mut receiver, &mut batch, 8, &expected, window).is_none());
        assert_eq!(batch.len(), 4);
        // batch_max bounds it.
        for _ in 0..3 {
            sender.try_send(Message::Record(job().0)).unwrap();
        }
        let mut batch = vec![job().0];
        assert!(gather(&mut receiver, &mut batch, 2, &expected, window).is_none());
        assert_eq!(batch.len(), 2);
    }

    /// An announced call holds the commit back until its record is queued; the call's
    /// withdrawal (after queueing) wakes the sleeping writer, and the record is in the batch.
    /// The window is an hour: a missed wake-up would hang this test, not pass it.
    #[test]
    fn gather_waits_for_an_announced_record_and_is_woken_by_it() {
        let (sender, mut receiver) = mpsc::channel(8);
        let expected = Arc::new(Gather::default());
        expected.writer.set(std::thread::current()).unwrap();
        expected.announce();
        let caller = {
            let expected = expected.clone();
            std::thread::spawn(move || {
                // Until the writer sleeps, so the wake-up is what ends its wait.
                while !expected.waiting.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                sender.try_send(Message::Record(job().0)).unwrap();
                expected.withdraw();
            })
        };
        let mut batch = vec![job().0];
        let command = gather(
            &mut receiver,
            &mut batch,
            8,
            &expected,
            Duration::from_secs(3600),
        );
        caller.join().unwrap();
        assert!(command.is_none());
        assert_eq!(batch.len(), 2, "the announced record joined the commit");
        assert_eq!(expected.announced(), 0);
    }

    /// Another write queued behind the records ends the gather; it runs after their commit.
    #[test]
    fn gather_stops_at_a_command() {
        let (sender, mut receiver) = mpsc::channel(8);
        let expected = Gather::default();
        expected.announce();
        let (reply, _answer) = oneshot::channel();
        sender.try_send(Message::Record(job().0)).unwrap();
        sender
            .try_send(Message::Sqlite(Command::PurgeChunk {
                cutoff: Utc::now(),
                reply,
            }))
            .unwrap();
        sender.try_send(Message::Record(job().0)).unwrap();
        let mut batch = vec![job().0];
        let command = gather(
            &mut receiver,
            &mut batch,
            8,
            &expected,
            Duration::from_secs(3600),
        );
        assert!(matches!(command, Some(Command::PurgeChunk { .. })));
        assert_eq!(
            batch.len(),
            2,
            "records behind the command wait for the next batch"
        );
    }

    #[test]
    fn timestamps_sort_as_text_and_round_trip() {
        let a: DateTime<Utc> = "2026-01-02T03:04:05Z".parse().unwrap();
        let b: DateTime<Utc> = "2026-01-02T03:04:05.000001Z".parse().unwrap();
        let c: DateTime<Utc> = "2026-01-02T03:04:05.5Z".parse().unwrap();
        assert!(ts(a) < ts(b) && ts(b) < ts(c));
        assert_eq!(ts(a).len(), ts(c).len());
        for t in [a, b, c] {
            assert_eq!(parse_ts(&ts(t)).unwrap(), t);
        }
    }

    #[tokio::test]
    async fn writer_is_wal_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StorageConfig {
            data_dir: dir.path().to_path_buf(),
            ..StorageConfig::default()
        };
        let opts = options(None, &cfg).unwrap();
        let (_sender, receiver) = mpsc::channel(1);
        let (db, thread) = SqliteDb::open(
            opts.clone(),
            receiver,
            WriterConfig {
                batch_max: 8,
                gather_max: Duration::from_millis(1),
            },
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
        // The writer thread's connection is configured by `open_writer`.
        let conn = open_writer(opts.get_filename()).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        // 2 = FULL: every commit is fsynced before the caller is answered.
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2);
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1, "purge relies on ON DELETE CASCADE");
        // Readers cannot write.
        assert!(
            sqlx::query("DELETE FROM invocations")
                .execute(&db.read)
                .await
                .is_err()
        );
        drop(_sender);
        thread.join().unwrap();
        db.close().await;
    }

    #[test]
    fn in_memory_database_is_refused() {
        let cfg = StorageConfig::default();
        for url in [
            "sqlite::memory:",
            "sqlite://?mode=memory",
            "sqlite://x.db?mode=memory",
        ] {
            assert!(
                matches!(options(Some(url), &cfg), Err(StorageError::Config(_))),
                "{url}"
            );
        }
        let opts = options(Some("sqlite://some/dir/audit.db"), &cfg).unwrap();
        assert_eq!(opts.get_filename(), Path::new("some/dir/audit.db"));
        let opts = options(None, &cfg).unwrap();
        assert_eq!(opts.get_filename(), Path::new("./data/rps-cds.db"));
    }
}
