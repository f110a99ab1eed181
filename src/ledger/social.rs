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
        let mut stmt = self.conn.prepare(
            "SELECT d.channel, d.provider_id
             FROM alerts cur
             JOIN alerts a ON a.thread_id = cur.thread_id AND a.rowid < cur.rowid
             JOIN deliveries d ON d.alert_id = a.id
             WHERE cur.id = ?1
               AND d.channel IN ('facebook', 'mastodon', 'bluesky')
               AND d.state IN ('sent', 'delivered')
               AND d.provider_id IS NOT NULL
               AND json_extract(a.transports, '$.' || d.channel)
                   IS json_extract(cur.transports, '$.' || d.channel)
             ORDER BY a.rowid, d.id",
        )?;
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
