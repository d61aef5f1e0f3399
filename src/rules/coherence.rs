//! The second pass (docs/clinical-spec.md §5, "one response, one plan"): the findings of the first
//! pass are visible here, and each coherence rule is one named pair — a condition and the
//! rules it silences — with its reason. Rule functions know nothing of each other; this table
//! is the only place where one rule's finding keeps another from being shown.

use super::{Ctx, Finding, Gaps, RuleId, RuleInput, metastatic};
use crate::clinical::OrderKind;

/// What makes a pair apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    /// A finding of any of these rules is in the first pass.
    Fired(&'static [RuleId]),
    /// Lung metastases are being considered for definitive treatment (§4.5, ORD-17): a
    /// pulmonary metastasectomy or an ablation of lung metastases is among the draft orders of
    /// the request, MET-05 asks for extrapulmonary staging, or MET-02 finds no failed
    /// criterion.
    LungMetastasesConsideredForDefinitiveTreatment,
}

/// One coherence rule: when `when` holds, the findings of `silences` are not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pair {
    pub name: &'static str,
    pub when: When,
    pub silences: &'static [RuleId],
    /// Why, in the catalogue's words (shown in the response's `coherence` extension).
    pub reason: &'static str,
}

/// §5, in the catalogue's order.
pub(crate) const PAIRS: &[Pair] = &[
    Pair {
        name: "lr01-silences-metastasectomy-plan",
        when: When::Fired(&[RuleId::Lr01]),
        silences: &[RuleId::Met02, RuleId::Met03, RuleId::Met05, RuleId::Met11],
        reason: "synchronous local and distant recurrence (LR-01): systemic therapy carries the \
                 plan, not metastasectomy, observation or surveillance",
    },
    Pair {
        name: "systemic-first-over-observation",
        when: When::Fired(&[RuleId::Met01, RuleId::Lr01]),
        silences: &[RuleId::Met11, RuleId::Met03],
        reason: "a \"systemic therapy first\" verdict never appears with active surveillance or \
                 a period of observation; systemic therapy first wins",
    },
    Pair {
        name: "sarcomatosis-silences-local-treatment",
        when: When::Fired(&[RuleId::Met07]),
        silences: &[RuleId::Met02, RuleId::Met03, RuleId::Met11],
        reason: "sarcomatosis (MET-07) is not low-volume disease for metastasectomy, observation \
                 or surveillance",
    },
    Pair {
        name: "ord17-never-contradicts-met05",
        when: When::LungMetastasesConsideredForDefinitiveTreatment,
        silences: &[RuleId::Ord17],
        reason: "lung metastases are being considered for definitive treatment, for which \
                 extrapulmonary staging (bone scan or FDG-PET) is asked for (MET-05)",
    },
    Pair {
        name: "met12-replaces-first-line-verdicts",
        when: When::Fired(&[RuleId::Met12]),
        silences: &[RuleId::Lr01, RuleId::Lr02, RuleId::Met01],
        reason: "after a favourable response to systemic therapy (MET-12) resection may be \
                 reconsidered at the tumour board; the advice given before treatment (no \
                 resection, systemic therapy first) no longer applies",
    },
    Pair {
        name: "lr09-carries-its-own-neoadjuvant-advice",
        when: When::Fired(&[RuleId::Lr09]),
        silences: &[RuleId::Lr07],
        reason: "the borderline resectable recurrence card (LR-09) carries its own advice on \
                 neoadjuvant therapy (§4.3)",
    },
];

/// A finding the second pass did not show, and which pair silenced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Silenced {
    pub rule: RuleId,
    pub draft_order: Option<String>,
    pub pair: &'static str,
    pub reason: &'static str,
}

/// Applies [`PAIRS`] to the first pass's findings (conditions read the first pass, so the
/// order of the pairs does not matter), and keeps at most one finding per rule per draft
/// order. Returns the findings shown and those silenced.
pub(crate) fn apply(input: &RuleInput, findings: Vec<Finding>) -> (Vec<Finding>, Vec<Silenced>) {
    let first_pass: Vec<RuleId> = findings.iter().map(|f| f.rule).collect();
    let holds: Vec<bool> = PAIRS
        .iter()
        .map(|p| match p.when {
            When::Fired(ids) => ids.iter().any(|id| first_pass.contains(id)),
            When::LungMetastasesConsideredForDefinitiveTreatment => {
                // Only worth deciding when something could be silenced.
                p.silences.iter().any(|id| first_pass.contains(id))
                    && lung_metastases_considered(input, &first_pass)
            }
        })
        .collect();
    let mut shown: Vec<Finding> = Vec::with_capacity(findings.len());
    let mut silenced = Vec::new();
    for f in findings {
        let by = PAIRS
            .iter()
            .zip(&holds)
            .find(|(p, holds)| **holds && p.silences.contains(&f.rule));
        if let Some((pair, _)) = by {
            silenced.push(Silenced {
                rule: f.rule,
                draft_order: f.draft_order.clone(),
                pair: pair.name,
                reason: pair.reason,
            });
            continue;
        }
        // Order hooks: at most one finding per rule per draft order (a draft order sent
        // twice must not give two identical cards).
        if f.draft_order.is_some()
            && shown
                .iter()
                .any(|s| s.rule == f.rule && s.draft_order == f.draft_order)
        {
            continue;
        }
        shown.push(f);
    }
    (shown, silenced)
}

fn lung_metastases_considered(input: &RuleInput, first_pass: &[RuleId]) -> bool {
    if first_pass.contains(&RuleId::Met05)
        || input
            .draft_orders
            .iter()
            .any(|o| o.is(OrderKind::PulmonaryMetastasectomy))
        || input.draft_orders.iter().any(|o| {
            o.is(OrderKind::PulmonaryAblation)
                || (o.is(OrderKind::Ablation) && ablation_may_be_of_the_lung(input, o))
        })
    {
        return true;
    }
    // MET-02 with no failed criterion. On the order hooks MET-02 is not a card, so its
    // criteria are assessed here as its patient-view evaluation would (the gaps are not shown:
    // DATA-01 is a patient-view card).
    let ctx = Ctx::new(input.picture, input.params);
    ctx.metastatic() == Some(true)
        && metastatic::assess_met02(&ctx, &mut Gaps::default()).is_some_and(|m| m.failed.is_empty())
}

/// An ablation order not known to be of the lung may still treat lung metastases, unless it
/// is known to target something else: it names a recorded metastasis of another site, or the
/// patient's metastasis sites are known not to include the lung. (Reading the catalogue's "ablation order" safely: ORD-17 is
/// silenced rather than discouraging staging before a lung ablation.)
fn ablation_may_be_of_the_lung(input: &RuleInput, o: &crate::clinical::DraftOrder) -> bool {
    use crate::clinical::MetastasisSite;
    let p = input.picture;
    let targeted: Vec<Option<MetastasisSite>> = p
        .metastases
        .iter()
        .filter(|m| o.reason_conditions.contains(&m.source))
        .map(|m| m.site)
        .collect();
    if !targeted.is_empty() {
        return targeted.contains(&Some(MetastasisSite::Lung)) || targeted.contains(&None);
    }
    p.metastasis_sites
        .value()
        .is_none_or(|sites| sites.contains(&MetastasisSite::Lung))
}
