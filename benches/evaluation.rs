//! One patient-view evaluation through `Engine` — the whole pipeline minus HTTP and the audit
//! write: JSON parse, depth check, request digest, envelope check, FHIR validation, facts,
//! rules, cards.
//! - `patient_view_50/evaluate`: `Engine::evaluate_traced` on the request bytes (what the HTTP
//!   handler calls);
//! - `patient_view_50/parse_envelope`: `parse_body` + `HookRequest::from_value` only;
//! - `patient_view_50/analyse`: `Engine::analyse` only (validation, facts, rules, cards);
//! - `patient_view_50/analyse_five_invalid`: the same with five resources made invalid (one
//!   per kind of `common::INVALID_KINDS`), read element by element: issue 11 asks for it to
//!   stay within 2× of `analyse`;
//! - `patient_view_21/evaluate`: the unmodified example request, for reference.
//!
//! The stage split inside `analyse` (validation / facts / rules / cards) is printed once from
//! the engine's own `StageTimings` before the measurements. Run:
//! `cargo bench --bench evaluation`.

mod common;

use std::hint::black_box;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rps_cds::cds_hooks::HookRequest;
use rps_cds::cds_hooks::discovery::{self, ServiceDefinition};
use rps_cds::config::Config;
use rps_cds::engine::{Engine, StageTimings};
use rps_cds::knowledge::Hook;

/// The date the example charts are written for (see `examples/README.md`).
fn as_of() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2026, 11, 23)
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .expect("valid date")
        .and_utc()
}

fn engine() -> Arc<Engine> {
    let engine = Engine::new(&Config::default()).expect("engine starts");
    engine
        .validator
        .wait_until_ready()
        .expect("explaining validator compiles");
    Arc::new(engine)
}

fn evaluate(
    rt: &tokio::runtime::Runtime,
    engine: &Arc<Engine>,
    service: &ServiceDefinition,
    body: &[u8],
) -> rps_cds::engine::Evaluation {
    rt.block_on(engine.evaluate_traced(service, body, as_of()))
        .result
        .expect("example request is answered")
}

/// Mean stage durations (µs) over `n` evaluations, from the engine's own timers.
fn stage_split(
    rt: &tokio::runtime::Runtime,
    engine: &Arc<Engine>,
    service: &ServiceDefinition,
    body: &[u8],
    n: usize,
) -> StageTimings {
    let mut sum = StageTimings::default();
    for _ in 0..n {
        let t = evaluate(rt, engine, service, body).timings;
        sum.validation += t.validation;
        sum.facts += t.facts;
        sum.rules += t.rules;
        sum.cards += t.cards;
    }
    let us = |s: f64| s / n as f64 * 1e6;
    StageTimings {
        prefetch_fetch: None,
        validation: us(sum.validation),
        facts: us(sum.facts),
        rules: us(sum.rules),
        cards: us(sum.cards),
    }
}

fn patient_view(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let engine = engine();
    let service = discovery::service("rps-patient-view").expect("patient-view service");

    let original = common::load_example("patient-view-local-recurrence.json");
    let original_body = serde_json::to_vec(&original).expect("serialises");
    let request = common::patient_view_request(50);
    let body = serde_json::to_vec(&request).expect("serialises");

    // Sanity checks outside the timed loops: all 50 resources are used and answered.
    let small = evaluate(&rt, &engine, &service, &original_body);
    let large = evaluate(&rt, &engine, &service, &body);
    // The engine also counts resources nested in the 50 bundle entries (e.g. `contained`).
    assert!(large.resources_used >= 50, "all 50 resources validate");
    assert_eq!(large.resources_set_aside, 0);
    // Copies under new ids are separate records to the service (e.g. a second recurrence
    // condition), so the answer may differ from the example's; both are cards, not errors.
    assert!(
        !large.response.cards.is_empty(),
        "the 50-resource chart gets cards"
    );
    eprintln!("patient_view_21 rules fired: {:?}", small.rules_fired);
    eprintln!(
        "patient_view_50: {} bytes, {} resources used, {} cards: {:?}",
        body.len(),
        large.resources_used,
        large.response.cards.len(),
        large.rules_fired
    );
    let invalid_request = common::with_five_invalid(&request);
    let invalid_body = serde_json::to_vec(&invalid_request).expect("serialises");
    let invalid = evaluate(&rt, &engine, &service, &invalid_body);
    assert_eq!(invalid.resources_set_aside, 5, "five resources are invalid");
    eprintln!(
        "patient_view_50 with five invalid: {} cards: {:?}",
        invalid.response.cards.len(),
        invalid.rules_fired
    );
    let split = stage_split(&rt, &engine, &service, &body, 2000);
    eprintln!(
        "patient_view_50 stage split, mean of 2000 (µs): validation {:.1}, facts {:.1}, rules {:.1}, cards {:.1}",
        split.validation, split.facts, split.rules, split.cards
    );

    let mut group = c.benchmark_group("patient_view_50");
    group.bench_function("evaluate", |b| {
        b.iter(|| evaluate(&rt, &engine, &service, black_box(&body)))
    });
    group.bench_function("parse_envelope", |b| {
        b.iter(|| {
            let value = engine.parse_body(black_box(&body)).expect("parses");
            HookRequest::from_value(value, &engine.envelopes, Hook::PatientView)
                .expect("valid envelope")
        })
    });
    group.bench_function("analyse", |b| {
        b.iter_batched(
            || {
                HookRequest::from_value(request.clone(), &engine.envelopes, Hook::PatientView)
                    .expect("valid envelope")
            },
            |req| engine.analyse(req, as_of()),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("analyse_five_invalid", |b| {
        b.iter_batched(
            || {
                HookRequest::from_value(
                    invalid_request.clone(),
                    &engine.envelopes,
                    Hook::PatientView,
                )
                .expect("valid envelope")
            },
            |req| engine.analyse(req, as_of()),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("patient_view_21");
    group.bench_function("evaluate", |b| {
        b.iter(|| evaluate(&rt, &engine, &service, black_box(&original_body)))
    });
    group.finish();
}

criterion_group!(benches, patient_view);
criterion_main!(benches);
