//! The knowledge base as shipped: it loads and validates, it covers the rule catalogue, its
//! texts are our own, and the generated clinical document is current.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use rps_cds::clinical::VALUE_SETS;
use rps_cds::knowledge::Hook;
use rps_cds::knowledge::doc::render_clinical_rules_doc;
use rps_cds::knowledge::{Knowledge, KnowledgeError, ParameterId, Parameters, Section};
use rps_cds::rules::RuleId;
use serde_json::Value;

/// The rule ids of `knowledge/rules.json`, in catalogue order, read from the file itself (not
/// through the loader the tests check).
fn catalogue_rule_ids() -> Vec<String> {
    let text = std::fs::read_to_string(manifest_dir().join("knowledge/rules.json")).unwrap();
    let rules: Value = serde_json::from_str(&text).unwrap();
    rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The ids of the value sets shipped in `knowledge/valuesets/` (each file's `id`, which is
/// also its name).
fn shipped_value_set_ids() -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for entry in std::fs::read_dir(manifest_dir().join("knowledge/valuesets")).unwrap() {
        let path = entry.unwrap().path();
        let value_set: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let id = value_set["id"].as_str().unwrap().to_owned();
        assert_eq!(
            path.file_stem().and_then(|s| s.to_str()),
            Some(id.as_str()),
            "{} has id {id}",
            path.display()
        );
        ids.insert(id);
    }
    ids
}

/// The text of every Rust file under `src/`.
fn source_text() -> String {
    fn walk(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = String::new();
    walk(&manifest_dir().join("src"), &mut out);
    out
}

/// Order templates the rules suggest: the list the rules module checks at start-up.
use rps_cds::rules::ORDER_TEMPLATES as ORDER_TEMPLATE_IDS;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn knowledge() -> Knowledge {
    Knowledge::embedded().expect("the embedded knowledge base loads and validates")
}

/// The files of `knowledge/` as (relative path, bytes), for tests that corrupt one of them.
fn knowledge_files() -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let root = manifest_dir().join("knowledge");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out
}

/// Loads `knowledge/` with one JSON file changed by `edit`.
fn load_with(file: &str, edit: impl FnOnce(&mut Value)) -> Result<Knowledge, KnowledgeError> {
    let mut files = knowledge_files();
    let entry = files
        .iter_mut()
        .find(|(p, _)| p.to_string_lossy().replace('\\', "/") == file)
        .unwrap_or_else(|| panic!("{file} exists"));
    let mut value: Value = serde_json::from_slice(&entry.1).unwrap();
    edit(&mut value);
    entry.1 = serde_json::to_vec(&value).unwrap();
    Knowledge::from_files(files.iter().map(|(p, b)| (p.as_path(), b.as_slice())))
}

#[test]
fn embedded_knowledge_loads_and_equals_the_directory() {
    let k = knowledge();
    assert_eq!(k.version, "2026.12.1");
    let from_dir = Knowledge::from_dir(&manifest_dir().join("knowledge")).unwrap();
    assert_eq!(from_dir.version, k.version);
    assert_eq!(from_dir.rules.len(), k.rules.len());
    assert_eq!(from_dir.terminology.len(), k.terminology.len());
}

/// The loaded rules are `knowledge/rules.json`'s, in its order, and the code has a rule for
/// each of them and none besides (`RuleId::ALL`, in the same order).
#[test]
fn rules_are_exactly_the_catalogue_in_order() {
    let k = knowledge();
    let catalogue = catalogue_rule_ids();
    let ids: Vec<&str> = k.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, catalogue);
    let code: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(code, catalogue, "RuleId::ALL against knowledge/rules.json");
    for (i, id) in catalogue.iter().enumerate() {
        assert_eq!(k.catalogue_position(id), i);
        assert!(k.rule(id).is_some());
    }
}

