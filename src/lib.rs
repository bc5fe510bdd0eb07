//! ferroflag: feature flags compiled once into an immutable snapshot and evaluated without locks.
//!
//! ```
//! use ferroflag::{EvalContext, SnapshotStore};
//!
//! let store = SnapshotStore::new();
//! store.publish_json(br#"[{"key": "new-checkout", "enabled": true, "percentage": 50}]"#).unwrap();
//! let result = store.load().evaluate("new-checkout", &EvalContext::new("user-123"));
//! assert!(matches!(result.reason.as_str(), "percentage" | "percentage_excluded"));
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod compile;
pub mod context;
pub mod document;
pub mod error;
pub mod eval;
pub mod events;
pub mod store;
pub mod sync;

pub use eval::bucket;

#[cfg(feature = "python")]
mod bindings;

pub use compile::FlagSet;
pub use context::{AttributeValue, EvalContext, PropertyValue};
pub use document::{ConditionDef, Document, FlagDef, Parsed, PrerequisiteDef, RuleDef, SegmentDef};
pub use error::{FerroflagError, ItemKind, Location, Warning};
pub use eval::decide::{EvalResult, Reason};
pub use eval::trace::Explanation;
pub use store::{Snapshot, SnapshotStore};
