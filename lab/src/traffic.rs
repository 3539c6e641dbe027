//! Lab traffic tool: a name-echoing HTTP server for "real server" nodes and a
//! bounded client loop that records which server answered each request.
//!
//! The pair is meant to observe anycast / IPVS behaviour from inside lab
//! namespaces: every request uses a fresh TCP connection, so each one is an
//! independent load-balancing decision, and the per-request events show when
//! (and for how long) traffic failed during a topology change.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Without a head-read deadline a client that connects and never sends a
/// request (or a connection orphaned by a route change) would hold a task
/// forever; a long-running lab server must not accumulate those.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Accept errors such as EMFILE repeat immediately; pausing keeps the server
/// from spinning a core while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How often a waiting request loop looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(5);

/// A node name is a few bytes; anything much larger means the client is not
/// talking to our server, and buffering it would only hide that.
const MAX_BODY_BYTES: usize = 4096;

/// Serves `"{node_name}\n"` over HTTP/1.1 on `0.0.0.0:port` until the process
/// is killed.
///
/// Only returns on setup failure (runtime creation or bind).
/// One HTTP/1.1 request on a kept-alive blocking connection (as a
/// long-lived client does): the answer's body (the server's name).
pub fn ask_keepalive(s: &mut std::net::TcpStream) -> io::Result<String> {
    use std::io::{Read, Write};
    s.write_all(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(io::Error::other("connection closed"));
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no content-length in {head}")))?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(String::from_utf8_lossy(&body).trim().to_string())
}

pub fn serve_http(node_name: &str, port: u16) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let name = node_name.to_owned();
    runtime.block_on(async move {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).await?;
        tracing::info!(node = %name, port, "traffic server listening");
        serve_on(listener, name).await;
        Ok(())
    })
}

/// The serving loop of [`serve_http`] on an already-bound listener; never
/// returns. Must run inside a tokio runtime (connections are spawned tasks).
pub async fn serve_on(listener: TcpListener, node_name: String) {
    let body = Bytes::from(format!("{node_name}\n"));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "traffic server accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_request: Request<Incoming>| {
                let body = body.clone();
                async move { Ok::<_, Infallible>(name_response(body)) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            if let Err(err) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %err, "traffic server connection error");
            }
        });
    }
}

