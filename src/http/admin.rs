//! The governance read-out, `GET /admin` (and its numbers as JSON, `GET /admin/rules/stats`): per rule, fired / accepted / overridden over the
//! chosen range, the override rate per week as a server-rendered SVG bar chart, the top
//! override reasons, and the knowledge versions and parameter sets in use over time.
//!
//! The page is one HTML document with an inline style sheet: no scripts, fonts or styles from
//! elsewhere (its Content-Security-Policy says so to the browser). Every value is written
//! through maud, which escapes it: rule titles, reason codes and displays (the latter come from
//! the EHR's feedback) can never become markup.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{ApiError, AppState};
use crate::audit::range::{parse_from, parse_to};
use crate::audit::{Governance, RuleStats, RuleWeek};
use crate::knowledge::parameters::ParameterSource;

/// No script at all; styles only from the page itself; no images or fonts from elsewhere.
pub(crate) const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'";

/// Override reasons listed per rule.
const TOP_REASONS: usize = 3;
/// Weeks drawn in a rule's chart at most (the latest).
const MAX_WEEKS: usize = 52;
const BAR_WIDTH: usize = 6;
const BAR_GAP: usize = 2;
const CHART_HEIGHT: usize = 24;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#1a1a1a}\
table{border-collapse:collapse;margin:1rem 0}\
th,td{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:middle}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
th{background:#f3f3f3}\
.muted{color:#666}\
svg .bar{fill:#c0392b}svg .none{fill:#bbb}\
code{font-size:.9em}";

/// `[from, to)`, either end open.
pub(crate) type Range = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// `from` / `to` of the query string, read as `rps-cds report` reads them: YYYY-MM-DD (a `to`
/// date includes that whole day) or RFC 3339. An unparseable value or an empty range
/// (`from >= to`) is a 400 naming the parameter(s).
pub(crate) fn range(query: &str) -> Result<Range, ApiError> {
    let mut from = None;
    let mut to = None;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "from" => from = Some(parse_from(&value).map_err(|_| bad_date("from", &value))?),
            "to" => to = Some(parse_to(&value).map_err(|_| bad_date("to", &value))?),
            _ => {}
        }
    }
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(ApiError::BadQuery {
            parameters: &["from", "to"],
            message: format!(
                "from ({}) must be before to ({}); to is exclusive, a date as to includes that day",
                f.to_rfc3339(),
                t.to_rfc3339()
            ),
        });
    }
    Ok((from, to))
}

fn bad_date(parameter: &'static str, value: &str) -> ApiError {
    // The value is the client's own; quoted with escapes ({:?}), cut short.
    let shown: String = value.chars().take(40).collect();
    ApiError::BadQuery {
        parameters: match parameter {
            "from" => &["from"],
            _ => &["to"],
        },
        message: format!(
            "query parameter {parameter} is neither YYYY-MM-DD nor an RFC 3339 date-time: {shown:?}"
        ),
    }
}

/// Per-rule governance numbers (fired, feedback, accepted, overridden, override reasons).
/// Authenticated like every other endpoint.
/// `from`/`to` as `rps-cds report` reads them; the body is the report's JSON.
pub(super) async fn rule_stats_handler(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.authenticate(&req).await?;
    let (from, to) = range(req.query_string())?;
    let stats = state.audit.rule_stats(from, to).await.map_err(|e| {
        tracing::error!(error = %e, "rule statistics unavailable");
        ApiError::Unavailable("rule statistics unavailable")
    })?;
    Ok(HttpResponse::Ok().json(crate::audit::cli::report_json(from, to, &stats)))
}

/// The governance page: the same numbers as `/admin/rules/stats` for the same `from`/`to`,
/// per week too, as server-rendered HTML (no scripts, fonts or styles from elsewhere).
pub(super) async fn admin_handler(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.authenticate(&req).await?;
    let (from, to) = range(req.query_string())?;
    let governance = state.audit.governance(from, to).await.map_err(|e| {
        tracing::error!(error = %e, "governance numbers unavailable");
        ApiError::Unavailable("governance numbers unavailable")
    })?;
    let knowledge = &state.engine.knowledge;
    let page = render(&governance, from, to, &|id| {
        knowledge.rule(id).map(|r| r.title.clone())
    });
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .body(page))
}

