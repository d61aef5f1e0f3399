//! The rule registry: one table of every catalogue rule — its typed id, catalogue section,
//! how its indicator is decided and the function(s) that evaluate it. The evaluation order
//! ([`super::evaluate`]), the implemented-rules list, the start-up coverage check
//! (`engine::check_coverage`) and the tests' rule lists are all derived from it.
//!
//! Hooks, indicators and every card text come from `knowledge/rules.json` alone; the table
//! only says which input an evaluation function needs (the chart, or the draft orders), and
//! start-up checks that this agrees with the rule's hooks in the knowledge base. A rule whose
//! indicator depends on the finding (MET-02, ORD-04) is declared here as
//! `IndicatorFrom::Finding`; every other finding gets the knowledge base's indicator.
//!
//! Adding a rule: one row here (which also creates its [`RuleId`]), its function, and its
//! entry in `knowledge/rules.json`.

use std::fmt;

use super::{Ctx, Finding, Gaps, local_recurrence, metastatic, order_checks, referral};
use super::{surveillance, systemic, systemic_response};
use crate::clinical::DraftOrder;
use crate::knowledge::Hook;
use crate::knowledge::{Knowledge, Section};

/// How a rule is evaluated: the input its function needs decides the hooks it can serve.
#[derive(Clone, Copy)]
pub(crate) enum Evaluation {
    /// Scope and data-quality gates (SCOPE-01, SCOPE-02, DATA-02, DATA-03, DATA-04): run by
    /// [`super::evaluate`] around every other rule, because they decide whether the others run
    /// at all. Any hook.
    Gate,
    /// DATA-01: built from the unknown facts the other patient-view rules recorded.
    Gaps,
    /// A patient-view rule over the chart that records the unknown facts it needed.
    Chart(fn(&Ctx, &mut Gaps) -> Option<Finding>),
    /// A patient-view rule over the chart that needs no fact that can be unknown.
    Picture(fn(&Ctx) -> Option<Finding>),
    /// Several rules decided together by one function (a verdict group, or rules that share a
    /// gate such as "metastatic" or "no evidence of disease after resection"). The other ids
    /// of the group are [`Evaluation::DecidedWith`] this one.
    ChartGroup(fn(&Ctx, &mut Gaps, &mut Vec<Finding>)),
    /// An order check, run once per draft order.
    Order(fn(&Ctx, &DraftOrder, &[DraftOrder]) -> Option<Finding>),
    /// An order check over all draft orders at once (it needs something computed once).
    Orders(fn(&Ctx, &[DraftOrder], &mut Vec<Finding>)),
    /// Decided by the group function of another rule (its first [`Evaluation::ChartGroup`]).
    DecidedWith(RuleId),
}

impl Evaluation {
    /// The hooks this evaluation can run on.
    pub(crate) fn hooks(self) -> &'static [Hook] {
        const ALL: &[Hook] = &[Hook::PatientView, Hook::OrderSelect, Hook::OrderSign];
        const PV: &[Hook] = &[Hook::PatientView];
        const ORDERS: &[Hook] = &[Hook::OrderSelect, Hook::OrderSign];
        match self {
            Evaluation::Gate => ALL,
            Evaluation::Gaps
            | Evaluation::Chart(_)
            | Evaluation::Picture(_)
            | Evaluation::ChartGroup(_)
            | Evaluation::DecidedWith(_) => PV,
            Evaluation::Order(_) | Evaluation::Orders(_) => ORDERS,
        }
    }
}

impl fmt::Debug for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Evaluation::Gate => "Gate",
            Evaluation::Gaps => "Gaps",
            Evaluation::Chart(_) => "Chart",
            Evaluation::Picture(_) => "Picture",
            Evaluation::ChartGroup(_) => "ChartGroup",
            Evaluation::Order(_) => "Order",
            Evaluation::Orders(_) => "Orders",
            Evaluation::DecidedWith(id) => return write!(f, "DecidedWith({id})"),
        };
        f.write_str(name)
    }
}

