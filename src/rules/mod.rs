//! The catalogue's rules (docs/clinical-spec.md §2): each a small typed function over the clinical
//! picture (and, for order checks, the draft orders), returning findings.
//!
//! Entry point: [`evaluate`]. Rules read the picture by reference; nothing large is cloned.
//! An unknown fact is never read as false: a rule that needs it stays silent and, on
//! patient-view, the fact is collected into the one DATA-01 finding with what it held back.

pub(crate) mod coherence;
pub(crate) mod finding;
pub(crate) mod local_recurrence;
pub(crate) mod metastatic;
pub(crate) mod order_checks;
pub(crate) mod referral;
pub mod registry;
pub(crate) mod scope;
pub(crate) mod surveillance;
pub(crate) mod systemic;
pub(crate) mod systemic_response;
pub(crate) mod templates;

pub use templates::ORDER_TEMPLATES;

use std::collections::BTreeSet;

use chrono::NaiveDate;

use crate::clinical::{
    DiseaseState, DraftOrder, Fact, FactUse, Origin, Picture, Provenance, UnknownFact, origin_of,
};
use crate::fhir::{InvalidResource, UnavailableData};
use crate::knowledge::Hook;
use crate::knowledge::Parameters;

pub use finding::{Finding, RuleId, Suggestion};
use registry::Evaluation;

/// Everything the rules read for one request.
#[derive(Debug, Clone, Copy)]
pub struct RuleInput<'a> {
    pub picture: &'a Picture,
    pub params: &'a Parameters,
    pub hook: Hook,
    /// The orders to check: order-select → the selections, order-sign → all draft orders.
    pub draft_orders: &'a [DraftOrder],
    /// Prefetch / fetched resources set aside by FHIR validation, and draft orders checked
    /// in part, each with how it was used (DATA-02).
    pub invalid_resources: &'a [InvalidResource],
    /// References of draft orders that failed validation: their checks cannot run.
    pub invalid_draft_orders: &'a [String],
    /// Data of another patient that was sent and not used (DATA-03).
    pub other_patient: &'a OtherPatientData,
    /// Prefetch keys that could not be had (DATA-04).
    pub unavailable: &'a [UnavailableData],
}

/// What was left out because it belonged to another patient than `context.patientId`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtherPatientData {
    /// Resource types of the distrusted prefetch keys (their facts are unknown).
    pub resource_types: BTreeSet<String>,
    /// Draft orders for another patient, not checked.
    pub draft_orders: usize,
}

impl OtherPatientData {
    pub fn is_empty(&self) -> bool {
        self.resource_types.is_empty() && self.draft_orders == 0
    }
}

/// Every rule id, in catalogue order (§2.1 … §2.7), from the registry.
pub const IMPLEMENTED_RULES: &[RuleId] = RuleId::ALL;

/// Runs every rule that applies to the hook and returns the findings in catalogue order (the
/// card builder sorts them by indicator).
pub fn evaluate(input: &RuleInput) -> Vec<Finding> {
    // Favourable advice relies only on facts not read from records that failed validation.
    let cautious = input.picture.cautious();
    let mut ctx = Ctx::new(input.picture, input.params);
    ctx.cautious = cautious.as_ref();
    let mut findings = Vec::new();
    // DATA-03 comes first and in every branch: with another patient's data withheld the
    // diagnosis itself may be unknown, and the warning must not be silenced with it.
    findings.extend(scope::data_03(input));
    let data02 = scope::data_02(input);
    let data04 = scope::data_04(input);

    // SCOPE-02: no RPS diagnosis. Silent, except for an FNA of an undiagnosed
    // retroperitoneal mass (ORD-16) and for data quality: the missing diagnosis may be in
    // the resources that were set aside.
    if input.picture.diagnosis.is_none() {
        findings.extend(data02);
        if input.hook.has_draft_orders() {
            for order in input.draft_orders {
                findings.extend(order_checks::ord_16(&ctx, order));
            }
            order_checks::ord_14_without_diagnosis(&ctx, input, &mut findings);
        }
        return findings;
    }
    // SCOPE-01: out-of-scope histology: one info finding, no other RPS rule.
    if let Some(f) = scope::scope_01(&ctx) {
        findings.push(f);
        findings.extend(data02);
        findings.extend(data04);
        return findings;
    }

    let mut gaps = Gaps::default();
    let mut rest = Vec::new();
    if input.hook == Hook::PatientView {
        // Unknown histology keeps the patient in scope (the diagnosis is RPS), but scope
        // is then unconfirmed: say so.
        gaps.need(
            "histology",
            &input.picture.histology,
            "whether the RPS recommendations apply (SCOPE-01) is unconfirmed",
        );
    }
    // Every other rule, in registry (= catalogue) order, by the input its function needs.
    let on_orders = input.hook.has_draft_orders();
    let orders = input.draft_orders;
    for evaluation in registry::REGISTRY.iter().flat_map(|e| e.evaluations) {
        match *evaluation {
            Evaluation::Chart(f) if !on_orders => rest.extend(f(&ctx, &mut gaps)),
            Evaluation::Picture(f) if !on_orders => rest.extend(f(&ctx)),
            Evaluation::ChartGroup(f) if !on_orders => f(&ctx, &mut gaps, &mut rest),
            Evaluation::Order(f) if on_orders => {
                for o in orders {
                    rest.extend(f(&ctx, o, orders));
                }
            }
            Evaluation::Orders(f) if on_orders => f(&ctx, orders, &mut rest),
            _ => {}
        }
    }
    if input.hook == Hook::PatientView {
        findings.extend(scope::data_01(gaps));
    }
    findings.extend(data02);
    findings.extend(data04);
    findings.extend(rest);
    findings
}

