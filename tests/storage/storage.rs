//! Audit store tests, each run against SQLite (a temporary directory) and PostgreSQL (a fresh
//! database per test, created through RPS_CDS_TEST_POSTGRES_URL; see .ci/postgres.sh).
//! Without that variable the PostgreSQL variants are skipped, except under CI, where they fail.

use std::collections::HashSet;

use crate::support::postgres::TestPostgres;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use rps_cds::audit::cli::{self, ReportFormat};
use rps_cds::audit::{
    AuditStore, Backend, CardRecord, ExportedInvocation, FeedbackRecord, FeedbackStored,
    InvocationRecord, StorageConfig, StorageError, canonical_request_digest, card_uuid,
    new_invocation_id, request_digest,
};
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Sqlite,
    Postgres,
}

/// One test's private database: a temporary directory for SQLite, a fresh database for
/// PostgreSQL (dropped when the test ends, even if it fails).
struct TestDb {
    cfg: StorageConfig,
    _dir: Option<tempfile::TempDir>,
    /// Dropped (and the database with it) when the test ends.
    _pg: Option<TestPostgres>,
}

impl TestDb {
    async fn new(kind: Kind) -> Option<TestDb> {
        Self::with(kind, |_| {}).await
    }

    async fn with(kind: Kind, tune: impl FnOnce(&mut StorageConfig)) -> Option<TestDb> {
        let mut t = match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                TestDb {
                    cfg: StorageConfig {
                        data_dir: dir.path().join("data"),
                        ..StorageConfig::default()
                    },
                    _dir: Some(dir),
                    _pg: None,
                }
            }
            Kind::Postgres => {
                let pg = TestPostgres::create().await?;
                TestDb {
                    cfg: StorageConfig {
                        url: Some(pg.url.clone()),
                        ..StorageConfig::default()
                    },
                    _dir: None,
                    _pg: Some(pg),
                }
            }
        };
        tune(&mut t.cfg);
        Some(t)
    }

    async fn open(&self) -> AuditStore {
        AuditStore::open(&self.cfg).await.unwrap()
    }
}

/// Runs a scenario against both backends: `<scenario>::sqlite` and `<scenario>::postgres`.
macro_rules! both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(super::Kind::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$scenario(super::Kind::Postgres).await
            }
        }
    )*};
}

both_backends!(
    record_and_read_back,
    group_commit_under_concurrency,
    feedback_is_linked_and_kept_once,
    rule_stats_counts,
    export_covers_the_range_in_pages,
    purge_removes_old_rows_only,
    migrations_are_idempotent_on_reopen,
    close_flushes_and_refuses_new_records,
    a_bad_record_fails_alone,
    feedback_must_match_its_card,
    parameter_sets_are_stored_once_and_exported,
    governance_counts_per_week_and_configuration,
    upgrade_to_the_compact_record_keeps_every_record,
    cards_named_after_their_invocation_need_no_index_row,
);

fn t0() -> DateTime<Utc> {
    "2026-06-01T08:00:00Z".parse().unwrap()
}

fn card(rule: &str) -> CardRecord {
    CardRecord {
        uuid: Uuid::new_v4(),
        rule_id: rule.into(),
        indicator: "warning".into(),
        summary: format!("Summary for {rule}"),
        suggestions: vec!["sugg-1".into(), "sugg-2".into()],
        override_reasons: vec!["not-applicable".into(), "x".into()],
    }
}

/// The override reason code system of the service's cards.
const REASONS: &str = "https://fhir.rps-cds.org/CodeSystem/rps-override-reason";

fn invocation(time: DateTime<Utc>, rules: &[&str], cards: Vec<CardRecord>) -> InvocationRecord {
    InvocationRecord {
        id: Uuid::new_v4(),
        time,
        service_id: "rps-cds".into(),
        hook: Some("patient-view".into()),
        hook_instance: Some(Uuid::new_v4().to_string()),
        ehr_issuer: Some("https://ehr.example.org".into()),
        knowledge_version: "2026.06".into(),
        parameter_set: None,
        patient_id: Some("pat-123".into()),
        rules_fired: rules.iter().map(|r| r.to_string()).collect(),
        cards,
        request_sha256: Some("ab".repeat(32)),
        latency_ms: 12.5,
        http_status: 200,
    }
}

fn feedback(card: Uuid, outcome: &str, at: DateTime<Utc>) -> FeedbackRecord {
    FeedbackRecord {
        card,
        outcome: outcome.into(),
        accepted_suggestions: vec![],
        override_reason_code: None,
        override_reason_system: None,
        override_reason_display: None,
        user_comment: None,
        outcome_timestamp: at,
    }
}

fn overridden(card: Uuid, at: DateTime<Utc>, reason: Option<(&str, &str)>) -> FeedbackRecord {
    FeedbackRecord {
        override_reason_code: reason.map(|r| r.0.into()),
        override_reason_system: reason.map(|_| REASONS.into()),
        override_reason_display: reason.map(|r| r.1.into()),
        ..feedback(card, "overridden", at)
    }
}

/// One integer the test reads straight from the store's database (`SELECT COUNT(*) …`), from
/// an independent connection on SQLite, through the pool on PostgreSQL.
async fn scalar(db: &TestDb, store: &AuditStore, sql: &'static str) -> i64 {
    match store.backend() {
        Backend::Postgres => sqlx::query_scalar(sql)
            .fetch_one(&store.postgres_pool().unwrap())
            .await
            .unwrap(),
        Backend::Sqlite => {
            let file = db.cfg.data_dir.join("rps-cds.db");
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
                .await
                .unwrap();
            let n = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
            conn.close().await.unwrap();
            n
        }
    }
}

async fn export_all(store: &AuditStore) -> Vec<ExportedInvocation> {
    export_range(
        store,
        t0() - Duration::days(3650),
        Utc::now() + Duration::days(1),
    )
    .await
}

