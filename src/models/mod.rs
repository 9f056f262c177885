//! The model layer: the backend trait, the registry and the backends Veyra ships.

pub mod base;
pub mod mock;
pub mod registry;

pub use base::{
    ChunkStream, ModelBackend, ModelError, ModelErrorKind, ModelRequest, ModelResponse, StreamChunk,
};
pub use mock::MockBackend;
pub use registry::{BackendFactory, BackendRegistry};
