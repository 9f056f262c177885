//! `http_get`: one HTTP GET to a host the operator allowed, within a size and a time limit.
//!
//! Off unless `tools.http_allow` lists a host: with the list empty the tool is not registered
//! (`veyra tools list` does not show it, a model is not offered it, and naming it says how to
//! turn it on). When on:
//! - only `http` and `https` URLs, without credentials (`user:pass@`), whose host is on
//!   `tools.http_allow` ([`AllowedHost`]: exact host, case-insensitive; an entry without a port
//!   allows the scheme's default port only) — checked before any connection is made;
//! - redirects are followed (at most [`MAX_REDIRECTS`]) only to allowed hosts; a redirect
//!   anywhere else is refused and the refusal says where it pointed;
//! - the body is streamed and cut at `tools.http_max_bytes`: a response over the limit is
//!   refused (a declared `Content-Length` over it before a byte is read), never buffered whole;
//! - the whole call, connect to last byte, must finish within `tools.http_timeout_ms`;
//! - no cookies (reqwest keeps none without its `cookies` feature), no credentials, no
//!   `Referer`, no proxy (an unlisted host would see every request): the request goes straight
//!   to the allowed host.
//!
//! The body comes back as text: UTF-8 as is, anything else decoded lossily (U+FFFD for each
//! bad sequence) with `"utf8": false`, and the SHA-256 of the exact bytes either way. Base64
//! was the alternative; a model reads lossy text far better, and the hash still identifies the
//! bytes. Messages name the URL's origin (scheme, host, port) only: a path or query may hold a
//! token, and messages reach the audit trail.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Capability, Tool, ToolCategory, ToolError, ToolOutput, str_arg};
use crate::config::{AllowedHost, ToolsConfig};
use crate::sanitize;

/// Redirects followed at most in one call.
pub const MAX_REDIRECTS: usize = 5;
/// Longest URL accepted, in characters.
pub const MAX_URL_CHARS: usize = 2048;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct HttpGet {
    allow: Arc<Vec<AllowedHost>>,
    max_bytes: u64,
    timeout: Duration,
    client: reqwest::Client,
}

/// Why a redirect was not followed; carried through reqwest's error to the refusal.
#[derive(Debug)]
struct RedirectRefused {
    /// Where the redirect pointed (its origin).
    to: String,
    /// Why it was not followed.
    why: String,
}

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a redirect to {} was refused: {}", self.to, self.why)
    }
}

impl std::error::Error for RedirectRefused {}

/// `scheme://host[:port]` of `url`: what messages show of it.
fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// Why `url` may not be fetched, if it may not.
fn refusal(url: &url::Url, allow: &[AllowedHost]) -> Option<String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Some(format!(
            "'{}:' URLs are not fetched; http_get takes http and https only",
            sanitize::quote(url.scheme())
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some(
            "the URL carries credentials (user:password@); http_get sends none, remove them".into(),
        );
    }
    if allow.iter().any(|a| a.admits(url)) {
        return None;
    }
    let host = url.host_str().unwrap_or_default();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!(
        "'{}{port}' is not on tools.http_allow (entries match exactly; an entry without a port \
         allows ports 80 and 443 only); add '{}{port}' to reach it",
        sanitize::quote(host),
        sanitize::quote(host)
    ))
}