async fn export_range(
    store: &AuditStore,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<ExportedInvocation> {
    let mut buf: Vec<u8> = Vec::new();
    let n = store.export_jsonl(from, to, &mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let lines: Vec<ExportedInvocation> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(n as usize, lines.len(), "export count = lines written");
    lines
}

async fn record_and_read_back(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    assert_eq!(
        store.backend(),
        if kind == Kind::Sqlite {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    );
    assert_eq!(store.postgres_pool().is_some(), kind == Kind::Postgres);
    store.ping().await.unwrap();

    let now = Utc::now();
    // Text that JSON must escape survives the trip (SQLite receives batches as JSON).
    let awkward = CardRecord {
        summary: "Re-resection \"not advised\": ECOG ≥ 2 \\ 🩺\nsecond line".into(),
        ..card("MET-03")
    };
    let rec = invocation(
        now,
        &["MET-01", "MET-03", "MET-01"],
        vec![card("MET-01"), awkward],
    );
    store.record_invocation(rec.clone()).await.unwrap();
    assert_eq!(store.queue_depth(), 0);

    let got = export_all(&store).await;
    assert_eq!(got.len(), 1);
    let g = &got[0];
    assert_eq!(g.id, rec.id);
    assert_eq!(g.time, now.trunc_subsecs(6));
    assert_eq!(g.service_id, rec.service_id);
    assert_eq!(g.hook, rec.hook);
    assert_eq!(g.hook_instance, rec.hook_instance);
    assert_eq!(g.ehr_issuer, rec.ehr_issuer);
    assert_eq!(g.knowledge_version, rec.knowledge_version);
    assert_eq!(g.patient_id.as_deref(), Some("pat-123"));
    assert_eq!(g.request_sha256, rec.request_sha256);
    assert_eq!(g.latency_ms, 12.5);
    assert_eq!(g.http_status, 200);
    // A rule listed twice fired once; order kept.
    assert_eq!(g.rules_fired, vec!["MET-01", "MET-03"]);
    let cards: Vec<(Uuid, &str, &str, &str)> = g
        .cards
        .iter()
        .map(|c| {
            (
                c.uuid,
                c.rule_id.as_str(),
                c.indicator.as_str(),
                c.summary.as_str(),
            )
        })
        .collect();
    let want: Vec<(Uuid, &str, &str, &str)> = rec
        .cards
        .iter()
        .map(|c| {
            (
                c.uuid,
                c.rule_id.as_str(),
                c.indicator.as_str(),
                c.summary.as_str(),
            )
        })
        .collect();
    assert_eq!(cards, want);
    assert!(g.cards.iter().all(|c| c.feedback.is_empty()));

    // Optional fields absent (an unauthenticated call rejected before parsing, say).
    let bare = InvocationRecord {
        hook: None,
        hook_instance: None,
        ehr_issuer: None,
        patient_id: None,
        request_sha256: None,
        rules_fired: vec![],
        cards: vec![],
        http_status: 401,
        ..invocation(now + Duration::seconds(1), &[], vec![])
    };
    store.record_invocation(bare.clone()).await.unwrap();
    let got = export_all(&store).await;
    assert_eq!(got.len(), 2);
    let b = &got[1];
    assert_eq!(b.id, bare.id);
    assert_eq!(
        (&b.hook, &b.hook_instance, &b.ehr_issuer, &b.patient_id),
        (&None, &None, &None, &None)
    );
    assert_eq!((b.request_sha256.as_ref(), b.http_status), (None, 401));
    assert!(b.rules_fired.is_empty() && b.cards.is_empty());

    if kind == Kind::Sqlite {
        // WAL is a property of the file: check it from an independent connection.
        let file = db.cfg.data_dir.join("rps-cds.db");
        assert!(file.exists());
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        conn.close().await.unwrap();
    } else {
        // The auth module's replay table comes with the PostgreSQL migration.
        let pool = store.postgres_pool().unwrap();
        let inserted = sqlx::query(
            "INSERT INTO jwt_replay (iss, jti, expires_at) VALUES ('iss', 'jti-1', now())",
        )
        .execute(&pool)
        .await
        .unwrap();
        assert_eq!(inserted.rows_affected(), 1);
    }
    store.close().await;
}

async fn group_commit_under_concurrency(kind: Kind) {
    // A queue smaller than the burst and small batches: callers wait for room, several
    // batches are committed, and every caller is answered only after its commit.
    let Some(db) = TestDb::with(kind, |c| {
        c.batch_max = 32;
        c.queue_capacity = 100;
    })
    .await
    else {
        return;
    };
    let store = db.open().await;
    let n = 500;
    let mut tasks = tokio::task::JoinSet::new();
    let mut ids = HashSet::new();
    for i in 0..n {
        let rule = if i % 2 == 0 { "MET-01" } else { "LR-02" };
        let rec = invocation(t0() + Duration::milliseconds(i), &[rule], vec![card(rule)]);
        ids.insert(rec.id);
        let store = store.clone();
        tasks.spawn(async move { store.record_invocation(rec).await });
    }
    let mut ok = 0;
    while let Some(res) = tasks.join_next().await {
        res.unwrap().unwrap();
        ok += 1;
    }
    assert_eq!(ok, n);
    assert_eq!(store.queue_depth(), 0);

    let stats = store.rule_stats(None, None).await.unwrap();
    let fired: u64 = stats.iter().map(|s| s.fired).sum();
    let cards: u64 = stats.iter().map(|s| s.cards).sum();
    assert_eq!(fired, n as u64);
    assert_eq!(cards, n as u64);
    let met = stats.iter().find(|s| s.rule_id == "MET-01").unwrap();
    assert_eq!(met.fired, 250);

    let exported = export_all(&store).await;
    assert_eq!(exported.len(), n as usize);
    let got: HashSet<Uuid> = exported.iter().map(|e| e.id).collect();
    assert_eq!(got, ids);
    store.close().await;
}

async fn feedback_is_linked_and_kept_once(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    let (a, b) = (card("MET-01"), card("MET-02"));
    let (ua, ub) = (a.uuid, b.uuid);
    store
        .record_invocation(invocation(t0(), &["MET-01", "MET-02"], vec![a, b]))
        .await
        .unwrap();
    let at = t0() + Duration::minutes(5);

    let mut accepted = feedback(ua, "accepted", at);
    accepted.accepted_suggestions = vec!["sugg-1".into()];
    let first = store
        .record_feedback("rps-cds", std::slice::from_ref(&accepted))
        .await
        .unwrap();
    assert_eq!(
        first,
        FeedbackStored {
            new: 1,
            duplicates: 0
        }
    );
    // The EHR resends the same feedback (plus a repeat in the same call): kept once.
    let again = store
        .record_feedback("rps-cds", &[accepted.clone(), accepted.clone()])
        .await
        .unwrap();
    assert_eq!(
        again,
        FeedbackStored {
            new: 0,
            duplicates: 2
        }
    );

    // All or nothing: one unknown card rejects the whole call.
    let unknown = Uuid::new_v4();
    let err = store
        .record_feedback(
            "rps-cds",
            &[
                overridden(ub, at, Some(("not-applicable", "Not applicable"))),
                feedback(unknown, "accepted", at),
            ],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::UnknownCard(u) if u == unknown),
        "{err:?}"
    );

    // A card is only known to the service that returned it.
    let err = store
        .record_feedback("other-service", &[feedback(ub, "accepted", at)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::UnknownCard(u) if u == ub),
        "{err:?}"
    );

    let err = store
        .record_feedback("rps-cds", &[feedback(ub, "ignored", at)])
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::InvalidFeedback(_)), "{err:?}");

    let inv = export_all(&store).await.pop().unwrap();
    let fa = &inv.cards.iter().find(|c| c.uuid == ua).unwrap().feedback;
    assert_eq!(fa.len(), 1);
    assert_eq!(fa[0].outcome, "accepted");
    assert_eq!(fa[0].accepted_suggestions, vec!["sugg-1"]);
    assert_eq!(fa[0].outcome_timestamp, at);
    assert_eq!(fa[0].service_id, "rps-cds");
    let fb = &inv.cards.iter().find(|c| c.uuid == ub).unwrap().feedback;
    assert!(fb.is_empty(), "rejected call stored nothing: {fb:?}");

    // Same card, other outcome or other time: a new item.
    let more = store
        .record_feedback(
            "rps-cds",
            &[
                overridden(ua, at, None),
                feedback(ua, "accepted", at + Duration::seconds(1)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        more,
        FeedbackStored {
            new: 2,
            duplicates: 0
        }
    );
    store.close().await;
}

async fn rule_stats_counts(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    let h = Duration::hours(1);
    let (c1, c2, c3, c4) = (card("R1"), card("R3"), card("R1"), card("R1"));
    let (u1, u2, u3, u4) = (c1.uuid, c2.uuid, c3.uuid, c4.uuid);
    for rec in [
        invocation(t0(), &["R1", "R3"], vec![c1, c2]),
        invocation(t0() + h, &["R1"], vec![c3]),
        invocation(t0() + h * 2, &["R1"], vec![c4]),
        // A rule may fire without a card of its own.
        invocation(t0() + h * 3, &["R2"], vec![]),
    ] {
        store.record_invocation(rec).await.unwrap();
    }
    let at = t0() + h * 4;
    let stored = store
        .record_feedback(
            "rps-cds",
            &[
                feedback(u1, "accepted", at),
                overridden(u3, at, Some(("x", "Reason X"))),
                overridden(u4, at, Some(("x", "Reason X"))),
                overridden(u2, at, None),
            ],
        )
        .await
        .unwrap();
    assert_eq!(stored.new, 4);

    let all = store.rule_stats(None, None).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|s| s.rule_id.as_str()).collect();
    assert_eq!(ids, ["R1", "R2", "R3"]);
    let r1 = &all[0];
    assert_eq!(
        (r1.fired, r1.cards, r1.feedback, r1.accepted, r1.overridden),
        (3, 3, 3, 1, 2)
    );
    assert_eq!(r1.override_reasons.len(), 1);
    assert_eq!(r1.override_reasons[0].code.as_deref(), Some("x"));
    assert_eq!(r1.override_reasons[0].display.as_deref(), Some("Reason X"));
    assert_eq!(r1.override_reasons[0].count, 2);
    assert!((r1.acceptance_rate().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    let r2 = &all[1];
    assert_eq!((r2.fired, r2.cards, r2.feedback), (1, 0, 0));
    assert_eq!(r2.acceptance_rate(), None);
    let r3 = &all[2];
    assert_eq!((r3.fired, r3.cards, r3.overridden), (1, 1, 1));
    assert_eq!(r3.override_reasons[0].code, None);
    assert_eq!(r3.override_reasons[0].count, 1);

    // [t0+1h, t0+3h): the second and third invocations only.
    let window = store
        .rule_stats(Some(t0() + h), Some(t0() + h * 3))
        .await
        .unwrap();
    assert_eq!(window.len(), 1);
    assert_eq!(
        (
            window[0].rule_id.as_str(),
            window[0].fired,
            window[0].overridden,
            window[0].accepted
        ),
        ("R1", 2, 2, 0)
    );

    // The governance report, both forms.
    let mut table = Vec::new();
    cli::report(&store, None, None, ReportFormat::Table, &mut table)
        .await
        .unwrap();
    let table = String::from_utf8(table).unwrap();
    let r1_line = table.lines().find(|l| l.starts_with("R1 ")).unwrap();
    assert!(r1_line.contains("33%"), "{table}");
    assert!(r1_line.contains("Reason X [x] ×2"), "{table}");
    let mut js = Vec::new();
    cli::report(&store, None, None, ReportFormat::Json, &mut js)
        .await
        .unwrap();
    let js: serde_json::Value = serde_json::from_slice(&js).unwrap();
    assert_eq!(js["rules"][0]["rule_id"], "R1");
    assert_eq!(js["rules"][0]["fired"], 3);
    assert_eq!(js["rules"][0]["override_reasons"][0]["count"], 2);
    assert!((js["rules"][0]["acceptance_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert!(js["rules"][1]["acceptance_rate"].is_null());
    store.close().await;
}

async fn export_covers_the_range_in_pages(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    // 1200 invocations, three per second: more than two export pages, with equal times that
    // the paging must not skip or repeat.
    let mut tasks = tokio::task::JoinSet::new();
    let mut feedback_card = None;
    for i in 0..1200i64 {
        let c = card("MET-01");
        if i == 600 {
            feedback_card = Some(c.uuid);
        }
        let rec = invocation(t0() + Duration::seconds(i / 3), &["MET-01"], vec![c]);
        let store = store.clone();
        tasks.spawn(async move { store.record_invocation(rec).await });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    let fc = feedback_card.unwrap();
    store
        .record_feedback("rps-cds", &[feedback(fc, "accepted", t0())])
        .await
        .unwrap();

    let (from, to) = (t0() + Duration::seconds(50), t0() + Duration::seconds(350));
    let mut buf = Vec::new();
    let n = cli::export(&store, from, to, &mut buf).await.unwrap();
    assert_eq!(n, 900);
    let lines: Vec<ExportedInvocation> = String::from_utf8(buf)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 900);
    let ids: HashSet<Uuid> = lines.iter().map(|l| l.id).collect();
    assert_eq!(ids.len(), 900, "no invocation repeated");
    assert!(lines.iter().all(|l| l.time >= from && l.time < to));
    assert!(
        lines.windows(2).all(|w| w[0].time <= w[1].time),
        "time order"
    );
    assert_eq!(lines.first().unwrap().time, from);
    assert_eq!(lines.last().unwrap().time, to - Duration::seconds(1));
    assert!(
        lines
            .iter()
            .all(|l| l.cards.len() == 1 && l.rules_fired == ["MET-01"])
    );
    let with_fb: Vec<&ExportedInvocation> = lines
        .iter()
        .filter(|l| !l.cards[0].feedback.is_empty())
        .collect();
    assert_eq!(with_fb.len(), 1);
    assert_eq!(with_fb[0].cards[0].uuid, fc);

    assert!(
        export_range(&store, t0() - Duration::days(2), t0() - Duration::days(1))
            .await
            .is_empty()
    );
    store.close().await;
}

async fn purge_removes_old_rows_only(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    let now = Utc::now();
    let (old_card, mid_card, new_card) = (card("R1"), card("R1"), card("R1"));
    let (uo, um, un) = (old_card.uuid, mid_card.uuid, new_card.uuid);
    let old = invocation(now - Duration::days(400), &["R1"], vec![old_card]);
    let mid = invocation(now - Duration::days(10), &["R1"], vec![mid_card]);
    let new = invocation(now - Duration::days(1), &["R1"], vec![new_card]);
    let (old_id, mid_id, new_id) = (old.id, mid.id, new.id);
    for rec in [old, mid, new] {
        store.record_invocation(rec).await.unwrap();
    }
    store
        .record_feedback(
            "rps-cds",
            &[
                feedback(uo, "accepted", now),
                feedback(um, "accepted", now),
                feedback(un, "accepted", now),
            ],
        )
        .await
        .unwrap();

    assert_eq!(
        store
            .purge_older_than(now - Duration::days(30))
            .await
            .unwrap(),
        1
    );
    let left: HashSet<Uuid> = export_all(&store).await.iter().map(|e| e.id).collect();
    assert_eq!(left, HashSet::from([mid_id, new_id]));
    assert!(!left.contains(&old_id));
    // The purged invocation's cards and feedback went with it.
    let stats = store.rule_stats(None, None).await.unwrap();
    assert_eq!(
        (stats[0].fired, stats[0].cards, stats[0].feedback),
        (2, 2, 2)
    );
    let err = store
        .record_feedback("rps-cds", &[feedback(uo, "overridden", now)])
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::UnknownCard(_)));

    // Retention in days through the CLI helper.
    assert_eq!(cli::purge(&store, 5).await.unwrap(), 1);
    assert_eq!(cli::purge(&store, 5).await.unwrap(), 0);
    let left: Vec<Uuid> = export_all(&store).await.iter().map(|e| e.id).collect();
    assert_eq!(left, vec![new_id]);
    store.close().await;
}

async fn migrations_are_idempotent_on_reopen(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let first = invocation(t0(), &["R1"], vec![card("R1")]);
    let store = db.open().await;
    store.record_invocation(first.clone()).await.unwrap();
    store.close().await;

    for _ in 0..2 {
        let store = db.open().await;
        store.ping().await.unwrap();
        store.close().await;
    }
    let store = db.open().await;
    store
        .record_invocation(invocation(t0() + Duration::hours(1), &["R2"], vec![]))
        .await
        .unwrap();
    let all = export_all(&store).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, first.id);
    let applied = scalar(&db, &store, "SELECT COUNT(*) FROM _sqlx_migrations").await;
    // SQLite: 0001-0004 (0003 dropped the per-rule indexes, 0004 the compact record);
    // PostgreSQL: 0001-0003 (0003 the compact record).
    let expected = if kind == Kind::Sqlite { 4 } else { 3 };
    assert_eq!(applied, expected, "each migration applied once");
    store.close().await;
}

async fn close_flushes_and_refuses_new_records(kind: Kind) {
    let Some(db) = TestDb::with(kind, |c| c.batch_max = 8).await else {
        return;
    };
    let store = db.open().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let store = store.clone();
        let rec = invocation(t0() + Duration::milliseconds(i), &["R1"], vec![]);
        tasks.spawn(async move { store.record_invocation(rec).await.map(|_| ()) });
    }
    // Shut down while records are queued or being written.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.queue_depth() == 0 && std::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    assert!(
        store.queue_depth() > 0,
        "records should be pending at close"
    );
    store.close().await;
    let mut committed = 0u64;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(()) => committed += 1,
            Err(StorageError::Closed) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert!(matches!(
        store
            .record_invocation(invocation(t0(), &["R1"], vec![]))
            .await,
        Err(StorageError::Closed)
    ));
    assert!(store.ping().await.is_err());

    assert!(committed > 0, "what was queued at close is committed");
    // Every caller told "stored" is in the database after a restart.
    let store = db.open().await;
    let stats = store.rule_stats(None, None).await.unwrap();
    let stored = stats.first().map(|s| s.fired).unwrap_or(0);
    assert_eq!(stored, committed);
    store.close().await;
}

async fn a_bad_record_fails_alone(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    let first = invocation(t0(), &["R1"], vec![card("R1")]);
    store.record_invocation(first.clone()).await.unwrap();

    // 50 good records and one reusing an id already stored, queued together so that they
    // (very likely) share a batch: the bad one must not take the others down with it.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..51 {
        let rec = if i == 25 {
            InvocationRecord {
                cards: vec![],
                ..first.clone()
            }
        } else {
            invocation(t0() + Duration::seconds(i), &["R1"], vec![card("R1")])
        };
        let store = store.clone();
        tasks.spawn(async move { (i, store.record_invocation(rec).await) });
    }
    while let Some(r) = tasks.join_next().await {
        let (i, res) = r.unwrap();
        if i == 25 {
            assert!(
                matches!(
                    res,
                    Err(StorageError::Database(_) | StorageError::Sqlite(_))
                ),
                "{res:?}"
            );
        } else {
            res.unwrap();
        }
    }
    let stats = store.rule_stats(None, None).await.unwrap();
    assert_eq!((stats[0].fired, stats[0].cards), (51, 51));
    store.close().await;
}

