//! The `files` transport of the banner channel: a delivery (one per alert,
//! address `public` or `drill`) republishes every web file from the ledger
//! (see `crate::web`). The files are confirmed on disk when it returns, so
//! the delivery is `delivered` at once.

use std::sync::Arc;

use super::{Accepted, Channel, DeliveryError, Message, SendFuture};
use crate::domain::ChannelId;
use crate::web::Site;

pub struct Files {
    site: Arc<Site>,
}

impl Files {
    pub fn new(site: Site) -> Self {
        Self {
            site: Arc::new(site),
        }
    }
}

impl Channel for Files {
    fn id(&self) -> ChannelId {
        ChannelId::Banner
    }

    fn describe(&self) -> String {
        format!("files → {}", self.site.output_dir.display())
    }

    fn concurrency(&self) -> usize {
        // Every publication rewrites the same files.
        1
    }

    fn rate_per_second(&self) -> Option<f64> {
        None
    }

    fn send<'a>(&'a self, message: &'a Message<'a>) -> SendFuture<'a> {
        let site = Arc::clone(&self.site);
        let file = if message.delivery.address == "public" {
            "banner.json"
        } else {
            "drill-banner.json"
        };
        Box::pin(async move {
            // File and SQLite I/O: off the async workers.
            let published = tokio::task::spawn_blocking(move || site.publish())
                .await
                .map_err(|e| DeliveryError::transient(format!("banner publisher: {e}")))?;
            match published {
                Ok(_) => Ok(Accepted {
                    provider_id: Some(file.to_owned()),
                    delivered: true,
                }),
                // A full disk or a permission fixed by the operator may
                // recover: retry within the retry policy.
                Err(e) => Err(DeliveryError::transient(e.to_string())),
            }
        })
    }
}
