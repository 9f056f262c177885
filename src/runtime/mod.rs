//! The runtime layer: where and when work happens — the simulated interplanetary link
//! ([`latency`], from the planetary positions in [`ephemeris`]).

pub mod ephemeris;
pub mod latency;
pub mod scheduler;