#[tokio::test]
async fn sqlite_url_places_the_file_and_creates_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested").join("dir").join("audit.db");
    let cfg = StorageConfig {
        url: Some(format!("sqlite://{}", file.display())),
        data_dir: dir.path().join("unused"),
        ..StorageConfig::default()
    };
    let store = AuditStore::open(&cfg).await.unwrap();
    store
        .record_invocation(invocation(t0(), &["R1"], vec![]))
        .await
        .unwrap();
    store.close().await;
    assert!(file.exists());
    assert!(!dir.path().join("unused").exists());

    let bad = StorageConfig {
        url: Some("mysql://localhost/db".into()),
        ..StorageConfig::default()
    };
    assert!(matches!(
        AuditStore::open(&bad).await.err(),
        Some(StorageError::Config(_))
    ));
}

#[test]
fn request_digest_ignores_the_access_token() {
    let request = |token: &str| {
        json!({
            "hook": "patient-view",
            "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "fhirServer": "https://fhir.example.org",
            "fhirAuthorization": {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "patient/*.read",
                "subject": "cds-service"
            },
            "context": { "userId": "Practitioner/1", "patientId": "pat-123" }
        })
    };
    // As the engine calls it: the body's bytes and the parsed request.
    let digest = |v: &serde_json::Value| request_digest(&serde_json::to_vec(v).unwrap(), v);
    let a = digest(&request("token-one"));
    let b = digest(&request("another-token"));
    assert_eq!(a, b);
    assert_eq!(a.len(), 64);
    assert!(
        a.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );

    // The digest is SHA-256 of serde_json's compact output (sorted keys) without the token.
    let mut stripped = request("x");
    stripped
        .as_object_mut()
        .unwrap()
        .remove("fhirAuthorization");
    let expected = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(
            serde_json::to_string(&stripped).unwrap(),
        ))
    };
    assert_eq!(a, expected);
    // Without the member there is no token: the body's bytes are hashed, here that same text.
    assert_eq!(digest(&stripped), a);

    // Any other change does change it.
    let mut other = request("token-one");
    other["context"]["patientId"] = json!("pat-999");
    assert_ne!(digest(&other), a);
}

