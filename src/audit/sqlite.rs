//! SQLite backend: one file in WAL mode with synchronous=FULL (a commit is on disk before the
//! caller is answered), one writer connection shared by the group-commit task and the other
//! writes (feedback, purge), and a small pool of readers for reports and export, which WAL lets
//! run alongside the writer.

use std::io::Write;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::Mutex;

use super::{
    EXPORT_PAGE, ExportPage, ExportedCard, ExportedFeedback, ExportedInvocation, FeedbackRecord,
    FeedbackStored, InvocationRecord, PURGE_CHUNK, StatsRows, StorageConfig, StorageError,
    http_status, micros, parse_uuid, unique_rules, write_jsonl,
};

pub(super) const DEFAULT_FILE: &str = "rps-cds.db";

const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "init",
    include_str!("../../migrations/sqlite/0001_init.sql"),
)];

/// How long a statement waits for a lock held by another process (e.g. the CLI purging
/// while the service runs) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const READERS: u32 = 4;
/// Write transactions take the write lock up front: a deferred transaction that reads first
/// (the feedback card check) would fail at once, without waiting, if another process (the CLI
/// purging while the service runs) committed in between.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// One group commit (see `SqliteDb::write_batch`): `$1`, `$2`, `$3` are the JSON arrays of
/// [`BatchRows`]. `ORDER BY key` keeps the batch's order.
const WRITE_BATCH: &str = "BEGIN IMMEDIATE; \
    INSERT INTO invocations (id, time, service_id, hook, hook_instance, ehr_issuer, \
    knowledge_version, patient_id, request_sha256, latency_ms, http_status) \
    SELECT value ->> 'id', value ->> 'time', value ->> 'service_id', value ->> 'hook', \
    value ->> 'hook_instance', value ->> 'ehr_issuer', value ->> 'knowledge_version', \
    value ->> 'patient_id', value ->> 'request_sha256', value ->> 'latency_ms', \
    value ->> 'http_status' FROM json_each($1) ORDER BY key; \
    INSERT INTO invocation_rules (invocation_id, rule_id, position) \
    SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each($2) ORDER BY key; \
    INSERT INTO cards (uuid, invocation_id, position, rule_id, indicator, summary) \
    SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 \
    FROM json_each($3) ORDER BY key; \
    COMMIT";

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
    serde_json::from_str(s)
        .map_err(|_| StorageError::Corrupt(format!("not a JSON array of strings: {s:?}")))
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

/// One invocation row as `write_batch` sends it to SQLite (inside a JSON array).
#[derive(Serialize)]
struct InvocationRow<'a> {
    id: String,
    time: String,
    service_id: &'a str,
    hook: Option<&'a str>,
    hook_instance: Option<&'a str>,
    ehr_issuer: Option<&'a str>,
    knowledge_version: &'a str,
    patient_id: Option<&'a str>,
    request_sha256: Option<&'a str>,
    latency_ms: f64,
    http_status: u16,
}

/// A batch as three JSON arrays, one per table. Rules and cards are positional arrays:
/// `[invocation id, rule id, position]` and
/// `[uuid, invocation id, position, rule id, indicator, summary]`.
struct BatchRows {
    invocations: String,
    rules: String,
    cards: String,
}

