//! Checks every rule test applies to the findings it gets.

use rps_cds::knowledge::Hook;
use rps_cds::rules::Finding;

/// Every finding agrees with the knowledge base: the rule runs on this hook, the indicator is
/// the rule's own (the registry declares the rules that vary theirs: MET-02, ORD-04), a built summary is short.
pub fn check_against_knowledge(findings: &[Finding], hook: Hook) {
    static KB: std::sync::OnceLock<rps_cds::knowledge::Knowledge> = std::sync::OnceLock::new();
    let kb = KB.get_or_init(|| rps_cds::knowledge::Knowledge::embedded().expect("knowledge"));
    for f in findings {
        let def = kb
            .rule(f.rule.as_str())
            .unwrap_or_else(|| panic!("{} not in rules.json", f.rule));
        assert!(def.hooks.contains(&hook), "{} fired on {hook}", f.rule);
        if !f.rule.indicator_from_finding() {
            assert_eq!(f.indicator, def.indicator, "{}", f.rule);
        }
        if let Some(s) = &f.summary {
            assert!(s.chars().count() < 140, "{}: {s}", f.rule);
        }
        if f.rule.section() == rps_cds::knowledge::Section::OrderChecks {
            assert!(
                f.draft_order.is_some(),
                "{} without its draft order",
                f.rule
            );
        }
    }
}
