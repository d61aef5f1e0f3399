//! Draft orders (`context.draftOrders` / `context.selections`), classified into the kinds the
//! order checks (catalogue §2.7) act on.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::concepts::{self, Vocab};
use super::json;
use super::picture::{
    Agent, DiseaseState, Fact, MetastasisSite, Picture, Provenance, ReadFrom, Unknown,
};
use super::readers::view::{Defects, Read, Record};
use super::readers::{agents_in, is_mg_per_m2, medication_concept};
use crate::fhir::InvalidUse;
use crate::knowledge::{Parameters, Terminology};

/// Imaging an order asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImagingKind {
    CtChest,
    CtAbdomenPelvis,
    CtChestAbdomenPelvis,
    BoneScan,
    FdgPet,
}

/// What a draft order is, as far as the order checks care. One order can be several kinds
/// (a resection of a recurrence with HIPEC; a combination regimen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// Resection of a local recurrence (ORD-01).
    RecurrenceResection,
    /// Curative-intent resection of the primary (ORD-18).
    PrimaryResection,
    /// Resection whose target the order does not say.
    Resection,
    Debulking,
    Hipec,
    /// Radiotherapy ordered as pre-operative / neoadjuvant (ORD-05).
    PreoperativeRt,
    /// Radiotherapy ordered as post-operative / adjuvant (ORD-04).
    PostoperativeRt,
    /// Radiotherapy without a stated timing.
    Radiotherapy,
    /// Systemic therapy ordered as post-operative / adjuvant (ORD-04).
    PostoperativeSystemic,
    /// Resection of a metastasis (ORD-06).
    Metastasectomy,
    /// Resection of a lung metastasis (ORD-07, ORD-08, MET-05).
    PulmonaryMetastasectomy,
    /// Local ablation of a lesion: RFA, microwave, SBRT (MET-04 alternative; WORK-06).
    Ablation,
    /// Ablation of a lung lesion (MET-05).
    PulmonaryAblation,
    CoreBiopsy,
    /// Fine-needle aspiration (ORD-16).
    FineNeedleAspiration,
    /// Biopsy of unspecified technique.
    Biopsy,
    Imaging(ImagingKind),
    /// Imaging whose stated reason is equivocal lesions or response assessment (ORD-17: TMC
    /// 10, IVB).
    ImagingForEquivocalOrResponse,
    Agent(Agent),
}

/// One classified draft order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DraftOrder {
    /// Relative reference, e.g. "ServiceRequest/abc" (the `resourceId` of a delete action).
    pub reference: String,
    /// "ServiceRequest" or "MedicationRequest".
    pub resource_type: String,
    /// Empty when the order is none of the kinds the checks act on.
    pub kinds: Vec<OrderKind>,
    /// Whether the kinds were recognised from codes or only from text.
    pub read_from: ReadFrom,
    /// The order's own wording (code text / display) for the card.
    pub display: String,
    /// Planned anthracycline dose of this order, doxorubicin-equivalent mg/m² (ORD-14);
    /// not applicable for orders without doxorubicin/epirubicin.
    pub planned_anthracycline_mg_m2: Fact<f64>,
    /// `reasonReference` → a local recurrence, or retroperitoneal bodySite while a local
    /// recurrence is active.
    pub targets_recurrence: bool,
    /// `reasonReference` → a metastasis, or bodySite lung/liver.
    pub targets_metastasis: bool,
    /// Order `bodySite` is the retroperitoneum.
    pub body_site_retroperitoneum: bool,
    /// Conditions the order's `reasonReference` names ("Condition/…").
    pub reason_conditions: Vec<String>,
    /// The order is about a retroperitoneal mass: bodySite retroperitoneum, or
    /// `reasonReference` → a retroperitoneal Condition (an undiagnosed mass or the RPS
    /// diagnosis) — ORD-16.
    pub targets_retroperitoneal_mass: bool,
}

impl DraftOrder {
    pub fn is(&self, kind: OrderKind) -> bool {
        self.kinds.contains(&kind)
    }

    pub fn agents(&self) -> impl Iterator<Item = Agent> + '_ {
        self.kinds.iter().filter_map(|k| match k {
            OrderKind::Agent(a) => Some(*a),
            _ => None,
        })
    }
}

/// Classifies one draft order (`ServiceRequest` or `MedicationRequest`) for the order
/// checks. `medications` are the `Medication` resources the order may reference (from the
/// draft-orders bundle or prefetch); contained ones are read from the order itself.
pub fn classify_draft_order(
    order: &Value,
    medications: &[&Value],
    picture: &Picture,
    terminology: &Terminology,
    params: &Parameters,
) -> DraftOrder {
    classify(&order, medications, picture, terminology, params)
}

