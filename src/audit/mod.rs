//! Audit trail of every CDS Hooks invocation, the cards it returned and the feedback the EHR
//! sent back on those cards, in a real database: SQLite embedded by default, PostgreSQL when the
//! service runs as several replicas or at scale.
//!
//! Durability: [`AuditStore::record_invocation`] returns only once the record is committed.
//! Callers hand their record to one writer task through a bounded channel; the writer drains up
//! to `batch_max` queued records, writes them in one transaction, commits, and only then answers
//! every caller (group commit). A burst of requests therefore costs one commit (one fsync)
//! rather than one per request, while no caller is told "stored" before it is.
//!
//! What is stored: ids, times, rule ids, card summaries and feedback. Never an access token
//! (a request that carries one is digested with `fhirAuthorization` removed:
//! [`request_digest`]) and never patient data beyond the FHIR ids that the request itself
//! carries.

pub mod cli;
mod ids;
mod postgres;
pub(crate) mod range;
mod sqlite;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Datelike, NaiveDate, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::knowledge::parameters::{ParameterSet, ParameterValue};

pub use ids::{card_uuid, new_invocation_id};

/// Where and how the audit trail is stored (`[storage]` in the service configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `postgres://…` selects PostgreSQL; `sqlite://path` or nothing selects SQLite, by default
    /// the file `<data_dir>/rps-cds.db`.
    pub url: Option<String>,
    /// Directory for the SQLite database (created if missing).
    pub data_dir: PathBuf,
    /// Size of the PostgreSQL connection pool.
    pub max_connections: u32,
    /// Largest number of invocation records written in one transaction.
    pub batch_max: usize,
    /// Capacity of the channel to the writer; callers wait for room when it is full.
    pub queue_capacity: usize,
    /// SQLite: longest a group commit is held back (µs) for records announced by calls still
    /// being evaluated; 0 commits at once. Only under load is anything announced, so at light
    /// load no call waits for it.
    pub gather_max_us: u64,
    /// How long records are kept by `purge` when no other cutoff is given.
    pub retention_days: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: None,
            data_dir: PathBuf::from("./data"),
            max_connections: 8,
            batch_max: 256,
            queue_capacity: 10_000,
            gather_max_us: 2_000,
            retention_days: 3650,
        }
    }
}

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// Errors of the audit store. Cloneable because one failed group commit answers every caller
/// in the batch with the same error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(#[source] Arc<sqlx::Error>),
    /// The SQLite writer thread's own connection (rusqlite).
    #[error("database error: {0}")]
    Sqlite(#[source] Arc<rusqlite::Error>),
    #[error("database migration failed: {0}")]
    Migrate(#[source] Arc<sqlx::migrate::MigrateError>),
    #[error("I/O error: {0}")]
    Io(#[source] Arc<std::io::Error>),
    #[error("JSON error: {0}")]
    Json(#[source] Arc<serde_json::Error>),
    #[error("invalid storage configuration: {0}")]
    Config(String),
    /// Feedback named a card this service never returned (or that has been purged).
    #[error("unknown card {0}")]
    UnknownCard(Uuid),
    #[error("invalid feedback: {0}")]
    InvalidFeedback(String),
    /// Feedback that does not match the card it names: a suggestion the card never offered,
    /// or an override reason the card did not list. `path` is the JSON path in the call.
    #[error("feedback does not match its card at {path}: {message}")]
    FeedbackMismatch { path: String, message: String },
    /// A value read back from the database does not have the form the service writes.
    #[error("unexpected stored value: {0}")]
    Corrupt(String),
    /// The store has been closed (graceful shutdown) or its writer task has stopped.
    #[error("audit store is closed")]
    Closed,
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        StorageError::Database(Arc::new(e))
    }
}

impl From<sqlx::migrate::MigrateError> for StorageError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StorageError::Migrate(Arc::new(e))
    }
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        StorageError::Sqlite(Arc::new(e))
    }
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        StorageError::Io(Arc::new(e))
    }
}

impl From<serde_json::Error> for StorageError {
    fn from(e: serde_json::Error) -> Self {
        StorageError::Json(Arc::new(e))
    }
}

/// One CDS Hooks call as the audit trail keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationRecord {
    pub id: Uuid,
    pub time: DateTime<Utc>,
    pub service_id: String,
    pub hook: Option<String>,
    pub hook_instance: Option<String>,
    /// `iss` of the CDS client JWT, when the call was authenticated.
    pub ehr_issuer: Option<String>,
    pub knowledge_version: String,
    /// Digest of the effective parameter set ([`AuditStore::record_parameter_set`], table
    /// `parameter_sets`) that produced the cards; `None` for a call that never reached the rules.
    pub parameter_set: Option<String>,
    /// The FHIR id the request itself carries (`context.patientId`); nothing else about the patient.
    pub patient_id: Option<String>,
    pub rules_fired: Vec<String>,
    pub cards: Vec<CardRecord>,
    /// [`request_digest`] of the request: lets an auditor match a request kept elsewhere.
    pub request_sha256: Option<String>,
    pub latency_ms: f64,
    pub http_status: u16,
}

/// One card returned by an invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardRecord {
    pub uuid: Uuid,
    /// The rule id (the card's `source.topic.code`).
    pub rule_id: String,
    pub indicator: String,
    pub summary: String,
    /// The uuids of the card's suggestions: feedback may accept only these.
    pub suggestions: Vec<String>,
    /// The codes of the card's `overrideReasons`: an override may give only these.
    pub override_reasons: Vec<String>,
}

/// One feedback item (CDS Hooks 2.0 feedback endpoint) on one card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackRecord {
    pub card: Uuid,
    /// `accepted` or `overridden`.
    pub outcome: String,
    pub accepted_suggestions: Vec<String>,
    pub override_reason_code: Option<String>,
    pub override_reason_system: Option<String>,
    pub override_reason_display: Option<String>,
    pub user_comment: Option<String>,
    pub outcome_timestamp: DateTime<Utc>,
}

/// What one call to [`AuditStore::record_feedback`] stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct FeedbackStored {
    /// Items not seen before, now stored.
    pub new: u64,
    /// Items already stored (same card, outcome and outcome timestamp): kept once.
    pub duplicates: u64,
}

/// How often one override reason was given for a rule's cards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideReasonCount {
    pub code: Option<String>,
    pub system: Option<String>,
    pub display: Option<String>,
    pub count: u64,
}

impl OverrideReasonCount {
    /// A short human label: the display text, else the code, else a note that none was given.
    pub fn label(&self) -> String {
        match (&self.display, &self.code) {
            (Some(d), Some(c)) => format!("{d} [{c}]"),
            (Some(d), None) => d.clone(),
            (None, Some(c)) => c.clone(),
            (None, None) => "(no reason given)".to_string(),
        }
    }
}

