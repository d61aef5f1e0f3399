//! Draft orders (`context.draftOrders` / `context.selections`), classified into the kinds the
//! order checks (catalogue §2.7) act on.

use serde::Serialize;

use super::picture::{Agent, Fact, ReadFrom};

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
    CoreBiopsy,
    /// Fine-needle aspiration (ORD-16).
    FineNeedleAspiration,
    /// Biopsy of unspecified technique.
    Biopsy,
    Imaging(ImagingKind),
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
