//! A configurable HTTP request for commercial SMS gateways (SPEC §8.2):
//! method, URL, auth, headers, a form/JSON/query body rendered from the
//! message, a success rule, and where the provider's message id is. Every
//! reply is checked: a 200 whose body says "error" is not a sent SMS.

use std::collections::BTreeMap;
use std::time::Duration;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use regex::Regex;
use serde::Serialize;

use super::http_config::{BodyKind, HttpAuth, SmsHttp};
use super::{ReportTarget, check_text, network_error, snippet};
use crate::channel::{Accepted, BuildError, Channel, DeliveryError, Message, SendFuture};
use crate::config::{Config, Secret, Sms};
use crate::domain::ChannelId;

pub struct HttpGateway {
    client: reqwest::Client,
    env: Environment<'static>,
    spec: SmsHttp,
    method: reqwest::Method,
    url: String,
    username: Option<String>,
    password: Option<Secret>,
    sender: Option<String>,
    max_segments: usize,
    concurrency: usize,
    rate: Option<f64>,
    reports: Option<ReportTarget>,
    success_body: Option<Regex>,
    provider_id_regex: Option<Regex>,
}

/// What a template may use.
#[derive(Serialize)]
struct Vars<'a> {
    to: &'a str,
    to_digits: &'a str,
    text: &'a str,
    sender: &'a str,
    reference: String,
    alert_id: &'a str,
    callback_url: String,
    /// For APIs that take credentials as fields (never logged).
    username: &'a str,
    password: &'a str,
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

fn regex(key: &str, source: &Option<String>) -> Result<Option<Regex>, BuildError> {
    source
        .as_deref()
        .map(|s| Regex::new(s).map_err(|e| BuildError(format!("channels.sms.http.{key}: {e}"))))
        .transpose()
}

