//! The accept loop: HTTP/1.1 connections served by hyper with the warp routes, plus what
//! `warp::serve` has no hook for.
//!
//! - **Timeouts** (docs/spec.md §2). A connection is closed when no byte has moved either way for
//!   `idle_timeout`, or when a request head is still incomplete `header_timeout` after its first
//!   byte. Idle covers a client that connects and says nothing, a keep-alive connection left
//!   open, and a body that stops halfway; requests never wait on the engine anywhere near
//!   as long (the engine's own call timeout is 5 s).
//! - **Protocol errors as JSON.** hyper answers a request it cannot parse (a bad request line,
//!   a too-long URI, too many or too large headers) itself, with an empty body, and offers no
//!   way to change it. Every response of ours carries `x-request-id`; a 400, 414 or 431 head
//!   written without one can only be hyper's, and is replaced by the same response with the
//!   JSON error body. hyper closes the connection after it.
//! - **Refused connections** (out of file descriptors, say) are logged at most once per
//!   `REFUSAL_LOG_EVERY`, with how many there were, and accepting pauses briefly.
//! - **Shutdown**: stop accepting, close idle connections, let requests in progress finish.
//!   Connections live in the server's `JoinSet`, so dropping the server cuts them all off.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use warp::filters::BoxedFilter;
use warp::http::Request;
use warp::reply::Response;

use super::error::ApiError;
use super::routes::new_request_id;
use crate::code::Code;
use crate::config::ServerSettings;

/// How connections are policed.
#[derive(Clone, Copy, Debug)]
pub struct ServerOptions {
    /// Close a connection after this long without a byte either way.
    pub idle_timeout: Duration,
    /// Close a connection whose request head is still incomplete this long after it began.
    pub header_timeout: Duration,
}

impl From<&ServerSettings> for ServerOptions {
    fn from(settings: &ServerSettings) -> ServerOptions {
        ServerOptions {
            idle_timeout: settings.idle_timeout,
            header_timeout: settings.header_timeout,
        }
    }
}

/// Refused connections are logged at most this often.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);
/// How long accepting pauses after a refusal: the usual cause (no file descriptors left)
/// clears only when connections close.
const REFUSAL_PAUSE: Duration = Duration::from_millis(50);

/// Serves `routes` on `listener` until `shutdown` resolves, then stops accepting and returns
/// once every connection has finished its requests and closed.
pub async fn serve(
    listener: TcpListener,
    routes: BoxedFilter<(Response,)>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) {
    let routes = warp::service(routes);
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut refusals = Refusals::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let connection = serve_connection(stream, routes.clone(), options, stopping.clone());
                    connections.spawn(connection);
                }
                Err(error) => {
                    refusals.note(&error);
                    tokio::time::sleep(REFUSAL_PAUSE).await;
                }
            },
            // Reap finished connections as they go, so the set holds only live ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
}

/// Counts refused connections and logs them, rate-limited.
#[derive(Default)]
struct Refusals {
    since_last_log: u64,
    last_log: Option<Instant>,
}

impl Refusals {
    fn note(&mut self, error: &io::Error) {
        // A client that gave up between connecting and our accept is no refusal of ours.
        if matches!(
            error.kind(),
            io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
        ) {
            return;
        }
        self.since_last_log += 1;
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|last| now.duration_since(last) >= REFUSAL_LOG_EVERY)
        {
            tracing::warn!(
                %error,
                refused = self.since_last_log,
                "refusing connections: accepting failed (logged at most every {REFUSAL_LOG_EVERY:?})"
            );
            self.since_last_log = 0;
            self.last_log = Some(now);
        }
    }
}