/// A request far larger than the canonical digest's internal buffer (several refills, a
/// partial tail) hashes to SHA-256 of its canonical text, written out here by hand.
#[test]
fn request_digest_of_a_large_request_is_sha256_of_its_canonical_text() {
    let note = "é\"x".repeat(20_000);
    let ids: Vec<String> = (0..3_000).map(|i| format!("obs-{i}")).collect();
    let request = json!({ "z": ids, "hook": "patient-view", "a": { "note": note, "n": 1.5 } });
    let canonical = format!(
        r#"{{"a":{{"n":1.5,"note":{}}},"hook":"patient-view","z":{}}}"#,
        serde_json::to_string(&note).unwrap(),
        serde_json::to_string(&ids).unwrap(),
    );
    assert!(canonical.len() > 100_000);
    let expected = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&canonical))
    };
    assert_eq!(canonical_request_digest(&request), expected);
    // It carries no token: the recorded digest is that of its bytes.
    let pretty = serde_json::to_vec_pretty(&request).unwrap();
    assert_eq!(
        request_digest(&pretty, &request),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&pretty))
    );
}

/// Feedback is checked against what its card offered; a call with one mismatch stores nothing,
/// and the path names the offending element.
async fn feedback_must_match_its_card(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    let (a, mut info) = (card("MET-01"), card("MET-02"));
    // An info card lists no override reasons (cards.rs): none may be given.
    info.override_reasons.clear();
    let (ua, ui) = (a.uuid, info.uuid);
    store
        .record_invocation(invocation(t0(), &["MET-01", "MET-02"], vec![a, info]))
        .await
        .unwrap();
    let at = t0() + Duration::minutes(5);
    let mismatch = |items: Vec<FeedbackRecord>| {
        let store = store.clone();
        async move {
            match store.record_feedback("rps-cds", &items).await {
                Err(StorageError::FeedbackMismatch { path, .. }) => path,
                other => panic!("expected a mismatch, got {other:?}"),
            }
        }
    };

    // A suggestion the card never offered, second item of the call.
    let mut bad = feedback(ua, "accepted", at);
    bad.accepted_suggestions = vec!["sugg-2".into(), "never-offered".into()];
    assert_eq!(
        mismatch(vec![overridden(ua, at, None), bad]).await,
        "feedback[1].acceptedSuggestions[1].id"
    );
    // A reason code the card did not list.
    assert_eq!(
        mismatch(vec![overridden(ua, at, Some(("made-up", "Made up")))]).await,
        "feedback[0].overrideReason.reason.code"
    );
    // A listed code in another code system.
    let mut other_system = overridden(ua, at, Some(("x", "Reason X")));
    other_system.override_reason_system = Some("https://example.org/reasons".into());
    assert_eq!(
        mismatch(vec![other_system]).await,
        "feedback[0].overrideReason.reason.system"
    );
    // A card without override reasons.
    assert_eq!(
        mismatch(vec![overridden(ui, at, Some(("x", "Reason X")))]).await,
        "feedback[0].overrideReason.reason.code"
    );
    // Nothing of the refused calls was stored; the stats are untouched.
    let stats = store.rule_stats(None, None).await.unwrap();
    assert!(stats.iter().all(|s| s.feedback == 0), "{stats:?}");

    // What the card offered is accepted, and counted.
    let mut good = feedback(ua, "accepted", at);
    good.accepted_suggestions = vec!["sugg-2".into()];
    let stored = store
        .record_feedback(
            "rps-cds",
            &[
                good,
                overridden(ua, at, Some(("x", "Reason X"))),
                overridden(ui, at, None),
            ],
        )
        .await
        .unwrap();
    assert_eq!(stored.new, 3);
    let stats = store.rule_stats(None, None).await.unwrap();
    assert_eq!((stats[0].accepted, stats[0].overridden), (1, 1));
    assert_eq!((stats[1].accepted, stats[1].overridden), (0, 1));

    // Feedback that was never checked (stored before migration 0002, claiming a suggestion)
    // is not counted.
    let unchecked = "UPDATE feedback SET verified = false WHERE outcome = 'accepted'";
    match kind {
        Kind::Postgres => {
            sqlx::query(unchecked)
                .execute(&store.postgres_pool().unwrap())
                .await
                .unwrap();
        }
        Kind::Sqlite => {
            let file = db.cfg.data_dir.join("rps-cds.db");
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
                .await
                .unwrap();
            sqlx::query(unchecked).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    }
    let stats = store.rule_stats(None, None).await.unwrap();
    assert_eq!(
        (stats[0].feedback, stats[0].accepted, stats[0].overridden),
        (1, 0, 1)
    );
    // The export still shows everything stored, with what the card offered.
    let inv = export_all(&store).await.pop().unwrap();
    assert_eq!(inv.cards[0].feedback.len(), 2);
    assert_eq!(inv.cards[0].suggestions, ["sugg-1", "sugg-2"]);
    assert_eq!(inv.cards[0].override_reasons, ["not-applicable", "x"]);
    assert!(inv.cards[1].override_reasons.is_empty());
    store.close().await;
}

fn parameter_set(dfi: f64) -> rps_cds::knowledge::parameters::ParameterSet {
    use rps_cds::knowledge::parameters::{ParameterSet, ParameterSource, ParameterValue};
    let mut p = std::collections::BTreeMap::new();
    p.insert(
        "favorable_dfi_months".to_owned(),
        ParameterValue {
            value: dfi,
            source: if dfi == 12.0 {
                ParameterSource::CatalogueDefault
            } else {
                ParameterSource::SiteConfiguration
            },
        },
    );
    ParameterSet::new(p)
}

/// Each parameter set is stored once however often it is registered; invocations name it and
/// the export carries its values and sources.
async fn parameter_sets_are_stored_once_and_exported(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    let (site, default) = (parameter_set(24.0), parameter_set(12.0));
    for set in [&site, &site, &default] {
        store.record_parameter_set(set).await.unwrap();
    }
    let mut a = invocation(t0(), &["LR-04"], vec![card("LR-04")]);
    a.parameter_set = Some(site.digest.clone());
    let mut b = invocation(t0() + Duration::hours(1), &["LR-04"], vec![]);
    b.parameter_set = Some(default.digest.clone());
    let c = invocation(t0() + Duration::hours(2), &[], vec![]);
    for rec in [a.clone(), b, c] {
        store.record_invocation(rec).await.unwrap();
    }
    // A record naming a set that was never stored is refused (foreign key).
    let mut orphan = invocation(t0(), &[], vec![]);
    orphan.parameter_set = Some("0".repeat(64));
    assert!(store.record_invocation(orphan).await.is_err());

    let all = export_all(&store).await;
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].parameter_set.as_deref(), Some(site.digest.as_str()));
    assert_eq!(all[0].parameters.as_ref(), Some(&site.parameters));
    assert_eq!(all[1].parameters.as_ref(), Some(&default.parameters));
    assert_eq!((&all[2].parameter_set, &all[2].parameters), (&None, &None));
    // One invocation read back as the export shows it (what `rps-cds replay` reads).
    let one = store.invocation(a.id).await.unwrap().unwrap();
    assert_eq!(one, all[0]);
    assert!(store.invocation(Uuid::new_v4()).await.unwrap().is_none());

    let stored = scalar(&db, &store, "SELECT COUNT(*) FROM parameter_sets").await;
    assert_eq!(stored, 2, "identical sets are stored once");
    store.close().await;
}

