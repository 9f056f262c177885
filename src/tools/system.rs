//! `system_status`: what Veyra itself is doing — queue depth, running tasks, backend health,
//! the link, the audit head. The data lives in the core, a layer above; the tool reads it
//! through a [`SystemProbe`] the core attaches once it exists ([`ProbeSlot`]).

use std::sync::{Arc, OnceLock, Weak};

use serde_json::json;

use super::{Capability, Tool, ToolCategory, ToolError, ToolOutput};

/// Reports the running system's state as JSON (implemented by the core).
#[async_trait::async_trait]
pub trait SystemProbe: Send + Sync {
    /// The current state: `queue`, `backend`, `link`, `audit` objects.
    async fn system_status(&self) -> serde_json::Value;
}

/// Where the core attaches itself once built; weak, so the tool never keeps a core alive.
pub type ProbeSlot = Arc<OnceLock<Weak<dyn SystemProbe>>>;

/// `system_status` (see the module docs).
#[derive(Clone, Default)]
pub struct SystemStatus {
    probe: ProbeSlot,
}

impl std::fmt::Debug for SystemStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemStatus")
            .field("attached", &self.probe.get().is_some())
            .finish()
    }
}

impl SystemStatus {
    /// A tool reading from `probe`.
    pub fn new(probe: ProbeSlot) -> Self {
        SystemStatus { probe }
    }
}

#[async_trait::async_trait]
impl Tool for SystemStatus {
    fn capability(&self) -> Capability {
        Capability {
            name: "system_status".into(),
            description: "Reports Veyra's own state: tasks queued and running, the model \
                          backend and whether it answers, the simulated link (preset, one-way \
                          delay, conjunction), and the audit trail's size and head hash."
                .into(),
            category: ToolCategory::System,
            reversible: true,
            confirmation: false,
            schema: json!({ "type": "object", "properties": {}, "additionalProperties": false }),
        }
    }

    async fn invoke(&self, _args: &serde_json::Value) -> Result<ToolOutput, ToolError> {
        let probe = self.probe.get().and_then(Weak::upgrade).ok_or_else(|| {
            ToolError::Failed(
                "no runtime is attached to report on (the core has shut down or was never \
                 started); run it through `veyra tools invoke system_status` or a model in \
                 `veyra run`"
                    .into(),
            )
        })?;
        let status = probe.system_status().await;
        let summary = format!(
            "{} queued, {} running, backend {} {}, link {} {}",
            status["queue"]["queued"],
            status["queue"]["running"],
            status["backend"]["name"].as_str().unwrap_or("?"),
            if status["backend"]["healthy"] == true {
                "healthy"
            } else {
                "unhealthy"
            },
            status["link"]["preset"].as_str().unwrap_or("?"),
            status["link"]["conjunction"].as_str().unwrap_or("?"),
        );
        Ok(ToolOutput::new(status, summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    #[async_trait::async_trait]
    impl SystemProbe for Fixed {
        async fn system_status(&self) -> serde_json::Value {
            json!({
                "queue": { "queued": 2, "running": 1 },
                "backend": { "name": "mock", "healthy": true },
                "link": { "preset": "mars", "conjunction": "clear" },
            })
        }
    }

    #[tokio::test]
    async fn reports_through_the_attached_probe_and_fails_clearly_without_one() {
        let slot = ProbeSlot::default();
        let tool = SystemStatus::new(Arc::clone(&slot));
        let err = tool.invoke(&json!({})).await.unwrap_err();
        assert!(err.to_string().contains("no runtime is attached"), "{err}");
        let probe: Arc<dyn SystemProbe> = Arc::new(Fixed);
        slot.set(Arc::downgrade(&probe)).ok();
        let out = tool.invoke(&json!({})).await.unwrap();
        assert_eq!(out.value["queue"]["queued"], 2);
        assert_eq!(
            out.summary,
            "2 queued, 1 running, backend mock healthy, link mars clear"
        );
        drop(probe);
        assert!(tool.invoke(&json!({})).await.is_err());
    }
}
