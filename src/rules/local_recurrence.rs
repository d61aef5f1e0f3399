//! §2.3 / §4.3 Locally recurrent RPS: LR-00..LR-09 (patient-view). LR-00..LR-04 and LR-09
//! are one verdict ([`assess`]), also used by the order check ORD-01 and by MET-12, which
//! replaces LR-01 / LR-02 after a favourable response to systemic therapy (§4.4, §5).

use chrono::Months;

use super::{
    Ctx, FactUse, Finding, Gaps, RuleId, UnknownFact, create, fact_use, months_text, plain_use,
    unknown_of,
};
use crate::clinical::{
    DiseaseState, Fact, Focality, Histology, Resectability, ResectionTarget, Unknown,
};
use crate::knowledge::Indicator;
use crate::knowledge::ParameterId;

/// Share of recurrences that are resectable by recurrence number (first, second, third or
/// later), as UTD reports it (catalogue §2.3: 57 / 33 / 14 %).
pub(crate) const RESECTABLE_PERCENT_BY_RECURRENCE: [u32; 3] = [57, 33, 14];

/// LR-08 looks back this far for a resected recurrence (catalogue §2.3: "within the last 12
/// months").
pub(crate) const LR08_LOOKBACK_MONTHS: u32 = 12;

/// The one verdict of LR-00..LR-04 and LR-09 (precedence LR-01, LR-02, LR-00, LR-09, LR-03,
/// LR-04: catalogue §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Re-resection candidacy cannot be assessed yet.
    Lr00,
    /// Local and distant disease: no resection, systemic therapy.
    Lr01,
    /// Unfavourable factor: no curative-intent re-resection.
    Lr02,
    /// WD-LPS, unifocal, asymptomatic: observation before re-resection.
    Lr03,
    /// Candidate for curative-intent re-resection.
    Lr04,
    /// Borderline resectable: decide at the tumour board.
    Lr09,
}

impl Verdict {
    pub(crate) fn rule(self) -> super::RuleId {
        match self {
            Verdict::Lr00 => super::RuleId::Lr00,
            Verdict::Lr01 => super::RuleId::Lr01,
            Verdict::Lr02 => super::RuleId::Lr02,
            Verdict::Lr03 => super::RuleId::Lr03,
            Verdict::Lr04 => super::RuleId::Lr04,
            Verdict::Lr09 => super::RuleId::Lr09,
        }
    }
}

/// The recurrence assessment with every factor found.
#[derive(Debug, Clone)]
pub(crate) struct LrAssessment {
    pub verdict: Verdict,
    /// Reasons for LR-01 (distant disease).
    pub distant_reasons: Vec<String>,
    /// The facts and parameters the LR-01 reasons rest on (only these are on its card).
    pub distant_uses: Vec<FactUse>,
    pub distant_parameters: Vec<ParameterId>,
    /// Reasons for LR-02 (unfavourable factors that rule out curative re-resection).
    pub against_reasons: Vec<String>,
    /// The facts and parameters the LR-02 reasons rest on (only these are on its card).
    pub against_uses: Vec<FactUse>,
    pub against_parameters: Vec<ParameterId>,
    /// The LR-02 reasons a response to systemic therapy cannot change (rupture or piecemeal
    /// resection, poor performance status): with one of them MET-12 does not replace LR-02.
    pub lasting_reasons: Vec<String>,
    pub favourable: Vec<String>,
    pub unfavourable: Vec<String>,
    /// Other factors worth showing (borderline resectability, recurrence number …).
    pub notes: Vec<String>,
    pub decided_by: Vec<FactUse>,
    /// Every factor that is unknown.
    pub unknown: Vec<UnknownFact>,
    /// The unknowns that keep LR-03/LR-04 from being decided (LR-00).
    pub blocking: Vec<UnknownFact>,
    pub parameters: Vec<ParameterId>,
}