/// Per-rule use and feedback over a period (invocations whose time falls in the period).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleStats {
    pub rule_id: String,
    /// Invocations in which the rule fired.
    pub fired: u64,
    /// Cards returned for the rule.
    pub cards: u64,
    /// Feedback items received on those cards.
    pub feedback: u64,
    pub accepted: u64,
    pub overridden: u64,
    /// Most frequent first.
    pub override_reasons: Vec<OverrideReasonCount>,
}

impl RuleStats {
    /// accepted / (accepted + overridden); `None` when no outcome was reported.
    pub fn acceptance_rate(&self) -> Option<f64> {
        let decided = self.accepted + self.overridden;
        (decided > 0).then(|| self.accepted as f64 / decided as f64)
    }
}

/// One line of the JSON Lines export: an invocation with its cards and their feedback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedInvocation {
    pub id: Uuid,
    pub time: DateTime<Utc>,
    pub service_id: String,
    pub hook: Option<String>,
    pub hook_instance: Option<String>,
    pub ehr_issuer: Option<String>,
    pub knowledge_version: String,
    /// Digest of the parameter set in force (`None` for calls recorded before it was kept).
    #[serde(default)]
    pub parameter_set: Option<String>,
    /// The values of that set and where each came from.
    #[serde(default)]
    pub parameters: Option<BTreeMap<String, ParameterValue>>,
    pub patient_id: Option<String>,
    pub request_sha256: Option<String>,
    pub latency_ms: f64,
    pub http_status: u16,
    pub rules_fired: Vec<String>,
    pub cards: Vec<ExportedCard>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedCard {
    pub uuid: Uuid,
    pub rule_id: String,
    pub indicator: String,
    pub summary: String,
    /// Suggestion uuids and override reason codes the card offered (empty for cards recorded
    /// before they were kept).
    #[serde(default)]
    pub suggestions: Vec<String>,
    #[serde(default)]
    pub override_reasons: Vec<String>,
    pub feedback: Vec<ExportedFeedback>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedFeedback {
    pub outcome: String,
    pub accepted_suggestions: Vec<String>,
    pub override_reason_code: Option<String>,
    pub override_reason_system: Option<String>,
    pub override_reason_display: Option<String>,
    pub user_comment: Option<String>,
    pub outcome_timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub service_id: String,
}

/// The digest the audit trail records for a CDS Hooks request (`request_sha256`), lower-case
/// hex, never of a token:
///
/// - a request without a top-level `fhirAuthorization` (the only member that carries a token)
///   has nothing to remove: SHA-256 of its body, the bytes as received, which anyone holding
///   the EHR's copy can check with `sha256sum`;
/// - a request with one: [`canonical_request_digest`], SHA-256 of its canonical JSON without
///   that member, so the digest does not depend on the token and the same request sent with a
///   fresh token (or kept with the token removed) has the same digest.
///
/// The first form is SHA-256 over contiguous bytes instead of a walk of the parsed tree and
/// SHA-256 of its text: ≈ 25 µs (20–50 in single rounds) less audit CPU per call in the
/// service for the 32 kB example request, where the canonical digest was the largest single
/// part of the audit's cost (docs/performance.md). Records made before it used the canonical form for every request;
/// `rps-cds replay` accepts either.
pub fn request_digest(body: &[u8], request: &serde_json::Value) -> String {
    if carries_token(request) {
        canonical_request_digest(request)
    } else {
        hex::encode(Sha256::digest(body))
    }
}

/// Whether the request has a top-level `fhirAuthorization` (even `null`): the canonical form
/// applies.
fn carries_token(request: &serde_json::Value) -> bool {
    request
        .as_object()
        .is_some_and(|m| m.contains_key("fhirAuthorization"))
}

/// SHA-256 (lower-case hex) of the canonical JSON of a CDS Hooks request with its
/// `fhirAuthorization` (the access token) removed, so the digest never depends on a token and
/// the same request sent with a fresh token has the same digest. Canonical = compact serde_json
/// output with object keys in byte order at every level.
///
/// serde_json (without its `preserve_order` feature, which
/// `tests::serde_json_keeps_object_keys_in_byte_order` guards) keeps an object's keys in a
/// `BTreeMap`, so its own compact serializer already writes them in byte order: the text is
/// written in one pass, no key is sorted or looked up again. Only the top-level object is
/// written here, to leave out `fhirAuthorization`.
pub fn canonical_request_digest(request: &serde_json::Value) -> String {
    // The serializer writes a few bytes at a time; SHA-256 gets them in 16 kB blocks.
    let mut out = std::io::BufWriter::with_capacity(DIGEST_BUFFER, HashWriter(Sha256::new()));
    let written = match request {
        serde_json::Value::Object(map) => write_without_authorization(&mut out, map),
        other => serde_json::to_writer(&mut out, other),
    };
    // Writing into a hasher cannot fail; strings and numbers always serialize.
    debug_assert!(written.is_ok());
    // No flush needed: what is still buffered is handed back and hashed here.
    let (HashWriter(mut hasher), buffered) = out.into_parts();
    hasher.update(buffered.unwrap_or_else(|panicked| panicked.into_inner()));
    hex::encode(hasher.finalize())
}

/// Bytes of canonical JSON buffered before they are fed to SHA-256.
const DIGEST_BUFFER: usize = 16 * 1024;

struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The top-level object as serde_json writes it (keys in map order, which is byte order),
/// without its `fhirAuthorization` member.
fn write_without_authorization(
    w: &mut impl Write,
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), serde_json::Error> {
    w.write_all(b"{").map_err(serde_json::Error::io)?;
    let members = map
        .iter()
        .filter(|(k, _)| k.as_str() != "fhirAuthorization");
    for (i, (key, value)) in members.enumerate() {
        if i > 0 {
            w.write_all(b",").map_err(serde_json::Error::io)?;
        }
        serde_json::to_writer(&mut *w, key)?;
        w.write_all(b":").map_err(serde_json::Error::io)?;
        serde_json::to_writer(&mut *w, value)?;
    }
    w.write_all(b"}").map_err(serde_json::Error::io)
}

/// Times are kept to the microsecond (PostgreSQL's resolution) in both backends, so the
/// feedback duplicate key and range filters behave the same on either.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

fn check_outcome(item: &FeedbackRecord) -> Result<(), StorageError> {
    match item.outcome.as_str() {
        "accepted" | "overridden" => Ok(()),
        other => Err(StorageError::InvalidFeedback(format!(
            "outcome must be \"accepted\" or \"overridden\", not {other:?}"
        ))),
    }
}

/// Checks one feedback item (position `index` in the call) against what its card offered:
/// every accepted suggestion must be one of the card's, and an override reason code must be
/// one of the card's `overrideReasons` (in their code system, when a system is given).
fn check_against_card(
    index: usize,
    item: &FeedbackRecord,
    suggestions: &[String],
    override_reasons: &[String],
) -> Result<(), StorageError> {
    for (j, s) in item.accepted_suggestions.iter().enumerate() {
        if !suggestions.contains(s) {
            return Err(StorageError::FeedbackMismatch {
                path: format!("feedback[{index}].acceptedSuggestions[{j}].id"),
                message: format!("card {} offered no suggestion {s:?}", item.card),
            });
        }
    }
    if let Some(system) = &item.override_reason_system
        && item.override_reason_code.is_some()
        && system != crate::knowledge::OVERRIDE_REASON_SYSTEM
    {
        return Err(StorageError::FeedbackMismatch {
            path: format!("feedback[{index}].overrideReason.reason.system"),
            message: format!(
                "the card's override reasons are in {}, not {system:?}",
                crate::knowledge::OVERRIDE_REASON_SYSTEM
            ),
        });
    }
    if let Some(code) = &item.override_reason_code
        && !override_reasons.contains(code)
    {
        return Err(StorageError::FeedbackMismatch {
            path: format!("feedback[{index}].overrideReason.reason.code"),
            message: if override_reasons.is_empty() {
                format!(
                    "card {} listed no override reasons, so none can be given",
                    item.card
                )
            } else {
                format!(
                    "{code:?} is not among the card's override reasons ({})",
                    override_reasons.join(", ")
                )
            },
        });
    }
    Ok(())
}

/// A JSON array of strings as stored (suggestions, override reasons); NULL (cards recorded
/// before migration 0002) is the empty list.
fn parse_string_list(s: Option<&str>) -> Result<Vec<String>, StorageError> {
    match s {
        None => Ok(Vec::new()),
        Some(s) => serde_json::from_str(s)
            .map_err(|_| StorageError::Corrupt(format!("not a JSON array of strings: {s:?}"))),
    }
}

fn parse_parameters(
    s: Option<&str>,
) -> Result<Option<BTreeMap<String, ParameterValue>>, StorageError> {
    s.map(|s| {
        serde_json::from_str(s)
            .map_err(|_| StorageError::Corrupt(format!("not a parameter set: {s:?}")))
    })
    .transpose()
}

/// A card as the invocation's `cards` column keeps it (SQLite 0004, PostgreSQL 0003): one JSON array
/// `[uuid, rule_id, indicator, summary, suggestions, override_reasons]`, no field names, so
/// the row (and the pages a commit writes) stays small.
#[derive(Serialize)]
struct CardColumns<'a>(
    &'a Uuid,
    &'a str,
    &'a str,
    &'a str,
    &'a [String],
    &'a [String],
);

