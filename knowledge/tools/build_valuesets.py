#!/usr/bin/env python3
"""Generates knowledge/valuesets/<id>.json from the table below (the source of truth).

The value-set ids are the contract with fact extraction (`VALUE_SETS` in
src/clinical/extract.rs); codes and text fallbacks come from the input profile
(docs/input-profile.md). Codes marked there with a dagger (not verified against a
terminology server) carry the extension UNVERIFIED_EXT = true and keep their text
fallbacks. Run from the repository root:

    python3 knowledge/tools/build_valuesets.py

and commit the regenerated files. `--check` exits non-zero when a file differs.
"""
import json
import sys
from pathlib import Path

VERSION = "2026.12.1"
BASE = "https://fhir.rps-cds.org/ValueSet/"
TEXT_EXT = "https://fhir.rps-cds.org/StructureDefinition/valueset-text-match"
UNVERIFIED_EXT = "https://fhir.rps-cds.org/StructureDefinition/unverified-code"

SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NCIT = "http://ncit.nci.nih.gov"
ORPHA = "http://www.orpha.net"

# A concept is (code, display) or (code, display, "unverified"); display may be None.
U = "unverified"

# id -> (title, description, [(system, [concepts])], [text fallbacks])
VALUE_SETS = {
    # --- Diagnosis / tumour ---
    "rps-diagnosis": ("Retroperitoneal malignant neoplasm", "A retroperitoneal malignant neoplasm code on its own establishes the RPS diagnosis.", [
        (ICD10CM, [("C48.0", "Malignant neoplasm of retroperitoneum")]),
        (ICD10, [("C48.0", "Malignant neoplasm of retroperitoneum")]),
        (ICDO3, [("C48.0", "Retroperitoneum")]),
    ], []),
    "sarcoma-diagnosis": ("Sarcoma diagnosis", "Generic sarcoma codes; with a retroperitoneal body site they establish the RPS diagnosis. The in-scope histology value sets are accepted as well (by the extractor).", [
        (SCT, [("424952003", "Soft tissue sarcoma"), ("1187396000", "Sarcoma")]),
    ], []),
    "site-retroperitoneum": ("Retroperitoneum body site", "Body site: retroperitoneum.", [
        (SCT, [("82849001", "Retroperitoneal structure")]),
    ], ["retroperitone"]),
    "histology-wd-liposarcoma": ("Well-differentiated liposarcoma", "Histology wd_liposarcoma; atypical lipomatous tumour counts as well.", [
        (ICDO3, [("8851/3", "Liposarcoma, well differentiated"), ("8850/1", "Atypical lipomatous tumor")]),
    ], ["well differentiated liposarcoma", "well-differentiated liposarcoma", "atypical lipomatous"]),
    "histology-dd-liposarcoma": ("Dedifferentiated liposarcoma", "Histology dd_liposarcoma.", [
        (ICDO3, [("8858/3", "Dedifferentiated liposarcoma")]),
    ], ["dedifferentiated liposarcoma"]),
    "histology-liposarcoma-other": ("Other liposarcoma subtypes", "Histology liposarcoma_other: myxoid, round cell, pleomorphic or NOS.", [
        (ICDO3, [("8850/3", "Liposarcoma, NOS"), ("8852/3", "Myxoid liposarcoma"), ("8853/3", "Round cell liposarcoma"), ("8854/3", "Pleomorphic liposarcoma")]),
    ], ["myxoid liposarcoma", "round cell liposarcoma", "pleomorphic liposarcoma"]),
    "histology-liposarcoma-unspecified": ("Liposarcoma, subtype from text", "Liposarcoma without a subtype code; the extractor reads the subtype from text, else liposarcoma_other.", [
        (SCT, [("1162815008", "Liposarcoma")]),
    ], ["liposarcoma"]),
    "histology-leiomyosarcoma": ("Leiomyosarcoma", "Histology leiomyosarcoma.", [
        (ICDO3, [("8890/3", "Leiomyosarcoma, NOS")]),
        (SCT, [("1163022006", "Leiomyosarcoma")]),
    ], ["leiomyosarcoma"]),
    "histology-solitary-fibrous-tumor": ("Solitary fibrous tumour", "Histology solitary_fibrous_tumor.", [
        (ICDO3, [("8815/3", "Solitary fibrous tumor, malignant"), ("8815/1", "Solitary fibrous tumor, NOS")]),
        (SCT, [("128736003", "Solitary fibrous tumor")]),
    ], ["solitary fibrous tumor", "solitary fibrous tumour"]),
    "histology-mpnst": ("Malignant peripheral nerve sheath tumour", "Histology mpnst.", [
        (ICDO3, [("9540/3", "Malignant peripheral nerve sheath tumor")]),
        (SCT, [("19897006", "Malignant peripheral nerve sheath tumor")]),
    ], ["mpnst", "malignant peripheral nerve sheath"]),
    "histology-synovial-sarcoma": ("Synovial sarcoma", "Histology synovial_sarcoma.", [
        (ICDO3, [("9040/3", "Synovial sarcoma, NOS"), ("9041/3", "Synovial sarcoma, spindle cell"), ("9043/3", "Synovial sarcoma, biphasic")]),
        (SCT, [("63211008", "Synovial sarcoma")]),
    ], ["synovial sarcoma"]),
    # "UPS" is matched as a whole word by the extractor; a substring fallback would be unsafe.
    "histology-ups": ("Undifferentiated pleomorphic sarcoma", "Histology ups. The abbreviation UPS is matched as a whole word by the extractor, not here.", [
        (ICDO3, [("8802/3", None), ("8805/3", "Undifferentiated sarcoma"), ("8830/3", "Undifferentiated pleomorphic sarcoma")]),
    ], ["undifferentiated pleomorphic sarcoma"]),
    "histology-sarcoma-nos": ("Sarcoma, NOS", "Histology sarcoma_nos.", [
        (ICDO3, [("8800/3", "Sarcoma, NOS")]),
    ], []),
    "histology-gist": ("Gastrointestinal stromal tumour (out of scope)", "Out-of-scope histology gist.", [
        (ICDO3, [("8936/3", "Gastrointestinal stromal sarcoma")]),
        (SCT, [("1187383001", "Gastrointestinal stromal tumor")]),
    ], ["gastrointestinal stromal"]),
    "histology-desmoid": ("Desmoid tumour (out of scope)", "Out-of-scope histology desmoid.", [
        (ICDO3, [("8821/1", "Aggressive fibromatosis"), ("8822/1", "Abdominal fibromatosis")]),
        (SCT, [("47284001", "Desmoid tumor")]),
    ], ["desmoid"]),
    "histology-ewing": ("Ewing sarcoma (out of scope)", "Out-of-scope histology ewing.", [
        (ICDO3, [("9364/3", None)]),
        (SCT, [("76909002", "Ewing sarcoma")]),
    ], ["ewing"]),
    "histology-rhabdomyosarcoma": ("Rhabdomyosarcoma (out of scope)", "Out-of-scope histology rhabdomyosarcoma.", [
        (ICDO3, [("8900/3", "Rhabdomyosarcoma, NOS"), ("8901/3", "Pleomorphic rhabdomyosarcoma"), ("8910/3", "Embryonal rhabdomyosarcoma"), ("8912/3", "Spindle cell rhabdomyosarcoma"), ("8920/3", "Alveolar rhabdomyosarcoma")]),
        (SCT, [("30924005", "Rhabdomyosarcoma")]),
    ], ["rhabdomyosarcoma"]),
    "histology-dsrct": ("Desmoplastic small round cell tumour (out of scope)", "Out-of-scope histology dsrct.", [
        (ICDO3, [("8806/3", "Desmoplastic small round cell tumor")]),
    ], ["desmoplastic small round cell"]),
    "histology-clear-cell-sarcoma": ("Clear cell sarcoma (out of scope)", "Out-of-scope histology clear_cell_sarcoma.", [
        (ICDO3, [("9044/3", "Clear cell sarcoma")]),
    ], ["clear cell sarcoma"]),
    "histology-pecoma": ("PEComa (out of scope)", "Out-of-scope histology pecoma.", [
        (ICDO3, [("8714/3", "Malignant perivascular epithelioid cell tumor")]),
    ], ["pecoma", "perivascular epithelioid"]),
    "histology-imt": ("Inflammatory myofibroblastic tumour (out of scope)", "Out-of-scope histology imt.", [
        (ICDO3, [("8825/1", "Inflammatory myofibroblastic tumor")]),
    ], ["inflammatory myofibroblastic"]),
    "histology-carcinosarcoma": ("Carcinosarcoma (out of scope)", "Out-of-scope histology carcinosarcoma.", [
        (ICDO3, [("8980/3", "Carcinosarcoma, NOS")]),
    ], ["carcinosarcoma"]),
    "histology-sarcomatoid-carcinoma": ("Sarcomatoid carcinoma (out of scope)", "Out-of-scope histology sarcomatoid_carcinoma (text only).", [], ["sarcomatoid carcinoma"]),
    "histology-teratoma-derived": ("Sarcoma arising from teratoma (out of scope)", "Out-of-scope histology teratoma_derived (text only).", [], ["teratoma"]),
    "histology-visceral-or-gynecologic": ("Visceral or gynaecological sarcoma (out of scope)", "Out-of-scope histology visceral_or_gynecologic (text only).", [], ["uterine leiomyosarcoma", "visceral sarcoma"]),
    "histology-benign": ("Benign entity (out of scope)", "Out-of-scope histology benign (text only).", [], ["benign", "lipoma"]),
    "histology-observation": ("Histology observation", "Observation code carrying the histology.", [
        (LOINC, [("31206-6", None)]),
    ], []),
    "grade-observation": ("Histologic grade observation", "Observation codes carrying the histologic grade.", [
        (NCIT, [("C18000", "Histologic Grade")]),
        (LOINC, [("33732-9", None, U), ("21858-6", None, U)]),
    ], []),
    "grade-low": ("Grade 1 (low)", "FNCLCC grade 1.", [(SCT, [("1155708003", None)])], ["grade 1", "g1", "low grade"]),
    "grade-intermediate": ("Grade 2 (intermediate)", "FNCLCC grade 2.", [(SCT, [("1286893008", None)])], ["grade 2", "g2", "intermediate grade"]),
    "grade-high": ("Grade 3 (high)", "FNCLCC grade 3.", [(SCT, [("1155707008", None)])], ["grade 3", "g3", "high grade"]),
    # --- Surgery / RT ---
    "resection-procedure": ("Resection procedure", "Procedure codes for a surgical resection.", [
        (SCT, [("370611004", None), ("65854006", None), ("62141006", None), ("387713003", "Surgical procedure")]),
    ], ["resection", "excision"]),
    "residual-tumour-observation": ("Residual tumour classification", "Observation code for the R classification.", [(LOINC, [("84892-9", None)])], []),
    # R0/R1/R2 are matched as whole words by the extractor; no standard code is asserted here.
    "residual-r0": ("R0 resection", "No residual tumour (text only; whole-word match by the extractor).", [], ["r0"]),
    "residual-r1": ("R1 resection", "Microscopic residual tumour (text only; whole-word match by the extractor).", [], ["r1"]),
    "residual-r2": ("R2 resection", "Macroscopic residual tumour (text only; whole-word match by the extractor).", [], ["r2"]),
    "radiotherapy-procedure": ("Radiotherapy", "Procedure or order codes for a radiotherapy course.", [
        (SCT, [("1217123003", None), ("108290001", "Radiation oncology AND/OR radiotherapy")]),
    ], ["radiotherapy", "radiation"]),
    "iort": ("Intra-operative radiotherapy", "Modality marking a course as intra-operative.", [
        (SCT, [("168524008", None)]),
    ], ["iort", "intraoperative radiotherapy", "intra-operative radiotherapy"]),
    # --- Disease course ---
    "disease-status-observation": ("Disease status observation", "mCODE cancer disease status observation codes.", [(LOINC, [("97509-4", None), ("88040-1", None)])], []),
    "status-worsened": ("Disease worsened", "Disease status value: worsened (recurrence or progression).", [(SCT, [("271299001", "Patient's condition worsened")])], []),
    "status-improved": ("Disease improved", "Disease status value: improved (regression).", [(SCT, [("268910001", "Patient's condition improved")])], []),
    "status-stable": ("Disease stable", "Disease status value: stable.", [(SCT, [("359746009", "Patient's condition stable")])], []),
    "qualifier-local": ("Local progression qualifier", "Disease progression qualifier: local.", [(SCT, [("255470001", None)])], []),
    "qualifier-distant": ("Distant progression qualifier", "Disease progression qualifier: distant.", [(SCT, [("261007001", None)])], []),
    "multifocal-tumour": ("Multifocal tumour", "Marks a recurrence as multifocal.", [(SCT, [("399506006", None)])], ["multifocal"]),
    "metastasis-any": ("Metastasis (any site)", "Secondary malignant neoplasm; site from bodySite.", [(SCT, [("128462008", "Secondary malignant neoplastic disease")])], ["metasta"]),
    "metastasis-lung": ("Lung metastasis", "Metastasis site lung.", [
        (SCT, [("94391008", "Secondary malignant neoplasm of lung")]),
        (ICD10CM, [("C78.00", "Secondary malignant neoplasm of unspecified lung"), ("C78.01", "Secondary malignant neoplasm of right lung"), ("C78.02", "Secondary malignant neoplasm of left lung"), ("C78.0", "Secondary malignant neoplasm of lung")]),
        (ICD10, [("C78.00", None), ("C78.01", None), ("C78.02", None), ("C78.0", "Secondary malignant neoplasm of lung")]),
    ], []),
    "metastasis-pleura": ("Pleural metastasis", "Metastasis site pleura.", [
        (SCT, [("94493005", "Secondary malignant neoplasm of pleura")]),
        (ICD10CM, [("C78.2", "Secondary malignant neoplasm of pleura")]),
        (ICD10, [("C78.2", "Secondary malignant neoplasm of pleura")]),
    ], []),
    "metastasis-peritoneum": ("Peritoneal metastasis", "Metastasis site peritoneum.", [
        (ICD10CM, [("C78.6", "Secondary malignant neoplasm of retroperitoneum and peritoneum")]),
        (ICD10, [("C78.6", "Secondary malignant neoplasm of retroperitoneum and peritoneum")]),
    ], []),
    "metastasis-liver": ("Liver metastasis", "Metastasis site liver.", [
        (SCT, [("94381002", "Secondary malignant neoplasm of liver")]),
        (ICD10CM, [("C78.7", "Secondary malignant neoplasm of liver and intrahepatic bile duct")]),
        (ICD10, [("C78.7", "Secondary malignant neoplasm of liver")]),
    ], []),
    "metastasis-brain": ("Brain metastasis", "Metastasis site brain.", [
        (SCT, [("94225005", "Secondary malignant neoplasm of brain")]),
        (ICD10CM, [("C79.31", "Secondary malignant neoplasm of brain")]),
        (ICD10, [("C79.3", "Secondary malignant neoplasm of brain and cerebral meninges")]),
    ], []),
    "metastasis-bone": ("Bone metastasis", "Metastasis site bone.", [
        (SCT, [("94222008", "Secondary malignant neoplasm of bone")]),
        (ICD10CM, [("C79.51", "Secondary malignant neoplasm of bone")]),
        (ICD10, [("C79.5", "Secondary malignant neoplasm of bone and bone marrow")]),
    ], []),
    "metastasis-adrenal": ("Adrenal metastasis", "Metastasis site adrenal.", [
        (SCT, [("94161006", "Secondary malignant neoplasm of adrenal gland")]),
        (ICD10CM, [("C79.70", "Secondary malignant neoplasm of unspecified adrenal gland"), ("C79.71", "Secondary malignant neoplasm of right adrenal gland"), ("C79.72", "Secondary malignant neoplasm of left adrenal gland")]),
        (ICD10, [("C79.7", "Secondary malignant neoplasm of adrenal gland")]),
    ], []),
    "metastasis-other": ("Metastasis at another site", "Metastasis site other.", [
        (ICD10CM, [("C79.89", "Secondary malignant neoplasm of other specified sites")]),
        (ICD10, [("C79.8", "Secondary malignant neoplasm of other specified sites")]),
    ], []),
    "site-lung": ("Lung body site", "Body site lung.", [(SCT, [("39607008", "Lung structure")])], []),
    "site-liver": ("Liver body site", "Body site liver.", [(SCT, [("10200004", "Liver structure")])], []),
    "site-bone": ("Bone body site", "Body site bone.", [(SCT, [("119186007", None)])], []),
    "site-brain": ("Brain body site", "Body site brain.", [(SCT, [("12738006", "Brain structure")])], []),
    "site-peritoneum": ("Peritoneum body site", "Body site peritoneum.", [(SCT, [("15425007", None), ("118762006", None)])], []),
    "sarcomatosis-morphology": ("Sarcomatosis", "Sarcomatosis morphology.", [(ICDO3, [("8800/9", "Sarcomatosis, NOS")])], ["sarcomatosis"]),
    "critical-structure-observation": ("Invasion by tumour observation", "Observation of the status of invasion by tumour.", [(SCT, [("370052007", None)])], []),
    "critical-structure-site": ("Critical structure", "Structures whose encasement makes a recurrence unresectable.", [
        (SCT, [("15825003", "Aorta"), ("42258001", "Superior mesenteric artery"), ("32764006", "Portal vein"), ("245288002", "Porta hepatis", U), ("40958000", "Nerve root"), ("62397004", "Sacral plexus")]),
    ], []),
    "symptom-observation": ("Symptom observation", "Observation code for a symptom.", [(LOINC, [("75325-1", "Symptom")])], []),
    "symptom-pain": ("Pain", "Symptom: pain.", [(SCT, [("22253000", "Pain")])], ["pain"]),
    "symptom-obstruction": ("Intestinal obstruction", "Symptom: bowel obstruction.", [(SCT, [("81060008", "Intestinal obstruction", U)])], ["obstruction"]),
    "symptom-dyspnoea": ("Dyspnoea", "Symptom: dyspnoea.", [(SCT, [("267036007", "Dyspnea", U)])], ["dyspnoea", "dyspnea", "shortness of breath"]),
    "symptom-cord-compression": ("Spinal cord compression", "Symptom: spinal cord compression.", [(SCT, [("71286001", "Spinal cord compression", U)])], ["cord compression"]),
    "bone-symptom": ("Bone symptom", "Bone symptoms (ORD-17); the extractor also counts pain with a bone body site.", [], ["bone pain"]),
    "symptom-asymptomatic": ("Asymptomatic", "A symptom assessment that found no symptoms (rps-knowledge.md 4.1 symptomatic); text is read negation-aware by the extractor.", [(SCT, [("84387000", "Asymptomatic", U)])], ["asymptomatic", "no symptoms"]),
    # --- Patient status / history ---
    "ecog-observation": ("ECOG performance status", "Observation code for ECOG.", [(LOINC, [("89247-1", "ECOG Performance Status score")])], []),
    "karnofsky-observation": ("Karnofsky performance status", "Observation code for Karnofsky (converted to ECOG).", [(LOINC, [("89243-0", None)])], []),
    "drug-doxorubicin": ("Doxorubicin", "Ingredient doxorubicin.", [(RXNORM, [("3639", "doxorubicin")])], ["doxorubicin", "adriamycin"]),
    "drug-epirubicin": ("Epirubicin", "Ingredient epirubicin.", [(RXNORM, [("3995", "epirubicin", U)])], ["epirubicin"]),
    "drug-ifosfamide": ("Ifosfamide", "Ingredient ifosfamide.", [(RXNORM, [("5657", "ifosfamide", U)])], ["ifosfamide"]),
    "drug-dacarbazine": ("Dacarbazine", "Ingredient dacarbazine.", [(RXNORM, [("3098", "dacarbazine")])], ["dacarbazine"]),
    "drug-gemcitabine": ("Gemcitabine", "Ingredient gemcitabine.", [(RXNORM, [("12574", "gemcitabine")])], ["gemcitabine"]),
    "drug-docetaxel": ("Docetaxel", "Ingredient docetaxel.", [(RXNORM, [("72962", "docetaxel")])], ["docetaxel"]),
    "drug-pazopanib": ("Pazopanib", "Ingredient pazopanib.", [(RXNORM, [("714438", "pazopanib")])], ["pazopanib"]),
    "drug-eribulin": ("Eribulin", "Ingredient eribulin.", [(RXNORM, [("1045453", "eribulin", U)])], ["eribulin"]),
    "drug-trabectedin": ("Trabectedin", "Ingredient trabectedin (text only).", [], ["trabectedin"]),
    "drug-olaratumab": ("Olaratumab", "Ingredient olaratumab (text only).", [], ["olaratumab"]),
    "drug-cyclophosphamide": ("Cyclophosphamide", "Ingredient cyclophosphamide.", [(RXNORM, [("3002", "cyclophosphamide")])], ["cyclophosphamide"]),
    "bsa-observation": ("Body surface area", "Observation code for body surface area.", [(LOINC, [("8277-6", "Body surface area")])], []),
    "smoking-observation": ("Tobacco smoking status", "Observation code for smoking status.", [(LOINC, [("72166-2", "Tobacco smoking status")])], []),
    "smoking-current": ("Current smoker", "Smoking status values meaning a current smoker.", [
        (SCT, [("449868002", "Smokes tobacco daily"), ("428041000124106", "Occasional tobacco smoker"), ("77176002", "Smoker"), ("65568007", "Cigarette smoker")]),
    ], []),
    "smoking-former": ("Former smoker", "Smoking status value: former smoker.", [(SCT, [("8517006", "Ex-smoker")])], []),
    "smoking-never": ("Never smoker", "Smoking status value: never smoked.", [(SCT, [("266919005", "Never smoked tobacco")])], []),
    "pft-observation": ("Pulmonary function test", "Observation codes for FEV1, FVC and DLCO.", [(LOINC, [("20150-9", "FEV1"), ("19868-9", "FVC"), ("19911-7", "DLCO")])], []),
    "imaging-ct-chest": ("CT chest", "Imaging: CT of the chest.", [(SCT, [("169069000", "Computed tomography of chest"), ("75385009", None)])], ["ct chest", "ct thorax", "chest ct"]),
    "imaging-ct-abdomen-pelvis": ("CT abdomen and pelvis", "Imaging: CT of the abdomen and pelvis.", [(SCT, [("432370003", None), ("419394006", None, U), ("1148701004", None)])], ["ct abdomen"]),
    "imaging-ct-chest-abdomen-pelvis": ("CT chest, abdomen and pelvis", "Imaging: CT of chest, abdomen and pelvis (counts for both chest and abdomen).", [(SCT, [("1148700003", None)])], ["ct chest abdomen pelvis", "ct chest/abdomen/pelvis", "ct cap"]),
    "imaging-bone-scan": ("Bone scan", "Imaging: radionuclide bone scan.", [(SCT, [("41747008", "Bone scan", U)])], ["bone scan"]),
    # "PET" is matched as a whole word by the extractor; the substring here is deliberately the short form.
    "imaging-fdg-pet": ("FDG PET-CT", "Imaging: FDG PET-CT. The extractor matches the text PET as a whole word.", [(SCT, [("443271005", None)])], ["pet"]),
    "biopsy-core": ("Core needle biopsy", "Core needle biopsy.", [(SCT, [("129249002", "Core needle biopsy", U)])], ["core"]),
    "biopsy-any": ("Biopsy", "Any biopsy.", [(SCT, [("86273004", "Biopsy", U), ("129249002", "Core needle biopsy", U)])], ["biopsy"]),
    "biopsy-fna": ("Fine-needle aspiration", "Fine-needle aspiration biopsy.", [(SCT, [("15719007", "Fine needle aspiration biopsy")])], ["fine needle", "fna"]),
    "cardiomyopathy-condition": ("Cardiomyopathy or heart failure", "Condition: cardiomyopathy or heart failure, a sequela that affects anthracycline safety (rps-knowledge.md 4.1).", [
        (SCT, [("85898001", "Cardiomyopathy", U), ("84114007", "Heart failure", U)]),
    ], ["cardiomyopathy", "heart failure", "cardiac failure"]),
    "renal-impairment-condition": ("Renal impairment", "Condition: chronic kidney disease or impaired kidney function, a sequela that affects ifosfamide safety (rps-knowledge.md 4.1).", [
        (SCT, [("709044004", "Chronic kidney disease", U)]),
    ], ["chronic kidney disease", "renal impairment", "renal insufficiency", "renal failure", "kidney failure"]),
    "lvef-observation": ("Left ventricular ejection fraction", "Observation code for LVEF (%).", [(LOINC, [("10230-1", "Left ventricular Ejection fraction", U)])], []),
    "egfr-observation": ("Estimated glomerular filtration rate", "Observation codes for eGFR (mL/min/1.73 m2).", [(LOINC, [("33914-3", None, U), ("62238-1", None, U), ("98979-8", None, U)])], []),
    "li-fraumeni": ("Li-Fraumeni syndrome", "Hereditary Li-Fraumeni syndrome.", [
        (ORPHA, [("524", "Li-Fraumeni syndrome")]),
        (ICD10CM, [("Z15.09", "Genetic susceptibility to other malignant neoplasm", U), ("Z15.89", "Genetic susceptibility to other disease", U)]),
    ], ["li-fraumeni", "li fraumeni"]),
    "pathology-review": ("Expert sarcoma pathology review", "DiagnosticReport or Procedure: review of the pathology by an expert sarcoma pathologist (text only; rps-knowledge.md 4.7, PATH-01).", [], ["sarcoma pathology review", "expert review", "expert pathology review", "second opinion"]),
    "molecular-pathology": ("Molecular pathology test", "DiagnosticReport or Procedure: molecular confirmation of a subtype (text only; PATH-01).", [], ["mdm2", "fish", "gene fusion", "fusion gene", "fusion transcript", "fusion testing"]),
    "therapy-intolerance": ("Therapy stopped for intolerance", "statusReason of a medication record: stopped because of toxicity or intolerance (text only; SYS-02).", [], ["intolerance", "intolerant", "not tolerated", "toxicity", "adverse reaction", "adverse event", "side effect"]),
    # --- Draft orders ---
    "debulking": ("Debulking", "Order detail: debulking.", [(SCT, [("255595002", None)])], ["debulk"]),
    "hipec": ("HIPEC", "Hyperthermic intraperitoneal chemotherapy (text only).", [], ["hipec", "hyperthermic intraperitoneal"]),
    "pulmonary-metastasectomy": ("Pulmonary metastasectomy", "Orders for resection of lung metastases.", [(SCT, [("232632009", None), ("287310004", None), ("173171007", None)])], ["pulmonary metastasectomy", "lung metastasectomy"]),
    "metastasectomy": ("Metastasectomy", "Orders for resection of metastases (text only; resection codes with a metastatic site are handled by the extractor).", [], ["metastasectomy"]),
    "ablation": ("Local ablation", "Orders for local ablation of a lesion: radiofrequency, microwave or cryoablation, stereotactic body radiotherapy (text only; MET-04, MET-05, WORK-06).", [], ["ablation", "rfa", "sbrt", "stereotactic body radiotherapy", "stereotactic ablative"]),
    "imaging-reason-equivocal-or-response": ("Imaging for equivocal lesions or response", "Reason of an imaging order: equivocal or indeterminate lesions, or response assessment (ORD-17; TMC 10, IVB) (text only).", [], ["equivocal", "indeterminate", "response assessment", "response evaluation", "treatment response", "assess response", "evaluate response", "response to treatment", "response to therapy"]),
    "neoadjuvant": ("Pre-operative (neoadjuvant) timing", "Order timing: pre-operative.", [(SCT, [("73847000", None)])], ["preoperative", "pre-operative", "neoadjuvant", "neo-adjuvant"]),
    # The extractor checks neoadjuvant first, because "adjuvant" is a substring of "neoadjuvant".
    "adjuvant": ("Post-operative (adjuvant) timing", "Order timing: post-operative. Checked after neoadjuvant by the extractor.", [(SCT, [("373846009", None)])], ["postoperative", "post-operative", "adjuvant"]),
}


