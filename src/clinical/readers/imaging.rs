//! Imaging: the latest CT chest, CT abdomen/pelvis, bone scan or FDG-PET, from
//! DiagnosticReports, ImagingStudies and completed imaging Procedures.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde_json::Value;

use super::view::{Read, Reading};
use super::{ReaderSpec, TypeReads};
use crate::clinical::concepts::Concept;
use crate::clinical::draft_orders::ImagingKind;
use crate::clinical::extract::{Extractor, IMAGING, with_note};
use crate::clinical::picture::*;

pub(crate) static SPEC: ReaderSpec = ReaderSpec {
    family: "imaging",
    reads: &[
        TypeReads {
            resource_type: "DiagnosticReport",
            classifying: &["code"],
            values: &[],
        },
        TypeReads {
            resource_type: "ImagingStudy",
            classifying: &["procedureCode", "description"],
            values: &[],
        },
        TypeReads {
            resource_type: "Procedure",
            classifying: &["code"],
            values: &["status"],
        },
    ],
};

/// The imaging facts.
pub(crate) struct ImagingFacts {
    pub(crate) last_ct_chest: Fact<Option<NaiveDate>>,
    pub(crate) last_ct_abdomen_pelvis: Fact<Option<NaiveDate>>,
    pub(crate) last_bone_or_pet: Fact<Option<NaiveDate>>,
    pub(crate) last_imaging: Fact<Option<NaiveDate>>,
}

/// Dates of the imaging studies found, per kind.
struct ImagingDates {
    /// (kind, date, reference, read_from)
    studies: Vec<(ImagingKind, NaiveDate, String, ReadFrom)>,
}

impl ImagingDates {
    /// The latest study of any of `kinds` (closed world).
    fn fact(&self, kinds: &[ImagingKind], x: &Extractor) -> Fact<Option<NaiveDate>> {
        let best = self
            .studies
            .iter()
            .filter(|(k, ..)| kinds.contains(k))
            .max_by_key(|(_, d, ..)| *d);
        match best {
            Some((_, d, r, rf)) => with_note(
                Fact::known(
                    Some(*d),
                    Provenance {
                        resources: vec![r.clone()],
                        read_from: *rf,
                        date: Some(*d),
                        note: None,
                    },
                ),
                x.incomplete_note(IMAGING),
            ),
            None => x.none_recorded(None, IMAGING),
        }
    }
}

impl Extractor<'_, '_> {
    pub(crate) fn read_imaging(&self) -> ImagingFacts {
        let _reading = Reading::start(&SPEC);
        let imaging = self.imaging_dates();
        ImagingFacts {
            last_ct_chest: imaging.fact(
                &[ImagingKind::CtChest, ImagingKind::CtChestAbdomenPelvis],
                self,
            ),
            last_ct_abdomen_pelvis: imaging.fact(
                &[
                    ImagingKind::CtAbdomenPelvis,
                    ImagingKind::CtChestAbdomenPelvis,
                ],
                self,
            ),
            last_bone_or_pet: imaging.fact(&[ImagingKind::BoneScan, ImagingKind::FdgPet], self),
            last_imaging: imaging.fact(
                &[
                    ImagingKind::CtChest,
                    ImagingKind::CtAbdomenPelvis,
                    ImagingKind::CtChestAbdomenPelvis,
                    ImagingKind::BoneScan,
                    ImagingKind::FdgPet,
                ],
                self,
            ),
        }
    }

    fn imaging_kind(&self, c: &Concept) -> Option<(ImagingKind, ReadFrom)> {
        self.vocab.first(
            &[
                (
                    "imaging-ct-chest-abdomen-pelvis",
                    ImagingKind::CtChestAbdomenPelvis,
                ),
                ("imaging-ct-chest", ImagingKind::CtChest),
                ("imaging-ct-abdomen-pelvis", ImagingKind::CtAbdomenPelvis),
                ("imaging-bone-scan", ImagingKind::BoneScan),
                ("imaging-fdg-pet", ImagingKind::FdgPet),
            ],
            c,
        )
    }

    fn imaging_dates(&self) -> ImagingDates {
        let mut studies = Vec::new();
        let mut memo: HashMap<String, Option<(ImagingKind, ReadFrom)>> = HashMap::new();
        for rec in self.imaging.iter().chain(&self.procedures) {
            let mut c = Concept::default();
            match rec.resource_type() {
                "ImagingStudy" => {
                    for pc in rec.array("procedureCode") {
                        c.add(pc);
                    }
                    if let Some(d) = rec.str("description") {
                        c.add_text(d);
                    }
                }
                _ => c.add(rec.get("code").unwrap_or(&Value::Null)),
            }
            let kind = *memo
                .entry(c.signature())
                .or_insert_with(|| self.imaging_kind(&c));
            // What the record is comes first: only then are its values read.
            let Some((k, rf)) = kind else { continue };
            if rec.resource_type() == "Procedure" && rec.str("status") != Some("completed") {
                continue;
            }
            let Some(date) = rec.date() else { continue };
            studies.push((k, date, rec.reference.clone(), rf));
        }
        ImagingDates { studies }
    }
}