impl<'a> CardColumns<'a> {
    fn of(c: &'a CardRecord) -> Self {
        CardColumns(
            &c.uuid,
            &c.rule_id,
            &c.indicator,
            &c.summary,
            &c.suggestions,
            &c.override_reasons,
        )
    }
}

/// [`CardColumns`] read back; the two lists are null for cards recorded before 0002.
#[derive(Deserialize)]
struct StoredCard(
    Uuid,
    String,
    String,
    String,
    Option<Vec<String>>,
    Option<Vec<String>>,
);

impl StoredCard {
    fn exported(self) -> ExportedCard {
        ExportedCard {
            uuid: self.0,
            rule_id: self.1,
            indicator: self.2,
            summary: self.3,
            suggestions: self.4.unwrap_or_default(),
            override_reasons: self.5.unwrap_or_default(),
            feedback: Vec::new(),
        }
    }
}

/// The `cards` column of an invocation.
fn parse_cards(s: &str) -> Result<Vec<StoredCard>, StorageError> {
    serde_json::from_str(s)
        .map_err(|_| StorageError::Corrupt(format!("not a stored card list: {s:?}")))
}

/// The `rules` column of an invocation.
fn parse_rules(s: &str) -> Result<Vec<String>, StorageError> {
    parse_string_list(Some(s))
}

/// What a card offered, which feedback on it is checked against, and its rule.
struct Offered {
    rule_id: String,
    suggestions: Vec<String>,
    reasons: Vec<String>,
}

impl From<StoredCard> for Offered {
    fn from(card: StoredCard) -> Self {
        Offered {
            rule_id: card.1,
            suggestions: card.4.unwrap_or_default(),
            reasons: card.5.unwrap_or_default(),
        }
    }
}

/// What card `uuid` offered, from the `cards` column of the invocation that `card_index` names
/// for it (which must list it).
fn offered_by(cards: &str, uuid: Uuid) -> Result<Offered, StorageError> {
    offered_by_named(cards, uuid)?
        .ok_or_else(|| StorageError::Corrupt(format!("card {uuid} indexed but not stored")))
}

/// What card `uuid` offered, if the `cards` column of the invocation its uuid names lists it
/// (`ids::invocation_of_card`).
fn offered_by_named(cards: &str, uuid: Uuid) -> Result<Option<Offered>, StorageError> {
    Ok(parse_cards(cards)?
        .into_iter()
        .find(|c| c.0 == uuid)
        .map(Offered::from))
}

/// The `rules` and `cards` columns of an invocation as the export shows them.
fn stored_rules_and_cards(
    rules: &str,
    cards: &str,
) -> Result<(Vec<String>, Vec<ExportedCard>), StorageError> {
    Ok((
        parse_rules(rules)?,
        parse_cards(cards)?
            .into_iter()
            .map(StoredCard::exported)
            .collect(),
    ))
}

/// Rule ids in first-fired order, each once (the table keys on invocation + rule id).
fn unique_rules(rules: &[String]) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    rules
        .iter()
        .map(String::as_str)
        .filter(|r| seen.insert(*r))
        .collect()
}

fn parse_uuid(s: &str) -> Result<Uuid, StorageError> {
    Uuid::parse_str(s).map_err(|_| StorageError::Corrupt(format!("not a UUID: {s:?}")))
}

fn http_status(v: i64) -> Result<u16, StorageError> {
    u16::try_from(v).map_err(|_| StorageError::Corrupt(format!("not an HTTP status: {v}")))
}

fn count(v: i64) -> u64 {
    // COUNT(*) is never negative.
    u64::try_from(v).unwrap_or(0)
}

/// Rows of the per-rule report queries, merged into [`RuleStats`] the same way for both backends.
#[derive(Default)]
struct StatsRows {
    fired: Vec<(String, i64)>,
    cards: Vec<(String, i64)>,
    outcomes: Vec<(String, String, i64)>,
    reasons: Vec<ReasonRow>,
}

/// (rule id, override reason code, system, display, count)
type ReasonRow = (String, Option<String>, Option<String>, Option<String>, i64);

