//! Findings → CDS Hooks cards (docs/clinical-spec.md §3). The card's words come from the
//! knowledge base (reviewed data); the patient's facts, unknowns and parameter values from the
//! finding.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::cds_hooks::response::{
    Action, ActionType, Card, Coding, Link, LinkType, SelectionBehavior, Source, Suggestion,
};
use crate::clinical::{FactUse, ReadFrom, UnknownFact, is_reference};
use crate::display;
use crate::knowledge::Indicator;
use crate::knowledge::{
    Knowledge, OVERRIDE_REASON_SYSTEM, ParameterId, Parameters, RULE_SYSTEM, RuleDefinition,
};
use crate::rules::{Finding, RuleId, Suggestion as SuggestionSpec};

/// CDS Hooks requires summaries under 140 characters.
pub(crate) const MAX_SUMMARY_CHARS: usize = 139;
/// Namespace of this service's card and response extensions.
pub(crate) const EXTENSION_NAMESPACE: &str = "https://fhir.rps-cds.org";

/// What the card builder needs besides the findings.
pub(crate) struct CardContext<'a> {
    pub knowledge: &'a Knowledge,
    pub parameters: &'a Parameters,
    /// The patient the request is about (`context.patientId`): subject of suggested orders.
    pub patient_id: &'a str,
    pub encounter_id: Option<&'a str>,
    /// The service's public address (`public_base_url`): each card links to its rule's
    /// section of `GET /rules` there.
    pub public_base_url: &'a str,
}

/// Longest `detail` of an info card, and of a verdict card (catalogue §6).
pub const MAX_INFO_DETAIL_CHARS: usize = 700;
pub const MAX_VERDICT_DETAIL_CHARS: usize = 1500;

/// The label of every card's link to its rule on `GET /rules`.
pub const RULE_LINK_LABEL: &str = "Rule and evidence";

/// Findings shown as one card (§5): each applicable recommendation is its own line with its
/// own statement, evidence level and suggestion; the card's rule id is the first member that
/// applied (catalogue order), and `rules-applied` lists every member that applied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MergedCard {
    pub title: &'static str,
    /// In catalogue order; the first is the card's rule id whenever it applies.
    pub rules: &'static [RuleId],
}