fn name_response(body: Bytes) -> Response<Full<Bytes>> {
    // Built by hand rather than with `Response::builder()` so there is no
    // fallible path to handle in the hot loop.
    let mut response = Response::new(Full::new(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// Parameters of one [`run_requests`] loop.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub target: SocketAddr,
    /// Upper bound on the number of requests.
    pub count: usize,
    /// No request is started once this much time has passed since the loop
    /// started, so the loop ends within `max_duration + timeout`.
    pub max_duration: Duration,
    /// Total budget for one request: connect, response head and body.
    pub timeout: Duration,
    /// Spacing between request starts; zero sends back to back.
    pub interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The trimmed response body, i.e. the answering node's name.
    Ok { server: String },
    /// A short, aggregatable reason such as `"connect refused"` or `"timeout"`.
    Failed { reason: String },
}

#[derive(Debug, Clone)]
pub struct RequestEvent {
    /// When the request was started, relative to the loop start.
    pub at: Duration,
    pub latency: Duration,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub sent: usize,
    pub ok: usize,
    pub failed: usize,
    pub per_server: BTreeMap<String, usize>,
    pub failure_reasons: BTreeMap<String, usize>,
    pub events: Vec<RequestEvent>,
    pub elapsed: Duration,
    /// When the loop started (events' `at` counts from here); `None` when
    /// it never ran.
    pub started: Option<std::time::Instant>,
    /// The same moment on the wall clock, to line events up with other
    /// processes' timestamps (anycastd's `status` events).
    pub started_wall: Option<SystemTime>,
}

impl LoadReport {
    fn record(&mut self, event: RequestEvent) {
        self.sent += 1;
        match &event.outcome {
            Outcome::Ok { server } => {
                self.ok += 1;
                *self.per_server.entry(server.clone()).or_default() += 1;
            }
            Outcome::Failed { reason } => {
                self.failed += 1;
                *self.failure_reasons.entry(reason.clone()).or_default() += 1;
            }
        }
        self.events.push(event);
    }

    /// One line, e.g.
    /// `200 sent, 198 ok, 2 failed; d1=101 d2=97; failures: timeout=2 in 1.23 s`.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} sent, {} ok, {} failed; ",
            self.sent, self.ok, self.failed
        );
        if self.per_server.is_empty() {
            line.push_str("no answers");
        } else {
            let servers: Vec<String> = self
                .per_server
                .iter()
                .map(|(server, n)| format!("{server}={n}"))
                .collect();
            line.push_str(&servers.join(" "));
        }
        line.push_str("; failures: ");
        if self.failure_reasons.is_empty() {
            line.push_str("none");
        } else {
            // Reasons may contain spaces ("connect refused"), so they are
            // separated by commas to stay unambiguous.
            let reasons: Vec<String> = self
                .failure_reasons
                .iter()
                .map(|(reason, n)| format!("{reason}={n}"))
                .collect();
            line.push_str(&reasons.join(", "));
        }
        let _ = write!(line, " in {:.2} s", self.elapsed.as_secs_f64());
        line
    }

    /// When `event` started, on this process's monotonic clock.
    pub fn instant_of(&self, event: &RequestEvent) -> Option<std::time::Instant> {
        self.started.map(|s| s + event.at)
    }

    /// When `event` started, on the wall clock.
    pub fn wall_of(&self, event: &RequestEvent) -> Option<SystemTime> {
        self.started_wall.map(|s| s + event.at)
    }

    /// The failed requests, each with its start on the monotonic clock.
    pub fn failures(&self) -> Vec<(std::time::Instant, &RequestEvent)> {
        self.events
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Failed { .. }))
            .filter_map(|e| Some((self.instant_of(e)?, e)))
            .collect()
    }

    /// Requests started in `[from, to)` (monotonic clock): (sent, ok,
    /// answers per server).
    pub fn between(
        &self,
        from: std::time::Instant,
        to: std::time::Instant,
    ) -> (usize, usize, BTreeMap<String, usize>) {
        let mut sent = 0;
        let mut ok = 0;
        let mut per_server = BTreeMap::new();
        for e in &self.events {
            let Some(at) = self.instant_of(e) else {
                continue;
            };
            if at < from || at >= to {
                continue;
            }
            sent += 1;
            if let Outcome::Ok { server } = &e.outcome {
                ok += 1;
                *per_server.entry(server.clone()).or_insert(0) += 1;
            }
        }
        (sent, ok, per_server)
    }

    /// Start times (`at`) of the first and the last failed request.
    pub fn failure_window(&self) -> Option<(Duration, Duration)> {
        let mut failed_at = self
            .events
            .iter()
            .filter(|event| matches!(event.outcome, Outcome::Failed { .. }))
            .map(|event| event.at);
        let first = failed_at.next()?;
        Some((first, failed_at.next_back().unwrap_or(first)))
    }
}

/// Sends up to `spec.count` sequential requests, each on a new connection,
/// and reports who answered. Blocking.
///
/// Runs on a current-thread runtime and spawns no OS thread, so every socket
/// is created in the calling thread's network namespace. If the runtime
/// cannot be created, the error is logged and an empty report (`sent == 0`)
/// is returned.
pub fn run_requests(spec: &LoadSpec) -> LoadReport {
    run_requests_until(spec, &AtomicBool::new(false))
}

/// [`run_requests`] that also stops (before starting another request) once
/// `stop` is set.
pub fn run_requests_until(spec: &LoadSpec, stop: &AtomicBool) -> LoadReport {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "cannot create runtime for the request loop");
            return LoadReport::default();
        }
    };
    runtime.block_on(request_loop(spec, stop))
}

async fn request_loop(spec: &LoadSpec, stop: &AtomicBool) -> LoadReport {
    let start = Instant::now();
    let mut report = LoadReport {
        started: Some(start.into_std()),
        started_wall: Some(SystemTime::now()),
        ..LoadReport::default()
    };
    // Elapsed durations are compared instead of computing `start +
    // max_duration`, which would panic for huge durations.
    while report.sent < spec.count
        && start.elapsed() < spec.max_duration
        && !stop.load(Ordering::Relaxed)
    {
        let request_start = Instant::now();
        let outcome = request_once(spec.target, spec.timeout).await;
        report.record(RequestEvent {
            at: request_start.duration_since(start),
            latency: request_start.elapsed(),
            outcome,
        });
        if report.sent >= spec.count {
            break;
        }
        let wait = spec.interval.saturating_sub(request_start.elapsed());
        let remaining = spec.max_duration.saturating_sub(start.elapsed());
        if wait >= remaining {
            // The next request could not start before the deadline anyway.
            break;
        }
        if !wait.is_zero() {
            // Short naps, so a stop request is seen within a few ms.
            let until = Instant::now() + wait;
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                tokio::time::sleep((until - Instant::now()).min(STOP_POLL)).await;
            }
        }
    }
    report.elapsed = start.elapsed();
    report
}

