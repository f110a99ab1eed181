//! Email through SMTP (SPEC §8.3).

use super::{BuildError, Channel, Message, SendFuture};
use crate::config::Email;
use crate::domain::ChannelId;

/// The headers every alert email carries (also written to the outbox).
pub fn headers_for(m: &Message<'_>) -> Vec<(String, String)> {
    let mut headers = vec![(
        "Message-ID".to_owned(),
        format!("<{}.{}@allerta>", m.alert.id, m.delivery.id),
    )];
    headers.push(("X-Allerta-Alert".to_owned(), m.alert.id.clone()));
    headers
}

pub struct Smtp;

impl Smtp {
    pub fn new(_config: &Email) -> Result<Self, BuildError> {
        Err(BuildError("smtp transport: work in progress".into()))
    }
}

impl Channel for Smtp {
    fn id(&self) -> ChannelId {
        ChannelId::Email
    }
    fn describe(&self) -> String {
        String::new()
    }
    fn concurrency(&self) -> usize {
        1
    }
    fn rate_per_second(&self) -> Option<f64> {
        None
    }
    fn send<'a>(&'a self, _message: &'a Message<'a>) -> SendFuture<'a> {
        Box::pin(std::future::ready(Err(super::DeliveryError::ChannelDown {
            reason: "wip".into(),
        })))
    }
}
