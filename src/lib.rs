//! Veyra: a terminal mission console for governable LLM work over slow links.
//!
//! The library is the embedded runtime core; the `veyra` binary puts the console ([`tui`]) and a
//! headless CLI ([`cli`]) on top of it. Layers, lowest first: [`config`], [`logging`],
//! [`events`] → [`governance`] → [`models`] → [`core`] → [`benchmarks`] → [`cli`], [`tui`]. A module imports only
//! from layers below it, and the core publishes every state change as an [`Event`]. Beside the
//! layers, [`sanitize`] is the one sanitizer for untrusted text on its way to a terminal,
//! [`limits`] keeps numbers from outside from overflowing a clock, and [`fsread`] reads every file
//! Veyra is handed as a bounded, regular file.

// Nothing a user, a file, the network or a model can influence may panic: no unwrap or expect
// outside tests (an `allow` must carry the proof that it cannot fail).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod benchmarks;
pub mod cli;
pub mod config;
pub mod core;
pub mod error;
pub mod events;
pub mod fsread;
pub mod governance;
pub mod limits;
pub mod logging;
pub mod models;
pub mod runtime;
pub mod sanitize;
pub mod tools;
pub mod tui;

pub use crate::config::{VeyraConfig, load_config};
pub use crate::core::{
    ExecutionRequest, ExecutionResult, ExecutionStream, HealthReport, VeyraCore,
};
pub use crate::error::{ExitCode, VeyraError};
pub use crate::events::{Event, EventBus, ExecutionId, Priority};