impl HttpGateway {
    pub fn new(config: &Config, sms: &Sms) -> Result<Self, BuildError> {
        let spec = sms.http.clone().ok_or_else(|| {
            BuildError("transport = \"http\" needs a [channels.sms.http] table".into())
        })?;
        let url = sms
            .url
            .clone()
            .ok_or_else(|| BuildError("channels.sms.url is required for http".into()))?;
        let method = reqwest::Method::from_bytes(spec.method.to_uppercase().as_bytes())
            .map_err(|_| BuildError(format!("channels.sms.http.method: `{}`", spec.method)))?;
        if spec.auth != HttpAuth::None && sms.password.is_none() {
            return Err(BuildError(
                "channels.sms.http.auth needs channels.sms.password (password_env / password_file)"
                    .into(),
            ));
        }
        if spec.auth == HttpAuth::Basic && sms.username.is_none() {
            return Err(BuildError(
                "channels.sms.http.auth = \"basic\" needs channels.sms.username".into(),
            ));
        }
        let timeout = match &spec.timeout {
            Some(t) => humantime::parse_duration(t)
                .map_err(|e| BuildError(format!("channels.sms.http.timeout `{t}`: {e}")))?,
            None => Duration::from_secs(15),
        };
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Every value substituted into a body template is escaped for the
        // body's syntax (see `body_template_name`): JSON-encoded in JSON,
        // URL-encoded in a form, XML-escaped in XML. A raw `&` or `"` in an
        // alert text must not add or break fields at the gateway.
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
                .map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
                })
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        let gateway = Self {
            client: super::client(timeout)?,
            env,
            success_body: regex("success_body_regex", &spec.success_body_regex)?,
            provider_id_regex: regex("provider_id_regex", &spec.provider_id_regex)?,
            spec,
            method,
            url,
            username: sms.username.clone(),
            password: sms
                .password
                .as_ref()
                .map(crate::config::SecretRef::resolve)
                .transpose()
                .map_err(BuildError)?,
            sender: sms.sender.clone(),
            max_segments: sms.max_segments,
            concurrency: sms.max_connections,
            rate: sms.rate_per_second,
            reports: ReportTarget::from_config(config, sms)?,
        };
        // Render once with sample values: a typo in a field template is a
        // configuration error before anything is sent, not 10,000 failures.
        let sample = Vars {
            to: "+390000000000",
            to_digits: "390000000000",
            text: "test",
            sender: "test",
            reference: "1".into(),
            alert_id: "test",
            callback_url: "http://127.0.0.1/".into(),
            username: "test",
            password: "test",
        };
        gateway.render(&sample).map_err(BuildError)?;
        Ok(gateway)
    }

    fn render_one(&self, name: &str, source: &str, vars: &Vars<'_>) -> Result<String, String> {
        self.env
            .render_named_str(
                name,
                source,
                minijinja::Value::from(minijinja::value::Serde(vars)),
            )
            .map_err(|e| format!("channels.sms.http {name}: {e}"))
    }

    /// Fields, headers and body template rendered for one message.
    #[allow(clippy::type_complexity)]
    fn render(
        &self,
        vars: &Vars<'_>,
    ) -> Result<(Vec<(String, String)>, Vec<(String, String)>, Option<String>), String> {
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

    async fn send_message(&self, m: &Message<'_>) -> Result<Accepted, DeliveryError> {
        let text = &m.content.text;
        check_text(text, self.max_segments)?;
        let vars = Vars {
            to: &m.delivery.address,
            to_digits: m.delivery.address.trim_start_matches('+'),
            text,
            sender: self.sender.as_deref().unwrap_or(""),
            reference: m.delivery.id.to_string(),
            alert_id: &m.alert.id,
            callback_url: self
                .reports
                .as_ref()
                .map(|r| r.for_delivery(m))
                .unwrap_or_default(),
            username: self.username.as_deref().unwrap_or(""),
            password: self.password.as_ref().map(Secret::expose).unwrap_or(""),
        };
        let (fields, headers, body) = self
            .render(&vars)
            .map_err(|reason| DeliveryError::ChannelDown { reason })?;
        let mut request = self.client.request(self.method.clone(), &self.url);
        request = match self.spec.auth {
            HttpAuth::None => request,
            HttpAuth::Basic => request.basic_auth(
                self.username.as_deref().unwrap_or(""),
                self.password.as_ref().map(Secret::expose),
            ),
            HttpAuth::Bearer => {
                request.bearer_auth(self.password.as_ref().map(Secret::expose).unwrap_or(""))
            }
        };
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
            .map_err(|e| network_error("SMS gateway", &e))?;
        let status = response.status().as_u16();
        let after = super::retry_after(response.headers());
        let body = response.text().await.unwrap_or_default();
        self.judge(status, &body, after)
    }

    /// Applies the success rule and extracts the provider id.
    fn judge(
        &self,
        status: u16,
        body: &str,
        retry_after: Option<Duration>,
    ) -> Result<Accepted, DeliveryError> {
        let said = snippet(body);
        if !self.spec.success_status.contains(&status) {
            return Err(match status {
                401 | 403 => DeliveryError::ChannelDown {
                    reason: format!(
                        "the SMS gateway refused our credentials ({status} {said}): check channels.sms username/password"
                    ),
                },
                404 | 405 => DeliveryError::ChannelDown {
                    reason: format!(
                        "the SMS gateway has no such endpoint ({status} {said}): check channels.sms.url"
                    ),
                },
                408 | 429 | 500..=599 => DeliveryError::Transient {
                    reason: format!("SMS gateway answered {status} {said}"),
                    retry_after,
                },
                _ => DeliveryError::permanent(format!(
                    "SMS gateway rejected the message: {status} {said}"
                )),
            });
        }
        if let Some(re) = &self.success_body
            && !re.is_match(body)
        {
            return Err(DeliveryError::permanent(format!(
                "SMS gateway did not accept the message: {status} {said}"
            )));
        }
        let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
        if let Some(pointer) = &self.spec.success_json_pointer {
            let value = json
                .as_ref()
                .and_then(|j| j.pointer(pointer))
                .map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
            let ok = match (&value, &self.spec.success_json_value) {
                (None, _) => false,
                (Some(v), Some(expected)) => v == expected,
                (Some(_), None) => true,
            };
            if !ok {
                return Err(DeliveryError::permanent(format!(
                    "SMS gateway did not accept the message ({pointer} = {}): {said}",
                    value.as_deref().unwrap_or("missing")
                )));
            }
        }
        let mut provider_id = self
            .spec
            .provider_id_json_pointer
            .as_ref()
            .and_then(|p| json.as_ref()?.pointer(p))
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        if provider_id.is_none()
            && let Some(re) = &self.provider_id_regex
        {
            provider_id = re
                .captures(body)
                .and_then(|c| c.get(1).or_else(|| c.get(0)))
                .map(|m| m.as_str().to_owned());
        }
        Ok(Accepted {
            provider_id,
            delivered: false,
        })
    }
}

impl Channel for HttpGateway {
    fn id(&self) -> ChannelId {
        ChannelId::Sms
    }

