//! Radiotherapy: courses from radiotherapy Procedures, their timing relative to the
//! resections (pre-, intra-, post-operative or without resection) and total dose.

use super::view::{Read, Reading, Record};
use super::{ReaderSpec, TypeReads};
use crate::clinical::concepts::Concept;
use crate::clinical::extract::{Extractor, MCODE, PROCEDURE, with_note};
use crate::clinical::json::{self, quantity, str_at};
use crate::clinical::picture::*;

pub(crate) static SPEC: ReaderSpec = ReaderSpec {
    family: "radiotherapy",
    reads: &[TypeReads {
        resource_type: "Procedure",
        classifying: &["code"],
        values: &["status", "extension"],
    }],
};

const DOSE_EXTENSION: &str = "mcode-radiotherapy-dose-delivered-to-volume";
/// Radiotherapy within this many days of a resection is read as pre- or post-operative to
/// it; further away it is unrelated to surgery. An interpretation constant of the reader,
/// not a clinical threshold of the catalogue.
const RT_RESECTION_WINDOW_DAYS: i64 = 180;

impl Extractor<'_, '_> {
    pub(crate) fn radiotherapy(
        &self,
        recs: &[&Record],
        resections: &[Resection],
    ) -> Fact<Vec<RadiotherapyCourse>> {
        let _reading = Reading::start(&SPEC);
        let mut courses = Vec::new();
        let mut undated = None;
        for rec in recs {
            let Some(date) = rec.date() else {
                undated = Some(rec.reference.clone());
                continue;
            };
            let code = rec.concept("code");
            let read_from = if self.vocab.by_code("radiotherapy-procedure", &code) {
                ReadFrom::Code
            } else {
                ReadFrom::Text
            };
            let mut ext = Concept::default();
            collect_extension_concepts(rec.array("extension"), &mut ext);
            let iort =
                self.vocab.matches("iort", &ext).is_some() || self.vocab.by_text("iort", &code);
            let local: Vec<&Resection> = resections
                .iter()
                .filter(|r| !matches!(r.target, ResectionTarget::Metastasis { .. }))
                .collect();
            let nearest = local
                .iter()
                .min_by_key(|r| (r.date - date).num_days().abs())
                .filter(|r| (r.date - date).num_days().abs() <= RT_RESECTION_WINDOW_DAYS);
            let (timing, relative_to) = if iort {
                (
                    RtTiming::IntraOperative,
                    local
                        .iter()
                        .find(|r| r.date == date)
                        .map(|r| r.procedure.clone()),
                )
            } else {
                match nearest {
                    Some(r) if r.date > date => (RtTiming::PreOperative, Some(r.procedure.clone())),
                    Some(r) => (RtTiming::PostOperative, Some(r.procedure.clone())),
                    None => (RtTiming::WithoutResection, None),
                }
            };
            let total_dose_gy = match total_dose_gy(*rec) {
                Some(gy) => Fact::known(
                    gy,
                    Provenance {
                        resources: vec![rec.reference.clone()],
                        read_from: ReadFrom::Code,
                        date: Some(date),
                        note: None,
                    },
                ),
                None => Fact::Unknown(Unknown::NotRecorded),
            };
            courses.push(RadiotherapyCourse {
                procedure: rec.reference.clone(),
                date,
                timing,
                relative_to,
                total_dose_gy,
                read_from,
            });
        }
        courses.sort_by_key(|c| c.date);
        if courses.is_empty() {
            return match undated {
                Some(r) => Fact::Unknown(Unknown::Unreadable(format!("{r} has no date"))),
                None => self.none_recorded(Vec::new(), PROCEDURE),
            };
        }
        let resources = courses.iter().map(|c| c.procedure.clone()).collect();
        let date = courses.last().map(|c| c.date);
        with_note(
            Fact::known(
                courses,
                Provenance {
                    resources,
                    read_from: ReadFrom::Code,
                    date,
                    note: None,
                },
            ),
            self.incomplete_note(PROCEDURE),
        )
    }
}

/// Every CodeableConcept inside the extensions (nested), for IORT.
fn collect_extension_concepts<'v>(
    extensions: impl Iterator<Item = &'v serde_json::Value>,
    out: &mut Concept<'v>,
) {
    for e in extensions {
        if let Some(c) = e.get("valueCodeableConcept") {
            out.add(c);
        }
        collect_extension_concepts(json::array(e, "extension"), out);
    }
}

/// Total dose delivered (Gy) from mCODE dose-delivered-to-volume (cGy unless Gy stated);
/// the largest over volumes.
pub(crate) fn total_dose_gy<'a>(v: &impl Read<'a>) -> Option<f64> {
    v.array("extension")
        .filter(|e| {
            str_at(e, "url").is_some_and(|u| {
                u.ends_with(DOSE_EXTENSION) || u == format!("{MCODE}{DOSE_EXTENSION}")
            })
        })
        .flat_map(|e| json::array(e, "extension"))
        .filter(|e| str_at(e, "url") == Some("totalDoseDelivered"))
        .filter_map(|e| e.get("valueQuantity").and_then(quantity))
        .map(|(x, unit)| match unit {
            Some("Gy") => x,
            _ => x / 100.0,
        })
        .reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dose_units() {
        let gy = json!({"extension": [{"url": format!("{MCODE}{DOSE_EXTENSION}"), "extension": [
            {"url": "totalDoseDelivered", "valueQuantity": {"value": 50.4, "code": "Gy"}}]}]});
        assert_eq!(total_dose_gy(&&gy), Some(50.4));
        let cgy = json!({"extension": [{"url": format!("{MCODE}{DOSE_EXTENSION}"), "extension": [
            {"url": "totalDoseDelivered", "valueQuantity": {"value": 4500, "code": "cGy"}}]}]});
        assert_eq!(total_dose_gy(&&cgy), Some(45.0));
    }
}
