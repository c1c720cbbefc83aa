//! The client's listener registries: apps add a listener and get a
//! [`ListenerId`] back, which removes it again (a screen that closes stops
//! hearing about the outbox). Notifications go to a snapshot taken when
//! they start, outside any lock, so a listener may add or remove listeners
//! (or call back into the client) without deadlocking.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A registration: returned when a listener is added, and the only way to
/// remove it. Unique across all the listener kinds of one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(pub u64);

/// Hands out [`ListenerId`]s, never the same one twice for one client.
#[derive(Debug, Default)]
pub(crate) struct ListenerIds(AtomicU64);

impl ListenerIds {
    pub(crate) fn next(&self) -> ListenerId {
        ListenerId(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// The listeners of one kind, in the order they were added.
pub(crate) struct ListenerSet<L: ?Sized> {
    entries: Mutex<Vec<(ListenerId, Arc<L>)>>,
}

impl<L: ?Sized> Default for ListenerSet<L> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
        }
    }
}

impl<L: ?Sized> ListenerSet<L> {
    /// The list. A listener that panicked while another thread held the
    /// lock leaves it poisoned, but the list itself is still whole.
    fn entries(&self) -> MutexGuard<'_, Vec<(ListenerId, Arc<L>)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `listener` under a fresh id from `ids`, and returns the id.
    pub(crate) fn add(&self, ids: &ListenerIds, listener: Arc<L>) -> ListenerId {
        let id = ids.next();
        self.entries().push((id, listener));
        id
    }

    /// Removes the listener added under `id`; false if there is none.
    pub(crate) fn remove(&self, id: ListenerId) -> bool {
        let mut v = self.entries();
        let before = v.len();
        v.retain(|(i, _)| *i != id);
        v.len() != before
    }

    /// The listeners now. A listener removed after this was taken may still
    /// hear the notification under way, and no later one.
    pub(crate) fn snapshot(&self) -> Vec<Arc<L>> {
        self.entries().iter().map(|(_, l)| Arc::clone(l)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_remove_only_their_own() {
        let ids = ListenerIds::default();
        let set: ListenerSet<str> = ListenerSet::default();
        let a = set.add(&ids, Arc::from("a"));
        let b = set.add(&ids, Arc::from("b"));
        assert_ne!(a, b);
        assert!(set.remove(a));
        assert!(!set.remove(a), "removing twice is a no-op");
        let left: Vec<String> = set.snapshot().iter().map(|s| s.to_string()).collect();
        assert_eq!(left, vec!["b".to_owned()]);
        assert!(set.remove(b));
        assert!(set.snapshot().is_empty());
    }
}
