//! Evaluation (docs/spec.md §2–§5): one decision walk (`decide`), the tracer `explain()` runs it
//! with (`trace`), hashing (`bucket`), operators (`matcher`), patterns and their bounds (`pattern`)
//! and instants (`time`).

pub mod bucket;
pub mod decide;
pub mod matcher;
pub mod pattern;
pub mod time;
pub mod trace;
