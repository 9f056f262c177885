//! Tests of the HTTP client: status and error mapping, retry timing, redaction, and the SSE
//! stream parsers against split, stalled and arbitrary input.

mod client {
    use super::super::*;
    use crate::config::Secret;
    use crate::models::ToolCall;

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(kind_of_status(401, None), ModelErrorKind::Auth);
        assert_eq!(kind_of_status(429, None), ModelErrorKind::RateLimit);
        assert_eq!(kind_of_status(529, None), ModelErrorKind::Overloaded);
        assert_eq!(
            kind_of_status(500, Some("overloaded_error")),
            ModelErrorKind::Overloaded
        );
        assert_eq!(kind_of_status(503, None), ModelErrorKind::Server);
        assert_eq!(kind_of_status(400, None), ModelErrorKind::BadRequest);
        assert_eq!(kind_of_status(408, None), ModelErrorKind::Timeout);
    }

    #[test]
    fn provider_errors_of_both_shapes_are_read() {
        let (t, m) = provider_error(
            br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
        );
        assert_eq!(t.as_deref(), Some("insufficient_quota"));
        assert!(is_spend_limit(t.as_deref(), &m));
        let (t, m) = provider_error(
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(
            (t.as_deref(), m.as_str()),
            (Some("overloaded_error"), "Overloaded")
        );
        let (t, m) = provider_error(b"<html>Bad Gateway</html>");
        assert_eq!((t, m.as_str()), (None, "<html>Bad Gateway</html>"));
    }

    #[test]
    fn retry_after_reads_ms_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "2".parse().expect("header"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "1500".parse().expect("header"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("header"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "a date in the past");
        h.insert("retry-after", "soon".parse().expect("header"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn hostile_retry_after_values_are_clamped() {
        for value in ["1e20", "inf", "18446744073709551616", "1e308"] {
            let mut h = HeaderMap::new();
            h.insert("retry-after", value.parse().expect("header"));
            assert_eq!(retry_after(&h), Some(MAX_RETRY_DELAY), "{value}");
            let mut h = HeaderMap::new();
            h.insert("retry-after-ms", value.parse().expect("header"));
            assert_eq!(retry_after(&h), Some(MAX_RETRY_DELAY), "ms {value}");
        }
        let mut h = HeaderMap::new();
        h.insert("retry-after", "-5".parse().expect("header"));
        assert_eq!(retry_after(&h), None);
        h.insert(
            "retry-after",
            "Fri, 31 Dec 9999 23:59:59 GMT".parse().expect("header"),
        );
        assert_eq!(retry_after(&h), Some(MAX_RETRY_DELAY));
    }

    #[test]
    fn tool_calls_lose_the_key_wherever_a_server_echoes_it() {
        let redactor = Redactor::new(Some(Secret::new("the-configured-key-42")));
        let call = redactor.tool_call(ToolCall {
            id: "id-the-configured-key-42".into(),
            name: "calc-the-configured-key-42".into(),
            arguments: Ok(serde_json::json!({
                "expression": "the-configured-key-42",
                "nested": [{ "the-configured-key-42": "x the-configured-key-42 y" }],
                "n": 1,
            })),
        });
        let shown = format!("{call:?}");
        assert!(!shown.contains("the-configured-key-42"), "{shown}");
        assert_eq!(call.arguments.unwrap()["n"], 1);
        let call = redactor.tool_call(ToolCall {
            id: "c".into(),
            name: "calculator".into(),
            arguments: Err(crate::models::MalformedArguments {
                raw: "{\"k\": \"the-configured-key-42".into(),
                error: "EOF while parsing".into(),
            }),
        });
        assert!(!format!("{call:?}").contains("the-configured-key-42"));
    }

    #[test]
    fn errors_lose_the_key_and_token_shapes() {
        let redactor = Redactor::new(Some(Secret::new("the-configured-key-42")));
        let mut e = ModelError::new(
            "openai",
            ModelErrorKind::Auth,
            "HTTP 401: bad key the-configured-key-42 (header Authorization: Bearer abcdefgh)",
        );
        e.request_id = Some("req-the-configured-key-42".into());
        let e = redactor.error(e);
        assert_eq!(
            e.message,
            "HTTP 401: bad key [redacted] (header Authorization: Bearer [redacted])"
        );
        assert_eq!(e.request_id.as_deref(), Some("req-[redacted]"));
    }

    #[test]
    fn backoff_doubles_within_its_jitter() {
        for attempt in 0..5 {
            let full = BASE_RETRY_DELAY * 2u32.pow(attempt);
            let d = backoff(attempt);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
        assert!(backoff(40) <= MAX_RETRY_DELAY);
    }
}

mod stream_tests {
    use std::convert::Infallible;

    use futures_util::StreamExt;

    use super::super::*;

    /// A response whose body sends `pieces`, then goes silent for ever.
    fn stalling(pieces: &[&'static str]) -> reqwest::Response {
        let head = futures_util::stream::iter(
            pieces
                .iter()
                .map(|p| Ok::<_, Infallible>(p.as_bytes().to_vec()))
                .collect::<Vec<_>>(),
        );
        let body = reqwest::Body::wrap_stream(head.chain(futures_util::stream::pending()));
        reqwest::Response::from(http::Response::new(body))
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_goes_silent_times_out_on_the_paused_clock() {
        let config = ModelConfig {
            timeout: 30,
            ..ModelConfig::default()
        };
        let client = HttpClient::new("test", &config).expect("a client");
        let started = tokio::time::Instant::now();
        // The first event arrives split across reads; the second never ends.
        let mut events = client.events(stalling(&["data: {\"a\"", ":1}\n\n", "data: {\"b\""]));
        let first = events.next().await.expect("an event").expect("parsed");
        assert_eq!(
            (first.event.as_str(), first.data.as_str()),
            ("message", "{\"a\":1}")
        );
        let err = events
            .next()
            .await
            .expect("the timeout")
            .expect_err("silence");
        assert_eq!(err.kind, ModelErrorKind::Timeout);
        assert!(err.message.contains("silent for 30 s"), "{err}");
        assert!(
            events.next().await.is_none(),
            "the stream ends after the timeout"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test]
    async fn events_split_across_pieces_and_reads_parse_whole() {
        let config = ModelConfig::default();
        let client = HttpClient::new("test", &config).expect("a client");
        // One read far larger than a parser piece, holding many events.
        let mut body = String::new();
        for i in 0..500 {
            body.push_str(&format!(
                "event: e{i}\ndata: {{\"n\":{i},\"pad\":\"{}\"}}\n\n",
                "x".repeat(i % 40)
            ));
        }
        let leaked: &'static str = Box::leak(body.into_boxed_str());
        let mut events = client.events(stalling(&[leaked, ""]));
        for i in 0..500 {
            let e = events.next().await.expect("an event").expect("parsed");
            assert_eq!(e.event, format!("e{i}"));
            let v: serde_json::Value = serde_json::from_str(&e.data).expect("whole JSON");
            assert_eq!(v["n"], i);
        }
    }

    /// A response whose body is `reads`, then ends.
    fn ending(reads: Vec<Vec<u8>>) -> reqwest::Response {
        let body = futures_util::stream::iter(reads.into_iter().map(Ok::<_, Infallible>));
        reqwest::Response::from(http::Response::new(reqwest::Body::wrap_stream(body)))
    }

    /// Runs arbitrary bytes through the SSE reader and both providers' parsers to the end.
    fn parse_all(reads: Vec<Vec<u8>>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let config = ModelConfig::default();
            let client = HttpClient::new("test", &config).expect("a client");
            let openai = super::super::chunks(
                client.events(ending(reads.clone())),
                crate::models::openai::ChatStream::new("test", None),
                client.redactor().clone(),
            );
            let anthropic = super::super::chunks(
                client.events(ending(reads)),
                crate::models::anthropic::MessageStream::new("test", None),
                client.redactor().clone(),
            );
            for mut stream in [openai, anthropic] {
                // Each item is a chunk or an error; an error ends the stream.
                while let Some(item) = stream.next().await {
                    if item.is_err() {
                        assert!(stream.next().await.is_none(), "nothing after an error");
                        break;
                    }
                }
            }
        });
    }

    /// Bytes that look like an event stream: field names, JSON fragments, separators and
    /// anything else.
    fn sse_like() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            Just(b"data: ".to_vec()),
            Just(b"event: ".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n\n".to_vec()),
            Just(b"[DONE]".to_vec()),
            Just(br#"{"choices":[{"index":0,"delta":{"content":"x","tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{"}}]},"finish_reason":null}]}"#.to_vec()),
            Just(br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}"#.to_vec()),
            Just(br#"{"error":{"message":"Bearer abcdefghij","type":"server_error"}}"#.to_vec()),
            Just(b"message_start".to_vec()),
            Just(b"content_block_start".to_vec()),
            Just(b"message_delta".to_vec()),
            Just(b"message_stop".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..24),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        #[test]
        fn arbitrary_bytes_never_panic_the_sse_parsers(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..1024),
            cut in 0usize..1024,
        ) {
            let cut = cut.min(bytes.len());
            parse_all(vec![bytes[..cut].to_vec(), bytes[cut..].to_vec()]);
        }

        #[test]
        fn sse_shaped_bytes_never_panic_the_sse_parsers(
            bytes in sse_like(),
            cut in 0usize..2048,
        ) {
            let cut = cut.min(bytes.len());
            parse_all(vec![bytes[..cut].to_vec(), bytes[cut..].to_vec()]);
        }
    }
}

mod split_keys_and_caps {
    use std::convert::Infallible;

    use futures_util::StreamExt;

    use super::super::*;
    use crate::config::Secret;

    const KEY: &str = "sk-SENTINEL-0123456789";

    fn ending(reads: Vec<Vec<u8>>) -> reqwest::Response {
        let body = futures_util::stream::iter(reads.into_iter().map(Ok::<_, Infallible>));
        reqwest::Response::from(http::Response::new(reqwest::Body::wrap_stream(body)))
    }

    fn openai_text(text: &str) -> String {
        let chunk = serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}}]});
        format!("data: {chunk}\n\n")
    }

    /// Every chunk (text as is, a tool call as `<name:arguments>`, the end as `<done>`) and
    /// the error that ended the stream.
    async fn shown(stream: ChunkStream) -> (Vec<String>, Option<ModelError>) {
        let items: Vec<_> = stream.collect().await;
        let mut out = Vec::new();
        for item in items {
            match item {
                Ok(StreamChunk::Text(t)) => out.push(t),
                Ok(StreamChunk::ToolCall(c)) => out.push(format!(
                    "<{}:{}>",
                    c.name,
                    c.arguments.map(|a| a.to_string()).unwrap_or_default()
                )),
                Ok(StreamChunk::Done { .. }) => out.push("<done>".into()),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    #[tokio::test]
    async fn a_key_split_over_two_deltas_never_leaves_the_driver_whole_or_in_pieces() {
        let client = HttpClient::new("test", &ModelConfig::default()).expect("a client");
        let redactor = Redactor::new(Some(Secret::new(KEY)));
        let body = [
            openai_text("Your key: sk-SENT"),
            openai_text("INEL-0123456789, and sk-"),
            // A tool call ends the text: the held tail goes first. Its arguments, split over
            // two deltas too, are assembled before they are scrubbed.
            r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"echo","arguments":"{\"k\":\"sk-SEN"}}]}}]}"#.to_string() + "\n\n",
            r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"TINEL-0123456789\"}"}}]},"finish_reason":"tool_calls"}]}"#.to_string() + "\n\n",
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        let stream = chunks(
            client.events(ending(vec![body.into_bytes()])),
            crate::models::openai::ChatStream::new("test", None),
            redactor.clone(),
        );
        let (out, error) = shown(stream).await;
        assert_eq!(error, None);
        assert_eq!(
            out,
            [
                "Your key: ",
                "[redacted], and ",
                "sk-",
                r#"<echo:{"k":"[redacted]"}>"#,
                "<done>"
            ]
        );

        // Anthropic: the tail held at the end of the text is handed on before the final chunk.
        let event =
            |name: &str, data: serde_json::Value| format!("event: {name}\ndata: {data}\n\n");
        let delta = |text: &str| {
            event(
                "content_block_delta",
                serde_json::json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": text}}),
            )
        };
        let body = [
            event(
                "message_start",
                serde_json::json!({"type": "message_start", "message": {"usage": {}}}),
            ),
            delta("sk-SENTINEL"),
            delta("-0123456789 ends with sk-S"),
            event("message_stop", serde_json::json!({"type": "message_stop"})),
        ]
        .concat();
        let stream = chunks(
            client.events(ending(vec![body.into_bytes()])),
            crate::models::anthropic::MessageStream::new("test", None),
            redactor,
        );
        let (out, error) = shown(stream).await;
        assert_eq!(error, None);
        assert_eq!(out, ["[redacted] ends with ", "sk-S", "<done>"]);
    }

    #[tokio::test]
    async fn a_held_tail_is_handed_on_before_the_error_that_ends_the_stream() {
        let client = HttpClient::new("test", &ModelConfig::default()).expect("a client");
        let body = openai_text("almost sk-SENTINEL") + "data: {not json\n\n";
        let stream = chunks(
            client.events(ending(vec![body.into_bytes()])),
            crate::models::openai::ChatStream::new("test", None),
            Redactor::new(Some(Secret::new(KEY))),
        );
        let (out, error) = shown(stream).await;
        assert_eq!(out, ["almost ", "sk-SENTINEL"]);
        let error = error.expect("the malformed chunk ends the stream");
        assert_eq!(error.kind, ModelErrorKind::Protocol);
        assert!(error.mid_stream);
    }

    #[tokio::test]
    async fn an_event_beyond_the_cap_is_a_protocol_error_naming_it_after_the_events_before_it() {
        let client = HttpClient::new("test", &ModelConfig::default()).expect("a client");
        let mut big = openai_text("first");
        big.push_str("data: ");
        big.push_str(&"x".repeat(3 << 20));
        let mut events = client.events_capped(ending(vec![big.into_bytes()]), 2 << 20);
        let first = events
            .next()
            .await
            .expect("an event")
            .expect("the first fits");
        assert!(first.data.contains("first"), "{first:?}");
        let error = events
            .next()
            .await
            .expect("an error")
            .expect_err("too large");
        assert_eq!(error.kind, ModelErrorKind::Protocol);
        assert!(error.message.contains("2 MiB"), "{error}");
        assert!(events.next().await.is_none(), "nothing after the error");

        // The real cap is 16 MiB, and the error says so.
        let huge = format!("data: {}", "y".repeat(sse::MAX_EVENT_BYTES + 1));
        let mut events = client.events(ending(vec![huge.into_bytes()]));
        let error = events
            .next()
            .await
            .expect("an error")
            .expect_err("too large");
        assert!(error.message.contains("16 MiB"), "{error}");
    }

    #[test]
    fn transport_errors_lose_a_urls_user_info() {
        let redactor = Redactor::new(None);
        let e = redactor.error(ModelError::new(
            "openai",
            ModelErrorKind::Connection,
            "error sending request for url (http://u:hunter2-secret@127.0.0.1:9/v1/models)",
        ));
        assert_eq!(
            e.message,
            "error sending request for url (http://***@127.0.0.1:9/v1/models)"
        );
    }
}
