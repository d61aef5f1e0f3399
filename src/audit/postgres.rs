//! PostgreSQL backend: a connection pool shared by the group-commit writer, feedback, reports
//! and the JWT replay guard. A batch is written with one multi-row statement per table
//! (UNNEST of arrays): the invocations, their rules and cards as JSONB columns of the row
//! (migration 0003), and the card_index rows, so a group commit costs three round trips
//! (two INSERTs and the COMMIT) whatever its size.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::ids::{invocation_of_card, names_its_invocation};
use super::{
    CardColumns, EXPORT_PAGE, ExportPage, ExportedFeedback, ExportedInvocation, FeedbackRecord,
    FeedbackStored, GovernanceRows, InvocationRecord, PURGE_CHUNK, StatsRows, StorageError,
    check_against_card, http_status, micros, offered_by, offered_by_named, parse_parameters,
    parse_string_list, parse_uuid, stored_rules_and_cards, unique_rules, write_jsonl,
};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "reconstructable",
        include_str!("../../migrations/postgres/0002_reconstructable.sql"),
    ),
    (
        3,
        "compact record",
        include_str!("../../migrations/postgres/0003_compact_record.sql"),
    ),
];

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn open(url: &str, max_connections: u32) -> Result<PgPool, StorageError> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect(url)
        .await?;
    // sqlx takes an advisory lock here, so replicas starting together migrate once.
    super::migrator(MIGRATIONS).run(&pool).await?;
    Ok(pool)
}