/// The elements of a draft order the checks need intact (§4.1 "invalid draft orders"):
/// besides the modifiers and the root, the product, dose, planned cycles, site, reason,
/// code and order detail.
const ORDER_CHECK_ELEMENTS: &[&str] = &[
    "medicationCodeableConcept",
    "medicationReference",
    "contained",
    "dosageInstruction",
    "dispenseRequest",
    "bodySite",
    "reasonReference",
    "code",
    "orderDetail",
];

/// Other elements the classification reads (wording of the intent): a defect there leaves
/// that wording out.
const ORDER_OTHER_READS: &[&str] = &["courseOfTherapyType", "category", "reasonCode", "note"];

/// Whether a draft order that failed validation with defects at `paths` can still be
/// checked: nothing the checks need is defective.
pub(crate) fn draft_order_checkable(paths: &[String]) -> bool {
    let d = Defects::new(paths);
    !d.unusable() && !d.elements().any(|e| ORDER_CHECK_ELEMENTS.contains(&e))
}

/// How a checkable draft order with defects at `paths` is read (DATA-02).
pub(crate) fn draft_order_use(paths: &[String]) -> InvalidUse {
    if !draft_order_checkable(paths) {
        InvalidUse::LeftOut
    } else if Defects::new(paths)
        .elements()
        .any(|e| ORDER_OTHER_READS.contains(&e))
    {
        InvalidUse::ReadInPart
    } else {
        InvalidUse::Used
    }
}

/// [`classify_draft_order`] for a draft order that failed validation with defects at
/// `defects` (none: a valid order): every element is read through a view that yields
/// nothing for a defective one.
pub(crate) fn classify_draft_order_in_part(
    order: &Value,
    defects: &[String],
    medications: &[&Value],
    picture: &Picture,
    terminology: &Terminology,
    params: &Parameters,
) -> DraftOrder {
    if defects.is_empty() {
        return classify_draft_order(order, medications, picture, terminology, params);
    }
    let view = Record::with_defects(order, json::reference_of(order), Defects::new(defects));
    classify(&view, medications, picture, terminology, params)
}

