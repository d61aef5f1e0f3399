// A terminology for tests, built from inline FHIR `ValueSet` JSON with the ids and codes of
// notes/valuesets.md. It stands in for `Knowledge::embedded()` until the reviewed value sets
// land in `knowledge/valuesets/`; tests then switch to the embedded knowledge base.
//
// Also `include!`d by the unit tests of `src/clinical` (with `use crate as rps_cds;`), so it
// has no inner attributes and uses only the library's public API.

use rps_cds::knowledge::terminology::TEXT_MATCH_EXTENSION;
use rps_cds::knowledge::{Terminology, ValueSet};
use serde_json::{Value, json};

pub const SCT: &str = "http://snomed.info/sct";
pub const LOINC: &str = "http://loinc.org";
pub const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
pub const ICD10: &str = "http://hl7.org/fhir/sid/icd-10";
pub const ICDO3: &str = "http://terminology.hl7.org/CodeSystem/icd-o-3";
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub const NCIT: &str = "http://ncit.nci.nih.gov";
pub const ORPHA: &str = "http://www.orpha.net";
pub const RPS: &str = "https://fhir.rps-cds.org/CodeSystem/rps-observation";

/// (value set id, [(system, [codes])], [text fallbacks])
type Def = (
    &'static str,
    &'static [(&'static str, &'static [&'static str])],
    &'static [&'static str],
);

