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

pub mod bucket;
pub mod compile;
pub mod config;
pub mod context;
pub mod error;
pub mod evaluate;
pub mod explain;
pub mod matcher;
pub mod store;
pub mod sync;

#[cfg(feature = "python")]
mod bindings;

pub use compile::FlagSet;
pub use config::{ConditionDef, FlagDef, RuleDef};
pub use context::EvalContext;
pub use error::{FerroflagError, Location, Warning};
pub use evaluate::{EvalResult, Reason};
pub use store::{Snapshot, SnapshotStore};
