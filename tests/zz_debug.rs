use rps_cds::config::Config;
use rps_cds::engine::Engine;
#[test]
fn dbg() {
    let e = Engine::new(&Config::default()).unwrap();
    let body: serde_json::Value = serde_json::from_str(&std::fs::read_to_string("examples/patient-view-local-recurrence.json").unwrap()).unwrap();
    let req = rps_cds::cds_hooks::HookRequest::from_value(body, &e.envelopes, rps_cds::cds_hooks::Hook::PatientView).unwrap();
    let mut valid = vec![];
    let mut patient = None;
    for (k, v) in &req.prefetch { for r in rps_cds::cds_hooks::request::bundle_resources(v) { match e.validator.validate_resource(r) { Ok(()) => if k == "patient" { patient = Some(r) } else { valid.push(r) }, Err(x) => eprintln!("INVALID {x}") } } }
    let input = rps_cds::clinical::ClinicalInput { as_of: chrono::Utc::now(), patient, resources: &valid, set_aside: &[] };
    let p = rps_cds::clinical::build_picture(&input, &e.knowledge.terminology, &e.parameters);
    eprintln!("{:#?}", p.diagnosis);
    eprintln!("{:#?}", p.histology);
}
