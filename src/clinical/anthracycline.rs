//! Prior anthracycline exposure and cumulative dose (docs/clinical-spec.md §4.1), as pure
//! functions over small typed inputs the extractor fills.
//!
//! - Administrations are de-duplicated (same agent, date and dose once) and summed as
//!   doxorubicin-equivalent mg/m²: a **lower bound**. A dose in mg needs the nearest body
//!   surface area recorded on or before it; when that record is unusable the dose is unknown
//!   (never an older one instead). Anything unknown makes the total "at least X".
//! - Statements and orders (MedicationStatement / MedicationRequest) show exposure; they add
//!   an unknown dose unless an administration of the same agent lies within
//!   [`COVERED_WINDOW_DAYS`] of them (the same therapy, already counted).
//! - Exposure is its own fact: known from any record even when no dose is; unknown (not
//!   "none") when medication data is missing.

use chrono::NaiveDate;

use super::extract::absence;
use super::picture::{Agent, AnthracyclineDose, DoseGap, Fact, Provenance, ReadFrom, Unknown};
use super::readers::is_mg_per_m2;

/// A statement or order within this many days of an administration of the same agent
/// describes the administered therapy (the extractor's line window).
pub(crate) const COVERED_WINDOW_DAYS: i64 = 30;

/// What a record says about the dose.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DoseEntry<'r> {
    /// A MedicationAdministration: its `dosage.dose` (value, unit) if readable.
    Administration(Option<(f64, Option<&'r str>)>),
    /// A MedicationStatement or MedicationRequest: exposure without a dose.
    Statement,
    /// The record names more than one anthracycline: its dose cannot be attributed.
    SeveralAgents,
}

/// One anthracycline record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DoseRecord<'r> {
    pub(crate) reference: &'r str,
    pub(crate) agent: Agent,
    pub(crate) date: Option<NaiveDate>,
    pub(crate) entry: DoseEntry<'r>,
}

/// A body-surface-area record; `m2` is `None` when the record is unusable (invalid, or no
/// positive value in m²).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BsaRecord<'r> {
    pub(crate) reference: &'r str,
    pub(crate) date: Option<NaiveDate>,
    pub(crate) m2: Option<f64>,
}

/// Everything the dose and exposure facts need.
#[derive(Debug, Clone)]
pub(crate) struct DoseInputs<'r> {
    pub(crate) records: Vec<DoseRecord<'r>>,
    pub(crate) bsa: Vec<BsaRecord<'r>>,
    pub(crate) epirubicin_factor: f64,
    /// Medication data set aside or withheld: records may be missing from the sum, and no
    /// record does not mean no exposure.
    pub(crate) medication_missing: Option<Unknown>,
    /// Body-surface-area records may be missing (Observations set aside or withheld whose
    /// kind and date cannot be read): no mg dose can be converted with confidence.
    pub(crate) bsa_missing: Option<Unknown>,
}

/// The nearest usable BSA on or before `date`, or why there is none.
fn bsa_for<'r>(
    bsa: &'r [BsaRecord<'r>],
    date: Option<NaiveDate>,
    missing: &Option<Unknown>,
) -> Result<&'r BsaRecord<'r>, String> {
    if missing.is_some() {
        return Err(
            "dosed in mg, and body surface area records may be missing (left out)".to_owned(),
        );
    }
    let Some(date) = date else {
        return Err("dosed in mg, with no date to find the body surface area".to_owned());
    };
    let Some(nearest) = bsa
        .iter()
        .filter(|b| b.date.is_some_and(|d| d <= date))
        .map(|b| b.date)
        .max()
    else {
        return Err("dosed in mg, with no body surface area recorded before it".to_owned());
    };
    let same_day: Vec<&BsaRecord> = bsa.iter().filter(|b| b.date == nearest).collect();
    if same_day.iter().any(|b| b.m2.is_none()) {
        return Err(
            "dosed in mg, and the body surface area recorded before it is unusable".to_owned(),
        );
    }
    let first = same_day[0];
    if same_day.iter().any(|b| b.m2 != first.m2) {
        return Err(
            "dosed in mg, and two different body surface areas were recorded that day".to_owned(),
        );
    }
    Ok(first)
}