impl HttpGet {
    /// The tool `tools:` describes; `Ok(None)` when `tools.http_allow` is empty (off).
    pub fn from_config(config: &ToolsConfig) -> Result<Option<Self>, ToolError> {
        let allow = Arc::new(config.http_hosts());
        if allow.is_empty() {
            return Ok(None);
        }
        let timeout = Duration::from_millis(config.http_timeout_ms.max(1));
        let policy_allow = Arc::clone(&allow);
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            let to = origin(attempt.url());
            if attempt.previous().len() >= MAX_REDIRECTS {
                let why = format!("more than {MAX_REDIRECTS} redirects");
                return attempt.error(RedirectRefused { to, why });
            }
            match refusal(attempt.url(), &policy_allow) {
                None => attempt.follow(),
                Some(why) => attempt.error(RedirectRefused { to, why }),
            }
        });
        let client = crate::web::client_builder()
            .redirect(policy)
            .referer(false)
            .no_proxy()
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("veyra/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ToolError::Failed(format!("cannot build the HTTP client: {e}")))?;
        Ok(Some(HttpGet {
            allow,
            max_bytes: config.http_max_bytes,
            timeout,
            client,
        }))
    }

    async fn fetch(&self, url: &url::Url) -> Result<ToolOutput, ToolError> {
        let from = origin(url);
        let failed = |e: reqwest::Error| -> ToolError {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(err) = source {
                if let Some(r) = err.downcast_ref::<RedirectRefused>() {
                    return ToolError::Refused {
                        rule: "tools.http_allow".into(),
                        message: format!(
                            "GET {from} redirected to {}, which was not followed: {}; nothing was \
                             fetched from there",
                            sanitize::quote(&r.to),
                            r.why
                        ),
                    };
                }
                source = err.source();
            }
            ToolError::Failed(format!("GET {from}: {}", e.without_url()))
        };
        let mut response = self.client.get(url.clone()).send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let final_origin = origin(response.url());
        let final_url = response.url().to_string();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| sanitize::excerpt(v, 120).into_owned());
        let too_big = |what: String| ToolError::Refused {
            rule: "tools.http_max_bytes".into(),
            message: format!(
                "the response from {final_origin} is {what}, over tools.http_max_bytes ({}); \
                 it was cut off and nothing is returned",
                self.max_bytes
            ),
        };
        if let Some(declared) = response.content_length()
            && declared > self.max_bytes
        {
            return Err(too_big(format!("{declared} bytes (Content-Length)")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            let len = u64::try_from(body.len() + chunk.len()).unwrap_or(u64::MAX);
            if len > self.max_bytes {
                return Err(too_big(format!("more than {} bytes", self.max_bytes)));
            }
            body.extend_from_slice(&chunk);
        }
        let bytes = body.len();
        let digest = hex::encode(Sha256::digest(&body));
        let (text, utf8) = match String::from_utf8(body) {
            Ok(text) => (text, true),
            Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), false),
        };
        Ok(ToolOutput::new(
            json!({
                "url": final_url,
                "status": status,
                "content_type": content_type,
                "bytes": bytes,
                "sha256": digest,
                "utf8": utf8,
                "text": text,
            }),
            format!(
                "GET {final_origin}: {status}, {bytes} bytes, sha256:{}",
                &digest[..16]
            ),
        ))
    }
}

