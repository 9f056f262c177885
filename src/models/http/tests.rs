//! Tests of the HTTP client: status and error mapping, retry timing, redaction, and the SSE
//! stream parsers against split, stalled and arbitrary input.

mod client {
    use super::super::*;

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
