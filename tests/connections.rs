//! The HTTP server's own policing, over real sockets on tokio's paused clock: idle and slow
//! connections are closed on time (and live ones are not), hyper's protocol errors carry the
//! JSON error body, and a shutdown lets requests in progress finish.

mod helpers;

use std::time::Duration;

use commerce_engine::http::{RouteOptions, ServerOptions, routes, serve};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;

const IDLE: Duration = Duration::from_secs(60);
const HEADER: Duration = Duration::from_secs(10);

/// A server on port 0 over the real routes; dropping the sender stops it.
async fn server() -> (
    std::net::SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let engine = helpers::small_engine().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = RouteOptions {
        body_limit_bytes: 16_384,
        admin_token: helpers::ADMIN_TOKEN.into(),
        buyers: Default::default(),
        metrics: true,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let policing = ServerOptions {
        idle_timeout: IDLE,
        header_timeout: HEADER,
    };
    let server = tokio::spawn(serve(listener, routes(engine, options), policing, async {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    stream.read_to_end(&mut received).await.unwrap();
    received
}

/// Reads one response with a Content-Length body.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = stream.read(&mut buf).await.unwrap();
        assert!(read > 0, "closed before a whole response");
        received.extend_from_slice(&buf[..read]);
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .and_then(|length| length.parse().ok())
                .unwrap();
            if body.len() >= length {
                return text;
            }
        }
    }
}

fn assert_between(elapsed: Duration, low: Duration, high: Duration) {
    assert!(
        low <= elapsed && elapsed <= high,
        "closed after {elapsed:?}, expected between {low:?} and {high:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_sends_nothing_is_closed_after_the_idle_timeout() {
    let (addr, _stop, _server) = server().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    assert!(read_to_close(&mut stream).await.is_empty());
    assert_between(started.elapsed(), IDLE, IDLE + Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_request_head_dripped_byte_by_byte_is_cut_off_after_the_header_timeout() {
    let (addr, _stop, _server) = server().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    // A header every second keeps the connection far from idle, never finishing the head.
    let mut dripped = 0;
    while stream.write_all(b"x-drip: 1\r\n").await.is_ok() {
        dripped += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::ZERO, stream.read(&mut probe)).await {
            break;
        }
        assert!(dripped < 100, "the dripping connection was never closed");
    }
    assert_between(started.elapsed(), HEADER, HEADER + Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stops_halfway_is_closed_after_the_idle_timeout() {
    let (addr, _stop, _server) = server().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /users/1/points/charge HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"amount\":",
        )
        .await
        .unwrap();
    let started = Instant::now();
    read_to_close(&mut stream).await;
    assert_between(started.elapsed(), IDLE, IDLE + Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn keep_alive_connections_live_until_idle_and_not_a_moment_less() {
    let (addr, _stop, _server) = server().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // Five requests 50 s apart: longer than the header timeout, shorter than the idle one.
    for _ in 0..5 {
        stream
            .write_all(b"GET /users/1/points HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let response = read_response(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        tokio::time::sleep(Duration::from_secs(50)).await;
    }
    let started = Instant::now();
    read_to_close(&mut stream).await;
    // 50 of the 60 idle seconds were spent sleeping above.
    assert_between(started.elapsed(), IDLE - Duration::from_secs(51), IDLE);
}

#[tokio::test(start_paused = true)]
async fn requests_the_parser_refuses_get_the_json_error_body() {
    let (addr, _stop, _server) = server().await;
    let long_uri = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000));
    let many_headers = format!(
        "GET /health HTTP/1.1\r\n{}\r\n",
        (0..120)
            .map(|n| format!("x-{n}: 1\r\n"))
            .collect::<String>()
    );
    let huge_header = format!(
        "GET /health HTTP/1.1\r\nx-big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let cases = [
        ("GARBAGE\r\n\r\n".to_string(), 400, "INVALID_REQUEST"),
        ("GET / HTTP/9.9\r\n\r\n".to_string(), 400, "INVALID_REQUEST"),
        (long_uri, 414, "URI_TOO_LONG"),
        (many_headers, 431, "HEADERS_TOO_LARGE"),
        (huge_header, 431, "HEADERS_TOO_LARGE"),
    ];
    for (request, status, code) in cases {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // The server may answer and close before reading it all.
        let _ = stream.write_all(request.as_bytes()).await;
        let response = String::from_utf8(read_to_close(&mut stream).await).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("x-request-id: "), "{head}");
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], code);
        assert!(body["message"].is_string());
    }
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_closes_idle_connections_and_finishes_the_others() {
    let (addr, stop, server) = server().await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    helpers::settle().await;
    stop.send(()).unwrap();
    helpers::settle().await;
    // Refused now: the listener is closed.
    assert!(TcpStream::connect(addr).await.is_err());
    busy.write_all(b"\r\n").await.unwrap();
    let response = read_response(&mut busy).await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(read_to_close(&mut idle).await.is_empty());
    assert!(read_to_close(&mut busy).await.is_empty());
    server.await.unwrap();
}
