//! Social posts (SPEC §15): the comune's Facebook Page, Mastodon and Bluesky
//! accounts. One public post per alert per account; an update or a cancel
//! is a reply in the thread of the alert's first post, so a follower sees
//! the whole story in one place.
//!
//! What the three share lives here: the post's text (the template's
//! `social` text, then a blank line and the link to the public alert
//! page), where a follow-up replies ([`ThreadPosts`], read from the ledger
//! before the run), each network's length rule ([`limits`]), the HTTP
//! client and the mapping of HTTP failures ([`http`]).
//!
//! Retries never duplicate a post, each network its own way: Mastodon's
//! `Idempotency-Key` (the delivery's token); Bluesky's record key, a TID
//! computed from the delivery, looked up with `getRecord` before every
//! write; Facebook, which has neither, reads the Page's recent posts (or the
//! first post's comments) for the alert's link before every write. The
//! look-up runs before every attempt, not only after an error, because
//! after a crash the ledger cannot tell an unknown outcome from a first try
//! (one post per alert: the look-up costs one request).
//!
//! Drills and tests are never posted: no delivery is planned for them
//! (`alert::request` leaves the social channels out, saying so).

pub mod bluesky;
pub mod config;
pub mod facebook;
pub mod http;
pub mod limits;
pub mod mastodon;
mod outbox;

use std::sync::Arc;

use super::{BuildError, Channel};
use crate::config::{Config, SecretRef};
use crate::domain::ChannelId;
use config::SocialTransport;

/// The earlier posts of an alert's thread on one channel, as provider ids:
/// the thread's first post and the latest one before this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadPosts {
    pub root: String,
    pub parent: String,
}

/// The public page the posts link to: the banner's `public_url` (the page
/// that shows the live alerts), with a trailing slash. `None` when the
/// banner has no public URL: posts then carry no link.
pub fn link_base(config: &Config) -> Option<String> {
    let url = config
        .channels
        .banner
        .as_ref()?
        .public_url
        .as_deref()?
        .trim();
    if url.is_empty() {
        return None;
    }
    Some(if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    })
}

/// The link of one alert: the public page, marked with the alert's id, so
/// the post names the message it is about and Facebook's look-up can find
/// our own post again.
pub fn alert_link(base: &str, alert_id: &str) -> String {
    format!("{base}?alert={alert_id}")
}

/// The text of the post: the template's `social` text and the link.
pub fn compose(text: &str, link: Option<&str>) -> String {
    match link {
        Some(link) => format!("{}\n\n{link}", text.trim_end()),
        None => text.to_owned(),
    }
}

/// The post for one message, with its link (if the site has a public URL).
pub(crate) fn post_text(link_base: Option<&str>, message: &super::Message<'_>) -> String {
    let link = link_base.map(|b| alert_link(b, &message.alert.id));
    compose(&message.content.text, link.as_deref())
}

/// Builds the transport configured for a social channel.
pub fn build(config: &Config, channel: ChannelId) -> Result<Arc<dyn Channel>, BuildError> {
    let c = &config.channels;
    let missing = || {
        BuildError(format!(
            "channel {channel} is not configured ([channels.{channel}] is missing)"
        ))
    };
    let transport = c.social_transport(channel).ok_or_else(missing)?;
    let links = link_base(config);
    if transport == SocialTransport::Outbox {
        return Ok(Arc::new(outbox::SocialOutbox::open(
            config, channel, links,
        )?));
    }
    match channel {
        ChannelId::Facebook => {
            let f = c.facebook.as_ref().ok_or_else(missing)?;
            Ok(Arc::new(facebook::Facebook::new(f, links)?))
        }
        ChannelId::Mastodon => {
            let m = c.mastodon.as_ref().ok_or_else(missing)?;
            Ok(Arc::new(mastodon::Mastodon::new(m, links)?))
        }
        ChannelId::Bluesky => {
            let b = c.bluesky.as_ref().ok_or_else(missing)?;
            Ok(Arc::new(bluesky::Bluesky::new(b, links)?))
        }
        other => Err(BuildError(format!("{other} is not a social network"))),
    }
}

/// The account a channel posts as: the delivery's address in the plan.
pub fn account(config: &Config, channel: ChannelId) -> Option<String> {
    let c = &config.channels;
    match channel {
        ChannelId::Facebook => c.facebook.as_ref().map(|f| format!("page:{}", f.page_id)),
        ChannelId::Mastodon => c.mastodon.as_ref().map(|m| m.instance_url.clone()),
        ChannelId::Bluesky => c.bluesky.as_ref().map(|b| format!("@{}", b.identifier)),
        _ => None,
    }
}

/// Reads a configured secret for a transport that needs it.
fn secret(
    channel: ChannelId,
    what: &str,
    secret: Option<&SecretRef>,
) -> Result<crate::config::Secret, BuildError> {
    secret
        .ok_or_else(|| {
            BuildError(format!(
                "channels.{channel}: the api transport needs {what}, {what}_env or {what}_file"
            ))
        })?
        .resolve()
        .map_err(BuildError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_post_ends_with_the_alert_link() {
        let link = alert_link("https://comune.example.it/allerta/", "20261201T100000-00ab");
        assert_eq!(
            compose("Allerta rossa.\n", Some(&link)),
            "Allerta rossa.\n\nhttps://comune.example.it/allerta/?alert=20261201T100000-00ab"
        );
        assert_eq!(compose("Allerta rossa.", None), "Allerta rossa.");
    }
}