fn classify<'v>(
    order: &impl Read<'v>,
    medications: &[&'v Value],
    picture: &Picture,
    terminology: &Terminology,
    params: &Parameters,
) -> DraftOrder {
    let v = Vocab::new(terminology);
    let resource_type = order.str("resourceType").unwrap_or("").to_owned();
    let reference = format!("{resource_type}/{}", order.str("id").unwrap_or("?"));
    let reasons = order.references("reasonReference");
    let body = order.concept_all("bodySite");
    let mut kinds: Vec<OrderKind> = Vec::new();
    let mut text_only = false;
    let mut push = |kinds: &mut Vec<OrderKind>, k: OrderKind, rf: ReadFrom| {
        if rf == ReadFrom::Text {
            text_only = true;
        }
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    };

    let recurrence_sources: Vec<&str> = picture
        .recurrence_episodes
        .iter()
        .map(|e| e.source.as_str())
        .collect();
    let reason_recurrence = reasons.iter().any(|r| recurrence_sources.contains(r));
    let reason_metastasis = picture
        .metastases
        .iter()
        .find(|m| reasons.contains(&m.source.as_str()));
    let reason_diagnosis = picture
        .diagnosis
        .as_ref()
        .is_some_and(|d| reasons.contains(&d.condition.as_str()));
    let recurrence_active = picture.current_recurrence.is_some();

    // The wording that may say what the order is: code, orderDetail, and for medications
    // the places where a regimen's intent is written.
    let code = order.concept("code");
    let mut all = order.concept("code");
    all.add(order.get("orderDetail").unwrap_or(&Value::Null));
    let mut intent = order.concept_all("orderDetail");
    for key in ["courseOfTherapyType", "category", "reasonCode"] {
        intent.add(order.get(key).unwrap_or(&Value::Null));
    }
    for n in order.array("note") {
        if let Some(t) = json::str_at(n, "text") {
            intent.add_text(t);
            all.add_text(t);
        }
    }
    for d in order.array("dosageInstruction") {
        if let Some(t) = json::str_at(d, "text") {
            intent.add_text(t);
        }
    }
    if let Some(c) = order.get("code") {
        intent.add(c);
    }
    // Neo-adjuvant first: "adjuvant" is a substring of it.
    let timing = if let Some(m) = v.matches("neoadjuvant", &intent) {
        Some((true, concepts::read_from(m)))
    } else {
        v.matches("adjuvant", &intent)
            .map(|m| (false, concepts::read_from(m)))
    };

    let body_retro = v.matches("site-retroperitoneum", &body).is_some()
        || v.by_text("site-retroperitoneum", &code);
    let body_lung = v.by_code("site-lung", &body);
    let body_liver = v.by_code("site-liver", &body);

    if resource_type == "ServiceRequest" {
        // Biopsy first: "excision biopsy" is a biopsy, not a resection.
        if let Some(m) = v.matches("biopsy-fna", &all) {
            push(
                &mut kinds,
                OrderKind::FineNeedleAspiration,
                concepts::read_from(m),
            );
        } else if v.by_code("biopsy-core", &all)
            || (v.by_text("biopsy-core", &all) && v.matches("biopsy-any", &all).is_some())
        {
            let rf = if v.by_code("biopsy-core", &all) {
                ReadFrom::Code
            } else {
                ReadFrom::Text
            };
            push(&mut kinds, OrderKind::CoreBiopsy, rf);
        } else if let Some(m) = v.matches("biopsy-any", &all) {
            push(&mut kinds, OrderKind::Biopsy, concepts::read_from(m));
        } else if let Some(m) = v.matches("radiotherapy-procedure", &code) {
            let k = match timing {
                Some((true, _)) => OrderKind::PreoperativeRt,
                Some((false, _)) => OrderKind::PostoperativeRt,
                None => OrderKind::Radiotherapy,
            };
            push(&mut kinds, k, concepts::read_from(m));
        } else {
            if let Some(m) = v.matches("pulmonary-metastasectomy", &all) {
                push(
                    &mut kinds,
                    OrderKind::PulmonaryMetastasectomy,
                    concepts::read_from(m),
                );
                push(
                    &mut kinds,
                    OrderKind::Metastasectomy,
                    concepts::read_from(m),
                );
            }
            if let Some(m) = v.matches("metastasectomy", &all) {
                push(
                    &mut kinds,
                    OrderKind::Metastasectomy,
                    concepts::read_from(m),
                );
            }
            if let Some(m) = v.matches("resection-procedure", &code) {
                let rf = concepts::read_from(m);
                if let Some(met) = reason_metastasis {
                    push(&mut kinds, OrderKind::Metastasectomy, rf);
                    if met.site == Some(MetastasisSite::Lung) {
                        push(&mut kinds, OrderKind::PulmonaryMetastasectomy, rf);
                    }
                } else if reason_recurrence
                    || ((reason_diagnosis || body_retro) && recurrence_active)
                {
                    push(&mut kinds, OrderKind::RecurrenceResection, rf);
                } else if body_lung {
                    push(&mut kinds, OrderKind::Metastasectomy, rf);
                    push(&mut kinds, OrderKind::PulmonaryMetastasectomy, rf);
                } else if body_liver {
                    push(&mut kinds, OrderKind::Metastasectomy, rf);
                } else if (reason_diagnosis || body_retro)
                    && picture.disease_state.value() == Some(&DiseaseState::PrimaryUntreated)
                {
                    push(&mut kinds, OrderKind::PrimaryResection, rf);
                } else if !kinds.contains(&OrderKind::Metastasectomy) {
                    push(&mut kinds, OrderKind::Resection, rf);
                }
            }
        }
        if let Some(m) = v.matches("debulking", &all) {
            push(&mut kinds, OrderKind::Debulking, concepts::read_from(m));
        }
        if let Some(m) = v.matches("hipec", &all) {
            push(&mut kinds, OrderKind::Hipec, concepts::read_from(m));
        }
        if let Some(m) = v.matches("ablation", &all) {
            let rf = concepts::read_from(m);
            push(&mut kinds, OrderKind::Ablation, rf);
            if body_lung || reason_metastasis.is_some_and(|m| m.site == Some(MetastasisSite::Lung))
            {
                push(&mut kinds, OrderKind::PulmonaryAblation, rf);
            }
        }
        if let Some((k, rf)) = v.first(
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
            &code,
        ) {
            push(&mut kinds, OrderKind::Imaging(k), rf);
            // The reason the order gives (reasonCode, the display of a reasonReference).
            let mut reason = order.concept_all("reasonCode");
            for r in order.array("reasonReference") {
                if let Some(t) = json::str_at(r, "display") {
                    reason.add_text(t);
                }
            }
            if let Some(m) = v.matches("imaging-reason-equivocal-or-response", &reason) {
                push(
                    &mut kinds,
                    OrderKind::ImagingForEquivocalOrResponse,
                    concepts::read_from(m),
                );
            }
        }
        // A systemic-therapy service order marked adjuvant.
        let systemic_words = all.text_contains("chemotherapy") || all.text_contains("systemic");
        if systemic_words && let Some((false, rf)) = timing {
            push(&mut kinds, OrderKind::PostoperativeSystemic, rf);
        }
    }

    let mut agents: Vec<Agent> = Vec::new();
    if resource_type == "MedicationRequest" {
        let meds: BTreeMap<String, &Value> = medications
            .iter()
            .filter_map(|m| Some((format!("Medication/{}", json::str_at(m, "id")?), *m)))
            .collect();
        let c = medication_concept(order, &meds);
        for (a, rf) in agents_in(&v, &c) {
            agents.push(a);
            push(&mut kinds, OrderKind::Agent(a), rf);
        }
        if !agents.is_empty()
            && let Some((false, rf)) = timing
        {
            push(&mut kinds, OrderKind::PostoperativeSystemic, rf);
        }
    }

    let planned_anthracycline_mg_m2 =
        planned_anthracycline(order, &reference, &agents, picture, params);

    let display = display_of(order).unwrap_or_else(|| reference.clone());
    DraftOrder {
        reference,
        resource_type,
        read_from: if text_only {
            ReadFrom::Text
        } else {
            ReadFrom::Code
        },
        display,
        planned_anthracycline_mg_m2,
        targets_recurrence: reason_recurrence || (body_retro && recurrence_active),
        targets_metastasis: reason_metastasis.is_some() || body_lung || body_liver,
        body_site_retroperitoneum: body_retro,
        targets_retroperitoneal_mass: body_retro
            || reason_diagnosis
            || reasons.iter().any(|r| {
                picture
                    .undiagnosed_retroperitoneal_masses
                    .iter()
                    .any(|m| m == r)
            }),
        reason_conditions: reasons.iter().map(|r| (*r).to_owned()).collect(),
        kinds,
    }
}

