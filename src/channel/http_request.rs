//! The configurable HTTP request (SPEC §8.2, §14) shared by the SMS `http`
//! transport and the voice `http` transport: method, URL, auth, headers, a
//! form/JSON/query body rendered from the message, a success rule, and
//! where the provider's message id is. Every reply is checked: a 200 whose
//! body says "error" is not an accepted message. What the templates may use
//! (`to`, `text`…) is the caller's: any `Serialize` value.

use std::collections::BTreeMap;
use std::time::Duration;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use regex::Regex;
use serde::Serialize;

use super::sms::http_config::{BodyKind, HttpAuth, SmsHttp};
use super::sms::{network_error, snippet};
use super::{BuildError, DeliveryError};
use crate::config::Secret;

/// Who is asked, for messages: the config key prefix and a name.
#[derive(Debug, Clone, Copy)]
pub struct Provider {
    /// `channels.sms`, `channels.voice`.
    pub key: &'static str,
    /// `SMS gateway`, `voice provider`.
    pub name: &'static str,
    /// Where the credentials are set, for a refusal.
    pub credentials: &'static str,
}

pub struct ConfiguredRequest {
    client: reqwest::Client,
    env: Environment<'static>,
    spec: SmsHttp,
    method: reqwest::Method,
    url: String,
    username: Option<String>,
    password: Option<Secret>,
    success_body: Option<Regex>,
    provider_id_regex: Option<Regex>,
    provider: Provider,
}

/// The auto-escape mode name for a urlencoded form body.
const FORM_ESCAPE: &str = "form";

/// The template name that selects the escaping of a body template, from
/// its content type (default JSON, as sent): JSON, form, XML, or none for
/// other types (e.g. `text/plain`, which has no syntax to break).
fn body_template_name(content_type: Option<&str>) -> &'static str {
    let c = content_type
        .unwrap_or("application/json")
        .to_ascii_lowercase();
    if c.contains("json") {
        "body.json"
    } else if c.contains("x-www-form-urlencoded") {
        "body.form"
    } else if c.contains("xml") {
        "body.xml"
    } else {
        "body"
    }
}

/// Fields, headers and body template rendered for one message.
pub type RenderedRequest = (Vec<(String, String)>, Vec<(String, String)>, Option<String>);