/// An independent check against the clinical specification: the rule ids of the catalogue
/// tables of `docs/clinical-spec.md` (§2, and the version 2 amendments of §4; the repository's
/// copy of the catalogue) are exactly those of `knowledge/rules.json`.
#[test]
fn catalogue_rule_ids_equal_the_clinical_specification() {
    let path = manifest_dir().join("docs/clinical-spec.md");
    let text = std::fs::read_to_string(&path).expect("docs/clinical-spec.md");
    // The first cell of every table row of sections 2 and 4 ("| LR-09 **new** | …",
    // "| LR-05 / LR-06 (changed) | …"): each RULE-NN in it.
    let mut section = 0;
    let mut specified = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("## ") {
            section = rest
                .split('.')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
        if !matches!(section, 2 | 4) || !line.starts_with('|') {
            continue;
        }
        let first_cell = line.split('|').nth(1).unwrap_or("");
        for word in first_cell.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            let is_rule_id = word.split_once('-').is_some_and(|(prefix, n)| {
                !prefix.is_empty()
                    && prefix.chars().all(|c| c.is_ascii_uppercase())
                    && n.len() == 2
                    && n.chars().all(|c| c.is_ascii_digit())
            });
            if is_rule_id {
                specified.insert(word.to_owned());
            }
        }
    }
    let catalogue: BTreeSet<String> = catalogue_rule_ids().into_iter().collect();
    let only_specified: Vec<&String> = specified.difference(&catalogue).collect();
    let only_in_rules_json: Vec<&String> = catalogue.difference(&specified).collect();
    assert!(
        only_specified.is_empty() && only_in_rules_json.is_empty(),
        "{}: rules missing from knowledge/rules.json {only_specified:?}, rules the \
         specification does not have {only_in_rules_json:?}",
        path.display()
    );
    assert_eq!(specified.len(), RuleId::ALL.len());
}

#[test]
fn sections_and_hooks_follow_the_catalogue() {
    let k = knowledge();
    for rule in &k.rules {
        let prefix = rule.id.split('-').next().unwrap();
        let expected = match prefix {
            "SCOPE" | "DATA" => Section::ScopeAndData,
            "MDT" | "WORK" | "HIST" | "PATH" => Section::ReferralWorkupHistory,
            "LR" => Section::LocalRecurrence,
            "MET" => Section::Metastatic,
            "SYS" => Section::SystemicTherapy,
            "SURV" => Section::Surveillance,
            "ORD" => Section::OrderChecks,
            other => panic!("unexpected prefix {other}"),
        };
        assert_eq!(rule.section, expected, "{}", rule.id);
        let hooks = rule.hooks.as_slice();
        let all = [Hook::PatientView, Hook::OrderSelect, Hook::OrderSign];
        match rule.id.as_str() {
            "SCOPE-01" | "SCOPE-02" | "DATA-02" | "DATA-03" | "DATA-04" | "MET-05" | "WORK-06" => {
                assert_eq!(hooks, all, "{}", rule.id)
            }
            _ if prefix == "ORD" => {
                assert_eq!(hooks, [Hook::OrderSelect, Hook::OrderSign], "{}", rule.id)
            }
            _ => assert_eq!(hooks, [Hook::PatientView], "{}", rule.id),
        }
    }
}

#[test]
fn texts_are_present_short_and_sourced() {
    let k = knowledge();
    for rule in &k.rules {
        assert!(rule.summary.chars().count() < 140, "{} summary", rule.id);
        assert!(!rule.title.is_empty() && !rule.condition.is_empty());
        let sentences = rule.recommendation.matches(". ").count() + 1;
        assert!(
            (2..=5).contains(&sentences),
            "{}: recommendation has {sentences} sentences",
            rule.id
        );
        assert!(rule.source.url.starts_with("https://"), "{}", rule.id);
        assert!(!rule.source.label.is_empty());
    }
    // Data-quality and scope checks have no clinical evidence level; LR-05 has UpToDate's grade.
    for id in ["SCOPE-02", "DATA-01", "DATA-02", "DATA-03", "DATA-04"] {
        assert_eq!(k.rule(id).unwrap().evidence, None, "{id}");
    }
    assert_eq!(
        k.rule("LR-05").unwrap().evidence.as_deref(),
        Some("Grade 2C")
    );
    assert_eq!(k.rule("MET-02").unwrap().evidence.as_deref(), Some("IVA"));
    assert!(k.rule("ORD-15").unwrap().source.label.contains("EXT"));
}