#[derive(Clone, Copy)]
enum Phase {
    Connecting,
    Exchanging,
}

async fn request_once(target: SocketAddr, timeout: Duration) -> Outcome {
    // The timeout drops the request future, so the phase it reached has to
    // live outside of it to tell a dead path from a stuck server.
    let phase = Cell::new(Phase::Connecting);
    match tokio::time::timeout(timeout, fetch_server_name(target, &phase)).await {
        Ok(Ok(server)) => Outcome::Ok { server },
        Ok(Err(reason)) => Outcome::Failed { reason },
        Err(_elapsed) => Outcome::Failed {
            reason: match phase.get() {
                Phase::Connecting => "connect timeout",
                Phase::Exchanging => "timeout",
            }
            .to_owned(),
        },
    }
}

async fn fetch_server_name(target: SocketAddr, phase: &Cell<Phase>) -> Result<String, String> {
    let stream = TcpStream::connect(target)
        .await
        .map_err(|err| classify_connect_error(&err))?;
    phase.set(Phase::Exchanging);
    // Only a latency tweak; the request works the same without it.
    let _ = stream.set_nodelay(true);

    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| classify_error(&err))?;
    let request = Request::get("/")
        .header(HOST, target.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|err| format!("other: {err}"))?;

    let exchange = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|err| classify_error(&err))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("bad status {}", status.as_u16()));
        }
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|err| classify_error(&*err))?
            .to_bytes();
        let text = std::str::from_utf8(&body).map_err(|_| "other: non-utf8 body".to_owned())?;
        let server = text.trim();
        if server.is_empty() {
            return Err("other: empty body".to_owned());
        }
        Ok(server.to_owned())
    };

    // The connection is driven in this same future instead of a spawned task
    // so that a timeout drops (and closes) the socket right away, and no task
    // outlives its request.
    let mut connection = pin!(connection);
    let mut exchange = pin!(exchange);
    tokio::select! {
        biased;
        result = &mut exchange => result,
        driven = &mut connection => match driven {
            Err(err) => Err(classify_error(&err)),
            // The connection may end (e.g. the server closed it) after the
            // whole response was buffered, or after handing its error to the
            // pending request: either way the exchange now has the answer.
            Ok(()) => exchange.await,
        },
    }
}

fn classify_connect_error(err: &io::Error) -> String {
    match err.kind() {
        // ETIMEDOUT from the kernel's own SYN retries, in case they run out
        // before our deadline does.
        io::ErrorKind::TimedOut => "connect timeout".to_owned(),
        _ => classify_io_error(err),
    }
}

fn classify_io_error(err: &io::Error) -> String {
    let reason = match err.kind() {
        io::ErrorKind::ConnectionRefused => "connect refused",
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => "reset",
        io::ErrorKind::TimedOut => "timeout",
        io::ErrorKind::HostUnreachable => "host unreachable",
        io::ErrorKind::NetworkUnreachable => "network unreachable",
        io::ErrorKind::UnexpectedEof => "closed",
        _ => return format!("other: {err}"),
    };
    reason.to_owned()
}