impl BatchRows {
    fn new(batch: &[&InvocationRecord]) -> Result<Self, StorageError> {
        let mut invocations = Vec::with_capacity(batch.len());
        let mut rules = Vec::new();
        let mut cards = Vec::new();
        for rec in batch {
            let id = rec.id.to_string();
            for (position, rule) in unique_rules(&rec.rules_fired).into_iter().enumerate() {
                rules.push((id.clone(), rule, position));
            }
            for (position, card) in rec.cards.iter().enumerate() {
                cards.push((
                    card.uuid.to_string(),
                    id.clone(),
                    position,
                    card.rule_id.as_str(),
                    card.indicator.as_str(),
                    card.summary.as_str(),
                ));
            }
            invocations.push(InvocationRow {
                id,
                time: ts(rec.time),
                service_id: &rec.service_id,
                hook: rec.hook.as_deref(),
                hook_instance: rec.hook_instance.as_deref(),
                ehr_issuer: rec.ehr_issuer.as_deref(),
                knowledge_version: &rec.knowledge_version,
                patient_id: rec.patient_id.as_deref(),
                request_sha256: rec.request_sha256.as_deref(),
                latency_ms: rec.latency_ms,
                http_status: rec.http_status,
            });
        }
        Ok(BatchRows {
            invocations: serde_json::to_string(&invocations)?,
            rules: serde_json::to_string(&rules)?,
            cards: serde_json::to_string(&cards)?,
        })
    }
}

#[derive(Clone)]
pub(super) struct SqliteDb {
    /// `None` once closed.
    writer: Arc<Mutex<Option<SqliteConnection>>>,
    read: SqlitePool,
}