/// "Care team" (MDT-01/02/03, PATH-01) and "Missing information" (DATA-01, HIST-01/02/03).
pub(crate) const MERGED_CARDS: &[MergedCard] = &[
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
pub(crate) struct Rendered {
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
pub(crate) fn render(findings: &[Finding], ctx: &CardContext<'_>) -> Rendered {
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
    let plan = UnknownPlan::of(&units, ctx);
    let (kept, left_out) = limit(units, ctx.parameters.max_cards as usize);
    // The last card names the cards left out; it is composed with that list, so its
    // length limit holds with it.
    let note = (!left_out.is_empty()).then(|| left_out_note(&left_out, ctx));
    let last = kept.len().saturating_sub(1);
    let mut cards: Vec<Card> = kept
        .iter()
        .enumerate()
        .map(|(i, u)| unit_card(u, &plan, ctx, note.as_deref().filter(|_| i == last)))
        .collect();
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

/// The last card names each card left out by its summary line, above its footer.
/// The end of a card's detail before its footer: where its other unknowns are listed, and
/// the cards left out when it is the last card.
fn tail_of(unknowns: &CardUnknowns<'_>) -> String {
    let mut tail = elsewhere_line(&unknowns.elsewhere);
    if let Some(note) = &unknowns.note {
        if !tail.is_empty() {
            tail.push_str("\n\n");
        }
        tail.push_str(note);
    }
    tail
}

/// The words naming the cards left out (§5), for the last card's detail.
fn left_out_note(left_out: &[Unit<'_>], ctx: &CardContext<'_>) -> String {
    let n = left_out.len();
    let mut list = format!(
        "**Not shown: {n} more {}** ({}; open the chart's CDS view for all)\n\n",
        if n == 1 {
            "recommendation"
        } else {
            "recommendations"
        },
        display::param(ctx.parameters, ParameterId::MaxCards)
    );
    for u in left_out {
        let _ = writeln!(list, "- {}", unit_summary(u, ctx));
    }
    list.trim_end().to_owned()
}

/// The left-out cards in the last card's extension.
fn name_left_out(card: &mut Card, left_out: &[Unit<'_>], ctx: &CardContext<'_>) {
    let summaries: Vec<(RuleId, String)> = left_out
        .iter()
        .map(|u| (u.lead().rule, unit_summary(u, ctx)))
        .collect();
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
            finding_summary(f, rule.map_or("", |r| r.summary.as_str()))
        }
    }
}

/// The finding's own summary (dates in clinical form), or the rule's.
fn finding_summary(f: &Finding, rule_summary: &str) -> String {
    clamp_summary(&display::clinical(
        f.summary.as_deref().unwrap_or(rule_summary),
    ))
}

fn unit_card(
    u: &Unit<'_>,
    plan: &UnknownPlan,
    ctx: &CardContext<'_>,
    left_out_note: Option<&str>,
) -> Card {
    let rules: Vec<&RuleDefinition> = u
        .findings
        .iter()
        .filter_map(|f| ctx.knowledge.rule(f.rule.as_str()))
        .collect();
    let mut unknowns = plan.for_unit(u);
    unknowns.note = left_out_note.map(str::to_owned);
    match u.merged {
        Some(g) if u.findings.len() > 1 => {
            merged_card(&MERGED_CARDS[g], &u.findings, &rules, &unknowns, ctx)
        }
        _ => card(u.lead(), rules[0], &unknowns, ctx),
    }
}

/// "Care team: sarcoma tumour board review; clinical trial enrolment".
fn merged_summary(m: &MergedCard, findings: &[&Finding], ctx: &CardContext<'_>) -> String {
    let titles: Vec<String> = findings
        .iter()
        .filter_map(|f| ctx.knowledge.rule(f.rule.as_str()))
        .map(|r| display::lower_first(&r.title))
        .collect();
    clamp_summary(&format!("{}: {}", m.title, titles.join("; ")))
}

/// Where each unknown fact of the response is listed (catalogue §6: once per response). The
/// verdict card lists what holds its verdict back, next to the verdict; the Missing
/// information card lists every other unknown; any other card lists only the unknowns that
/// neither of those lists, and otherwise points to the card that has them.
struct UnknownPlan {
    /// Fact key → the title of the verdict card that lists it.
    verdict: Vec<(&'static str, String)>,
    /// Fact keys on the Missing information card (when the response has one).
    missing: Vec<&'static str>,
    /// Any other unknown: the first card that lists it (its lead rule and title); later
    /// cards point to it (two order checks on one draft needing the same fact).
    first_other: Vec<(&'static str, RuleId, String)>,
}

/// What one card shows of the unknowns.
#[derive(Default)]
struct CardUnknowns<'f> {
    /// Listed here, one line per fact.
    listed: Vec<Vec<&'f UnknownFact>>,
    /// Unknowns this card depends on that another card lists (its words).
    elsewhere: Vec<String>,
    /// The cards left out, named on the last card (§5).
    note: Option<String>,
}

fn is_missing_card(u: &Unit<'_>) -> bool {
    u.merged == Some(MISSING_INFORMATION)
}

fn is_verdict_card(u: &Unit<'_>) -> bool {
    u.findings.iter().any(|f| f.rule.is_verdict())
}

impl UnknownPlan {
    fn of(units: &[Unit<'_>], ctx: &CardContext<'_>) -> Self {
        let mut verdict = Vec::new();
        for u in units.iter().filter(|u| is_verdict_card(u)) {
            let title = ctx
                .knowledge
                .rule(u.lead().rule.as_str())
                .map_or_else(String::new, |r| display::lower_first(&r.title));
            for f in &u.findings {
                for x in &f.unknown {
                    if !verdict.iter().any(|(k, _)| *k == x.fact) {
                        verdict.push((x.fact, title.clone()));
                    }
                }
            }
        }
        let missing = units
            .iter()
            .filter(|u| is_missing_card(u))
            .flat_map(|u| u.findings.iter().flat_map(|f| f.unknown.iter()))
            .map(|x| x.fact)
            .filter(|k| !verdict.iter().any(|(v, _)| v == k))
            .collect::<Vec<_>>();
        let mut first_other: Vec<(&'static str, RuleId, String)> = Vec::new();
        for u in units
            .iter()
            .filter(|u| !is_verdict_card(u) && !is_missing_card(u))
        {
            let title = ctx
                .knowledge
                .rule(u.lead().rule.as_str())
                .map_or_else(String::new, |r| display::lower_first(&r.title));
            for x in u.findings.iter().flat_map(|f| f.unknown.iter()) {
                let placed = verdict.iter().any(|(k, _)| *k == x.fact)
                    || missing.contains(&x.fact)
                    || first_other.iter().any(|(k, _, _)| *k == x.fact);
                if !placed {
                    first_other.push((x.fact, u.lead().rule, title.clone()));
                }
            }
        }
        Self {
            verdict,
            missing,
            first_other,
        }
    }

    fn for_unit<'f>(&self, u: &Unit<'f>) -> CardUnknowns<'f> {
        let mut out = CardUnknowns::default();
        let verdict_card = is_verdict_card(u);
        let missing_card = is_missing_card(u);
        for f in &u.findings {
            for x in &f.unknown {
                let on_verdict = self.verdict.iter().find(|(k, _)| *k == x.fact);
                let elsewhere = if verdict_card {
                    None
                } else if let Some((_, title)) = on_verdict {
                    Some(format!("the {title} card"))
                } else if !missing_card && self.missing.contains(&x.fact) {
                    Some("the Missing information card".to_owned())
                } else if let Some((_, _, title)) = self
                    .first_other
                    .iter()
                    .find(|(k, lead, _)| *k == x.fact && *lead != u.lead().rule)
                    .filter(|_| !missing_card)
                {
                    Some(format!("the {title} card"))
                } else {
                    None
                };
                match elsewhere {
                    Some(card) => {
                        if !out.elsewhere.contains(&card) {
                            out.elsewhere.push(card);
                        }
                    }
                    None => match out.listed.iter_mut().find(|l| l[0].fact == x.fact) {
                        Some(line) => {
                            if !line.iter().any(|y| y.holds_back == x.holds_back) {
                                line.push(x);
                            }
                        }
                        None => out.listed.push(vec![x]),
                    },
                }
            }
        }
        out
    }
}

/// A merged line's statement without the situation it opens with ("Recurrent or metastatic
/// RPS: review …" → "Review …"): every line of the card shares it, and the deciding facts
/// say the patient's own situation.
fn without_situation(summary: &str) -> String {
    match summary.split_once(": ") {
        Some((situation, rest)) if situation.contains("RPS") && !rest.is_empty() => {
            let mut chars = rest.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
        _ => summary.to_owned(),
    }
}

/// The patient part of a card as running text for a merged card's bullet: "**Decided by**"
/// and "**Not known**" lists become "Decided by: a; b.", statements sentences.
fn inline_lists(part: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    // (heading, items) of the list being read; statements before any heading have none.
    let mut list: Option<(String, Vec<String>)> = None;
    // What the unknowns of the current list hold back, each once.
    let mut held: Vec<String> = Vec::new();
    let close = |list: &mut Option<(String, Vec<String>)>,
                 out: &mut Vec<String>,
                 held: &mut Vec<String>| {
        if let Some((h, items)) = list.take() {
            if items.is_empty() {
                out.push(format!("{h}."));
            } else {
                out.push(format!("{h}: {}.", items.join("; ")));
            }
            if !held.is_empty() {
                out.push(format!("Not assessed for now: {}.", held.join("; ")));
                held.clear();
            }
        }
    };
    for line in part.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.strip_prefix("- ") {
            Some(item) => {
                let item = item.trim_end_matches('.').to_owned();
                // An unknown "Label: reason — what it holds back" keeps only "Label (reason)";
                // what they hold back is said once after the list (see `close`).
                if let Some((heading, items)) = list.as_mut()
                    && heading.starts_with("Not known")
                    && let Some((what, holds)) = item.split_once(" — ")
                {
                    let what = match what.split_once(": ") {
                        Some((label, "not recorded")) => label.to_owned(),
                        Some((label, reason)) => format!("{label} ({reason})"),
                        None => what.to_owned(),
                    };
                    items.push(what);
                    for h in holds.split("; ").map(str::trim) {
                        let h = h.trim_end_matches(" not assessed");
                        if !held.iter().any(|x| x == h) {
                            held.push(h.to_owned());
                        }
                    }
                    continue;
                }
                match list.as_mut() {
                    Some((_, items)) => items.push(item),
                    None => out.push(format!("{item}.")),
                }
            }
            None => {
                close(&mut list, &mut out, &mut held);
                // "Not known (not treated as absent)" → "Not known": in running text the
                // list says it, and the card's summary says nothing was assumed.
                let heading = line.replace("**", "");
                let heading = heading.split(" (").next().unwrap_or("").trim().to_owned();
                list = Some((heading, Vec::new()));
            }
        }
    }
    close(&mut list, &mut out, &mut held);
    out.join(" ")
}

/// A merged card (§5): one line per recommendation with its own statement, evidence level and
/// suggestion; the suggestions are independent (`any`). Each fact, unknown and threshold is
/// shown once, in the first line that uses it.
fn merged_card(
    m: &MergedCard,
    findings: &[&Finding],
    rules: &[&RuleDefinition],
    unknowns: &CardUnknowns<'_>,
    ctx: &CardContext<'_>,
) -> Card {
    let lead = rules[0];
    let indicator = findings
        .iter()
        .map(|f| f.indicator)
        .min()
        .unwrap_or(Indicator::Info);
    let mut suggestions = Vec::new();
    let mut lines = Vec::new();
    let mut sections = Vec::new();
    let mut shown = Shown::default();
    for (f, rule) in findings.iter().zip(rules) {
        let line_suggestions: Vec<Suggestion> = f
            .suggestions
            .iter()
            .filter_map(|s| suggestion(s, ctx))
            .collect();
        let summary = finding_summary(f, &rule.summary);
        // One bullet per recommendation (§5): its title, evidence level, statement,
        // suggestion and the patient facts behind it, so four lines fit an info card.
        // The titles are the card's summary; the line starts with the statement.
        // Levels as the consensus writes them ("(IVA)"), and each suggestion after an arrow:
        // four recommendations must fit an info card.
        let mut head = format!("- {}", without_situation(&summary).trim_end_matches('.'));
        if let Some(level) = &rule.evidence {
            let _ = write!(head, " ({level})");
        }
        head.push('.');
        for s in &line_suggestions {
            let _ = write!(head, " → {}.", s.label.trim_end_matches('.'));
        }
        // The card's unknowns are listed once, in the line of the finding that has them.
        let own: Vec<Vec<&UnknownFact>> = unknowns
            .listed
            .iter()
            .filter(|l| f.unknown.iter().any(|x| x.fact == l[0].fact) && shown.unknown(l[0].fact))
            .cloned()
            .collect();
        let patient = inline_lists(&patient_part(f, &own, &mut shown, ctx));
        if !patient.is_empty() {
            head.push(' ');
            head.push_str(&patient);
        }
        head.push_str("\n\n");
        sections.push(Section {
            head,
            recommendation: display::clinical(rule.recommendation.trim()),
            body: String::new(),
            source: source_line(rule),
            short_source: String::new(),
        });
        lines.push(json!({
            "rule": rule.id,
            "summary": summary,
            "evidence": rule.evidence,
            "suggestions": line_suggestions.iter().map(|s| s.label.clone()).collect::<Vec<_>>(),
        }));
        suggestions.extend(line_suggestions);
    }
    let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    let tail = tail_of(unknowns);
    let footer = footer(findings, &format!("Rules {}", ids.join(", ")), ctx);
    let detail = fit(&mut sections, &tail, &footer, limit_of(findings));
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
        // Renamed by the engine after its invocation (`audit::card_uuid`).
        uuid: uuid::Uuid::now_v7().to_string(),
        summary: merged_summary(m, findings, ctx),
        detail,
        indicator,
        source: source(lead),
        selection_behavior: (!suggestions.is_empty()).then_some(SelectionBehavior::Any),
        suggestions,
        override_reasons: override_reasons(indicator, ctx),
        links: vec![rule_link(&lead.id, ctx)],
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

/// The link of every card to its rule's section of `GET /rules`.
fn rule_link(rule_id: &str, ctx: &CardContext<'_>) -> Link {
    Link {
        label: RULE_LINK_LABEL.to_owned(),
        url: format!(
            "{}/rules#{rule_id}",
            ctx.public_base_url.trim_end_matches('/')
        ),
        kind: LinkType::Absolute,
        app_context: None,
    }
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

fn card(
    finding: &Finding,
    rule: &RuleDefinition,
    unknowns: &CardUnknowns<'_>,
    ctx: &CardContext<'_>,
) -> Card {
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
    let mut shown = Shown::default();
    let mut sections = vec![Section {
        head: String::new(),
        recommendation: display::clinical(rule.recommendation.trim()),
        body: patient_part(finding, &unknowns.listed, &mut shown, ctx),
        source: source_line(rule),
        short_source: rule
            .evidence
            .as_ref()
            .map(|level| format!("Evidence {level}."))
            .unwrap_or_default(),
    }];
    let tail = tail_of(unknowns);
    let footer = footer(&[finding], &format!("Rule {}", rule.id), ctx);
    let detail = fit(&mut sections, &tail, &footer, limit_of(&[finding]));
    Card {
        // A uuid of its own; the engine renames every card after its invocation
        // (`audit::card_uuid`), which is how feedback finds the call.
        uuid: uuid::Uuid::now_v7().to_string(),
        summary: finding_summary(finding, &rule.summary),
        detail,
        indicator: finding.indicator,
        source: source(rule),
        suggestions,
        selection_behavior,
        override_reasons: override_reasons(finding.indicator, ctx),
        links: vec![rule_link(&rule.id, ctx)],
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

/// The longest detail a card of these findings may have (§6).
fn limit_of(findings: &[&Finding]) -> usize {
    if findings.iter().any(|f| f.rule.is_verdict()) {
        MAX_VERDICT_DETAIL_CHARS
    } else {
        MAX_INFO_DETAIL_CHARS
    }
}

/// One recommendation of a card: its heading (merged cards), the knowledge base's
/// recommendation text, the patient's part and the source line.
struct Section {
    head: String,
    recommendation: String,
    body: String,
    source: String,
    /// What the source line becomes when the card must be shorter still: the evidence
    /// level alone (the full label is the card's `source.label`, shown by every EHR).
    short_source: String,
}

/// What a card already shows, so each fact, unknown, threshold and sentence appears once.
#[derive(Default)]
struct Shown {
    facts: Vec<&'static str>,
    unknowns: Vec<&'static str>,
    thresholds: Vec<ParameterId>,
    sentences: Vec<String>,
}

impl Shown {
    /// True the first time `fact`'s unknown line is asked for.
    fn unknown(&mut self, fact: &'static str) -> bool {
        if self.unknowns.contains(&fact) {
            false
        } else {
            self.unknowns.push(fact);
            true
        }
    }
}

/// "Source: … — evidence IVA." The level is added only when the label does not already name
/// it (labels cite statements with their levels: "st. 24 (IVA)").
fn source_line(rule: &RuleDefinition) -> String {
    let mut line = format!("Source: {}", rule.source.label.trim_end_matches('.'));
    if let Some(level) = &rule.evidence {
        let named = level
            .split([';', ','])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .all(|l| rule.source.label.contains(l));
        if !named {
            let _ = write!(line, " — evidence {level}");
        }
    }
    line.push('.');
    line
}

/// "From the chart: 6 records · Rule LR-04 · knowledge 2026.12.1".
fn footer(findings: &[&Finding], rules: &str, ctx: &CardContext<'_>) -> String {
    let mut records: Vec<&str> = Vec::new();
    for f in findings {
        for r in &f.records {
            if !records.contains(&r.as_str()) {
                records.push(r);
            }
        }
        for u in &f.decided_by {
            for r in &u.origin.references {
                if !records.contains(&r.as_str()) {
                    records.push(r);
                }
            }
        }
    }
    let mut parts = Vec::with_capacity(3);
    match records.len() {
        0 => {}
        1 => parts.push("From the chart: 1 record".to_owned()),
        n => parts.push(format!("From the chart: {n} records")),
    }
    parts.push(rules.to_owned());
    parts.push(format!("knowledge {}", ctx.knowledge.version));
    parts.join(" · ")
}

/// Points to the cards that list the unknowns this card depends on.
fn elsewhere_line(cards: &[String]) -> String {
    if cards.is_empty() {
        return String::new();
    }
    format!(
        "Other unknowns (not treated as absent): see {}.",
        display::join_and(cards)
    )
}

/// The patient's statements, the deciding facts, the unknowns listed on this card and the
/// thresholds used: each once per card (`shown`). A fact a statement already names ("Criterion
/// met: ECOG 0 …") is annotated there with its date and origin instead of being listed again;
/// a statement that restates an unknown (names it and what it holds back) gives way to the
/// unknown's own line, here or on the card that lists it.
fn patient_part(
    f: &Finding,
    unknowns: &[Vec<&UnknownFact>],
    shown: &mut Shown,
    ctx: &CardContext<'_>,
) -> String {
    let mut d = String::new();
    let restates_unknown = |s: &str| {
        f.unknown.iter().any(|u| {
            (s.contains(u.fact) || s.contains(&display::label(u.fact)))
                && s.contains(&display::clinical(&u.holds_back))
        })
    };
    let mut statements: Vec<String> = Vec::new();
    for s in &f.statements {
        let s = display::clinical(s.trim());
        if s.is_empty() || restates_unknown(&s) || shown.sentences.contains(&s) {
            continue;
        }
        shown.sentences.push(s.clone());
        statements.push(s);
    }
    // One line per fact: several values of one fact share it.
    let mut facts: Vec<Vec<&FactUse>> = Vec::new();
    for u in &f.decided_by {
        if shown.facts.contains(&u.fact) {
            continue;
        }
        match facts.iter_mut().find(|g| g[0].fact == u.fact) {
            Some(g) => {
                if !g.iter().any(|v| v.value == u.value) {
                    g.push(u);
                }
            }
            None => facts.push(vec![u]),
        }
    }
    let mut listed: Vec<String> = Vec::new();
    for g in &facts {
        shown.facts.push(g[0].fact);
        if g.len() == 1 {
            let core = display::fact_line(g[0].fact, &g[0].value);
            let value = display::value(g[0].fact, &g[0].value);
            if annotate(&mut statements, &core, &notes(g[0]), false)
                || (specific_value(&value) && annotate(&mut statements, &value, &notes(g[0]), true))
            {
                continue;
            }
        }
        listed.push(fact_text(g));
    }
    for s in &statements {
        let _ = writeln!(d, "- {s}");
    }
    if !statements.is_empty() {
        d.push('\n');
    }
    if !listed.is_empty() {
        d.push_str("**Decided by**\n\n");
        for line in &listed {
            let _ = writeln!(d, "- {line}");
        }
        d.push('\n');
    }
    if !unknowns.is_empty() {
        d.push_str("**Not known** (not treated as absent)\n\n");
        for line in unknowns {
            // What the unknown holds back, each once; a long list names the first three
            // (the rest are the cards' own business and the Rule and evidence page's).
            let mut holds: Vec<String> = Vec::new();
            for u in line.iter() {
                for h in display::clinical(&u.holds_back).split("; ") {
                    if !h.is_empty() && !holds.iter().any(|x| x == h) {
                        holds.push(h.to_owned());
                    }
                }
            }
            if holds.len() > 3 {
                let more = holds.len() - 3;
                holds.truncate(3);
                let last = holds.pop().unwrap_or_default();
                holds.push(format!("{last} and {more} more"));
            }
            let _ = writeln!(
                d,
                "- {}: {} — {}",
                display::label(line[0].fact),
                display::clinical(&line[0].reason),
                holds.join("; ")
            );
        }
        d.push('\n');
    }
    let text_so_far: String = statements.join(" ");
    let mut thresholds: Vec<String> = Vec::new();
    for p in &f.parameters {
        if shown.thresholds.contains(p) {
            continue;
        }
        shown.thresholds.push(*p);
        let t = display::param(ctx.parameters, *p);
        if !text_so_far.contains(&t) {
            thresholds.push(t);
        }
    }
    if !thresholds.is_empty() {
        let _ = write!(d, "**Thresholds:** {}\n\n", thresholds.join("; "));
    }
    d
}

/// Adds `notes` after the first statement's mention of `core` (ASCII case aside), inside the
/// parenthesis that follows it if there is one, or at the statement's end (`at_end`, for a
/// value named inside a longer phrase); false when no statement names it.
fn annotate(statements: &mut [String], core: &str, notes: &[String], at_end: bool) -> bool {
    let needle = core.to_ascii_lowercase();
    for s in statements.iter_mut() {
        let lower = s.to_ascii_lowercase();
        // A whole-word mention only ("resectable" is not in "unresectable").
        let found = lower.match_indices(&needle).map(|(i, _)| i).find(|&i| {
            let before = lower[..i].chars().next_back();
            let after = lower[i + needle.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        });
        if let Some(at) = found {
            // Notes the statement already gives (the date of a dated list) are not repeated.
            let notes: Vec<&String> = notes.iter().filter(|n| !s.contains(n.as_str())).collect();
            let notes: Vec<String> = notes.into_iter().cloned().collect();
            if !notes.is_empty() {
                let end = at + core.len();
                if at_end {
                    s.push_str(&format!(" ({})", notes.join(", ")));
                } else if s[end..].starts_with(" (") {
                    s.insert_str(end + 2, &format!("{}; ", notes.join(", ")));
                } else {
                    s.insert_str(end, &format!(" ({})", notes.join(", ")));
                }
            }
            return true;
        }
    }
    false
}

/// Whether a fact's value is specific enough to be recognised in a statement ("unifocal",
/// "dedifferentiated liposarcoma"; not "no" or "none recorded").
fn specific_value(value: &str) -> bool {
    value.chars().count() >= 5
        && !matches!(value, "none recorded" | "present" | "absent" | "none found")
        && !value.chars().any(|c| c.is_ascii_digit())
}

/// What the card says next to a fact: its date (unless the value has one) and, for a fact
/// read from free text, where ("from a clinical note").
fn notes(u: &FactUse) -> Vec<String> {
    let mut notes: Vec<String> = Vec::new();
    let value = display::dates_in(&u.value);
    let has_date = value != u.value
        || value.split(' ').any(|w| {
            w.len() == 4
                && (w.starts_with("19") || w.starts_with("20"))
                && w.chars().all(|c| c.is_ascii_digit())
        });
    if let Some(d) = u.origin.date
        && !has_date
    {
        notes.push(display::date(d));
    }
    if u.origin.read_from == Some(ReadFrom::Text) {
        notes.push(display::read_from_note(&u.origin.references).to_owned());
    }
    if let Some(n) = &u.origin.note
        && !n
            .split([' ', ',', '(', ')'])
            .any(|w| is_reference(w) || w.contains('_'))
    {
        notes.push(display::dates_in(n));
    }
    notes
}

/// "ECOG 1 (2 Oct 2026)", "Grade 3 (from the text of a report)", "Histology: dedifferentiated
/// liposarcoma"; several values of one fact on one line.
fn fact_text(uses: &[&FactUse]) -> String {
    let key = uses[0].fact;
    let mut out = String::new();
    for (i, u) in uses.iter().enumerate() {
        if i == 0 {
            out.push_str(&display::fact_line(key, &u.value));
        } else {
            let _ = write!(out, "; {}", display::value(key, &u.value));
        }
        let n = notes(u);
        if !n.is_empty() {
            let _ = write!(out, " ({})", n.join(", "));
        }
    }
    out
}

/// Sentences of a text ("st. 24" and "e.g." do not end one).
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let b = text.as_bytes();
    for (i, _) in text.match_indices(". ") {
        let next_upper = b.get(i + 2).is_some_and(|c| c.is_ascii_uppercase());
        let word = text[start..i].rsplit(' ').next().unwrap_or("");
        let abbreviation = matches!(word, "st" | "e.g" | "i.e" | "vs" | "approx" | "cf");
        if next_upper && !abbreviation {
            out.push(text[start..=i].trim());
            start = i + 2;
        }
    }
    if start < text.len() {
        out.push(text[start..].trim());
    }
    out
}

/// Composes the detail within `max` characters. Only the knowledge base's recommendation
/// texts are shortened (their last sentences first, then whole texts, last section first):
/// the patient's statements, facts, unknowns, thresholds, sources with their evidence levels
/// and the footer always stay. What was cut is behind the card's "Rule and evidence" link.
fn fit(sections: &mut [Section], tail: &str, footer: &str, max: usize) -> String {
    let compose = |sections: &[Section], cut: bool| {
        let mut d = String::new();
        for s in sections {
            d.push_str(&s.head);
            if !s.recommendation.is_empty() {
                d.push_str(&s.recommendation);
                d.push_str("\n\n");
            }
            d.push_str(&s.body);
            if !s.source.is_empty() {
                d.push_str(&s.source);
                d.push_str("\n\n");
            }
        }
        if !tail.is_empty() {
            d.push_str(tail);
            d.push_str("\n\n");
        }
        if cut {
            d.push_str("More under Rule and evidence.\n\n");
        }
        d.push_str(footer);
        d
    };
    let full = compose(sections, false);
    if full.chars().count() <= max {
        return full;
    }
    loop {
        let d = compose(sections, true);
        if d.chars().count() <= max {
            return d;
        }
        // The longest recommendation with more than one sentence loses its last one; when
        // each is down to one, the last section's goes.
        let longest = sections
            .iter_mut()
            .filter(|s| sentences(&s.recommendation).len() > 1)
            .max_by_key(|s| s.recommendation.len());
        match longest {
            Some(s) => {
                let kept = sentences(&s.recommendation);
                s.recommendation = kept[..kept.len() - 1].join(" ");
            }
            None => match sections
                .iter_mut()
                .rev()
                .find(|s| !s.recommendation.is_empty())
            {
                Some(s) => s.recommendation.clear(),
                // A merged card's line keeps its evidence level in its heading; its source
                // label goes behind the link (the card's own source names the first).
                None => match sections
                    .iter_mut()
                    .rev()
                    .find(|s| !s.head.is_empty() && !s.source.is_empty())
                {
                    Some(s) => s.source.clear(),
                    None => match sections.iter_mut().find(|s| {
                        s.head.is_empty() && !s.source.is_empty() && s.source != s.short_source
                    }) {
                        Some(s) => s.source = s.short_source.clone(),
                        // Nothing left to shorten: the essentials alone are longer than `max`.
                        None => return d,
                    },
                },
            },
        }
    }
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
    if !f.records.is_empty() {
        e[format!("{EXTENSION_NAMESPACE}/records")] = json!(f.records);
    }
    e
}

/// The finding's deciding facts (with their references, how and when they were read),
/// unknowns and parameters as extension entries: the machine-readable provenance the prose
/// leaves out.
fn fact_extension(f: &Finding, ctx: &CardContext<'_>) -> Value {
    let decided: Vec<Value> = f
        .decided_by
        .iter()
        .map(|x| {
            let mut v = json!({"fact": x.fact, "value": x.value, "provenance": x.provenance});
            if !x.origin.references.is_empty() {
                v["references"] = json!(x.origin.references);
            }
            if let Some(r) = x.origin.read_from {
                v["readFrom"] = json!(r.label());
            }
            if let Some(d) = x.origin.date {
                v["date"] = json!(d.to_string());
            }
            v
        })
        .collect();
    json!({
        format!("{EXTENSION_NAMESPACE}/decided-by"): decided,
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
    fn a_merged_line_reads_its_lists_as_running_text() {
        let part = "- Criterion met: ECOG 0\n\n**Decided by**\n\n- ECOG 0 (poor performance status \
                    from ECOG 3 — catalogue default)\n- Sarcomatosis: none\n\n**Not known** (not \
                    treated as absent)\n\n- Symptoms: not recorded — active surveillance not \
                    assessed\n- Low-volume disease: lesion count unknown — active surveillance \
                    not assessed; metastasectomy candidacy not assessed\n";
        assert_eq!(
            inline_lists(part),
            "Criterion met: ECOG 0. Decided by: ECOG 0 (poor performance status from ECOG 3 — \
             catalogue default); Sarcomatosis: none. Not known: Symptoms; Low-volume disease \
             (lesion count unknown). Not assessed for now: active surveillance; metastasectomy \
             candidacy."
        );
    }

    #[test]
    fn long_summaries_are_clamped_below_140() {
        let s = "x".repeat(200);
        assert_eq!(clamp_summary(&s).chars().count(), MAX_SUMMARY_CHARS);
        assert_eq!(clamp_summary("short"), "short");
    }
}
