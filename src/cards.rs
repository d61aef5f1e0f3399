//! Findings → CDS Hooks cards (rps-knowledge.md §3). The card's words come from the knowledge
//! base (reviewed data); the patient's facts, unknowns and parameter values from the finding.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::cds_hooks::Indicator;
use crate::cds_hooks::response::{
    Action, ActionType, Card, Coding, SelectionBehavior, Source, Suggestion,
};
use crate::knowledge::{
    Knowledge, OVERRIDE_REASON_SYSTEM, ParameterId, Parameters, RULE_SYSTEM, RuleDefinition,
};
use crate::rules::{Finding, RuleId, Suggestion as SuggestionSpec};

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

/// Findings shown as one card (§5): each applicable recommendation is its own line with its
/// own statement, evidence level and suggestion; the card's rule id is the first member that
/// applied (catalogue order), and `rules-applied` lists every member that applied.
#[derive(Debug, Clone, Copy)]
pub struct MergedCard {
    pub title: &'static str,
    /// In catalogue order; the first is the card's rule id whenever it applies.
    pub rules: &'static [RuleId],
}

/// "Care team" (MDT-01/02/03, PATH-01) and "Missing information" (DATA-01, HIST-01/02/03).
pub const MERGED_CARDS: &[MergedCard] = &[
    MergedCard {
        title: "Care team",
        rules: &[RuleId::Mdt01, RuleId::Mdt02, RuleId::Mdt03, RuleId::Path01],
    },
    MergedCard {
        title: "Missing information",
        rules: &[
            RuleId::Data01,
            RuleId::Hist01,
            RuleId::Hist02,
            RuleId::Hist03,
        ],
    },
];

/// The "Missing information" card (DATA-01 …): when cards are left out it is the last card,
/// and names them.
const MISSING_INFORMATION: usize = 1;

/// Order templates that are alternatives to one another: a card suggesting only these offers
/// a choice (`selectionBehavior` `at-most-one`).
const ALTERNATIVE_TEMPLATES: &[&[&str]] = &[&["bone-scan", "fdg-pet"]];

/// The cards of one response and every rule id they carry.
#[derive(Debug)]
pub struct Rendered {
    pub cards: Vec<Card>,
    /// Every rule that applied, card by card (merged members and left-out cards included), for
    /// the audit trail and the feedback statistics.
    pub rules_applied: Vec<RuleId>,
}

/// One card before `max_cards`: its findings (one, or the members of a merged card).
struct Unit<'f> {
    findings: Vec<&'f Finding>,
    merged: Option<usize>,
}

impl Unit<'_> {
    fn lead(&self) -> &Finding {
        self.findings[0]
    }

    fn indicator(&self) -> Indicator {
        self.findings
            .iter()
            .map(|f| f.indicator)
            .min()
            .unwrap_or(Indicator::Info)
    }

    /// Never left out by `max_cards` (§5): critical cards, the verdict card, cards tied to a
    /// draft order.
    fn protected(&self) -> bool {
        self.indicator() == Indicator::Critical
            || self
                .findings
                .iter()
                .any(|f| f.rule.is_verdict() || f.draft_order.is_some())
    }
}

/// Builds the cards, ordered critical, warning, info and within those in catalogue order;
/// merges the [`MERGED_CARDS`]; keeps at most `max_cards` (§5). A finding whose rule is missing
/// from the knowledge base cannot happen (checked at start-up); it is skipped rather than
/// sent without its source.
pub fn render(findings: &[Finding], ctx: &CardContext<'_>) -> Rendered {
    let mut ordered: Vec<&Finding> = findings
        .iter()
        .filter(|f| ctx.knowledge.rule(f.rule.as_str()).is_some())
        .collect();
    ordered.sort_by_key(|f| {
        (
            f.indicator,
            ctx.knowledge.catalogue_position(f.rule.as_str()),
        )
    });
    let mut units: Vec<Unit> = Vec::with_capacity(ordered.len());
    for f in ordered {
        let group = MERGED_CARDS.iter().position(|m| m.rules.contains(&f.rule));
        match group.and_then(|g| units.iter_mut().find(|u| u.merged == Some(g))) {
            Some(unit) => unit.findings.push(f),
            None => units.push(Unit {
                findings: vec![f],
                merged: group,
            }),
        }
    }
    for u in &mut units {
        // The card's rule id is the first member in catalogue order (MDT-01, DATA-01 …).
        u.findings
            .sort_by_key(|f| ctx.knowledge.catalogue_position(f.rule.as_str()));
    }
    let rules_applied = units
        .iter()
        .flat_map(|u| u.findings.iter().map(|f| f.rule))
        .collect();
    let (kept, left_out) = limit(units, ctx.parameters.max_cards as usize);
    let mut cards: Vec<Card> = kept.iter().map(|u| unit_card(u, ctx)).collect();
    if !left_out.is_empty()
        && let Some(last) = cards.last_mut()
    {
        name_left_out(last, &left_out, ctx);
    }
    Rendered {
        cards,
        rules_applied,
    }
}

