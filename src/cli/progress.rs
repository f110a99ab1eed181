//! Progress bars per channel, on a terminal only.

use std::collections::BTreeMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::dispatch::{Progress, Step};
use crate::domain::ChannelId;

pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<ChannelId, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(BTreeMap::new()),
        }
    }

    fn with(&self, channel: ChannelId, f: impl FnOnce(&ProgressBar)) {
        if let Ok(bars) = self.bars.lock()
            && let Some(bar) = bars.get(&channel)
        {
            f(bar);
        }
    }
}

impl Progress for Bars {
    fn lane_started(&self, channel: ChannelId, unsettled: u64, description: &str) {
        let bar = self.multi.add(ProgressBar::new(unsettled));
        let style =
            ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} {per_sec} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(channel.to_string());
        bar.set_message(description.to_owned());
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(channel, bar);
        }
    }

    fn step(&self, channel: ChannelId, step: Step) {
        self.with(channel, |bar| match step {
            Step::Sent | Step::Failed => {
                // A pending plan adds rows after the bar was sized.
                if bar.length().is_some_and(|len| bar.position() >= len) {
                    bar.inc_length(1);
                }
                bar.inc(1);
            }
            Step::Retrying => {}
        });
    }

    fn lane_finished(&self, channel: ChannelId, stopped: Option<&str>) {
        self.with(channel, |bar| match stopped {
            Some(reason) => bar.abandon_with_message(format!("STOPPED: {reason}")),
            None => bar.finish_with_message("done"),
        });
    }
}
