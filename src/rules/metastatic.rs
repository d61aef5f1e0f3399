//! §2.4 Metastatic RPS: MET-01..MET-11 (patient-view; MET-05 also on the order hooks).

use chrono::{Months, NaiveDate};

use super::local_recurrence::truncate_summary;
use super::{
    Ctx, FactUse, Finding, Gaps, RuleId, UnknownFact, create, date_text, fact_use, months_text,
    plain_use, unknown_of,
};
use crate::clinical::{
    DiseaseStatus, DraftOrder, Fact, ImagingKind, MetastasisSite, MetastasisTiming, OrderKind,
    Resectability, Response, SymptomKind,
};
use crate::knowledge::Indicator;
use crate::knowledge::ParameterId;

/// MET-08 looks back this far for a metastasectomy (catalogue §2.4: "within the last 3
/// years").
pub(crate) const MET08_METASTASECTOMY_LOOKBACK_MONTHS: u32 = 36;
/// MET-08: imaging older than this is overdue after metastasectomy (catalogue §2.4: "no
/// imaging in the last 6 months"; TMC 34 every 3–6 months).
pub(crate) const MET08_IMAGING_MAX_AGE_MONTHS: u32 = 6;

pub(crate) fn evaluate(c: &Ctx, gaps: &mut Gaps, out: &mut Vec<Finding>) {
    let metastatic = gaps.need(
        "disease_state",
        &c.picture.disease_state,
        "the metastatic disease rules (MET-01..MET-11) not assessed",
    );
    let metastatic = metastatic.is_some_and(|s| s.is_metastatic());
    if metastatic {
        out.extend(met_01(c, gaps));
        let (m2, defective) = met02_cautious(c, gaps);
        let candidate = !defective && m2.as_ref().is_some_and(|m| m.failed.is_empty());
        // MET-03 (v2, §4.4): every criterion known and none failed, symptoms known absent (no
        // sarcomatosis: MET-02 is not assessed then).
        let all_met = candidate && m2.as_ref().is_some_and(|m| m.criteria_known);
        if let Some(m) = m2 {
            out.push(met_02_finding(m));
        }
        let observation_fits = all_met
            && gaps
                .need(
                    "symptomatic",
                    &c.picture.symptomatic,
                    "a period of observation needs a symptom assessment that found none",
                )
                .is_some_and(|s| !s);
        if observation_fits {
            let mut f = Finding::new(RuleId::Met03, Indicator::Info);
            f.statements.push(
                "Every metastasectomy criterion is known and met: primary completely resected, \
                 all disease resectable, performance status adequate"
                    .to_owned(),
            );
            f.parameters.push(ParameterId::SymptomAssessmentMaxAgeDays);
            f.decided_by
                .extend(fact_use("symptomatic", &c.picture.symptomatic, |_| {
                    "none found at the symptom assessment".to_owned()
                }));
            out.push(f);
        }
        out.extend(met_04(c, gaps));
        if candidate {
            out.extend(met_05_patient_view(c, gaps));
        }
        out.extend(met_06(c, gaps));
        out.extend(met_07(c, gaps));
    }
    // MET-08 and MET-09 follow a metastasectomy whatever the current state.
    out.extend(met_08(c, gaps));
    out.extend(met_09(c, gaps));
    if metastatic {
        out.extend(met_10(c, gaps));
        out.extend(met_11_cautious(c, gaps));
    }
}

/// MET-02, and whether a criterion it found met was read from a record that failed
/// validation. With no criterion failed the assessment is favourable, so it is made on the
/// cautious picture: such criteria are unknown there, and MET-03 does not follow (§4.1).
fn met02_cautious(c: &Ctx, gaps: &mut Gaps) -> (Option<Met02>, bool) {
    let m2 = assess_met02(c, gaps);
    let (Some(m), Some(strict)) = (&m2, c.cautious()) else {
        return (m2, false);
    };
    if !m.failed.is_empty() {
        return (m2, false);
    }
    let mut scratch = Gaps::default();
    let s = assess_met02(&strict, &mut scratch);
    let changed = s
        .as_ref()
        .is_none_or(|s| s.unknown.len() != m.unknown.len());
    if !changed {
        return (m2, false);
    }
    gaps.extend(&scratch.into_items());
    (s, true)
}