/// Keeps every protected card and fills up to `max` with the rest in priority order (the
/// units come sorted); the Missing information card is kept and moved last when cards are
/// left out. Returns the cards kept and those left out.
fn limit(units: Vec<Unit<'_>>, max: usize) -> (Vec<Unit<'_>>, Vec<Unit<'_>>) {
    let missing =
        |u: &Unit| u.merged == Some(MISSING_INFORMATION) || u.lead().rule == RuleId::Data01;
    let reserved = units.iter().filter(|u| u.protected() || missing(u)).count();
    let mut room = max.saturating_sub(reserved);
    let keep: Vec<bool> = units
        .iter()
        .map(|u| {
            let kept = u.protected() || missing(u) || room > 0;
            if kept && !u.protected() && !missing(u) {
                room -= 1;
            }
            kept
        })
        .collect();
    if keep.iter().all(|k| *k) {
        // Everything fits, or only protected cards go beyond `max`: nothing to name.
        return (units, Vec::new());
    }
    let (mut kept, mut left_out, mut last) = (Vec::new(), Vec::new(), None);
    for (u, k) in units.into_iter().zip(keep) {
        match (k, missing(&u)) {
            (true, true) => last = Some(u),
            (true, false) => kept.push(u),
            (false, _) => left_out.push(u),
        }
    }
    kept.extend(last);
    (kept, left_out)
}

/// The last card names each card left out by its summary line.
fn name_left_out(card: &mut Card, left_out: &[Unit<'_>], ctx: &CardContext<'_>) {
    let summaries: Vec<(RuleId, String)> = left_out
        .iter()
        .map(|u| (u.lead().rule, unit_summary(u, ctx)))
        .collect();
    let mut list = format!(
        "\n\n**Not shown: {} more recommendation(s)** (at most `max_cards` = {} cards per \
         response; open the chart's CDS view for all)\n\n",
        summaries.len(),
        ctx.parameters.display(ParameterId::MaxCards)
    );
    for (_, s) in &summaries {
        let _ = writeln!(list, "- {s}");
    }
    card.detail.push_str(list.trim_end());
    if let Some(e) = card.extension.as_mut() {
        e[format!("{EXTENSION_NAMESPACE}/left-out")] = summaries
            .iter()
            .map(|(rule, summary)| json!({"rule": rule.as_str(), "summary": summary}))
            .collect();
        e[format!("{EXTENSION_NAMESPACE}/parameters")]["max_cards"] =
            json!(ctx.parameters.display(ParameterId::MaxCards));
    }
}

fn unit_summary(u: &Unit<'_>, ctx: &CardContext<'_>) -> String {
    match u.merged {
        Some(g) if u.findings.len() > 1 => merged_summary(&MERGED_CARDS[g], &u.findings, ctx),
        _ => {
            let f = u.lead();
            let rule = ctx.knowledge.rule(f.rule.as_str());
            clamp_summary(
                f.summary
                    .as_deref()
                    .or(rule.map(|r| r.summary.as_str()))
                    .unwrap_or_default(),
            )
        }
    }
}

fn unit_card(u: &Unit<'_>, ctx: &CardContext<'_>) -> Card {
    let rules: Vec<&RuleDefinition> = u
        .findings
        .iter()
        .filter_map(|f| ctx.knowledge.rule(f.rule.as_str()))
        .collect();
    match u.merged {
        Some(g) if u.findings.len() > 1 => merged_card(&MERGED_CARDS[g], &u.findings, &rules, ctx),
        _ => card(u.lead(), rules[0], ctx),
    }
}

/// "Care team: sarcoma tumour board review; clinical trial enrolment".
fn merged_summary(m: &MergedCard, findings: &[&Finding], ctx: &CardContext<'_>) -> String {
    let titles: Vec<String> = findings
        .iter()
        .filter_map(|f| ctx.knowledge.rule(f.rule.as_str()))
        .map(|r| lower_first(&r.title))
        .collect();
    clamp_summary(&format!("{}: {}", m.title, titles.join("; ")))
}

/// Lower-cases the first letter unless the word is an acronym ("PET").
fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && b.is_lowercase() => {
            a.to_lowercase().chain(s.chars().skip(1)).collect()
        }
        _ => s.to_owned(),
    }
}

