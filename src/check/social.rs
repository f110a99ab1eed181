//! Readiness of the social accounts (SPEC §15): each network is asked who
//! the token belongs to — Graph `GET /{page-id}?fields=id,name`, Mastodon
//! `verify_credentials`, Bluesky `createSession` — and nothing is posted.

use super::Item;
use crate::channel::social::{bluesky, facebook, mastodon};
use crate::config::Config;
use crate::domain::ChannelId;

pub async fn probe(config: &Config, channel: ChannelId) -> Item {
    let c = &config.channels;
    let (place, result, fix) = match channel {
        ChannelId::Facebook => match c.facebook.as_ref() {
            Some(f) => (
                f.api_url.clone(),
                facebook::reachable(f).await,
                "renew the long-lived Page access token (docs/social.md) in channels.facebook.access_token_file / access_token_env, and check page_id",
            ),
            None => return missing(channel),
        },
        ChannelId::Mastodon => match c.mastodon.as_ref() {
            Some(m) => (
                m.instance_url.clone(),
                mastodon::reachable(m).await,
                "create a new application token with write:statuses and read:accounts (docs/social.md) in channels.mastodon.access_token_file / access_token_env",
            ),
            None => return missing(channel),
        },
        ChannelId::Bluesky => match c.bluesky.as_ref() {
            Some(b) => (
                b.service_url.clone(),
                bluesky::reachable(b).await,
                "check channels.bluesky.identifier and create a new app password (docs/social.md) in channels.bluesky.app_password_file / app_password_env",
            ),
            None => return missing(channel),
        },
        other => return missing(other),
    };
    match result {
        Ok(who) => Item::ok(
            channel.to_string(),
            format!("{place}: signed in as {who}, nothing posted"),
        ),
        Err(e) => Item::fail(channel.to_string(), format!("{place}: {e}"), fix),
    }
}

fn missing(channel: ChannelId) -> Item {
    Item::fail(
        channel.to_string(),
        format!("[channels.{channel}] is missing"),
        format!("add a [channels.{channel}] section to the configuration"),
    )
}
