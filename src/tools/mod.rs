//! Tools a model can call, and the safety boundary every operation passes. So far the boundary
//! (`safety`), which the core already applies to every execution.

pub mod safety;

pub use safety::{SafetyBoundary, SafetyLevel, Violation};