/// The picture and parameters with the evaluation date, shared by every rule.
pub(crate) struct Ctx<'a> {
    /// The clinical picture the rules read.
    pub picture: &'a Picture,
    pub params: &'a Parameters,
    /// The evaluation date (`as_of`); every "within N days / months" counts back from it.
    pub today: NaiveDate,
    /// The picture without the facts read from records that failed validation, when there
    /// are such facts ([`Picture::cautious`]): favourable or permissive advice (LR-03, LR-04,
    /// MET-02 with every criterion met, MET-03, MET-11) must also hold on it (§4.1).
    pub cautious: Option<&'a Picture>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(picture: &'a Picture, params: &'a Parameters) -> Self {
        Self {
            picture,
            params,
            today: picture.as_of.date_naive(),
            cautious: None,
        }
    }

    /// The context favourable advice is checked on: the cautious picture, when one exists.
    pub(crate) fn cautious(&self) -> Option<Ctx<'a>> {
        self.cautious.map(|p| Ctx::new(p, self.params))
    }

    /// The disease state when known.
    pub(crate) fn state(&self) -> Option<DiseaseState> {
        self.picture.disease_state.value().copied()
    }

    /// Local recurrence present (alone or with distant disease); `None` when unknown.
    pub(crate) fn local_recurrence(&self) -> Option<bool> {
        self.state().map(DiseaseState::has_local_recurrence)
    }

    /// Distant metastatic disease present; `None` when unknown.
    pub(crate) fn metastatic(&self) -> Option<bool> {
        self.state().map(DiseaseState::is_metastatic)
    }

    /// Days from `date` to the evaluation date.
    pub(crate) fn days_since(&self, date: NaiveDate) -> i64 {
        (self.today - date).num_days()
    }
}

/// The unknown facts some rule needed, for DATA-01 (patient-view).
#[derive(Debug, Default)]
pub struct Gaps {
    items: Vec<UnknownFact>,
}

impl Gaps {
    /// Records `fact` as missing when it is unknown; returns its value otherwise.
    pub fn need<'f, T>(
        &mut self,
        name: &'static str,
        fact: &'f Fact<T>,
        holds_back: &str,
    ) -> Option<&'f T> {
        match fact {
            Fact::Known { value, .. } => Some(value),
            Fact::Unknown(u) => {
                self.add(UnknownFact {
                    fact: name,
                    reason: u.reason(),
                    holds_back: holds_back.to_owned(),
                });
                None
            }
        }
    }

    pub fn add(&mut self, u: UnknownFact) {
        if !self
            .items
            .iter()
            .any(|i| i.fact == u.fact && i.holds_back == u.holds_back)
        {
            self.items.push(u);
        }
    }

    pub fn extend(&mut self, us: &[UnknownFact]) {
        for u in us {
            self.add(u.clone());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn into_items(self) -> Vec<UnknownFact> {
        self.items
    }
}

/// "Observation/ecog-1, coded, 2026-10-02".
pub(crate) fn provenance_text(p: &Provenance) -> String {
    let mut parts: Vec<String> = Vec::with_capacity(3);
    if !p.resources.is_empty() {
        parts.push(p.resources.join(", "));
    }
    parts.push(p.read_from.label().to_owned());
    if let Some(d) = p.date {
        parts.push(d.to_string());
    }
    if let Some(n) = &p.note {
        parts.push(n.clone());
    }
    parts.join(", ")
}

/// The card line of a known fact; `None` when unknown.
pub(crate) fn fact_use<T>(
    name: &'static str,
    fact: &Fact<T>,
    show: impl FnOnce(&T) -> String,
) -> Option<FactUse> {
    match fact {
        Fact::Known { value, provenance } => Some(FactUse {
            fact: name,
            value: show(value),
            provenance: Some(provenance_text(provenance)),
            origin: origin_of(provenance),
        }),
        Fact::Unknown(_) => None,
    }
}

/// A fact use for a value that is not a picture fact (a resection's date, a draft order). The
/// provenance line ("Procedure/p1, coded") is read into its structured origin.
pub(crate) fn plain_use(name: &'static str, value: String, provenance: Option<String>) -> FactUse {
    FactUse {
        fact: name,
        value,
        origin: provenance.as_deref().map(Origin::parse).unwrap_or_default(),
        provenance,
    }
}

/// The unknown-fact line of a fact; `None` when known.
pub(crate) fn unknown_of<T>(
    name: &'static str,
    fact: &Fact<T>,
    holds_back: &str,
) -> Option<UnknownFact> {
    fact.unknown_reason().map(|u| UnknownFact {
        fact: name,
        reason: u.reason(),
        holds_back: holds_back.to_owned(),
    })
}

/// Months with at most one decimal ("8", "14.5"); cards show durations with
/// [`crate::display::months`] ("2 years 10 months").
pub(crate) fn months_text(m: f64) -> String {
    if (m - m.round()).abs() < 0.05 {
        format!("{}", m.round() as i64)
    } else {
        format!("{m:.1}")
    }
}

/// A date that may be absent ("13 Nov 2026", "none recorded").
pub(crate) fn date_text(d: Option<NaiveDate>) -> String {
    crate::display::date_or_none(d)
}

/// `Create` suggestion of an order template.
pub(crate) fn create(label: &str, template: &'static str) -> Suggestion {
    Suggestion::Create {
        label: label.to_owned(),
        order_template: template,
        recommended: false,
    }
}