/// MET-11 (active surveillance, permissive): only when it also holds on the cautious picture.
fn met_11_cautious(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let f = met_11(c, gaps)?;
    if let Some(strict) = c.cautious() {
        let mut scratch = Gaps::default();
        if met_11(&strict, &mut scratch).is_none() {
            gaps.extend(&scratch.into_items());
            return None;
        }
    }
    Some(f)
}

fn sites_text(s: &std::collections::BTreeSet<MetastasisSite>) -> String {
    let v: Vec<&str> = s.iter().map(|s| s.label()).collect();
    v.join(", ")
}

/// MET-01: synchronous metastases and no systemic therapy line started since they were
/// found: systemic therapy first (§4.4). Silent once a line has started; when that cannot be
/// read it still fires and names what is missing.
fn met_01(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let t = gaps.need(
        "metastasis_timing",
        &c.picture.metastasis_timing,
        "synchronous vs metachronous approach (MET-01, MET-02) not assessed",
    )?;
    if *t != MetastasisTiming::Synchronous {
        return None;
    }
    let started = super::systemic_response::systemic_started_for_metastases(c);
    if started == Some(true) {
        return None;
    }
    let mut f = Finding::new(RuleId::Met01, Indicator::Info);
    f.decided_by.extend(fact_use(
        "metastasis_timing",
        &c.picture.metastasis_timing,
        |_| "synchronous".to_owned(),
    ));
    match started {
        Some(_) => f
            .decided_by
            .extend(super::systemic_response::none_started_use(c)),
        None => f
            .unknown
            .extend(super::systemic_response::started_unknown(c)),
    }
    f.parameters.push(ParameterId::SynchronousWindowDays);
    f.suggestions.push(create(
        "Refer to medical oncology",
        "medical-oncology-referral",
    ));
    Some(f)
}

/// The MET-02 metastasectomy assessment (TMC 24 criteria, TMC 25 biology).
#[derive(Debug, Clone, Default)]
pub(crate) struct Met02 {
    /// Every TMC 24 criterion is known (met or failed); the biology of TMC 25 may still be
    /// unknown. MET-03 needs this (§4.4).
    pub criteria_known: bool,
    pub met: Vec<String>,
    pub failed: Vec<String>,
    pub favourable: Vec<String>,
    pub unfavourable: Vec<String>,
    pub unknown: Vec<UnknownFact>,
    pub decided_by: Vec<FactUse>,
    pub parameters: Vec<ParameterId>,
}