/// The whole page. `title` gives a rule's catalogue title.
pub(crate) fn render(
    g: &Governance,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    title: &dyn Fn(&str) -> Option<String>,
) -> String {
    let weeks = chart_weeks(g);
    let by_rule: BTreeMap<&str, Vec<&RuleWeek>> =
        g.weeks.iter().fold(BTreeMap::new(), |mut m, w| {
            m.entry(w.rule_id.as_str()).or_default().push(w);
            m
        });
    let bound = |t: Option<DateTime<Utc>>, open: &str| {
        t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| open.to_owned())
    };
    let date_value = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    let page: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "rps-cds · rule use and clinician feedback" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "Rule use and clinician feedback" }
                p.period {
                    "Invocations from " (bound(from, "the first record"))
                    " to " (bound(to, "now"))
                    ". Feedback counts toward the week of the card's invocation; only feedback \
                     checked against its card is counted."
                }
                form method="get" action="/admin" {
                    label { "From " input type="text" name="from" value=(date_value(from)) placeholder="YYYY-MM-DD"; }
                    " "
                    label { "to " input type="text" name="to" value=(date_value(to)) placeholder="YYYY-MM-DD"; }
                    " "
                    button type="submit" { "Show" }
                }
                h2 { "Per rule" }
                @if g.rules.is_empty() {
                    p.muted { "No rule fired in this period." }
                } @else {
                    table.rules {
                        thead { tr {
                            th { "Rule" } th { "Title" } th { "Fired" } th { "Cards" }
                            th { "Feedback" } th { "Accepted" } th { "Overridden" }
                            th { "Override rate" } th { "Override rate per week" }
                            th { "Top override reasons" }
                        } }
                        tbody {
                            @for r in &g.rules {
                                (rule_row(r, title(&r.rule_id), &weeks, by_rule.get(r.rule_id.as_str())))
                            }
                        }
                    }
                    p.muted {
                        "Override rate = overridden / (accepted + overridden). Each bar is one \
                         week (Monday to Sunday, UTC), full height = 100 %; a grey tick is a week \
                         without feedback."
                    }
                }
                h2 { "Knowledge versions and parameter sets in use" }
                @if g.configurations.is_empty() {
                    p.muted { "No invocation in this period." }
                } @else {
                    table.configurations {
                        thead { tr {
                            th { "Week of" } th { "Knowledge version" } th { "Parameter set" }
                            th { "Invocations" }
                        } }
                        tbody {
                            @for c in &g.configurations {
                                tr {
                                    td { (c.week.format("%Y-%m-%d")) }
                                    td { (c.knowledge_version) }
                                    td { @match &c.parameter_set {
                                        Some(d) => code title=(d) { (short(d)) },
                                        None => span.muted { "none recorded" },
                                    } }
                                    td.n { (c.invocations) }
                                }
                            }
                        }
                    }
                }
                @for (digest, parameters) in &g.parameter_sets {
                    h3 { "Parameter set " code { (short(digest)) } }
                    p.muted { "Digest " code { (digest) } }
                    table.parameters {
                        thead { tr { th { "Parameter" } th { "Value" } th { "Source" } } }
                        tbody {
                            @for (name, p) in parameters {
                                tr {
                                    td { code { (name) } }
                                    td.n { (p.value) }
                                    td { (match p.source {
                                        ParameterSource::CatalogueDefault => "catalogue default",
                                        ParameterSource::SiteConfiguration => "site configuration",
                                    }) }
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

fn rule_row(
    r: &RuleStats,
    title: Option<String>,
    weeks: &[NaiveDate],
    rule_weeks: Option<&Vec<&RuleWeek>>,
) -> Markup {
    let decided = r.accepted + r.overridden;
    let rate = (decided > 0).then(|| r.overridden as f64 / decided as f64);
    html! {
        tr data-rule=(r.rule_id) {
            td { code { (r.rule_id) } }
            td { (title.unwrap_or_default()) }
            td.n.fired { (r.fired) }
            td.n.cards { (r.cards) }
            td.n.feedback { (r.feedback) }
            td.n.accepted { (r.accepted) }
            td.n.overridden { (r.overridden) }
            td.n.override-rate { (percent(rate)) }
            td { (sparkline(weeks, rule_weeks.map(Vec::as_slice).unwrap_or(&[]))) }
            td.reasons {
                @if r.override_reasons.is_empty() {
                    span.muted { "–" }
                } @else {
                    ol {
                        @for o in r.override_reasons.iter().take(TOP_REASONS) {
                            li { (o.label()) " ×" (o.count) }
                        }
                    }
                }
            }
        }
    }
}

/// One bar per week of `weeks`: height = that week's override rate, a grey tick when the rule
/// had no feedback that week.
fn sparkline(weeks: &[NaiveDate], rule_weeks: &[&RuleWeek]) -> Markup {
    let width = weeks.len().max(1) * (BAR_WIDTH + BAR_GAP);
    let of_week: BTreeMap<NaiveDate, &RuleWeek> = rule_weeks.iter().map(|w| (w.week, *w)).collect();
    html! {
        svg xmlns="http://www.w3.org/2000/svg" role="img" width=(width) height=(CHART_HEIGHT)
            viewBox=(format!("0 0 {width} {CHART_HEIGHT}")) {
            title { "Override rate per week" }
            @for (i, week) in weeks.iter().enumerate() {
                @let x = i * (BAR_WIDTH + BAR_GAP);
                @match of_week.get(week).and_then(|w| w.override_rate().map(|r| (w, r))) {
                    Some((w, rate)) => {
                        @let h = ((rate * CHART_HEIGHT as f64).round() as usize).max(1);
                        rect.bar x=(x) y=(CHART_HEIGHT - h) width=(BAR_WIDTH) height=(h) {
                            title { "week of " (week.format("%Y-%m-%d")) ": " (w.overridden)
                                " of " (w.accepted + w.overridden) " overridden" }
                        }
                    }
                    None => {
                        rect.none x=(x) y=(CHART_HEIGHT - 1) width=(BAR_WIDTH) height="1" {
                            title { "week of " (week.format("%Y-%m-%d")) ": no feedback" }
                        }
                    }
                }
            }
        }
    }
}

/// Every week from the first to the last that has data, the latest `MAX_WEEKS` of them.
fn chart_weeks(g: &Governance) -> Vec<NaiveDate> {
    let (Some(first), Some(last)) = (
        g.weeks.iter().map(|w| w.week).min(),
        g.weeks.iter().map(|w| w.week).max(),
    ) else {
        return Vec::new();
    };
    let mut weeks = Vec::new();
    let mut w = last;
    while w >= first && weeks.len() < MAX_WEEKS {
        weeks.push(w);
        match w.checked_sub_days(chrono::Days::new(7)) {
            Some(prev) => w = prev,
            None => break,
        }
    }
    weeks.reverse();
    weeks
}

fn percent(rate: Option<f64>) -> String {
    rate.map(|r| format!("{:.0} %", r * 100.0))
        .unwrap_or_else(|| "n/a".to_owned())
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::OverrideReasonCount;

    fn governance() -> Governance {
        let week: NaiveDate = "2026-11-16".parse().unwrap();
        Governance {
            rules: vec![RuleStats {
                rule_id: "MET-01".into(),
                fired: 4,
                cards: 4,
                feedback: 3,
                accepted: 1,
                overridden: 2,
                override_reasons: vec![OverrideReasonCount {
                    code: Some("x\"><script>alert(1)</script>".into()),
                    system: None,
                    display: Some("<b>bold</b> & co".into()),
                    count: 2,
                }],
            }],
            weeks: vec![RuleWeek {
                rule_id: "MET-01".into(),
                week,
                fired: 4,
                accepted: 1,
                overridden: 2,
            }],
            configurations: vec![],
            parameter_sets: BTreeMap::new(),
        }
    }

    #[test]
    fn everything_rendered_is_escaped_and_no_script_is_served() {
        let html = render(&governance(), None, None, &|_| {
            Some("Title <img src=x onerror=alert(1)>".into())
        });
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>bold"), "{html}");
        assert!(html.contains("&lt;b&gt;bold&lt;/b&gt; &amp; co"), "{html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        assert!(html.contains(r#"<td class="n fired">4</td>"#), "{html}");
        assert!(
            html.contains(r#"<td class="n override-rate">67 %</td>"#),
            "{html}"
        );
        // One bar for the one week, 2/3 of the chart's height.
        assert!(
            html.contains(r#"<rect class="bar" x="0" y="8" width="6" height="16">"#),
            "{html}"
        );
    }

    #[test]
    fn range_reads_dates_like_the_cli_and_refuses_garbage_and_reversed_ranges() {
        let (from, to) = range("from=2026-01-01&to=2026-06-30").unwrap();
        assert_eq!(from.unwrap().to_rfc3339(), "2026-01-01T00:00:00+00:00");
        assert_eq!(to.unwrap().to_rfc3339(), "2026-07-01T00:00:00+00:00");
        assert_eq!(range("").unwrap(), (None, None));
        let outcome = |q: &str| range(q).unwrap_err().outcome().unwrap();
        assert_eq!(outcome("from=garbage").issue[0].expression, ["from"]);
        assert_eq!(outcome("to=2026-13-01").issue[0].expression, ["to"]);
        assert_eq!(
            outcome("from=2026-02-01&to=2026-01-01").issue[0].expression,
            ["from", "to"]
        );
    }
}
