//! Resident memory of the compiled FHIR R4 schema: VmRSS (from /proc/self/status) before and
//! after `FhirValidator::official()` + `wait_until_ready()`, and after a whole `Engine`.
//!
//! Run: `cargo run --release --example schema_memory [engine]` (Linux only). RSS counts pages the
//! allocator keeps after start-up temporaries are freed, so it is an upper bound on what the
//! compiled schemas themselves hold.

use std::time::Instant;

use rps_cds::config::Config;
use rps_cds::engine::Engine;
use rps_cds::fhir::FhirValidator;

/// A `kB` field of /proc/self/status (VmRSS, VmHWM), in MiB.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or_else(|| panic!("{field} missing from /proc/self/status"))
}

fn main() {
    // Freed memory stays in the process (RSS does not shrink), so the whole engine is measured
    // in a fresh process: `schema_memory engine`.
    if std::env::args().nth(1).as_deref() == Some("engine") {
        let before = status_mib("VmRSS");
        let engine = Engine::new(&Config::default()).expect("engine starts");
        engine
            .validator
            .wait_until_ready()
            .expect("explaining validator compiles");
        let after = status_mib("VmRSS");
        println!(
            "whole Engine (knowledge, both FHIR validators, CDS Hooks schemas): VmRSS before {before:.1} MiB, after {after:.1} MiB (+{:.1} MiB), peak {:.1} MiB",
            after - before,
            status_mib("VmHWM")
        );
        return;
    }
    let before = status_mib("VmRSS");
    let t = Instant::now();
    let validator = FhirValidator::official().expect("official schema compiles");
    validator
        .wait_until_ready()
        .expect("explaining validator compiles");
    let elapsed = t.elapsed();
    let after = status_mib("VmRSS");
    println!("FhirValidator::official() + wait_until_ready(): {elapsed:.2?}");
    println!(
        "VmRSS before {before:.1} MiB, after {after:.1} MiB: compiled FHIR schemas hold {:.1} MiB",
        after - before
    );
    println!("VmHWM (peak during compile) {:.1} MiB", status_mib("VmHWM"));
}