pub(crate) fn evaluate(c: &Ctx, gaps: &mut Gaps, out: &mut Vec<Finding>) {
    if let Some(lr) = assess(c) {
        // DATA-01 names only what could change the verdict (§4.3, §6): after LR-01 nothing
        // can, after LR-02 only the distant staging (it would make the verdict LR-01).
        match lr.verdict {
            Verdict::Lr01 => {}
            Verdict::Lr02 => {
                let distant: Vec<UnknownFact> = lr
                    .blocking
                    .iter()
                    .filter(|u| u.fact == "distant_disease")
                    .cloned()
                    .collect();
                gaps.extend(&distant);
            }
            _ => gaps.extend(&lr.blocking),
        }
        if lr.verdict == Verdict::Lr04 {
            // LR-03 (observation first) needs the histology (for WD-LPS the symptom status
            // is a blocking factor of the assessment itself).
            let holds = "whether observation rather than re-resection fits";
            gaps.need("histology", &c.picture.histology, holds);
        }
        if lr.verdict == Verdict::Lr09 {
            gaps.need(
                "histology",
                &c.picture.histology,
                "whether neoadjuvant therapy or observation fits the borderline resectable recurrence",
            );
        }
        let verdict = lr.verdict;
        out.push(verdict_finding(c, lr));
        out.extend(lr_05_06(c, gaps, verdict));
    } else {
        gaps.need(
            "disease_state",
            &c.picture.disease_state,
            "the assessment of the local recurrence not made",
        );
    }
    out.extend(lr_07(c, gaps));
    out.extend(lr_08(c, gaps));
}

/// The LR-00..LR-04 / LR-09 verdict for a patient with a local recurrence; `None` otherwise
/// (or when the disease state is unknown). A verdict that weighs surgery or observation
/// (LR-03, LR-04, LR-09: each rests on LR-02's factors being known absent) must also be reached
/// without the facts read from records that failed validation; if it is not, the verdict is
/// LR-00, naming those facts (§4.1 asymmetry).
pub(crate) fn assess(c: &Ctx) -> Option<LrAssessment> {
    let a = assess_on(c)?;
    if !matches!(a.verdict, Verdict::Lr03 | Verdict::Lr04 | Verdict::Lr09) {
        return Some(a);
    }
    let Some(strict) = c.cautious() else {
        return Some(a);
    };
    match assess_on(&strict) {
        Some(s) if s.verdict == a.verdict => Some(a),
        Some(mut s) => {
            s.verdict = Verdict::Lr00;
            if s.blocking.is_empty() {
                // The verdict changed without a blocking factor (LR-03 → LR-04): the facts
                // that became unknown are what it would rest on.
                let newly: Vec<UnknownFact> = s
                    .unknown
                    .iter()
                    .filter(|u| a.unknown.iter().all(|k| k.fact != u.fact))
                    .cloned()
                    .collect();
                s.blocking.extend(newly);
            }
            if s.blocking.is_empty() {
                s.blocking.extend(unknown_of(
                    "symptomatic",
                    &strict.picture.symptoms,
                    "observation before re-resection needs the symptom status",
                ));
            }
            s.unknown
                .retain(|u| s.blocking.iter().all(|b| b.fact != u.fact));
            let mut all = s.blocking.clone();
            all.append(&mut s.unknown);
            s.unknown = all;
            Some(s)
        }
        // The local recurrence itself is known only from a defective record.
        None => {
            let mut a = a;
            a.verdict = Verdict::Lr00;
            a.blocking.extend(unknown_of(
                "disease_state",
                &strict.picture.disease_state,
                "whether there is a local recurrence to assess",
            ));
            a.unknown.splice(0..0, a.blocking.clone());
            Some(a)
        }
    }
}

/// Clinical words for a factor of the assessment (LR-00's summary names what is missing).
fn factor_words(fact: &str) -> &str {
    match fact {
        "distant_disease" => "distant staging",
        "focality" => "focality",
        "rupture_or_piecemeal" => "rupture history",
        "ecog" => "performance status",
        "resectability" => "resectability",
        "symptomatic" => "symptom assessment",
        "disease_state" => "recurrence status",
        "histology" => "histology",
        other => other,
    }
}

