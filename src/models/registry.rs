//! The backend registry: names → factories that build a backend from [`ModelConfig`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::anthropic::AnthropicBackend;
use super::base::{ModelBackend, ModelError, ModelErrorKind};
use super::mock::MockBackend;
use super::openai::OpenAiBackend;
use crate::config::{ModelConfig, suggest};

/// Builds a backend from the `model:` section.
pub type BackendFactory =
    Arc<dyn Fn(&ModelConfig) -> Result<Arc<dyn ModelBackend>, ModelError> + Send + Sync>;

/// Registered backends by name.
#[derive(Clone)]
pub struct BackendRegistry {
    factories: BTreeMap<String, BackendFactory>,
}

impl fmt::Debug for BackendRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.factories.keys()).finish()
    }
}

impl Default for BackendRegistry {
    fn default() -> Self {
        Self::with_builtins()
    }
}

impl BackendRegistry {
    /// A registry with nothing in it.
    pub fn empty() -> Self {
        BackendRegistry {
            factories: BTreeMap::new(),
        }
    }

    /// A registry with every backend Veyra ships.
    pub fn with_builtins() -> Self {
        let mut r = Self::empty();
        r.register_backend(
            "mock",
            Arc::new(|cfg: &ModelConfig| {
                MockBackend::from_config(cfg).map(|b| Arc::new(b) as Arc<dyn ModelBackend>)
            }),
        );
        // OpenAI, and every server that speaks Chat Completions (Ollama, vLLM, llama.cpp):
        // `model.base_url` says which.
        r.register_backend(
            "openai",
            Arc::new(|cfg: &ModelConfig| {
                OpenAiBackend::from_config("openai", cfg)
                    .map(|b| Arc::new(b) as Arc<dyn ModelBackend>)
            }),
        );
        r.register_backend(
            "anthropic",
            Arc::new(|cfg: &ModelConfig| {
                AnthropicBackend::from_config("anthropic", cfg)
                    .map(|b| Arc::new(b) as Arc<dyn ModelBackend>)
            }),
        );
        r
    }

    /// Registers (or replaces) a backend.
    pub fn register_backend(&mut self, name: &str, factory: BackendFactory) {
        self.factories.insert(name.to_string(), factory);
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.factories.keys().map(String::as_str).collect()
    }

    /// Builds the backend `name` from `config`. An unknown name lists the registered ones.
    pub fn get_backend(
        &self,
        name: &str,
        config: &ModelConfig,
    ) -> Result<Arc<dyn ModelBackend>, ModelError> {
        match self.factories.get(name) {
            Some(factory) => factory(config),
            None => Err(ModelError::new(
                name,
                ModelErrorKind::Config,
                format!(
                    "unknown backend{}; registered backends: {}",
                    suggest::did_you_mean(name, self.names()),
                    self.names().join(", ")
                ),
            )),
        }
    }
}