/// The governance read-out: per rule and ISO week, and which knowledge version and parameter
/// set ran each week, agreeing with the per-rule totals.
async fn governance_counts_per_week_and_configuration(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    let set = parameter_set(24.0);
    store.record_parameter_set(&set).await.unwrap();
    // t0 is Monday 2026-06-01; the third invocation is in the next week.
    let (c1, c2, c3) = (card("R1"), card("R1"), card("R1"));
    let (u1, u2, u3) = (c1.uuid, c2.uuid, c3.uuid);
    let mut recs = vec![
        invocation(t0(), &["R1"], vec![c1]),
        invocation(t0() + Duration::days(6), &["R1"], vec![c2]),
        invocation(t0() + Duration::days(7), &["R1"], vec![c3]),
    ];
    recs[2].parameter_set = Some(set.digest.clone());
    recs[2].knowledge_version = "2026.07".into();
    for rec in recs {
        store.record_invocation(rec).await.unwrap();
    }
    let at = t0() + Duration::days(8);
    store
        .record_feedback(
            "rps-cds",
            &[
                overridden(u1, at, Some(("x", "Reason X"))),
                feedback(u2, "accepted", at),
                overridden(u3, at, None),
            ],
        )
        .await
        .unwrap();
    let g = store.governance(None, None).await.unwrap();
    assert_eq!(g.rules, store.rule_stats(None, None).await.unwrap());
    let weeks: Vec<(String, u64, u64, u64)> = g
        .weeks
        .iter()
        .map(|w| (w.week.to_string(), w.fired, w.accepted, w.overridden))
        .collect();
    assert_eq!(
        weeks,
        [
            ("2026-06-01".to_owned(), 2, 1, 1),
            ("2026-06-08".to_owned(), 1, 0, 1)
        ]
    );
    assert_eq!(g.weeks[0].override_rate(), Some(0.5));
    let configurations: Vec<(String, &str, Option<&str>, u64)> = g
        .configurations
        .iter()
        .map(|c| {
            (
                c.week.to_string(),
                c.knowledge_version.as_str(),
                c.parameter_set.as_deref(),
                c.invocations,
            )
        })
        .collect();
    assert_eq!(
        configurations,
        [
            ("2026-06-01".to_owned(), "2026.06", None, 2),
            (
                "2026-06-08".to_owned(),
                "2026.07",
                Some(set.digest.as_str()),
                1
            )
        ]
    );
    assert_eq!(g.parameter_sets.get(&set.digest), Some(&set.parameters));
    // A range: the second week only.
    let g = store
        .governance(Some(t0() + Duration::days(7)), None)
        .await
        .unwrap();
    assert_eq!(g.weeks.len(), 1);
    assert_eq!((g.rules[0].fired, g.rules[0].overridden), (1, 1));
    store.close().await;
}

