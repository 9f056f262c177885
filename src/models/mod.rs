//! The model layer: the backend trait, the registry and the backends Veyra ships.

pub mod anthropic;
pub mod base;
pub mod http;
pub mod mock;
pub mod openai;
pub mod registry;

pub use base::{
    ChunkStream, MalformedArguments, Message, ModelBackend, ModelError, ModelErrorKind,
    ModelRequest, ModelResponse, StreamChunk, ToolCall, ToolResult, ToolSpec,
};
pub use mock::MockBackend;
pub use registry::{BackendFactory, BackendRegistry};