fn assess_on(c: &Ctx) -> Option<LrAssessment> {
    let p = c.picture;
    let state = c.state()?;
    if !state.has_local_recurrence() {
        return None;
    }
    let mut a = LrAssessment {
        verdict: Verdict::Lr00,
        distant_reasons: Vec::new(),
        distant_uses: Vec::new(),
        distant_parameters: Vec::new(),
        against_reasons: Vec::new(),
        against_uses: Vec::new(),
        against_parameters: Vec::new(),
        lasting_reasons: Vec::new(),
        favourable: Vec::new(),
        unfavourable: Vec::new(),
        notes: Vec::new(),
        decided_by: Vec::new(),
        unknown: Vec::new(),
        blocking: Vec::new(),
        parameters: Vec::new(),
    };
    let state_use = fact_use("disease_state", &p.disease_state, |s| {
        super::referral::state_label(*s).to_owned()
    });
    a.decided_by.extend(state_use.clone());

    // Distant disease (LR-01).
    if state == DiseaseState::LocalAndDistant {
        a.distant_reasons
            .push("distant metastasis present with the local recurrence".to_owned());
        a.distant_uses.extend(state_use.clone());
    }
    if p.synchronous_local_distant.is_true() {
        a.distant_reasons.push(format!(
            "local recurrence and distant metastasis found within {} days of each other",
            c.params.display(ParameterId::SynchronousWindowDays)
        ));
        a.distant_parameters
            .push(ParameterId::SynchronousWindowDays);
        let u = fact_use(
            "synchronous_local_distant",
            &p.synchronous_local_distant,
            |_| "yes".to_owned(),
        );
        a.distant_uses.extend(u.clone());
        a.decided_by.extend(u);
    }
    match p.distant_disease.value() {
        Some(true) if state != DiseaseState::LocalAndDistant => {
            a.distant_reasons
                .push("distant disease recorded".to_owned());
            let u = fact_use("distant_disease", &p.distant_disease, |_| "present".into());
            a.distant_uses.extend(u.clone());
            a.decided_by.extend(u);
        }
        Some(true) => {}
        Some(false) => {
            a.favourable.push(format!(
                "isolated recurrence: no distant disease on a CT chest within {} days",
                c.params.display(ParameterId::StagingCtMaxAgeDays)
            ));
            a.parameters.push(ParameterId::StagingCtMaxAgeDays);
            a.decided_by
                .extend(fact_use("distant_disease", &p.distant_disease, |_| {
                    "none".into()
                }));
        }
        None => {
            if a.distant_reasons.is_empty() {
                let u = unknown_of(
                    "distant_disease",
                    &p.distant_disease,
                    "whether the recurrence is isolated (distant disease rules out re-resection)",
                );
                a.blocking.extend(u);
            }
        }
    }

    // Focality (LR-02).
    let focality_use = fact_use("focality", &p.focality, |f| {
        match f {
            Focality::Unifocal => "unifocal",
            Focality::Multifocal => "multifocal",
        }
        .to_owned()
    });
    match p.focality.value() {
        Some(Focality::Multifocal) => {
            a.against_reasons.push("multifocal recurrence".to_owned());
            a.against_uses.extend(focality_use.clone());
        }
        Some(Focality::Unifocal) => a.favourable.push("unifocal recurrence".to_owned()),
        None => a.blocking.extend(unknown_of(
            "focality",
            &p.focality,
            "a multifocal recurrence rules out curative re-resection",
        )),
    }
    a.decided_by.extend(focality_use);

    // Rupture or piecemeal resection of the primary (LR-02). A rupture recorded at any later
    // resection is shown as well: it seeds the abdomen just the same.
    let rupture_elsewhere: Vec<&str> = p
        .resections
        .iter()
        .filter(|r| {
            !matches!(r.target, ResectionTarget::Primary) && r.rupture_or_piecemeal.is_true()
        })
        .map(|r| r.procedure.as_str())
        .collect();
    let primary_rupture: Fact<bool> = match &p.primary_resection {
        Fact::Known { value: Some(r), .. } => r.rupture_or_piecemeal.clone(),
        Fact::Known { value: None, .. } => Fact::unknown(Unknown::NotRecorded),
        Fact::Unknown(u) => Fact::unknown(u.clone()),
    };
    match primary_rupture.value() {
        Some(true) => {
            let why = "tumour rupture or piecemeal resection at primary surgery".to_owned();
            a.against_reasons.push(why.clone());
            a.lasting_reasons.push(why);
            let u = fact_use("rupture_or_piecemeal", &primary_rupture, |_| {
                "yes".to_owned()
            });
            a.against_uses.extend(u.clone());
            a.decided_by.extend(u);
        }
        Some(false) => {
            a.favourable
                .push("no rupture or piecemeal resection at primary surgery".to_owned());
            a.decided_by
                .extend(fact_use("rupture_or_piecemeal", &primary_rupture, |_| {
                    "no".to_owned()
                }));
        }
        None => {
            if rupture_elsewhere.is_empty() {
                a.blocking.extend(unknown_of(
                    "rupture_or_piecemeal",
                    &primary_rupture,
                    "rupture or piecemeal primary resection rules out curative re-resection",
                ));
            }
        }
    }
    if !rupture_elsewhere.is_empty() {
        let why = "rupture or piecemeal resection recorded at a later operation".to_owned();
        a.against_reasons.push(why.clone());
        a.lasting_reasons.push(why);
        for r in &rupture_elsewhere {
            a.against_uses.push(plain_use(
                "rupture_or_piecemeal",
                "yes, at a later operation".to_owned(),
                Some((*r).to_owned()),
            ));
        }
    }

    // ECOG (LR-02).
    let poor = c.params.poor_ecog_min;
    match p.ecog.value() {
        Some(&e) => {
            a.parameters.push(ParameterId::PoorEcogMin);
            let u = fact_use("ecog", &p.ecog, |e| e.to_string());
            a.decided_by.extend(u.clone());
            let bound = c.params.display(ParameterId::PoorEcogMin);
            if e >= poor {
                let why = format!("ECOG {e} (poor performance status from ECOG {bound})");
                a.against_reasons.push(why.clone());
                a.lasting_reasons.push(why);
                a.against_uses.extend(u);
                a.against_parameters.push(ParameterId::PoorEcogMin);
            } else {
                a.favourable.push(format!(
                    "ECOG {e} (poor performance status only from ECOG {bound})"
                ));
            }
        }
        None => a.blocking.extend(unknown_of(
            "ecog",
            &p.ecog,
            "poor performance status rules out curative re-resection",
        )),
    }

    // Resectability (LR-02; borderline is LR-09).
    let resectability_use = fact_use("resectability", &p.resectability, |r| {
        match r {
            Resectability::Resectable => "resectable",
            Resectability::Borderline => "borderline",
            Resectability::Unresectable => "unresectable",
        }
        .to_owned()
    });
    match p.resectability.value() {
        Some(Resectability::Unresectable) => {
            let mut why = "recurrence assessed as unresectable".to_owned();
            if let Some(cs) = p.critical_structures.value()
                && !cs.is_empty()
            {
                let names: Vec<&str> = cs.iter().map(|s| s.label()).collect();
                why.push_str(&format!(" (involves {})", names.join(", ")));
            }
            a.against_reasons.push(why);
            a.against_uses.extend(resectability_use.clone());
            // What unresectable disease leaves depends on the histology (UTD).
            a.against_uses
                .extend(fact_use("histology", &p.histology, |h| {
                    h.label().to_owned()
                }));
            a.notes.push(match p.histology.value() {
                Some(Histology::WdLiposarcoma) => {
                    "Unresectable well-differentiated liposarcoma: debulking may be considered \
                     to palliate"
                        .to_owned()
                }
                Some(_) => "Unresectable and not a well-differentiated liposarcoma: palliative \
                            systemic therapy, or carbon-ion RT at a specialised centre"
                    .to_owned(),
                None => "Unresectable, histology unknown: debulking is an option only for \
                         well-differentiated liposarcoma"
                    .to_owned(),
            });
        }
        Some(Resectability::Resectable) => a
            .favourable
            .push("recurrence assessed as resectable".to_owned()),
        Some(Resectability::Borderline) => {}
        None => a.blocking.extend(unknown_of(
            "resectability",
            &p.resectability,
            "unresectable disease rules out curative re-resection; borderline disease goes to the tumour board",
        )),
    }
    a.decided_by.extend(resectability_use);

    // Factors shown with the verdict without deciding it: DFI, grade, histology, number.
    let dfi_bound = c.params.favorable_dfi_months;
    match p.dfi_months.value() {
        Some(&m) => {
            a.parameters.push(ParameterId::FavorableDfiMonths);
            a.decided_by
                .extend(fact_use("dfi_months", &p.dfi_months, |m| months_text(*m)));
            let shown = c.params.display(ParameterId::FavorableDfiMonths);
            if m >= f64::from(dfi_bound) {
                a.favourable.push(format!(
                    "disease-free interval {} (≥ {shown} months)",
                    crate::display::months(m)
                ));
            } else {
                a.unfavourable.push(format!(
                    "disease-free interval {} (< {shown} months)",
                    crate::display::months(m)
                ));
            }
        }
        None => a.unknown.extend(unknown_of(
            "dfi_months",
            &p.dfi_months,
            "disease-free interval not weighed",
        )),
    }
    match p.grade.value() {
        Some(1) => a.favourable.push("low grade (FNCLCC 1)".to_owned()),
        Some(3) => a.unfavourable.push("high grade (FNCLCC 3)".to_owned()),
        Some(g) => a.notes.push(format!("FNCLCC grade {g}")),
        None => a
            .unknown
            .extend(unknown_of("grade", &p.grade, "tumour grade not weighed")),
    }
    a.decided_by
        .extend(fact_use("grade", &p.grade, |g| g.to_string()));
    match p.histology.value() {
        Some(Histology::WdLiposarcoma) => a
            .favourable
            .push("well-differentiated liposarcoma".to_owned()),
        Some(_) => {}
        None => a.unknown.extend(unknown_of(
            "histology",
            &p.histology,
            "histology not weighed; observation for a well-differentiated liposarcoma not assessed",
        )),
    }
    a.decided_by
        .extend(fact_use("histology", &p.histology, |h| {
            h.label().to_owned()
        }));
    match p.recurrence_number.value() {
        Some(&n) if n >= 1 => {
            // Only the patient's own figure (§4.3).
            let idx = (n.min(3) - 1) as usize;
            let nth = match n {
                1 => "first".to_owned(),
                2 => "second".to_owned(),
                3 => "third".to_owned(),
                n => format!("{n}th"),
            };
            let of = ["first", "second", "third and later"][idx];
            a.notes.push(format!(
                "{nth} local recurrence: about {} % of {of} recurrences are resectable",
                RESECTABLE_PERCENT_BY_RECURRENCE[idx]
            ));
            a.decided_by
                .extend(fact_use("recurrence_number", &p.recurrence_number, |n| {
                    n.to_string()
                }));
        }
        Some(_) => {}
        None => a.unknown.extend(unknown_of(
            "recurrence_number",
            &p.recurrence_number,
            "the expected resectability by recurrence number not shown",
        )),
    }

    // For a WD-LPS recurrence the symptoms decide between observation (LR-03) and
    // re-resection (LR-04): without a current symptom assessment neither can be given.
    if p.histology.value() == Some(&Histology::WdLiposarcoma) {
        let holds = format!(
            "no symptom assessment in the last {} days: for a well-differentiated liposarcoma it decides between observation and re-resection",
            c.params.display(ParameterId::SymptomAssessmentMaxAgeDays)
        );
        if let Some(u) = unknown_of("symptomatic", &p.symptomatic, &holds) {
            a.blocking.push(u);
            a.parameters.push(ParameterId::SymptomAssessmentMaxAgeDays);
        }
    }

    a.verdict = if !a.distant_reasons.is_empty() {
        Verdict::Lr01
    } else if !a.against_reasons.is_empty() {
        Verdict::Lr02
    } else if !a.blocking.is_empty() {
        Verdict::Lr00
    } else if p.resectability.value() == Some(&Resectability::Borderline) {
        Verdict::Lr09
    } else if p.histology.value() == Some(&Histology::WdLiposarcoma) && p.symptomatic.is_false() {
        Verdict::Lr03
    } else {
        Verdict::Lr04
    };
    if matches!(a.verdict, Verdict::Lr03 | Verdict::Lr04 | Verdict::Lr09) {
        match p.symptomatic.value() {
            Some(true) => {
                let kinds: Vec<&str> = p
                    .symptoms
                    .value()
                    .map(|s| s.iter().map(|s| s.kind.label()).collect())
                    .unwrap_or_default();
                a.decided_by
                    .extend(fact_use("symptomatic", &p.symptomatic, |_| {
                        if kinds.is_empty() {
                            "yes".to_owned()
                        } else {
                            kinds.join(", ")
                        }
                    }));
            }
            Some(false) => a
                .decided_by
                .extend(fact_use("symptomatic", &p.symptomatic, |_| {
                    "none found at the symptom assessment".to_owned()
                })),
            None => {}
        }
    }
    // Every unknown is listed on the verdict; the blocking ones first.
    let mut all = a.blocking.clone();
    all.append(&mut a.unknown);
    a.unknown = all;
    Some(a)
}

