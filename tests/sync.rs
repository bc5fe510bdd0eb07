//! The sync client and the file source against scripted HTTP/1.1 servers on 127.0.0.1 and files
//! in a temp directory. Every server is bounded in time and serves loopback only; every test uses
//! short intervals and caps so that it finishes in a few seconds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferroflag::sync::{
    CollectingObserver, FileSource, FileSourceConfig, Source, SyncClient, SyncConfig, SyncError, SyncEvent, SyncStatus,
};
use ferroflag::{EvalContext, SnapshotStore};

const DOC1: &str = r#"[{"key": "alpha", "enabled": true}]"#;
const DOC2: &str = r#"{"flags": [{"key": "alpha", "enabled": false}, {"key": "beta", "enabled": true}]}"#;
const E1: &str = "\"e1\"";
const E2: &str = "\"e2\"";
/// No server outlives this, whatever a test does.
const SERVER_LIFETIME: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// A scripted HTTP/1.1 server: one connection per request, `Connection: close`.

#[derive(Debug, Clone)]
struct Request {
    at: Instant,
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
enum Reply {
    Raw(Vec<u8>),
    Delayed(Duration, Vec<u8>),
    /// Reads the request and never answers (until the server is dropped).
    Hang,
}

fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    out.extend(headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")));
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn ok(body: &str, etag: &str) -> Reply {
    Reply::Raw(response(
        "200 OK",
        &[("ETag", etag), ("Content-Type", "application/json")],
        body.as_bytes(),
    ))
}

fn status(line: &str, headers: &[(&str, &str)]) -> Reply {
    Reply::Raw(response(line, headers, b"{\"error\": \"nope\"}"))
}

fn not_modified() -> Reply {
    Reply::Raw(b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n".to_vec())
}

type Handler = dyn Fn(usize, &Request) -> Reply + Send + Sync;

struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(handler: impl Fn(usize, &Request) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_with(None, handler)
    }

    fn start_with(
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(usize, &Request) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let (requests, stop) = (Arc::clone(&requests), Arc::clone(&stop));
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::SeqCst) && started.elapsed() < SERVER_LIFETIME {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (requests, stop, handler) =
                                (Arc::clone(&requests), Arc::clone(&stop), Arc::clone(&handler));
                            let tls = tls.clone();
                            std::thread::spawn(move || {
                                stream.set_nonblocking(false).unwrap();
                                stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                                match tls {
                                    Some(tls) => {
                                        let Ok(session) = rustls::ServerConnection::new(tls) else {
                                            return;
                                        };
                                        let stream = rustls::StreamOwned::new(session, stream);
                                        serve(stream, &requests, &stop, handler.as_ref());
                                    }
                                    None => serve(stream, &requests, &stop, handler.as_ref()),
                                }
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        Self {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

fn serve(mut stream: impl Read + Write, requests: &Mutex<Vec<Request>>, stop: &AtomicBool, handler: &Handler) {
    let mut head = Vec::new();
    let mut buf = [0_u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let path = lines.next().unwrap_or("").split(' ').nth(1).unwrap_or("").to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let request = Request {
        at: Instant::now(),
        path,
        headers,
    };
    let index = {
        let mut requests = requests.lock().unwrap();
        requests.push(request.clone());
        requests.len() - 1
    };
    let bytes = match handler(index, &request) {
        Reply::Raw(bytes) => bytes,
        Reply::Delayed(delay, bytes) => {
            std::thread::sleep(delay);
            bytes
        }
        Reply::Hang => {
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(10));
            }
            return;
        }
    };
    let _ = stream.write_all(&bytes);
    let _ = stream.flush();
}

/// A port on which nothing listens: bound, then released.
fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn fast_config(base_url: &str) -> SyncConfig {
    let mut config = SyncConfig::new(base_url, "/api/flags").unwrap();
    config.interval = Duration::from_millis(30);
    config.backoff_cap = Duration::from_millis(120);
    config.timeout = Duration::from_secs(2);
    config.connect_timeout = Duration::from_millis(500);
    config
}

struct Harness {
    store: Arc<SnapshotStore>,
    observer: Arc<CollectingObserver>,
    client: SyncClient,
}

impl Harness {
    fn start(config: SyncConfig) -> Self {
        let store = Arc::new(SnapshotStore::new());
        let observer = Arc::new(CollectingObserver::new());
        let client = SyncClient::new(Arc::clone(&store), config, observer.clone()).unwrap();
        client.start().unwrap();
        Self {
            store,
            observer,
            client,
        }
    }

    fn status(&self) -> SyncStatus {
        self.client.status()
    }

    fn enabled(&self, key: &str) -> Option<bool> {
        self.store.load().is_enabled(key, &EvalContext::new("user-1"))
    }

    fn wait_for(&self, what: &str, condition: impl Fn(&SyncStatus) -> bool) -> SyncStatus {
        wait_until(what, || {
            let status = self.status();
            condition(&status).then_some(status)
        })
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.client.stop();
    }
}

/// Status and store change before the events that report the change are delivered: wait for
/// the event, then check there is exactly one.
fn wait_for_event(observer: &CollectingObserver, kind: &str) {
    wait_until(kind, || (observer.count(kind) >= 1).then_some(()));
    assert_eq!(observer.count(kind), 1, "{:?}", observer.events());
}

/// Polls `probe` until it gives a value; panics after 5 s.
fn wait_until<T>(what: &str, probe: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("ferroflag-sync-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------------------------
// ETag and 304.

#[test]
fn etag_is_sent_and_304_changes_nothing() {
    let server = Server::start(|_, request| match request.header("If-None-Match") {
        Some(E1) => not_modified(),
        _ => ok(DOC1, E1),
    });
    let h = Harness::start(fast_config(&server.url()));
    assert!(h.client.wait_ready(Duration::from_secs(5)));
    let version = h.store.version();
    let snapshot = h.store.load_full();
    let status = h.wait_for("three 304s", |s| s.not_modified >= 3);

    assert_eq!(h.store.version(), version, "a 304 must not publish");
    assert!(
        Arc::ptr_eq(&snapshot, &h.store.load_full()),
        "a 304 must not swap the snapshot"
    );
    assert_eq!(
        (status.successes, status.failures, status.consecutive_failures),
        (1, 0, 0)
    );
    assert_eq!(
        (status.source, status.etag.as_deref(), status.snapshot_version),
        (Source::Network, Some(E1), version)
    );
    assert!(status.ready && status.running && status.last_success.is_some() && status.last_error.is_none());
    assert!(status.next_attempt_in.is_some_and(|d| d <= Duration::from_millis(30)));
    assert_eq!(h.enabled("alpha"), Some(true));

    let requests = server.requests();
    assert_eq!(requests[0].path, "/api/flags");
    assert_eq!(
        requests[0].header("If-None-Match"),
        None,
        "no ETag on the first request"
    );
    assert!(requests[1..].iter().all(|r| r.header("If-None-Match") == Some(E1)));
    assert!(
        requests[0]
            .header("User-Agent")
            .is_some_and(|ua| ua.starts_with("ferroflag/"))
    );
    assert_eq!(requests[0].header("Accept"), Some("application/json"));
    let events = h.observer.events();
    assert!(
        matches!(&events[..], [SyncEvent::Applied { source: Source::Network, version: v, etag: Some(e), warnings }]
            if *v == version && e == E1 && warnings.is_empty()),
        "{events:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Every kind of failure keeps the last good snapshot, the ETag, and is reported once per streak.

/// Serves DOC1, then `bad` until released, then DOC2 (and 304 for it). Checks what every failure
/// must leave alone and how recovery looks; returns the server and harness for more checks.
fn failure_keeps_snapshot(config: SyncConfig, server_bad: Reply, min_failures: u64, error: &str) -> (Server, Harness) {
    let released = Arc::new(AtomicBool::new(false));
    let server = {
        let released = Arc::clone(&released);
        Server::start(move |index, request| {
            if index == 0 {
                ok(DOC1, E1)
            } else if !released.load(Ordering::SeqCst) {
                server_bad.clone()
            } else if request.header("If-None-Match") == Some(E2) {
                not_modified()
            } else {
                ok(DOC2, E2)
            }
        })
    };
    let h = Harness::start(retarget(config, &server.url()));
    assert!(h.client.wait_ready(Duration::from_secs(5)));
    let version = h.store.version();

    let status = h.wait_for("a failure streak", |s| s.consecutive_failures >= min_failures);
    assert_eq!(h.store.version(), version, "a failure must not publish");
    assert_eq!(h.enabled("alpha"), Some(true));
    assert_eq!(h.enabled("beta"), None);
    assert_eq!(status.etag.as_deref(), Some(E1), "a failure must keep the ETag");
    assert_eq!(status.successes, 1);
    assert!(status.is_stale());
    let last_error = status.last_error.clone().unwrap();
    assert!(last_error.contains(error), "{last_error:?} should mention {error:?}");
    assert!(status.last_error_at.is_some());
    assert_eq!(
        h.observer.count("failure_streak_started"),
        1,
        "{:?}",
        h.observer.events()
    );
    let requests = server.requests();
    assert!(requests[1..].iter().all(|r| r.header("If-None-Match") == Some(E1)));

    released.store(true, Ordering::SeqCst);
    let status = h.wait_for("recovery", |s| s.successes == 2);
    assert_eq!(h.store.version(), version + 1);
    assert_eq!((h.enabled("alpha"), h.enabled("beta")), (Some(false), Some(true)));
    assert_eq!((status.consecutive_failures, status.etag.as_deref()), (0, Some(E2)));
    assert!(status.failures >= min_failures);
    wait_for_event(&h.observer, "recovered");
    let events = h.observer.events();
    let recovered: Vec<_> = events
        .iter()
        .filter_map(|e| {
            if let SyncEvent::Recovered { after_failures } = e {
                Some(*after_failures)
            } else {
                None
            }
        })
        .collect();
    assert!(matches!(recovered[..], [n] if n >= min_failures), "{events:?}");
    assert_eq!(h.observer.count("failure_streak_started"), 1);
    h.wait_for("a 304 after recovery", |s| s.not_modified >= 1);
    assert_eq!(h.store.version(), version + 1);
    (server, h)
}

/// The same settings, pointed at another server.
fn retarget(config: SyncConfig, base_url: &str) -> SyncConfig {
    let mut target = SyncConfig::new(base_url, "/api/flags").unwrap();
    target.interval = config.interval;
    target.timeout = config.timeout;
    target.connect_timeout = config.connect_timeout;
    target.backoff_cap = config.backoff_cap;
    target.max_body_bytes = config.max_body_bytes;
    target.cache_path = config.cache_path;
    target
}

#[test]
fn server_error() {
    failure_keeps_snapshot(
        fast_config(&dead_url()),
        status("500 Internal Server Error", &[]),
        3,
        "HTTP 500",
    );
}

#[test]
fn invalid_json() {
    failure_keeps_snapshot(fast_config(&dead_url()), ok("{\"flags\": [", E2), 3, "not valid JSON");
}

#[test]
fn rejected_document() {
    failure_keeps_snapshot(
        fast_config(&dead_url()),
        ok(r#"[{"key": 1}]"#, E2),
        3,
        "rejected the response",
    );
}

#[test]
fn truncated_body() {
    let mut truncated =
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nETag: \"e2\"\r\nConnection: close\r\n\r\n".to_vec();
    truncated.extend_from_slice(&DOC2.as_bytes()[..20]);
    failure_keeps_snapshot(
        fast_config(&dead_url()),
        Reply::Raw(truncated),
        3,
        "connection closed before the whole response",
    );
}

#[test]
fn oversized_body() {
    let mut config = fast_config(&dead_url());
    config.max_body_bytes = 1024;
    let big = format!("[{}]", vec![r#"{"key": "k", "enabled": true}"#; 100].join(","));
    assert!(big.len() > 1024);
    failure_keeps_snapshot(config, ok(&big, E2), 3, "larger than the limit of 1024 bytes");
}

#[test]
fn response_slower_than_the_timeout() {
    let mut config = fast_config(&dead_url());
    config.timeout = Duration::from_millis(200);
    let slow = Reply::Delayed(
        Duration::from_millis(700),
        response("200 OK", &[("ETag", E2)], DOC2.as_bytes()),
    );
    failure_keeps_snapshot(config, slow, 2, "timed out");
}

#[test]
fn redirect_is_a_failure_and_is_not_followed() {
    let elsewhere = Server::start(|_, _| ok(DOC2, E2));
    let location = format!("{}/api/flags", elsewhere.url());
    let redirect = status("302 Found", &[("Location", &location)]);
    let (_server, h) = failure_keeps_snapshot(fast_config(&dead_url()), redirect, 3, "HTTP 302");
    assert_eq!(elsewhere.count(), 0, "nothing may reach the redirect target");
    assert!(h.status().last_error.unwrap().contains("not followed"));
}

#[test]
fn connection_refused() {
    let h = Harness::start(fast_config(&dead_url()));
    let status = h.wait_for("failures", |s| s.consecutive_failures >= 3);
    assert!(!h.client.wait_ready(Duration::from_millis(50)));
    assert!(!status.ready && status.source == Source::None && status.snapshot_version == 0);
    assert!(
        status.last_error.as_deref().unwrap().contains("connection refused"),
        "{status:?}"
    );
    assert_eq!(h.store.version(), 0);
    assert_eq!(h.observer.count("failure_streak_started"), 1);
    assert_eq!(h.observer.events().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Backoff, Retry-After, auth.

fn gaps(requests: &[Request]) -> Vec<Duration> {
    requests.windows(2).map(|w| w[1].at - w[0].at).collect()
}

#[test]
fn backoff_doubles_and_resets_after_a_success() {
    let server = Server::start(|index, _| {
        if index < 5 {
            status("500 Internal Server Error", &[])
        } else {
            ok(DOC1, E1)
        }
    });
    let mut config = fast_config(&server.url());
    config.interval = Duration::from_millis(40);
    config.backoff_cap = Duration::from_millis(400);
    let h = Harness::start(config);
    wait_until("eight requests", || (server.count() >= 8).then_some(()));
    let gaps = gaps(&server.requests());
    // Bases 40, 80, 160, 320 ms, each ±25 %; then the interval again.
    assert!(gaps[3] >= gaps[0] * 3, "{gaps:?}");
    assert!(
        gaps[3] >= Duration::from_millis(230) && gaps[3] <= Duration::from_millis(500),
        "{gaps:?}"
    );
    assert!(
        gaps[5] < Duration::from_millis(150) && gaps[6] < Duration::from_millis(150),
        "{gaps:?}"
    );
    assert!(h.client.wait_ready(Duration::ZERO));
}

#[test]
fn retry_after_seconds_is_honoured() {
    let server = Server::start(|index, _| {
        if index == 0 {
            status("429 Too Many Requests", &[("Retry-After", "1")])
        } else {
            ok(DOC1, E1)
        }
    });
    let mut config = fast_config(&server.url());
    config.backoff_cap = Duration::from_secs(5);
    let h = Harness::start(config);
    assert!(h.client.wait_ready(Duration::from_secs(5)));
    let gap = gaps(&server.requests())[0];
    assert!(
        gap >= Duration::from_millis(990) && gap < Duration::from_millis(1500),
        "{gap:?}"
    );
    assert!(h.status().last_error.unwrap().contains("Retry-After 1 s"));
}

#[test]
fn retry_after_date_is_honoured_and_clamped_to_the_cap() {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    let server = Server::start(move |index, _| {
        if index == 0 {
            status("503 Service Unavailable", &[("Retry-After", &date)])
        } else {
            ok(DOC1, E1)
        }
    });
    let mut config = fast_config(&server.url());
    config.backoff_cap = Duration::from_millis(400);
    let h = Harness::start(config);
    assert!(h.client.wait_ready(Duration::from_secs(5)));
    let gap = gaps(&server.requests())[0];
    assert!(
        gap >= Duration::from_millis(390) && gap < Duration::from_millis(900),
        "{gap:?}"
    );
}

#[test]
fn auth_failure_polls_at_the_cap_and_is_reported_once() {
    let server = Server::start(|_, _| status("401 Unauthorized", &[]));
    let mut config = fast_config(&server.url());
    config.interval = Duration::from_millis(10);
    config.backoff_cap = Duration::from_millis(250);
    config.add_header("Authorization", "Bearer wrong-token-777").unwrap();
    let h = Harness::start(config);
    std::thread::sleep(Duration::from_millis(900));
    let count = server.count();
    assert!((3..=5).contains(&count), "{count} requests in 0.9 s at a 250 ms cap");
    assert!(
        gaps(&server.requests())
            .iter()
            .all(|g| *g >= Duration::from_millis(240))
    );
    let events = h.observer.events();
    assert!(
        matches!(&events[..], [SyncEvent::AuthFailed { status: 401, .. }]),
        "{events:?}"
    );
    let status = h.status();
    assert!(status.running && status.last_error.as_deref().unwrap().contains("HTTP 401"));
    assert!(!format!("{status:?}{events:?}").contains("wrong-token-777"));
}

// ---------------------------------------------------------------------------------------------
// Secrets.

#[test]
fn credentials_are_sent_but_never_shown() {
    let server = Server::start(|_, _| status("500 Internal Server Error", &[]));
    let url = server.url().replace("http://", "http://user:hunter22@");
    let mut config = retarget(fast_config(&server.url()), &url);
    config.add_header("X-Api-Key", "sekrit-token-123").unwrap();
    let h = Harness::start(config);
    let status = h.wait_for("a failure", |s| s.failures >= 1);
    let request = &server.requests()[0];
    assert_eq!(request.header("X-Api-Key"), Some("sekrit-token-123"));
    assert!(request.header("Authorization").is_some_and(|v| v.starts_with("Basic ")));
    let shown = format!(
        "{status:?} {:?} {:?} {:?}",
        h.observer.events(),
        h.client,
        h.client.config()
    );
    for secret in ["sekrit-token-123", "hunter22"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
    assert!(status.url.starts_with("http://<redacted>@127.0.0.1:"), "{}", status.url);
    assert!(shown.contains("X-Api-Key: <redacted>"));
}

// ---------------------------------------------------------------------------------------------
// Stop.

#[test]
fn stop_returns_quickly_during_a_hung_request() {
    let server = Server::start(|_, _| Reply::Hang);
    let mut config = fast_config(&server.url());
    config.timeout = Duration::from_secs(30);
    let h = Harness::start(config);
    wait_until("the request", || (server.count() == 1).then_some(()));
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    assert!(h.client.stop());
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    let status = h.status();
    assert!(!status.running && status.next_attempt_in.is_none());
    assert_eq!(
        status.failures, 0,
        "an interrupted request is no failure of the service"
    );
    assert!(h.observer.events().is_empty());
}

#[test]
fn stop_returns_quickly_during_a_long_interval_and_is_final() {
    let server = Server::start(|_, _| ok(DOC1, E1));
    let mut config = fast_config(&server.url());
    config.interval = Duration::from_secs(3600);
    let h = Harness::start(config);
    assert!(h.client.wait_ready(Duration::from_secs(5)));
    // The thread marks the client ready as it publishes, and schedules the next poll just after.
    wait_until("the next poll to be scheduled", || {
        h.status()
            .next_attempt_in
            .is_some_and(|d| d > Duration::from_secs(3000))
            .then_some(())
    });
    let started = Instant::now();
    assert!(h.client.stop());
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert!(h.client.stop(), "stop is idempotent");
    assert!(matches!(h.client.start(), Err(SyncError::Stopped)));
    assert_eq!(server.count(), 1);
    assert_eq!(h.enabled("alpha"), Some(true), "stopping keeps the flags");
}

#[test]
fn stop_before_start_and_drop_without_stop() {
    let store = Arc::new(SnapshotStore::new());
    let client = SyncClient::new(
        Arc::clone(&store),
        fast_config(&dead_url()),
        Arc::new(CollectingObserver::new()),
    )
    .unwrap();
    assert!(client.stop());
    assert!(
        !client.wait_ready(Duration::from_secs(5)),
        "a stopped client is never ready, and says so at once"
    );
    let running = SyncClient::new(store, fast_config(&dead_url()), Arc::new(CollectingObserver::new())).unwrap();
    running.start().unwrap();
    running.start().unwrap();
    drop(running);
}

// ---------------------------------------------------------------------------------------------
// Cache file.

#[test]
fn cache_is_written_after_success_and_survives_a_bad_200() {
    let dir = temp_dir("cache-write");
    let cache = dir.join("flags-cache.json");
    let server = Server::start(|index, _| if index == 0 { ok(DOC1, E1) } else { ok("{not json", E2) });
    let mut config = fast_config(&server.url());
    config.cache_path = Some(cache.clone());
    let h = Harness::start(config);
    let written = wait_until("the cache file", || std::fs::read(&cache).ok());
    let text = String::from_utf8(written.clone()).unwrap();
    assert!(text.contains(r#""etag":"\"e1\"""#) && text.contains("alpha"), "{text}");
    h.wait_for("bad 200s", |s| s.consecutive_failures >= 3);
    assert_eq!(
        std::fs::read(&cache).unwrap(),
        written,
        "a bad 200 must not touch the cache"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temp files left");
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A cache file as a client writes it, via a first client against a good server; also the URL it
/// was written for (where nothing listens any more once this returns).
fn make_cache(dir: &Path) -> (PathBuf, String) {
    let server = Server::start(|_, _| ok(DOC1, E1));
    let cache = make_cache_from(dir, &server.url());
    (cache, server.url())
}

/// A cache file written by a client polling `base_url`, which must answer with a document.
fn make_cache_from(dir: &Path, base_url: &str) -> PathBuf {
    let cache = dir.join("cache.json");
    let mut config = fast_config(base_url);
    config.cache_path = Some(cache.clone());
    let h = Harness::start(config);
    wait_until("the cache file", || {
        assert_eq!(h.observer.count("cache_write_failed"), 0, "{:?}", h.observer.events());
        cache.exists().then_some(())
    });
    drop(h);
    cache
}

#[test]
fn cache_is_served_when_the_service_is_down_at_start() {
    let dir = temp_dir("cache-load");
    let (cache, url) = make_cache(&dir);
    let mut config = fast_config(&url);
    config.cache_path = Some(cache);
    let h = Harness::start(config);
    assert!(h.client.wait_ready(Duration::from_secs(5)));
    assert_eq!(h.enabled("alpha"), Some(true));
    let status = h.wait_for("more failures", |s| s.consecutive_failures >= 2);
    assert_eq!(
        (status.source, status.etag.as_deref(), status.snapshot_version),
        (Source::Cache, Some(E1), 1)
    );
    assert!(status.ready && status.is_stale() && status.successes == 0);
    let kinds: Vec<_> = h.observer.events().iter().map(SyncEvent::kind).collect();
    assert_eq!(kinds, ["cache_loaded", "applied", "failure_streak_started"]);
    assert_eq!(h.store.version(), 1, "the cache is loaded once");
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn cached_etag_is_sent_and_a_304_confirms_the_cache() {
    let dir = temp_dir("cache-etag");
    let serving = Arc::new(AtomicBool::new(true));
    let after = Arc::new(AtomicU64::new(0));
    let server = {
        let (serving, after) = (Arc::clone(&serving), Arc::clone(&after));
        Server::start(move |_, request| {
            if serving.load(Ordering::SeqCst) {
                return ok(DOC1, E1);
            }
            match (after.fetch_add(1, Ordering::SeqCst), request.header("If-None-Match")) {
                (0, _) => status("503 Service Unavailable", &[]),
                (_, Some(E1)) => not_modified(),
                _ => status("500 Internal Server Error", &[]),
            }
        })
    };
    let cache = make_cache_from(&dir, &server.url());
    serving.store(false, Ordering::SeqCst);
    let first = server.count();
    let mut config = fast_config(&server.url());
    config.cache_path = Some(cache);
    let h = Harness::start(config);
    let status = h.wait_for("a 304", |s| s.not_modified >= 1);
    assert_eq!(
        (status.source, status.consecutive_failures, h.store.version()),
        (Source::Network, 0, 1)
    );
    let requests = server.requests();
    assert_eq!(requests[first].header("If-None-Match"), Some(E1));
    assert_eq!(requests[first + 1].header("If-None-Match"), Some(E1));
    wait_for_event(&h.observer, "recovered");
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn corrupt_cache_is_ignored_with_an_event() {
    let dir = temp_dir("cache-corrupt");
    let cache = dir.join("cache.json");
    std::fs::write(&cache, b"{\"flags\": [tru").unwrap();
    let mut config = fast_config(&dead_url());
    config.cache_path = Some(cache.clone());
    let h = Harness::start(config);
    wait_until("the cache event", || {
        (h.observer.count("cache_ignored") == 1).then_some(())
    });
    assert!(!h.client.wait_ready(Duration::from_millis(100)));
    let status = h.status();
    assert_eq!(
        (status.ready, status.source, h.store.version()),
        (false, Source::None, 0)
    );
    assert_eq!(
        std::fs::read(&cache).unwrap(),
        b"{\"flags\": [tru",
        "an ignored cache is left as it is"
    );
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn cache_is_not_loaded_over_flags_already_in_the_store() {
    let dir = temp_dir("cache-skip");
    let (cache, url) = make_cache(&dir);
    let store = Arc::new(SnapshotStore::new());
    store.publish_json(DOC2.as_bytes()).unwrap();
    let mut config = fast_config(&url);
    config.cache_path = Some(cache);
    let observer = Arc::new(CollectingObserver::new());
    let client = SyncClient::new(Arc::clone(&store), config, observer.clone()).unwrap();
    client.start().unwrap();
    wait_until("a failure", || (client.status().failures >= 2).then_some(()));
    assert_eq!((store.version(), observer.count("cache_loaded")), (1, 0));
    client.stop();
    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Fork support (the real fork is exercised from Python; here, the rebuild itself).

#[test]
fn fork_child_is_a_fresh_client_with_the_inherited_etag() {
    let server = Server::start(|_, request| {
        if request.header("If-None-Match") == Some(E1) {
            not_modified()
        } else {
            ok(DOC1, E1)
        }
    });
    let parent = Harness::start(fast_config(&server.url()));
    assert!(parent.client.wait_ready(Duration::from_secs(5)));
    let child = parent.client.fork_child();
    assert!(!child.is_inherited());
    let status = child.status();
    assert!(status.ready && !status.running && status.successes == 0);
    assert_eq!(status.etag.as_deref(), Some(E1));
    assert!(child.wait_ready(Duration::ZERO));
    assert!(parent.client.stop());
    child.start().unwrap();
    wait_until("the child's 304", || (child.status().not_modified >= 1).then_some(()));
    assert!(child.status().running);
    assert_eq!(parent.store.version(), 1);
    assert!(child.stop());
}

// ---------------------------------------------------------------------------------------------
// File source.

fn write_atomically(path: &Path, contents: &str) {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, contents).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

fn file_source(path: &Path) -> (Arc<SnapshotStore>, Arc<CollectingObserver>, FileSource) {
    let store = Arc::new(SnapshotStore::new());
    let observer = Arc::new(CollectingObserver::new());
    let mut config = FileSourceConfig::new(path);
    config.interval = Duration::from_millis(20);
    let source = FileSource::new(Arc::clone(&store), config, observer.clone()).unwrap();
    source.start().unwrap();
    (store, observer, source)
}

fn is_enabled(store: &SnapshotStore, key: &str) -> Option<bool> {
    store.load().is_enabled(key, &EvalContext::new("user-1"))
}

#[test]
fn file_source_loads_and_reloads_on_change() {
    let dir = temp_dir("file-reload");
    let path = dir.join("flags.json");
    std::fs::write(&path, DOC1).unwrap();
    let (store, observer, source) = file_source(&path);
    assert!(source.wait_ready(Duration::from_secs(5)));
    let status = source.status();
    assert_eq!(
        (status.source, status.snapshot_version, is_enabled(&store, "alpha")),
        (Source::File, 1, Some(true))
    );
    assert!(status.etag.as_deref().is_some_and(|e| e.starts_with("sha256:")) && status.url.ends_with("flags.json"));

    write_atomically(&path, DOC2);
    wait_until("the reload", || (store.version() == 2).then_some(()));
    assert_eq!(
        (is_enabled(&store, "alpha"), is_enabled(&store, "beta")),
        (Some(false), Some(true))
    );

    // The same content again (a new inode): nothing to publish.
    write_atomically(&path, DOC2);
    wait_until("the unchanged check", || {
        (source.status().not_modified >= 1).then_some(())
    });
    assert_eq!(store.version(), 2);
    assert_eq!(observer.count("applied"), 2);
    assert!(source.stop());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn file_source_notices_a_same_size_edit_in_place() {
    let dir = temp_dir("file-inplace");
    let path = dir.join("flags.json");
    let on = r#"[{"key": "alpha", "enabled": true }]"#;
    let off = r#"[{"key": "alpha", "enabled": false}]"#;
    assert_eq!(on.len(), off.len());
    std::fs::write(&path, on).unwrap();
    let (store, _observer, source) = file_source(&path);
    assert!(source.wait_ready(Duration::from_secs(5)));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .write_all(off.as_bytes())
        .unwrap();
    wait_until("the in-place edit", || {
        (is_enabled(&store, "alpha") == Some(false)).then_some(())
    });
    assert!(source.stop());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn file_source_keeps_flags_on_a_broken_edit() {
    let dir = temp_dir("file-broken");
    let path = dir.join("flags.json");
    std::fs::write(&path, DOC1).unwrap();
    let (store, observer, source) = file_source(&path);
    assert!(source.wait_ready(Duration::from_secs(5)));

    write_atomically(&path, r#"[{"key": 1}]"#);
    let status = wait_until("the failure", || Some(source.status()).filter(|s| s.failures == 1));
    assert!(status.last_error.as_deref().unwrap().contains("rejected"), "{status:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(source.status().failures, 1, "an unchanged broken file is reported once");
    assert_eq!((store.version(), is_enabled(&store, "alpha")), (1, Some(true)));
    assert_eq!(observer.count("failure_streak_started"), 1);

    write_atomically(&path, DOC2);
    wait_until("the fix", || (store.version() == 2).then_some(()));
    wait_for_event(&observer, "recovered");
    assert_eq!(source.status().consecutive_failures, 0);
    assert!(source.stop());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn file_source_waits_for_a_missing_file() {
    let dir = temp_dir("file-missing");
    let path = dir.join("flags.json");
    let (store, observer, source) = file_source(&path);
    assert!(!source.wait_ready(Duration::from_millis(100)));
    let status = source.status();
    assert_eq!((status.failures, status.ready), (1, false));
    assert!(status.last_error.as_deref().unwrap().contains("cannot read flag file"));
    write_atomically(&path, DOC1);
    assert!(source.wait_ready(Duration::from_secs(5)));
    wait_for_event(&observer, "recovered");
    assert_eq!(store.version(), 1);
    let started = Instant::now();
    assert!(source.stop());
    assert!(started.elapsed() < Duration::from_millis(500));
    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// TLS: verified by default, and against `ca_bundle` when given. A test CA and a leaf for
// 127.0.0.1 signed by it, both valid 2020-2120, made with `openssl ca` (EC P-256).

const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBbTCCARKgAwIBAgICEAAwCgYIKoZIzj0EAwIwHDEaMBgGA1UEAwwRZmVycm9m
bGFnIHRlc3QgQ0EwIBcNMjAwMTAxMDAwMDAwWhgPMjEyMDAxMDEwMDAwMDBaMBwx
GjAYBgNVBAMMEWZlcnJvZmxhZyB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEXacH5/GAIy187VX4Lzouw6IeoI4Ak24dRwF0zuXgz/IEm2fFjnoLig8d
62nzmV7yYr1EzTetJV2uZT3GxW4s8aNCMEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNV
HQ8BAf8EBAMCAQYwHQYDVR0OBBYEFLVY19vRPAp8CG6wRzZHlhEIQlw8MAoGCCqG
SM49BAMCA0kAMEYCIQD/Ccvg58DgL/cMAHgjPePrLvFqQ+PQINUOG2OksK4b5QIh
AOQ4TP5Uxzn6N7rJGSI8BOqkF+Jfdfp1E3ssRAR3h0t9
-----END CERTIFICATE-----
";

const TEST_LEAF_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBtDCCAVugAwIBAgICEAEwCgYIKoZIzj0EAwIwHDEaMBgGA1UEAwwRZmVycm9m
bGFnIHRlc3QgQ0EwIBcNMjAwMTAxMDAwMDAwWhgPMjEyMDAxMDEwMDAwMDBaMBQx
EjAQBgNVBAMMCWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABMJH
386F/7TpfZYBf0czf7bPOiDqbqro7Y/XoutcScUjwAHKQLAYSlVV1V4F5mSNsmLm
Yl/lqZA0afQX8Akz3smjgZIwgY8wDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMC
B4AwEwYDVR0lBAwwCgYIKwYBBQUHAwEwGgYDVR0RBBMwEYcEfwAAAYIJbG9jYWxo
b3N0MB8GA1UdIwQYMBaAFLVY19vRPAp8CG6wRzZHlhEIQlw8MB0GA1UdDgQWBBTf
G0F/RGoPK5Nyha02MRasl9VjJTAKBggqhkjOPQQDAgNHADBEAiBPR7kkeA3b3uGH
uKQP3blI3OpMqRTtRZipW/Pe6kloVQIgMlyxjumf2u+I9BOoh9pbUC7RMqKDdfCB
qB4TjZQlJWg=
-----END CERTIFICATE-----
";

/// A throwaway key for the test leaf above; it protects nothing.
const TEST_LEAF_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgd3OBwZt5JrXMOX1W
lO2sfAqMX2EmJXExQsezZ8uOWN+hRANCAATCR9/Ohf+06X2WAX9HM3+2zzog6m6q
6O2P16LrXEnFI8ABykCwGEpVVdVeBeZkjbJi5mJf5amQNGn0F/AJM97J
-----END PRIVATE KEY-----
";

fn tls_server() -> Server {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(TEST_LEAF_PEM.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(TEST_LEAF_KEY.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Server::start_with(Some(Arc::new(config)), |_, _| ok(DOC1, E1))
}

#[test]
fn tls_with_an_unknown_issuer_fails_by_default() {
    let server = tls_server();
    let config = fast_config(&format!("https://{}", server.addr));
    let h = Harness::start(config);
    let status = h.wait_for("the TLS failure", |s| s.failures >= 2);
    let error = status.last_error.unwrap();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert_eq!(
        server.count(),
        0,
        "no request may be sent over an unverified connection"
    );
    assert_eq!(h.store.version(), 0);
}

#[test]
fn tls_succeeds_with_the_ca_bundle() {
    let dir = temp_dir("tls");
    let bundle = dir.join("ca.pem");
    std::fs::write(&bundle, TEST_CA_PEM).unwrap();
    let server = tls_server();
    let mut config = fast_config(&format!("https://{}", server.addr));
    config.ca_bundle = Some(bundle);
    let h = Harness::start(config);
    assert!(h.client.wait_ready(Duration::from_secs(5)), "{:?}", h.status());
    assert_eq!(h.enabled("alpha"), Some(true));
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The Python binding keeps these in frozen pyclasses, which must be `Send + Sync`.
#[test]
fn clients_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SyncClient>();
    assert_send_sync::<FileSource>();
    assert_send_sync::<SyncStatus>();
    assert_send_sync::<SyncEvent>();
}

// ---------------------------------------------------------------------------------------------
// Issue 17: start-up, truthful status, bounded texts.

/// A server that answers `reply` once `release` is set, and hangs until then (at most 10 s).
fn gated(release: &Arc<AtomicBool>, reply: Reply) -> impl Fn(usize, &Request) -> Reply + Send + Sync + 'static {
    let release = Arc::clone(release);
    move |_, _| {
        let started = Instant::now();
        while !release.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        reply.clone()
    }
}

fn ok_without_etag(body: &str) -> Reply {
    Reply::Raw(response(
        "200 OK",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    ))
}

/// #1: a valid cache is served before the first request has any answer, then replaced by it.
#[test]
fn a_valid_cache_is_served_at_once_then_replaced_by_the_network() {
    let dir = temp_dir("cache-first");
    let release = Arc::new(AtomicBool::new(false));
    let serving = Arc::new(AtomicBool::new(true));
    let server = {
        let (serving, gate) = (Arc::clone(&serving), gated(&release, ok(DOC2, E2)));
        Server::start(move |index, request| {
            if serving.load(Ordering::SeqCst) {
                ok(DOC1, E1)
            } else {
                gate(index, request)
            }
        })
    };
    let cache = make_cache_from(&dir, &server.url());
    serving.store(false, Ordering::SeqCst);
    let mut config = fast_config(&server.url());
    config.timeout = Duration::from_secs(20);
    config.cache_path = Some(cache);
    let h = Harness::start(config);
    assert!(
        h.client.wait_ready(Duration::from_secs(5)),
        "the cache is served without waiting"
    );
    let status = h.status();
    assert_eq!(
        (
            status.source,
            status.failures,
            status.successes,
            h.enabled("alpha"),
            h.enabled("beta")
        ),
        (Source::Cache, 0, 0, Some(true), None),
        "served while the first request is still unanswered"
    );
    release.store(true, Ordering::SeqCst);
    let status = h.wait_for("the network's answer", |s| s.source == Source::Network);
    assert_eq!(
        (status.etag.as_deref(), h.enabled("alpha"), h.enabled("beta")),
        (Some(E2), Some(false), Some(true))
    );
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

/// #2: a 304 to a request that sent no `If-None-Match` confirms nothing.
#[test]
fn a_304_without_if_none_match_is_a_failure() {
    let server = Server::start(|_, _| not_modified());
    let h = Harness::start(fast_config(&server.url()));
    let status = h.wait_for("failures", |s| s.failures >= 2);
    assert!(
        !status.ready && status.not_modified == 0 && status.successes == 0,
        "{status:?}"
    );
    assert!(status.last_error.as_deref().unwrap().contains("304"), "{status:?}");
    assert!(server.requests().iter().all(|r| r.header("If-None-Match").is_none()));
}

/// #3: `ETag: *` (or any non-ETag) is never echoed back.
#[test]
fn an_etag_star_is_never_sent_back() {
    let server = Server::start(|_, request| match request.header("If-None-Match") {
        Some(_) => not_modified(),
        None => ok(DOC1, "*"),
    });
    let h = Harness::start(fast_config(&server.url()));
    let status = h.wait_for("polls", |s| s.successes + s.not_modified >= 4);
    assert_eq!(status.etag, None);
    assert!(server.requests().iter().all(|r| r.header("If-None-Match").is_none()));
    assert_eq!(h.store.version(), 1);
}

/// #3: a cached `ETag` with CR/LF, or one of 200 KB, is dropped rather than sent.
#[test]
fn a_broken_cached_etag_is_dropped() {
    for etag in ["\"a\r\nX-Evil: 1\"".to_owned(), format!("\"{}\"", "e".repeat(200_000))] {
        let dir = temp_dir("cache-bad-etag");
        let cache = dir.join("cache.json");
        let meta = serde_json::json!({"format": 1, "etag": etag});
        let text = format!(r#"{{"x-ferroflag-cache": {meta}, "flags": [{{"key": "alpha", "enabled": true}}]}}"#);
        std::fs::write(&cache, text).unwrap();
        let server = Server::start(|_, request| match request.header("If-None-Match") {
            None => ok(DOC2, E2),
            Some(E2) => not_modified(),
            Some(_) => status("500 Internal Server Error", &[]),
        });
        let mut config = fast_config(&server.url());
        config.cache_path = Some(cache);
        let h = Harness::start(config);
        let status = h.wait_for("the network", |s| s.source == Source::Network && s.not_modified >= 1);
        assert_eq!((status.failures, h.enabled("beta")), (0, Some(true)), "{status:?}");
        assert_eq!(server.requests()[0].header("If-None-Match"), None);
        drop(h);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// A document that takes a while to compile: many flags with many rules.
fn heavy_document(flags: usize) -> String {
    let mut out = String::from("{\"format\": 2, \"flags\": [");
    for i in 0..flags {
        if i > 0 {
            out.push(',');
        }
        let _ = std::fmt::Write::write_fmt(
            &mut out,
            format_args!(
                r#"{{"key": "f{i}", "enabled": true, "percentage": 50, "rules": [{{"conditions": [{{"attribute": "email", "operator": "matches", "values": ["^u{i}[a-z]+@(x|y|z)\\.example$"]}}], "percentage": 100}}]}}"#
            ),
        );
    }
    out.push_str("]}");
    out
}

/// #4: once `stop()` has returned, the thread publishes nothing, even mid-compile.
#[test]
fn a_stopped_client_never_publishes() {
    let body = heavy_document(10_000);
    let dir = temp_dir("stop-compile");
    let cache = dir.join("cache.json");
    let answered = Arc::new(AtomicBool::new(false));
    let server = {
        let answered = Arc::clone(&answered);
        Server::start(move |_, _| {
            let reply = ok(&body, E1);
            answered.store(true, Ordering::SeqCst);
            reply
        })
    };
    let mut config = fast_config(&server.url());
    config.cache_path = Some(cache.clone());
    let h = Harness::start(config);
    wait_until("the answer", || answered.load(Ordering::SeqCst).then_some(()));
    // Long enough for the body to arrive over loopback, far shorter than its compile.
    std::thread::sleep(Duration::from_millis(50));
    h.client.stop();
    let published_before_stop = h.store.version() > 0;
    h.store.publish_json(DOC2.as_bytes()).unwrap();
    let mine = h.store.load_full();
    // The compile may take seconds on a busy machine: a longer bound than `wait_until`'s.
    let deadline = Instant::now() + Duration::from_secs(60);
    while h.status().running {
        assert!(Instant::now() < deadline, "the thread never left");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        Arc::ptr_eq(&mine, &h.store.load_full()),
        "the app's own flags were replaced"
    );
    // On a machine fast enough to compile before the stop, the document was applied, and may be
    // saved, before it.
    assert!(
        published_before_stop || !cache.exists(),
        "a stopped client wrote the cache"
    );
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

/// #5: the same body again (no `ETag`, or a different `ETag` per backend) is not a new document.
#[test]
fn an_unchanged_body_is_not_modified() {
    let dir = temp_dir("unchanged");
    let cache = dir.join("cache.json");
    let server = Server::start(|index, _| match index % 3 {
        0 => ok_without_etag(DOC1),
        1 => ok(DOC1, "\"backend-a\""),
        _ => ok(DOC1, "\"backend-b\""),
    });
    let mut config = fast_config(&server.url());
    config.cache_path = Some(cache.clone());
    let h = Harness::start(config);
    assert!(h.client.wait_ready(Duration::from_secs(5)));
    let written = wait_until("the cache", || cache.exists().then(|| inode(&cache)));
    let status = h.wait_for("unchanged polls", |s| s.not_modified >= 4);
    assert_eq!(
        (status.successes, status.snapshot_version, h.store.version()),
        (1, 1, 1)
    );
    assert_eq!(h.observer.count("applied"), 1);
    assert_eq!(inode(&cache), written, "the cache was rewritten");
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

/// #6: a huge value in a rejected document gives a bounded error, in the status and the event;
/// a huge pattern in an applied one (and many warnings) give a bounded `applied` event.
#[test]
fn huge_values_give_bounded_errors_and_events() {
    let key = "k".repeat(4 << 20);
    let body = format!(r#"[{{"key": "{key}", "enabled": "yes"}}]"#);
    let server = Server::start(move |_, _| ok(&body, E1));
    let h = Harness::start(fast_config(&server.url()));
    let status = h.wait_for("the rejection", |s| s.failures >= 1);
    let error = status.last_error.unwrap();
    assert!(
        error.len() < 1024 && error.contains("rejected"),
        "{} bytes",
        error.len()
    );
    wait_until("the event", || {
        (h.observer.count("failure_streak_started") == 1).then_some(())
    });
    drop(h);

    let pattern = "(".repeat(1 << 20);
    let mut flags: Vec<String> = (0..50)
        .map(|i| format!(r#"{{"key": "f{i}", "enabled": true, "x{i}": 1}}"#))
        .collect();
    flags.push(format!(
        r#"{{"key": "re", "enabled": true, "rules": [{{"conditions": [{{"attribute": "email", "operator": "matches", "values": ["{pattern}"]}}]}}]}}"#
    ));
    let body = format!("[{}]", flags.join(","));
    let server = Server::start(move |_, _| ok(&body, E1));
    let h = Harness::start(fast_config(&server.url()));
    assert!(h.client.wait_ready(Duration::from_secs(5)));
    wait_until("the event", || (h.observer.count("applied") == 1).then_some(()));
    for event in h.observer.events() {
        let text = event.to_string();
        assert!(text.len() < 4096, "{} bytes: {}", text.len(), &text[..300]);
    }
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success());
}

/// #7: a FIFO at the watched path is refused, not waited on for ever.
#[test]
fn a_fifo_as_the_flag_file_is_refused() {
    let dir = temp_dir("fifo-file");
    let path = dir.join("flags.json");
    mkfifo(&path);
    let (store, _observer, source) = file_source(&path);
    let status = wait_until("the refusal", || Some(source.status()).filter(|s| s.failures >= 1));
    assert!(
        status.last_error.as_deref().unwrap().contains("not a regular file"),
        "{status:?}"
    );
    assert!(!status.ready && store.version() == 0);
    assert!(source.stop());
    std::fs::remove_dir_all(dir).unwrap();
}

/// #7: a FIFO at the cache path is ignored with a warning, and the service is polled.
#[test]
fn a_fifo_as_the_cache_is_ignored() {
    let dir = temp_dir("fifo-cache");
    let cache = dir.join("cache.json");
    mkfifo(&cache);
    let server = Server::start(|_, _| ok(DOC1, E1));
    let mut config = fast_config(&server.url());
    config.cache_path = Some(cache);
    let h = Harness::start(config);
    assert!(h.client.wait_ready(Duration::from_secs(5)));
    assert_eq!(h.status().source, Source::Network);
    wait_for_event(&h.observer, "cache_ignored");
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

/// #8: a rewrite in place that keeps size, modification time and inode (`cp -p`) is noticed.
#[test]
fn file_source_notices_a_rewrite_keeping_size_mtime_and_inode() {
    let dir = temp_dir("file-cp-p");
    let path = dir.join("flags.json");
    let on = r#"[{"key": "alpha", "enabled": true }]"#;
    let off = r#"[{"key": "alpha", "enabled": false}]"#;
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::write(&path, on).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let (store, _observer, source) = file_source(&path);
    assert!(source.wait_ready(Duration::from_secs(5)));
    let checks = source.status().not_modified;
    std::thread::sleep(Duration::from_millis(50));
    let before = (inode(&path), std::fs::metadata(&path).unwrap().modified().unwrap());
    let mut file = std::fs::File::options().write(true).open(&path).unwrap();
    file.write_all(off.as_bytes()).unwrap();
    file.set_modified(old).unwrap();
    drop(file);
    assert_eq!(
        before,
        (inode(&path), std::fs::metadata(&path).unwrap().modified().unwrap())
    );
    wait_until("the rewrite", || {
        (is_enabled(&store, "alpha") == Some(false)).then_some(())
    });
    assert_eq!(source.status().not_modified, checks);
    assert!(source.stop());
    std::fs::remove_dir_all(dir).unwrap();
}

/// #9: temp files of killed writers are removed at the next start; a live one is kept.
#[test]
fn temp_files_of_killed_writers_are_cleaned_at_start() {
    let dir = temp_dir("cache-temp");
    let (cache, url) = make_cache(&dir);
    let dead = dir.join(".cache.json.4294967.1.tmp");
    let old = dir.join(format!(".cache.json.{}.77.tmp", std::process::id()));
    let fresh = dir.join(format!(".cache.json.{}.78.tmp", std::process::id()));
    let other = dir.join(".other.json.4294967.1.tmp");
    for path in [&dead, &old, &fresh, &other] {
        std::fs::write(path, "{").unwrap();
    }
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let mut config = fast_config(&url);
    config.cache_path = Some(cache);
    let h = Harness::start(config);
    assert!(h.client.wait_ready(Duration::from_secs(5)));
    assert!(!dead.exists() && !old.exists(), "stale temp files left");
    assert!(fresh.exists() && other.exists(), "another writer's temp file removed");
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

/// #9: a cache written for another URL is not served.
#[test]
fn a_cache_from_another_url_is_ignored() {
    let dir = temp_dir("cache-url");
    let (cache, _) = make_cache(&dir);
    let text = std::fs::read_to_string(&cache).unwrap();
    assert!(text.contains(r#""source":""#), "{text}");
    let mut config = fast_config(&dead_url());
    config.cache_path = Some(cache);
    let h = Harness::start(config);
    wait_for_event(&h.observer, "cache_ignored");
    let event = h
        .observer
        .events()
        .iter()
        .find(|e| e.kind() == "cache_ignored")
        .unwrap()
        .to_string();
    assert!(event.contains("another URL"), "{event}");
    assert!(!h.client.wait_ready(Duration::from_millis(100)));
    assert_eq!(h.store.version(), 0);
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

/// #9: a document that fits `max_body_bytes` is served from the cache with the same limit, even
/// when its numbers would grow if re-serialized (`1E5` is `100000.0` to serde).
#[test]
fn a_document_within_max_body_bytes_fits_in_its_cache() {
    let dir = temp_dir("cache-size");
    let cache = dir.join("cache.json");
    let mut body = String::from(r#"{"x-pad": ["#);
    while body.len() < 60_000 {
        body.push_str("1E5,");
    }
    body.push_str(r#"1E5], "flags": [{"key": "alpha", "enabled": true}]}"#);
    let limit = body.len() as u64;
    let server = Server::start(move |_, _| ok(&body, E1));
    let mut config = fast_config(&server.url());
    config.max_body_bytes = limit;
    config.cache_path = Some(cache.clone());
    let h = Harness::start(config.clone());
    wait_until("the cache", || {
        cache.exists().then_some(()).or_else(|| {
            assert!(h.status().failures == 0, "{:?}", h.status());
            None
        })
    });
    drop(h);
    drop(server);
    let h = Harness::start(config);
    assert!(h.client.wait_ready(Duration::from_secs(5)), "{:?}", h.observer.events());
    assert_eq!(h.status().source, Source::Cache);
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

/// #11: until the first success, retries come at a short cap, not the full one.
#[test]
fn until_the_first_success_the_retry_cap_is_short() {
    let server = Server::start(|_, _| status("500 Internal Server Error", &[]));
    let mut config = fast_config(&server.url());
    config.interval = Duration::from_millis(10);
    config.backoff_cap = Duration::from_secs(60);
    config.cold_start_cap = Duration::from_millis(100);
    let h = Harness::start(config);
    wait_until("ten attempts", || (server.count() >= 10).then_some(()));
    let gaps = gaps(&server.requests());
    assert!(gaps.iter().all(|gap| *gap < Duration::from_millis(700)), "{gaps:?}");
    assert!(h.status().next_attempt_in.unwrap() <= Duration::from_millis(125));
}

/// #12: the document id is the content hash: the same in every client, whatever the version.
#[test]
fn the_document_id_is_the_same_in_every_client() {
    let dir = temp_dir("document-id");
    let server = Server::start(|_, _| ok(DOC1, E1));
    let cache = make_cache_from(&dir, &server.url());
    let a = Harness::start(fast_config(&server.url()));
    let other = Arc::new(SnapshotStore::new());
    other.publish_json(DOC2.as_bytes()).unwrap();
    other.publish_json(DOC2.as_bytes()).unwrap();
    let b = SyncClient::new(
        Arc::clone(&other),
        fast_config(&server.url()),
        Arc::new(CollectingObserver::new()),
    )
    .unwrap();
    b.start().unwrap();
    let from_a = a.wait_for("a", |s| s.ready);
    let from_b = wait_until("b", || Some(b.status()).filter(|s| s.ready));
    assert_ne!(from_a.snapshot_version, from_b.snapshot_version);
    let id = from_a.document_id.clone().unwrap();
    assert_eq!(from_b.document_id.as_deref(), Some(id.as_str()));
    assert_eq!(id.len(), 16, "{id}");
    b.stop();
    let url = server.url();
    drop(server);
    let mut config = fast_config(&url);
    config.cache_path = Some(cache);
    drop(a);
    let c = Harness::start(config);
    let from_cache = c.wait_for("the cache", |s| s.ready);
    assert_eq!(
        (from_cache.source, from_cache.document_id.as_deref()),
        (Source::Cache, Some(id.as_str()))
    );
    drop(c);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A listener whose accept queue is full, so that a connect to it hangs until its timeout.
fn full_listener() -> (TcpListener, Vec<std::net::TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    while fillers.len() < 4096 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(stream) => fillers.push(stream),
            Err(_) => break,
        }
    }
    (listener, fillers)
}

/// #13: a connect timeout names `connect_timeout` and its value.
#[test]
fn a_connect_timeout_names_connect_timeout() {
    let (listener, _fillers) = full_listener();
    let mut config = fast_config(&format!("http://{}", listener.local_addr().unwrap()));
    config.connect_timeout = Duration::from_millis(300);
    config.timeout = Duration::from_secs(5);
    let h = Harness::start(config);
    let status = h.wait_for("the timeout", |s| s.failures >= 1);
    let error = status.last_error.unwrap();
    assert!(
        error.contains("connect_timeout 300ms") && !error.contains("timeout 5s"),
        "{error}"
    );
}
