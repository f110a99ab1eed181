//! Social threads (SPEC §15): where an update or a cancel replies. The
//! posts are the provider ids the social channels recorded on the thread's
//! earlier messages; no table of their own.

use std::collections::BTreeMap;

use super::{Ledger, LedgerError};
use crate::domain::ChannelId;

/// One channel's earlier posts in a thread, as provider ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialThread {
    /// The thread's first post on this channel.
    pub root: String,
    /// The latest post before the message being sent.
    pub parent: String,
}

impl Ledger {
    /// Per social channel, the posts that messages of `alert_id`'s thread
    /// made before it (in the order the messages were created), on the same
    /// transport as this message's — an outbox line is no post to reply to.
    /// Channels with no earlier post are absent: the message is then a new
    /// post.
    pub fn social_threads(
        &self,
        alert_id: &str,
    ) -> Result<BTreeMap<ChannelId, SocialThread>, LedgerError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT d.channel, d.provider_id
             FROM alerts cur
             JOIN alerts a ON a.thread_id = cur.thread_id AND a.rowid < cur.rowid
             JOIN deliveries d ON d.alert_id = a.id
             WHERE cur.id = ?1
               AND d.channel IN ('facebook', 'mastodon', 'bluesky')
               AND d.state IN ('sent', 'delivered')
               AND d.provider_id IS NOT NULL
               AND {before} IS NOT DISTINCT FROM {now}
             ORDER BY a.rowid, d.id",
            before = self.conn.json_text("a.transports", "d.channel"),
            now = self.conn.json_text("cur.transports", "d.channel"),
        ))?;
        let mut out: BTreeMap<ChannelId, SocialThread> = BTreeMap::new();
        for row in stmt.query_map([alert_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })? {
            let (channel, post) = row?;
            let channel = channel.parse::<ChannelId>().map_err(LedgerError::Corrupt)?;
            out.entry(channel)
                .and_modify(|t| t.parent = post.clone())
                .or_insert(SocialThread {
                    root: post.clone(),
                    parent: post,
                });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::sql::params;

    use super::super::test_support::ledger;
    use super::*;

    /// An alert of thread `t1` planned with `transports`, and its delivery
    /// on `channel` in `state` with `post` as provider id.
    fn message(
        l: &Ledger,
        id: &str,
        transports: &str,
        channel: &str,
        state: &str,
        post: Option<&str>,
    ) {
        l.conn
            .execute(
                "INSERT INTO alerts (id, template, variables, status, msg_type, audience, channels,
                                     rendered, headline, created_at, operator, host, thread_id, transports)
                 VALUES (?1, 't', '{}', 'Actual', 'Alert', '{}', '[]', '{}', 'h', 'now', 'o', 'h', 't1', ?2)",
                params![id, transports],
            )
            .expect("alert");
        l.conn
            .execute(
                "INSERT INTO deliveries (alert_id, channel, address, language, state, updated_at, token, provider_id)
                 VALUES (?1, ?2, 'account', 'it', ?3, 0, 'k', ?4)",
                params![id, channel, state, post],
            )
            .expect("delivery");
    }

    #[test]
    fn a_follow_up_replies_to_the_first_and_the_latest_post_of_its_thread() {
        let (_dir, l) = ledger();
        let api = r#"{"mastodon": "api", "bluesky": "api"}"#;
        message(&l, "t1", api, "mastodon", "delivered", Some("101"));
        message(&l, "u1", api, "mastodon", "failed", None);
        message(&l, "u2", api, "mastodon", "delivered", Some("103"));
        message(&l, "c1", api, "mastodon", "pending", None);
        let threads = l.social_threads("c1").expect("threads");
        assert_eq!(
            threads.get(&ChannelId::Mastodon),
            Some(&SocialThread {
                root: "101".into(),
                parent: "103".into()
            })
        );
        // The first message has no thread to reply to; later messages are
        // never replied to by earlier ones.
        assert!(l.social_threads("t1").expect("threads").is_empty());
        assert_eq!(
            l.social_threads("u2").expect("threads")[&ChannelId::Mastodon].parent,
            "101"
        );
    }

    #[test]
    fn an_outbox_line_is_no_post_to_reply_to() {
        let (_dir, l) = ledger();
        message(
            &l,
            "t1",
            r#"{"bluesky": "outbox"}"#,
            "bluesky",
            "sent",
            Some("bluesky.jsonl@0"),
        );
        message(
            &l,
            "u1",
            r#"{"bluesky": "api"}"#,
            "bluesky",
            "pending",
            None,
        );
        assert!(l.social_threads("u1").expect("threads").is_empty());
    }
}