/// MET-02 applies to metachronous metastases without sarcomatosis; `None` otherwise or when
/// timing or sarcomatosis is unknown (recorded in `gaps`).
pub(crate) fn assess_met02(c: &Ctx, gaps: &mut Gaps) -> Option<Met02> {
    let p = c.picture;
    let holds = "metastasectomy candidacy (MET-02) not assessed";
    if *gaps.need("metastasis_timing", &p.metastasis_timing, holds)?
        != MetastasisTiming::Metachronous
    {
        return None;
    }
    if *gaps.need("sarcomatosis", &p.sarcomatosis, holds)? {
        return None;
    }
    let mut m = Met02::default();
    m.decided_by
        .extend(fact_use("metastasis_timing", &p.metastasis_timing, |_| {
            "metachronous".to_owned()
        }));
    m.decided_by
        .extend(fact_use("sarcomatosis", &p.sarcomatosis, |_| {
            "none".to_owned()
        }));

    // TMC 24 (1): the primary (and any local disease) completely resected or resectable. An
    // active local recurrence assessed unresectable fails it (§4.4).
    let local_unresectable = c.local_recurrence() == Some(true)
        && p.resectability.value() == Some(&Resectability::Unresectable);
    if local_unresectable {
        m.failed
            .push("active local recurrence assessed unresectable".to_owned());
    }
    let unknown_before = m.unknown.len();
    match &p.primary_resection {
        Fact::Known { value: None, .. } => m
            .failed
            .push("no resection of the primary is recorded".to_owned()),
        Fact::Known { value: Some(r), .. } => match r.completeness.value() {
            Some(c) if c.is_complete() => {
                m.met
                    .push(format!("primary completely resected ({c:?}, {})", r.date));
                m.decided_by
                    .extend(fact_use("primary_resection", &r.completeness, |c| {
                        format!("{c:?} on {}", r.date)
                    }));
            }
            Some(c) => {
                m.failed
                    .push(format!("primary resection incomplete ({c:?}, {})", r.date));
                m.decided_by
                    .extend(fact_use("primary_resection", &r.completeness, |c| {
                        format!("{c:?} on {}", r.date)
                    }));
            }
            None => m.unknown.extend(unknown_of(
                "primary_resection_completeness",
                &r.completeness,
                "whether the primary was completely resected (TMC 24)",
            )),
        },
        Fact::Unknown(u) => m.unknown.push(UnknownFact {
            fact: "primary_resection",
            reason: u.reason(),
            holds_back: "whether the primary was completely resected (TMC 24)".to_owned(),
        }),
    }
    // TMC 24 (2): all disease resectable or ablatable.
    match p.resectability.value() {
        Some(Resectability::Resectable) => m.met.push("all disease resectable".to_owned()),
        Some(Resectability::Borderline) => m
            .failed
            .push("resectability only borderline: complete resection not assured".to_owned()),
        // Already listed as the local recurrence's failed criterion.
        Some(Resectability::Unresectable) if local_unresectable => {}
        Some(Resectability::Unresectable) => {
            m.failed.push("disease assessed as unresectable".to_owned())
        }
        None => m.unknown.extend(unknown_of(
            "resectability",
            &p.resectability,
            "whether all disease is resectable or ablatable (TMC 24)",
        )),
    }
    m.decided_by
        .extend(fact_use("resectability", &p.resectability, |r| {
            format!("{r:?}").to_lowercase()
        }));
    // TMC 24 (3): adequate performance status.
    match p.ecog.value() {
        Some(&e) => {
            m.parameters.push(ParameterId::PoorEcogMin);
            m.decided_by
                .extend(fact_use("ecog", &p.ecog, |e| e.to_string()));
            let bound = crate::display::param(c.params, ParameterId::PoorEcogMin);
            if e >= c.params.poor_ecog_min {
                m.failed.push(format!("ECOG {e} ({bound})"));
            } else {
                m.met.push(format!("ECOG {e} ({bound})"));
            }
        }
        None => m.unknown.extend(unknown_of(
            "ecog",
            &p.ecog,
            "whether performance status allows surgery (TMC 24)",
        )),
    }
    m.criteria_known = m.unknown.len() == unknown_before;
    // TMC 25: favourable biology, weighed but not a criterion.
    match p.low_volume.value() {
        Some(&low) => {
            m.parameters.push(ParameterId::LowVolumeMaxLesions);
            let n = p
                .metastatic_lesion_count
                .value()
                .map_or_else(String::new, |n| {
                    format!("{n} {}; ", if *n == 1 { "lesion" } else { "lesions" })
                });
            let s = format!(
                "{n}{}",
                crate::display::param(c.params, ParameterId::LowVolumeMaxLesions)
            );
            if low {
                m.favourable.push(format!("low volume ({s})"));
            } else {
                m.unfavourable.push(format!("high volume ({s})"));
            }
            m.decided_by
                .extend(fact_use("low_volume", &p.low_volume, |b| {
                    if *b { "yes" } else { "no" }.to_owned()
                }));
        }
        None => m.unknown.extend(unknown_of(
            "low_volume",
            &p.low_volume,
            "tumour volume (TMC 25) not weighed",
        )),
    }
    match p.dfi_months.value() {
        Some(&d) => {
            m.parameters.push(ParameterId::FavorableDfiMonths);
            m.decided_by
                .extend(fact_use("dfi_months", &p.dfi_months, |d| months_text(*d)));
            let bound = crate::display::param(c.params, ParameterId::FavorableDfiMonths);
            if d >= f64::from(c.params.favorable_dfi_months) {
                m.favourable.push(format!(
                    "disease-free interval {} ({bound})",
                    crate::display::months(d)
                ));
            } else {
                m.unfavourable.push(format!(
                    "disease-free interval {} ({bound})",
                    crate::display::months(d)
                ));
            }
        }
        None => m.unknown.extend(unknown_of(
            "dfi_months",
            &p.dfi_months,
            "disease-free interval (TMC 25) not weighed",
        )),
    }
    let treated = p.systemic_history.value().map(|h| !h.is_empty());
    match (treated, p.favorable_systemic_response.value()) {
        (Some(false), _) => {}
        (_, Some(true)) => {
            m.parameters.push(ParameterId::FavorableStableMonths);
            m.favourable
                .push("favourable response to systemic therapy".to_owned());
        }
        (_, Some(false)) => {
            m.parameters.push(ParameterId::FavorableStableMonths);
            m.unfavourable.push(response_text(c));
        }
        (_, None) => m.unknown.extend(unknown_of(
            "favorable_systemic_response",
            &p.favorable_systemic_response,
            "response to systemic therapy (TMC 25) not weighed",
        )),
    }
    gaps.extend(&m.unknown);
    Some(m)
}