async fn serve_connection<S: Routes>(
    stream: TcpStream,
    routes: S,
    options: ServerOptions,
    mut stopping: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched::new(stream, activity.clone()));
    let service = Counted {
        routes,
        activity: activity.clone(),
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None) // ours covers it, and also the idle case hyper's cannot
        .serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let mut draining = *stopping.borrow();
    if draining {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        // Looking again at least every `header_timeout` catches a head that begins while we
        // sleep, on time, without waking the watchdog on every request.
        let deadline = activity
            .deadline(options)
            .min(Instant::now() + options.header_timeout);
        tokio::select! {
            result = connection.as_mut() => {
                // A client that disconnects mid-request is its own business, not a server error.
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(deadline) => {
                if activity.deadline(options) <= Instant::now() {
                    tracing::debug!("closing a connection: idle or request head too slow");
                    return;
                }
            }
            _ = stopping.changed(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// What the watchdog of one connection needs to know, written by its IO and its service.
/// Instants are milliseconds since `base`; one task touches them, atomics only make the
/// types `Send`.
struct Activity {
    base: Instant,
    /// When a byte last moved either way.
    last_io: AtomicU64,
    /// When the request head now being read began; `NO_HEAD` between requests.
    head_since: AtomicU64,
    /// Requests handed to the routes whose response is not ready yet.
    in_flight: AtomicU32,
}

const NO_HEAD: u64 = u64::MAX;

impl Activity {
    fn new() -> Activity {
        Activity {
            base: Instant::now(),
            last_io: AtomicU64::new(0),
            head_since: AtomicU64::new(NO_HEAD),
            in_flight: AtomicU32::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_since.load(Ordering::Relaxed) == NO_HEAD
        {
            self.head_since.store(now, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(NO_HEAD, Ordering::Relaxed);
    }

    fn request_answered(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// When the connection is to be closed unless something happens first.
    fn deadline(&self, options: ServerOptions) -> Instant {
        let at = |millis: u64, after: Duration| {
            self.base + Duration::from_millis(millis).saturating_add(after)
        };
        let idle = at(self.last_io.load(Ordering::Relaxed), options.idle_timeout);
        match self.head_since.load(Ordering::Relaxed) {
            NO_HEAD => idle,
            since => idle.min(at(since, options.header_timeout)),
        }
    }
}

/// The warp routes as a tower service (`warp::service`, whose type has no name).
trait Routes:
    tower_service::Service<
        Request<Incoming>,
        Response = Response,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S> Routes for S where
    S: tower_service::Service<
            Request<Incoming>,
            Response = Response,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// The routes as a hyper service that tells the watchdog when a request is in progress.
struct Counted<S> {
    routes: S,
    activity: Arc<Activity>,
}

impl<S: Routes> hyper::service::Service<Request<Incoming>> for Counted<S> {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Self::Error>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.activity.request_started();
        let answered = AnsweredOnDrop(self.activity.clone());
        let response = tower_service::Service::call(&mut self.routes.clone(), request);
        Box::pin(async move {
            let response = response.await;
            drop(answered);
            response
        })
    }
}

/// Marks the request answered however its future ends (done, or dropped with the connection).
struct AnsweredOnDrop(Arc<Activity>);

impl Drop for AnsweredOnDrop {
    fn drop(&mut self) {
        self.0.request_answered();
    }
}

/// The TCP stream, noting every byte's movement and replacing hyper's empty-bodied protocol
/// error responses with JSON ones.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    /// A replacement response still to be written, and how much of it is.
    replacement: Vec<u8>,
    replaced: usize,
}

impl Watched {
    fn new(stream: TcpStream, activity: Arc<Activity>) -> Watched {
        Watched {
            stream,
            activity,
            replacement: Vec::new(),
            replaced: 0,
        }
    }

    /// Writes what is left of a replacement response.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.replaced < self.replacement.len() {
            let written = ready!(
                Pin::new(&mut self.stream).poll_write(cx, &self.replacement[self.replaced..])
            )?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.replaced += written;
            self.activity.wrote();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.activity.read();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        if let Some(replacement) = protocol_error_reply(buf) {
            this.replacement = replacement;
            this.replaced = 0;
            // Taken: the rest goes out on the following writes, flushes or shutdown.
            let _ = this.poll_replacement(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        let written = ready!(Pin::new(&mut this.stream).poll_write(cx, buf))?;
        this.activity.wrote();
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// The JSON response replacing `written` when it is hyper's own answer to a request it could
/// not parse: a complete 400, 414 or 431 head without our `x-request-id`.
fn protocol_error_reply(written: &[u8]) -> Option<Vec<u8>> {
    // Every response passes here: the status is looked at before anything is searched.
    let status_line = written.get(..12)?;
    if !status_line.starts_with(b"HTTP/1.")
        || !matches!(&status_line[9..], b"400" | b"414" | b"431")
    {
        return None;
    }
    let head_end = written
        .windows(4)
        .position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&written[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    if !status_line.starts_with("HTTP/1.") {
        return None;
    }
    let status: u16 = status_line.get(9..12)?.parse().ok()?;
    let ours = lines.any(|line| {
        line.split_once(':')
            .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("x-request-id"))
    });
    if ours {
        return None;
    }
    let error = match status {
        400 => ApiError::invalid_request("the request is not valid HTTP/1.1"),
        414 => ApiError::new(Code::UriTooLong, "the request URI is too long"),
        431 => ApiError::new(
            Code::HeadersTooLarge,
            "the request has too many headers, or too large ones",
        ),
        _ => return None,
    };
    let request_id = new_request_id();
    tracing::debug!(request_id = %request_id, status, "request refused by the HTTP parser");
    let body = error.body();
    let reason = error.status.canonical_reason().unwrap_or("");
    let mut reply = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         x-request-id: {request_id}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    reply.extend_from_slice(&body);
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_protocol_errors_get_the_json_body() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Fri, 27 Nov 2026 20:00:00 GMT\r\n\r\n";
        let reply = String::from_utf8(protocol_error_reply(hyper).unwrap()).unwrap();
        assert!(reply.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(reply.contains("content-type: application/json\r\n"));
        assert!(reply.contains("x-request-id: "));
        let body = reply.split("\r\n\r\n").nth(1).unwrap();
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "HEADERS_TOO_LARGE");
        let length = format!(
            "content-length: {}\r\n",
            reply.split("\r\n\r\n").nth(1).unwrap().len()
        );
        assert!(reply.contains(&length));
    }

    #[test]
    fn our_own_responses_pass_untouched() {
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nx-request-id: abc\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(protocol_error_reply(ours), None);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(protocol_error_reply(ok), None);
        assert_eq!(protocol_error_reply(b"{\"code\":\"x\"}"), None);
    }
}
