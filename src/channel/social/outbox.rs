//! The outbox transport of a social channel (SPEC §8.5): the exact post —
//! the `social` text with its link — as one line of
//! `<outbox_dir>/<channel>.jsonl`, addressed to the account.

use super::post_text;
use crate::channel::outbox::Outbox;
use crate::channel::{BuildError, Channel, Message, SendFuture};
use crate::config::Config;
use crate::domain::ChannelId;
use crate::template::ChannelText;

pub struct SocialOutbox {
    inner: Outbox,
    link_base: Option<String>,
}

impl SocialOutbox {
    pub fn open(
        config: &Config,
        channel: ChannelId,
        link_base: Option<String>,
    ) -> Result<Self, BuildError> {
        Ok(Self {
            inner: Outbox::open(&config.general.outbox_dir, channel, None)?,
            link_base,
        })
    }
}

impl Channel for SocialOutbox {
    fn id(&self) -> ChannelId {
        self.inner.id()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn is_outbox(&self) -> bool {
        true
    }

    fn concurrency(&self) -> usize {
        1
    }

    fn rate_per_second(&self) -> Option<f64> {
        None
    }

    fn send<'a>(&'a self, message: &'a Message<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let content = ChannelText {
                subject: None,
                text: post_text(self.link_base.as_deref(), message),
                html: None,
            };
            let post = Message {
                alert: message.alert,
                delivery: message.delivery,
                content: &content,
            };
            self.inner.send(&post).await
        })
    }
}