pub(super) async fn write_batch(
    pool: &PgPool,
    batch: &[&InvocationRecord],
) -> Result<(), StorageError> {
    let n = batch.len();
    let mut ids = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut services = Vec::with_capacity(n);
    let mut hooks = Vec::with_capacity(n);
    let mut instances = Vec::with_capacity(n);
    let mut issuers = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut sets = Vec::with_capacity(n);
    let mut patients = Vec::with_capacity(n);
    let mut digests = Vec::with_capacity(n);
    let mut latencies = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut rules = Vec::with_capacity(n);
    let mut cards = Vec::with_capacity(n);
    let (mut card_ids, mut card_inv, mut card_rules) = (Vec::new(), Vec::new(), Vec::new());
    let mut columns: Vec<CardColumns<'_>> = Vec::new();
    for rec in batch {
        let id = rec.id.to_string();
        rules.push(serde_json::to_string(&unique_rules(&rec.rules_fired))?);
        columns.clear();
        columns.extend(rec.cards.iter().map(CardColumns::of));
        cards.push(serde_json::to_string(&columns)?);
        // A card whose uuid names this invocation is found without a row (`ids`).
        for card in rec
            .cards
            .iter()
            .filter(|c| !names_its_invocation(c.uuid, rec.id))
        {
            card_ids.push(card.uuid.to_string());
            card_inv.push(id.clone());
            card_rules.push(card.rule_id.as_str());
        }
        ids.push(id);
        times.push(micros(rec.time));
        services.push(rec.service_id.as_str());
        hooks.push(rec.hook.as_deref());
        instances.push(rec.hook_instance.as_deref());
        issuers.push(rec.ehr_issuer.as_deref());
        versions.push(rec.knowledge_version.as_str());
        sets.push(rec.parameter_set.as_deref());
        patients.push(rec.patient_id.as_deref());
        digests.push(rec.request_sha256.as_deref());
        latencies.push(rec.latency_ms);
        statuses.push(i32::from(rec.http_status));
    }

    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO invocations (id, time, service_id, hook, hook_instance, ehr_issuer, \
         knowledge_version, patient_id, request_sha256, latency_ms, http_status, parameter_set, \
         rules, cards) \
         SELECT * FROM UNNEST($1::text[]::uuid[], $2::timestamptz[], $3::text[], $4::text[], \
         $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::float8[], $11::int4[], \
         $12::text[], $13::text[]::jsonb[], $14::text[]::jsonb[])",
    )
    .bind(&ids)
    .bind(&times)
    .bind(&services)
    .bind(&hooks)
    .bind(&instances)
    .bind(&issuers)
    .bind(&versions)
    .bind(&patients)
    .bind(&digests)
    .bind(&latencies)
    .bind(&statuses)
    .bind(&sets)
    .bind(&rules)
    .bind(&cards)
    .execute(&mut *tx)
    .await?;
    if !card_ids.is_empty() {
        sqlx::query(
            "INSERT INTO card_index (uuid, invocation_id, rule_id) \
             SELECT * FROM UNNEST($1::text[]::uuid[], $2::text[]::uuid[], $3::text[])",
        )
        .bind(&card_ids)
        .bind(&card_inv)
        .bind(&card_rules)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn record_feedback(
    pool: &PgPool,
    service_id: &str,
    items: &[FeedbackRecord],
    received_at: DateTime<Utc>,
) -> Result<FeedbackStored, StorageError> {
    let mut tx = pool.begin().await?;
    let mut stored = FeedbackStored::default();
    for (index, item) in items.iter().enumerate() {
        let card = item.card.to_string();
        let indexed: Option<String> = sqlx::query_scalar(
            "SELECT i.cards::text FROM card_index k JOIN invocations i ON i.id = k.invocation_id \
             WHERE k.uuid = $1::uuid AND i.service_id = $2",
        )
        .bind(&card)
        .bind(service_id)
        .fetch_optional(&mut *tx)
        .await?;
        let offered = match indexed {
            Some(cards) => offered_by(&cards, item.card)?,
            // Not indexed yet: the invocation its uuid names, if that lists it (`ids`).
            None => {
                let named = match invocation_of_card(item.card) {
                    Some(invocation) => {
                        let cards: Option<String> = sqlx::query_scalar(
                            "SELECT cards::text FROM invocations \
                             WHERE id = $1::uuid AND service_id = $2",
                        )
                        .bind(invocation.to_string())
                        .bind(service_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                        cards
                            .map(|cards| offered_by_named(&cards, item.card))
                            .transpose()?
                            .flatten()
                            .map(|offered| (invocation, offered))
                    }
                    None => None,
                };
                let Some((invocation, offered)) = named else {
                    tx.rollback().await?;
                    return Err(StorageError::UnknownCard(item.card));
                };
                // The feedback row refers to it, and the reports read its rule from it.
                sqlx::query(
                    "INSERT INTO card_index (uuid, invocation_id, rule_id) \
                     VALUES ($1::uuid, $2::uuid, $3) ON CONFLICT (uuid) DO NOTHING",
                )
                .bind(&card)
                .bind(invocation.to_string())
                .bind(&offered.rule_id)
                .execute(&mut *tx)
                .await?;
                offered
            }
        };
        if let Err(e) = check_against_card(index, item, &offered.suggestions, &offered.reasons) {
            tx.rollback().await?;
            return Err(e);
        }
        let done = sqlx::query(
            "INSERT INTO feedback (card_uuid, service_id, outcome, accepted_suggestions, \
             override_reason_code, override_reason_system, override_reason_display, \
             user_comment, outcome_timestamp, received_at, verified) \
             VALUES ($1::uuid, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, true) \
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
        .bind(micros(item.outcome_timestamp))
        .bind(received_at)
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

pub(super) async fn record_parameter_set(
    pool: &PgPool,
    digest: &str,
    parameters: &str,
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO parameter_sets (digest, parameters, first_seen) VALUES ($1, $2::jsonb, $3) \
         ON CONFLICT (digest) DO NOTHING",
    )
    .bind(digest)
    .bind(parameters)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn governance(
    pool: &PgPool,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<(StatsRows, GovernanceRows), StorageError> {
    let mut tx = pool.begin().await?;
    // Every query sees one snapshot.
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    const RANGE: &str = "($1::timestamptz IS NULL OR i.time >= $1) \
        AND ($2::timestamptz IS NULL OR i.time < $2)";
    const DAY: &str = "to_char(i.time AT TIME ZONE 'UTC', 'YYYY-MM-DD')";
    macro_rules! rows {
        ($sql:expr) => {
            sqlx::query_as(sqlx::AssertSqlSafe(
                $sql.replace("{range}", RANGE).replace("{day}", DAY),
            ))
            .bind(from)
            .bind(to)
            .fetch_all(&mut *tx)
            .await?
        };
    }
    let stats = StatsRows {
        // Rules and cards are JSONB columns of the invocation row (0003); a card's rule id is
        // element 1 of its array.
        fired: rows!(
            "SELECT r.rule_id, COUNT(*) \
             FROM invocations i, jsonb_array_elements_text(i.rules) AS r(rule_id) \
             WHERE {range} GROUP BY 1"
        ),
        cards: rows!(
            "SELECT c.card ->> 1, COUNT(*) \
             FROM invocations i, jsonb_array_elements(i.cards) AS c(card) \
             WHERE {range} GROUP BY 1"
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
            "SELECT r.rule_id, {day}, COUNT(*) \
             FROM invocations i, jsonb_array_elements_text(i.rules) AS r(rule_id) \
             WHERE {range} GROUP BY 1, 2"
        ),
        outcomes: rows!(
            "SELECT k.rule_id, {day}, f.outcome, COUNT(*) FROM feedback f \
             JOIN card_index k ON k.uuid = f.card_uuid \
             JOIN invocations i ON i.id = k.invocation_id \
             WHERE f.verified AND {range} GROUP BY 1, 2, 3"
        ),
        configurations: rows!(
            "SELECT {day}, i.knowledge_version, i.parameter_set, COUNT(*) \
             FROM invocations i WHERE {range} GROUP BY 1, 2, 3"
        ),
        parameter_sets: rows!(
            "SELECT p.digest, p.parameters::text FROM parameter_sets p WHERE p.digest IN \
             (SELECT DISTINCT i.parameter_set FROM invocations i WHERE {range})"
        ),
    };
    tx.commit().await?;
    Ok((stats, governance))
}

/// The columns of an invocation as export and replay read them.
const INVOCATION_COLUMNS: &str = "i.id::text, i.time, i.service_id, i.hook, i.hook_instance, \
    i.ehr_issuer, i.knowledge_version, i.parameter_set, p.parameters::text, i.patient_id, \
    i.request_sha256, i.latency_ms, i.http_status::int8, i.rules::text, i.cards::text \
    FROM invocations i LEFT JOIN parameter_sets p ON p.digest = i.parameter_set";

type InvocationRow = (
    String,
    DateTime<Utc>,
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

pub(super) async fn export(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    out: &mut (dyn Write + Send),
) -> Result<u64, StorageError> {
    let mut tx = pool.begin().await?;
    // One snapshot for the whole export, however many pages it takes.
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut after: Option<(DateTime<Utc>, String)> = None;
    let mut written = 0u64;
    loop {
        let rows: Vec<InvocationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INVOCATION_COLUMNS} WHERE i.time >= $1 AND i.time < $2 \
             AND ($3::timestamptz IS NULL OR i.time > $3 OR (i.time = $3 AND i.id > $4::uuid)) \
             ORDER BY i.time, i.id LIMIT $5"
        )))
        .bind(from)
        .bind(to)
        .bind(after.as_ref().map(|a| a.0))
        .bind(after.as_ref().map(|a| a.1.clone()))
        .bind(EXPORT_PAGE)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else { break };
        after = Some((last.1, last.0.clone()));
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
    pool: &PgPool,
    id: uuid::Uuid,
) -> Result<Option<ExportedInvocation>, StorageError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let rows: Vec<InvocationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INVOCATION_COLUMNS} WHERE i.id = $1::uuid"
    )))
    .bind(id.to_string())
    .fetch_all(&mut *tx)
    .await?;
    let found = page(&mut tx, rows).await?.pop();
    tx.commit().await?;
    Ok(found)
}

