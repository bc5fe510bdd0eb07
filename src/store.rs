//! The one piece of shared mutable state: the current snapshot, swapped whole (SPEC §5).

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::compile::FlagSet;
use crate::config::{self, FlagDef};
use crate::error::Result;

/// A published flag set and the version it was published as.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub version: u64,
    pub flags: Arc<FlagSet>,
}

impl std::ops::Deref for Snapshot {
    type Target = FlagSet;
    fn deref(&self) -> &FlagSet {
        &self.flags
    }
}

/// Readers load the current snapshot without locking; writers build a new one off to the side and
/// swap it in. A reader holding an old snapshot keeps it alive until it lets go.
#[derive(Debug, Default)]
pub struct SnapshotStore {
    current: ArcSwap<Snapshot>,
}

impl SnapshotStore {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A cheap, short-lived view of the current snapshot; do not hold it across long work.
    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// The current snapshot, owned: for holding across long work or a whole request.
    #[must_use]
    pub fn load_full(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    #[must_use]
    pub fn version(&self) -> u64 {
        self.current.load().version
    }

    /// Publishes a compiled flag set and returns its version. Concurrent publishers each get
    /// their own version number; the last to swap wins.
    pub fn publish(&self, flags: FlagSet) -> u64 {
        let flags = Arc::new(flags);
        let previous = self.current.rcu(|old| Snapshot {
            version: old.version + 1,
            flags: Arc::clone(&flags),
        });
        previous.version + 1
    }

    /// Validates, compiles and publishes definitions; nothing fails here once they are validated.
    pub fn publish_defs(&self, defs: Vec<FlagDef>) -> u64 {
        self.publish(FlagSet::compile(defs))
    }

    /// Parses a wire-format document and publishes it. A rejected document leaves the current
    /// snapshot as it was.
    pub fn publish_json(&self, bytes: &[u8]) -> Result<u64> {
        Ok(self.publish_defs(config::parse_document(bytes)?))
    }
}