/// A merged card (§5): one line per recommendation with its own statement, evidence level and
/// suggestion; the suggestions are independent (`any`).
fn merged_card(
    m: &MergedCard,
    findings: &[&Finding],
    rules: &[&RuleDefinition],
    ctx: &CardContext<'_>,
) -> Card {
    let lead = rules[0];
    let indicator = findings
        .iter()
        .map(|f| f.indicator)
        .min()
        .unwrap_or(Indicator::Info);
    let mut detail = String::new();
    let mut suggestions = Vec::new();
    let mut lines = Vec::new();
    for (f, rule) in findings.iter().zip(rules) {
        let line_suggestions: Vec<Suggestion> = f
            .suggestions
            .iter()
            .filter_map(|s| suggestion(s, ctx))
            .collect();
        let summary = clamp_summary(f.summary.as_deref().unwrap_or(&rule.summary));
        let _ = write!(detail, "### {}\n\n{summary}", rule.title);
        if let Some(level) = &rule.evidence {
            let _ = write!(detail, " (evidence {level})");
        }
        detail.push_str("\n\n");
        for s in &line_suggestions {
            let _ = writeln!(detail, "Suggestion: {}", s.label);
        }
        if !line_suggestions.is_empty() {
            detail.push('\n');
        }
        detail.push_str(&body(f, rule, ctx));
        let _ = write!(detail, "Source: {}", rule.source.label);
        if let Some(level) = &rule.evidence {
            let _ = write!(detail, " — evidence {level}");
        }
        detail.push_str(".\n\n");
        lines.push(json!({
            "rule": rule.id,
            "summary": summary,
            "evidence": rule.evidence,
            "suggestions": line_suggestions.iter().map(|s| s.label.clone()).collect::<Vec<_>>(),
        }));
        suggestions.extend(line_suggestions);
    }
    let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    let _ = write!(
        detail,
        "Rules {} · knowledge base {}.",
        ids.join(", "),
        ctx.knowledge.version
    );
    let mut extension = json!({
        format!("{EXTENSION_NAMESPACE}/rule"): lead.id,
        format!("{EXTENSION_NAMESPACE}/rules-applied"): ids,
        format!("{EXTENSION_NAMESPACE}/knowledge-version"): ctx.knowledge.version,
        format!("{EXTENSION_NAMESPACE}/recommendations"): lines,
    });
    let facts = merged_facts(findings, ctx);
    for (k, v) in facts {
        extension[k] = v;
    }
    Card {
        uuid: uuid::Uuid::now_v7().to_string(),
        summary: merged_summary(m, findings, ctx),
        detail,
        indicator,
        source: source(lead),
        selection_behavior: (!suggestions.is_empty()).then_some(SelectionBehavior::Any),
        suggestions,
        override_reasons: override_reasons(indicator, ctx),
        extension: Some(extension),
    }
}

/// The facts, unknowns and parameters of every line, each once.
fn merged_facts(findings: &[&Finding], ctx: &CardContext<'_>) -> Vec<(String, Value)> {
    let mut decided: Vec<Value> = Vec::new();
    let mut unknown: Vec<Value> = Vec::new();
    let mut params = serde_json::Map::new();
    for f in findings {
        let e = fact_extension(f, ctx);
        for (key, into) in [("decided-by", &mut decided), ("unknown", &mut unknown)] {
            for v in e[format!("{EXTENSION_NAMESPACE}/{key}")]
                .as_array()
                .into_iter()
                .flatten()
            {
                if !into.contains(v) {
                    into.push(v.clone());
                }
            }
        }
        if let Some(p) = e[format!("{EXTENSION_NAMESPACE}/parameters")].as_object() {
            params.extend(p.clone());
        }
    }
    vec![
        (
            format!("{EXTENSION_NAMESPACE}/decided-by"),
            Value::Array(decided),
        ),
        (
            format!("{EXTENSION_NAMESPACE}/unknown"),
            Value::Array(unknown),
        ),
        (
            format!("{EXTENSION_NAMESPACE}/parameters"),
            Value::Object(params),
        ),
    ]
}

fn source(rule: &RuleDefinition) -> Source {
    Source {
        label: rule.source.label.clone(),
        url: Some(rule.source.url.clone()).filter(|u| !u.is_empty()),
        topic: Coding {
            system: RULE_SYSTEM.to_owned(),
            code: rule.id.clone(),
            display: Some(rule.title.clone()),
        },
    }
}

