//! Veyra: a terminal mission console for governable LLM work over slow links.
//!
//! The library is the embedded runtime core; the `veyra` binary puts the console ([`tui`]) and a
//! headless CLI ([`cli`]) on top of it. Layers, lowest first: [`config`], [`logging`],
//! [`events`] → [`governance`] → [`models`] → [`core`] → [`cli`], [`tui`]. A module imports only
//! from layers below it, and the core publishes every state change as an [`Event`].

pub mod cli;
pub mod config;
pub mod core;
pub mod error;
pub mod events;
pub mod governance;
pub mod logging;
pub mod models;
pub mod runtime;
pub mod tools;
pub mod tui;

pub use crate::config::{VeyraConfig, load_config};
pub use crate::core::{
    ExecutionRequest, ExecutionResult, ExecutionStream, HealthReport, VeyraCore,
};
pub use crate::error::{ExitCode, VeyraError};
pub use crate::events::{Event, EventBus, ExecutionId, Priority};