#[test]
fn parameter_defaults_equal_the_catalogue() {
    let k = knowledge();
    assert_eq!(
        k.parameters(&BTreeMap::new()).unwrap(),
        Parameters::default()
    );
    assert_eq!(k.parameter_definitions.len(), ParameterId::ALL.len());
    for p in &k.parameter_definitions {
        assert!(
            !p.unit.is_empty() && !p.description.is_empty(),
            "{}",
            p.name
        );
        assert!(
            p.source.starts_with("TMC") || p.source.starts_with("EXT: "),
            "{}: {}",
            p.name,
            p.source
        );
    }
}

/// The value sets the code names are shipped, and every shipped one is named by the code:
/// the contract with fact extraction (`clinical::VALUE_SETS`, checked at start-up) plus any
/// other value-set id written in `src/`, which must be in that contract too.
#[test]
fn every_contract_value_set_exists() {
    let k = knowledge();
    k.terminology.require(VALUE_SETS).unwrap();
    let shipped = shipped_value_set_ids();
    let loaded: BTreeSet<String> = k.terminology.ids().map(str::to_owned).collect();
    assert_eq!(loaded, shipped, "the terminology is knowledge/valuesets/");
    let contract: BTreeSet<&str> = VALUE_SETS.iter().copied().collect();
    assert_eq!(
        contract.len(),
        VALUE_SETS.len(),
        "VALUE_SETS has a duplicate"
    );
    let source = source_text();
    let named_in_source: BTreeSet<&str> = shipped
        .iter()
        .map(String::as_str)
        .filter(|id| source.contains(&format!("\"{id}\"")))
        .collect();
    let outside_contract: Vec<&&str> = named_in_source.difference(&contract).collect();
    assert!(
        outside_contract.is_empty(),
        "value sets named in src/ but missing from clinical::VALUE_SETS (not checked at \
         start-up): {outside_contract:?}"
    );
    let unused: Vec<&str> = shipped
        .iter()
        .map(String::as_str)
        .filter(|id| !contract.contains(id) && !named_in_source.contains(id))
        .collect();
    assert!(
        unused.is_empty(),
        "value sets in knowledge/valuesets/ that no code uses: {unused:?}"
    );
    // Spot checks of content: a code, a text fallback, and a text-only set.
    let lms = serde_json::json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/icd-o-3", "code": "8890/3"}]});
    assert!(
        k.terminology
            .matches("histology-leiomyosarcoma", &lms)
            .is_some()
    );
    let text = serde_json::json!({"text": "Retroperitoneal well-differentiated liposarcoma"});
    assert!(
        k.terminology
            .matches("histology-wd-liposarcoma", &text)
            .is_some()
    );
    let hipec = serde_json::json!({"text": "Cytoreduction with HIPEC"});
    assert!(k.terminology.matches("hipec", &hipec).is_some());
}

#[test]
fn order_templates_exist_and_missing_ones_are_reported() {
    let k = knowledge();
    k.check_order_templates(ORDER_TEMPLATE_IDS).unwrap();
    assert_eq!(k.order_templates.len(), ORDER_TEMPLATE_IDS.len());
    let err = k
        .check_order_templates(&["ct-chest", "no-such-order"])
        .unwrap_err();
    assert!(
        matches!(&err, KnowledgeError::MissingOrderTemplates(m) if m == &vec!["no-such-order".to_owned()])
    );
    assert_eq!(
        k.order_templates["doxorubicin"]["medicationCodeableConcept"]["coding"][0]["code"],
        "3639"
    );
}