    fn describe(&self) -> String {
        let mut shown = self.url.clone();
        if let Some(q) = shown.find('?') {
            shown.truncate(q);
        }
        format!("SMS gateway {} {shown}", self.method)
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    fn rate_per_second(&self) -> Option<f64> {
        self.rate
    }

    fn send<'a>(&'a self, message: &'a Message<'a>) -> SendFuture<'a> {
        Box::pin(self.send_message(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(http: &str) -> HttpGateway {
        let text = format!(
            r#"
[general]
database = "x.db"
sender = "Comune"
sender_id = "pc@comune.example.it"
[channels.sms]
transport = "http"
url = "http://127.0.0.1:9/send"
password = "pw"
{http}
"#
        );
        let config = Config::parse(std::path::Path::new("/tmp/allerta.toml"), &text).unwrap();
        HttpGateway::new(&config, config.channels.sms.as_ref().unwrap()).unwrap()
    }

    fn vars<'a>(text: &'a str) -> Vars<'a> {
        Vars {
            to: "+393331234567",
            to_digits: "393331234567",
            text,
            sender: "Comune",
            reference: "7".into(),
            alert_id: "a1",
            callback_url: String::new(),
            username: "",
            password: "pw",
        }
    }

    #[test]
    fn a_json_body_template_encodes_every_value() {
        let g = gateway(
            "[channels.sms.http]\nauth = \"bearer\"\nbody_template = '{\"messages\": [{\"to\": {{ to }}, \"body\": {{ text }}, \"ref\": {{ reference }}}]}'\n",
        );
        let text = "Allerta \"rossa\" \\ È 🌊\nfine";
        let (_, _, body) = g.render(&vars(text)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&body.unwrap()).unwrap();
        assert_eq!(v["messages"][0]["body"], text);
        assert_eq!(v["messages"][0]["to"], "+393331234567");
        assert_eq!(v["messages"][0]["ref"], "7");
    }

    #[test]
    fn a_form_body_template_url_encodes_every_value() {
        let g = gateway(
            "[channels.sms.http]\ncontent_type = \"application/x-www-form-urlencoded\"\nbody_template = 'to={{ to }}&text={{ text }}&from={{ sender }}'\n",
        );
        let text = "Allerta & evacuate=now+fast È 🌊";
        let (_, _, body) = g.render(&vars(text)).unwrap();
        let body = body.unwrap();
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            pairs,
            [
                ("to".to_owned(), "+393331234567".to_owned()),
                ("text".to_owned(), text.to_owned()),
                ("from".to_owned(), "Comune".to_owned()),
            ]
        );
    }

    #[test]
    fn an_xml_body_template_escapes_every_value() {
        let g = gateway(
            "[channels.sms.http]\ncontent_type = \"text/xml\"\nbody_template = '<sms><to>{{ to }}</to><text>{{ text }}</text></sms>'\n",
        );
        let (_, _, body) = g.render(&vars("a </text><x> & \"b\"")).unwrap();
        let body = body.unwrap();
        assert_eq!(body.matches("</text>").count(), 1, "{body}");
        assert!(!body.contains("<x>"), "{body}");
        assert!(
            body.contains("&lt;") && body.contains("&amp; &quot;b&quot;</text>"),
            "{body}"
        );
    }

    #[test]
    fn a_typo_in_a_field_template_is_a_configuration_error() {
        let text = r#"
[general]
database = "x.db"
sender = "Comune"
sender_id = "pc@comune.example.it"
[channels.sms]
transport = "http"
url = "http://127.0.0.1:9/send"
[channels.sms.http]
fields = { to = "{{ too }}" }
"#;
        let config = Config::parse(std::path::Path::new("/tmp/allerta.toml"), text).unwrap();
        let err = HttpGateway::new(&config, config.channels.sms.as_ref().unwrap())
            .err()
            .unwrap();
        assert!(err.0.contains("to"), "{}", err.0);
    }

    #[test]
    fn the_success_rule_reads_status_body_and_json() {
        let g = gateway(
            "[channels.sms.http]\nsuccess_status = [200]\nsuccess_json_pointer = \"/result/ok\"\nsuccess_json_value = \"true\"\nprovider_id_json_pointer = \"/result/id\"\n",
        );
        let ok = g
            .judge(200, r#"{"result": {"ok": true, "id": 42}}"#, None)
            .unwrap();
        assert_eq!(ok.provider_id.as_deref(), Some("42"));
        assert!(matches!(
            g.judge(200, r#"{"result": {"ok": false}}"#, None),
            Err(DeliveryError::Permanent { .. })
        ));
        assert!(matches!(
            g.judge(201, "{}", None),
            Err(DeliveryError::Permanent { .. })
        ));
        assert!(matches!(
            g.judge(429, "", Some(Duration::from_secs(3))),
            Err(DeliveryError::Transient {
                retry_after: Some(_),
                ..
            })
        ));
        assert!(matches!(
            g.judge(403, "", None),
            Err(DeliveryError::ChannelDown { .. })
        ));
    }
}