#[async_trait::async_trait]
impl Tool for HttpGet {
    fn capability(&self) -> Capability {
        Capability {
            name: "http_get".into(),
            description: "Fetches a URL with HTTP GET from a host on tools.http_allow and \
                          returns its status and body as text, within a size and a time limit."
                .into(),
            category: ToolCategory::Network,
            reversible: true,
            confirmation: false,
            schema: json!({
                "type": "object",
                "properties": {
                    "url": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_URL_CHARS,
                        "description": "an http or https URL on an allowed host",
                    }
                },
                "required": ["url"],
                "additionalProperties": false,
            }),
        }
    }

    async fn invoke(&self, args: &serde_json::Value) -> Result<ToolOutput, ToolError> {
        let text = str_arg(args, "url");
        let url = url::Url::parse(text).map_err(|e| {
            ToolError::BadArguments(format!(
                "argument 'url': '{}' is not a URL ({e}); write e.g. https://example.com/page",
                sanitize::excerpt(text, sanitize::EXCERPT_CHARS)
            ))
        })?;
        if let Some(why) = refusal(&url, &self.allow) {
            return Err(ToolError::Refused {
                rule: "tools.http_allow".into(),
                message: format!("GET {} refused: {why}", origin(&url)),
            });
        }
        match tokio::time::timeout(self.timeout, self.fetch(&url)).await {
            Ok(result) => result,
            Err(_) => Err(ToolError::Failed(format!(
                "GET {}: no complete answer within tools.http_timeout_ms ({} ms); nothing is returned",
                origin(&url),
                self.timeout.as_millis()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn tool(server: &MockServer, f: impl FnOnce(&mut ToolsConfig)) -> HttpGet {
        let mut config = ToolsConfig {
            http_allow: vec![server.address().to_string()],
            ..ToolsConfig::default()
        };
        f(&mut config);
        HttpGet::from_config(&config).unwrap().unwrap()
    }

    async fn get(t: &HttpGet, url: &str) -> Result<ToolOutput, ToolError> {
        t.invoke(&json!({ "url": url })).await
    }

    #[test]
    fn an_empty_allow_list_turns_the_tool_off() {
        assert!(
            HttpGet::from_config(&ToolsConfig::default())
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn an_allowed_host_is_fetched() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/status"))
            .respond_with(ResponseTemplate::new(200).set_body_string("all systems nominal"))
            .expect(1)
            .mount(&server)
            .await;
        let out = get(&tool(&server, |_| {}), &format!("{}/status", server.uri()))
            .await
            .unwrap();
        assert_eq!(out.value["status"], 200);
        assert_eq!(out.value["text"], "all systems nominal");
        assert_eq!(out.value["utf8"], true);
        assert!(out.summary.contains("200, 19 bytes"), "{}", out.summary);
    }

    #[tokio::test]
    async fn a_host_not_on_the_list_is_refused_before_any_connection() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        // The same server under another name: on the list as 127.0.0.1, asked as localhost.
        let t = tool(&server, |_| {});
        let port = server.address().port();
        for url in [
            format!("http://localhost:{port}/"),
            format!("http://127.0.0.1:{}/", port.wrapping_add(1)),
            "http://127.0.0.1/".to_string(),
            format!("ftp://127.0.0.1:{port}/"),
            format!("http://user:pw@127.0.0.1:{port}/"),
        ] {
            let err = get(&t, &url).await.unwrap_err();
            assert!(
                matches!(&err, ToolError::Refused { rule, .. } if rule == "tools.http_allow"),
                "{url}: {err:?}"
            );
        }
        let err = get(&t, &format!("http://localhost:{port}/"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not on tools.http_allow"), "{err}");
        // `expect(0)` is checked when the server drops: no request reached it.
    }

    #[tokio::test]
    async fn a_redirect_to_a_host_not_on_the_list_is_refused_and_named() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/moved"))
            .respond_with(
                ResponseTemplate::new(302)
                    .insert_header("location", "http://exfil.invalid:8080/steal?token=abc"),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/here"))
            .respond_with(ResponseTemplate::new(301).insert_header("location", "/there"))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/there"))
            .respond_with(ResponseTemplate::new(200).set_body_string("followed"))
            .mount(&server)
            .await;
        let t = tool(&server, |_| {});
        let err = get(&t, &format!("{}/moved", server.uri()))
            .await
            .unwrap_err();
        let ToolError::Refused { rule, message } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(rule, "tools.http_allow");
        assert!(message.contains("http://exfil.invalid:8080"), "{message}");
        assert!(!message.contains("token=abc"), "{message}");
        // A redirect within the allowed host is followed.
        let out = get(&t, &format!("{}/here", server.uri())).await.unwrap();
        assert_eq!(out.value["text"], "followed");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_declared_or_streamed() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 64 * 1024]))
            .mount(&server)
            .await;
        let t = tool(&server, |c| c.http_max_bytes = 1024);
        let err = get(&t, &server.uri()).await.unwrap_err();
        assert!(
            matches!(&err, ToolError::Refused { rule, .. } if rule == "tools.http_max_bytes"),
            "{err:?}"
        );
        assert!(err.to_string().contains("nothing is returned"), "{err}");
    }

    #[tokio::test]
    async fn a_binary_body_comes_back_as_lossy_text_with_the_hash_of_its_bytes() {
        let server = MockServer::start().await;
        let bytes = vec![0xff, 0xfe, b'o', b'k', 0x00, 0x80];
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(bytes.clone(), "application/octet-stream"),
            )
            .mount(&server)
            .await;
        let out = get(&tool(&server, |_| {}), &server.uri()).await.unwrap();
        assert_eq!(out.value["utf8"], false);
        assert_eq!(out.value["bytes"], 6);
        assert_eq!(out.value["text"], "\u{fffd}\u{fffd}ok\u{0}\u{fffd}");
        assert_eq!(out.value["sha256"], hex::encode(Sha256::digest(&bytes)));
        assert_eq!(out.value["content_type"], "application/octet-stream");
    }

    #[tokio::test]
    async fn a_slow_answer_fails_at_the_time_limit() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
            .mount(&server)
            .await;
        let t = tool(&server, |c| c.http_timeout_ms = 50);
        let err = get(&t, &server.uri()).await.unwrap_err();
        assert!(matches!(err, ToolError::Failed(_)), "{err:?}");
    }
}
