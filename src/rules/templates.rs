//! The order templates (`knowledge/orders.json`) that rule suggestions may name. Start-up checks
//! that each exists in the knowledge base, so a suggestion can never lose its resource.

pub const ORDER_TEMPLATES: &[&str] = &[
    "tumour-board-referral",
    "palliative-care-referral",
    "medical-oncology-referral",
    "sarcoma-surgery-referral",
    "smoking-cessation-referral",
    "ct-chest",
    "ct-abdomen-pelvis",
    "ct-chest-abdomen-pelvis",
    "bone-scan",
    "fdg-pet",
    "core-needle-biopsy",
    "biopsy",
    "pulmonary-function-tests",
    "doxorubicin",
    "dacarbazine",
];

#[cfg(test)]
mod tests {
    use super::ORDER_TEMPLATES;

    /// Every template id a rule passes to `create(…)` / `replace(…)` is in the list that
    /// start-up checks against the knowledge base.
    #[test]
    fn every_template_named_by_a_rule_is_checked_at_start_up() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/rules");
        let mut named = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            for call in ["create(", "replace("] {
                for (i, _) in text.match_indices(call) {
                    let args = &text[i + call.len()..];
                    let Some(end) = args.find(')') else { continue };
                    let args = &args[..end];
                    // The template is the last string literal of the call.
                    let quoted: Vec<&str> = args.split('"').collect();
                    if quoted.len() >= 3 && !args.contains("template") {
                        named.push(quoted[quoted.len() - 2].to_owned());
                    }
                }
            }
        }
        assert!(named.len() >= 10, "found only {named:?}");
        for t in &named {
            assert!(
                ORDER_TEMPLATES.contains(&t.as_str()),
                "template {t:?} is not in ORDER_TEMPLATES"
            );
        }
    }
}
