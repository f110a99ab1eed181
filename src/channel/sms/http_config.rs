//! The `[channels.sms.http]` table: how to talk to a commercial SMS gateway
//! with a configurable request, and how to read its status callbacks.
//! Examples for a Twilio-compatible API and a generic form API are in
//! `examples/`.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsHttp {
    /// HTTP method (default POST).
    #[serde(default = "default_method")]
    pub method: String,
    /// `none`, `basic` (username + password) or `bearer` (password is the token).
    #[serde(default)]
    pub auth: HttpAuth,
    /// Extra request headers (values are templates too).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How `fields` are sent: `form` (urlencoded body), `json` (flat JSON
    /// object of strings) or `query` (URL query string).
    #[serde(default)]
    pub body: BodyKind,
    /// Field name → template. Variables: `to`, `to_digits`, `text`,
    /// `sender`, `reference` (our delivery id), `alert_id`, `callback_url`,
    /// `username`, `password` (for APIs that take credentials as fields).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// A whole body template instead of `fields` (e.g. nested JSON; use
    /// `{{ text|tojson }}`), sent with `content_type`.
    pub body_template: Option<String>,
    pub content_type: Option<String>,
    /// HTTP statuses that mean "accepted" (default 200, 201, 202).
    #[serde(default = "default_success_status")]
    pub success_status: Vec<u16>,
    /// If set, the reply body must match this regex to count as accepted;
    /// a success status with a body that does not match is a rejection.
    pub success_body_regex: Option<String>,
    /// If set, the JSON reply must have a value at this pointer…
    pub success_json_pointer: Option<String>,
    /// …equal to this (as text), when given.
    pub success_json_value: Option<String>,
    /// Where the provider's message id is in the JSON reply (pointer, e.g. `/sid`).
    pub provider_id_json_pointer: Option<String>,
    /// Or a regex on the reply body whose first group is the id.
    pub provider_id_regex: Option<String>,
    /// How `allerta serve` reads this gateway's status callbacks.
    pub callback: Option<Callback>,
    /// Request timeout (default 15s).
    pub timeout: Option<String>,
}

/// Status callbacks (form, query or JSON). Field names starting with `/`
/// are JSON pointers into a JSON body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Callback {
    /// Field with the provider message id (used when the callback URL does
    /// not carry our delivery id).
    pub id_field: Option<String>,
    /// Field with the delivery status.
    pub status_field: String,
    /// Optional field with an error code or text, kept with the report.
    pub error_field: Option<String>,
    /// Status values that mean delivered to the phone.
    #[serde(default)]
    pub delivered: Vec<String>,
    /// Status values that mean it will never arrive.
    #[serde(default)]
    pub failed: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpAuth {
    #[default]
    None,
    Basic,
    Bearer,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyKind {
    #[default]
    Form,
    Json,
    Query,
}

fn default_method() -> String {
    "POST".into()
}

fn default_success_status() -> Vec<u16> {
    vec![200, 201, 202]
}

/// A field of a callback: from the form/query parameters, or a JSON pointer.
pub fn field<'a>(
    name: &str,
    params: &'a BTreeMap<String, String>,
    json: Option<&'a serde_json::Value>,
) -> Option<String> {
    if name.starts_with('/') {
        let v = json?.pointer(name)?;
        return Some(match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    }
    params.get(name).cloned()
}