/// "1 lesion", "3 lesions".
fn lesions_text(n: u32) -> String {
    if n == 1 {
        "1 lesion".to_owned()
    } else {
        format!("{n} lesions")
    }
}

/// Why the response to systemic therapy is not favourable, in TMC 25's terms: progression on
/// the last line, or stable disease for a shorter time than `favorable_stable_months`
/// ("stable for 4 of 6 months"; one stable assessment measures no duration yet).
fn response_text(c: &Ctx) -> String {
    let need = c.params.display(ParameterId::FavorableStableMonths);
    let lines = c
        .picture
        .systemic_history
        .value()
        .map(|h| h.lines.as_slice())
        .unwrap_or_default();
    if lines
        .last()
        .is_some_and(|l| l.last_response == Some(Response::Progression))
    {
        return "progression on the last line of systemic therapy".to_owned();
    }
    let stable = lines
        .iter()
        .filter(|l| l.best_response == Some(Response::Stable))
        .filter_map(|l| l.stable_months)
        .fold(None, |a: Option<f64>, m| Some(a.map_or(m, |a| a.max(m))));
    match stable {
        Some(m) if m < 0.05 => format!(
            "stable at a single assessment on systemic therapy (favourable from {need} months \
             of stable disease)"
        ),
        Some(m) => format!(
            "stable for {} of {need} months on systemic therapy",
            months_text(m)
        ),
        None => "progression on systemic therapy".to_owned(),
    }
}

fn met_02_finding(m: Met02) -> Finding {
    let indicator = if m.failed.is_empty() {
        Indicator::Info
    } else {
        Indicator::Warning
    };
    let mut f = Finding::new(RuleId::Met02, indicator);
    for s in &m.met {
        f.statements.push(format!("Criterion met: {s}"));
    }
    for s in &m.failed {
        f.statements.push(format!("Criterion not met: {s}"));
    }
    for s in &m.favourable {
        f.statements.push(format!("Favourable biology: {s}"));
    }
    for s in &m.unfavourable {
        f.statements.push(format!("Unfavourable biology: {s}"));
    }
    for u in &m.unknown {
        f.statements.push(format!(
            "Not known: {} ({}): {}",
            crate::display::label(u.fact),
            u.reason,
            u.holds_back
        ));
    }
    f.summary = Some(truncate_summary(if !m.failed.is_empty() {
        format!("Metastasectomy not supported: {}", m.failed.join("; "))
    } else if !m.unknown.is_empty() {
        format!(
            "Metastasectomy: no criterion failed; {} not known yet",
            crate::display::lower_first(&crate::display::labels(
                &m.unknown.iter().map(|u| u.fact).collect::<Vec<_>>()
            ))
        )
    } else {
        "Metastasectomy candidate: primary resected, disease resectable, ECOG adequate".to_owned()
    }));
    f.decided_by = m.decided_by;
    f.unknown = m.unknown;
    f.parameters = m.parameters;
    f
}

