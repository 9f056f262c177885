use std::time::Duration;

use futures_util::StreamExt;

use super::*;
use crate::config::{MockRule, MockToolCall, MockTurn, ModelConfig};
use crate::models::{ToolResult, ToolSpec};

fn request(prompt: &str) -> ModelRequest {
    ModelRequest::new("veyra-mock-1", None, prompt, 0.7, 1024)
}

fn mock_with(f: impl FnOnce(&mut MockConfig)) -> MockBackend {
    let mut cfg = ModelConfig::default();
    f(&mut cfg.mock);
    MockBackend::from_config(&cfg).unwrap()
}

/// Text tokens, the error that ended the stream, the final chunk — of an answer with no calls.
async fn collect(
    backend: &MockBackend,
    req: &ModelRequest,
) -> (Vec<String>, Option<ModelError>, Option<StreamChunk>) {
    let (texts, calls, err, done) = collect_all(backend, req).await;
    assert!(calls.is_empty(), "no tool calls expected: {calls:?}");
    (texts, err, done)
}

/// Everything a stream sends: text tokens, tool calls, the error that ended it, the final chunk.
async fn collect_all(
    backend: &MockBackend,
    req: &ModelRequest,
) -> (
    Vec<String>,
    Vec<ToolCall>,
    Option<ModelError>,
    Option<StreamChunk>,
) {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    let mut done = None;
    let mut stream = match backend.stream(req).await {
        Ok(s) => s,
        Err(e) => return (texts, calls, Some(e), None),
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(StreamChunk::Text(t)) => texts.push(t),
            Ok(d @ StreamChunk::Done { .. }) => done = Some(d),
            Ok(StreamChunk::ToolCall(c)) => calls.push(c),
            Err(e) => return (texts, calls, Some(e), done),
        }
    }
    (texts, calls, None, done)
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

// ---------------------------------------------------------------------------------------------
// Tool scripts.

fn call(name: &str, arguments: serde_json::Value) -> MockToolCall {
    MockToolCall {
        name: name.into(),
        arguments,
        raw_arguments: None,
    }
}

fn tool_rule(tool_calls: Vec<MockTurn>, repeat: bool) -> MockBackend {
    mock_with(|m| {
        m.script = vec![MockRule {
            pattern: "(?i)power".into(),
            response: "Power is {result}.".into(),
            fail: None,
            tool_calls,
            repeat,
        }];
    })
}

/// A request for `prompt` that declares the tool `get_power`.
fn tool_request(prompt: &str) -> ModelRequest {
    let mut req = request(prompt);
    req.tools = vec![ToolSpec {
        name: "get_power".into(),
        description: "Reads a zone's power draw.".into(),
        parameters: serde_json::json!({"type": "object"}),
    }];
    req
}

/// Appends the model's turn of `calls` and one result per call, `results[i]` for call `i`.
fn answer(req: &mut ModelRequest, calls: Vec<ToolCall>, results: &[&str]) {
    let tool_results: Vec<Message> = calls
        .iter()
        .zip(results)
        .map(|(c, content)| {
            Message::Tool(ToolResult {
                call_id: c.id.clone(),
                name: c.name.clone(),
                content: (*content).into(),
                is_error: false,
            })
        })
        .collect();
    req.messages.push(Message::Assistant {
        text: String::new(),
        tool_calls: calls,
    });
    req.messages.extend(tool_results);
}

fn done_of(done: Option<StreamChunk>) -> (FinishReason, TokenUsage) {
    match done {
        Some(StreamChunk::Done {
            finish_reason,
            usage,
        }) => (finish_reason, usage),
        other => panic!("no final chunk: {other:?}"),
    }
}

#[tokio::test]
async fn a_tool_script_calls_turn_by_turn_then_answers_with_the_last_result() {
    let backend = tool_rule(
        vec![
            MockTurn::One(call("get_power", serde_json::json!({"zone": "hab-1"}))),
            MockTurn::Many(vec![
                call(
                    "get_thermal",
                    serde_json::json!({"zone": "hab 1", "unit": "C"}),
                ),
                call("undeclared_tool", serde_json::json!({})),
            ]),
        ],
        false,
    );
    let mut req = tool_request("Power report");

    let (texts, calls, err, done) = collect_all(&backend, &req).await;
    assert!(err.is_none() && texts.is_empty(), "{texts:?} {err:?}");
    assert_eq!(
        calls,
        [ToolCall {
            id: "call_1_1".into(),
            name: "get_power".into(),
            arguments: Ok(serde_json::json!({"zone": "hab-1"})),
        }]
    );
    assert_eq!(
        done_of(done),
        (
            FinishReason::ToolCalls,
            TokenUsage {
                input: 2,
                output: 1
            }
        )
    );
    let response = backend.generate(&req).await.unwrap();
    assert_eq!(
        (response.text.as_str(), response.finish_reason),
        ("", FinishReason::ToolCalls)
    );
    answer(&mut req, calls, &["3.9 kW"]);

    let (texts, calls, err, done) = collect_all(&backend, &req).await;
    assert!(err.is_none() && texts.is_empty());
    let got: Vec<(&str, &str)> = calls
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str()))
        .collect();
    assert_eq!(
        got,
        [("call_2_1", "get_thermal"), ("call_2_2", "undeclared_tool")]
    );
    assert_eq!(
        calls[0].arguments,
        Ok(serde_json::json!({"zone": "hab 1", "unit": "C"}))
    );
    // Input: "Power report" (2), the first call's arguments (1), its result (2).
    // Output: `{"unit":"C","zone":"hab 1"}` is two words, `{}` one.
    assert_eq!(
        done_of(done),
        (
            FinishReason::ToolCalls,
            TokenUsage {
                input: 5,
                output: 3
            }
        )
    );
    answer(&mut req, calls, &["21 C", "4.2 kW"]);

    let (texts, err, done) = collect(&backend, &req).await;
    assert!(err.is_none());
    assert_eq!(texts.concat(), "Power is 4.2 kW.");
    // Input: 5 as before, then 2 + 1 for the calls' arguments and 2 + 2 for the results.
    assert_eq!(
        done_of(done),
        (
            FinishReason::Stop,
            TokenUsage {
                input: 12,
                output: 4
            }
        )
    );
    assert_eq!(
        backend.generate(&req).await.unwrap().text,
        "Power is 4.2 kW."
    );
}