/// Where a finding's indicator comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndicatorFrom {
    /// The rule's `indicator` in `knowledge/rules.json` (every rule but the two below).
    Knowledge,
    /// The finding decides it: MET-02 is info when every criterion is met and a warning when
    /// one fails; ORD-04's boost exception is info (catalogue §4.5); ORD-01 and ORD-06 are
    /// info, pointing to the tumour board re-review, after a favourable response (MET-12, §4.4).
    Finding,
}

/// One row of the registry.
#[derive(Debug)]
pub(crate) struct RuleEntry {
    pub id: RuleId,
    pub section: Section,
    pub indicator: IndicatorFrom,
    /// Usually one; MET-05 has a patient-view and an order-hook evaluation.
    pub evaluations: &'static [Evaluation],
}

impl RuleEntry {
    /// The hooks the rule's evaluations can serve, in hook order.
    pub(crate) fn hooks(&self) -> Vec<Hook> {
        let mut hooks: Vec<Hook> = Vec::new();
        for e in self.evaluations {
            for h in e.hooks() {
                if !hooks.contains(h) {
                    hooks.push(*h);
                }
            }
        }
        hooks.sort_by_key(|h| *h as u8);
        hooks
    }
}

/// Generates [`RuleId`] and [`REGISTRY`] from one table, so that an id exists exactly when
/// its row does.
macro_rules! registry {
    ($( $variant:ident = $id:literal, $section:ident, $indicator:ident, [$($eval:expr),+ $(,)?]; )+) => {
        /// A rule id of the catalogue (e.g. `RuleId::Lr04`, "LR-04"): the card's
        /// `source.topic.code`. A typo is a compile error.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RuleId {
            $( #[doc = $id] $variant, )+
        }

        impl RuleId {
            /// Every rule, in catalogue order.
            pub const ALL: &'static [RuleId] = &[$(RuleId::$variant),+];

            /// The catalogue's spelling ("LR-04").
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( RuleId::$variant => $id, )+
                }
            }

            /// The id spelled as in the catalogue; `None` for anything else.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $( $id => Some(RuleId::$variant), )+
                    _ => None,
                }
            }
        }

        /// Every rule, in catalogue order (docs/clinical-spec.md §2.1 … §2.7).
        pub(crate) static REGISTRY: &[RuleEntry] = &[
            $( RuleEntry {
                id: RuleId::$variant,
                section: Section::$section,
                indicator: IndicatorFrom::$indicator,
                evaluations: &[$($eval),+],
            }, )+
        ];
    };
}

use Evaluation::{Chart, ChartGroup, DecidedWith, Gate, Order, Orders, Picture};

