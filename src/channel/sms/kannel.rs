//! Kannel's HTTP `sendsms` (SPEC §8.2).
//!
//! Kannel answers 202 for anything it queues, including an empty text and a
//! text it will cut at `max-messages` parts, and its own splitter cuts an
//! emoji's surrogate pair in two. So this transport splits the text itself
//! ([`gsm::split`]: never an escape or surrogate pair across parts) and, for
//! a long text, sends each part with its own concatenation UDH; Kannel then
//! has nothing to split. Each part asks for its own delivery report; the
//! ledger counts a delivery delivered when every part is.

use std::time::Duration;

use super::{ReportTarget, check_text, encode, network_error, snippet};
use crate::channel::{Accepted, BuildError, Channel, DeliveryError, Message, SendFuture};
use crate::config::{Config, Secret, Sms};
use crate::domain::ChannelId;
use crate::template::gsm::{self, Encoding};

/// Kannel reports: 1 delivered, 2 undeliverable, 4 queued at the SMSC,
/// 8 accepted by the SMSC, 16 rejected by the SMSC. Ask for all of them:
/// final states move the delivery, SMSC-level ones are kept as evidence.
pub const DLR_MASK: u32 = 1 | 2 | 4 | 8 | 16;

pub struct Kannel {
    client: reqwest::Client,
    url: String,
    username: String,
    password: Option<Secret>,
    sender: Option<String>,
    max_segments: usize,
    concurrency: usize,
    rate: Option<f64>,
    reports: Option<ReportTarget>,
}

impl Kannel {
    pub fn new(config: &Config, sms: &Sms) -> Result<Self, BuildError> {
        let url = sms
            .url
            .clone()
            .ok_or_else(|| BuildError("channels.sms.url is required for kannel".into()))?;
        let username = sms.username.clone().ok_or_else(|| {
            BuildError("channels.sms.username is required for kannel (its sendsms-user)".into())
        })?;
        Ok(Self {
            client: super::client(Duration::from_secs(15))?,
            url,
            username,
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
        })
    }

    /// The query string of one part. Built by hand: the UDH is binary and
    /// must reach Kannel byte for byte.
    fn query(
        &self,
        m: &Message<'_>,
        part: &str,
        encoding: Encoding,
        udh: Option<[u8; 6]>,
    ) -> String {
        let mut q = format!(
            "username={}&to={}&text={}&charset=UTF-8&coding={}",
            encode(self.username.as_bytes()),
            encode(m.delivery.address.as_bytes()),
            encode(part.as_bytes()),
            if encoding == Encoding::Ucs2 { 2 } else { 0 },
        );
        if let Some(p) = &self.password {
            q.push_str(&format!("&password={}", encode(p.expose().as_bytes())));
        }
        if let Some(from) = &self.sender {
            q.push_str(&format!("&from={}", encode(from.as_bytes())));
        }
        if let Some(udh) = udh {
            q.push_str(&format!("&udh={}", encode(&udh)));
        }
        if let Some(r) = &self.reports {
            let (index, total) = udh.map_or((1, 1), |u| (u[5], u[4]));
            let url = format!(
                "{}&part={index}&parts={total}&status=%d&answer=%A&ts=%T",
                r.for_delivery(m)
            );
            q.push_str(&format!(
                "&dlr-mask={DLR_MASK}&dlr-url={}",
                encode(url.as_bytes())
            ));
        }
        q
    }

    async fn send_part(&self, query: String) -> Result<(), DeliveryError> {
        let url = format!("{}?{query}", self.url);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| network_error("Kannel", &e))?;
        let status = response.status().as_u16();
        let after = super::retry_after(response.headers());
        let body = response.text().await.unwrap_or_default();
        classify(status, &body, after)
    }

    async fn send_message(&self, m: &Message<'_>) -> Result<Accepted, DeliveryError> {
        let text = &m.content.text;
        let analysis = check_text(text, self.max_segments)?;
        let parts = gsm::split(text);
        if parts.len() > 255 {
            return Err(DeliveryError::permanent(
                "more than 255 SMS parts cannot be concatenated",
            ));
        }
        if parts.len() == 1 {
            self.send_part(self.query(m, text, analysis.encoding, None))
                .await?;
        } else {
            // A concatenation reference per attempt, so a phone never mixes
            // the parts of a retry with those of an earlier attempt.
            let reference = ((m.delivery.id as u64 + m.delivery.attempts as u64) % 256) as u8;
            let total = parts.len() as u8;
            for (i, part) in parts.iter().enumerate() {
                let udh = [0x05, 0x00, 0x03, reference, total, i as u8 + 1];
                self.send_part(self.query(m, part, analysis.encoding, Some(udh)))
                    .await?;
            }
        }
        // Kannel's reply carries no id: ours is in the report URL.
        Ok(Accepted {
            provider_id: Some(m.delivery.id.to_string()),
            delivered: false,
        })
    }
}

/// Maps a `sendsms` reply to the engine's vocabulary.
pub fn classify(
    status: u16,
    body: &str,
    retry_after: Option<Duration>,
) -> Result<(), DeliveryError> {
    let said = snippet(body);
    match status {
        200..=299 => Ok(()),
        // Wrong credentials or a user not allowed to send: the same for the
        // whole audience. Stop the channel, do not fail 10,000 deliveries.
        401 | 403 => Err(DeliveryError::ChannelDown {
            reason: format!(
                "Kannel refused our sendsms credentials ({status} {said}): check channels.sms.username/password and Kannel's sendsms-user"
            ),
        }),
        404 | 405 => Err(DeliveryError::ChannelDown {
            reason: format!("Kannel has no sendsms at channels.sms.url ({status} {said})"),
        }),
        408 | 429 | 500..=599 => Err(DeliveryError::Transient {
            reason: format!("Kannel answered {status} {said}"),
            retry_after,
        }),
        // 400 "Number(s) has/have been denied", bad number, empty `to`.
        _ => Err(DeliveryError::permanent(format!(
            "Kannel rejected the message: {status} {said}"
        ))),
    }
}

impl Channel for Kannel {
    fn id(&self) -> ChannelId {
        ChannelId::Sms
    }

    fn describe(&self) -> String {
        format!(
            "Kannel sendsms {}{}",
            self.url,
            if self.reports.is_some() {
                " (delivery reports to allerta serve)"
            } else {
                " (no dlr_url: no delivery reports)"
            }
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
    use super::*;

    #[test]
    fn replies_map_to_the_right_error() {
        assert!(classify(202, "0: Accepted for delivery", None).is_ok());
        assert!(matches!(
            classify(403, "Authorization failed for sendsms", None),
            Err(DeliveryError::ChannelDown { .. })
        ));
        assert!(matches!(
            classify(
                400,
                "Number(s) has/have been denied by white- and/or black-lists.",
                None
            ),
            Err(DeliveryError::Permanent { .. })
        ));
        assert!(matches!(
            classify(503, "", Some(Duration::from_secs(7))),
            Err(DeliveryError::Transient { retry_after: Some(d), .. }) if d == Duration::from_secs(7)
        ));
    }
}
