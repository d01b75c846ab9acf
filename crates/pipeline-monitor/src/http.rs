//! A minimal HTTP/1.1 server for `GET /metrics` during a run.
//!
//! Written on `std::net` rather than taken from a crate: it answers one path with a string
//! the sampler already rendered, one connection at a time, to a scraper every few seconds.
//! The small HTTP crates (tiny_http, or hyper with a runtime) would add more code to build
//! than this file holds, and the server needs none of keep-alive, chunking or TLS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use pipeline_core::{Error, Result};

/// How often the accept loop checks for the stop flag: the longest `finish` waits for the
/// server to go away.
const ACCEPT_POLL: Duration = Duration::from_millis(50);

/// A slow or silent client is dropped after this long.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest request head read (a scraper's GET is a few hundred bytes).
const MAX_REQUEST: usize = 8192;

/// The metrics server: serves the text in `body` until dropped.
pub(crate) struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port) and serves `body` from a thread.
    pub fn start(addr: SocketAddr, body: Arc<Mutex<String>>) -> Result<Self> {
        let io = |e| Error::Usage(format!("cannot serve metrics on {addr}: {e}"));
        let listener = TcpListener::bind(addr).map_err(io)?;
        listener.set_nonblocking(true).map_err(io)?;
        let bound = listener.local_addr().map_err(io)?;
        if !bound.ip().is_loopback() {
            tracing::warn!("metrics are served on {bound}, reachable from other machines");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tickpipe-metrics-http".into())
            .spawn(move || serve(&listener, &flag, &body))
            .map_err(|e| Error::Internal(format!("cannot spawn the metrics server: {e}")))?;
        Ok(MetricsServer {
            addr: bound,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: &TcpListener, stop: &AtomicBool, body: &Mutex<String>) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = answer(stream, body) {
                    tracing::debug!("metrics request failed: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
            }
            Err(e) => {
                tracing::debug!("metrics server accept: {e}");
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
}

fn answer(mut s: TcpStream, body: &Mutex<String>) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    s.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, ctype, text) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            body.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        ),
        ("GET" | "HEAD", "/") => (
            "200 OK",
            "text/plain; charset=utf-8",
            "tickpipe run metrics: GET /metrics (Prometheus text format)\n".to_string(),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found; try /metrics\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".to_string(),
        ),
    };
    let mut resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        text.len()
    )
    .into_bytes();
    if method != "HEAD" {
        resp.extend_from_slice(text.as_bytes());
    }
    s.write_all(&resp)?;
    s.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain HTTP GET against the loopback server.
    pub(crate) fn get(addr: SocketAddr, path: &str) -> (String, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap();
        (head.to_string(), body.to_string())
    }

    #[test]
    fn serves_the_current_text_and_404_elsewhere() {
        let body = Arc::new(Mutex::new("a_metric 1\n".to_string()));
        let srv = MetricsServer::start("127.0.0.1:0".parse().unwrap(), body.clone()).unwrap();
        let (head, text) = get(srv.addr(), "/metrics");
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert!(head.contains("version=0.0.4"), "{head}");
        assert_eq!(text, "a_metric 1\n");
        *body.lock().unwrap() = "a_metric 2\n".into();
        assert_eq!(get(srv.addr(), "/metrics?x=1").1, "a_metric 2\n");
        assert!(get(srv.addr(), "/nope").0.starts_with("HTTP/1.1 404"));
        let addr = srv.addr();
        drop(srv);
        assert!(TcpStream::connect(addr).is_err(), "closed after drop");
    }

    #[test]
    fn a_taken_port_is_a_usage_error() {
        let srv = MetricsServer::start("127.0.0.1:0".parse().unwrap(), Arc::default()).unwrap();
        let e = MetricsServer::start(srv.addr(), Arc::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("cannot serve metrics on"), "{e}");
    }
}
