//! The audit writer alone: CPU per record and commit times, without HTTP, JSON parsing or the
//! clinical pipeline (docs/performance.md, "Audit CPU per call").
//!
//! `cargo run --release --example audit_writer [RECORDS] [CONCURRENCY]` (default 20000 16)
//! records RECORDS invocations shaped like the example request's (4 rules, 4 cards; built
//! before timing starts, on the service's allocator; their ids and time are set as each is
//! sent) into a SQLite store in a temporary directory (WAL, synchronous=FULL, as the service
//! runs it), from CONCURRENCY tasks on a 2-worker Tokio runtime, each awaiting the commit of its record before
//! sending the next (what an HTTP worker does). It prints the process's CPU time (user + system,
//! from /proc/self/stat, so threads that SQLite or sqlx start are counted) per record, the CPU
//! of each thread group, the caller-side wait percentiles and the writer's commit histogram.
//! `RPS_CDS_STORAGE__URL=postgres://…` runs it against PostgreSQL instead (that server's own
//! CPU is not counted).
//!
//! `cargo run --release --example audit_writer digest [ITERATIONS] [REQUEST]` times the other
//! half of the audit's CPU in the service instead: `audit::request_digest` of a request (by
//! default `examples/patient-view-local-recurrence.json`) as the service records it (of the
//! body when it carries no token), then `audit::canonical_request_digest` (the form for
//! requests with a token) split into its two parts, the canonical JSON text alone (serde_json's
//! compact output with `fhirAuthorization` removed) and SHA-256 of that text alone, and says
//! whether the CPU has the SHA extensions that sha2 uses when it finds them at run time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use rps_cds::audit::{AuditStore, CardRecord, InvocationRecord, StorageConfig};

// The service's allocator (src/main.rs), so the writer's allocations cost what they cost there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn record(knowledge_version: &str) -> InvocationRecord {
    let card = |rule: &str, indicator: &str, summary: &str| CardRecord {
        uuid: uuid::Uuid::now_v7(),
        rule_id: rule.to_owned(),
        indicator: indicator.to_owned(),
        summary: summary.to_owned(),
        suggestions: vec![uuid::Uuid::new_v4().to_string()],
        // The five override reasons of the knowledge base, as a warning card lists them.
        override_reasons: [
            "patient-preference",
            "discussed-at-tumour-board",
            "clinical-judgement",
            "information-outdated-or-incorrect",
            "already-addressed",
        ]
        .map(String::from)
        .to_vec(),
    };
    let cards = vec![
        card(
            "MDT-01",
            "warning",
            "Discuss the recurrence at a sarcoma MDT before treatment",
        ),
        card(
            "WORK-04",
            "warning",
            "Staging CT of the chest is older than 30 days",
        ),
        card(
            "LR-04",
            "info",
            "Favourable local recurrence: re-resection may be considered",
        ),
        card(
            "LR-05",
            "info",
            "Radiotherapy at recurrence: not routinely recommended",
        ),
    ];
    InvocationRecord {
        id: uuid::Uuid::now_v7(),
        time: Utc::now(),
        service_id: "rps-patient-view".to_owned(),
        hook: Some("patient-view".to_owned()),
        hook_instance: Some(uuid::Uuid::new_v4().to_string()),
        ehr_issuer: None,
        knowledge_version: knowledge_version.to_owned(),
        parameter_set: None,
        patient_id: Some("rps-example-1".to_owned()),
        rules_fired: cards.iter().map(|c| c.rule_id.clone()).collect(),
        cards,
        request_sha256: Some("a".repeat(64)),
        latency_ms: 1.25,
        http_status: 200,
    }
}

/// (thread name, user + system clock ticks) of every thread of this process.
fn thread_ticks() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        if let Some(t) = parse_stat(&stat) {
            out.push(t);
        }
    }
    out
}

/// `comm` and utime + stime of a /proc stat line (comm may contain spaces: it is in parens).
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_owned();
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    // After the comm: state is field 3 of the line, utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

fn process_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat(&s))
        .map_or(0, |(_, t)| t)
}

/// Thread names with digits dropped ("tokio-runtime-w" …), CPU summed per group.
fn by_group(ticks: &[(String, u64)]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for (name, t) in ticks {
        let group: String = name.chars().filter(|c| !c.is_ascii_digit()).collect();
        *m.entry(group).or_insert(0) += t;
    }
    m
}

/// Mean wall time per call of `f` over `iterations` calls (one thread, after a warm-up).
fn time_per_call(iterations: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..iterations / 10 + 1 {
        f();
    }
    let started = Instant::now();
    for _ in 0..iterations {
        f();
    }
    started.elapsed() / iterations as u32
}

