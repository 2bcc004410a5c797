//! A static file server: asynchat-style HTTP/1.0 with keep-alive, files streamed by a
//! producer (`sendfile(2)` on Linux).
//!
//! Run: `cargo run --release --example http_file_server -- --addr 127.0.0.1:8000 --root .`
//! Options: `--addr HOST:PORT` (default 127.0.0.1:8000; port 0 picks a free one),
//! `--root DIR` (default `.`), `--backend select|poll|epoll` (default epoll).
//! When ready it prints `listening on <addr>`. Try `curl -i http://127.0.0.1:8000/README.md`
//! or `curl -I ...` (HEAD). SIGINT or SIGTERM closes every connection and exits with
//! status 0. Each request is logged at info level (`RUST_LOG`).
//!
//! The protocol, as asynchat servers did it: the terminator is `\r\n\r\n` (a request
//! head, at most 8 KiB, else 400 and close); a `Content-Length` body (at most 64 KiB, else
//! 413 and close) is read with a count terminator and dropped. GET and HEAD are served
//! (anything else: 405); responses are HTTP/1.0 with `Content-Length`, kept alive when the
//! request asks (`Connection: keep-alive` in 1.0, the default in 1.1), so pipelined
//! requests are answered in order. Paths are percent-decoded; `..` is refused (403), as
//! is anything that resolves outside the root (404, e.g. a symlink) or a directory
//! without `index.html` (403), before any byte of the response is queued. A file that
//! fails while being sent (truncated, a read error) goes to `handle_error`: the client
//! gets a short body and the connection closes, never a hang.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
use sockloop::{
    signal, Backend, Channel, Context, Dispatcher, EventLoop, FileProducer, Producer, SockAddr,
};

const MAX_HEAD: usize = 8192;
const MAX_BODY: u64 = 65536;

/// What to send once the request (and its body, if any) has been read.
struct Response {
    status: &'static str,
    headers: String,
    /// The file, for a 200 to GET; `None` for HEAD and errors.
    file: Option<LazyFile>,
    body: Vec<u8>,
    keep_alive: bool,
}

impl Response {
    fn error(status: &'static str, keep_alive: bool) -> Response {
        Response {
            status,
            headers: format!(
                "Content-Length: {}\r\nContent-Type: text/plain\r\n",
                status.len() + 1
            ),
            file: None,
            body: format!("{status}\n").into_bytes(),
            keep_alive,
        }
    }
}

/// The loop's state, shared by every connection.
struct Site {
    /// The directory served (canonical).
    root: PathBuf,
}

/// One connection: a request head, then maybe a counted body, then the response.
struct Http {
    head: Vec<u8>,
    /// The response waiting for the request's body to be read.
    waiting: Option<Response>,
}

impl ChatHandler<Site> for Http {
    fn collect_incoming_data(
        &mut self,
        _: &mut ChatContext<'_, Site>,
        data: &[u8],
    ) -> io::Result<()> {
        if self.waiting.is_none() {
            self.head.extend_from_slice(data); // a body is read and dropped
        }
        Ok(())
    }

    fn found_terminator(&mut self, ctx: &mut ChatContext<'_, Site>) -> io::Result<()> {
        if let Some(response) = self.waiting.take() {
            // The body is in: back to request heads.
            ctx.set_terminator(Terminator::Bytes(b"\r\n\r\n".to_vec()))?;
            return send(ctx, response);
        }
        let head = std::mem::take(&mut self.head);
        let (response, body_len) = respond(&ctx.state().root, &head);
        match body_len {
            Some(n) if n > 0 => {
                ctx.set_terminator(Terminator::Count(n))?;
                self.waiting = Some(response);
                Ok(())
            }
            _ => send(ctx, response),
        }
    }

    fn handle_record_too_long(
        &mut self,
        ctx: &mut ChatContext<'_, Site>,
        _: io::Error,
    ) -> io::Result<()> {
        self.head.clear();
        send(ctx, Response::error("400 Bad Request", false))
    }
}

/// Queues `r`: the head as bytes, the file as a producer; then closes unless kept alive.
fn send(ctx: &mut ChatContext<'_, Site>, r: Response) -> io::Result<()> {
    let connection = if r.keep_alive { "keep-alive" } else { "close" };
    let head = format!(
        "HTTP/1.0 {}\r\n{}Connection: {connection}\r\n\r\n",
        r.status, r.headers
    );
    ctx.push(head.as_bytes())?;
    ctx.push(&r.body)?;
    if let Some(file) = r.file {
        ctx.push_with_producer(file)?;
    }
    if !r.keep_alive {
        ctx.close_when_done();
    }
    Ok(())
}

/// Parses a request head; returns the response and the body length to read first.
fn respond(root: &Path, head: &[u8]) -> (Response, Option<u64>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let request = lines.next().unwrap_or("");
    let mut parts = request.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if v == "HTTP/1.0" || v == "HTTP/1.1" => (m, t, v),
        _ => return (Response::error("400 Bad Request", false), None),
    };
    let mut connection = String::new();
    let mut length: Option<u64> = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return (Response::error("400 Bad Request", false), None);
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            connection = value.to_ascii_lowercase();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return (Response::error("400 Bad Request", false), None);
        } else if name.eq_ignore_ascii_case("content-length") {
            match value.parse() {
                Ok(n) if length.is_none_or(|l| l == n) => length = Some(n),
                _ => return (Response::error("400 Bad Request", false), None),
            }
        }
    }
    if length.is_some_and(|n| n > MAX_BODY) {
        return (Response::error("413 Content Too Large", false), None);
    }
    let keep_alive = if version == "HTTP/1.0" {
        connection.split(',').any(|t| t.trim() == "keep-alive")
    } else {
        !connection.split(',').any(|t| t.trim() == "close")
    };
    let body_len = length;
    let response = match method {
        "GET" | "HEAD" => match resolve(root, target) {
            Ok((path, len)) => Response {
                status: "200 OK",
                headers: format!(
                    "Content-Length: {len}\r\nContent-Type: {}\r\n",
                    content_type(&path)
                ),
                file: (method == "GET").then_some(LazyFile {
                    path,
                    len,
                    file: None,
                }),
                body: Vec::new(),
                keep_alive,
            },
            Err(status) => Response::error(status, keep_alive),
        },
        _ => {
            let mut r = Response::error("405 Method Not Allowed", keep_alive);
            r.headers.push_str("Allow: GET, HEAD\r\n");
            r
        }
    };
    log::info!("{method} {target} {}", response.status);
    (response, body_len)
}

