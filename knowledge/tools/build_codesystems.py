#!/usr/bin/env python3
"""Generates knowledge/codesystems/*.json, the project's FHIR CodeSystem resources.

rps-rule and rps-override-reason are derived from rules.json (display = title, definition =
condition), so that the code systems cannot drift from the rule book; the loader checks the
same correspondence at start-up. rps-observation and rps-order are defined here. Run from the
repository root after editing rules.json:

    python3 knowledge/tools/build_codesystems.py         # rewrite
    python3 knowledge/tools/build_codesystems.py --check # exit 1 when out of date
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = "https://fhir.rps-cds.org/CodeSystem/"

# Input profile, "The project code system".
OBSERVATION = [
    ("rupture-or-piecemeal", "Tumour rupture or piecemeal resection",
     "Observation (valueBoolean) recording whether the tumour ruptured or was removed piecemeal during the referenced resection."),
    ("focality", "Focality of recurrence",
     "Observation whose valueCodeableConcept (unifocal or multifocal) gives the focality of the recurrence it focuses on."),
    ("unifocal", "Unifocal",
     "A single tumour in the retroperitoneum or abdomen."),
    ("multifocal", "Multifocal",
     "Two or more tumours in the retroperitoneum or abdomen."),
    ("resectability", "Resectability assessment",
     "Observation whose valueCodeableConcept (resectable, borderline or unresectable) is the clinician's assessment of whether the disease can be completely resected."),
    ("resectable", "Resectable",
     "The clinician judges that complete resection of the disease is achievable."),
    ("borderline", "Borderline resectable",
     "Complete resection may be achievable, at substantial risk or with uncertain completeness."),
    ("unresectable", "Unresectable",
     "Complete resection is not achievable, for example because critical structures are encased."),
    ("metastatic-lesion-count", "Metastatic lesion count",
     "Observation (valueInteger) giving the number of metastatic lesions."),
    ("symptom-assessment", "Symptom assessment",
     "Observation whose valueCodeableConcept (none or present) records whether an assessment of tumour-related symptoms (pain, bowel obstruction, dyspnoea, cord compression) found any."),
    ("none", "None found",
     "The symptom assessment found no tumour-related symptoms."),
    ("present", "Present",
     "The symptom assessment found tumour-related symptoms."),
]

ORDERS = [
    ("tumour-board-referral", "Referral to sarcoma multidisciplinary tumour board",
     "Request to present the patient at a sarcoma-specialist multidisciplinary tumour board."),
    ("palliative-care-referral", "Referral to palliative care",
     "Request for specialist palliative care involvement."),
    ("medical-oncology-referral", "Referral to medical oncology",
     "Request for a medical oncology (sarcoma) consultation on systemic therapy."),
    ("sarcoma-surgery-referral", "Referral to sarcoma surgery",
     "Request for assessment by a surgeon at a sarcoma centre."),
    ("smoking-cessation-referral", "Referral to smoking cessation service",
     "Request for smoking cessation support before surgery."),
    ("pulmonary-function-tests", "Pulmonary function tests",
     "Request for pulmonary function testing (FEV1, FVC, DLCO)."),
]
OVERRIDE_DEFINITIONS = {
    "patient-preference": "The patient, informed of the recommendation, prefers another course.",
    "discussed-at-tumour-board": "The sarcoma multidisciplinary tumour board reviewed the case and chose this course.",
    "clinical-judgement": "The clinician judges the recommendation not to apply to this patient's situation.",
    "information-outdated-or-incorrect": "The recommendation rests on record data that are outdated or wrong.",
    "already-addressed": "The recommendation has already been acted on or is planned.",
}

ORDER_NOTE = (" This is a local placeholder order code: each site maps it to its own orderable"
              " (or replaces it with a standard code) when integrating the service.")


def code_system(cs_id, title, description, version, concepts):
    return {
        "resourceType": "CodeSystem",
        "id": cs_id,
        "url": BASE + cs_id,
        "version": version,
        "name": "".join(p.capitalize() for p in cs_id.split("-")),
        "title": title,
        "status": "active",
        "experimental": False,
        "publisher": "rps-cds",
        "description": description,
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "concept": [
            {"code": c, "display": d, "definition": df} for c, d, df in concepts
        ],
    }


def build():
    book = json.loads((ROOT / "rules.json").read_text(encoding="utf-8"))
    v = book["version"]
    return {
        "rps-rule": code_system(
            "rps-rule", "RPS decision support rules",
            "One code per rule of the RPS rule catalogue; used as source.topic of every card.", v,
            [(r["id"], r["title"], r["condition"]) for r in book["rules"]]),
        "rps-override-reason": code_system(
            "rps-override-reason", "RPS card override reasons",
            "Reasons a clinician may give for not following a warning or critical card.", v,
            [(o["code"], o["display"], OVERRIDE_DEFINITIONS.get(o["code"], o["display"]))
             for o in book["override_reasons"]]),
        "rps-observation": code_system(
            "rps-observation", "RPS observations",
            "Observation codes and answers for the few RPS facts that no standard terminology codes.", v,
            OBSERVATION),
        "rps-order": code_system(
            "rps-order", "RPS order placeholders",
            "Local order codes for the referrals and tests suggested by the service that have no code in the input profile. Sites map them to their own orderables.", v,
            [(c, d, df + ORDER_NOTE) for c, d, df in ORDERS]),
    }


def main():
    out = ROOT / "codesystems"
    out.mkdir(exist_ok=True)
    check = "--check" in sys.argv
    differ = []
    for cs_id, res in build().items():
        path = out / f"{cs_id}.json"
        text = json.dumps(res, indent=2, ensure_ascii=False) + "\n"
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                differ.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if differ:
        print("out of date:", differ)
        sys.exit(1)


if __name__ == "__main__":
    main()