/// A database written by the layout before the compact record (SQLite 0004, PostgreSQL 0003:
/// rules and cards in tables of their own) is carried over on upgrade: every invocation, rule,
/// card (with what it offered, or nothing for cards recorded before 0002) and feedback item
/// (verified or not) reads back as before, new feedback is checked against the migrated cards,
/// and purge still removes a migrated invocation with its cards and feedback.
async fn upgrade_to_the_compact_record_keeps_every_record(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    // The migrations as they stood before the compact record, applied from their files (same
    // SQL, so the same checksums the service then finds in _sqlx_migrations).
    let scratch = tempfile::tempdir().unwrap();
    let old = scratch.path().join("migrations");
    std::fs::create_dir_all(&old).unwrap();
    let (dir, names, yes, no): (&str, &[&str], &str, &str) = match kind {
        Kind::Sqlite => (
            "migrations/sqlite",
            &[
                "0001_init.sql",
                "0002_reconstructable.sql",
                "0003_lean_indexes.sql",
            ],
            "1",
            "0",
        ),
        Kind::Postgres => (
            "migrations/postgres",
            &["0001_init.sql", "0002_reconstructable.sql"],
            "true",
            "false",
        ),
    };
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    for name in names {
        std::fs::copy(shipped.join(name), old.join(name)).unwrap();
    }
    let migrator = sqlx::migrate::Migrator::new(old.as_path()).await.unwrap();

    let (inv, bare) = (Uuid::now_v7(), Uuid::now_v7());
    let (checked, legacy) = (Uuid::now_v7(), Uuid::now_v7());
    let t = "2026-06-01T08:00:00.000000Z";
    let old_rows = format!(
        "INSERT INTO parameter_sets (digest, parameters, first_seen) VALUES \
           ('d1', '{{\"favorable_dfi_months\":{{\"value\":24,\"source\":\"site-configuration\"}}}}', '{t}');
         INSERT INTO invocations (id, time, service_id, hook, hook_instance, ehr_issuer, \
           knowledge_version, patient_id, request_sha256, latency_ms, http_status, parameter_set) \
           VALUES ('{inv}', '{t}', 'rps-cds', 'patient-view', 'hi-1', 'iss', '2026.11.1', 'pat-1', \
           'ab', 1.5, 200, 'd1'),
                  ('{bare}', '2026-06-01T09:00:00.000000Z', 'rps-cds', NULL, NULL, NULL, \
           '2026.11.1', NULL, NULL, 0.5, 401, NULL);
         INSERT INTO invocation_rules (invocation_id, rule_id, position) VALUES \
           ('{inv}', 'WORK-04', 1), ('{inv}', 'MDT-01', 0), ('{inv}', 'DATA-01', 2);
         INSERT INTO cards (uuid, invocation_id, position, rule_id, indicator, summary, \
           suggestions, override_reasons) VALUES \
           ('{legacy}', '{inv}', 1, 'WORK-04', 'info', 'Recorded before 0002', NULL, NULL),
           ('{checked}', '{inv}', 0, 'MDT-01', 'warning', 'Discuss at the MDT', \
            '[\"sugg-1\"]', '[\"already-addressed\",\"patient-preference\"]');
         INSERT INTO feedback (card_uuid, service_id, outcome, accepted_suggestions, \
           override_reason_code, override_reason_system, override_reason_display, user_comment, \
           outcome_timestamp, received_at, verified) VALUES \
           ('{checked}', 'rps-cds', 'accepted', '[\"sugg-1\"]', NULL, NULL, NULL, 'ok', \
            '2026-06-01T08:05:00.000000Z', '2026-06-01T08:05:01.000000Z', {yes}),
           ('{legacy}', 'rps-cds', 'overridden', '[]', 'old-code', NULL, 'Old', NULL, \
            '2026-06-01T08:06:00.000000Z', '2026-06-01T08:06:01.000000Z', {no});"
    );
    // Written as the old service would have: the old migrations, then its rows.
    macro_rules! write_old {
        ($connect:expr) => {{
            let mut conn = $connect.await.unwrap();
            migrator.run(&mut conn).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(old_rows))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }};
    }
    match kind {
        Kind::Sqlite => {
            std::fs::create_dir_all(&db.cfg.data_dir).unwrap();
            let file = db.cfg.data_dir.join("rps-cds.db");
            write_old!(sqlx::SqliteConnection::connect(&format!(
                "sqlite://{}?mode=rwc",
                file.display()
            )))
        }
        Kind::Postgres => write_old!(sqlx::PgConnection::connect(db.cfg.url.as_deref().unwrap())),
    }

    let store = db.open().await;
    let all = export_all(&store).await;
    assert_eq!(all.len(), 2);
    let (a, b) = (&all[0], &all[1]);
    assert_eq!(a.id, inv);
    assert_eq!(
        a.rules_fired,
        ["MDT-01", "WORK-04", "DATA-01"],
        "fired order kept"
    );
    assert_eq!(a.parameter_set.as_deref(), Some("d1"));
    assert!(
        a.parameters
            .as_ref()
            .unwrap()
            .contains_key("favorable_dfi_months")
    );
    assert_eq!(a.cards.len(), 2);
    let (c0, c1) = (&a.cards[0], &a.cards[1]);
    assert_eq!(
        (
            c0.uuid,
            c0.rule_id.as_str(),
            c0.indicator.as_str(),
            c0.summary.as_str()
        ),
        (checked, "MDT-01", "warning", "Discuss at the MDT"),
        "card order kept"
    );
    assert_eq!(c0.suggestions, ["sugg-1"]);
    assert_eq!(
        c0.override_reasons,
        ["already-addressed", "patient-preference"]
    );
    assert_eq!(c0.feedback.len(), 1);
    assert_eq!(c0.feedback[0].user_comment.as_deref(), Some("ok"));
    assert_eq!(
        (c1.uuid, c1.summary.as_str()),
        (legacy, "Recorded before 0002")
    );
    assert!(c1.suggestions.is_empty() && c1.override_reasons.is_empty());
    assert_eq!(c1.feedback.len(), 1);
    assert_eq!(
        c1.feedback[0].override_reason_code.as_deref(),
        Some("old-code")
    );
    assert_eq!((b.id, b.http_status), (bare, 401));
    assert!(b.rules_fired.is_empty() && b.cards.is_empty());
    assert_eq!(store.invocation(inv).await.unwrap().as_ref(), Some(a));

    // The unverified item still does not count; the verified one does.
    let stats = store.rule_stats(None, None).await.unwrap();
    let by_rule = |r: &str| stats.iter().find(|s| s.rule_id == r).unwrap().clone();
    let mdt = by_rule("MDT-01");
    assert_eq!(
        (mdt.fired, mdt.cards, mdt.feedback, mdt.accepted),
        (1, 1, 1, 1)
    );
    let work = by_rule("WORK-04");
    assert_eq!((work.fired, work.cards, work.feedback), (1, 1, 0));
    assert_eq!((by_rule("DATA-01").fired, by_rule("DATA-01").cards), (1, 0));

    // New feedback on migrated cards is checked against what they offered.
    let at = t0() + Duration::minutes(10);
    let mut wrong = feedback(checked, "accepted", at);
    wrong.accepted_suggestions = vec!["sugg-9".into()];
    let err = store
        .record_feedback("rps-cds", &[wrong])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::FeedbackMismatch { .. }),
        "{err:?}"
    );
    let err = store
        .record_feedback("rps-cds", &[overridden(legacy, at, Some(("x", "X")))])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::FeedbackMismatch { .. }),
        "{err:?}"
    );
    let stored = store
        .record_feedback(
            "rps-cds",
            &[overridden(checked, at, Some(("already-addressed", "Done")))],
        )
        .await
        .unwrap();
    assert_eq!(stored.new, 1);

    // Purge removes the migrated invocation with its cards and their feedback.
    assert_eq!(
        store
            .purge_older_than("2026-06-01T08:30:00Z".parse().unwrap())
            .await
            .unwrap(),
        1
    );
    let left = export_all(&store).await;
    assert_eq!(left.iter().map(|i| i.id).collect::<Vec<_>>(), vec![bare]);
    let err = store
        .record_feedback("rps-cds", &[feedback(checked, "accepted", at)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::UnknownCard(u) if u == checked),
        "{err:?}"
    );
    store.close().await;

    let store = db.open().await;
    let left_feedback = scalar(&db, &store, "SELECT COUNT(*) FROM feedback").await;
    assert_eq!(
        left_feedback, 0,
        "the purged cards' feedback went with them"
    );
    store.close().await;
}