/// The histologies for which UTD (TARPSWG) names neoadjuvant therapy before re-resection
/// (LR-07, LR-09).
fn neoadjuvant_histology(h: Histology) -> bool {
    matches!(
        h,
        Histology::DdLiposarcoma
            | Histology::Leiomyosarcoma
            | Histology::Ups
            | Histology::SolitaryFibrousTumor
            | Histology::SynovialSarcoma
    )
}

fn verdict_finding(c: &Ctx, a: LrAssessment) -> Finding {
    let indicator = match a.verdict {
        Verdict::Lr01 | Verdict::Lr02 | Verdict::Lr09 => Indicator::Warning,
        _ => Indicator::Info,
    };
    let mut f = Finding::new(a.verdict.rule(), indicator);
    match a.verdict {
        // LR-01 and LR-02 list only the reasons that decided them, each once, with the facts
        // they rest on (§4.3): no resectability figures, no unknowns that cannot change them.
        Verdict::Lr01 => {
            for r in &a.distant_reasons {
                f.statements.push(format!("Reason: {r}"));
            }
            f.decided_by = a.distant_uses;
            f.parameters = a.distant_parameters;
            f.suggestions.push(create(
                "Refer to medical oncology",
                "medical-oncology-referral",
            ));
        }
        Verdict::Lr02 => {
            for r in &a.against_reasons {
                f.statements.push(format!("Reason: {r}"));
            }
            for s in &a.notes {
                if s.starts_with("Unresectable") {
                    f.statements.push(s.clone());
                }
            }
            f.decided_by = a.against_uses;
            f.parameters = a.against_parameters;
            // Distant staging would turn the verdict into LR-01 (systemic therapy).
            f.unknown = a
                .unknown
                .into_iter()
                .filter(|u| u.fact == "distant_disease")
                .collect();
        }
        _ => {
            for s in &a.favourable {
                f.statements.push(format!("Favourable: {s}"));
            }
            for s in &a.unfavourable {
                f.statements.push(format!("Unfavourable: {s}"));
            }
            for s in &a.notes {
                f.statements.push(s.clone());
            }
            if a.verdict == Verdict::Lr09 {
                let (summary, line) = lr09_text(c);
                f.summary = Some(summary);
                f.statements.extend(line);
            }
            if a.verdict == Verdict::Lr00 {
                let mut names: Vec<&str> =
                    a.blocking.iter().map(|u| factor_words(u.fact)).collect();
                names.dedup();
                f.summary = Some(truncate_summary(format!(
                    "Re-resection candidacy not yet assessable: {} unknown",
                    names.join(", ")
                )));
            }
            match a.verdict {
                Verdict::Lr03 => f.suggestions.push(create(
                    "Order re-imaging CT abdomen/pelvis",
                    "ct-abdomen-pelvis",
                )),
                Verdict::Lr04 => f.suggestions.push(create(
                    "Refer to sarcoma surgery",
                    "sarcoma-surgery-referral",
                )),
                Verdict::Lr09 => f.suggestions.push(create(
                    "Refer to the sarcoma tumour board",
                    "tumour-board-referral",
                )),
                _ => {}
            }
            f.decided_by = a.decided_by;
            f.unknown = a.unknown;
            f.parameters = a.parameters;
        }
    }
    f.parameters.sort();
    f.parameters.dedup();
    f
}

