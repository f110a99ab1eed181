//! The SMS `http` transport (SPEC §8.2) for commercial gateways, on the
//! shared configurable request ([`crate::channel::http_request`]): what the
//! templates may use (`to`, `text`, `sender`…), and the last guards on the
//! text before any request.

use serde::Serialize;

use super::http_config::HttpAuth;
use super::{ReportTarget, check_text};
use crate::channel::http_request::{ConfiguredRequest, Provider};
use crate::channel::{Accepted, BuildError, Channel, DeliveryError, Message, SendFuture};
use crate::config::{Config, Secret, Sms};
use crate::domain::ChannelId;

pub struct HttpGateway {
    request: ConfiguredRequest,
    username: Option<String>,
    password: Option<Secret>,
    sender: Option<String>,
    max_segments: usize,
    concurrency: usize,
    rate: Option<f64>,
    reports: Option<ReportTarget>,
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

const PROVIDER: Provider = Provider {
    key: "channels.sms",
    name: "SMS gateway",
    credentials: "channels.sms username/password",
};

impl HttpGateway {
    pub fn new(config: &Config, sms: &Sms) -> Result<Self, BuildError> {
        let spec = sms.http.clone().ok_or_else(|| {
            BuildError("transport = \"http\" needs a [channels.sms.http] table".into())
        })?;
        let url = sms
            .url
            .clone()
            .ok_or_else(|| BuildError("channels.sms.url is required for http".into()))?;
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
        let password = sms
            .password
            .as_ref()
            .map(crate::config::SecretRef::resolve)
            .transpose()
            .map_err(BuildError)?;
        let gateway = Self {
            request: ConfiguredRequest::new(
                PROVIDER,
                spec,
                url,
                sms.username.clone(),
                password.clone(),
            )?,
            username: sms.username.clone(),
            password,
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
        gateway.request.render(&sample).map_err(BuildError)?;
        Ok(gateway)
    }

    #[cfg(test)]
    fn render(
        &self,
        vars: &Vars<'_>,
    ) -> Result<crate::channel::http_request::RenderedRequest, String> {
        self.request.render(vars)
    }

    #[cfg(test)]
    fn judge(
        &self,
        status: u16,
        body: &str,
        retry_after: Option<std::time::Duration>,
    ) -> Result<Accepted, DeliveryError> {
        self.request
            .judge(status, body, retry_after)
            .map(|provider_id| Accepted {
                provider_id,
                delivered: false,
            })
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
        let provider_id = self.request.send(&vars).await?;
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
        format!(
            "SMS gateway {} {}",
            self.request.method(),
            self.request.shown_url()
        )
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
    use std::time::Duration;

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