/// Maps a request target to a regular file under `root` (canonical) and its length.
fn resolve(root: &Path, target: &str) -> Result<(PathBuf, u64), &'static str> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let path = path.strip_prefix('/').ok_or("400 Bad Request")?;
    let decoded = percent_decode(path).ok_or("400 Bad Request")?;
    let mut rel = PathBuf::new();
    for segment in decoded.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => return Err("403 Forbidden"), // path traversal
            s if s.contains(&0) => return Err("400 Bad Request"),
            s => rel.push(std::ffi::OsStr::from_bytes(s)),
        }
    }
    let not_found = |e: io::Error| match e.kind() {
        io::ErrorKind::PermissionDenied => "403 Forbidden",
        _ => "404 Not Found",
    };
    let mut full = root.join(rel).canonicalize().map_err(not_found)?;
    if !full.starts_with(root) {
        return Err("404 Not Found"); // a symlink out of the root
    }
    let mut meta = full.metadata().map_err(not_found)?;
    if meta.is_dir() {
        full.push("index.html");
        meta = full.metadata().map_err(|_| "403 Forbidden")?;
    }
    if !meta.is_file() {
        return Err("403 Forbidden");
    }
    Ok((full, meta.len()))
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html",
        Some("txt" | "md" | "rs" | "toml") => "text/plain; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// A [`FileProducer`] opened only when its turn in the queue comes, so a client that
/// pipelines many requests holds no descriptor for the responses still waiting. The
/// length promised in `Content-Length` is checked on opening: a file that changed is an
/// error (routed to `handle_error`: the connection closes).
struct LazyFile {
    path: PathBuf,
    len: u64,
    file: Option<FileProducer>,
}

impl LazyFile {
    fn file(&mut self) -> io::Result<&mut FileProducer> {
        if self.file.is_none() {
            let file = FileProducer::open(&self.path)?;
            if file.remaining() != self.len {
                let msg = format!(
                    "{} changed size since the response head was sent",
                    self.path.display()
                );
                return Err(io::Error::other(msg));
            }
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("just opened"))
    }
}

impl Producer for LazyFile {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file()?.fill(buf)
    }
    fn size_hint(&self) -> Option<u64> {
        Some(self.file.as_ref().map_or(self.len, FileProducer::remaining))
    }
    fn send_direct(&mut self, socket: BorrowedFd<'_>, max: usize) -> Option<io::Result<usize>> {
        match self.file() {
            Ok(file) => file.send_direct(socket, max),
            Err(e) => Some(Err(e)),
        }
    }
}

/// The listening channel: one [`Http`] chat per accepted socket.
struct Listener;

impl Dispatcher<Site> for Listener {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_, Site>,
        channel: Channel,
        _: SockAddr,
    ) -> io::Result<()> {
        let mut chat = AsyncChat::new(Http {
            head: Vec::new(),
            waiting: None,
        });
        chat.set_terminator(Terminator::Bytes(b"\r\n\r\n".to_vec()))?;
        chat.set_max_record(Some(MAX_HEAD));
        // Pipelined requests wait in the input buffer while 64 KiB of responses heads
        // are unsent: the queue stays bounded whatever the client sends.
        chat.set_watermarks(Some((16 * 1024, 64 * 1024)))?;
        ctx.handle().add(channel, chat)?;
        Ok(())
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

const USAGE: &str =
    "usage: http_file_server [--addr HOST:PORT] [--root DIR] [--backend select|poll|epoll]";

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "http_file_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<()> {
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 8000));
    let mut root = PathBuf::from(".");
    let mut backend = Backend::Epoll;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| invalid(format!("{flag} needs a value; {USAGE}")))?;
        match flag.as_str() {
            "--addr" => {
                addr = value
                    .parse()
                    .map_err(|e| invalid(format!("--addr {value}: {e}")))?
            }
            "--root" => root = PathBuf::from(value),
            "--backend" => backend = value.parse()?,
            _ => return Err(invalid(format!("unknown flag {flag}; {USAGE}"))),
        }
    }
    let root = root
        .canonicalize()
        .map_err(|e| io::Error::new(e.kind(), format!("--root {}: {e}", root.display())))?;
    let mut event_loop = EventLoop::with_backend_and_state(backend, Site { root })?;
    let listener = Channel::tcp_listener(addr, 128)?;
    let bound = listener.local_inet_addr()?;
    event_loop.add(listener, Listener)?;
    event_loop.stop_on_signals(&[signal::SIGINT, signal::SIGTERM])?;
    let mut out = io::stdout();
    writeln!(out, "listening on {bound}")?;
    out.flush()?;
    event_loop.run(Some(Duration::from_secs(30)), None)
}