/// Planned doxorubicin-equivalent dose of an anthracycline order: the dose (mg/m², or mg
/// over the latest body surface area) × planned doses (`numberOfRepeatsAllowed` + 1 when
/// given, else one dose).
fn planned_anthracycline<'v>(
    order: &impl Read<'v>,
    reference: &str,
    agents: &[Agent],
    picture: &Picture,
    params: &Parameters,
) -> Fact<f64> {
    let anth: Vec<Agent> = agents
        .iter()
        .copied()
        .filter(|a| a.is_anthracycline())
        .collect();
    let agent = match anth.as_slice() {
        [] => return Fact::Unknown(Unknown::NotApplicable),
        [a] => *a,
        _ => {
            return Fact::Unknown(Unknown::Unreadable(
                "the order names more than one anthracycline".to_owned(),
            ));
        }
    };
    let dose = order
        .array("dosageInstruction")
        .flat_map(|d| json::array(d, "doseAndRate"))
        .find_map(|dr| dr.get("doseQuantity").and_then(json::quantity));
    let mut resources = vec![reference.to_owned()];
    let mut notes = Vec::new();
    let per_dose = match dose {
        Some((x, Some(u))) if is_mg_per_m2(u) => x,
        Some((x, Some("mg"))) => match &picture.body_surface_area_m2 {
            Fact::Known { value, provenance } if *value > 0.0 => {
                resources.extend(provenance.resources.iter().cloned());
                notes.push(format!("{x} mg over {value} m²"));
                x / value
            }
            _ => return Fact::Unknown(Unknown::DependsOn(vec!["body_surface_area"])),
        },
        Some(_) => {
            return Fact::Unknown(Unknown::Unreadable(
                "planned dose is not in mg/m2 or mg".to_owned(),
            ));
        }
        None => return Fact::Unknown(Unknown::NotRecorded),
    };
    let doses = order
        .get("dispenseRequest")
        .and_then(|d| d.get("numberOfRepeatsAllowed"))
        .and_then(Value::as_u64)
        .map_or(1, |n| n + 1);
    if doses > 1 {
        notes.push(format!("{doses} planned doses"));
    }
    let factor = if agent == Agent::Epirubicin {
        notes.push(format!(
            "epirubicin × {} as doxorubicin-equivalent",
            params.epirubicin_to_doxorubicin_factor
        ));
        params.epirubicin_to_doxorubicin_factor
    } else {
        1.0
    };
    Fact::known(
        per_dose * doses as f64 * factor,
        Provenance {
            resources,
            read_from: ReadFrom::Derived,
            date: None,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        },
    )
}

fn display_of<'v>(order: &impl Read<'v>) -> Option<String> {
    let c = order
        .get("code")
        .or_else(|| order.get("medicationCodeableConcept"))?;
    json::str_at(c, "text")
        .or_else(|| json::array(c, "coding").find_map(|x| json::str_at(x, "display")))
        .map(str::to_owned)
}