fn digest_main(mut args: impl Iterator<Item = String>) {
    use sha2::Digest;
    use std::hint::black_box;
    let iterations: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let file = args.next().unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/patient-view-local-recurrence.json"
        )
        .to_owned()
    });
    let body = std::fs::read(&file).expect("request file");
    let request: serde_json::Value = serde_json::from_slice(&body).expect("request JSON");
    let mut stripped = request.clone();
    if let Some(map) = stripped.as_object_mut() {
        map.remove("fhirAuthorization");
    }
    let canonical = serde_json::to_vec(&stripped).expect("serialises");
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&canonical)),
        rps_cds::audit::canonical_request_digest(&request),
        "the canonical digest is SHA-256 of serde_json's compact text without fhirAuthorization"
    );
    // What the service records: the body's bytes unless the request carries a token.
    let recorded = time_per_call(iterations, || {
        black_box(rps_cds::audit::request_digest(
            black_box(&body),
            black_box(&request),
        ));
    });
    let whole = time_per_call(iterations, || {
        black_box(rps_cds::audit::canonical_request_digest(black_box(
            &request,
        )));
    });
    let text = time_per_call(iterations, || {
        black_box(serde_json::to_vec(black_box(&stripped)).expect("serialises"));
    });
    let hash = time_per_call(iterations, || {
        black_box(sha2::Sha256::digest(black_box(&canonical)));
    });
    #[cfg(target_arch = "x86_64")]
    let sha_extensions = std::arch::is_x86_feature_detected!("sha");
    #[cfg(not(target_arch = "x86_64"))]
    let sha_extensions = false;
    println!(
        "AUDIT_DIGEST request={} body_bytes={} canonical_bytes={} iterations={iterations} \
         request_digest_us={:.2} canonical_digest_us={:.2} canonical_text_us={:.2} \
         sha256_us={:.2} sha256_mb_per_s={:.0} cpu_sha_extensions={sha_extensions} digest={}",
        std::path::Path::new(&file)
            .file_name()
            .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned()),
        body.len(),
        canonical.len(),
        recorded.as_secs_f64() * 1e6,
        whole.as_secs_f64() * 1e6,
        text.as_secs_f64() * 1e6,
        hash.as_secs_f64() * 1e6,
        canonical.len() as f64 / hash.as_secs_f64() / 1e6,
        rps_cds::audit::request_digest(&body, &request),
    );
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("digest") {
        args.next();
        return digest_main(args);
    }
    let records: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let handle = rps_cds::telemetry::install_metrics();
    let dir = tempfile::tempdir().expect("temporary directory");
    let cfg = StorageConfig {
        url: std::env::var("RPS_CDS_STORAGE__URL").ok(),
        data_dir: dir.path().to_path_buf(),
        ..StorageConfig::default()
    };
    let (waits, wall, cpu_ticks, threads) = runtime.block_on(async move {
        let store = AuditStore::open(&cfg).await.expect("audit store");
        // Warm-up: statements prepared, the file and WAL grown a little.
        for _ in 0..200 {
            store.record_invocation(record("2026.11.1")).await.unwrap();
        }
        let per_task = records / concurrency;
        // Records are built before the clock starts: their uuids and strings are the engine's
        // work in the service, not the audit's.
        let batches: Vec<Vec<InvocationRecord>> = (0..concurrency)
            .map(|_| (0..per_task).map(|_| record("2026.11.1")).collect())
            .collect();
        let before_threads = thread_ticks();
        let before = process_ticks();
        let started = Instant::now();
        let tasks: Vec<_> = batches
            .into_iter()
            .map(|records| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut waits = Vec::with_capacity(records.len());
                    for mut rec in records {
                        // Ids and time as the service makes them, at the call: time-ordered
                        // v7 uuids from all callers interleave as appends at the right edge
                        // of the indexes. (Made when the records were built, each caller's
                        // ids would be a range of its own, and every commit would insert into
                        // 16 places of each index: more pages per commit than the service.)
                        // Card uuids name their invocation, as the engine makes them, so
                        // they need no index rows (`audit::card_uuid`).
                        rec.id = rps_cds::audit::new_invocation_id();
                        rec.time = Utc::now();
                        for (position, card) in rec.cards.iter_mut().enumerate() {
                            card.uuid = rps_cds::audit::card_uuid(rec.id, position).unwrap();
                        }
                        let t = Instant::now();
                        store.record_invocation(rec).await.unwrap();
                        waits.push(t.elapsed());
                    }
                    waits
                })
            })
            .collect();
        let mut waits: Vec<Duration> = Vec::new();
        for t in tasks {
            waits.extend(t.await.unwrap());
        }
        let wall = started.elapsed();
        let cpu = process_ticks() - before;
        let after_threads = by_group(&thread_ticks());
        let before_threads = by_group(&before_threads);
        let threads: Vec<(String, u64)> = after_threads
            .into_iter()
            .map(|(g, t)| {
                let b = before_threads.get(&g).copied().unwrap_or(0);
                (g, t.saturating_sub(b))
            })
            .filter(|(_, t)| *t > 0)
            .collect();
        store.close().await;
        (waits, wall, cpu, threads)
    });
    let n = waits.len() as f64;
    let tick = 1e6 / 100.0; // µs per clock tick (USER_HZ = 100 on Linux)
    let mut sorted = waits.clone();
    sorted.sort();
    let pct = |p: f64| sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)];
    println!(
        "AUDIT_WRITER records={} concurrency={concurrency} wall={:.2}s rate={:.0}/s cpu_per_record_us={:.1}",
        waits.len(),
        wall.as_secs_f64(),
        n / wall.as_secs_f64(),
        cpu_ticks as f64 * tick / n
    );
    for (group, t) in threads {
        println!("  thread {group:<20} {:.1} us/record", t as f64 * tick / n);
    }
    println!(
        "  caller wait p50={:.2}ms p90={:.2}ms p99={:.2}ms",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.9).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
    for line in handle.render().lines() {
        if line.starts_with("rps_cds_audit_commit_duration_seconds")
            || line.starts_with("rps_cds_audit_batch_size_sum")
            || line.starts_with("rps_cds_audit_batch_size_count")
        {
            println!("  {line}");
        }
    }
}