registry! {
    // §2.1 Scope and data quality
    Scope01 = "SCOPE-01", ScopeAndData, Knowledge, [Gate];
    Scope02 = "SCOPE-02", ScopeAndData, Knowledge, [Gate];
    Data01 = "DATA-01", ScopeAndData, Knowledge, [Evaluation::Gaps];
    Data02 = "DATA-02", ScopeAndData, Knowledge, [Gate];
    Data03 = "DATA-03", ScopeAndData, Knowledge, [Gate];
    Data04 = "DATA-04", ScopeAndData, Knowledge, [Gate];
    // §2.2 Referral, work-up and history
    Mdt01 = "MDT-01", ReferralWorkupHistory, Knowledge, [Chart(referral::mdt_01)];
    Mdt02 = "MDT-02", ReferralWorkupHistory, Knowledge, [Chart(referral::mdt_02)];
    Mdt03 = "MDT-03", ReferralWorkupHistory, Knowledge, [Chart(referral::mdt_03)];
    Work01 = "WORK-01", ReferralWorkupHistory, Knowledge, [Chart(referral::work_01)];
    Work02 = "WORK-02", ReferralWorkupHistory, Knowledge, [Chart(referral::work_02)];
    Work03 = "WORK-03", ReferralWorkupHistory, Knowledge, [Chart(referral::work_03)];
    Work04 = "WORK-04", ReferralWorkupHistory, Knowledge, [Chart(referral::work_04)];
    Work05 = "WORK-05", ReferralWorkupHistory, Knowledge, [Chart(referral::work_05)];
    Hist01 = "HIST-01", ReferralWorkupHistory, Knowledge, [Picture(referral::hist_01)];
    Hist02 = "HIST-02", ReferralWorkupHistory, Knowledge, [Picture(referral::hist_02)];
    // §4.7 Recommendations the v1 catalogue missed (referral, work-up and history)
    Path01 = "PATH-01", ReferralWorkupHistory, Knowledge, [Chart(referral::path_01)];
    Work06 = "WORK-06", ReferralWorkupHistory, Knowledge, [Chart(referral::work_06), Order(referral::work_06_order)];
    Hist03 = "HIST-03", ReferralWorkupHistory, Knowledge, [Chart(referral::hist_03)];
    // §2.3 Locally recurrent RPS: the LR-00…04 verdict, LR-05/06 that follow it, and LR-07/08,
    // which the section's function runs after the verdict.
    Lr00 = "LR-00", LocalRecurrence, Knowledge, [ChartGroup(local_recurrence::evaluate)];
    Lr01 = "LR-01", LocalRecurrence, Knowledge, [DecidedWith(RuleId::Lr00)];
    Lr02 = "LR-02", LocalRecurrence, Knowledge, [DecidedWith(RuleId::Lr00)];
    Lr03 = "LR-03", LocalRecurrence, Knowledge, [DecidedWith(RuleId::Lr00)];
    Lr04 = "LR-04", LocalRecurrence, Knowledge, [DecidedWith(RuleId::Lr00)];
    Lr05 = "LR-05", LocalRecurrence, Knowledge, [DecidedWith(RuleId::Lr00)];
    Lr06 = "LR-06", LocalRecurrence, Knowledge, [DecidedWith(RuleId::Lr00)];
    Lr07 = "LR-07", LocalRecurrence, Knowledge, [DecidedWith(RuleId::Lr00)];
    Lr08 = "LR-08", LocalRecurrence, Knowledge, [DecidedWith(RuleId::Lr00)];
    Lr09 = "LR-09", LocalRecurrence, Knowledge, [DecidedWith(RuleId::Lr00)];
    // §2.4 Metastatic RPS: one function, because MET-03 and MET-05 follow MET-02's criteria
    // and most rules share the "metastatic" gate.
    Met01 = "MET-01", Metastatic, Knowledge, [ChartGroup(metastatic::evaluate)];
    Met02 = "MET-02", Metastatic, Finding, [DecidedWith(RuleId::Met01)];
    Met03 = "MET-03", Metastatic, Knowledge, [DecidedWith(RuleId::Met01)];
    Met04 = "MET-04", Metastatic, Knowledge, [DecidedWith(RuleId::Met01)];
    Met05 = "MET-05", Metastatic, Knowledge, [DecidedWith(RuleId::Met01), Orders(metastatic::met_05_orders)];
    Met06 = "MET-06", Metastatic, Knowledge, [DecidedWith(RuleId::Met01)];
    Met07 = "MET-07", Metastatic, Knowledge, [DecidedWith(RuleId::Met01)];
    Met08 = "MET-08", Metastatic, Knowledge, [DecidedWith(RuleId::Met01)];
    Met09 = "MET-09", Metastatic, Knowledge, [DecidedWith(RuleId::Met01)];
    Met10 = "MET-10", Metastatic, Knowledge, [DecidedWith(RuleId::Met01)];
    Met11 = "MET-11", Metastatic, Knowledge, [DecidedWith(RuleId::Met01)];
    // §4.4 MET-12: re-review after a favourable response; replaces LR-01, LR-02 and MET-01
    // in the coherence pass.
    Met12 = "MET-12", Metastatic, Knowledge, [Chart(systemic_response::met_12)];
    // §2.5 Systemic therapy
    Sys01 = "SYS-01", SystemicTherapy, Knowledge, [Chart(systemic::sys_01)];
    Sys02 = "SYS-02", SystemicTherapy, Knowledge, [Chart(systemic::sys_02)];
    // §2.6 Surveillance: one function over the last resection of a patient with no evidence
    // of disease.
    Surv01 = "SURV-01", Surveillance, Knowledge, [ChartGroup(surveillance::evaluate)];
    Surv02 = "SURV-02", Surveillance, Knowledge, [DecidedWith(RuleId::Surv01)];
    Surv03 = "SURV-03", Surveillance, Knowledge, [DecidedWith(RuleId::Surv01)];
    // §2.7 Order checks
    Ord01 = "ORD-01", OrderChecks, Finding, [Orders(order_checks::ord_01_all)];
    Ord02 = "ORD-02", OrderChecks, Knowledge, [Order(order_checks::ord_02)];
    Ord03 = "ORD-03", OrderChecks, Knowledge, [Order(order_checks::ord_03)];
    Ord04 = "ORD-04", OrderChecks, Finding, [Order(order_checks::ord_04)];
    Ord05 = "ORD-05", OrderChecks, Knowledge, [Order(order_checks::ord_05)];
    Ord06 = "ORD-06", OrderChecks, Finding, [Order(order_checks::ord_06)];
    Ord07 = "ORD-07", OrderChecks, Knowledge, [Order(order_checks::ord_07)];
    Ord08 = "ORD-08", OrderChecks, Knowledge, [Order(order_checks::ord_08)];
    Ord09 = "ORD-09", OrderChecks, Knowledge, [Order(order_checks::ord_09)];
    Ord10 = "ORD-10", OrderChecks, Knowledge, [Order(order_checks::ord_10)];
    Ord11 = "ORD-11", OrderChecks, Knowledge, [Order(order_checks::ord_11)];
    Ord12 = "ORD-12", OrderChecks, Knowledge, [Order(order_checks::ord_12)];
    Ord13 = "ORD-13", OrderChecks, Knowledge, [Order(order_checks::ord_13)];
    Ord14 = "ORD-14", OrderChecks, Knowledge, [Order(order_checks::ord_14)];
    Ord15 = "ORD-15", OrderChecks, Knowledge, [Order(order_checks::ord_15)];
    Ord16 = "ORD-16", OrderChecks, Knowledge, [Order(order_checks::ord_16_check)];
    Ord17 = "ORD-17", OrderChecks, Knowledge, [Order(order_checks::ord_17)];
    Ord18 = "ORD-18", OrderChecks, Knowledge, [Order(order_checks::ord_18)];
    Ord19 = "ORD-19", OrderChecks, Knowledge, [Order(order_checks::ord_19)];
    Ord20 = "ORD-20", OrderChecks, Knowledge, [Order(order_checks::ord_20)];
}