/// MET-04: lung or liver metastases: ablation is an alternative.
fn met_04(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let sites = gaps.need(
        "metastasis_sites",
        &c.picture.metastasis_sites,
        "site-specific local therapy (MET-04, MET-05, MET-06) not assessed",
    )?;
    if !sites.contains(&MetastasisSite::Lung) && !sites.contains(&MetastasisSite::Liver) {
        return None;
    }
    let mut f = Finding::new(RuleId::Met04, Indicator::Info);
    f.decided_by.extend(fact_use(
        "metastasis_sites",
        &c.picture.metastasis_sites,
        sites_text,
    ));
    Some(f)
}

/// Which extrapulmonary staging is missing within `staging_ct_max_age_days`; `None` when a
/// fact is unknown.
fn missing_extrapulmonary(c: &Ctx) -> Option<(bool, bool)> {
    let max = i64::from(c.params.staging_ct_max_age_days);
    let fresh = |d: &Option<NaiveDate>| d.is_some_and(|d| c.days_since(d) <= max);
    let abdomen = !fresh(c.picture.last_ct_abdomen_pelvis.value()?);
    let bone = !fresh(c.picture.last_bone_or_pet.value()?);
    Some((abdomen, bone))
}

fn met_05_finding(c: &Ctx, abdomen: bool, bone: bool) -> Finding {
    let mut f = Finding::new(RuleId::Met05, Indicator::Warning);
    f.parameters.push(ParameterId::StagingCtMaxAgeDays);
    let max = crate::display::param(c.params, ParameterId::StagingCtMaxAgeDays);
    f.decided_by.extend(fact_use(
        "last_ct_abdomen_pelvis",
        &c.picture.last_ct_abdomen_pelvis,
        |d| date_text(*d),
    ));
    f.decided_by.extend(fact_use(
        "last_bone_or_pet",
        &c.picture.last_bone_or_pet,
        |d| date_text(*d),
    ));
    if abdomen {
        f.statements.push(format!(
            "No CT abdomen/pelvis in the current window ({max})"
        ));
        f.suggestions
            .push(create("Order CT abdomen/pelvis", "ct-abdomen-pelvis"));
    }
    if bone {
        f.statements.push(format!(
            "No bone scan or FDG-PET in the current window ({max})"
        ));
        f.suggestions.push(create("Order a bone scan", "bone-scan"));
        f.suggestions.push(create("Order an FDG-PET", "fdg-pet"));
    }
    f
}

/// MET-05 (patient-view): a metastasectomy candidate with lung metastases and incomplete
/// extrapulmonary staging.
fn met_05_patient_view(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let holds = "exclusion of extrapulmonary disease (MET-05) not assessed";
    let sites = gaps.need("metastasis_sites", &c.picture.metastasis_sites, holds)?;
    if !sites.contains(&MetastasisSite::Lung) {
        return None;
    }
    gaps.need(
        "last_ct_abdomen_pelvis",
        &c.picture.last_ct_abdomen_pelvis,
        holds,
    );
    gaps.need("last_bone_or_pet", &c.picture.last_bone_or_pet, holds);
    let (abdomen, bone) = missing_extrapulmonary(c)?;
    if !abdomen && !bone {
        return None;
    }
    let mut f = met_05_finding(c, abdomen, bone);
    f.decided_by.extend(fact_use(
        "metastasis_sites",
        &c.picture.metastasis_sites,
        sites_text,
    ));
    Some(f)
}

/// MET-05 (order-select / order-sign): a pulmonary metastasectomy is ordered without
/// extrapulmonary staging.
pub(crate) fn met_05_orders(c: &Ctx, orders: &[DraftOrder], out: &mut Vec<Finding>) {
    // Staging ordered in the same request counts as done (§4.4: silent when the request
    // already orders a CT abdomen and a bone scan or FDG-PET).
    let ordered = |kinds: &[ImagingKind]| {
        orders
            .iter()
            .any(|o| kinds.iter().any(|k| o.is(OrderKind::Imaging(*k))))
    };
    let abdomen_ordered = ordered(&[
        ImagingKind::CtAbdomenPelvis,
        ImagingKind::CtChestAbdomenPelvis,
    ]);
    let bone_ordered = ordered(&[ImagingKind::BoneScan, ImagingKind::FdgPet]);
    for o in orders {
        if !o.is(OrderKind::PulmonaryMetastasectomy) && !o.is(OrderKind::PulmonaryAblation) {
            continue;
        }
        let Some((abdomen, bone)) = missing_extrapulmonary(c) else {
            continue;
        };
        let (abdomen, bone) = (abdomen && !abdomen_ordered, bone && !bone_ordered);
        if !abdomen && !bone {
            continue;
        }
        let mut f = met_05_finding(c, abdomen, bone);
        f.draft_order = Some(o.reference.clone());
        f.decided_by.push(super::order_checks::order_use(o));
        out.push(f);
    }
}