impl StatsRows {
    fn merge(self) -> Vec<RuleStats> {
        let mut by_rule: BTreeMap<String, RuleStats> = BTreeMap::new();
        fn get(m: &mut BTreeMap<String, RuleStats>, rule: String) -> &mut RuleStats {
            m.entry(rule.clone()).or_insert_with(|| RuleStats {
                rule_id: rule,
                fired: 0,
                cards: 0,
                feedback: 0,
                accepted: 0,
                overridden: 0,
                override_reasons: Vec::new(),
            })
        }
        for (rule, n) in self.fired {
            get(&mut by_rule, rule).fired = count(n);
        }
        for (rule, n) in self.cards {
            get(&mut by_rule, rule).cards = count(n);
        }
        for (rule, outcome, n) in self.outcomes {
            let s = get(&mut by_rule, rule);
            s.feedback += count(n);
            match outcome.as_str() {
                "accepted" => s.accepted += count(n),
                "overridden" => s.overridden += count(n),
                _ => {}
            }
        }
        for (rule, code, system, display, n) in self.reasons {
            get(&mut by_rule, rule)
                .override_reasons
                .push(OverrideReasonCount {
                    code,
                    system,
                    display,
                    count: count(n),
                });
        }
        let mut out: Vec<RuleStats> = by_rule.into_values().collect();
        for s in &mut out {
            s.override_reasons.sort_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then_with(|| a.label().cmp(&b.label()))
            });
        }
        out
    }
}

/// One rule in one ISO week (weeks start on Monday, UTC): the governance page's sparkline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleWeek {
    pub rule_id: String,
    /// The Monday the week starts on.
    pub week: NaiveDate,
    pub fired: u64,
    pub accepted: u64,
    pub overridden: u64,
}

impl RuleWeek {
    /// overridden / (accepted + overridden); `None` without feedback that week.
    pub fn override_rate(&self) -> Option<f64> {
        let decided = self.accepted + self.overridden;
        (decided > 0).then(|| self.overridden as f64 / decided as f64)
    }
}

/// How many invocations of one week ran on one knowledge version and parameter set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigurationWeek {
    pub week: NaiveDate,
    pub knowledge_version: String,
    /// `None` for calls recorded without a parameter set (before it was kept, or refused
    /// before evaluation).
    pub parameter_set: Option<String>,
    pub invocations: u64,
}

/// What the governance page (`GET /admin`) shows, read from one snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Governance {
    /// The same numbers as [`AuditStore::rule_stats`].
    pub rules: Vec<RuleStats>,
    /// Per rule and week, weeks in order.
    pub weeks: Vec<RuleWeek>,
    /// Per week, knowledge version and parameter set, weeks in order.
    pub configurations: Vec<ConfigurationWeek>,
    /// The parameter sets named in `configurations`, by digest.
    pub parameter_sets: BTreeMap<String, BTreeMap<String, ParameterValue>>,
}

/// Rows of the per-day governance queries (day = `YYYY-MM-DD`, UTC), folded into weeks the
/// same way for both backends.
#[derive(Default)]
struct GovernanceRows {
    /// (rule id, day, invocations in which it fired)
    fired: Vec<(String, String, i64)>,
    /// (rule id, day, outcome, count) of checked feedback, by the day of the card's invocation.
    outcomes: Vec<(String, String, String, i64)>,
    /// (day, knowledge version, parameter set, invocations)
    configurations: Vec<(String, String, Option<String>, i64)>,
    /// (digest, parameters JSON)
    parameter_sets: Vec<(String, String)>,
}

fn week_of(day: &str) -> Result<NaiveDate, StorageError> {
    let d = NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| StorageError::Corrupt(format!("not a day: {day:?}")))?;
    Ok(d - chrono::Days::new(u64::from(d.weekday().num_days_from_monday())))
}

impl GovernanceRows {
    fn assemble(self, rules: Vec<RuleStats>) -> Result<Governance, StorageError> {
        let mut weeks: BTreeMap<(String, NaiveDate), RuleWeek> = BTreeMap::new();
        fn get(
            m: &mut BTreeMap<(String, NaiveDate), RuleWeek>,
            rule: String,
            week: NaiveDate,
        ) -> &mut RuleWeek {
            m.entry((rule.clone(), week)).or_insert_with(|| RuleWeek {
                rule_id: rule,
                week,
                fired: 0,
                accepted: 0,
                overridden: 0,
            })
        }
        for (rule, day, n) in self.fired {
            get(&mut weeks, rule, week_of(&day)?).fired += count(n);
        }
        for (rule, day, outcome, n) in self.outcomes {
            let w = get(&mut weeks, rule, week_of(&day)?);
            match outcome.as_str() {
                "accepted" => w.accepted += count(n),
                "overridden" => w.overridden += count(n),
                _ => {}
            }
        }
        let mut configurations: BTreeMap<(NaiveDate, String, Option<String>), u64> =
            BTreeMap::new();
        for (day, version, set, n) in self.configurations {
            *configurations
                .entry((week_of(&day)?, version, set))
                .or_insert(0) += count(n);
        }
        let mut parameter_sets = BTreeMap::new();
        for (digest, json) in self.parameter_sets {
            if let Some(p) = parse_parameters(Some(&json))? {
                parameter_sets.insert(digest, p);
            }
        }
        Ok(Governance {
            rules,
            weeks: weeks.into_values().collect(),
            configurations: configurations
                .into_iter()
                .map(
                    |((week, knowledge_version, parameter_set), invocations)| ConfigurationWeek {
                        week,
                        knowledge_version,
                        parameter_set,
                        invocations,
                    },
                )
                .collect(),
            parameter_sets,
        })
    }
}

/// One page of exported invocations (rules and cards already in place: they are columns of
/// the invocation row) and the feedback on their cards, assembled the same way for both
/// backends.
struct ExportPage {
    invocations: Vec<ExportedInvocation>,
    /// (card uuid, feedback) in outcome time order.
    feedback: Vec<(Uuid, ExportedFeedback)>,
}

impl ExportPage {
    /// The page's invocations; feedback is added by each backend (its timestamp types differ).
    fn new(invocations: Vec<ExportedInvocation>, feedback_capacity: usize) -> Self {
        Self {
            invocations,
            feedback: Vec::with_capacity(feedback_capacity),
        }
    }

    fn assemble(self) -> Vec<ExportedInvocation> {
        let mut feedback: BTreeMap<Uuid, Vec<ExportedFeedback>> = BTreeMap::new();
        for (card, f) in self.feedback {
            feedback.entry(card).or_default().push(f);
        }
        let mut out = self.invocations;
        for inv in &mut out {
            for c in &mut inv.cards {
                c.feedback = feedback.remove(&c.uuid).unwrap_or_default();
            }
        }
        out
    }
}

/// Invocations per export page: bounds memory whatever the range.
const EXPORT_PAGE: i64 = 500;
/// Invocations deleted per purge statement: keeps each write transaction short so the group
/// commit is never held up for long.
const PURGE_CHUNK: i64 = 2_000;