#[test]
fn rule_code_system_mirrors_the_rule_book() {
    let k = knowledge();
    let concepts = k.code_systems["rps-rule"]["concept"].as_array().unwrap();
    assert_eq!(concepts.len(), k.rules.len());
    for (c, r) in concepts.iter().zip(&k.rules) {
        assert_eq!(c["code"], r.id.as_str());
        assert_eq!(c["display"], r.title.as_str());
        assert_eq!(c["definition"], r.condition.as_str());
    }
    for id in ["rps-observation", "rps-override-reason", "rps-order"] {
        assert_eq!(k.code_systems[id]["content"], "complete", "{id}");
    }
}

#[test]
fn check_report_summarises_the_knowledge_base() {
    let report = knowledge().check_report();
    assert!(
        report.contains("knowledge base version 2026.12.1: valid"),
        "{report}"
    );
    assert!(
        report.contains(&format!("rules: {}", catalogue_rule_ids().len())),
        "{report}"
    );
    assert!(report.contains("order-checks"), "{report}");
    assert!(
        report.contains(&format!("value sets: {}", shipped_value_set_ids().len())),
        "{report}"
    );
    assert!(
        report.contains(&format!("parameters: {}", ParameterId::ALL.len())),
        "{report}"
    );
}

#[test]
fn a_too_long_summary_is_rejected_with_file_and_pointer() {
    let err = load_with("rules.json", |v| {
        v["rules"][3]["summary"] = Value::String("x".repeat(140));
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, KnowledgeError::Schema { .. }), "{msg}");
    assert!(msg.contains("rules.json"), "{msg}");
    assert!(msg.contains("/rules/3/summary"), "{msg}");
}