impl SqliteDb {
    pub(super) async fn open(opts: SqliteConnectOptions) -> Result<Self, StorageError> {
        if let Some(dir) = opts
            .get_filename()
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)?;
        }
        let mut writer = opts
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .connect()
            .await?;
        super::migrator(MIGRATIONS).run(&mut writer).await?;
        // WAL mode is a property of the file, already set by the writer.
        let read = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(opts.read_only(true))
            .await?;
        Ok(SqliteDb {
            writer: Arc::new(Mutex::new(Some(writer))),
            read,
        })
    }

    /// Writes and commits a batch in one round trip to sqlx's connection thread, whatever its
    /// size: the transaction, the three INSERTs and the COMMIT are one multi-statement query
    /// (sqlx runs every statement of it, binding `$n` by number). The rows travel as one JSON
    /// array per table and SQLite's `json_each` unpacks them; the query text is fixed, so its
    /// statements stay prepared. Why: each round trip is a hand-off between threads, and under
    /// load every hand-off waits for a core. A per-row INSERT in a sqlx transaction cost ≈ 150
    /// of them for a batch of 16 records.
    pub(super) async fn write_batch(
        &self,
        batch: &[&InvocationRecord],
    ) -> Result<(), StorageError> {
        let rows = BatchRows::new(batch)?;
        let mut guard = self.writer.lock().await;
        let conn = guard.as_mut().ok_or(StorageError::Closed)?;
        let written = sqlx::query(WRITE_BATCH)
            .bind(rows.invocations)
            .bind(rows.rules)
            .bind(rows.cards)
            .execute(&mut *conn)
            .await;
        if let Err(e) = written {
            // Execution stopped at the failing statement, possibly inside the transaction:
            // undo it so the connection is clean for the next batch. When no transaction is
            // open (BEGIN or COMMIT itself failed and SQLite already rolled back) ROLLBACK
            // fails harmlessly.
            if let Err(rollback) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
                tracing::debug!(error = %rollback, "audit batch rollback after failure");
            }
            return Err(e.into());
        }
        Ok(())
    }

    pub(super) async fn record_feedback(
        &self,
        service_id: &str,
        items: &[FeedbackRecord],
        received_at: DateTime<Utc>,
    ) -> Result<FeedbackStored, StorageError> {
        let mut guard = self.writer.lock().await;
        let conn = guard.as_mut().ok_or(StorageError::Closed)?;
        let mut tx = conn.begin_with(BEGIN_WRITE).await?;
        let mut stored = FeedbackStored::default();
        for item in items {
            let card = item.card.to_string();
            let known: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM cards c JOIN invocations i ON i.id = c.invocation_id \
                 WHERE c.uuid = $1 AND i.service_id = $2",
            )
            .bind(&card)
            .bind(service_id)
            .fetch_optional(&mut *tx)
            .await?;
            if known.is_none() {
                tx.rollback().await?;
                return Err(StorageError::UnknownCard(item.card));
            }
            let done = sqlx::query(
                "INSERT INTO feedback (card_uuid, service_id, outcome, accepted_suggestions, \
                 override_reason_code, override_reason_system, override_reason_display, \
                 user_comment, outcome_timestamp, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (card_uuid, outcome, outcome_timestamp) DO NOTHING",
            )
            .bind(&card)
            .bind(service_id)
            .bind(&item.outcome)
            .bind(serde_json::to_string(&item.accepted_suggestions)?)
            .bind(&item.override_reason_code)
            .bind(&item.override_reason_system)
            .bind(&item.override_reason_display)
            .bind(&item.user_comment)
            .bind(ts(item.outcome_timestamp))
            .bind(ts(received_at))
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                stored.new += 1;
            } else {
                stored.duplicates += 1;
            }
        }
        tx.commit().await?;
        Ok(stored)
    }

    pub(super) async fn rule_stats(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<StatsRows, StorageError> {
        let from = from.map(ts);
        let to = to.map(ts);
        let mut conn = self.read.acquire().await?;
        // One read transaction: the four queries see the same snapshot.
        let mut tx = conn.begin().await?;
        let fired = sqlx::query_as(
            "SELECT r.rule_id, COUNT(*) FROM invocation_rules r \
             JOIN invocations i ON i.id = r.invocation_id \
             WHERE ($1 IS NULL OR i.time >= $1) AND ($2 IS NULL OR i.time < $2) \
             GROUP BY r.rule_id",
        )
        .bind(&from)
        .bind(&to)
        .fetch_all(&mut *tx)
        .await?;
        let cards = sqlx::query_as(
            "SELECT c.rule_id, COUNT(*) FROM cards c \
             JOIN invocations i ON i.id = c.invocation_id \
             WHERE ($1 IS NULL OR i.time >= $1) AND ($2 IS NULL OR i.time < $2) \
             GROUP BY c.rule_id",
        )
        .bind(&from)
        .bind(&to)
        .fetch_all(&mut *tx)
        .await?;
        let outcomes = sqlx::query_as(
            "SELECT c.rule_id, f.outcome, COUNT(*) FROM feedback f \
             JOIN cards c ON c.uuid = f.card_uuid \
             JOIN invocations i ON i.id = c.invocation_id \
             WHERE ($1 IS NULL OR i.time >= $1) AND ($2 IS NULL OR i.time < $2) \
             GROUP BY c.rule_id, f.outcome",
        )
        .bind(&from)
        .bind(&to)
        .fetch_all(&mut *tx)
        .await?;
        let reasons = sqlx::query_as(
            "SELECT c.rule_id, f.override_reason_code, f.override_reason_system, \
             f.override_reason_display, COUNT(*) FROM feedback f \
             JOIN cards c ON c.uuid = f.card_uuid \
             JOIN invocations i ON i.id = c.invocation_id \
             WHERE f.outcome = 'overridden' \
             AND ($1 IS NULL OR i.time >= $1) AND ($2 IS NULL OR i.time < $2) \
             GROUP BY c.rule_id, f.override_reason_code, f.override_reason_system, \
             f.override_reason_display",
        )
        .bind(&from)
        .bind(&to)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(StatsRows {
            fired,
            cards,
            outcomes,
            reasons,
        })
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
            type Row = (
                String,
                String,
                String,
                Option<String>,
                Option<String>,
                Option<String>,
                String,
                Option<String>,
                Option<String>,
                f64,
                i64,
            );
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT id, time, service_id, hook, hook_instance, ehr_issuer, knowledge_version, \
                 patient_id, request_sha256, latency_ms, http_status FROM invocations \
                 WHERE time >= $1 AND time < $2 \
                 AND ($3 IS NULL OR time > $3 OR (time = $3 AND id > $4)) \
                 ORDER BY time, id LIMIT $5",
            )
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
            let ids = serde_json::to_string(&rows.iter().map(|r| &r.0).collect::<Vec<_>>())?;

            let mut invocations = Vec::with_capacity(rows.len());
            for r in rows {
                invocations.push(ExportedInvocation {
                    id: parse_uuid(&r.0)?,
                    time: parse_ts(&r.1)?,
                    service_id: r.2,
                    hook: r.3,
                    hook_instance: r.4,
                    ehr_issuer: r.5,
                    knowledge_version: r.6,
                    patient_id: r.7,
                    request_sha256: r.8,
                    latency_ms: r.9,
                    http_status: http_status(r.10)?,
                    rules_fired: Vec::new(),
                    cards: Vec::new(),
                });
            }
            let rule_rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT invocation_id, rule_id FROM invocation_rules \
                 WHERE invocation_id IN (SELECT value FROM json_each($1)) \
                 ORDER BY invocation_id, position",
            )
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
            let card_rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
                "SELECT invocation_id, uuid, rule_id, indicator, summary FROM cards \
                 WHERE invocation_id IN (SELECT value FROM json_each($1)) \
                 ORDER BY invocation_id, position",
            )
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
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
                 FROM feedback f JOIN cards c ON c.uuid = f.card_uuid \
                 WHERE c.invocation_id IN (SELECT value FROM json_each($1)) \
                 ORDER BY f.card_uuid, f.outcome_timestamp, f.id",
            )
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;

            let mut page = ExportPage {
                invocations,
                rules: Vec::with_capacity(rule_rows.len()),
                cards: Vec::with_capacity(card_rows.len()),
                feedback: Vec::with_capacity(feedback_rows.len()),
            };
            for (inv, rule) in rule_rows {
                page.rules.push((parse_uuid(&inv)?, rule));
            }
            for (inv, uuid, rule_id, indicator, summary) in card_rows {
                page.cards.push((
                    parse_uuid(&inv)?,
                    ExportedCard {
                        uuid: parse_uuid(&uuid)?,
                        rule_id,
                        indicator,
                        summary,
                        feedback: Vec::new(),
                    },
                ));
            }
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
            let invocations = page.assemble();
            write_jsonl(out, &invocations)?;
            written += invocations.len() as u64;
            if !full_page {
                break;
            }
        }
        tx.commit().await?;
        Ok(written)
    }

    pub(super) async fn purge(&self, cutoff: DateTime<Utc>) -> Result<u64, StorageError> {
        let cutoff = ts(cutoff);
        let mut total = 0u64;
        loop {
            // The writer lock is taken per chunk so group commits interleave with a long purge.
            let mut guard = self.writer.lock().await;
            let conn = guard.as_mut().ok_or(StorageError::Closed)?;
            let done = sqlx::query(
                "DELETE FROM invocations WHERE id IN \
                 (SELECT id FROM invocations WHERE time < $1 LIMIT $2)",
            )
            .bind(&cutoff)
            .bind(PURGE_CHUNK)
            .execute(&mut *conn)
            .await?;
            drop(guard);
            total += done.rows_affected();
            if done.rows_affected() < PURGE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    pub(super) async fn ping(&self) -> Result<(), StorageError> {
        if self.writer.lock().await.is_none() {
            return Err(StorageError::Closed);
        }
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub(super) async fn close(&self) {
        self.read.close().await;
        let writer = self.writer.lock().await.take();
        if let Some(conn) = writer
            && let Err(e) = conn.close().await
        {
            tracing::warn!(error = %e, "closing the SQLite writer connection failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
        let db = SqliteDb::open(options(None, &cfg).unwrap()).await.unwrap();
        {
            let mut guard = db.writer.lock().await;
            let conn = guard.as_mut().unwrap();
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
            // 2 = FULL: every commit is fsynced before the caller is answered.
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(sync, 2);
            let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(fk, 1, "purge relies on ON DELETE CASCADE");
        }
        // Readers cannot write.
        assert!(
            sqlx::query("DELETE FROM invocations")
                .execute(&db.read)
                .await
                .is_err()
        );
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