/// Parses a page of invocation rows (their rules and cards are columns of the row), reads the
/// feedback on their cards and assembles them.
async fn page(
    tx: &mut sqlx::PgConnection,
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
            time: r.1,
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
    type FeedbackRow = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        DateTime<Utc>,
        DateTime<Utc>,
        String,
    );
    let feedback_rows: Vec<FeedbackRow> = sqlx::query_as(
        "SELECT f.card_uuid::text, f.outcome, f.accepted_suggestions::text, \
         f.override_reason_code, f.override_reason_system, f.override_reason_display, \
         f.user_comment, f.outcome_timestamp, f.received_at, f.service_id \
         FROM feedback f WHERE f.card_uuid = ANY($1::text[]::uuid[]) \
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
                accepted_suggestions: parse_string_list(Some(&f.2))?,
                override_reason_code: f.3,
                override_reason_system: f.4,
                override_reason_display: f.5,
                user_comment: f.6,
                outcome_timestamp: f.7,
                received_at: f.8,
                service_id: f.9,
            },
        ));
    }
    Ok(page.assemble())
}

pub(super) async fn purge(pool: &PgPool, cutoff: DateTime<Utc>) -> Result<u64, StorageError> {
    let mut total = 0u64;
    loop {
        // Chunks keep each transaction (and its locks) short under a running service. One
        // statement: the invocations (which hold their rules and cards) and their cards'
        // card_index rows, whose feedback goes with them (ON DELETE CASCADE).
        let deleted: i64 = sqlx::query_scalar(
            "WITH gone AS (DELETE FROM invocations WHERE id IN \
               (SELECT id FROM invocations WHERE time < $1 LIMIT $2) RETURNING cards), \
             unindexed AS (DELETE FROM card_index WHERE uuid IN \
               (SELECT (c.card ->> 0)::uuid FROM gone, jsonb_array_elements(gone.cards) AS c(card))) \
             SELECT COUNT(*) FROM gone",
        )
        .bind(cutoff)
        .bind(PURGE_CHUNK)
        .fetch_one(pool)
        .await?;
        let deleted = u64::try_from(deleted).unwrap_or(0);
        total += deleted;
        if deleted < PURGE_CHUNK as u64 {
            return Ok(total);
        }
    }
}