/// The JSON value at `pointer`, as text.
pub fn pointer_text(json: &serde_json::Value, pointer: &str) -> Option<String> {
    json.pointer(pointer).map(|v| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// An environment whose templates escape every substituted value for the
/// output's syntax (see `body_template_name`): JSON-encoded in JSON,
/// URL-encoded in a form, XML-escaped in XML. A raw `&` or `"` in an alert
/// text must not add or break fields at the provider.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".json") {
            AutoEscape::Json
        } else if name.ends_with(".xml") {
            AutoEscape::Html
        } else if name.ends_with(".form") {
            AutoEscape::Custom(FORM_ESCAPE.into())
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(|out, state, value| {
        if matches!(state.auto_escape(), AutoEscape::Custom(n) if n == FORM_ESCAPE) {
            let text = if value.is_undefined() || value.is_none() {
                String::new()
            } else {
                value.to_string()
            };
            if value.is_safe() {
                out.write_str(&text)
            } else {
                out.write_str(
                    &url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>(),
                )
            }
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    env
}

impl ConfiguredRequest {
    pub fn new(
        provider: Provider,
        spec: SmsHttp,
        url: String,
        username: Option<String>,
        password: Option<Secret>,
    ) -> Result<Self, BuildError> {
        let key = provider.key;
        let regex = |name: &str, source: &Option<String>| {
            source
                .as_deref()
                .map(|s| Regex::new(s).map_err(|e| BuildError(format!("{key}.http.{name}: {e}"))))
                .transpose()
        };
        let method = reqwest::Method::from_bytes(spec.method.to_uppercase().as_bytes())
            .map_err(|_| BuildError(format!("{key}.http.method: `{}`", spec.method)))?;
        let timeout = match &spec.timeout {
            Some(t) => humantime::parse_duration(t)
                .map_err(|e| BuildError(format!("{key}.http.timeout `{t}`: {e}")))?,
            None => Duration::from_secs(15),
        };
        Ok(Self {
            client: super::sms::client(timeout)?,
            env: environment(),
            success_body: regex("success_body_regex", &spec.success_body_regex)?,
            provider_id_regex: regex("provider_id_regex", &spec.provider_id_regex)?,
            spec,
            method,
            url,
            username,
            password,
            provider,
        })
    }

    pub fn method(&self) -> &reqwest::Method {
        &self.method
    }

    /// The URL without its query (which may hold credentials).
    pub fn shown_url(&self) -> String {
        let mut shown = self.url.clone();
        if let Some(q) = shown.find('?') {
            shown.truncate(q);
        }
        shown
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Adds the configured authentication to a request.
    pub fn authenticate(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.spec.auth {
            HttpAuth::None => request,
            HttpAuth::Basic => request.basic_auth(
                self.username.as_deref().unwrap_or(""),
                self.password.as_ref().map(Secret::expose),
            ),
            HttpAuth::Bearer => {
                request.bearer_auth(self.password.as_ref().map(Secret::expose).unwrap_or(""))
            }
        }
    }

    fn render_one(
        &self,
        name: &str,
        source: &str,
        vars: &impl Serialize,
    ) -> Result<String, String> {
        self.env
            .render_named_str(
                name,
                source,
                minijinja::Value::from(minijinja::value::Serde(vars)),
            )
            .map_err(|e| format!("{}.http {name}: {e}", self.provider.key))
    }

    /// Fields, headers and body template rendered for one message.
    pub fn render(&self, vars: &impl Serialize) -> Result<RenderedRequest, String> {
        let mut fields = Vec::new();
        for (name, source) in &self.spec.fields {
            fields.push((name.clone(), self.render_one(name, source, vars)?));
        }
        let mut headers = Vec::new();
        for (name, source) in &self.spec.headers {
            headers.push((name.clone(), self.render_one(name, source, vars)?));
        }
        let body = match &self.spec.body_template {
            Some(source) => {
                let name = body_template_name(self.spec.content_type.as_deref());
                Some(self.render_one(name, source, vars)?)
            }
            None => None,
        };
        Ok((fields, headers, body))
    }

    /// Sends the request for one message and judges the reply: the
    /// provider's id when accepted.
    pub async fn send(&self, vars: &impl Serialize) -> Result<Option<String>, DeliveryError> {
        let (fields, headers, body) = self
            .render(vars)
            .map_err(|reason| DeliveryError::ChannelDown { reason })?;
        let mut request = self.authenticate(self.client.request(self.method.clone(), &self.url));
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request = match (body, self.spec.body) {
            (Some(body), _) => request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    self.spec
                        .content_type
                        .as_deref()
                        .unwrap_or("application/json"),
                )
                .body(body),
            (None, BodyKind::Form) => request.form(&fields),
            (None, BodyKind::Query) => request.query(&fields),
            (None, BodyKind::Json) => {
                request.json(&fields.into_iter().collect::<BTreeMap<String, String>>())
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| network_error(self.provider.name, &e))?;
        let status = response.status().as_u16();
        let after = super::sms::retry_after(response.headers());
        let body = response.text().await.unwrap_or_default();
        self.judge(status, &body, after)
    }

    /// Applies the success rule and extracts the provider id.
    pub fn judge(
        &self,
        status: u16,
        body: &str,
        retry_after: Option<Duration>,
    ) -> Result<Option<String>, DeliveryError> {
        let Provider {
            key,
            name,
            credentials,
        } = self.provider;
        let said = snippet(body);
        if !self.spec.success_status.contains(&status) {
            return Err(match status {
                401 | 403 => DeliveryError::ChannelDown {
                    reason: format!(
                        "the {name} refused our credentials ({status} {said}): check {credentials}"
                    ),
                },
                404 | 405 => DeliveryError::ChannelDown {
                    reason: format!(
                        "the {name} has no such endpoint ({status} {said}): check {key}.url"
                    ),
                },
                408 | 429 | 500..=599 => DeliveryError::Transient {
                    reason: format!("{name} answered {status} {said}"),
                    retry_after,
                },
                _ => DeliveryError::permanent(format!(
                    "{name} rejected the message: {status} {said}"
                )),
            });
        }
        if let Some(re) = &self.success_body
            && !re.is_match(body)
        {
            return Err(DeliveryError::permanent(format!(
                "{name} did not accept the message: {status} {said}"
            )));
        }
        let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
        if let Some(pointer) = &self.spec.success_json_pointer {
            let value = json.as_ref().and_then(|j| pointer_text(j, pointer));
            let ok = match (&value, &self.spec.success_json_value) {
                (None, _) => false,
                (Some(v), Some(expected)) => v == expected,
                (Some(_), None) => true,
            };
            if !ok {
                return Err(DeliveryError::permanent(format!(
                    "{name} did not accept the message ({pointer} = {}): {said}",
                    value.as_deref().unwrap_or("missing")
                )));
            }
        }
        let mut provider_id = self
            .spec
            .provider_id_json_pointer
            .as_ref()
            .and_then(|p| pointer_text(json.as_ref()?, p));
        if provider_id.is_none()
            && let Some(re) = &self.provider_id_regex
        {
            provider_id = re
                .captures(body)
                .and_then(|c| c.get(1).or_else(|| c.get(0)))
                .map(|m| m.as_str().to_owned());
        }
        Ok(provider_id)
    }
}
