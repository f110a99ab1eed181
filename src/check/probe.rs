//! One readiness probe per channel transport: one match arm here, the probe
//! in its own file (`smtp.rs`, `kannel.rs`, …) or in the transport itself.
//! Each connects and authenticates the way the transport will, and sends
//! nothing.

use super::{Item, kannel, sms_http, smtp};
use crate::channel::social::config::SocialTransport;
use crate::config::{BannerTransport, Config, EmailTransport, SmsTransport, TelegramTransport};
use crate::domain::ChannelId;

/// Channels configured with the outbox transport.
pub fn outbox_channels(config: &Config) -> Vec<ChannelId> {
    let c = &config.channels;
    let mut ids = Vec::new();
    if c.telegram
        .as_ref()
        .is_some_and(|t| t.transport == TelegramTransport::Outbox)
    {
        ids.push(ChannelId::Telegram);
    }
    if c.sms
        .as_ref()
        .is_some_and(|s| s.transport == SmsTransport::Outbox)
    {
        ids.push(ChannelId::Sms);
    }
    if c.email
        .as_ref()
        .is_some_and(|e| e.transport == EmailTransport::Outbox)
    {
        ids.push(ChannelId::Email);
    }
    if c.banner
        .as_ref()
        .is_some_and(|b| b.transport == BannerTransport::Outbox)
    {
        ids.push(ChannelId::Banner);
    }
    for social in ChannelId::SOCIAL {
        if c.social_transport(social) == Some(SocialTransport::Outbox) {
            ids.push(social);
        }
    }
    if c.voice
        .as_ref()
        .is_some_and(|v| v.transport == crate::channel::voice::config::VoiceTransport::Outbox)
    {
        ids.push(ChannelId::Voice);
    }
    ids
}

/// Probes one configured channel with its transport.
pub async fn channel(config: &Config, channel: ChannelId) -> Item {
    if outbox_channels(config).contains(&channel) {
        let file = config.general.outbox_dir.join(format!("{channel}.jsonl"));
        return Item::ok(
            channel.to_string(),
            format!("outbox transport → {} (reaches nobody)", file.display()),
        );
    }
    let c = &config.channels;
    match channel {
        ChannelId::Email => match c.email.as_ref() {
            Some(email) if email.transport == EmailTransport::Smtp => smtp::probe(email).await,
            _ => not_configured(channel),
        },
        ChannelId::Sms => match c.sms.as_ref() {
            Some(sms) if sms.transport == SmsTransport::Kannel => kannel::probe(sms).await,
            Some(sms) if sms.transport == SmsTransport::Http => sms_http::probe(sms).await,
            _ => not_configured(channel),
        },
        ChannelId::Telegram => match c.telegram.as_ref() {
            Some(t) if t.transport == TelegramTransport::BotApi => telegram(t).await,
            _ => not_configured(channel),
        },
        ChannelId::Banner => match c.banner.as_ref() {
            Some(banner) if banner.transport == BannerTransport::Files => super::writable_dir(
                "banner",
                &banner.output_dir,
                "channels.banner.output_dir",
                &match &banner.public_url {
                    Some(url) => format!("the web server must publish it at {url}"),
                    None => {
                        "channels.banner.public_url is not set: CAP links will be relative".into()
                    }
                },
            ),
            _ => not_configured(channel),
        },
        ChannelId::Facebook | ChannelId::Mastodon | ChannelId::Bluesky => {
            super::social::probe(config, channel).await
        }
        // Nothing is probed: a call costs money and rings a phone. The
        // configuration was checked when the channel was built.
        ChannelId::Voice => match crate::channel::build(config, channel) {
            Ok(v) => Item::ok(
                "voice",
                format!(
                    "{}: configured, not probed (a probe would place a call)",
                    v.describe()
                ),
            ),
            Err(e) => Item::fail(
                "voice",
                e.0,
                "fix [channels.voice] (see examples/voice-twilio.toml)",
            ),
        },
    }
}

/// getMe with the configured token, through the channel's own client.
async fn telegram(config: &crate::config::Telegram) -> Item {
    match crate::channel::telegram::reachable(config).await {
        Ok(bot) => Item::ok(
            "telegram",
            format!(
                "{}: token accepted (getMe: {bot}), nothing sent",
                config.api_url
            ),
        ),
        Err(e) if e.contains("refused the bot token") => Item::fail(
            "telegram",
            format!("{}: {e}", config.api_url),
            "check the bot token from @BotFather (channels.telegram.token_file / token_env; Debian install: /etc/allerta/credentials/telegram-token)",
        ),
        Err(e) => Item::fail(
            "telegram",
            format!("{}: {e}", config.api_url),
            "check that this host reaches channels.telegram.api_url (proxy, firewall, DNS)",
        ),
    }
}

fn not_configured(channel: ChannelId) -> Item {
    Item::fail(
        channel.to_string(),
        format!("[channels.{channel}] is missing"),
        format!("add a [channels.{channel}] section to the configuration"),
    )
}
