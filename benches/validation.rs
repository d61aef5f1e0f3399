//! FHIR R4 schema validation cost (issue targets in `docs/performance.md`):
//! - `chart_50_valid`: 50 valid resources, one `validate_resource` call each;
//! - `chart_50_five_invalid`: the same chart with five resources made invalid, one per kind
//!   (bad status code, bad dateTime, unknown element, wrong JSON type, missing required);
//! - `chart_1000_valid`: 1,000 valid resources;
//! - `startup_compile`: `FhirValidator::official()` and `wait_until_ready()` (both validators).
//!
//! Run: `cargo bench --bench validation`. Resident memory of the compiled schema is measured
//! separately by `cargo run --release --example schema_memory`.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rps_cds::fhir::FhirValidator;
use serde_json::Value;

fn validate_chart(validator: &FhirValidator, chart: &[Value]) -> usize {
    chart
        .iter()
        .filter(|r| validator.validate_resource(r).is_err())
        .count()
}

fn charts(c: &mut Criterion) {
    let validator = FhirValidator::official().expect("official schema compiles");
    validator
        .wait_until_ready()
        .expect("explaining validator compiles");

    let valid_50 = common::mixed_chart(50);
    let mut invalid_50 = valid_50.clone();
    let changed = common::make_five_invalid(&mut invalid_50);
    let valid_1000 = common::mixed_chart(1000);

    // Sanity checks outside the timed loops: the charts are what their names say.
    assert_eq!(
        validate_chart(&validator, &valid_50),
        0,
        "50-chart is valid"
    );
    assert_eq!(
        validate_chart(&validator, &valid_1000),
        0,
        "1000-chart is valid"
    );
    for (kind, i) in common::INVALID_KINDS.iter().zip(&changed) {
        let err = validator
            .validate_resource(&invalid_50[*i])
            .expect_err("corrupted resource is rejected");
        eprintln!("invalid resource ({kind}): {err}");
    }
    assert_eq!(validate_chart(&validator, &invalid_50), 5);

    let mut group = c.benchmark_group("validation");
    group.throughput(Throughput::Elements(50));
    group.bench_function("chart_50_valid", |b| {
        b.iter(|| validate_chart(&validator, black_box(&valid_50)))
    });
    group.bench_function("chart_50_five_invalid", |b| {
        b.iter(|| validate_chart(&validator, black_box(&invalid_50)))
    });
    group.throughput(Throughput::Elements(1000));
    group.bench_function("chart_1000_valid", |b| {
        b.iter(|| validate_chart(&validator, black_box(&valid_1000)))
    });
    // Each invalid kind alone, to see which one dominates the invalid chart.
    group.throughput(Throughput::Elements(1));
    for (kind, i) in common::INVALID_KINDS.iter().zip(&changed) {
        let resource = &invalid_50[*i];
        let name = format!("one_invalid/{}", kind.replace(' ', "_"));
        group.bench_function(name, |b| {
            b.iter(|| validator.validate_resource(black_box(resource)).is_err())
        });
    }
    group.finish();
}

fn startup(c: &mut Criterion) {
    let mut group = c.benchmark_group("validation");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.bench_function("startup_compile", |b| {
        // Dropping the compiled schemas is not part of start-up.
        b.iter_with_large_drop(|| {
            let v = FhirValidator::official().expect("official schema compiles");
            v.wait_until_ready().expect("explaining validator compiles");
            v
        })
    });
    group.finish();
}

criterion_group!(benches, charts, startup);
criterion_main!(benches);
