//! Every HTTP client Veyra builds (model backends, the `http_get` tool, MCP servers over
//! streamable HTTP) starts here: one TLS setup for all of them. TLS is rustls with the `ring`
//! provider (installed once for the process, as reqwest's `rustls-no-provider` asks; no C
//! toolchain is needed to build it), and a server's certificate is checked against the Mozilla
//! roots bundled with Veyra (`webpki-root-certs`) together with the system's own (a company's
//! CA in `/etc/ssl/certs`, `SSL_CERT_FILE`): a minimal container without a certificate store
//! still reaches its model, and a network behind its own CA does too.

use std::sync::{Once, OnceLock};

/// `reqwest::Client::builder()`, with the process's TLS provider installed first and the
/// bundled roots trusted beside the system's.
pub fn client_builder() -> reqwest::ClientBuilder {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        // An embedder may have installed a provider of its own first: theirs stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder().tls_certs_merge(roots().iter().cloned())
}

/// The bundled roots, parsed once.
fn roots() -> &'static [reqwest::Certificate] {
    static ROOTS: OnceLock<Vec<reqwest::Certificate>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok())
            .collect()
    })
}