#[test]
fn an_unknown_hook_is_rejected_with_file_and_pointer() {
    let err = load_with("rules.json", |v| {
        v["rules"][0]["hooks"][0] = Value::String("encounter-start".to_owned());
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("rules.json") && err.contains("/rules/0/hooks/0"),
        "{err}"
    );
}

#[test]
fn other_schema_violations_are_rejected() {
    let err = load_with("rules.json", |v| {
        v["rules"][1]["id"] = Value::String("SCOPE-2".to_owned());
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("/rules/1/id"), "{err}");
    let err = load_with("rules.json", |v| {
        v["rules"][5]["source"]["url"] = Value::String("not a url".to_owned());
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("/rules/5/source/url"), "{err}");
    let err = load_with("rules.json", |v| {
        v["rules"][2]["extra"] = Value::Bool(true);
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("/rules/2"), "{err}");
    let err = load_with("parameters.json", |v| {
        v[0]["default"] = Value::String("12".to_owned());
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("parameters.json") && err.contains("/0/default"),
        "{err}"
    );
    let err = load_with("orders.json", |v| {
        v["ct-chest"]["status"] = Value::String("active".to_owned());
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("orders.json") && err.contains("/ct-chest"),
        "{err}"
    );
}

#[test]
fn cross_file_inconsistencies_are_rejected() {
    // Rule order differs from the rps-rule code system.
    let err = load_with("rules.json", |v| {
        v["rules"].as_array_mut().unwrap().swap(0, 1);
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("rps-rule"), "{err}");
    // A local order code that the rps-order code system does not define.
    let err = load_with("orders.json", |v| {
        v["tumour-board-referral"]["code"]["coding"][0]["code"] = Value::String("mdt".to_owned());
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("rps-order") && err.contains("mdt"), "{err}");
    // An override reason outside its code system.
    let err = load_with("rules.json", |v| {
        v["override_reasons"][0]["code"] = Value::String("because".to_owned());
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("override"), "{err}");
}

/// The FHIR resources of the knowledge base (value sets, code systems, order templates once
/// completed by the card builder) validate against the official FHIR R4 schema.
#[test]
fn fhir_resources_validate_against_the_fhir_schema() {
    let schema: Value = serde_json::from_slice(
        &std::fs::read(manifest_dir().join("schemas/fhir.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (path, bytes) in knowledge_files() {
        let name = path.to_string_lossy().replace('\\', "/");
        let resources: Vec<Value> =
            if name.starts_with("valuesets/") || name.starts_with("codesystems/") {
                vec![serde_json::from_slice(&bytes).unwrap()]
            } else if name == "orders.json" {
                let orders: BTreeMap<String, Value> = serde_json::from_slice(&bytes).unwrap();
                orders
                    .into_values()
                    .map(|mut o| {
                        o["status"] = "draft".into();
                        o["intent"] = "proposal".into();
                        o["subject"] = serde_json::json!({"reference": "Patient/example"});
                        o
                    })
                    .collect()
            } else {
                continue;
            };
        for r in resources {
            checked += 1;
            if !validator.is_valid(&r) {
                failures.push(name.clone());
            }
        }
    }
    assert!(failures.is_empty(), "not valid FHIR R4: {failures:?}");
    // The validator does reject a malformed resource (so the loop above is meaningful).
    let bogus = serde_json::json!({"resourceType": "ValueSet", "status": "bogus"});
    assert!(!validator.is_valid(&bogus));
    assert!(checked >= shipped_value_set_ids().len() + 4 + ORDER_TEMPLATE_IDS.len());
}

/// Card texts are ours: no recommendation (nor summary or condition) shares a run of 12 or
/// more consecutive words with the seed documents. The seeds live in `../shared/seeds` beside
/// the repository (or `RPS_SEEDS_DIR`; not `RPS_CDS_…`, which the configuration reads as its
/// own keys); the check is skipped only when they are absent.
#[test]
fn texts_share_no_twelve_word_run_with_the_seeds() {
    const RUN: usize = 12;
    let dir = std::env::var_os("RPS_SEEDS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../shared/seeds"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "seed directory {} absent: overlap check skipped",
            dir.display()
        );
        return;
    };
    fn words(text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    }
    let mut runs: HashSet<Vec<String>> = HashSet::new();
    let mut seeds = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("txt") {
            continue;
        }
        seeds += 1;
        let w = words(&std::fs::read_to_string(&path).unwrap());
        for run in w.windows(RUN) {
            runs.insert(run.to_vec());
        }
    }
    assert!(seeds > 0, "no seed files in {}", dir.display());
    let k = knowledge();
    let mut copied = Vec::new();
    for rule in &k.rules {
        for (field, text) in [
            ("recommendation", &rule.recommendation),
            ("summary", &rule.summary),
            ("condition", &rule.condition),
        ] {
            if let Some(run) = words(text).windows(RUN).find(|r| runs.contains(*r)) {
                copied.push(format!("{} {field}: \"{}\"", rule.id, run.join(" ")));
            }
        }
    }
    assert!(copied.is_empty(), "text copied from the seeds: {copied:#?}");
}

/// docs/clinical-rules.md is the rendering of the knowledge base.
#[test]
fn clinical_rules_doc_is_current() {
    let path = manifest_dir().join("docs/clinical-rules.md");
    let rendered = render_clinical_rules_doc(&knowledge());
    if std::env::var_os("RPS_CDS_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "docs/clinical-rules.md is out of date with knowledge/; regenerate it with \
         `RPS_CDS_BLESS=1 cargo test --test clinical knowledge::` and commit the result"
    );
    for id in catalogue_rule_ids() {
        assert!(
            rendered.contains(&format!("### {id}: ")),
            "{id} missing from the document"
        );
    }
}

/// Issue 13: every parameter has a clinical label (a threshold with `{value}`, never its key),
/// and cards show it with the value in force and where it comes from.
#[test]
fn every_parameter_has_a_clinical_label() {
    let k = knowledge();
    let params = k.parameters(&BTreeMap::new()).unwrap();
    for def in &k.parameter_definitions {
        assert!(def.label.contains("{value}"), "{}: {}", def.name, def.label);
        assert!(
            !def.label.contains(&def.name),
            "{}: {}",
            def.name,
            def.label
        );
        let id = ParameterId::from_name(&def.name).unwrap();
        let shown = params.threshold(id);
        assert!(
            shown.ends_with(" — catalogue default") && !shown.contains('_'),
            "{shown}"
        );
    }
    assert_eq!(
        params.threshold(ParameterId::PoorEcogMin),
        "poor performance status from ECOG 3 — catalogue default"
    );
}
