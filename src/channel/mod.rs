//! Channels: the one trait every transport implements, and the error type
//! that tells the engine whether to retry. Each channel maps its provider's
//! errors to `DeliveryError` right where it calls the provider; the engine
//! never inspects provider types.

pub mod banner;
pub mod email;
pub mod http_request;
pub mod outbox;
pub mod sms;
pub mod social;
pub mod telegram;
pub mod voice;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{BannerTransport, Config, EmailTransport, SmsTransport, TelegramTransport};
use crate::domain::ChannelId;
use crate::template::ChannelText;

/// The alert as every channel sees it.
#[derive(Debug)]
pub struct AlertContext {
    pub id: String,
    pub status: crate::domain::CapStatus,
    pub msg_type: crate::domain::MsgType,
    pub rendered: crate::template::Rendered,
    pub created_at: String,
    pub expires_at: Option<String>,
    /// Social channels: the thread's earlier posts a follow-up replies to
    /// (empty for a new alert, and for every other channel).
    pub thread_posts: std::collections::BTreeMap<ChannelId, social::ThreadPosts>,
}

pub use crate::domain::Recipient;

/// The delivery as a channel sees it: the engine copies it from the
/// ledger's claim, so channels never depend on the ledger.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub address: String,
    pub recipient: Recipient,
    pub language: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// Per-delivery secret for unsubscribe and acknowledgement links.
    pub token: String,
}

/// One message to send: which alert, which delivery, what text.
pub struct Message<'a> {
    pub alert: &'a AlertContext,
    pub delivery: &'a Delivery,
    pub content: &'a ChannelText,
}

/// The provider accepted the message.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub provider_id: Option<String>,
    /// True when the provider confirms delivery synchronously (files,
    /// banner); otherwise the delivery stays `sent` until a report arrives.
    pub delivered: bool,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    /// Timeouts, refused connections, 5xx/429, SMTP 4xx: try again later.
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// This address will never work (invalid number, SMTP 5xx, blocked).
    #[error("{reason}")]
    Permanent {
        reason: String,
        /// The recipient is gone for good (blocked the bot): deactivate.
        recipient_gone: bool,
    },
    /// Every delivery on this channel would fail the same way (bad
    /// credentials): stop the channel instead of burning the audience.
    #[error("{reason}")]
    ChannelDown { reason: String },
}

impl DeliveryError {
    pub fn transient(reason: impl Into<String>) -> Self {
        Self::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent {
            reason: reason.into(),
            recipient_gone: false,
        }
    }
}

pub type SendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Accepted, DeliveryError>> + Send + 'a>>;

pub trait Channel: Send + Sync {
    fn id(&self) -> ChannelId;

    /// One line for the officer: where messages go ("outbox → …", "smtp://…").
    fn describe(&self) -> String;

    /// True when the transport writes to the outbox instead of a service.
    fn is_outbox(&self) -> bool {
        false
    }

    /// How many sends may be in flight at once.
    fn concurrency(&self) -> usize;

    /// Messages per second over the whole channel, if limited.
    fn rate_per_second(&self) -> Option<f64>;

    fn send<'a>(&'a self, message: &'a Message<'a>) -> SendFuture<'a>;
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

/// Builds the transport configured for `channel`.
pub fn build(config: &Config, channel: ChannelId) -> Result<Arc<dyn Channel>, BuildError> {
    let outbox = |rate| -> Result<Arc<dyn Channel>, BuildError> {
        Ok(Arc::new(outbox::Outbox::open(
            &config.general.outbox_dir,
            channel,
            rate,
        )?))
    };
    match channel {
        ChannelId::Email => {
            let c = config
                .channels
                .email
                .as_ref()
                .ok_or_else(|| missing(channel))?;
            match c.transport {
                EmailTransport::Outbox => Ok(Arc::new(
                    outbox::Outbox::open(&config.general.outbox_dir, channel, c.rate_per_second)?
                        .with_email_headers(email::HeaderConfig::new(c)),
                )),
                EmailTransport::Smtp => Ok(Arc::new(email::Smtp::new(c)?)),
            }
        }
        ChannelId::Sms => {
            let c = config
                .channels
                .sms
                .as_ref()
                .ok_or_else(|| missing(channel))?;
            match c.transport {
                SmsTransport::Outbox => outbox(c.rate_per_second),
                SmsTransport::Kannel => Ok(Arc::new(sms::kannel::Kannel::new(config, c)?)),
                SmsTransport::Http => Ok(Arc::new(sms::http::HttpGateway::new(config, c)?)),
            }
        }
        ChannelId::Telegram => {
            let c = config
                .channels
                .telegram
                .as_ref()
                .ok_or_else(|| missing(channel))?;
            match c.transport {
                TelegramTransport::Outbox => outbox(c.rate_per_second),
                TelegramTransport::BotApi => Ok(Arc::new(telegram::Telegram::new(c)?)),
            }
        }
        ChannelId::Facebook | ChannelId::Mastodon | ChannelId::Bluesky => {
            social::build(config, channel)
        }
        ChannelId::Voice => {
            let c = config
                .channels
                .voice
                .as_ref()
                .ok_or_else(|| missing(channel))?;
            match c.transport {
                voice::config::VoiceTransport::Outbox => outbox(c.rate_per_second),
                voice::config::VoiceTransport::Http => {
                    Ok(Arc::new(voice::HttpVoice::new(config, c)?))
                }
            }
        }
        ChannelId::Banner => {
            let c = config
                .channels
                .banner
                .as_ref()
                .ok_or_else(|| missing(channel))?;
            match c.transport {
                BannerTransport::Outbox => outbox(None),
                BannerTransport::Files => match crate::web::Site::from_config(config) {
                    Some(site) => Ok(Arc::new(banner::Files::new(site))),
                    None => Err(missing(channel)),
                },
            }
        }
    }
}

fn missing(channel: ChannelId) -> BuildError {
    BuildError(format!(
        "channel {channel} is not configured ([channels.{channel}] is missing)"
    ))
}