#[tokio::test]
async fn repeat_keeps_calling_the_last_turn() {
    let turns = vec![
        MockTurn::One(call("get_power", serde_json::json!({"zone": "a"}))),
        MockTurn::One(call("get_power", serde_json::json!({"zone": "b"}))),
    ];
    let repeating = tool_rule(turns.clone(), true);
    let mut req = tool_request("power");
    for k in 1..=6 {
        let (_, calls, err, done) = collect_all(&repeating, &req).await;
        assert!(err.is_none());
        assert_eq!(done_of(done).0, FinishReason::ToolCalls, "turn {k}");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].id, format!("call_{k}_1"));
        let zone = if k == 1 { "a" } else { "b" };
        assert_eq!(calls[0].arguments, Ok(serde_json::json!({ "zone": zone })));
        answer(&mut req, calls, &["ok"]);
    }

    // Without `repeat` the same script answers once its turns are spent.
    let once = tool_rule(turns, false);
    let (texts, err, _) = collect(&once, &req).await;
    assert!(err.is_none());
    assert_eq!(texts.concat(), "Power is ok.");
}

#[tokio::test]
async fn without_declared_tools_a_tool_script_answers_at_once() {
    let backend = tool_rule(
        vec![MockTurn::One(call("get_power", serde_json::json!({})))],
        true,
    );
    let (texts, err, done) = collect(&backend, &request("power")).await;
    assert!(err.is_none());
    assert_eq!(
        texts.concat(),
        "Power is .",
        "no tool result: {{result}} is empty"
    );
    assert_eq!(done_of(done).0, FinishReason::Stop);

    // A rule without tool calls answers its response as written, `{result}` included.
    let plain = mock_with(|m| {
        m.script = vec![MockRule {
            pattern: ".".into(),
            response: "Literal {result}.".into(),
            fail: None,
            tool_calls: Vec::new(),
            repeat: true,
        }];
    });
    let (texts, _, _) = collect(&plain, &tool_request("power")).await;
    assert_eq!(texts.concat(), "Literal {result}.");
}

#[tokio::test]
async fn raw_arguments_are_sent_as_written_and_malformed_ones_are_errors() {
    let raw = |text: &str| MockToolCall {
        name: "get_power".into(),
        arguments: serde_json::json!({"ignored": true}),
        raw_arguments: Some(text.into()),
    };
    let backend = tool_rule(
        vec![MockTurn::Many(vec![
            raw("{\"zone\": hab"),
            raw("{\"zone\":\"b\"}"),
            raw(""),
        ])],
        false,
    );
    let (_, calls, err, done) = collect_all(&backend, &tool_request("power")).await;
    assert!(err.is_none());
    let malformed = calls[0].arguments.clone().expect_err("malformed JSON");
    assert_eq!(malformed.raw, "{\"zone\": hab");
    assert!(!malformed.error.is_empty());
    assert_eq!(calls[1].arguments, Ok(serde_json::json!({"zone": "b"})));
    assert_eq!(calls[2].arguments, Ok(serde_json::json!({})));
    // Output: two words of raw text, one word, and at least one for the empty arguments.
    assert_eq!(done_of(done).1.output, 4);
}

#[tokio::test]
async fn a_failing_tool_rule_fails_after_its_calls_count() {
    let backend = mock_with(|m| {
        m.script = vec![MockRule {
            pattern: "power".into(),
            response: String::new(),
            fail: Some(MockFailure {
                kind: MockFailureKind::Server,
                after_tokens: 1,
                message: None,
            }),
            tool_calls: vec![MockTurn::Many(vec![
                call("get_power", serde_json::json!({})),
                call("get_power", serde_json::json!({})),
            ])],
            repeat: false,
        }];
    });
    let (_, calls, err, done) = collect_all(&backend, &tool_request("power")).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(
        err.expect("the injected failure").kind,
        ModelErrorKind::Server
    );
    assert!(done.is_none());
}

proptest::proptest! {
    /// The byte-wise count agrees with `split_whitespace` on every text, ASCII (every control
    /// character included) or not.
    #[test]
    fn word_count_is_split_whitespace(text in "[\\x00-\\x7f]{0,40}|[ a\\t\\u{b}\\u{85}\\u{a0}é\\u{3000}]{0,20}") {
        proptest::prop_assert_eq!(word_count(&text), text.split_whitespace().count() as u64);
    }
}
