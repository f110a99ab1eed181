//! One readiness probe per channel transport. Adding a transport's probe is
//! one match arm here plus its own file (like `smtp.rs`): the probe connects
//! and authenticates the way the transport will, and sends nothing.

use super::{Item, kannel, sms_http, smtp};
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
        ChannelId::Telegram => match c.telegram.as_ref().map(|t| t.transport) {
            Some(TelegramTransport::BotApi) => not_in_this_build(channel, "bot-api"),
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
    }
}

fn not_in_this_build(channel: ChannelId, transport: &str) -> Item {
    Item::fail(
        channel.to_string(),
        format!("probe for {transport} not available in this build"),
        format!(
            "use an allerta build whose check supports channels.{channel}.transport = \"{transport}\", or set transport = \"outbox\" to train without reaching anyone"
        ),
    )
}

fn not_configured(channel: ChannelId) -> Item {
    Item::fail(
        channel.to_string(),
        format!("[channels.{channel}] is missing"),
        format!("add a [channels.{channel}] section to the configuration"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transport_without_a_probe_fails_and_says_so() {
        let item = not_in_this_build(ChannelId::Telegram, "bot-api");
        assert!(!item.ok);
        assert_eq!(item.item, "telegram");
        assert!(
            item.detail
                .contains("probe for bot-api not available in this build")
        );
        assert!(
            item.fix
                .is_some_and(|f| f.contains("transport = \"outbox\""))
        );
    }
}
