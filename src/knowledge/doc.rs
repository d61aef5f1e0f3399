//! `docs/clinical-rules.md`: the rule book rendered for clinical reviewers.
//!
//! The document is generated from the knowledge base, never edited by hand, so that what
//! reviewers read is what the service runs. A test (`tests/clinical/knowledge.rs`) fails when
//! the committed file differs from the rendering;
//! `RPS_CDS_BLESS=1 cargo test --test clinical knowledge::` rewrites it.

use std::fmt::Write as _;

use super::{Knowledge, RuleDefinition, Section};

/// Renders the clinical rules document (Markdown) for a knowledge base.
pub fn render_clinical_rules_doc(k: &Knowledge) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# RPS clinical rules\n");
    let _ = writeln!(
        out,
        "Knowledge base version **{}**. Generated from `knowledge/` by \
         `rps_cds::knowledge::doc::render_clinical_rules_doc`; do not edit by hand. \
         To change a rule, edit `knowledge/rules.json` (and regenerate the code systems with \
         `python3 knowledge/tools/build_codesystems.py`), then run \
         `RPS_CDS_BLESS=1 cargo test --test clinical knowledge::` to rewrite this file.\n",
        k.version
    );
    let _ = writeln!(
        out,
        "Every card informs a clinician; none blocks an order. A rule whose condition depends \
         on an unknown fact never treats it as false: it stays silent or says what is missing \
         (DATA-01). The rule id is the card's `source.topic.code` \
         (system `{}`).\n",
        super::RULE_SYSTEM
    );

    let _ = writeln!(out, "## Contents\n");
    for (i, section) in Section::ALL.iter().enumerate() {
        let ids: Vec<&str> = rules_of(k, *section).map(|r| r.id.as_str()).collect();
        let _ = writeln!(
            out,
            "{}. {} ({} rules: {})",
            i + 1,
            section.title(),
            ids.len(),
            ids.join(", ")
        );
    }
    let _ = writeln!(out, "{}. Parameters", Section::ALL.len() + 1);
    let _ = writeln!(out, "{}. Override reasons\n", Section::ALL.len() + 2);

    for (i, section) in Section::ALL.iter().enumerate() {
        let _ = writeln!(out, "## {}. {}\n", i + 1, section.title());
        for rule in rules_of(k, *section) {
            render_rule(&mut out, rule);
        }
    }

    let _ = writeln!(out, "## {}. Parameters\n", Section::ALL.len() + 1);
    let _ = writeln!(
        out,
        "Thresholds the sources leave open or state in words only. Each can be overridden in \
         the site configuration (`[parameters]`); a card that relied on one prints the value \
         it used. Sources: TMC n = TARPSWG metastatic RPS consensus, statement n; EXT = a fact \
         from outside the seed documents.\n"
    );
    let _ = writeln!(
        out,
        "| parameter | a card shows | default | unit | meaning | source |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for p in &k.parameter_definitions {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            p.name,
            cell(&p.label.replace("{value}", &p.default.to_string())),
            p.default,
            cell(&p.unit),
            cell(&p.description),
            cell(&p.source)
        );
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "## {}. Override reasons\n", Section::ALL.len() + 2);
    let _ = writeln!(
        out,
        "Offered on warning and critical cards (system `{}`).\n",
        super::OVERRIDE_REASON_SYSTEM
    );
    let _ = writeln!(out, "| code | display |");
    let _ = writeln!(out, "|---|---|");
    for o in &k.override_reasons {
        let _ = writeln!(out, "| `{}` | {} |", o.code, cell(&o.display));
    }
    out
}

fn rules_of(k: &Knowledge, section: Section) -> impl Iterator<Item = &RuleDefinition> {
    k.rules.iter().filter(move |r| r.section == section)
}

fn render_rule(out: &mut String, rule: &RuleDefinition) {
    let hooks: Vec<&str> = rule.hooks.iter().map(|h| h.as_str()).collect();
    let _ = writeln!(out, "### {}: {}\n", rule.id, rule.title);
    let _ = writeln!(out, "- **Hooks:** {}", hooks.join(", "));
    let _ = writeln!(out, "- **Indicator:** {}", rule.indicator.as_str());
    let _ = writeln!(
        out,
        "- **Evidence:** {}",
        rule.evidence.as_deref().unwrap_or("none stated")
    );
    let _ = writeln!(
        out,
        "- **Source:** [{}]({})",
        rule.source.label, rule.source.url
    );
    let _ = writeln!(out, "- **Card summary:** {}\n", rule.summary);
    let _ = writeln!(out, "**When it fires.** {}\n", rule.condition);
    let _ = writeln!(out, "**Recommendation.** {}\n", rule.recommendation);
}

/// Makes text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
