//! Findings → CDS Hooks cards (rps-knowledge.md §3). The card's words come from the knowledge
//! base (reviewed data); the patient's facts, unknowns and parameter values from the finding.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::cds_hooks::Indicator;
use crate::cds_hooks::response::{
    Action, ActionType, Card, Coding, SelectionBehavior, Source, Suggestion,
};
use crate::knowledge::{
    Knowledge, OVERRIDE_REASON_SYSTEM, Parameters, RULE_SYSTEM, RuleDefinition,
};
use crate::rules::{Finding, Suggestion as SuggestionSpec};

/// CDS Hooks requires summaries under 140 characters.
pub const MAX_SUMMARY_CHARS: usize = 139;
/// Namespace of this service's card and response extensions.
pub const EXTENSION_NAMESPACE: &str = "https://fhir.rps-cds.org";

/// What the card builder needs besides the findings.
pub struct CardContext<'a> {
    pub knowledge: &'a Knowledge,
    pub parameters: &'a Parameters,
    /// The patient the request is about (`context.patientId`): subject of suggested orders.
    pub patient_id: &'a str,
    pub encounter_id: Option<&'a str>,
}

/// Builds the cards, ordered critical, warning, info and within those in catalogue order.
/// A finding whose rule is missing from the knowledge base cannot happen (checked at
/// start-up); it is skipped rather than sent without its source.
pub fn render(findings: &[Finding], ctx: &CardContext<'_>) -> Vec<Card> {
    let mut ordered: Vec<&Finding> = findings.iter().collect();
    ordered.sort_by_key(|f| {
        (
            f.indicator,
            ctx.knowledge.catalogue_position(f.rule.as_str()),
        )
    });
    ordered
        .into_iter()
        .filter_map(|f| {
            ctx.knowledge
                .rule(f.rule.as_str())
                .map(|rule| card(f, rule, ctx))
        })
        .collect()
}

fn card(finding: &Finding, rule: &RuleDefinition, ctx: &CardContext<'_>) -> Card {
    let suggestions: Vec<Suggestion> = finding
        .suggestions
        .iter()
        .filter_map(|s| suggestion(s, ctx))
        .collect();
    let selection_behavior = (!suggestions.is_empty()).then_some(SelectionBehavior::Any);
    let override_reasons = if finding.indicator == Indicator::Info {
        Vec::new()
    } else {
        ctx.knowledge
            .override_reasons
            .iter()
            .map(|r| Coding {
                system: OVERRIDE_REASON_SYSTEM.to_owned(),
                code: r.code.clone(),
                display: Some(r.display.clone()),
            })
            .collect()
    };
    Card {
        // Time-ordered (v7): the audit trail keys cards by uuid, and ordered keys append to
        // its index instead of touching a random page per card on every commit.
        uuid: uuid::Uuid::now_v7().to_string(),
        summary: clamp_summary(finding.summary.as_deref().unwrap_or(&rule.summary)),
        detail: detail(finding, rule, ctx),
        indicator: finding.indicator,
        source: Source {
            label: rule.source.label.clone(),
            url: Some(rule.source.url.clone()).filter(|u| !u.is_empty()),
            topic: Coding {
                system: RULE_SYSTEM.to_owned(),
                code: rule.id.clone(),
                display: Some(rule.title.clone()),
            },
        },
        suggestions,
        selection_behavior,
        override_reasons,
        extension: Some(extension(finding, rule, ctx)),
    }
}

fn clamp_summary(s: &str) -> String {
    if s.chars().count() <= MAX_SUMMARY_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_SUMMARY_CHARS - 1).collect();
    out.push('…');
    out
}

fn detail(f: &Finding, rule: &RuleDefinition, ctx: &CardContext<'_>) -> String {
    let mut d = String::new();
    d.push_str(rule.recommendation.trim());
    d.push_str("\n\n");
    if !f.statements.is_empty() {
        for s in &f.statements {
            let _ = writeln!(d, "- {s}");
        }
        d.push('\n');
    }
    if !f.decided_by.is_empty() {
        d.push_str("**Patient facts that decided this**\n\n");
        for fact in &f.decided_by {
            let _ = write!(d, "- `{}`: {}", fact.fact, fact.value);
            if let Some(p) = &fact.provenance {
                let _ = write!(d, " ({p})");
            }
            d.push('\n');
        }
        d.push('\n');
    }
    if !f.unknown.is_empty() {
        d.push_str("**Not known** (not treated as absent)\n\n");
        for u in &f.unknown {
            let _ = writeln!(d, "- `{}`: {} — {}", u.fact, u.reason, u.holds_back);
        }
        d.push('\n');
    }
    if !f.parameters.is_empty() {
        d.push_str("**Parameters used**\n\n");
        for p in &f.parameters {
            let source = ctx
                .knowledge
                .parameter_definitions
                .iter()
                .find(|def| def.name == p.name())
                .map(|def| def.source.as_str())
                .unwrap_or("");
            let _ = writeln!(
                d,
                "- `{}` = {} ({source})",
                p.name(),
                ctx.parameters.display(*p)
            );
        }
        d.push('\n');
    }
    let _ = write!(d, "Source: {}", rule.source.label);
    if let Some(level) = &rule.evidence {
        let _ = write!(d, " — evidence {level}");
    }
    let _ = write!(
        d,
        ". Rule {} · knowledge base {}.",
        rule.id, ctx.knowledge.version
    );
    d
}

