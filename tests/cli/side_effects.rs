//! Side effects happen once (DESIGN §9), through the binary: a model server whose first turn
//! calls `file_write` or streams text, and whose next turn hangs or fails with a 500. Whatever
//! retry layer would have run the attempt again — `runtime.task_timeout`, `runtime.retries` —
//! the task ends after one attempt, with one side effect, exit 1 and a message naming the rule.
//!
//! The server is a few lines of HTTP/1.1 on a loopback socket rather than wiremock: a turn
//! that sends its headers and some text and then never finishes cannot be written as a canned
//! response.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// What a turn of the scripted server does.
#[derive(Clone, Copy)]
enum TurnPlan {
    /// Asks for `file_write` of `orbit.txt`.
    WriteFile,
    /// Streams one text chunk, then sends nothing more until the client gives up.
    TextThenHang,
    /// Sends the stream's headers, then nothing more.
    Hang,
    /// Answers HTTP 500.
    ServerError,
}

/// An OpenAI-compatible server on 127.0.0.1: the first turn (a request without a tool result)
/// does `first`, any later one `then`. Counts the chat requests it was sent.
struct ScriptedServer {
    base_url: String,
    requests: Arc<AtomicUsize>,
}

impl ScriptedServer {
    fn start(first: TurnPlan, then: TurnPlan) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let base_url = format!(
            "http://{}/v1",
            listener.local_addr().expect("the bound address")
        );
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || serve(conn, first, then, &counter));
            }
        });
        ScriptedServer { base_url, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Serves the requests of one connection (keep-alive) until it closes.
fn serve(conn: TcpStream, first: TurnPlan, then: TurnPlan, counter: &AtomicUsize) {
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut conn = conn;
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        let mut first_line = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if first_line {
                first_line = false;
                continue;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        counter.fetch_add(1, Ordering::SeqCst);
        let later = String::from_utf8_lossy(&body).contains("\"tool_call_id\"");
        let plan = if later { then } else { first };
        let sse_head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                        transfer-encoding: chunked\r\n\r\n";
        let chunk = |data: &str| {
            let event = format!("data: {data}\n\n");
            format!("{:x}\r\n{event}\r\n", event.len())
        };
        match plan {
            TurnPlan::WriteFile => {
                let mut out = sse_head.to_string();
                out += &chunk(
                    r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"file_write","arguments":"{\"path\":\"orbit.txt\",\"content\":\"burn at 04:00\"}"}}]}}]}"#,
                );
                out +=
                    &chunk(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#);
                out +=
                    &chunk(r#"{"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":9}}"#);
                out += &chunk("[DONE]");
                out += "0\r\n\r\n";
                if conn.write_all(out.as_bytes()).is_err() {
                    return;
                }
            }
            TurnPlan::TextThenHang | TurnPlan::Hang => {
                let mut out = sse_head.to_string();
                if matches!(plan, TurnPlan::TextThenHang) {
                    out += &chunk(
                        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Burn scheduled for"}}]}"#,
                    );
                }
                if conn.write_all(out.as_bytes()).is_err() {
                    return;
                }
                let _ = conn.flush();
                // Nothing more until the client hangs up.
                let mut sink = [0u8; 256];
                while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                return;
            }
            TurnPlan::ServerError => {
                let body = r#"{"error":{"message":"internal error","type":"server_error"}}"#;
                let out = format!(
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if conn.write_all(out.as_bytes()).is_err() {
                    return;
                }
            }
        }
    }
}

/// `veyra run --tools file_write go` against `server`, with retries on at every layer.
fn run_against(sb: &Sandbox, server: &ScriptedServer, timeout_secs: &str) -> Run {
    let mut cmd = sb.cmd();
    cmd.env("VEYRA_MODEL__BACKEND", "openai")
        .env("VEYRA_MODEL__BASE_URL", &server.base_url)
        .env("VEYRA_MODEL__RETRIES", "0")
        .env("VEYRA_RUNTIME__RETRIES", "2")
        .env("VEYRA_RUNTIME__BACKOFF_MS", "1")
        .env("VEYRA_RUNTIME__TASK_TIMEOUT", timeout_secs)
        .args(["run", "--tools", "file_write", "go"]);
    run(cmd)
}

/// The `TOOL_INVOCATION` entries of the default store that succeeded.
fn successful_tool_calls(sb: &Sandbox) -> usize {
    let mut cmd = sb.cmd();
    cmd.args(["audit", "list", "--type", "TOOL_INVOCATION", "--json"]);
    let r = run(cmd);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    r.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["outcome"] == "success")
        .count()
}

#[test]
fn a_task_that_times_out_after_its_tool_acted_is_not_run_again() {
    let sb = Sandbox::new();
    let server = ScriptedServer::start(TurnPlan::WriteFile, TurnPlan::Hang);
    let r = run_against(&sb, &server, "2");
    assert_error(
        &r,
        1,
        &["timeout", "not retried", "side effects happen once"],
    );
    assert!(r.stderr.contains("tools had acted"), "{}", r.stderr);
    assert_eq!(
        server.requests(),
        2,
        "one attempt: the call, then the turn after it"
    );
    assert_eq!(successful_tool_calls(&sb), 1, "the file was written once");
    let written = sb.dir.path().join("data/veyra/workspace/orbit.txt");
    assert_eq!(std::fs::read_to_string(written).unwrap(), "burn at 04:00");
}

#[test]
fn a_task_that_times_out_after_streaming_text_is_not_run_again() {
    let sb = Sandbox::new();
    let server = ScriptedServer::start(TurnPlan::TextThenHang, TurnPlan::Hang);
    let r = run_against(&sb, &server, "2");
    assert_error(
        &r,
        1,
        &["timeout", "not retried", "side effects happen once"],
    );
    assert!(r.stderr.contains("streamed output"), "{}", r.stderr);
    assert_eq!(server.requests(), 1, "one attempt");
    assert_eq!(
        r.stdout.matches("Burn scheduled for").count(),
        1,
        "the text was shown once: {}",
        r.stdout
    );
}

#[test]
fn a_server_error_after_a_tool_acted_is_not_run_again() {
    let sb = Sandbox::new();
    let server = ScriptedServer::start(TurnPlan::WriteFile, TurnPlan::ServerError);
    let r = run_against(&sb, &server, "60");
    assert_error(&r, 1, &["500", "not retried", "side effects happen once"]);
    assert_eq!(
        server.requests(),
        2,
        "one attempt: the call, then the failed turn"
    );
    assert_eq!(successful_tool_calls(&sb), 1, "the file was written once");
}