fn write_jsonl(
    out: &mut (dyn Write + Send),
    invocations: &[ExportedInvocation],
) -> Result<(), StorageError> {
    for inv in invocations {
        serde_json::to_writer(&mut *out, inv)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[derive(Clone)]
enum Db {
    Sqlite(sqlite::SqliteDb),
    Postgres(sqlx::PgPool),
}

/// A record waiting for the writer, with the channel on which its caller waits for the commit.
struct Job {
    record: InvocationRecord,
    done: oneshot::Sender<Result<(), StorageError>>,
}

/// What the writer's queue carries: records for the group commit and, on SQLite, the other
/// writes, so that one connection (the writer thread's) does every write in order.
// Records are nearly every message: boxing them to shrink the rare commands' slots would cost
// an allocation per call.
#[allow(clippy::large_enum_variant)]
enum Message {
    Record(Job),
    Sqlite(sqlite::Command),
}

/// The writer: a dedicated OS thread on SQLite (synchronous SQLite calls, no async hand-off
/// per batch), a Tokio task on PostgreSQL (its pool is async).
enum Writer {
    Thread(std::thread::JoinHandle<()>),
    Task(JoinHandle<()>),
}

impl Writer {
    fn is_finished(&self) -> bool {
        match self {
            Writer::Thread(h) => h.is_finished(),
            Writer::Task(h) => h.is_finished(),
        }
    }
}

struct Inner {
    db: Db,
    /// Taken (dropped) by `close`, which lets the writer drain the queue and stop.
    sender: Mutex<Option<mpsc::Sender<Message>>>,
    writer: tokio::sync::Mutex<Option<Writer>>,
    /// Records taken from the queue and not yet answered (the batch being written).
    in_flight: Arc<AtomicUsize>,
    /// Calls announced by [`AuditStore::expect_record`] whose record is not queued yet.
    expected: Arc<Gather>,
}

/// A call that will hand its record to the writer soon (from [`AuditStore::expect_record`]);
/// dropping it withdraws the announcement. The SQLite writer holds a commit back briefly while
/// announced records are on their way, so a commit (and its fsync and page writes, the bulk of
/// the audit's CPU) serves several calls instead of one or two.
pub struct RecordExpected {
    expected: Arc<Gather>,
}

impl Drop for RecordExpected {
    fn drop(&mut self) {
        self.expected.withdraw();
    }
}

/// The announced calls ([`RecordExpected`]) and the writer thread waiting for them. The writer
/// does not take a wake-up per record while it holds a commit back: it sleeps, and only the
/// call whose withdrawal leaves nothing announced wakes it (one wake-up per commit instead of
/// one per gathered record, on both sides of the hand-off).
#[derive(Default)]
struct Gather {
    /// Announced and not yet withdrawn.
    count: AtomicUsize,
    /// Set by the writer thread while it sleeps until nothing is announced (or its deadline).
    waiting: AtomicBool,
    /// The SQLite writer thread (set as it starts; PostgreSQL's writer does not gather).
    writer: OnceLock<std::thread::Thread>,
}

impl Gather {
    fn announce(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    fn withdraw(&self) {
        // SeqCst on both atomics, on both sides: either the writer sees the count at zero
        // before it sleeps, or this sees `waiting` and wakes it.
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1
            && self.waiting.load(Ordering::SeqCst)
            && let Some(writer) = self.writer.get()
        {
            writer.unpark();
        }
    }

    /// Calls announced whose records are not queued yet.
    fn announced(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// The writer thread: sleeps up to `left` while calls are announced; returns at once if
    /// none is, early when the last one is withdrawn (or spuriously: callers re-check).
    fn wait_for_announced(&self, left: std::time::Duration) {
        self.waiting.store(true, Ordering::SeqCst);
        if self.announced() > 0 {
            std::thread::park_timeout(left);
        }
        self.waiting.store(false, Ordering::SeqCst);
    }
}

/// The audit store: cheap to clone, shared by all HTTP workers.
#[derive(Clone)]
pub struct AuditStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No URL here: it may carry a password.
        f.debug_struct("AuditStore")
            .field("backend", &self.backend())
            .field("queue_depth", &self.queue_depth())
            .finish()
    }
}

impl AuditStore {
    /// Connects (creating the SQLite file and its directory if needed), applies the migrations
    /// and starts the group-commit writer (a thread on SQLite, a task on PostgreSQL). Must be
    /// called inside a Tokio runtime.
    pub async fn open(cfg: &StorageConfig) -> Result<Self, StorageError> {
        if cfg.batch_max == 0 || cfg.queue_capacity == 0 {
            return Err(StorageError::Config(
                "batch_max and queue_capacity must be at least 1".into(),
            ));
        }
        let (sender, receiver) = mpsc::channel(cfg.queue_capacity);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let expected = Arc::new(Gather::default());
        let sqlite_options = match cfg.url.as_deref() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => None,
            Some(url) if url.starts_with("sqlite:") => Some(sqlite::options(Some(url), cfg)?),
            None => Some(sqlite::options(None, cfg)?),
            // Never echo the URL: it may carry a password.
            Some(_) => {
                return Err(StorageError::Config(
                    "storage url must start with postgres://, postgresql:// or sqlite:".into(),
                ));
            }
        };
        let (db, writer) = match (sqlite_options, cfg.url.as_deref()) {
            (Some(opts), _) => {
                let (db, thread) = sqlite::SqliteDb::open(
                    opts,
                    receiver,
                    sqlite::WriterConfig {
                        batch_max: cfg.batch_max,
                        gather_max: std::time::Duration::from_micros(cfg.gather_max_us),
                    },
                    in_flight.clone(),
                    expected.clone(),
                )
                .await?;
                (Db::Sqlite(db), Writer::Thread(thread))
            }
            (None, Some(url)) => {
                let pool = postgres::open(url, cfg.max_connections).await?;
                let task = tokio::spawn(run_postgres_writer(
                    pool.clone(),
                    receiver,
                    cfg.batch_max,
                    in_flight.clone(),
                ));
                (Db::Postgres(pool), Writer::Task(task))
            }
            (None, None) => unreachable!("no URL selects SQLite"),
        };
        let store = AuditStore {
            inner: Arc::new(Inner {
                db,
                sender: Mutex::new(Some(sender)),
                writer: tokio::sync::Mutex::new(Some(writer)),
                in_flight,
                expected,
            }),
        };
        tracing::info!(backend = %store.backend(), "audit store open");
        Ok(store)
    }

    /// Queues the record for the writer and returns once it is committed (group commit).
    /// Waits for room when the queue is full (back-pressure). If the caller gives up while
    /// waiting for the commit, the record is still written.
    pub async fn record_invocation(&self, rec: InvocationRecord) -> Result<(), StorageError> {
        self.record_expected_invocation(rec, None).await
    }

    /// Announces a call that will record an invocation shortly (the HTTP handler, when it
    /// starts evaluating): see [`RecordExpected`]. Pass it to
    /// [`AuditStore::record_expected_invocation`] or drop it.
    pub fn expect_record(&self) -> RecordExpected {
        self.inner.expected.announce();
        RecordExpected {
            expected: self.inner.expected.clone(),
        }
    }

    /// [`AuditStore::record_invocation`] for an announced call: the announcement is withdrawn
    /// once the record is queued, before the commit is awaited.
    pub async fn record_expected_invocation(
        &self,
        rec: InvocationRecord,
        announced: Option<RecordExpected>,
    ) -> Result<(), StorageError> {
        if cfg!(feature = "unaudited-baseline") {
            // Benchmark build only: the "without audit" baseline of scripts/load.sh.
            return Ok(());
        }
        let (done, committed) = oneshot::channel();
        let queued = self.send(Message::Record(Job { record: rec, done })).await;
        // Withdrawn after the record is queued: a writer that sees nothing announced any more
        // finds this record in the queue and takes it into the commit it is about to make.
        drop(announced);
        queued?;
        // The writer answers every job; a dropped answer means the writer itself stopped.
        committed.await.map_err(|_| StorageError::Closed)?
    }

    /// Stores the effective parameter set once (by digest; storing it again does nothing).
    /// Records name it by [`InvocationRecord::parameter_set`], so it must be stored first.
    pub async fn record_parameter_set(&self, set: &ParameterSet) -> Result<(), StorageError> {
        let parameters = serde_json::to_string(&set.parameters)?;
        let now = micros(Utc::now());
        match &self.inner.db {
            Db::Sqlite(_) => {
                let digest = set.digest.clone();
                self.sqlite(|reply| sqlite::Command::ParameterSet {
                    digest,
                    parameters,
                    at: now,
                    reply,
                })
                .await
            }
            Db::Postgres(pool) => {
                postgres::record_parameter_set(pool, &set.digest, &parameters, now).await
            }
        }
    }

    /// Stores the feedback items of one feedback call, all or nothing. A card unknown to this
    /// service makes the whole call fail with [`StorageError::UnknownCard`]; an accepted
    /// suggestion the card did not offer, or an override reason it did not list, with
    /// [`StorageError::FeedbackMismatch`]. An item already stored (same card, outcome and
    /// outcome timestamp) is kept once and counted as duplicate.
    pub async fn record_feedback(
        &self,
        service_id: &str,
        items: &[FeedbackRecord],
    ) -> Result<FeedbackStored, StorageError> {
        for item in items {
            check_outcome(item)?;
        }
        let received_at = micros(Utc::now());
        match &self.inner.db {
            Db::Sqlite(_) => {
                let (service_id, items) = (service_id.to_owned(), items.to_vec());
                self.sqlite(|reply| sqlite::Command::Feedback {
                    service_id,
                    items,
                    received_at,
                    reply,
                })
                .await
            }
            Db::Postgres(pool) => {
                postgres::record_feedback(pool, service_id, items, received_at).await
            }
        }
    }

    /// Per rule id, over invocations with `from <= time < to` (open ends when `None`), sorted
    /// by rule id. Only feedback checked against its card counts.
    pub async fn rule_stats(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<RuleStats>, StorageError> {
        Ok(self.governance(from, to).await?.rules)
    }

    /// Everything the governance page shows, from one snapshot: the per-rule numbers of
    /// [`AuditStore::rule_stats`], the same per ISO week, and the knowledge versions and
    /// parameter sets in use per week.
    pub async fn governance(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Governance, StorageError> {
        let (from, to) = (from.map(micros), to.map(micros));
        let (stats, rows) = match &self.inner.db {
            Db::Sqlite(db) => db.governance(from, to).await?,
            Db::Postgres(pool) => postgres::governance(pool, from, to).await?,
        };
        rows.assemble(stats.merge())
    }

    /// Writes one JSON object per invocation with `from <= time < to`, in time order, with its
    /// rules, cards and their feedback, read from one consistent snapshot. Returns the number
    /// of invocations written.
    pub async fn export_jsonl(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        out: &mut (dyn Write + Send),
    ) -> Result<u64, StorageError> {
        let n = match &self.inner.db {
            Db::Sqlite(db) => db.export(micros(from), micros(to), out).await?,
            Db::Postgres(pool) => postgres::export(pool, micros(from), micros(to), out).await?,
        };
        out.flush()?;
        Ok(n)
    }

    /// The invocation with this id as the export shows it, `None` if there is none.
    pub async fn invocation(&self, id: Uuid) -> Result<Option<ExportedInvocation>, StorageError> {
        match &self.inner.db {
            Db::Sqlite(db) => db.invocation(id).await,
            Db::Postgres(pool) => postgres::invocation(pool, id).await,
        }
    }

    /// Deletes the invocations older than `cutoff` with their rules, cards and feedback.
    /// Returns the number of invocations deleted.
    pub async fn purge_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, StorageError> {
        let cutoff = micros(cutoff);
        let n = match &self.inner.db {
            Db::Sqlite(_) => {
                let mut total = 0u64;
                loop {
                    // One chunk per command, so group commits interleave with a long purge.
                    let n = self
                        .sqlite(|reply| sqlite::Command::PurgeChunk { cutoff, reply })
                        .await?;
                    total += n;
                    if n < PURGE_CHUNK as u64 {
                        break total;
                    }
                }
            }
            Db::Postgres(pool) => postgres::purge(pool, cutoff).await?,
        };
        tracing::info!(deleted = n, "audit purge done");
        Ok(n)
    }

    /// Readiness: the database answers and the writer is running.
    pub async fn ping(&self) -> Result<(), StorageError> {
        match self.inner.writer.lock().await.as_ref() {
            Some(w) if !w.is_finished() => {}
            _ => return Err(StorageError::Closed),
        }
        match &self.inner.db {
            Db::Sqlite(db) => db.ping().await,
            Db::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
                Ok(())
            }
        }
    }

    /// Records queued or being written, not yet committed (for metrics).
    pub fn queue_depth(&self) -> usize {
        let queued = self
            .sender()
            .map(|s| s.max_capacity() - s.capacity())
            .unwrap_or(0);
        queued + self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// Graceful shutdown: stops accepting records, commits everything already queued, stops the
    /// writer and closes the connections. Idempotent.
    pub async fn close(&self) {
        drop(
            self.inner
                .sender
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        // Senders cloned by callers still in `send` keep the channel open until they finish.
        let writer = self.inner.writer.lock().await.take();
        let ended = match writer {
            Some(Writer::Task(handle)) => handle.await.map_err(|e| e.to_string()),
            Some(Writer::Thread(handle)) => tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|e| e.to_string())
                .and_then(|joined| joined.map_err(|_| "panicked".to_owned())),
            None => Ok(()),
        };
        if let Err(e) = ended {
            tracing::error!(error = %e, "audit writer ended abnormally");
        }
        match &self.inner.db {
            Db::Sqlite(db) => db.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }

    pub fn backend(&self) -> Backend {
        match self.inner.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// The PostgreSQL pool (shared with the JWT replay guard), `None` on SQLite.
    pub fn postgres_pool(&self) -> Option<sqlx::PgPool> {
        match &self.inner.db {
            Db::Postgres(pool) => Some(pool.clone()),
            Db::Sqlite(_) => None,
        }
    }

    fn sender(&self) -> Option<mpsc::Sender<Message>> {
        self.inner
            .sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn send(&self, message: Message) -> Result<(), StorageError> {
        let sender = self.sender().ok_or(StorageError::Closed)?;
        sender.send(message).await.map_err(|_| StorageError::Closed)
    }

    /// Runs one write on the SQLite writer thread and waits for its answer.
    async fn sqlite<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, StorageError>>) -> sqlite::Command,
    ) -> Result<T, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.send(Message::Sqlite(command(reply))).await?;
        answer.await.map_err(|_| StorageError::Closed)?
    }
}

/// The PostgreSQL group-commit loop: take whatever is queued (up to `batch_max`), write it in
/// one transaction, commit, then answer every caller. Ends when the channel is closed and
/// drained.
async fn run_postgres_writer(
    pool: sqlx::PgPool,
    mut receiver: mpsc::Receiver<Message>,
    batch_max: usize,
    in_flight: Arc<AtomicUsize>,
) {
    let mut messages: Vec<Message> = Vec::with_capacity(batch_max);
    let mut batch: Vec<Job> = Vec::with_capacity(batch_max);
    while receiver.recv_many(&mut messages, batch_max).await > 0 {
        for m in messages.drain(..) {
            match m {
                Message::Record(job) => batch.push(job),
                // Only the SQLite store sends these.
                Message::Sqlite(_) => {}
            }
        }
        in_flight.store(batch.len(), Ordering::Relaxed);
        let records: Vec<&InvocationRecord> = batch.iter().map(|j| &j.record).collect();
        let started = std::time::Instant::now();
        let result = postgres::write_batch(&pool, &records).await;
        crate::telemetry::record_audit_commit(started.elapsed().as_secs_f64(), records.len());
        match result {
            Ok(()) => answer_all(&in_flight, &mut batch, Ok(())),
            Err(e) if batch.len() > 1 => {
                warn_batch_failed(&e, batch.len());
                for job in batch.drain(..) {
                    let result = postgres::write_batch(&pool, &[&job.record]).await;
                    answer_one(&in_flight, job, result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "audit record not stored");
                answer_all(&in_flight, &mut batch, Err(e));
            }
        }
    }
}

fn warn_batch_failed(e: &StorageError, records: usize) {
    // Nothing of the batch was committed. Each record is then written on its own so one bad
    // record (or a transient failure) does not cost the others their audit entry.
    tracing::warn!(error = %e, records, "audit batch failed; retrying records one by one");
}

/// Answers every caller of a batch with the same outcome.
fn answer_all(in_flight: &AtomicUsize, batch: &mut Vec<Job>, result: Result<(), StorageError>) {
    for job in batch.drain(..) {
        answer(in_flight, job, result.clone());
    }
}

/// Answers the caller of a record retried on its own.
fn answer_one(in_flight: &AtomicUsize, job: Job, result: Result<(), StorageError>) {
    if let Err(e) = &result {
        tracing::error!(error = %e, invocation = %job.record.id, "audit record not stored");
    }
    answer(in_flight, job, result);
}

/// Answers one caller, having first taken its record out of the pending count so that a
/// caller who sees its answer never sees its own record in `queue_depth`.
fn answer(in_flight: &AtomicUsize, job: Job, result: Result<(), StorageError>) {
    in_flight.fetch_sub(1, Ordering::Relaxed);
    // The caller may have given up waiting; its record is committed (or not) all the same.
    let _ = job.done.send(result);
}

/// Builds a migrator from migration files embedded at compile time (`version`, `description`,
/// SQL). Versions must only ever be added: sqlx checks the checksum of every applied one.
fn migrator(files: &[(i64, &'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(
        files
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    (*description).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The canonical text as first defined (and written until the single-pass digest): keys
    /// collected and sorted explicitly at every level, each value looked up by its key. The
    /// digest must stay SHA-256 of exactly this text, or stored digests stop matching.
    fn canonical_by_explicit_sort(v: &Value, top: bool, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map
                    .keys()
                    .filter(|k| !(top && k.as_str() == "fhirAuthorization"))
                    .collect();
                keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(key).unwrap());
                    out.push(':');
                    canonical_by_explicit_sort(&map[key], false, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical_by_explicit_sort(item, false, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&serde_json::to_string(scalar).unwrap()),
        }
    }

    fn sha256_hex(text: &str) -> String {
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    /// `request_digest` relies on serde_json writing object keys in byte order. Its
    /// `preserve_order` feature (insertion order), switched on by any crate in the build, would
    /// silently change every digest: this fails first.
    #[test]
    fn serde_json_keeps_object_keys_in_byte_order() {
        let mut map = serde_json::Map::new();
        for key in ["b", "a", "é", "Z", "aa", "", "_", "A", "ab"] {
            map.insert(key.to_owned(), Value::Null);
        }
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["", "A", "Z", "_", "a", "aa", "ab", "b", "é"],
            "serde_json no longer keeps keys in byte order (feature preserve_order?)"
        );
        let parsed: Value =
            serde_json::from_str(r#"{"z":{"y":1,"x":2},"a":[{"c":3,"b":4}]}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            r#"{"a":[{"b":4,"c":3}],"z":{"x":2,"y":1}}"#
        );
    }

    /// A request with keys out of order at every level, escapes, non-ASCII keys, numbers of
    /// every kind and a token (top level) that must not count, while a nested member of the
    /// same name does.
    const PROBE: &str = r#"{"prefetch":{"z":[1,-0,0.5,1e300,-12345678901234567890,18446744073709551615,-9223372036854775808,1.0,2.5e-8,true,false,null,[],{}],"ä":"ü\u0000\u001f\"\\\/\b\f\n\r\t","Z":{"é":"日本語 😀","e":"\ud83d\ude00","a b":"x"},"aa":1,"a":2,"ab":3,"A":4,"_":5,"":6},"fhirAuthorization":{"access_token":"secret-token","token_type":"Bearer","expires_in":300,"scope":"patient/*.read","subject":"cds"},"hookInstance":"d1577c69-dfbe-44ad-ba6d-3e05e953b2ea","hook":"patient-view","context":{"patientId":"pat-1","userId":"Practitioner/1","nested":{"fhirAuthorization":"kept: only the top-level member is the token"}},"fhirServer":"https://fhir.example.org"}"#;

    /// Digests recorded with the explicit-sort implementation (commit 0eb4d4a, before the
    /// single-pass writer), for requests inside the repository and real data beside it.
    const RECORDED: &[(&str, &str)] = &[
        (
            "PROBE",
            "24546e2d51dee32567d27f6c9ec9df4ed074705942ae5f01aa1706f8efcb2b3c",
        ),
        (
            "examples/patient-view-local-recurrence.json",
            "d6bd6faac612d04c042843ade8bdddc3d7723160fe78573bc368b057f732a814",
        ),
        (
            "examples/patient-view-metastatic.json",
            "918f2ea39aab0a7876e469460610754bd01ec558ec032d3cbe8cb872ab5ac4ef",
        ),
        (
            "examples/order-select.json",
            "bdb6f27dfec81043a3b2ccf691ee73400e065994c40d6debf1da0c678e00de65",
        ),
        (
            "examples/order-sign.json",
            "9a2173a4f4811bc6e5c8601bc080819addd53da2bdcf75a53d2a71795f6bc98c",
        ),
        (
            "../shared/realdata/unicode-probe/uni-13.json",
            "8ed7cb5d04110d9dfc6e4bee3e8b94a25b79c5e54cdc6aa6886079d31ae9dbe2",
        ),
        (
            "../shared/realdata/unicode-probe/uni-14.json",
            "1c670bddb784dc04b6245ea108a42cba86ed3f0eb901776d7b376114c47f00c0",
        ),
        (
            "../shared/realdata/canonical-probe/meta-_profile.json",
            "b9865334839d79f9035f432a8fe25f84fc787b7b4d4565d3f2524f49725e1037",
        ),
        (
            "../shared/realdata/onco/onco-ctm02-lms-sct-sct.json",
            "e92cb865f4a2b85edc802d581e16ed57c8941d0938387aca1f0b08aba221a989",
        ),
    ];

    fn recorded_request(name: &str) -> Value {
        if name == "PROBE" {
            return serde_json::from_str(PROBE).unwrap();
        }
        let path = format!("{}/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn request_digests_are_the_ones_recorded_before() {
        for (name, digest) in RECORDED {
            let request = recorded_request(name);
            assert_eq!(canonical_request_digest(&request), *digest, "{name}");
        }
    }

    #[test]
    fn request_digest_leaves_out_only_the_top_level_token() {
        let with_token: Value = serde_json::from_str(PROBE).unwrap();
        let mut without = with_token.clone();
        without.as_object_mut().unwrap().remove("fhirAuthorization");
        assert_eq!(
            canonical_request_digest(&with_token),
            canonical_request_digest(&without)
        );
        let mut nested_changed = with_token.clone();
        nested_changed["context"]["nested"]["fhirAuthorization"] = json!("other");
        assert_ne!(
            canonical_request_digest(&nested_changed),
            canonical_request_digest(&with_token)
        );
        // Not an object at the top: the text is serde_json's, nothing left out.
        let array = json!([{"b": 1, "a": 2}, "fhirAuthorization"]);
        assert_eq!(
            canonical_request_digest(&array),
            sha256_hex(r#"[{"a":2,"b":1},"fhirAuthorization"]"#)
        );
    }

    /// Without a token the digest is SHA-256 of the bytes as received (the pretty-printed
    /// example and its compact text differ); with one, the canonical digest without it, the
    /// same for any token, any formatting, and with the member removed.
    #[test]
    fn request_digest_hashes_the_body_unless_it_carries_a_token() {
        let path = format!(
            "{}/examples/patient-view-local-recurrence.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let pretty = std::fs::read(&path).unwrap();
        let value: Value = serde_json::from_slice(&pretty).unwrap();
        let compact = serde_json::to_vec(&value).unwrap();
        assert_eq!(
            request_digest(&pretty, &value),
            hex::encode(Sha256::digest(&pretty))
        );
        assert_eq!(
            request_digest(&compact, &value),
            hex::encode(Sha256::digest(&compact))
        );
        assert_ne!(
            request_digest(&pretty, &value),
            request_digest(&compact, &value)
        );

        let with_token: Value = serde_json::from_str(PROBE).unwrap();
        let canonical = canonical_request_digest(&with_token);
        assert_eq!(request_digest(PROBE.as_bytes(), &with_token), canonical);
        let pretty_probe = serde_json::to_vec_pretty(&with_token).unwrap();
        assert_eq!(request_digest(&pretty_probe, &with_token), canonical);
        let mut other_token = with_token.clone();
        other_token["fhirAuthorization"]["access_token"] = json!("another-token");
        let other_bytes = serde_json::to_vec(&other_token).unwrap();
        assert_eq!(request_digest(&other_bytes, &other_token), canonical);
        let mut null_token = with_token.clone();
        null_token["fhirAuthorization"] = Value::Null;
        assert_eq!(
            request_digest(&serde_json::to_vec(&null_token).unwrap(), &null_token),
            canonical
        );
        // Removed: nothing of the token is left to hash, the body is what counts.
        let mut removed = with_token.clone();
        removed.as_object_mut().unwrap().remove("fhirAuthorization");
        let removed_bytes = serde_json::to_vec(&removed).unwrap();
        assert_eq!(
            request_digest(&removed_bytes, &removed),
            hex::encode(Sha256::digest(&removed_bytes))
        );
        assert_eq!(canonical_request_digest(&removed), canonical);
    }

    /// The single-pass digest equals SHA-256 of the explicitly sorted canonical text for every
    /// request of the repository's examples and of the real data beside the checkout.
    #[test]
    fn request_digest_is_sha256_of_the_explicitly_sorted_text() {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut files: Vec<std::path::PathBuf> = Vec::new();
        for dir in [
            format!("{root}/examples"),
            format!("{root}/../shared/realdata/unicode-probe"),
            format!("{root}/../shared/realdata/canonical-probe"),
            format!("{root}/../shared/realdata/onco"),
            format!("{root}/../shared/realdata/mcode"),
        ] {
            let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
            for entry in entries {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "json") {
                    files.push(path);
                }
            }
        }
        assert!(files.len() > 20, "too few requests found: {}", files.len());
        let mut requests: Vec<(String, Value)> = files
            .iter()
            .map(|p| {
                let text = std::fs::read(p).unwrap();
                (
                    p.display().to_string(),
                    serde_json::from_slice(&text).unwrap(),
                )
            })
            .collect();
        requests.push(("PROBE".to_owned(), serde_json::from_str(PROBE).unwrap()));
        for (name, request) in &requests {
            let mut text = String::new();
            canonical_by_explicit_sort(request, true, &mut text);
            assert_eq!(
                canonical_request_digest(request),
                sha256_hex(&text),
                "{name}"
            );
        }
    }
}
