//! Resectability: the RPS resectability assessment and critical-structure involvement.

use std::collections::BTreeMap;

use serde_json::Value;

use super::view::{Read, Reading};
use super::{ReaderSpec, TypeReads};
use crate::clinical::concepts::Concept;
use crate::clinical::extract::{
    Candidate, Extractor, OBSERVATION, ObservationKind, SCT, derived, latest, with_note,
};
use crate::clinical::picture::*;
use crate::knowledge::OBSERVATION_SYSTEM;

pub(crate) static SPEC: ReaderSpec = ReaderSpec {
    family: "resectability",
    reads: &[TypeReads {
        resource_type: "Observation",
        classifying: &["code", "bodySite"],
        values: &["valueBoolean", "valueCodeableConcept"],
    }],
};

/// The resectability facts.
pub(crate) struct ResectabilityFacts {
    pub(crate) critical_structures: Fact<Vec<CriticalStructure>>,
    pub(crate) resectability: Fact<Resectability>,
}

impl Extractor<'_, '_> {
    pub(crate) fn read_resectability(&self) -> ResectabilityFacts {
        let _reading = Reading::start(&SPEC);
        let mut critical: BTreeMap<CriticalStructure, Candidate<bool>> = BTreeMap::new();
        let mut critical_seen: Vec<String> = Vec::new();
        for rec in self.observations_of(ObservationKind::Critical) {
            let involved = rec
                .get("valueBoolean")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            critical_seen.push(rec.reference.clone());
            let body = rec.concept_all("bodySite");
            for s in self.critical_structures_of(&body) {
                let c = Candidate::new(rec, involved, ReadFrom::Code);
                let newer = critical.get(&s).is_none_or(|old| old.date <= c.date);
                if newer {
                    critical.insert(s, c);
                }
            }
        }
        let resectability_cands: Vec<Candidate<Resectability>> = self
            .observations_of(ObservationKind::Resectability)
            .filter_map(|rec| {
                let vc = rec.concept("valueCodeableConcept");
                let (_, r) = [
                    ("resectable", Resectability::Resectable),
                    ("borderline", Resectability::Borderline),
                    ("unresectable", Resectability::Unresectable),
                ]
                .into_iter()
                .find(|(c, _)| vc.has_code(OBSERVATION_SYSTEM, c))?;
                Some(Candidate::new(rec, r, ReadFrom::Code))
            })
            .collect();

        let critical_structures = if critical_seen.is_empty() {
            self.not_recorded(OBSERVATION)
        } else {
            let involved: Vec<CriticalStructure> = critical
                .iter()
                .filter(|(_, c)| c.value)
                .map(|(s, _)| *s)
                .collect();
            let resources = critical
                .values()
                .filter(|c| c.value)
                .map(|c| c.reference.clone())
                .collect::<Vec<_>>();
            let resources = if resources.is_empty() {
                critical_seen.clone()
            } else {
                resources
            };
            Fact::known(
                involved,
                Provenance {
                    resources,
                    read_from: ReadFrom::Code,
                    date: critical.values().filter_map(|c| c.date).max(),
                    note: None,
                },
            )
        };
        let resectability = match latest(resectability_cands) {
            Ok(Some(c)) => c.into_fact(),
            Err(u) => Fact::Unknown(u),
            Ok(None) => match critical_structures.value() {
                Some(list) if !list.is_empty() => with_note(
                    derived(
                        Resectability::Unresectable,
                        critical_structures
                            .provenance()
                            .map(|p| p.resources.clone())
                            .unwrap_or_default(),
                        None,
                    ),
                    Some("a critical structure is involved".to_owned()),
                ),
                _ => self.not_recorded(OBSERVATION),
            },
        };
        ResectabilityFacts {
            critical_structures,
            resectability,
        }
    }

    fn critical_structures_of(&self, body: &Concept) -> Vec<CriticalStructure> {
        use CriticalStructure as C;
        let mut out = Vec::new();
        for (system, code) in body.codings() {
            if system != SCT {
                continue;
            }
            let s = match code {
                "15825003" => C::Aorta,
                "42258001" => C::SuperiorMesentericVessels,
                "32764006" | "245288002" => C::PortaHepatisOrPortalVein,
                "40958000" | "62397004" => C::NerveRootOrPlexus,
                _ => continue,
            };
            if !out.contains(&s) {
                out.push(s);
            }
        }
        if out.is_empty() && self.vocab.by_text("critical-structure-site", body) {
            for (word, s) in [
                ("aort", C::Aorta),
                ("mesenteric", C::SuperiorMesentericVessels),
                ("portal", C::PortaHepatisOrPortalVein),
                ("porta hepatis", C::PortaHepatisOrPortalVein),
                ("nerve", C::NerveRootOrPlexus),
                ("plexus", C::NerveRootOrPlexus),
            ] {
                if body.text_contains(word) && !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out
    }
}