/// MET-06: liver-predominant, unresectable metastases: embolisation may be considered.
fn met_06(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let p = c.picture;
    let sites = p.metastasis_sites.value()?;
    if !sites.contains(&MetastasisSite::Liver) {
        return None;
    }
    let active: Vec<_> = p.metastases.iter().filter(|m| m.active).collect();
    let liver = active
        .iter()
        .filter(|m| m.site == Some(MetastasisSite::Liver))
        .count();
    // Liver-predominant with limited extrahepatic disease: most recorded active metastases
    // are in the liver.
    if liver == 0 || active.len() - liver > liver {
        return None;
    }
    let r = gaps.need(
        "resectability",
        &p.resectability,
        "liver-directed embolisation (MET-06) not assessed",
    )?;
    if *r != Resectability::Unresectable {
        return None;
    }
    let mut f = Finding::new(RuleId::Met06, Indicator::Info);
    f.statements.push(format!(
        "{liver} of {} active metastases in the liver",
        active.len()
    ));
    f.decided_by.extend(fact_use(
        "metastasis_sites",
        &p.metastasis_sites,
        sites_text,
    ));
    f.decided_by
        .extend(fact_use("resectability", &p.resectability, |_| {
            "unresectable".to_owned()
        }));
    Some(f)
}

/// MET-07: sarcomatosis: palliative surgery only, no HIPEC.
fn met_07(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    if !*gaps.need(
        "sarcomatosis",
        &c.picture.sarcomatosis,
        "sarcomatosis advice (MET-07) not assessed",
    )? {
        return None;
    }
    let mut f = Finding::new(RuleId::Met07, Indicator::Warning);
    f.decided_by
        .extend(fact_use("sarcomatosis", &c.picture.sarcomatosis, |_| {
            "yes".to_owned()
        }));
    Some(f)
}

/// MET-08: surveillance imaging overdue after a metastasectomy.
fn met_08(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let since = c
        .today
        .checked_sub_months(Months::new(MET08_METASTASECTOMY_LOOKBACK_MONTHS))?;
    let last_op = c
        .picture
        .metastasectomies
        .iter()
        .filter(|r| r.date >= since && r.date <= c.today)
        .max_by_key(|r| r.date)?;
    let last = *gaps.need(
        "last_imaging",
        &c.picture.last_imaging,
        "surveillance after metastasectomy (MET-08) not assessed",
    )?;
    let cutoff = c
        .today
        .checked_sub_months(Months::new(MET08_IMAGING_MAX_AGE_MONTHS))?;
    if last.is_some_and(|d| d >= cutoff) {
        return None;
    }
    let mut f = Finding::new(RuleId::Met08, Indicator::Warning);
    f.decided_by.push(plain_use(
        "metastasectomy",
        crate::display::date(last_op.date),
        Some(format!(
            "{}, {}",
            last_op.procedure,
            last_op.read_from.label()
        )),
    ));
    f.decided_by
        .extend(fact_use("last_imaging", &c.picture.last_imaging, |d| {
            date_text(*d)
        }));
    f.summary = Some(format!(
        "Imaging overdue after metastasectomy of {}: last imaging {}",
        last_op.date,
        date_text(last)
    ));
    f.suggestions.push(create(
        "Order CT chest/abdomen/pelvis",
        "ct-chest-abdomen-pelvis",
    ));
    Some(f)
}