fn override_reasons(indicator: Indicator, ctx: &CardContext<'_>) -> Vec<Coding> {
    if indicator == Indicator::Info {
        return Vec::new();
    }
    ctx.knowledge
        .override_reasons
        .iter()
        .map(|r| Coding {
            system: OVERRIDE_REASON_SYSTEM.to_owned(),
            code: r.code.clone(),
            display: Some(r.display.clone()),
        })
        .collect()
}

/// `at-most-one` when the suggestions are alternatives (§4.5): removing a draft order or
/// replacing it; bone scan or FDG-PET. `any` when they are independent (several orders to
/// place, the merged cards). A card that mixes an independent order with alternatives (MET-05
/// asking for a CT abdomen and a bone scan or PET) stays `any`: `at-most-one` would keep the
/// clinician from accepting the CT with the bone imaging.
fn selection_behavior(specs: &[SuggestionSpec]) -> Option<SelectionBehavior> {
    if specs.is_empty() {
        return None;
    }
    fn one_order(s: &SuggestionSpec) -> Option<&str> {
        match s {
            SuggestionSpec::Delete { resource_id, .. }
            | SuggestionSpec::Replace { resource_id, .. } => Some(resource_id.as_str()),
            SuggestionSpec::Create { .. } => None,
        }
    }
    let first = one_order(&specs[0]);
    let same_order = first.is_some() && specs.iter().all(|s| one_order(s) == first);
    let one_choice = ALTERNATIVE_TEMPLATES.iter().any(|set| {
        specs.iter().all(|s| {
            matches!(s, SuggestionSpec::Create { order_template, .. } if set.contains(order_template))
        })
    });
    if specs.len() > 1 && (same_order || one_choice) {
        Some(SelectionBehavior::AtMostOne)
    } else {
        Some(SelectionBehavior::Any)
    }
}

fn card(finding: &Finding, rule: &RuleDefinition, ctx: &CardContext<'_>) -> Card {
    let suggestions: Vec<Suggestion> = finding
        .suggestions
        .iter()
        .filter_map(|s| suggestion(s, ctx))
        .collect();
    let selection_behavior = if suggestions.is_empty() {
        None
    } else {
        selection_behavior(&finding.suggestions)
    };
    Card {
        // Time-ordered (v7): the audit trail keys cards by uuid, and ordered keys append to
        // its index instead of touching a random page per card on every commit.
        uuid: uuid::Uuid::now_v7().to_string(),
        summary: clamp_summary(finding.summary.as_deref().unwrap_or(&rule.summary)),
        detail: detail(finding, rule, ctx),
        indicator: finding.indicator,
        source: source(rule),
        suggestions,
        selection_behavior,
        override_reasons: override_reasons(finding.indicator, ctx),
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
    let mut d = body(f, rule, ctx);
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

/// The recommendation, the patient's statements, the deciding facts, the unknowns and the
/// parameters: everything of a card's detail but its source line.
fn body(f: &Finding, rule: &RuleDefinition, ctx: &CardContext<'_>) -> String {
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
    d
}

fn extension(f: &Finding, rule: &RuleDefinition, ctx: &CardContext<'_>) -> Value {
    let mut e = fact_extension(f, ctx);
    e[format!("{EXTENSION_NAMESPACE}/rule")] = json!(rule.id);
    e[format!("{EXTENSION_NAMESPACE}/rules-applied")] = json!([rule.id]);
    e[format!("{EXTENSION_NAMESPACE}/knowledge-version")] = json!(ctx.knowledge.version);
    if let Some(level) = &rule.evidence {
        e[format!("{EXTENSION_NAMESPACE}/evidence")] = json!(level);
    }
    if let Some(order) = &f.draft_order {
        e[format!("{EXTENSION_NAMESPACE}/draft-order")] = json!(order);
    }
    e
}

/// The finding's deciding facts, unknowns and parameters as extension entries.
fn fact_extension(f: &Finding, ctx: &CardContext<'_>) -> Value {
    json!({
        format!("{EXTENSION_NAMESPACE}/decided-by"): f.decided_by.iter().map(|x| json!({"fact": x.fact, "value": x.value, "provenance": x.provenance})).collect::<Vec<_>>(),
        format!("{EXTENSION_NAMESPACE}/unknown"): f.unknown.iter().map(|x| json!({"fact": x.fact, "reason": x.reason, "holdsBack": x.holds_back})).collect::<Vec<_>>(),
        format!("{EXTENSION_NAMESPACE}/parameters"): f.parameters.iter().map(|p| (p.name().to_owned(), json!(ctx.parameters.display(*p)))).collect::<serde_json::Map<_, _>>(),
    })
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
