//! What an attempt offers its model: the tools of its selection under names a model API
//! takes, and the wait for MCP servers a prompt at once after start needs.

use std::collections::HashMap;

use tokio_util::sync::CancellationToken;

use crate::config::ToolSelection;
use crate::core::CoreInner;
use crate::models::{ModelRequest, ToolSpec};

/// A prompt at once after start is offered the MCP servers' tools once each was tried: waits
/// for that, only when `tools` (else `tools.offer`) may offer any, and never past `cancel`.
pub(super) async fn wait_for_servers(
    core: &CoreInner,
    tools: Option<&ToolSelection>,
    cancel: &CancellationToken,
) {
    let offers_mcp = match tools.unwrap_or(&core.config.tools.offer) {
        ToolSelection::All => true,
        ToolSelection::None => false,
        ToolSelection::Only(names) => names
            .iter()
            .any(|n| n.starts_with(crate::tools::mcp::PREFIX)),
    };
    if offers_mcp && !core.mcp.is_empty() {
        tokio::select! {
            () = core.mcp.ready() => {}
            () = cancel.cancelled() => {}
        }
    }
}

/// The model request of an attempt: the prompt with the tools it is offered (the request's
/// own selection, else `tools.offer`), its model the request's or the current one; and the
/// registry name of each tool by the name the model is given
/// ([`crate::tools::wire_name`]: a model API takes no `:` in a name).
pub(super) fn model_request(
    core: &CoreInner,
    model: Option<String>,
    system: Option<String>,
    prompt: String,
    tools: Option<ToolSelection>,
) -> (ModelRequest, HashMap<String, String>) {
    let offer = tools.unwrap_or_else(|| core.config.tools.offer.clone());
    let mut model_request = ModelRequest::new(
        model.unwrap_or_else(|| core.current_model()),
        system,
        prompt,
        core.config.model.temperature,
        core.config.model.max_tokens,
    );
    let mut names = HashMap::new();
    for info in core.tools.list_where(|name| offer.offers(name)) {
        let name = info.capability.name.into_owned();
        let wire = crate::tools::unique_wire_name(&name, |w| names.contains_key(w));
        let Some(wire) = wire else {
            tracing::warn!(tool = %name, "tool '{name}' is not offered: no name for models is free");
            continue;
        };
        model_request.tools.push(ToolSpec {
            name: wire.clone(),
            description: info.capability.description.into_owned(),
            parameters: info.capability.schema,
        });
        names.insert(wire, name);
    }
    (model_request, names)
}