/// MET-09: metastases recurred after a metastasectomy.
fn met_09(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let p = c.picture;
    if !*gaps.need(
        "recurrent_metastases_after_metastasectomy",
        &p.recurrent_metastases_after_metastasectomy,
        "advice on repeat metastasectomy (MET-09) not assessed",
    )? {
        return None;
    }
    let mut f = Finding::new(RuleId::Met09, Indicator::Info);
    f.decided_by.extend(fact_use(
        "recurrent_metastases_after_metastasectomy",
        &p.recurrent_metastases_after_metastasectomy,
        |_| "yes".to_owned(),
    ));
    match p.grade.value() {
        Some(3) => f.statements.push("Against: grade 3".to_owned()),
        Some(g) => f.statements.push(format!("For: grade {g}")),
        None => f
            .unknown
            .extend(unknown_of("grade", &p.grade, "tumour grade not weighed")),
    }
    f.decided_by
        .extend(fact_use("grade", &p.grade, |g| g.to_string()));
    match p.low_volume.value() {
        Some(true) => f.statements.push("For: low volume".to_owned()),
        Some(false) => f.statements.push("Against: high volume".to_owned()),
        None => f.unknown.extend(unknown_of(
            "low_volume",
            &p.low_volume,
            "tumour volume not weighed",
        )),
    }
    if p.low_volume.is_known() {
        f.parameters.push(ParameterId::LowVolumeMaxLesions);
    }
    match p.dfi_months.value() {
        Some(&d) => {
            f.parameters.push(ParameterId::FavorableDfiMonths);
            f.decided_by
                .extend(fact_use("dfi_months", &p.dfi_months, |d| months_text(*d)));
            let bound = crate::display::param(c.params, ParameterId::FavorableDfiMonths);
            if d < f64::from(c.params.favorable_dfi_months) {
                f.statements.push(format!(
                    "Against: disease-free interval {} ({bound})",
                    crate::display::months(d)
                ));
            } else {
                f.statements.push(format!(
                    "For: disease-free interval {} ({bound})",
                    crate::display::months(d)
                ));
            }
        }
        None => f.unknown.extend(unknown_of(
            "dfi_months",
            &p.dfi_months,
            "disease-free interval not weighed",
        )),
    }
    let ops: Vec<String> = p
        .metastasectomies
        .iter()
        .map(|r| r.date.to_string())
        .collect();
    f.statements
        .push(format!("Metastasectomies recorded: {}", ops.join(", ")));
    Some(f)
}

/// MET-10: symptomatic metastatic disease: palliative RT.
fn met_10(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let symptoms = gaps.need(
        "symptomatic",
        &c.picture.symptoms,
        "palliative radiotherapy (MET-10) and active surveillance (MET-11) not assessed",
    )?;
    let relevant: Vec<_> = symptoms
        .iter()
        .filter(|s| {
            matches!(
                s.kind,
                SymptomKind::Pain | SymptomKind::Dyspnoea | SymptomKind::CordCompression
            )
        })
        .collect();
    if relevant.is_empty() {
        return None;
    }
    let mut f = Finding::new(RuleId::Met10, Indicator::Info);
    for s in relevant {
        let mut prov = format!("{}, {}", s.source, s.read_from.label());
        if let Some(d) = s.date {
            prov.push_str(&format!(", {d}"));
        }
        f.decided_by.push(plain_use(
            "symptomatic",
            s.kind.label().to_owned(),
            Some(prov),
        ));
    }
    Some(f)
}