/// LR-09's summary and its line for the patient's histology (§4.3: neoadjuvant therapy first
/// for LMS, DD-LPS, UPS, SFT and synovial sarcoma; observation an option for an asymptomatic
/// WD-LPS).
fn lr09_text(c: &Ctx) -> (String, Option<String>) {
    let p = c.picture;
    match p.histology.value() {
        Some(&h) if neoadjuvant_histology(h) => (
            truncate_summary(format!(
                "Borderline resectable {} recurrence: decide at the tumour board; consider neoadjuvant therapy first.",
                h.label()
            )),
            Some(format!(
                "For {}, neoadjuvant therapy before any re-resection is worth considering, ideally in a clinical trial",
                h.label()
            )),
        ),
        Some(Histology::WdLiposarcoma) if p.symptomatic.is_false() => (
            "Borderline resectable, asymptomatic well-differentiated liposarcoma recurrence: tumour board; observation is an option."
                .to_owned(),
            Some(
                "Asymptomatic well-differentiated liposarcoma: observation with re-imaging is an option"
                    .to_owned(),
            ),
        ),
        _ => (
            "Borderline resectable local recurrence: benefit of surgery likely limited; decide at the sarcoma tumour board."
                .to_owned(),
            None,
        ),
    }
}

/// Keeps a built summary under 140 characters.
pub(crate) fn truncate_summary(s: String) -> String {
    if s.chars().count() < 140 {
        return s;
    }
    let cut: String = s.chars().take(136).collect();
    format!("{cut}…")
}

