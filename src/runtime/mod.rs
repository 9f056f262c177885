//! The runtime layer: where and when work happens — the simulated interplanetary link
//! ([`latency`], from the planetary positions in [`crate::ephemeris`]), the [`scheduler`], and
//! [`contain`], which keeps a panicking task from taking the process down with it, and
//! [`attempt`], the one rule on which failed attempts may run again.

pub mod attempt;
pub mod contain;
pub mod latency;
pub mod scheduler;