/// MET-11 (v2, §4.4): active surveillance for asymptomatic, low-volume metastatic disease that
/// a current disease-status or response record shows not progressing, with no systemic line
/// under way, no sarcomatosis and no synchronous metastases with the primary still in place.
/// (LR-01 and MET-01 silence it in the second pass.) Every condition must be known: this is
/// permissive advice.
fn met_11(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let p = c.picture;
    let holds = "active surveillance (MET-11) not assessed";
    // Any condition known to fail decides, whatever else is unknown.
    let ongoing = systemic_line_ongoing(c);
    if p.symptomatic.is_true()
        || p.low_volume.is_false()
        || p.sarcomatosis.is_true()
        || ongoing.as_ref().is_some_and(|o| o.0)
        || p.latest_disease_status.value() == Some(&DiseaseStatus::Worsened)
        || p.progression_on_systemic.is_true()
    {
        return None;
    }
    // Symptoms must be known absent (a current symptom assessment), not just unrecorded.
    let symptomatic = gaps.need("symptomatic", &p.symptomatic, holds);
    let low = gaps.need("low_volume", &p.low_volume, holds);
    let sarcomatosis = gaps.need("sarcomatosis", &p.sarcomatosis, holds);
    let status = gaps.need("latest_disease_status", &p.latest_disease_status, holds);
    let timing = gaps.need("metastasis_timing", &p.metastasis_timing, holds);
    if ongoing.is_none() {
        // The records of the last line (administrations only) do not say whether it goes on.
        let unknown: Fact<bool> = Fact::Unknown(crate::clinical::Unknown::NotRecorded);
        gaps.need("systemic_line_ongoing", &unknown, holds);
    }
    let (_, line_use) = ongoing?;
    let (Some(_), Some(_), Some(_), Some(_), Some(timing)) =
        (symptomatic, low, sarcomatosis, status, timing)
    else {
        return None;
    };
    // The disease-status record must be current.
    let max = c.params.surveillance_assessment_max_age_days;
    let status_date = p.latest_disease_status.provenance().and_then(|pr| pr.date);
    if status_date.is_none_or(|d| c.days_since(d) > i64::from(max)) {
        let outdated: Fact<DiseaseStatus> = Fact::Unknown(crate::clinical::Unknown::Outdated {
            last: status_date,
            max_age_days: max,
        });
        gaps.need("latest_disease_status", &outdated, holds);
        return None;
    }
    // Synchronous metastases with the primary still in place: systemic therapy first.
    if *timing == MetastasisTiming::Synchronous
        && gaps
            .need("primary_resection", &p.primary_resection, holds)?
            .is_none()
    {
        return None;
    }
    let mut f = Finding::new(RuleId::Met11, Indicator::Info);
    f.parameters.push(ParameterId::LowVolumeMaxLesions);
    f.parameters.push(ParameterId::SymptomAssessmentMaxAgeDays);
    f.parameters
        .push(ParameterId::SurveillanceAssessmentMaxAgeDays);
    f.decided_by
        .extend(fact_use("symptomatic", &p.symptomatic, |_| {
            "none found at the symptom assessment".to_owned()
        }));
    f.decided_by.extend(fact_use(
        "metastatic_lesion_count",
        &p.metastatic_lesion_count,
        |n| lesions_text(*n),
    ));
    f.decided_by
        .extend(fact_use("low_volume", &p.low_volume, |_| "yes".to_owned()));
    f.decided_by
        .extend(fact_use("sarcomatosis", &p.sarcomatosis, |_| {
            "none".to_owned()
        }));
    f.decided_by.extend(fact_use(
        "latest_disease_status",
        &p.latest_disease_status,
        |s| {
            match s {
                DiseaseStatus::Improved => "improved",
                DiseaseStatus::Stable => "stable",
                DiseaseStatus::Worsened => "worsened",
            }
            .to_owned()
        },
    ));
    f.decided_by.extend(line_use);
    Some(f)
}

/// Whether a line of systemic therapy is under way: `Some((false, …))` with no line recorded
/// or the last line known completed; `Some((true, …))` when it is still given; `None` when
/// the history is unknown or the records of the last line do not say (administrations only).
/// The fact use says what decided it.
pub(super) fn systemic_line_ongoing(c: &Ctx) -> Option<(bool, Option<FactUse>)> {
    let h = c.picture.systemic_history.value()?;
    let Some(last) = h.lines.last() else {
        return Some((
            false,
            fact_use("systemic_history", &c.picture.systemic_history, |_| {
                "none recorded".to_owned()
            }),
        ));
    };
    let ongoing = last.ongoing?;
    let agents: Vec<&str> = last.agents.iter().map(|a| a.label()).collect();
    let text = format!(
        "line {} ({}, from {}): {}",
        last.number,
        agents.join(" + "),
        last.start,
        if ongoing { "still given" } else { "completed" }
    );
    Some((
        ongoing,
        fact_use("systemic_history", &c.picture.systemic_history, |_| text),
    ))
}
