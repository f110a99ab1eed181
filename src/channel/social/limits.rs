//! Each network's length limit, counted as the network counts it (SPEC
//! §15): Mastodon 500 grapheme clusters with every URL counted as 23 (its
//! link shortening), Bluesky 300 graphemes of the text as written, Facebook
//! 63,206 characters. `templates check` and `send` refuse a longer post
//! before anything leaves; the channels check again right before posting.

use std::sync::LazyLock;

use regex::Regex;
use unicode_segmentation::UnicodeSegmentation;

use super::{alert_link, compose};
use crate::domain::ChannelId;

pub const MASTODON_MAX: usize = 500;
/// Mastodon counts every URL as this many characters, whatever its length.
pub const MASTODON_URL_WEIGHT: usize = 23;
pub const BLUESKY_MAX: usize = 300;
pub const FACEBOOK_MAX: usize = 63_206;

/// An alert id of the real length, for checking a text before the alert
/// exists (`%Y%m%dT%H%M%S-xxxx`).
pub const SAMPLE_ALERT_ID: &str = "20260101T000000-0000";

static URL: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"https?://[^\s<>]+[^\s<>.,;:!?)\]'\x22]").ok());

/// Byte ranges of the URLs in `text` (http and https links).
pub fn urls(text: &str) -> Vec<(usize, usize)> {
    match URL.as_ref() {
        Some(re) => re.find_iter(text).map(|m| (m.start(), m.end())).collect(),
        None => Vec::new(),
    }
}

pub fn graphemes(text: &str) -> usize {
    text.graphemes(true).count()
}

/// Mastodon's length: graphemes outside URLs, 23 for each URL.
pub fn mastodon_length(text: &str) -> usize {
    let mut total = 0;
    let mut at = 0;
    for (start, end) in urls(text) {
        total += graphemes(&text[at..start]) + MASTODON_URL_WEIGHT;
        at = end;
    }
    total + graphemes(&text[at..])
}

/// (length as the network counts it, the network's maximum, the unit).
pub fn measure(channel: ChannelId, text: &str) -> Option<(usize, usize, &'static str)> {
    match channel {
        ChannelId::Mastodon => Some((
            mastodon_length(text),
            MASTODON_MAX,
            "characters (graphemes, each URL counted as 23)",
        )),
        ChannelId::Bluesky => Some((graphemes(text), BLUESKY_MAX, "graphemes")),
        ChannelId::Facebook => Some((text.chars().count(), FACEBOOK_MAX, "characters")),
        _ => None,
    }
}

/// Why the post of `text` (the link included) cannot go out, if it cannot.
pub fn problem(channel: ChannelId, post: &str) -> Option<String> {
    let (n, max, unit) = measure(channel, post)?;
    (n > max).then(|| format!("{n} {unit} exceed {channel}'s limit of {max}"))
}

/// For `preview`: the post's length as the network counts it, the link
/// included (`None` for other channels).
pub fn length_json(
    channel: ChannelId,
    text: &str,
    link_base: Option<&str>,
) -> Option<serde_json::Value> {
    let link = link_base.map(|b| alert_link(b, SAMPLE_ALERT_ID));
    let (n, max, unit) = measure(channel, &compose(text, link.as_deref()))?;
    Some(serde_json::json!({ "length": n, "max": max, "unit": unit, "with_link": link.is_some() }))
}

/// For `preview`: "N of MAX unit (with the link)".
pub fn length_line(channel: ChannelId, text: &str, link_base: Option<&str>) -> Option<String> {
    let v = length_json(channel, text, link_base)?;
    Some(format!(
        "{} of {} {}{}",
        v["length"],
        v["max"],
        v["unit"].as_str().unwrap_or(""),
        if link_base.is_some() {
            ", with the link to the alert page added when posting"
        } else {
            ""
        }
    ))
}

/// The check behind `templates check` and `send`: the template's text with
/// the link it will carry (an alert id of the real length).
pub fn check_text(channel: ChannelId, text: &str, link_base: Option<&str>) -> Option<String> {
    let link = link_base.map(|b| alert_link(b, SAMPLE_ALERT_ID));
    let post = compose(text, link.as_deref());
    problem(channel, &post).map(|p| match link_base {
        Some(_) => format!("{p} (with the link to the alert page)"),
        None => p,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mastodon_counts_each_url_as_23() {
        let url = format!("https://www.comune.example.it/{}", "a".repeat(200));
        let text = format!("Allerta: {url} fine.");
        assert_eq!(
            mastodon_length(&text),
            "Allerta: ".len() + 23 + " fine.".len()
        );
        assert_eq!(urls("vedi http://x.it/a.").len(), 1);
        let (s, e) = urls("vedi http://x.it/a.")[0];
        assert_eq!(&"vedi http://x.it/a."[s..e], "http://x.it/a");
    }

    #[test]
    fn graphemes_not_code_points() {
        // A family emoji is 7 code points, one grapheme; "è" decomposed is two.
        let family = "👨\u{200d}👩\u{200d}👧\u{200d}👦";
        assert_eq!(family.chars().count(), 7);
        assert_eq!(graphemes(family), 1);
        assert_eq!(graphemes("e\u{300}"), 1);
        assert_eq!(problem(ChannelId::Bluesky, &family.repeat(300)), None);
        assert!(problem(ChannelId::Bluesky, &family.repeat(301)).is_some());
    }

    #[test]
    fn the_link_counts_against_the_limit() {
        let base = "https://www.comune.example.it/allerta/";
        // 300 graphemes fit alone, not with "\n\n" and the link.
        let text = "a".repeat(300);
        assert_eq!(check_text(ChannelId::Bluesky, &text, None), None);
        let p = check_text(ChannelId::Bluesky, &text, Some(base)).expect("too long");
        assert!(p.contains("bluesky") && p.contains("300"), "{p}");
        // Mastodon: 475 + 2 + 23 = 500 fits, 476 does not.
        assert_eq!(
            check_text(ChannelId::Mastodon, &"a".repeat(475), Some(base)),
            None
        );
        assert!(check_text(ChannelId::Mastodon, &"a".repeat(476), Some(base)).is_some());
    }
}