const DEFS: &[Def] = &[
    (
        "rps-diagnosis",
        &[
            (ICD10CM, &["C48.0"]),
            (ICD10, &["C48.0"]),
            (ICDO3, &["C48.0"]),
        ],
        &[],
    ),
    (
        "sarcoma-diagnosis",
        &[(SCT, &["424952003", "1187396000"])],
        &[],
    ),
    (
        "site-retroperitoneum",
        &[(SCT, &["82849001"])],
        &["retroperitone"],
    ),
    (
        "histology-wd-liposarcoma",
        &[(ICDO3, &["8851/3", "8850/1"])],
        &[
            "well differentiated liposarcoma",
            "well-differentiated liposarcoma",
            "atypical lipomatous",
        ],
    ),
    (
        "histology-dd-liposarcoma",
        &[(ICDO3, &["8858/3"])],
        &["dedifferentiated liposarcoma"],
    ),
    (
        "histology-liposarcoma-other",
        &[(ICDO3, &["8850/3", "8852/3", "8853/3", "8854/3"])],
        &[
            "myxoid liposarcoma",
            "round cell liposarcoma",
            "pleomorphic liposarcoma",
        ],
    ),
    (
        "histology-liposarcoma-unspecified",
        &[(SCT, &["1162815008"])],
        &["liposarcoma"],
    ),
    (
        "histology-leiomyosarcoma",
        &[(ICDO3, &["8890/3"]), (SCT, &["1163022006"])],
        &["leiomyosarcoma"],
    ),
    (
        "histology-solitary-fibrous-tumor",
        &[(ICDO3, &["8815/3", "8815/1"]), (SCT, &["128736003"])],
        &["solitary fibrous tumor", "solitary fibrous tumour"],
    ),
    (
        "histology-mpnst",
        &[(ICDO3, &["9540/3"]), (SCT, &["19897006"])],
        &["mpnst", "malignant peripheral nerve sheath"],
    ),
    (
        "histology-synovial-sarcoma",
        &[
            (ICDO3, &["9040/3", "9041/3", "9043/3"]),
            (SCT, &["63211008"]),
        ],
        &["synovial sarcoma"],
    ),
    (
        "histology-ups",
        &[(ICDO3, &["8802/3", "8805/3", "8830/3"])],
        &["undifferentiated pleomorphic sarcoma"],
    ),
    ("histology-sarcoma-nos", &[(ICDO3, &["8800/3"])], &[]),
    (
        "histology-gist",
        &[(ICDO3, &["8936/3"]), (SCT, &["1187383001"])],
        &["gastrointestinal stromal"],
    ),
    (
        "histology-desmoid",
        &[(ICDO3, &["8821/1", "8822/1"]), (SCT, &["47284001"])],
        &["desmoid"],
    ),
    (
        "histology-ewing",
        &[(ICDO3, &["9364/3"]), (SCT, &["76909002"])],
        &["ewing"],
    ),
    (
        "histology-rhabdomyosarcoma",
        &[
            (ICDO3, &["8900/3", "8901/3", "8910/3", "8912/3", "8920/3"]),
            (SCT, &["30924005"]),
        ],
        &["rhabdomyosarcoma"],
    ),
    (
        "histology-dsrct",
        &[(ICDO3, &["8806/3"])],
        &["desmoplastic small round cell"],
    ),
    (
        "histology-clear-cell-sarcoma",
        &[(ICDO3, &["9044/3"])],
        &["clear cell sarcoma"],
    ),
    (
        "histology-pecoma",
        &[(ICDO3, &["8714/3"])],
        &["pecoma", "perivascular epithelioid"],
    ),
    (
        "histology-imt",
        &[(ICDO3, &["8825/1"])],
        &["inflammatory myofibroblastic"],
    ),
    (
        "histology-carcinosarcoma",
        &[(ICDO3, &["8980/3"])],
        &["carcinosarcoma"],
    ),
    (
        "histology-sarcomatoid-carcinoma",
        &[],
        &["sarcomatoid carcinoma"],
    ),
    ("histology-teratoma-derived", &[], &["teratoma"]),
    (
        "histology-visceral-or-gynecologic",
        &[],
        &["uterine leiomyosarcoma", "visceral sarcoma"],
    ),
    ("histology-benign", &[], &["benign", "lipoma"]),
    ("histology-observation", &[(LOINC, &["31206-6"])], &[]),
    (
        "grade-observation",
        &[(NCIT, &["C18000"]), (LOINC, &["33732-9", "21858-6"])],
        &[],
    ),
    (
        "grade-low",
        &[(SCT, &["1155708003"])],
        &["grade 1", "g1", "low grade"],
    ),
    (
        "grade-intermediate",
        &[(SCT, &["1286893008"])],
        &["grade 2", "g2", "intermediate grade"],
    ),
    (
        "grade-high",
        &[(SCT, &["1155707008"])],
        &["grade 3", "g3", "high grade"],
    ),
    ("tumour-size-observation", &[(LOINC, &["21889-1"])], &[]),
    (
        "resection-procedure",
        &[(SCT, &["370611004", "65854006", "62141006", "387713003"])],
        &["resection", "excision"],
    ),
    ("residual-tumour-observation", &[(LOINC, &["84892-9"])], &[]),
    ("residual-r0", &[], &["r0"]),
    ("residual-r1", &[], &["r1"]),
    ("residual-r2", &[], &["r2"]),
    (
        "radiotherapy-procedure",
        &[(SCT, &["1217123003", "108290001"])],
        &["radiotherapy", "radiation"],
    ),
    (
        "iort",
        &[(SCT, &["168524008"])],
        &[
            "iort",
            "intraoperative radiotherapy",
            "intra-operative radiotherapy",
        ],
    ),
    (
        "disease-status-observation",
        &[(LOINC, &["97509-4", "88040-1"])],
        &[],
    ),
    ("status-worsened", &[(SCT, &["271299001"])], &[]),
    ("status-improved", &[(SCT, &["268910001"])], &[]),
    ("status-stable", &[(SCT, &["359746009"])], &[]),
    ("qualifier-local", &[(SCT, &["255470001"])], &[]),
    ("qualifier-distant", &[(SCT, &["261007001"])], &[]),
    (
        "multifocal-tumour",
        &[(SCT, &["399506006"])],
        &["multifocal"],
    ),
    ("metastasis-any", &[(SCT, &["128462008"])], &["metasta"]),
    (
        "metastasis-lung",
        &[
            (SCT, &["94391008"]),
            (ICD10CM, &["C78.00", "C78.01", "C78.02"]),
            (ICD10, &["C78.0"]),
        ],
        &[],
    ),
    (
        "metastasis-pleura",
        &[
            (SCT, &["94493005"]),
            (ICD10CM, &["C78.2"]),
            (ICD10, &["C78.2"]),
        ],
        &[],
    ),
    (
        "metastasis-peritoneum",
        &[(ICD10CM, &["C78.6"]), (ICD10, &["C78.6"])],
        &[],
    ),
    (
        "metastasis-liver",
        &[
            (SCT, &["94381002"]),
            (ICD10CM, &["C78.7"]),
            (ICD10, &["C78.7"]),
        ],
        &[],
    ),
    (
        "metastasis-brain",
        &[
            (SCT, &["94225005"]),
            (ICD10CM, &["C79.31"]),
            (ICD10, &["C79.3"]),
        ],
        &[],
    ),
    (
        "metastasis-bone",
        &[
            (SCT, &["94222008"]),
            (ICD10CM, &["C79.51"]),
            (ICD10, &["C79.5"]),
        ],
        &[],
    ),
    (
        "metastasis-adrenal",
        &[
            (SCT, &["94161006"]),
            (ICD10CM, &["C79.70", "C79.71", "C79.72"]),
            (ICD10, &["C79.7"]),
        ],
        &[],
    ),
    (
        "metastasis-other",
        &[(ICD10CM, &["C79.89"]), (ICD10, &["C79.8"])],
        &[],
    ),
    ("site-lung", &[(SCT, &["39607008"])], &[]),
    ("site-liver", &[(SCT, &["10200004"])], &[]),
    ("site-bone", &[(SCT, &["119186007"])], &[]),
    ("site-brain", &[(SCT, &["12738006"])], &[]),
    ("site-peritoneum", &[(SCT, &["15425007", "118762006"])], &[]),
    (
        "sarcomatosis-morphology",
        &[(ICDO3, &["8800/9"])],
        &["sarcomatosis"],
    ),
    (
        "critical-structure-observation",
        &[(SCT, &["370052007"])],
        &[],
    ),
    (
        "critical-structure-site",
        &[(
            SCT,
            &[
                "15825003",
                "42258001",
                "32764006",
                "245288002",
                "40958000",
                "62397004",
            ],
        )],
        &[],
    ),
    ("symptom-observation", &[(LOINC, &["75325-1"])], &[]),
    ("symptom-pain", &[(SCT, &["22253000"])], &["pain"]),
    (
        "symptom-obstruction",
        &[(SCT, &["81060008"])],
        &["obstruction"],
    ),
    (
        "symptom-dyspnoea",
        &[(SCT, &["267036007"])],
        &["dyspnoea", "dyspnea", "shortness of breath"],
    ),
    (
        "symptom-cord-compression",
        &[(SCT, &["71286001"])],
        &["cord compression"],
    ),
    ("bone-symptom", &[], &["bone pain"]),
    ("ecog-observation", &[(LOINC, &["89247-1"])], &[]),
    ("karnofsky-observation", &[(LOINC, &["89243-0"])], &[]),
    (
        "drug-doxorubicin",
        &[(RXNORM, &["3639"])],
        &["doxorubicin", "adriamycin"],
    ),
    ("drug-epirubicin", &[(RXNORM, &["3995"])], &["epirubicin"]),
    ("drug-ifosfamide", &[(RXNORM, &["5657"])], &["ifosfamide"]),
    ("drug-dacarbazine", &[(RXNORM, &["3098"])], &["dacarbazine"]),
    (
        "drug-gemcitabine",
        &[(RXNORM, &["12574"])],
        &["gemcitabine"],
    ),
    ("drug-docetaxel", &[(RXNORM, &["72962"])], &["docetaxel"]),
    ("drug-pazopanib", &[(RXNORM, &["714438"])], &["pazopanib"]),
    ("drug-eribulin", &[(RXNORM, &["1045453"])], &["eribulin"]),
    ("drug-trabectedin", &[], &["trabectedin"]),
    ("drug-olaratumab", &[], &["olaratumab"]),
    (
        "drug-cyclophosphamide",
        &[(RXNORM, &["3002"])],
        &["cyclophosphamide"],
    ),
    ("bsa-observation", &[(LOINC, &["8277-6"])], &[]),
    ("smoking-observation", &[(LOINC, &["72166-2"])], &[]),
    (
        "smoking-current",
        &[(
            SCT,
            &["449868002", "428041000124106", "77176002", "65568007"],
        )],
        &[],
    ),
    ("smoking-former", &[(SCT, &["8517006"])], &[]),
    ("smoking-never", &[(SCT, &["266919005"])], &[]),
    (
        "pft-observation",
        &[(LOINC, &["20150-9", "19868-9", "19911-7"])],
        &[],
    ),
    (
        "imaging-ct-chest",
        &[(SCT, &["169069000", "75385009"])],
        &["ct chest", "ct thorax", "chest ct"],
    ),
    (
        "imaging-ct-abdomen-pelvis",
        &[(SCT, &["432370003", "419394006", "1148701004"])],
        &["ct abdomen"],
    ),
    (
        "imaging-ct-chest-abdomen-pelvis",
        &[(SCT, &["1148700003"])],
        &[
            "ct chest abdomen pelvis",
            "ct chest/abdomen/pelvis",
            "ct cap",
        ],
    ),
    ("imaging-bone-scan", &[(SCT, &["41747008"])], &["bone scan"]),
    ("imaging-fdg-pet", &[(SCT, &["443271005"])], &[]),
    ("biopsy-core", &[(SCT, &["129249002"])], &["core"]),
    (
        "biopsy-any",
        &[(SCT, &["86273004", "129249002"])],
        &["biopsy"],
    ),
    ("biopsy-fna", &[(SCT, &["15719007"])], &["fine needle"]),
    (
        "li-fraumeni",
        &[(ORPHA, &["524"]), (ICD10CM, &["Z15.09", "Z15.89"])],
        &["li-fraumeni", "li fraumeni"],
    ),
    ("debulking", &[(SCT, &["255595002"])], &["debulk"]),
    ("hipec", &[], &["hipec", "hyperthermic intraperitoneal"]),
    (
        "pulmonary-metastasectomy",
        &[(SCT, &["232632009", "287310004", "173171007"])],
        &["pulmonary metastasectomy", "lung metastasectomy"],
    ),
    ("metastasectomy", &[], &["metastasectomy"]),
    (
        "neoadjuvant",
        &[(SCT, &["73847000"])],
        &[
            "preoperative",
            "pre-operative",
            "neoadjuvant",
            "neo-adjuvant",
        ],
    ),
    (
        "adjuvant",
        &[(SCT, &["373846009"])],
        &["postoperative", "post-operative", "adjuvant"],
    ),
];

/// The FHIR `ValueSet` resource of one definition.
pub fn value_set_json(def: &Def) -> Value {
    let (id, includes, texts) = def;
    json!({
        "resourceType": "ValueSet",
        "id": id,
        "url": format!("https://fhir.rps-cds.org/ValueSet/{id}"),
        "status": "active",
        "extension": texts.iter().map(|t| json!({"url": TEXT_MATCH_EXTENSION, "valueString": t})).collect::<Vec<_>>(),
        "compose": {"include": includes.iter().map(|(system, codes)| json!({
            "system": system,
            "concept": codes.iter().map(|c| json!({"code": c})).collect::<Vec<_>>()
        })).collect::<Vec<_>>()}
    })
}

/// Every value set of notes/valuesets.md, built from inline JSON.
pub fn terminology() -> Terminology {
    Terminology::from_value_sets(
        DEFS.iter()
            .map(|d| ValueSet::from_resource(&value_set_json(d)).expect("test value set")),
    )
    .expect("test terminology")
}