/// LR-05 / LR-06: pre-operative treatment when re-resection is considered (LR-04) or weighed
/// at the tumour board (LR-09); not with LR-03, where observation comes first (§4.3).
fn lr_05_06(c: &Ctx, gaps: &mut Gaps, verdict: Verdict) -> Option<Finding> {
    if !matches!(verdict, Verdict::Lr04 | Verdict::Lr09) {
        return None;
    }
    let courses = gaps.need(
        "prior_rt",
        &c.picture.radiotherapy,
        "choice of pre-operative treatment not assessed",
    )?;
    let mut f = if courses.is_empty() {
        Finding::new(RuleId::Lr05, Indicator::Info)
    } else {
        Finding::new(RuleId::Lr06, Indicator::Info)
    };
    f.decided_by
        .extend(fact_use("prior_rt", &c.picture.radiotherapy, |cs| {
            if cs.is_empty() {
                "none recorded".to_owned()
            } else {
                let d: Vec<String> = cs.iter().map(|rt| crate::display::date(rt.date)).collect();
                d.join(", ")
            }
        }));
    f.statements.push(
        match verdict {
            Verdict::Lr09 => {
                "Borderline resectable recurrence: re-resection is weighed at the tumour board"
            }
            _ => "Re-resection is being considered",
        }
        .to_owned(),
    );
    if f.rule == RuleId::Lr06 {
        // UTD: response to chemotherapy alone by histology.
        let line = match c.picture.histology.value() {
            Some(
                h @ (Histology::DdLiposarcoma
                | Histology::Leiomyosarcoma
                | Histology::SynovialSarcoma),
            ) => Some(format!(
                "{}: among the histologies most likely to respond to chemotherapy alone",
                h.label()
            )),
            Some(h @ (Histology::Ups | Histology::SolitaryFibrousTumor)) => Some(format!(
                "{}: downsizing with chemotherapy has been seen (TARPSWG, as summarised in UTD)",
                h.label()
            )),
            Some(Histology::WdLiposarcoma) => Some(
                "Well-differentiated liposarcoma: chemotherapy alone has little role".to_owned(),
            ),
            _ => None,
        };
        f.statements.extend(line);
        f.decided_by
            .extend(fact_use("histology", &c.picture.histology, |h| {
                h.label().to_owned()
            }));
    }
    Some(f)
}