/// The catalogue's verdict cards (§5: never left out by `max_cards`).
pub(crate) const VERDICT_RULES: &[RuleId] = &[
    RuleId::Lr00,
    RuleId::Lr01,
    RuleId::Lr02,
    RuleId::Lr03,
    RuleId::Lr04,
    RuleId::Lr09,
    RuleId::Met02,
    RuleId::Met12,
];

/// The registry row of a rule.
pub(crate) fn entry(id: RuleId) -> &'static RuleEntry {
    // The table is generated with one row per id, in declaration order.
    &REGISTRY[id as usize]
}

/// The registry against the knowledge base: every row has an entry with the same section and
/// exactly the hooks its evaluations serve, and the knowledge base defines no rule the code
/// lacks (its card could never be sent). Returns every problem found.
pub fn check_knowledge(knowledge: &Knowledge) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for e in REGISTRY {
        let Some(def) = knowledge.rule(e.id.as_str()) else {
            problems.push(format!("{} has no knowledge-base entry", e.id));
            continue;
        };
        if def.section != e.section {
            problems.push(format!(
                "{}: section {} in the knowledge base, {} in the registry",
                e.id,
                def.section.as_str(),
                e.section.as_str()
            ));
        }
        let mut kb_hooks = def.hooks.clone();
        kb_hooks.sort_by_key(|h| *h as u8);
        kb_hooks.dedup();
        if kb_hooks != e.hooks() {
            problems.push(format!(
                "{}: hooks {:?} in the knowledge base, but its evaluation serves {:?}",
                e.id,
                kb_hooks.iter().map(|h| h.as_str()).collect::<Vec<_>>(),
                e.hooks().iter().map(|h| h.as_str()).collect::<Vec<_>>()
            ));
        }
    }
    for def in &knowledge.rules {
        if RuleId::parse(&def.id).is_none() {
            problems.push(format!(
                "{} is in the knowledge base but not implemented",
                def.id
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Makes the knowledge base the one source of hooks and indicators: a finding of a rule that
/// does not run on `hook` is dropped, and every finding takes its rule's indicator unless the
/// registry declares that the finding decides it ([`IndicatorFrom::Finding`]). Start-up has
/// checked that the registry and the knowledge base agree, so this changes nothing unless they
/// were edited apart.
pub(crate) fn settle(findings: &mut Vec<Finding>, knowledge: &Knowledge, hook: Hook) {
    findings.retain_mut(|f| match knowledge.rule(f.rule.as_str()) {
        Some(def) if def.hooks.contains(&hook) => {
            if !f.rule.indicator_from_finding() {
                f.indicator = def.indicator;
            }
            true
        }
        _ => false,
    });
}

impl RuleId {
    /// Whether the finding, not the knowledge base, decides the indicator (MET-02, ORD-04).
    pub fn indicator_from_finding(self) -> bool {
        entry(self).indicator == IndicatorFrom::Finding
    }

    /// The rule's catalogue section.
    pub fn section(self) -> Section {
        entry(self).section
    }

    /// One of the catalogue's verdict cards (LR-00…04, LR-09, MET-02, MET-12).
    pub fn is_verdict(self) -> bool {
        VERDICT_RULES.contains(&self)
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl AsRef<str> for RuleId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_knowledge_base_agrees_and_a_wrong_hook_or_a_missing_rule_fails() {
        let kb = Knowledge::embedded().expect("knowledge base loads");
        check_knowledge(&kb).expect("registry agrees with rules.json");

        let mut wrong = kb.clone();
        let i = wrong.rules.iter().position(|r| r.id == "MDT-01").unwrap();
        wrong.rules[i].hooks.push(Hook::OrderSign);
        let problems = check_knowledge(&wrong).unwrap_err();
        assert!(
            problems.iter().any(|p| p.starts_with("MDT-01: hooks")),
            "{problems:?}"
        );

        let mut typo = kb.clone();
        typo.rules[i].id = "MDT-1".to_owned();
        let problems = check_knowledge(&typo).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("MDT-1 is in the knowledge base")),
            "{problems:?}"
        );
    }

    #[test]
    fn rows_are_indexed_by_id_and_groups_point_at_a_group_function() {
        for (i, e) in REGISTRY.iter().enumerate() {
            assert_eq!(e.id as usize, i);
            assert_eq!(RuleId::parse(e.id.as_str()), Some(e.id));
            for ev in e.evaluations {
                if let Evaluation::DecidedWith(owner) = ev {
                    assert!(
                        entry(*owner)
                            .evaluations
                            .iter()
                            .any(|x| matches!(x, Evaluation::ChartGroup(_))),
                        "{} decided with {owner}, which has no group function",
                        e.id
                    );
                }
            }
        }
    }
}
