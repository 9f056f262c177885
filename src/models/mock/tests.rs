use std::time::Duration;

use futures_util::StreamExt;

use super::*;
use crate::config::{MockRule, ModelConfig};

fn request(prompt: &str) -> ModelRequest {
    ModelRequest::new("veyra-mock-1", None, prompt, 0.7, 1024)
}

fn mock_with(f: impl FnOnce(&mut MockConfig)) -> MockBackend {
    let mut cfg = ModelConfig::default();
    f(&mut cfg.mock);
    MockBackend::from_config(&cfg).unwrap()
}

async fn collect(
    backend: &MockBackend,
    req: &ModelRequest,
) -> (Vec<String>, Option<ModelError>, Option<StreamChunk>) {
    let mut texts = Vec::new();
    let mut done = None;
    let mut stream = match backend.stream(req).await {
        Ok(s) => s,
        Err(e) => return (texts, Some(e), None),
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(StreamChunk::Text(t)) => texts.push(t),
            Ok(d @ StreamChunk::Done { .. }) => done = Some(d),
            Ok(StreamChunk::ToolCall(c)) => panic!("the mock never calls tools: {c:?}"),
            Err(e) => return (texts, Some(e), done),
        }
    }
    (texts, None, done)
}

#[test]
fn answers_are_a_pure_function_of_the_inputs() {
    let a = MockBackend::generated_text(&request("hello"));
    assert_eq!(a, MockBackend::generated_text(&request("hello")));
    // Pinned so a change of the contract is a visible, deliberate change.
    assert_eq!(
        a,
        "Acknowledged: \"hello\". Further detail is available on request at the next contact. Consider batching follow-up questions to save round trips."
    );
    let mut other = request("hello");
    other.temperature = 0.0;
    assert_ne!(a, MockBackend::generated_text(&other));
    let mut other = request("hello");
    other.system = Some("be brief".into());
    assert_ne!(a, MockBackend::generated_text(&other));
    let mut other = request("hello");
    other.model = "other".into();
    assert_ne!(a, MockBackend::generated_text(&other));
}

#[test]
fn tokens_concatenate_back_to_the_text() {
    let text = "  Hello,  world!\nNext line ";
    assert_eq!(tokenize(text).concat(), text);
    assert_eq!(tokenize("a b"), vec!["a ", "b"]);
    assert!(tokenize("").is_empty());
}

#[tokio::test(start_paused = true)]
async fn streams_token_by_token_with_the_configured_delay() {
    let backend = mock_with(|m| m.token_delay_ms = 100);
    let req = request("hello");
    let start = tokio::time::Instant::now();
    let (texts, err, done) = collect(&backend, &req).await;
    assert!(err.is_none());
    assert_eq!(texts.concat(), MockBackend::generated_text(&req));
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(100) * texts.len() as u32
    );
    let Some(StreamChunk::Done {
        finish_reason,
        usage,
    }) = done
    else {
        panic!("no final chunk")
    };
    assert_eq!(finish_reason, FinishReason::Stop);
    assert_eq!(usage.output, texts.len() as u64);
    assert_eq!(usage.input, 1);
}

#[tokio::test]
async fn generate_equals_the_concatenated_stream() {
    let backend = MockBackend::new();
    let req = request("status report");
    let (texts, _, _) = collect(&backend, &req).await;
    let response = backend.generate(&req).await.unwrap();
    assert_eq!(response.text, texts.concat());
    assert_eq!(response.model, "veyra-mock-1");
}

#[tokio::test]
async fn scripts_answer_matching_prompts() {
    let backend = mock_with(|m| {
        m.script = vec![MockRule {
            pattern: "(?i)status".into(),
            response: "All systems nominal.".into(),
            fail: None,
            tool_calls: Vec::new(),
            repeat: false,
        }];
    });
    assert_eq!(
        backend
            .generate(&request("STATUS please"))
            .await
            .unwrap()
            .text,
        "All systems nominal."
    );
    assert_ne!(
        backend.generate(&request("hello")).await.unwrap().text,
        "All systems nominal."
    );
}

#[tokio::test]
async fn max_tokens_truncates_with_length() {
    let backend = MockBackend::new();
    let mut req = request("hello");
    req.max_tokens = 3;
    let r = backend.generate(&req).await.unwrap();
    assert_eq!(r.usage.output, 3);
    assert_eq!(r.finish_reason, FinishReason::Length);
}

#[tokio::test]
async fn injected_failures_happen_before_or_during_the_stream() {
    let before = mock_with(|m| {
        m.fail = Some(MockFailure {
            kind: MockFailureKind::RateLimit,
            after_tokens: 0,
            message: None,
        })
    });
    let (texts, err, _) = collect(&before, &request("x")).await;
    let err = err.expect("should fail");
    assert!(texts.is_empty());
    assert_eq!(err.kind, ModelErrorKind::RateLimit);
    assert!(err.kind.is_retryable());

    let during = mock_with(|m| {
        m.script = vec![MockRule {
            pattern: "flaky".into(),
            response: "one two three four".into(),
            fail: Some(MockFailure {
                kind: MockFailureKind::Server,
                after_tokens: 2,
                message: Some("injected outage".into()),
            }),
            tool_calls: Vec::new(),
            repeat: false,
        }];
    });
    let (texts, err, done) = collect(&during, &request("flaky")).await;
    assert_eq!(texts, vec!["one ", "two "]);
    assert_eq!(err.unwrap().message, "injected outage");
    assert!(done.is_none());
    assert!(during.generate(&request("flaky")).await.is_err());

    let late = mock_with(|m| {
        m.script = vec![MockRule {
            pattern: ".".into(),
            response: "a b".into(),
            fail: Some(MockFailure {
                kind: MockFailureKind::Timeout,
                after_tokens: 50,
                message: None,
            }),
            tool_calls: Vec::new(),
            repeat: false,
        }];
    });
    let (texts, err, _) = collect(&late, &request("x")).await;
    assert_eq!(texts.len(), 2);
    assert_eq!(err.unwrap().kind, ModelErrorKind::Timeout);
}

#[test]
fn bad_script_patterns_are_config_errors() {
    let mut cfg = ModelConfig::default();
    cfg.mock.script = vec![MockRule {
        pattern: "(".into(),
        response: String::new(),
        fail: None,
        tool_calls: Vec::new(),
        repeat: false,
    }];
    let err = MockBackend::from_config(&cfg).unwrap_err();
    assert_eq!(err.kind, ModelErrorKind::Config);
    assert!(err.message.contains("script[0]"));
}