/// LR-07: high-grade, short-DFI recurrence of a chemo-sensitive histology.
fn lr_07(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let p = c.picture;
    if !c.local_recurrence()? {
        return None;
    }
    let holds = "neoadjuvant systemic therapy for the recurrence not assessed";
    let h = *gaps.need("histology", &p.histology, holds)?;
    if !neoadjuvant_histology(h) {
        return None;
    }
    // Either known failing condition silences the rule whatever the other is.
    if p.grade.value().is_some_and(|g| *g != 3)
        || p.dfi_months
            .value()
            .is_some_and(|m| *m >= f64::from(c.params.favorable_dfi_months))
    {
        return None;
    }
    let grade = *gaps.need("grade", &p.grade, holds)?;
    let dfi = *gaps.need("dfi_months", &p.dfi_months, holds)?;
    let mut f = Finding::new(RuleId::Lr07, Indicator::Info);
    f.decided_by
        .extend(fact_use("histology", &p.histology, |h| {
            h.label().to_owned()
        }));
    f.decided_by
        .extend(fact_use("grade", &p.grade, |g| g.to_string()));
    f.decided_by
        .extend(fact_use("dfi_months", &p.dfi_months, |m| months_text(*m)));
    f.parameters.push(ParameterId::FavorableDfiMonths);
    f.statements.push(format!(
        "Grade {grade}, disease-free interval {} (< {} months)",
        crate::display::months(dfi),
        c.params.display(ParameterId::FavorableDfiMonths)
    ));
    Some(f)
}

