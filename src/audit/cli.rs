//! Command-line helpers over the audit store (`rps-cds report|export|purge`); the binary
//! parses the arguments and calls these.

use std::io::Write;

use chrono::{DateTime, Duration, Utc};

use super::{AuditStore, RuleStats, StorageError};

/// Output of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned text for a clinical governance board.
    #[default]
    Table,
    /// JSON: the period and one object per rule id.
    Json,
}

/// How many override reasons the table shows per rule (the JSON has them all).
const TOP_REASONS: usize = 3;

/// Per-rule report over invocations with `from <= time < to`.
pub async fn report(
    store: &AuditStore,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    format: ReportFormat,
    out: &mut (dyn Write + Send),
) -> Result<(), StorageError> {
    let stats = store.rule_stats(from, to).await?;
    match format {
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &report_json(from, to, &stats))?;
            out.write_all(b"\n")?;
        }
        ReportFormat::Table => out.write_all(render_table(from, to, &stats).as_bytes())?,
    }
    out.flush()?;
    Ok(())
}

/// The JSON report: the period and one object per rule with its acceptance rate. The same
/// document is `GET /admin/rules/stats` (schema `RuleStatsReport` in schemas/openapi.json).
pub(crate) fn report_json<'a>(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    stats: &'a [RuleStats],
) -> RuleStatsReport<'a> {
    RuleStatsReport {
        from,
        to,
        rules: stats
            .iter()
            .map(|s| RuleReport {
                stats: s,
                acceptance_rate: s.acceptance_rate(),
            })
            .collect(),
    }
}

/// What [`report_json`] returns: plain data, so serialising it cannot fail.
#[derive(Debug, serde::Serialize)]
pub(crate) struct RuleStatsReport<'a> {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    rules: Vec<RuleReport<'a>>,
}

#[derive(Debug, serde::Serialize)]
struct RuleReport<'a> {
    #[serde(flatten)]
    stats: &'a RuleStats,
    acceptance_rate: Option<f64>,
}

/// JSON Lines export of invocations with `from <= time < to`; returns how many were written.
pub async fn export(
    store: &AuditStore,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    out: &mut (dyn Write + Send),
) -> Result<u64, StorageError> {
    store.export_jsonl(from, to, out).await
}

/// Deletes what is older than `retention_days` days; returns the number of invocations deleted.
pub async fn purge(store: &AuditStore, retention_days: u32) -> Result<u64, StorageError> {
    store
        .purge_older_than(retention_cutoff(Utc::now(), retention_days))
        .await
}

/// `now` minus the retention period (saturating at the earliest representable time).
pub(crate) fn retention_cutoff(now: DateTime<Utc>, retention_days: u32) -> DateTime<Utc> {
    now.checked_sub_signed(Duration::days(i64::from(retention_days)))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn render_table(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    stats: &[RuleStats],
) -> String {
    let bound = |t: Option<DateTime<Utc>>, open: &str| {
        t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| open.to_string())
    };
    let mut s = format!(
        "Rule use and clinician feedback, invocations from {} to {}\n\n",
        bound(from, "the first record"),
        bound(to, "now")
    );
    if stats.is_empty() {
        s.push_str("No rule fired in this period.\n");
        return s;
    }
    let headers = [
        "rule",
        "fired",
        "cards",
        "feedback",
        "accepted",
        "overridden",
        "acceptance",
        "top override reasons",
    ];
    let rows: Vec<[String; 8]> = stats
        .iter()
        .map(|r| {
            let reasons = r
                .override_reasons
                .iter()
                .take(TOP_REASONS)
                .map(|o| format!("{} ×{}", o.label(), o.count))
                .collect::<Vec<_>>()
                .join("; ");
            [
                r.rule_id.clone(),
                r.fired.to_string(),
                r.cards.to_string(),
                r.feedback.to_string(),
                r.accepted.to_string(),
                r.overridden.to_string(),
                r.acceptance_rate()
                    .map(|a| format!("{:.0}%", a * 100.0))
                    .unwrap_or_else(|| "n/a".into()),
                if reasons.is_empty() {
                    "-".into()
                } else {
                    reasons
                },
            ]
        })
        .collect();
    let mut widths = headers.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w - cell.chars().count();
            // Rule id and reasons read left to right; counts line up on the right.
            if i == 0 || i == cells.len() - 1 {
                l.push_str(cell);
                if i != cells.len() - 1 {
                    l.push_str(&" ".repeat(pad));
                }
            } else {
                l.push_str(&" ".repeat(pad));
                l.push_str(cell);
            }
            if i != cells.len() - 1 {
                l.push_str("  ");
            }
        }
        l.push('\n');
        l
    };
    s.push_str(&line(&headers.map(String::from)));
    s.push_str(&line(&widths.map(|w| "-".repeat(w))));
    for row in &rows {
        s.push_str(&line(row));
    }
    let (fired, fb, acc, ovr) = stats.iter().fold((0, 0, 0, 0), |t, r| {
        (
            t.0 + r.fired,
            t.1 + r.feedback,
            t.2 + r.accepted,
            t.3 + r.overridden,
        )
    });
    s.push_str(&format!(
        "\n{} rule(s); {fired} firing(s); {fb} feedback item(s): {acc} accepted, {ovr} overridden.\n\
         acceptance = accepted / (accepted + overridden), over feedback received.\n",
        stats.len()
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::OverrideReasonCount;

    #[test]
    fn table_shows_rates_and_top_reasons() {
        let stats = vec![
            RuleStats {
                rule_id: "MET-01".into(),
                fired: 10,
                cards: 10,
                feedback: 4,
                accepted: 3,
                overridden: 1,
                override_reasons: vec![OverrideReasonCount {
                    code: Some("patient-declined".into()),
                    system: None,
                    display: Some("Patient declined".into()),
                    count: 1,
                }],
            },
            RuleStats {
                rule_id: "LR-02".into(),
                fired: 2,
                cards: 2,
                feedback: 0,
                accepted: 0,
                overridden: 0,
                override_reasons: vec![],
            },
        ];
        let t = render_table(None, None, &stats);
        let met = t.lines().find(|l| l.starts_with("MET-01")).unwrap();
        assert!(met.contains("75%"), "{met}");
        assert!(
            met.contains("Patient declined [patient-declined] ×1"),
            "{met}"
        );
        let lr = t.lines().find(|l| l.starts_with("LR-02")).unwrap();
        assert!(lr.contains("n/a") && lr.trim_end().ends_with('-'), "{lr}");
        assert!(t.contains("12 firing(s); 4 feedback item(s): 3 accepted, 1 overridden"));
    }

    #[test]
    fn cutoff_is_retention_days_back() {
        let now: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
        let c = retention_cutoff(now, 10);
        assert_eq!(c, "2026-02-19T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(retention_cutoff(now, 0), now);
    }
}