/// hyper wraps socket errors, so the chain is searched for the underlying
/// `io::Error` to keep resets distinguishable from protocol errors.
fn classify_error(err: &(dyn StdError + 'static)) -> String {
    let mut current = Some(err);
    while let Some(cause) = current {
        if let Some(io_err) = cause.downcast_ref::<io::Error>() {
            return classify_io_error(io_err);
        }
        current = cause.source();
    }
    if let Some(hyper_err) = err.downcast_ref::<hyper::Error>() {
        if hyper_err.is_incomplete_message() {
            return "closed".to_owned();
        }
        if hyper_err.is_timeout() {
            return "timeout".to_owned();
        }
    }
    if err.is::<http_body_util::LengthLimitError>() {
        return "other: body too large".to_owned();
    }
    // hyper's Display omits the cause, which is usually the useful part.
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(cause) = current {
        let _ = write!(text, ": {cause}");
        current = cause.source();
    }
    format!("other: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};

    fn loopback_listener() -> std::net::TcpListener {
        std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap()
    }

    /// Runs `serve_on` on its own thread and runtime for the rest of the test
    /// process.
    fn spawn_name_server(name: &str) -> SocketAddr {
        let listener = loopback_listener();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let name = name.to_owned();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                serve_on(listener, name).await;
            });
        });
        addr
    }

    /// A hand-written server that answers every connection with `response`
    /// and closes it, recording each client's source port.
    fn spawn_raw_server(response: &'static str) -> (SocketAddr, Arc<Mutex<Vec<u16>>>) {
        let listener = loopback_listener();
        let addr = listener.local_addr().unwrap();
        let ports = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&ports);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                seen.lock()
                    .unwrap()
                    .push(stream.peer_addr().unwrap().port());
                stream
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(response.as_bytes());
            }
        });
        (addr, ports)
    }

    fn spec(target: SocketAddr, count: usize) -> LoadSpec {
        LoadSpec {
            target,
            count,
            max_duration: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            interval: Duration::ZERO,
        }
    }

    fn closed_port() -> SocketAddr {
        let listener = loopback_listener();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        addr
    }

    #[test]
    fn every_request_is_answered_with_the_node_name() {
        let addr = spawn_name_server("d1");
        let report = run_requests(&spec(addr, 20));
        assert_eq!(report.sent, 20, "{}", report.summary());
        assert_eq!(report.ok, 20, "{}", report.summary());
        assert_eq!(report.failed, 0);
        assert_eq!(report.per_server, BTreeMap::from([("d1".to_owned(), 20)]));
        assert_eq!(report.events.len(), 20);
        assert!(report.events.iter().all(|event| event.outcome
            == Outcome::Ok {
                server: "d1".to_owned()
            }));
        assert_eq!(report.failure_window(), None);
    }

    #[test]
    fn each_request_uses_a_new_connection() {
        let (addr, ports) = spawn_raw_server("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nraw\n");
        let report = run_requests(&spec(addr, 10));
        assert_eq!(report.per_server, BTreeMap::from([("raw".to_owned(), 10)]));
        let ports = ports.lock().unwrap().clone();
        assert_eq!(ports.len(), 10, "one accepted connection per request");
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), 10, "source ports were reused: {ports:?}");
    }

    #[test]
    fn closed_port_fails_with_connect_refused() {
        let report = run_requests(&spec(closed_port(), 5));
        assert_eq!(report.sent, 5);
        assert_eq!(report.ok, 0);
        assert_eq!(report.failed, 5);
        assert!(report.per_server.is_empty());
        assert_eq!(
            report.failure_reasons,
            BTreeMap::from([("connect refused".to_owned(), 5)])
        );
        let window = report.failure_window().unwrap();
        assert_eq!(window, (report.events[0].at, report.events[4].at));
        assert!(window.0 <= window.1);
    }

    #[test]
    fn silent_server_times_out() {
        // Never accepted: the kernel completes the handshake from the
        // backlog, but nobody ever reads the request.
        let listener = loopback_listener();
        let mut spec = spec(listener.local_addr().unwrap(), 2);
        spec.timeout = Duration::from_millis(100);
        let report = run_requests(&spec);
        drop(listener);
        assert_eq!(
            report.failure_reasons,
            BTreeMap::from([("timeout".to_owned(), 2)])
        );
        assert!(report
            .events
            .iter()
            .all(|event| event.latency >= Duration::from_millis(90)));
    }

    #[test]
    fn error_status_is_a_failure() {
        let (addr, _ports) =
            spawn_raw_server("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nd9\r\n");
        let report = run_requests(&spec(addr, 3));
        assert_eq!(report.ok, 0);
        assert_eq!(
            report.failure_reasons,
            BTreeMap::from([("bad status 503".to_owned(), 3)])
        );
    }

    #[test]
    fn server_closing_without_answer_is_a_failure() {
        let (addr, _ports) = spawn_raw_server("");
        let report = run_requests(&spec(addr, 2));
        assert_eq!(report.ok, 0);
        assert_eq!(
            report.failure_reasons,
            BTreeMap::from([("closed".to_owned(), 2)]),
            "{}",
            report.summary()
        );
    }

    #[test]
    fn server_reset_is_reported_as_reset() {
        let listener = loopback_listener();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                use tokio::io::AsyncReadExt;
                let listener = TcpListener::from_std(listener).unwrap();
                loop {
                    let (mut stream, _) = listener.accept().await.unwrap();
                    // Read the request so the client is waiting for the
                    // answer when the RST arrives.
                    let mut buf = [0u8; 1024];
                    let _ = stream.read(&mut buf).await;
                    stream.set_zero_linger().unwrap();
                    drop(stream);
                }
            });
        });
        let report = run_requests(&spec(addr, 3));
        assert_eq!(
            report.failure_reasons,
            BTreeMap::from([("reset".to_owned(), 3)]),
            "{}",
            report.summary()
        );
    }

    #[test]
    fn max_duration_stops_the_loop_early() {
        let addr = spawn_name_server("d2");
        let spec = LoadSpec {
            target: addr,
            count: 1000,
            max_duration: Duration::from_millis(200),
            timeout: Duration::from_secs(1),
            interval: Duration::from_millis(10),
        };
        let report = run_requests(&spec);
        // Starts are at least 10 ms apart and all before 200 ms.
        assert!(
            report.sent >= 1 && report.sent <= 21,
            "{}",
            report.summary()
        );
        assert_eq!(report.events.len(), report.sent);
        assert_eq!(report.ok + report.failed, report.sent);
        assert!(report.elapsed < spec.max_duration + spec.timeout);
        assert!(report
            .events
            .iter()
            .all(|event| event.at < spec.max_duration));
    }

    #[test]
    fn interval_spaces_request_starts() {
        let addr = spawn_name_server("d3");
        let mut spec = spec(addr, 3);
        spec.interval = Duration::from_millis(50);
        let report = run_requests(&spec);
        assert_eq!(report.ok, 3, "{}", report.summary());
        for pair in report.events.windows(2) {
            assert!(
                pair[1].at - pair[0].at >= Duration::from_millis(45),
                "{:?}",
                report.events
            );
        }
    }

    #[test]
    fn zero_count_or_zero_duration_sends_nothing() {
        let addr = closed_port();
        assert_eq!(run_requests(&spec(addr, 0)).sent, 0);
        let mut no_time = spec(addr, 10);
        no_time.max_duration = Duration::ZERO;
        let report = run_requests(&no_time);
        assert_eq!(report.sent, 0);
        assert!(report.events.is_empty());
    }

    #[test]
    fn server_survives_malformed_requests() {
        let addr = spawn_name_server("d4");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        stream
            .write_all(b"\x00\xffnot http at all\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        assert!(
            answer.starts_with(b"HTTP/1.1 4"),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
        let report = run_requests(&spec(addr, 2));
        assert_eq!(report.per_server, BTreeMap::from([("d4".to_owned(), 2)]));
    }

    #[test]
    fn summary_and_failure_window() {
        let mut report = LoadReport::default();
        let ok = |server: &str| Outcome::Ok {
            server: server.to_owned(),
        };
        let failed = |reason: &str| Outcome::Failed {
            reason: reason.to_owned(),
        };
        for (ms, outcome) in [
            (0, ok("d1")),
            (10, failed("timeout")),
            (20, ok("d2")),
            (30, failed("connect refused")),
            (40, failed("timeout")),
            (50, ok("d1")),
        ] {
            report.record(RequestEvent {
                at: Duration::from_millis(ms),
                latency: Duration::from_millis(1),
                outcome,
            });
        }
        report.elapsed = Duration::from_millis(1234);
        assert_eq!(
            report.summary(),
            "6 sent, 3 ok, 3 failed; d1=2 d2=1; failures: connect refused=1, timeout=2 in 1.23 s"
        );
        assert_eq!(
            report.failure_window(),
            Some((Duration::from_millis(10), Duration::from_millis(40)))
        );
        assert_eq!(
            LoadReport::default().summary(),
            "0 sent, 0 ok, 0 failed; no answers; failures: none in 0.00 s"
        );
    }
}
