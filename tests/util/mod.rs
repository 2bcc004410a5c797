//! Shared test helpers: one test per backend, stepping the loop until a condition holds,
//! and a recording dispatcher.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop, SockAddr};

pub mod proptest_seed;

/// Stamps one `#[test]` per backend for each `fn name(backend: Backend)` listed.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod select {
            $( #[test] fn $name() { super::$name(sockloop::Backend::Select) } )*
        }
        mod poll {
            $( #[test] fn $name() { super::$name(sockloop::Backend::Poll) } )*
        }
        mod epoll {
            $( #[test] fn $name() { super::$name(sockloop::Backend::Epoll) } )*
        }
    };
}

/// The step used by [`run_until`]: short, so tests are quick, never zero.
pub const STEP: Duration = Duration::from_millis(10);

/// Steps `event_loop` one iteration at a time until `cond` holds; fails the test with
/// `what` after 5 seconds.
pub fn run_until<S: 'static>(
    event_loop: &mut EventLoop<S>,
    what: &str,
    mut cond: impl FnMut(&mut EventLoop<S>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond(event_loop) {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        event_loop.poll_once(Some(STEP)).expect("poll_once failed");
    }
}

/// A shared, ordered record of hook calls.
#[derive(Clone, Default)]
pub struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    pub fn push(&self, s: impl Into<String>) {
        self.0.borrow_mut().push(s.into());
    }
    pub fn entries(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
    pub fn count(&self, s: &str) -> usize {
        self.0.borrow().iter().filter(|e| e.as_str() == s).count()
    }
    pub fn has(&self, s: &str) -> bool {
        self.count(s) > 0
    }
}

/// A loopback listener channel on `addr` (port 0), and its real address.
pub fn listener(addr: &str) -> (Channel, SockAddr) {
    let ch = Channel::tcp_listener(addr.parse().unwrap(), 64).unwrap();
    let real = ch.local_addr().unwrap();
    (ch, real)
}

/// A temp-dir Unix socket path, unique per test.
pub fn unix_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sockloop-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Echoes everything it reads, recording hooks into a [`Log`] with a prefix.
pub struct Echo {
    pub log: Log,
    pub name: &'static str,
}

impl Dispatcher for Echo {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 65536];
        let n = ctx.recv(&mut buf)?;
        if n > 0 {
            self.log.push(format!("{}:read", self.name));
        }
        ctx.push(&buf[..n])
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push(format!("{}:close", self.name));
        ctx.close();
        Ok(())
    }
    fn handle_error(&mut self, _ctx: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log.push(format!("{}:error:{}", self.name, err.kind()));
        Err(err)
    }
}

/// A listener that adds an [`Echo`] channel for each accepted connection.
pub struct EchoServer {
    pub log: Log,
}

impl Dispatcher for EchoServer {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        channel: Channel,
        _addr: SockAddr,
    ) -> io::Result<()> {
        self.log.push("server:accepted");
        let ch = channel;
        ctx.handle().add(
            ch,
            Echo {
                log: self.log.clone(),
                name: "conn",
            },
        )?;
        Ok(())
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("server:close");
        ctx.close();
        Ok(())
    }
}

/// A std blocking client with a read timeout, for driving a loop or an example server
/// from the test side.
pub fn blocking_client(addr: impl std::net::ToSocketAddrs) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// The environment variable that turns every environment-dependent skip into a failure
/// (CI sets it to `1`): a test that cannot run where it is meant to run must not pass.
pub const STRICT_ENV: &str = "SOCKLOOP_STRICT_TESTS";

/// The one way a test skips itself because the environment lacks something (an IPv6
/// loopback, a hard descriptor limit, a fillable backlog). With
/// `SOCKLOOP_STRICT_TESTS=1` it panics with `reason`; otherwise it prints
/// `SKIPPED: <test>: <reason>` to stderr, uncaptured (count them with
/// `cargo test 2>&1 | grep -c '^SKIPPED:'`), and the caller returns.
pub fn skip(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("<unnamed thread>");
    if std::env::var(STRICT_ENV).is_ok_and(|v| v == "1") {
        panic!("{test}: cannot run here ({reason}), and {STRICT_ENV}=1 forbids skipping");
    }
    // Straight to the stderr handle, not `eprintln!`, which the test harness captures:
    // the line shows in every run, passing or not.
    // A line of its own even after the harness's progress dots.
    let _ = writeln!(io::stderr(), "\nSKIPPED: {test}: {reason}");
}

/// All backends, for tests that loop over them inside one test.
pub const ALL: [Backend; 3] = Backend::ALL;

/// `len` bytes of deterministic test data with no short period, so a lost, repeated or
/// reordered chunk shows up as a mismatch.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8 ^ (i >> 16) as u8)
        .collect()
}

/// Runs `n` iterations of `event_loop`, each waiting at most [`STEP`].
pub fn step(event_loop: &mut EventLoop, n: usize) {
    for _ in 0..n {
        event_loop.poll_once(Some(STEP)).expect("poll_once failed");
    }
}

/// Reads whatever `stream` (non-blocking) has into `out`; returns true once the other
/// end is gone (end of file, or a reset: closing a socket with unread input resets).
pub fn read_available(stream: &mut impl io::Read, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("peer read failed: {e}"),
        }
    }
}

/// Writes as much of `data[*sent..]` as `stream` (non-blocking) takes now, advancing
/// `sent`: the writing counterpart of [`read_available`], for a peer that feeds a loop
/// which runs on the same thread.
#[allow(dead_code)]
pub fn write_available(stream: &mut impl io::Write, data: &[u8], sent: &mut usize) {
    while *sent < data.len() {
        match stream.write(&data[*sent..]) {
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("peer write failed: {e}"),
        }
    }
}

/// A connected TCP pair over loopback: (the accepted side, the client side).
pub fn tcp_pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (server, _) = l.accept().unwrap();
    (server, client)
}

/// A channel over one end of a Unix stream pair, and the other end (non-blocking) for
/// the test to drive it with.
pub fn unix_channel() -> (Channel, std::os::unix::net::UnixStream) {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    b.set_nonblocking(true).unwrap();
    (Channel::from_socket(a).unwrap(), b)
}

/// Runs `f` on its own thread and fails the test if it has not finished after `secs`
/// seconds (for calls that would hang forever if broken).
pub fn within<T: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not finish within {secs} s")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

/// A listener with backlog 0 whose accept queue is full, so a connect to it stays in
/// progress (Linux drops SYNs to a full queue): the listener, the connections that filled
/// it, its address. `None` if the queue could not be shown full (the caller calls [`skip`]).
#[allow(dead_code)]
pub fn full_listener() -> Option<(
    socket2::Socket,
    Vec<std::net::TcpStream>,
    std::net::SocketAddr,
)> {
    let l = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    l.bind(&any.into()).unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    let mut queued = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => queued.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Some((l, queued, addr)),
            Err(e) => panic!("filling the accept queue: {e}"),
        }
    }
    None
}
