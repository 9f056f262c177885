//! Veyra: a terminal mission console for governable LLM work over slow links.
//!
//! The library is the embedded runtime core; the `veyra` binary puts the console ([`tui`]) and a
//! headless CLI ([`cli`]) on top of it. The core publishes every state change as an [`Event`].
//!
//! Layers, lowest first (the [`LAYERS`] table; a test reads every `crate::…` path of the code
//! and fails on one that points at its own layer or above):
//! 1. leaves: [`sanitize`], the one sanitizer for untrusted text on its way to a terminal;
//!    [`limits`], which keeps numbers from outside from overflowing a clock and paces retries; [`fsread`], which
//!    reads every file Veyra is handed as a bounded, regular file; [`fswrite`], which replaces
//!    a host file whole; [`ephemeris`], where the planets are; [`duration`], the short form of
//!    a duration; [`web`], where every HTTP client starts (one TLS setup);
//! 2. [`config`]; 3. [`logging`], [`events`]; 4. [`governance`]; 5. [`models`]; 6. [`tools`];
//! 7. [`runtime`]; 8. [`error`] (the library's top-level error, converting each layer's own at
//!    the edge); 9. [`core`], [`signals`] (the ones that close Veyra, for both front ends); 10. [`benchmarks`]; 11. [`service`] (one runtime serving many clients over a socket); 12. [`fleet`] (workers on
//!    NATS JetStream, serving their runtimes' events and commands on the bus as [`service`]
//!    does on a socket); 13. [`cli`], [`tui`] (the binary wires the one to the other:
//!    `veyra bench --tui`).

// No unsafe code: what Veyra needs of the OS goes through libraries made for it (rustix,
// crossterm, rusqlite).
#![forbid(unsafe_code)]
// The library is the front door for embedders (`VeyraCore::builder`, `examples/embed.rs`):
// everything public says what it is (CI's clippy `-D warnings` holds it).
#![warn(missing_docs)]
// Nothing a user, a file, the network or a model can influence may panic: no unwrap or expect
// outside tests (an `allow` must carry the proof that it cannot fail).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

/// The layers, lowest first: a module may import from the layers before its own only (not
/// from its own layer's other modules, nor from above). `every_module_imports_only_from_the_
/// layers_below_it` holds the code to it.
pub const LAYERS: &[&[&str]] = &[
    &[
        "sanitize",
        "limits",
        "fsread",
        "fswrite",
        "ephemeris",
        "duration",
        "web",
    ],
    &["config"],
    &["logging", "events"],
    &["governance"],
    &["models"],
    &["tools"],
    &["runtime"],
    &["error"],
    &["core", "signals"],
    &["benchmarks"],
    &["service"],
    &["fleet"],
    &["cli", "tui"],
];

pub mod benchmarks;
pub mod cli;
pub mod config;
pub mod core;
pub mod duration;
pub mod ephemeris;
pub mod error;
pub mod events;
pub mod fleet;
pub mod fsread;
pub mod fswrite;
pub mod governance;
#[cfg(test)]
mod layering;
pub mod limits;
pub mod logging;
pub mod models;
pub mod runtime;
pub mod sanitize;
pub mod service;
pub mod signals;
pub mod tools;
pub mod tui;
pub mod web;

pub use crate::config::{VeyraConfig, load_config};
pub use crate::core::{
    ExecutionRequest, ExecutionResult, ExecutionStream, HealthReport, VeyraCore,
};
pub use crate::error::{ExitCode, VeyraError};
pub use crate::events::{Event, EventBus, ExecutionId, Priority};
