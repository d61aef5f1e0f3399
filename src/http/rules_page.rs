//! `GET /rules`: the knowledge base as one plain, accessible HTML page, the target of every
//! card's "Rule and evidence" link (`{public_base_url}/rules#RULE-ID`). Per rule, under an
//! anchor with its id: when it fires, its texts, its source with the evidence level, and the
//! thresholds it uses with the values in force (site configuration shows). Then every
//! parameter with its value, origin and source.
//!
//! Public, like `/openapi.json`: a clinician follows the link from the EHR in a browser, which
//! carries no CDS client token, and the page holds no patient data, only the reviewed
//! knowledge base this build ships. No scripts; the style sheet is inline (same
//! Content-Security-Policy as `/admin`); every value is escaped by maud.

use actix_web::{HttpResponse, web};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::AppState;
use crate::display;
use crate::knowledge::{Knowledge, ParameterId, Parameters, RuleDefinition, Section};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:52rem;\
color:#1a1a1a;line-height:1.45}\
section.rule{border-top:1px solid #ccc;padding-top:.5rem;margin-top:1.5rem}\
section.rule:target{background:#fff8e1}\
dt{font-weight:600;margin-top:.6rem}dd{margin-left:1.2rem}\
table{border-collapse:collapse}th,td{border-bottom:1px solid #ddd;padding:.3rem .6rem;\
text-align:left;vertical-align:top}th{background:#f3f3f3}\
nav ul{columns:3}";

/// The knowledge base as HTML, the target of each card's "Rule and evidence" link. Public: it
/// holds no patient data, and a clinician opens it from the EHR in a browser without a CDS
/// client token.
pub(super) async fn rules_handler(state: web::Data<AppState>) -> HttpResponse {
    let page = render(&state.engine.knowledge, &state.engine.parameters);
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            super::admin::CONTENT_SECURITY_POLICY,
        ))
        .body(page)
}

/// The whole page.
pub(crate) fn render(knowledge: &Knowledge, params: &Parameters) -> String {
    let page: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "rps-cds · rules and evidence · knowledge " (knowledge.version) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "Rules and evidence" }
                    p {
                        "The recommendations of the retroperitoneal sarcoma decision support, \
                         knowledge base " (knowledge.version) ". Thresholds show the values \
                         this service uses now."
                    }
                }
                nav aria-label="Rules" {
                    h2 { "Rules" }
                    ul {
                        @for r in &knowledge.rules {
                            li { a href={ "#" (r.id) } { (r.id) ": " (r.title) } }
                        }
                    }
                }
                main {
                    @for section in Section::ALL {
                        @let rules: Vec<&RuleDefinition> = knowledge.rules.iter().filter(|r| r.section == section).collect();
                        @if !rules.is_empty() {
                            h2 { (section.title()) }
                            @for r in rules {
                                (rule(r, params))
                            }
                        }
                    }
                    section aria-labelledby="thresholds" {
                        h2 id="thresholds" { "Thresholds" }
                        table {
                            thead { tr { th scope="col" { "Threshold" } th scope="col" { "Value in force" } th scope="col" { "Where the default comes from" } } }
                            tbody {
                                @for id in ParameterId::ALL {
                                    @let def = knowledge.parameter_definitions.iter().find(|d| d.name == id.name());
                                    tr id={ "parameter-" (id.name()) } {
                                        td { (params.threshold_text(id)) @if let Some(d) = def { br; small { (d.description) } } }
                                        td { (origin(params, id)) }
                                        td { @if let Some(d) = def { (d.source) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page.into_string()
}

fn origin(params: &Parameters, id: ParameterId) -> &'static str {
    if params.is_site_setting(id) {
        "site setting"
    } else {
        "catalogue default"
    }
}

fn rule(r: &RuleDefinition, params: &Parameters) -> Markup {
    let used: Vec<ParameterId> = parameters_named(&r.condition);
    let hooks: Vec<&str> = r.hooks.iter().map(|h| h.as_str()).collect();
    html! {
        section.rule id=(r.id) aria-labelledby={ (r.id) "-title" } {
            h3 id={ (r.id) "-title" } { (r.id) ": " (r.title) }
            dl {
                dt { "When it fires" }
                dd { (clinical_words(&r.condition, params)) }
                dt { "Card" }
                dd { (r.indicator.as_str()) " · " (hooks.join(", ")) }
                dt { "Summary" }
                dd { (r.summary) }
                dt { "Recommendation" }
                dd { (r.recommendation) }
                dt { "Source" }
                dd {
                    @if r.source.url.starts_with("https://") {
                        a href=(r.source.url) { (r.source.label) }
                    } @else {
                        (r.source.label)
                    }
                }
                dt { "Evidence level" }
                dd { (r.evidence.as_deref().unwrap_or("none stated (a data-quality or scope check)")) }
                @if !used.is_empty() {
                    dt { "Thresholds" }
                    dd { ul { @for p in used { li { (display::param(params, p)) } } } }
                }
            }
        }
    }
}

/// The parameters a rule's condition names.
fn parameters_named(condition: &str) -> Vec<ParameterId> {
    ParameterId::ALL
        .into_iter()
        .filter(|p| condition.contains(p.name()))
        .collect()
}

/// The condition in clinical words: parameter keys become their thresholds with the value in
/// force, fact keys their labels, other snake_case values plain words.
pub(crate) fn clinical_words(text: &str, params: &Parameters) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let w = word.as_str();
        if let Some(p) = ParameterId::from_name(w) {
            out.push_str(&display::param_short(params, p));
        } else if display::fact_label(w).is_some() {
            out.push_str(&display::lower_first(&display::label(w)));
        } else {
            out.push_str(&w.replace('_', " "));
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_read_without_keys() {
        let p = Parameters::default();
        let s = clinical_words(
            "disease_state is local_recurrence and ecog >= poor_ecog_min.",
            &p,
        );
        assert_eq!(
            s,
            "disease is local recurrence and ECOG >= poor performance status from ECOG 3."
        );
    }

    #[test]
    fn the_page_has_an_anchor_per_rule_and_no_script() {
        let k = Knowledge::embedded().unwrap();
        let page = render(&k, &Parameters::default());
        for r in &k.rules {
            assert!(page.contains(&format!("id=\"{}\"", r.id)), "{}", r.id);
        }
        assert!(!page.contains("<script"));
        assert!(page.contains("poor performance status from ECOG 3 — catalogue default"));
    }
}
