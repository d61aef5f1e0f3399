//! A [`Chart`] as a CDS Hooks request (prefetch, draft orders, selections) posted to the
//! service under test, for the `api` binary (the `clinical` binary reads charts into a
//! `Picture` instead). The service evaluates as of now, so these charts are dated back from
//! [`today`] with [`ago`].

use chrono::{Days, Utc};
use serde_json::{Value, json};

use super::chart::Chart;
use super::http::Service;

/// The service's evaluation date (it answers as of now), as `YYYY-MM-DD`.
pub fn today() -> String {
    Utc::now().date_naive().to_string()
}

/// The date `days` days before [`today`].
pub fn ago(days: u64) -> String {
    (Utc::now().date_naive() - Days::new(days)).to_string()
}

impl Service {
    /// Posts the chart as a `hook` request to the service of that hook
    /// ([`Service::call_hook`]: status 200, a response valid against the CDS Hooks schemas).
    pub async fn call_chart(&self, hook: &str, chart: &Chart) -> Value {
        self.call_hook(&chart.hook_request(hook)).await
    }
}

impl Chart {
    /// The chart as CDS Hooks prefetch: `patient` and one searchset Bundle per prefetch key
    /// (resources of other types are left out).
    pub fn prefetch(&self) -> Value {
        const KEYS: [(&str, &str); 7] = [
            ("conditions", "Condition"),
            ("observations", "Observation"),
            ("procedures", "Procedure"),
            ("medicationAdministrations", "MedicationAdministration"),
            ("medicationStatements", "MedicationStatement"),
            ("medicationRequests", "MedicationRequest"),
            ("diagnosticReports", "DiagnosticReport"),
        ];
        let mut prefetch = serde_json::Map::new();
        prefetch.insert(
            "patient".to_owned(),
            self.patient.clone().unwrap_or(Value::Null),
        );
        for (key, ty) in KEYS {
            let entries: Vec<Value> = self
                .resources
                .iter()
                .filter(|r| r["resourceType"] == ty)
                .map(|r| json!({"resource": r}))
                .collect();
            prefetch.insert(
                key.to_owned(),
                json!({"resourceType": "Bundle", "type": "searchset", "total": entries.len(), "entry": entries}),
            );
        }
        Value::Object(prefetch)
    }

    /// A CDS Hooks request for `hook` ("patient-view", "order-sign", "order-select") about
    /// `Patient/p1`, with the chart as prefetch and the drafts as `context.draftOrders`.
    pub fn hook_request(&self, hook: &str) -> Value {
        let mut context = json!({"userId": "Practitioner/example", "patientId": "p1"});
        if hook != "patient-view" {
            context["draftOrders"] = self.draft_orders_bundle();
            if hook == "order-select" {
                let selections: Vec<String> = self
                    .drafts
                    .iter()
                    .map(|d| {
                        format!(
                            "{}/{}",
                            d["resourceType"].as_str().unwrap_or(""),
                            d["id"].as_str().unwrap_or("")
                        )
                    })
                    .collect();
                context["selections"] = json!(selections);
            }
        }
        json!({
            "hook": hook,
            "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": context,
            "prefetch": self.prefetch()
        })
    }

    /// The draft orders as the `context.draftOrders` Bundle of order-sign / order-select.
    pub fn draft_orders_bundle(&self) -> Value {
        json!({
            "resourceType": "Bundle", "type": "collection",
            "entry": self.drafts.iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()
        })
    }
}