def concept(c):
    code, display = c[0], c[1]
    out = {"code": code}
    if display:
        out["display"] = display
    if len(c) > 2 and c[2] == U:
        out["extension"] = [{"url": UNVERIFIED_EXT, "valueBoolean": True}]
    return out


def resource(vs_id, title, description, includes, texts):
    res = {"resourceType": "ValueSet", "id": vs_id}
    if texts:
        res["extension"] = [{"url": TEXT_EXT, "valueString": t} for t in texts]
    res.update({
        "url": BASE + vs_id,
        "version": VERSION,
        "name": "".join(p.capitalize() for p in vs_id.split("-")),
        "title": title,
        "status": "active",
        "experimental": False,
        "publisher": "rps-cds",
        "description": description,
    })
    # Text-only value sets carry no compose (ValueSet.compose is optional, but an include
    # without concepts would mean "the whole code system").
    if includes:
        res["compose"] = {"include": [{"system": s, "concept": [concept(c) for c in cs]} for s, cs in includes]}
    return res


def main():
    root = Path(__file__).resolve().parent.parent / "valuesets"
    check = "--check" in sys.argv
    root.mkdir(exist_ok=True)
    wanted = set()
    differ = []
    for vs_id, (title, desc, includes, texts) in VALUE_SETS.items():
        path = root / f"{vs_id}.json"
        wanted.add(path.name)
        text = json.dumps(resource(vs_id, title, desc, includes, texts), indent=2, ensure_ascii=False) + "\n"
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                differ.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    stale = sorted(p.name for p in root.glob("*.json") if p.name not in wanted)
    if check:
        if differ or stale:
            print("out of date:", differ, "stale:", stale)
            sys.exit(1)
    else:
        for name in stale:
            (root / name).unlink()
        print(f"{len(VALUE_SETS)} value sets written to {root}")


if __name__ == "__main__":
    main()
