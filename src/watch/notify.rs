//! Telling the officers about a new draft: `[watch] notify_chats` on
//! Telegram and `notify_emails` by email, through the configured channels'
//! own transports (so the shipped outbox configuration writes
//! `outbox/telegram.jsonl` and `outbox/email.jsonl` instead of sending).
//! Officers are not citizens: no acknowledgement button, no unsubscribe link.

use std::sync::Arc;
use std::time::Duration;

use teloxide::prelude::Requester;

use super::config::Watch;
use crate::channel::{self, AlertContext, Channel, Delivery, DeliveryError, Message, Recipient};
use crate::config::{Config, TelegramTransport};
use crate::domain::{CapStatus, ChannelId, MsgType};

use crate::template::{ChannelText, Rendered};

const ATTEMPTS: u32 = 3;
const BACKOFF: Duration = Duration::from_secs(1);

enum TelegramSink {
    BotApi(teloxide::Bot),
    Channel(Arc<dyn Channel>),
}

pub struct Officers {
    chats: Vec<String>,
    emails: Vec<String>,
    telegram: Option<TelegramSink>,
    email: Option<Arc<dyn Channel>>,
    language: String,
}

/// One notification: what the officers read.
pub struct Note<'a> {
    pub draft_id: i64,
    pub subject: String,
    pub body: String,
    /// The draft's rendered alert (for the transports that need its context).
    pub rendered: &'a Rendered,
}

impl Officers {
    pub fn new(config: &Config, watch: &Watch) -> Result<Self, channel::BuildError> {
        let telegram = match (&config.channels.telegram, watch.notify_chats.is_empty()) {
            (Some(t), false) => Some(match t.transport {
                TelegramTransport::BotApi => {
                    TelegramSink::BotApi(crate::channel::telegram::client(t)?)
                }
                TelegramTransport::Outbox => {
                    TelegramSink::Channel(channel::build(config, ChannelId::Telegram)?)
                }
            }),
            _ => None,
        };
        let email = if watch.notify_emails.is_empty() {
            None
        } else {
            Some(channel::build(config, ChannelId::Email)?)
        };
        Ok(Self {
            chats: watch.notify_chats.clone(),
            emails: watch.notify_emails.clone(),
            telegram,
            email,
            language: config.general.default_language.clone(),
        })
    }

    /// Sends the note to every officer; returns one line per failure.
    pub async fn notify(&self, note: &Note<'_>) -> Vec<String> {
        let context = AlertContext {
            id: format!("draft-{}", note.draft_id),
            status: CapStatus::Actual,
            msg_type: MsgType::Alert,
            rendered: note.rendered.clone(),
            created_at: chrono::Utc::now().to_rfc3339(),
            expires_at: None,
            thread_posts: Default::default(),
        };
        let mut failures = Vec::new();
        for chat in &self.chats {
            let result = match &self.telegram {
                Some(TelegramSink::BotApi(bot)) => send_bot(bot, chat, &note.body).await,
                Some(TelegramSink::Channel(c)) => {
                    let content = ChannelText {
                        subject: None,
                        text: note.body.clone(),
                        html: None,
                    };
                    self.send(c.as_ref(), &context, chat, &content).await
                }
                None => Err("[channels.telegram] is not configured".into()),
            };
            if let Err(e) = result {
                failures.push(format!("telegram chat {chat}: {e}"));
            }
        }
        for email in &self.emails {
            let result = match &self.email {
                Some(c) => {
                    let content = ChannelText {
                        subject: Some(note.subject.clone()),
                        text: note.body.clone(),
                        html: None,
                    };
                    self.send(c.as_ref(), &context, email, &content).await
                }
                None => Err("[channels.email] is not configured".into()),
            };
            if let Err(e) = result {
                failures.push(format!("email {email}: {e}"));
            }
        }
        failures
    }

    async fn send(
        &self,
        channel: &dyn Channel,
        context: &AlertContext,
        to: &str,
        content: &ChannelText,
    ) -> Result<(), String> {
        // An officer, not a citizen: no unsubscribe link, no ack button.
        let delivery = Delivery {
            id: 0,
            address: to.to_owned(),
            recipient: Recipient::Public,
            language: self.language.clone(),
            attempts: 0,
            token: String::new(),
        };
        let message = Message {
            alert: context,
            delivery: &delivery,
            content,
        };
        let mut attempt = 1;
        loop {
            match channel.send(&message).await {
                Ok(_) => return Ok(()),
                Err(DeliveryError::Transient { reason, .. }) if attempt < ATTEMPTS => {
                    tracing::info!(to, attempt, %reason, "officer notification: retrying");
                    tokio::time::sleep(BACKOFF * attempt).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// A plain-text message (no parse mode: nothing in it needs escaping).
async fn send_bot(bot: &teloxide::Bot, chat: &str, text: &str) -> Result<(), String> {
    let to = crate::channel::telegram::recipient(chat)?;
    let mut attempt = 1;
    loop {
        match bot.send_message(to.clone(), text.to_owned()).await {
            Ok(_) => return Ok(()),
            Err(e) => {
                let error = crate::channel::telegram::classify(e);
                match error {
                    DeliveryError::Transient { retry_after, .. } if attempt < ATTEMPTS => {
                        tokio::time::sleep(retry_after.unwrap_or(BACKOFF * attempt)).await;
                        attempt += 1;
                    }
                    other => return Err(other.to_string()),
                }
            }
        }
    }
}