fn extension(f: &Finding, rule: &RuleDefinition, ctx: &CardContext<'_>) -> Value {
    let mut e = json!({
        format!("{EXTENSION_NAMESPACE}/rule"): rule.id,
        format!("{EXTENSION_NAMESPACE}/knowledge-version"): ctx.knowledge.version,
        format!("{EXTENSION_NAMESPACE}/decided-by"): f.decided_by.iter().map(|x| json!({"fact": x.fact, "value": x.value, "provenance": x.provenance})).collect::<Vec<_>>(),
        format!("{EXTENSION_NAMESPACE}/unknown"): f.unknown.iter().map(|x| json!({"fact": x.fact, "reason": x.reason, "holdsBack": x.holds_back})).collect::<Vec<_>>(),
        format!("{EXTENSION_NAMESPACE}/parameters"): f.parameters.iter().map(|p| (p.name().to_owned(), json!(ctx.parameters.display(*p)))).collect::<serde_json::Map<_, _>>(),
    });
    if let Some(level) = &rule.evidence {
        e[format!("{EXTENSION_NAMESPACE}/evidence")] = json!(level);
    }
    if let Some(order) = &f.draft_order {
        e[format!("{EXTENSION_NAMESPACE}/draft-order")] = json!(order);
    }
    e
}

fn suggestion(spec: &SuggestionSpec, ctx: &CardContext<'_>) -> Option<Suggestion> {
    let (label, actions, recommended) = match spec {
        SuggestionSpec::Create {
            label,
            order_template,
            recommended,
        } => (
            label,
            vec![create_action(label, order_template, ctx)?],
            *recommended,
        ),
        SuggestionSpec::Delete { label, resource_id } => {
            (label, vec![delete_action(resource_id)], false)
        }
        SuggestionSpec::Replace {
            label,
            resource_id,
            order_template,
        } => (
            label,
            vec![
                delete_action(resource_id),
                create_action(label, order_template, ctx)?,
            ],
            true,
        ),
    };
    Some(Suggestion {
        label: label.clone(),
        uuid: uuid::Uuid::new_v4().to_string(),
        is_recommended: recommended,
        actions,
    })
}

fn delete_action(resource_id: &str) -> Action {
    Action {
        kind: ActionType::Delete,
        description: format!("Remove the draft order {resource_id}"),
        resource: None,
        resource_id: Some(resource_id.to_owned()),
    }
}

/// A proposed order from a knowledge-base template, for this patient. Templates are checked at
/// start-up, so a missing one is a defect and the suggestion is dropped rather than sent empty.
fn create_action(label: &str, template_id: &str, ctx: &CardContext<'_>) -> Option<Action> {
    let mut resource = ctx.knowledge.order_templates.get(template_id)?.clone();
    let obj = resource.as_object_mut()?;
    obj.insert("id".to_owned(), json!(uuid::Uuid::new_v4().to_string()));
    obj.insert("status".to_owned(), json!("draft"));
    obj.insert("intent".to_owned(), json!("proposal"));
    obj.insert(
        "subject".to_owned(),
        json!({"reference": format!("Patient/{}", ctx.patient_id)}),
    );
    if let Some(encounter) = ctx.encounter_id {
        obj.insert(
            "encounter".to_owned(),
            json!({"reference": format!("Encounter/{encounter}")}),
        );
    }
    Some(Action {
        kind: ActionType::Create,
        description: label.to_owned(),
        resource: Some(resource),
        resource_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_summaries_are_clamped_below_140() {
        let s = "x".repeat(200);
        assert_eq!(clamp_summary(&s).chars().count(), MAX_SUMMARY_CHARS);
        assert_eq!(clamp_summary("short"), "short");
    }
}
