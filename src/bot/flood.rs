//! A per-user budget of updates (SPEC §13): one user sending 60 messages
//! gets the first few of each window handled and the rest dropped
//! unanswered, so they cannot make the bot queue a minute of replies
//! paced at Telegram's 1 message/s per chat. Messages (each answered by a
//! paced message) have a small budget; button presses (answered by edits,
//! which are not paced) a larger one, enough to tick a dozen zones. Other
//! users are handled concurrently anyway (see `Bot::handle_batch`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What an update costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A message: answered with a paced message.
    Message,
    /// A button press or anything else: answered without pacing.
    Other,
}

impl Kind {
    /// Updates of this kind one user may have handled per window.
    pub fn budget(self) -> u32 {
        match self {
            Self::Message => 5,
            Self::Other => 30,
        }
    }
}

pub const WINDOW: Duration = Duration::from_secs(30);

/// Users remembered before old windows are forgotten.
const PRUNE_AT: usize = 10_000;

#[derive(Default)]
pub struct Flood {
    seen: Mutex<HashMap<(u64, Kind), (Instant, u32)>>,
}

impl Flood {
    /// Whether this update of `user` may be handled now.
    pub fn allow(&self, user: u64, kind: Kind) -> bool {
        self.allow_at(user, kind, Instant::now())
    }

    fn allow_at(&self, user: u64, kind: Kind, now: Instant) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= PRUNE_AT {
            seen.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = seen.entry((user, kind)).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= kind.budget()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flooding_user_is_cut_off_and_others_are_not_and_the_window_renews() {
        let flood = Flood::default();
        let t0 = Instant::now();
        let handled = (0..60)
            .filter(|_| flood.allow_at(1, Kind::Message, t0))
            .count();
        assert_eq!(handled, Kind::Message.budget() as usize);
        assert!(
            flood.allow_at(1, Kind::Other, t0),
            "presses have their own budget"
        );
        assert!(
            flood.allow_at(2, Kind::Message, t0),
            "another user is not affected"
        );
        assert!(
            flood.allow_at(1, Kind::Message, t0 + WINDOW),
            "a new window"
        );
    }
}
