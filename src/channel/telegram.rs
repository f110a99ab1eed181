//! The Telegram channel (SPEC §8.1): `sendMessage` through teloxide in HTML
//! parse mode (the templates already escape every variable), with an inline
//! "✅ Ricevuto" button on direct messages so citizens can acknowledge.
//!
//! Pacing: the engine paces the whole channel evenly at `rate_per_second`;
//! this file adds Telegram's per-chat limit (1 message per second) and its
//! own even slots at the same rate, which a 429 pushes back by `retry_after`:
//! after the pause the waiting sends leave one slot apart again instead of
//! all at once, so Telegram never has to push back twice. teloxide's
//! `Throttle` adaptor is not used: it sends a second's worth of messages at
//! once and provokes 429s.
//!
//! Errors are mapped right here: 429 → transient with `retry_after`; blocked
//! or deactivated user → permanent, recipient gone (the engine deactivates
//! the subscriber); chat not found and other 4xx → permanent; bad token →
//! the channel stops; network errors and 5xx → transient. teloxide decides
//! from the JSON body, not the HTTP status, and itself waits 10 s after a
//! 5xx before returning.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::{
    ChatId as TgChatId, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, ParseMode,
    Recipient,
};
use teloxide::{ApiError, Bot, RequestError};
use tokio::time::Instant;

use super::{Accepted, BuildError, Channel, DeliveryError, Message, SendFuture};
use crate::config::Telegram as TelegramConfig;
use crate::domain::ChannelId;

/// Telegram refuses longer message texts (in characters after entity parsing;
/// we count the HTML source, which is never shorter).
pub const MAX_TEXT_CHARS: usize = 4096;

/// The share of `rate_per_second` actually used (see `rate_per_second`).
const PACING_MARGIN: f64 = 0.97;

/// Messages per second when the config sets no rate: below Telegram's ~30/s.
pub const DEFAULT_RATE: f64 = 25.0;

/// Telegram's limit for one chat.
pub const PER_CHAT_INTERVAL: Duration = Duration::from_secs(1);

/// Builds the teloxide client for `config` (shared by the channel and the bot).
pub fn client(config: &TelegramConfig) -> Result<Bot, BuildError> {
    let token = config
        .token
        .as_ref()
        .ok_or_else(|| {
            BuildError(
                "channels.telegram: the bot-api transport needs token, token_env or token_file"
                    .into(),
            )
        })?
        .resolve()
        .map_err(BuildError)?;
    let url = api_url(&config.api_url)?;
    // teloxide's own defaults (5 s connect, 17 s in total), built here so a
    // failure is an error instead of teloxide's panic.
    let http = teloxide::net::default_reqwest_settings()
        .build()
        .map_err(|e| BuildError(format!("channels.telegram: HTTP client: {e}")))?;
    Ok(Bot::with_client(token.expose(), http).set_api_url(url))
}

/// For readiness checks: getMe with the configured token (nothing is sent).
/// Returns the bot's username.
pub async fn reachable(config: &TelegramConfig) -> Result<String, String> {
    let bot = client(config).map_err(|e| e.0)?;
    match bot.get_me().await {
        Ok(me) => Ok(format!("@{}", me.username())),
        Err(RequestError::Api(ApiError::InvalidToken)) => {
            Err("Telegram refused the bot token (401 Unauthorized)".into())
        }
        Err(e) => Err(error_text(&e)),
    }
}

fn api_url(raw: &str) -> Result<reqwest::Url, BuildError> {
    let mut url = reqwest::Url::parse(raw.trim_end_matches('/'))
        .map_err(|e| BuildError(format!("channels.telegram.api_url `{raw}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(BuildError(format!(
            "channels.telegram.api_url `{raw}`: must be an http(s) URL"
        )));
    }
    // teloxide appends `/bot<token>/<method>`; a bare `/` path would add an
    // empty segment first.
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty();
    }
    Ok(url)
}

/// A chat address from the ledger: a numeric chat id or `@channelusername`.
pub fn recipient(address: &str) -> Result<Recipient, String> {
    let address = address.trim();
    if let Some(name) = address.strip_prefix('@') {
        let valid = name.len() >= 4 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        return if valid {
            Ok(Recipient::ChannelUsername(address.to_owned()))
        } else {
            Err(format!("`{address}` is not a valid channel username"))
        };
    }
    match address.parse::<i64>() {
        Ok(id) if id != 0 => Ok(Recipient::Id(TgChatId(id))),
        _ => Err(format!("`{address}` is not a Telegram chat id")),
    }
}