/// The exposure fact and the dose lower bound.
pub(crate) fn assess(inputs: &DoseInputs) -> (Fact<bool>, AnthracyclineDose) {
    let mut at_least = 0.0;
    let mut counted: Vec<String> = Vec::new();
    let mut gaps: Vec<DoseGap> = Vec::new();
    let mut seen: Vec<(Agent, Option<NaiveDate>, u64, Option<&str>)> = Vec::new();
    let gap = |r: &DoseRecord, reason: String| DoseGap {
        source: r.reference.to_owned(),
        agent: r.agent,
        date: r.date,
        reason,
    };
    let administered = |agent: Agent, d: NaiveDate| {
        inputs.records.iter().any(|r| {
            r.agent == agent
                && matches!(r.entry, DoseEntry::Administration(_))
                && r.date
                    .is_some_and(|a| (a - d).num_days().abs() <= COVERED_WINDOW_DAYS)
        })
    };
    for r in &inputs.records {
        let dose = match &r.entry {
            DoseEntry::SeveralAgents => {
                gaps.push(gap(r, "names more than one anthracycline".to_owned()));
                continue;
            }
            DoseEntry::Statement => {
                if !r.date.is_some_and(|d| administered(r.agent, d)) {
                    gaps.push(gap(
                        r,
                        "recorded as a statement or order, without administered doses".to_owned(),
                    ));
                }
                continue;
            }
            DoseEntry::Administration(dose) => dose,
        };
        // The same agent, date and dose recorded twice is one administration.
        let key = (
            r.agent,
            r.date,
            dose.map_or(u64::MAX, |(x, _)| x.to_bits()),
            dose.and_then(|(_, u)| u),
        );
        if dose.is_some() && r.date.is_some() {
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
        }
        let factor = if r.agent == Agent::Epirubicin {
            inputs.epirubicin_factor
        } else {
            1.0
        };
        let mg_m2 = match dose {
            Some((x, Some(u))) if is_mg_per_m2(u) => *x,
            Some((x, Some("mg"))) => match bsa_for(&inputs.bsa, r.date, &inputs.bsa_missing) {
                Ok(b) => {
                    let m2 = b.m2.expect("usable");
                    if m2 <= 0.0 {
                        gaps.push(gap(r, "body surface area is not positive".to_owned()));
                        continue;
                    }
                    if !counted.iter().any(|c| c == b.reference) {
                        counted.push(b.reference.to_owned());
                    }
                    x / m2
                }
                Err(why) => {
                    gaps.push(gap(r, why));
                    continue;
                }
            },
            Some(_) => {
                gaps.push(gap(r, "dose not in mg/m2 or mg".to_owned()));
                continue;
            }
            None => {
                gaps.push(gap(r, "no dose recorded".to_owned()));
                continue;
            }
        };
        at_least += mg_m2 * factor;
        counted.push(r.reference.to_owned());
    }
    let date = inputs.records.iter().filter_map(|r| r.date).max();
    let epirubicin = inputs.records.iter().any(|r| r.agent == Agent::Epirubicin);
    let note = epirubicin.then(|| {
        format!(
            "epirubicin × {} as doxorubicin-equivalent",
            inputs.epirubicin_factor
        )
    });
    let exposure = if !inputs.records.is_empty() {
        Fact::known(
            true,
            Provenance {
                resources: inputs
                    .records
                    .iter()
                    .map(|r| r.reference.to_owned())
                    .collect(),
                read_from: ReadFrom::Code,
                date,
                note: None,
            },
        )
    } else if let Some(u) = &inputs.medication_missing {
        Fact::Unknown(u.clone())
    } else {
        absence(false)
    };
    let total = if let Some(u) = &inputs.medication_missing {
        Fact::Unknown(u.clone())
    } else if !gaps.is_empty() {
        Fact::Unknown(Unknown::Unreadable(match gaps.len() {
            1 => "the dose of one anthracycline record is not established".to_owned(),
            n => format!("the doses of {n} anthracycline records are not established"),
        }))
    } else if inputs.records.is_empty() {
        absence(0.0)
    } else {
        Fact::known(
            at_least,
            Provenance {
                resources: counted.clone(),
                read_from: ReadFrom::Derived,
                date,
                note: note.clone(),
            },
        )
    };
    (
        exposure,
        AnthracyclineDose {
            at_least_mg_m2: at_least,
            total_mg_m2: total,
            counted,
            without_dose: gaps,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Option<NaiveDate> {
        Some(s.parse().unwrap())
    }

    fn admin<'r>(r: &'r str, agent: Agent, date: &str, x: f64, unit: &'r str) -> DoseRecord<'r> {
        DoseRecord {
            reference: r,
            agent,
            date: d(date),
            entry: DoseEntry::Administration(Some((x, Some(unit)))),
        }
    }

    fn inputs<'r>(records: Vec<DoseRecord<'r>>, bsa: Vec<BsaRecord<'r>>) -> DoseInputs<'r> {
        DoseInputs {
            records,
            bsa,
            epirubicin_factor: 0.5,
            medication_missing: None,
            bsa_missing: None,
        }
    }

    #[test]
    fn duplicates_count_once_and_epirubicin_is_converted() {
        let (exposure, dose) = assess(&inputs(
            vec![
                admin(
                    "MedicationAdministration/a",
                    Agent::Doxorubicin,
                    "2025-01-01",
                    75.0,
                    "mg/m2",
                ),
                admin(
                    "MedicationAdministration/b",
                    Agent::Doxorubicin,
                    "2025-01-01",
                    75.0,
                    "mg/m2",
                ),
                admin(
                    "MedicationAdministration/c",
                    Agent::Epirubicin,
                    "2025-02-01",
                    100.0,
                    "mg/m2",
                ),
            ],
            vec![],
        ));
        assert_eq!(exposure.value(), Some(&true));
        assert_eq!(dose.at_least_mg_m2, 125.0);
        assert_eq!(dose.total_mg_m2.value(), Some(&125.0));
        assert!(dose.without_dose.is_empty());
    }

    #[test]
    fn mg_doses_use_the_nearest_bsa_before_them_and_never_an_older_one() {
        let bsa = vec![
            BsaRecord {
                reference: "Observation/bsa-old",
                date: d("2024-01-01"),
                m2: Some(2.0),
            },
            BsaRecord {
                reference: "Observation/bsa-new",
                date: d("2025-01-01"),
                m2: Some(1.5),
            },
        ];
        let (_, dose) = assess(&inputs(
            vec![admin(
                "MedicationAdministration/a",
                Agent::Doxorubicin,
                "2025-02-01",
                120.0,
                "mg",
            )],
            bsa.clone(),
        ));
        assert_eq!(dose.at_least_mg_m2, 80.0);
        assert!(dose.counted.contains(&"Observation/bsa-new".to_owned()));
        // The nearest one unusable: the dose is unknown, the older one is not used.
        let mut bad = bsa;
        bad[1].m2 = None;
        let (_, dose) = assess(&inputs(
            vec![
                admin(
                    "MedicationAdministration/a",
                    Agent::Doxorubicin,
                    "2025-02-01",
                    120.0,
                    "mg",
                ),
                admin(
                    "MedicationAdministration/b",
                    Agent::Doxorubicin,
                    "2025-03-01",
                    60.0,
                    "mg/m2",
                ),
            ],
            bad,
        ));
        assert_eq!(dose.at_least_mg_m2, 60.0);
        assert!(!dose.is_exact());
        assert_eq!(dose.without_dose.len(), 1);
        assert!(
            dose.without_dose[0].reason.contains("unusable"),
            "{:?}",
            dose.without_dose
        );
        // No BSA at all before it.
        let (_, dose) = assess(&inputs(
            vec![admin(
                "MedicationAdministration/a",
                Agent::Doxorubicin,
                "2025-02-01",
                120.0,
                "mg",
            )],
            vec![],
        ));
        assert_eq!(dose.at_least_mg_m2, 0.0);
        assert!(dose.without_dose[0].reason.contains("no body surface area"));
    }

    #[test]
    fn exposure_is_known_without_dose_and_unknown_when_records_are_missing() {
        let stmt = DoseRecord {
            reference: "MedicationStatement/s",
            agent: Agent::Doxorubicin,
            date: d("2015-01-01"),
            entry: DoseEntry::Statement,
        };
        let (exposure, dose) = assess(&inputs(vec![stmt], vec![]));
        assert_eq!(exposure.value(), Some(&true));
        assert!(!dose.is_exact());
        assert_eq!(dose.at_least_mg_m2, 0.0);
        // No record, nothing missing: none recorded.
        let (exposure, dose) = assess(&inputs(vec![], vec![]));
        assert_eq!(exposure.value(), Some(&false));
        assert_eq!(exposure.provenance().unwrap().read_from, ReadFrom::Absence);
        assert_eq!(dose.total_mg_m2.value(), Some(&0.0));
        // No record but medication data set aside: unknown, not none; the lower bound of
        // what is there still holds.
        let missing = Unknown::SetAside {
            resource_types: vec!["MedicationAdministration".to_owned()],
        };
        let mut i = inputs(
            vec![admin(
                "MedicationAdministration/a",
                Agent::Doxorubicin,
                "2025-02-01",
                500.0,
                "mg/m2",
            )],
            vec![],
        );
        i.medication_missing = Some(missing.clone());
        let (exposure, dose) = assess(&i);
        assert_eq!(exposure.value(), Some(&true));
        assert_eq!(dose.at_least_mg_m2, 500.0);
        assert_eq!(dose.total_mg_m2.unknown_reason(), Some(&missing));
        i.records.clear();
        let (exposure, _) = assess(&i);
        assert_eq!(exposure.unknown_reason(), Some(&missing));
    }

    #[test]
    fn a_statement_beside_administrations_of_the_same_agent_is_the_same_therapy() {
        let (_, dose) = assess(&inputs(
            vec![
                admin(
                    "MedicationAdministration/a",
                    Agent::Doxorubicin,
                    "2025-01-10",
                    75.0,
                    "mg/m2",
                ),
                DoseRecord {
                    reference: "MedicationStatement/s",
                    agent: Agent::Doxorubicin,
                    date: d("2025-01-01"),
                    entry: DoseEntry::Statement,
                },
            ],
            vec![],
        ));
        assert!(dose.is_exact(), "{:?}", dose.without_dose);
        assert_eq!(dose.at_least_mg_m2, 75.0);
    }
}
