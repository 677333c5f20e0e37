//! The live view's shared state: the stack's activity as the one poller last saw it, who follows
//! it, and whether a poller runs. Plain state, so the explorer's model can own it without knowing
//! the HTTP layer that streams it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What the live view watches: the sizes of the v1 and v2 logs and the number of decisions.
pub type Activity = (Option<u64>, Option<u64>, usize);

/// What `/events` clients follow. The poller runs only while some client follows it.
#[derive(Default)]
pub(crate) struct Live {
    activity: tokio::sync::watch::Sender<Option<Activity>>,
    clients: AtomicUsize,
    polling: AtomicBool,
}

impl Live {
    /// Follows the activity from now on.
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<Option<Activity>> {
        self.activity.subscribe()
    }

    /// Takes one of `limit` client places; false when all are taken.
    pub(crate) fn take_client(&self, limit: usize) -> bool {
        if self.clients.fetch_add(1, Ordering::SeqCst) >= limit {
            self.clients.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Gives a client place back.
    pub(crate) fn release_client(&self) {
        self.clients.fetch_sub(1, Ordering::SeqCst);
    }

    /// True for the one caller that must start the poller (none runs).
    pub(crate) fn claim_poller(&self) -> bool {
        !self.polling.swap(true, Ordering::SeqCst)
    }

    /// Whether the poller may stop: nobody follows. A client that subscribed between the count
    /// and the store starts no poller of its own (it saw `polling`), so the turn is taken back.
    pub(crate) fn poller_may_stop(&self) -> bool {
        if self.activity.receiver_count() > 0 {
            return false;
        }
        self.polling.store(false, Ordering::SeqCst);
        self.activity.receiver_count() == 0 || !self.claim_poller()
    }

    /// Publishes what the poller saw; followers wake only on a change.
    pub(crate) fn publish(&self, now: Activity) {
        self.activity.send_if_modified(|seen| {
            let changed = *seen != Some(now);
            *seen = Some(now);
            changed
        });
    }
}