/// LR-08: a recurrence completely resected within the last 12 months.
fn lr_08(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let since = c
        .today
        .checked_sub_months(Months::new(LR08_LOOKBACK_MONTHS))?;
    let recent = c
        .picture
        .resections
        .iter()
        .filter(|r| matches!(r.target, ResectionTarget::Recurrence))
        .filter(|r| r.date >= since && r.date <= c.today)
        .max_by_key(|r| r.date)?;
    // Follow-up advice after a complete resection is moot once a new local recurrence has
    // been found after it: the new episode's verdict carries the plan.
    if c.picture
        .recurrence_episodes
        .iter()
        .any(|e| e.detected > recent.date)
    {
        return None;
    }
    let complete = *gaps.need(
        "completeness",
        &recent.completeness,
        "adjuvant therapy advice after resection of the recurrence not assessed",
    )?;
    if !complete.is_complete() {
        return None;
    }
    let mut f = Finding::new(RuleId::Lr08, Indicator::Info);
    f.decided_by.push(plain_use(
        "recurrence_resection",
        crate::display::date(recent.date),
        Some(format!(
            "{}, {}",
            recent.procedure,
            recent.read_from.label()
        )),
    ));
    f.decided_by
        .extend(fact_use("completeness", &recent.completeness, |c| {
            format!("{c:?}")
        }));
    Some(f)
}