/// The service's own records: card uuids that name their invocation (`audit::card_uuid`).
fn named_invocation(time: DateTime<Utc>, service: &str, rules: &[&str]) -> InvocationRecord {
    let id = new_invocation_id();
    let cards = rules
        .iter()
        .enumerate()
        .map(|(position, rule)| CardRecord {
            uuid: card_uuid(id, position).unwrap(),
            ..card(rule)
        })
        .collect();
    InvocationRecord {
        id,
        service_id: service.into(),
        ..invocation(time, rules, cards)
    }
}

/// A commit writes no `card_index` row for cards whose uuid names their invocation; feedback
/// on such a card finds it through the uuid, is checked against it like any other, and adds
/// the one row the feedback refers to. A uuid that names an invocation which does not list it
/// (a position past its cards, another service's call) is an unknown card, and a refused call
/// leaves no row behind. Purge removes the added rows and their feedback with the invocation.
async fn cards_named_after_their_invocation_need_no_index_row(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    let now = Utc::now();
    let ours = named_invocation(now - Duration::days(400), "rps-cds", &["R1", "R2", "R3"]);
    let theirs = named_invocation(now - Duration::days(400), "other-service", &["R1"]);
    let (id, their_id) = (ours.id, theirs.id);
    let cards: Vec<Uuid> = ours.cards.iter().map(|c| c.uuid).collect();
    store.record_invocation(ours).await.unwrap();
    store.record_invocation(theirs).await.unwrap();
    let index_rows = "SELECT COUNT(*) FROM card_index";
    let feedback_rows = "SELECT COUNT(*) FROM feedback";
    assert_eq!(scalar(&db, &store, index_rows).await, 0);

    let mut accepted = feedback(cards[1], "accepted", now);
    accepted.accepted_suggestions = vec!["sugg-2".into()];
    let stored = store
        .record_feedback("rps-cds", &[accepted.clone()])
        .await
        .unwrap();
    assert_eq!((stored.new, stored.duplicates), (1, 0));
    assert_eq!(scalar(&db, &store, index_rows).await, 1);
    // Sent again: found through the row now, kept once.
    let stored = store.record_feedback("rps-cds", &[accepted]).await.unwrap();
    assert_eq!((stored.new, stored.duplicates), (0, 1));
    assert_eq!(scalar(&db, &store, index_rows).await, 1);

    // Checked against the card like any other.
    let mut made_up = feedback(cards[2], "accepted", now);
    made_up.accepted_suggestions = vec!["never-offered".into()];
    let err = store
        .record_feedback("rps-cds", &[made_up])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::FeedbackMismatch { .. }),
        "{err:?}"
    );
    // Past the invocation's cards; another service's card; the invocation id itself.
    for unknown in [
        card_uuid(id, 3).unwrap(),
        card_uuid(their_id, 0).unwrap(),
        id,
    ] {
        let err = store
            .record_feedback(
                "rps-cds",
                &[
                    feedback(cards[0], "accepted", now),
                    feedback(unknown, "accepted", now),
                ],
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, StorageError::UnknownCard(u) if u == unknown),
            "{err:?}"
        );
    }
    // All or nothing: the refused calls left no row, the first call's are there.
    assert_eq!(scalar(&db, &store, index_rows).await, 1);
    assert_eq!(scalar(&db, &store, feedback_rows).await, 1);

    // The other service's card is found by its own service.
    store
        .record_feedback(
            "other-service",
            &[overridden(
                card_uuid(their_id, 0).unwrap(),
                now,
                Some(("x", "Reason X")),
            )],
        )
        .await
        .unwrap();
    assert_eq!(scalar(&db, &store, index_rows).await, 2);

    // Reports and export see the feedback on its card and rule.
    let stats = store.rule_stats(None, None).await.unwrap();
    let r2 = stats.iter().find(|s| s.rule_id == "R2").unwrap();
    assert_eq!((r2.cards, r2.feedback, r2.accepted), (1, 1, 1));
    let r1 = stats.iter().find(|s| s.rule_id == "R1").unwrap();
    assert_eq!((r1.cards, r1.feedback, r1.overridden), (2, 1, 1));
    let exported = export_all(&store).await;
    let mine = exported.iter().find(|e| e.id == id).unwrap();
    let with_feedback: Vec<(Uuid, usize)> = mine
        .cards
        .iter()
        .map(|c| (c.uuid, c.feedback.len()))
        .collect();
    assert_eq!(
        with_feedback,
        vec![(cards[0], 0), (cards[1], 1), (cards[2], 0)]
    );

    // Purged with their invocations: the rows added for feedback and the feedback.
    assert_eq!(
        store
            .purge_older_than(now - Duration::days(30))
            .await
            .unwrap(),
        2
    );
    assert_eq!(scalar(&db, &store, index_rows).await, 0);
    assert_eq!(scalar(&db, &store, feedback_rows).await, 0);
    store.close().await;
}