/// Callback data of the acknowledgement button: the delivery id and the
/// first 16 hex digits (64 bits) of the delivery's secret token, so a button
/// cannot be forged for someone else's delivery. The bot also checks that
/// the press comes from the chat the delivery was sent to.
pub fn ack_data(delivery_id: i64, token: &str) -> String {
    let prefix: String = token.chars().take(16).collect();
    format!("ack:{delivery_id}:{prefix}")
}

/// Parses [`ack_data`] back into (delivery id, token prefix).
pub fn parse_ack_data(data: &str) -> Option<(i64, &str)> {
    let rest = data.strip_prefix("ack:")?;
    let (id, token) = rest.split_once(':')?;
    let id = id.parse().ok()?;
    (token.len() == 16 && token.chars().all(|c| c.is_ascii_hexdigit())).then_some((id, token))
}

/// The label of the acknowledgement button, in the recipient's language.
pub fn ack_label(language: &str) -> &'static str {
    match language {
        "en" => "✅ Received",
        _ => "✅ Ricevuto",
    }
}

/// Telegram's per-chat limit: at most one message per chat per interval.
/// Keeps the next free instant of recently used chats only.
pub struct ChatPacer {
    interval: Duration,
    next: Mutex<HashMap<String, Instant>>,
}

impl ChatPacer {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            next: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves this chat's next slot and waits for it.
    pub async fn wait(&self, chat: &str) {
        let slot = {
            // Never held across an await; poisoning would need a panic while
            // comparing two instants.
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if next.len() > 4096 {
                // Chats whose slot has passed need no memory.
                next.retain(|_, at| *at > now);
            }
            let slot = next.get(chat).map_or(now, |at| (*at).max(now));
            next.insert(chat.to_owned(), slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// Even slots at the channel's rate that a 429 can push back: after
/// `retry_after` the sends that waited leave one interval apart, not in a
/// burst. In series with the engine's pacer at the same rate it costs
/// nothing in normal operation and evens out scheduling jitter.
struct Slots {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Slots {
    fn new(per_second: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(None),
        }
    }

    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Telegram said "retry after": no slot before `at`.
    fn hold_until(&self, at: Instant) {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        *next = Some(next.map_or(at, |n| n.max(at)));
    }
}

pub struct Telegram {
    bot: Bot,
    api_url: String,
    broadcast_chat: Option<String>,
    rate: f64,
    chats: ChatPacer,
    slots: Slots,
}

impl Telegram {
    pub fn new(config: &TelegramConfig) -> Result<Self, BuildError> {
        let rate = config.rate_per_second.unwrap_or(DEFAULT_RATE);
        Ok(Self {
            bot: client(config)?,
            api_url: config.api_url.clone(),
            broadcast_chat: config.broadcast_chat.clone(),
            rate,
            chats: ChatPacer::new(PER_CHAT_INTERVAL),
            slots: Slots::new(rate),
        })
    }

    /// The public channel post carries no button: its followers are not
    /// deliveries of ours.
    fn is_broadcast(&self, m: &Message<'_>) -> bool {
        m.delivery.recipient == super::Recipient::Broadcast
            || self.broadcast_chat.as_deref() == Some(m.delivery.address.as_str())
    }

    async fn send_one(&self, m: &Message<'_>) -> Result<Accepted, DeliveryError> {
        let chars = m.content.text.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(DeliveryError::permanent(format!(
                "text of {chars} characters exceeds Telegram's {MAX_TEXT_CHARS}"
            )));
        }
        let to = recipient(&m.delivery.address).map_err(DeliveryError::permanent)?;
        // The chat's second first, then a channel slot: a message that
        // waited for its chat must not take a slot and then leave late.
        self.chats.wait(&m.delivery.address).await;
        self.slots.wait().await;
        let mut request = self
            .bot
            .send_message(to, m.content.text.clone())
            .parse_mode(ParseMode::Html)
            .link_preview_options(LinkPreviewOptions {
                is_disabled: true,
                url: None,
                prefer_small_media: false,
                prefer_large_media: false,
                show_above_text: false,
            });
        if !self.is_broadcast(m) {
            request = request.reply_markup(InlineKeyboardMarkup::new([[
                InlineKeyboardButton::callback(
                    ack_label(&m.delivery.language),
                    ack_data(m.delivery.id, &m.delivery.token),
                ),
            ]]));
        }
        match request.await {
            Ok(sent) => Ok(Accepted {
                provider_id: Some(sent.id.0.to_string()),
                delivered: false,
            }),
            Err(e) => {
                let error = classify(e);
                if let DeliveryError::Transient {
                    retry_after: Some(wait),
                    ..
                } = &error
                {
                    self.slots.hold_until(Instant::now() + *wait);
                }
                Err(error)
            }
        }
    }
}

/// A teloxide error as text that is safe to log and store: reqwest's own
/// message names the request URL, which holds the bot token.
pub fn error_text(error: &RequestError) -> String {
    match error {
        RequestError::Network(e) => network_error_text(e),
        RequestError::Api(api) => format!("Telegram: {api}"),
        other => format!("Telegram: {other}"),
    }
}

fn network_error_text(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out (the message may or may not have been delivered)"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut text = format!("Telegram: network: {what}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !s_text.contains("/bot") {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Maps a teloxide error to what the engine should do with the delivery.
pub fn classify(error: RequestError) -> DeliveryError {
    match error {
        RequestError::RetryAfter(seconds) => DeliveryError::Transient {
            reason: format!("Telegram: too many requests, retry after {seconds}"),
            retry_after: Some(seconds.duration()),
        },
        RequestError::Api(api) => classify_api(api),
        RequestError::MigrateToChatId(id) => DeliveryError::permanent(format!(
            "Telegram: the group became a supergroup with chat id {id}; update the address"
        )),
        RequestError::Network(e) => DeliveryError::transient(network_error_text(&e)),
        RequestError::Io(e) => DeliveryError::transient(format!("Telegram: I/O: {e}")),
        // Not Telegram's JSON (a proxy's error page, a 5xx): try again.
        RequestError::InvalidJson { raw, .. } => DeliveryError::transient(format!(
            "Telegram: unexpected response: {}",
            raw.chars().take(200).collect::<String>()
        )),
    }
}

fn classify_api(api: ApiError) -> DeliveryError {
    let gone = |reason: String| DeliveryError::Permanent {
        reason,
        recipient_gone: true,
    };
    match api {
        ApiError::BotBlocked | ApiError::UserDeactivated => gone(format!("Telegram: {api}")),
        ApiError::InvalidToken => DeliveryError::ChannelDown {
            reason:
                "Telegram refused the bot token (401 Unauthorized): check channels.telegram.token"
                    .into(),
        },
        ApiError::Unknown(text) => classify_unknown(text),
        // Chat not found, kicked, can't initiate conversation, bad HTML…:
        // this message will never go through to this address.
        other => DeliveryError::permanent(format!("Telegram: {other}")),
    }
}

/// Descriptions teloxide does not know: Telegram prefixes them with the
/// meaning of their HTTP status.
fn classify_unknown(text: String) -> DeliveryError {
    let permanent = ["Bad Request", "Forbidden", "Not Found"];
    if permanent.iter().any(|p| text.starts_with(p)) {
        DeliveryError::permanent(format!("Telegram: {text}"))
    } else if text.starts_with("Unauthorized") {
        DeliveryError::ChannelDown {
            reason: format!("Telegram: {text}: check channels.telegram.token"),
        }
    } else {
        DeliveryError::transient(format!("Telegram: {text}"))
    }
}

impl Channel for Telegram {
    fn id(&self) -> ChannelId {
        ChannelId::Telegram
    }

    fn describe(&self) -> String {
        format!("Telegram Bot API at {}", self.api_url)
    }

    fn concurrency(&self) -> usize {
        32
    }

    fn rate_per_second(&self) -> Option<f64> {
        // Telegram counts messages in a sliding second. Pacing at exactly the
        // limit lets scheduling jitter put limit+1 messages in one window now
        // and then (measured: ~90 429s in 3,000 at 30/s against a strict
        // server); 3 % below it provoked none and stays within 5 % of the
        // ideal time.
        Some(self.rate * PACING_MARGIN)
    }

    fn send<'a>(&'a self, message: &'a Message<'a>) -> SendFuture<'a> {
        Box::pin(self.send_one(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_chat_ids_or_channel_names() {
        assert!(matches!(
            recipient("-1001234567890"),
            Ok(Recipient::Id(TgChatId(-1001234567890)))
        ));
        assert!(matches!(
            recipient("@allerta_ml"),
            Ok(Recipient::ChannelUsername(ref n)) if n == "@allerta_ml"
        ));
        assert!(recipient("@a b").is_err());
        assert!(recipient("0").is_err());
        assert!(recipient("erased").is_err());
    }

    #[test]
    fn ack_data_round_trips_and_fits_telegram_64_bytes() {
        let token = "0123456789abcdef0123456789abcdef";
        let data = ack_data(i64::MAX, token);
        assert!(data.len() <= 64, "{data}");
        assert_eq!(parse_ack_data(&data), Some((i64::MAX, "0123456789abcdef")));
        assert_eq!(parse_ack_data("ack:12:short"), None);
        assert_eq!(parse_ack_data("zone:centro"), None);
    }

    #[test]
    fn errors_say_whether_to_retry() {
        assert!(matches!(
            classify(RequestError::RetryAfter(teloxide::types::Seconds::from_seconds(3))),
            DeliveryError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            classify(RequestError::Api(ApiError::BotBlocked)),
            DeliveryError::Permanent {
                recipient_gone: true,
                ..
            }
        ));
        assert!(matches!(
            classify(RequestError::Api(ApiError::UserDeactivated)),
            DeliveryError::Permanent {
                recipient_gone: true,
                ..
            }
        ));
        assert!(matches!(
            classify(RequestError::Api(ApiError::ChatNotFound)),
            DeliveryError::Permanent {
                recipient_gone: false,
                ..
            }
        ));
        assert!(matches!(
            classify(RequestError::Api(ApiError::InvalidToken)),
            DeliveryError::ChannelDown { .. }
        ));
        assert!(matches!(
            classify(RequestError::Api(ApiError::Unknown(
                "Internal Server Error".into()
            ))),
            DeliveryError::Transient { .. }
        ));
        assert!(matches!(
            classify(RequestError::Api(ApiError::Unknown(
                "Forbidden: bot is not a member of the channel chat".into()
            ))),
            DeliveryError::Permanent { .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn one_message_per_second_per_chat() {
        let pacer = ChatPacer::new(PER_CHAT_INTERVAL);
        let start = Instant::now();
        pacer.wait("1").await;
        pacer.wait("2").await;
        assert_eq!(start.elapsed(), Duration::ZERO, "other chats do not wait");
        pacer.wait("1").await;
        pacer.wait("1").await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn network_errors_never_show_the_token() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener); // nothing listens there any more
        let error = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/bot123:SECRET/SendMessage"))
            .send()
            .await
            .expect_err("connection refused");
        assert!(
            error.to_string().contains("SECRET"),
            "reqwest shows the URL"
        );
        let e = RequestError::Network(std::sync::Arc::new(error));
        let text = error_text(&e);
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("cannot connect"), "{text}");
        let DeliveryError::Transient { reason, .. } = classify(e) else {
            panic!("a refused connection is transient");
        };
        assert!(!reason.contains("SECRET"), "{reason}");
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_429_waiting_sends_leave_one_slot_apart() {
        let slots = std::sync::Arc::new(Slots::new(10.0));
        let start = Instant::now();
        slots.wait().await;
        slots.hold_until(start + Duration::from_secs(2));
        let mut waiters = Vec::new();
        for _ in 0..3 {
            let slots = slots.clone();
            waiters.push(tokio::spawn(async move {
                slots.wait().await;
                start.elapsed()
            }));
        }
        let mut times = Vec::new();
        for w in waiters {
            times.push(w.await.expect("waiter"));
        }
        times.sort();
        assert_eq!(
            times,
            [2000, 2100, 2200].map(Duration::from_millis),
            "no burst when the hold ends"
        );
    }

    #[test]
    fn api_url_without_trailing_slash_segment() {
        let url = api_url("http://127.0.0.1:8081/").map(|u| u.to_string());
        assert_eq!(url.ok().as_deref(), Some("http://127.0.0.1:8081/"));
        assert!(api_url("ftp://x").is_err());
    }
}
