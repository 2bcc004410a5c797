//! Failures are never silent: with no logger installed, a refused connect, a hook error
//! and a hook panic each reach stderr as one line (a panic's line names its message, hook
//! and channel); with a logger installed they go to it and nothing reaches stderr; and a
//! closed stderr never turns a report into a panic.
//!
//! The logger is process-wide, so each case runs in a child process: this test binary
//! re-run with `REPORTING_CHILD` set, which makes [`child_entry`] run the scenario.

use std::io::{self, Write};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sockloop::{Backend, Channel, Context, Dispatcher, Domain, EventLoop, Type};

const CHILD_ENV: &str = "REPORTING_CHILD";

struct Refused;
impl Dispatcher for Refused {}

/// Misses `handle_read`: its input is read and dropped, and that is reported once.
struct Silent;
impl Dispatcher for Silent {}

/// A listener that misses `handle_accepted`: connections are closed, reported once.
struct Deaf;
impl Dispatcher for Deaf {}

struct Failing;
impl Dispatcher for Failing {
    fn handle_read(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        Err(io::Error::other("hook failed on purpose"))
    }
}

struct Panicking;
impl Dispatcher for Panicking {
    fn handle_read(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        panic!("kaboom on purpose")
    }
}

/// The failures, on every backend: each channel ends with an error report.
fn scenario() {
    for backend in Backend::ALL {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        let closed_port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let mut refused = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
        refused.connect(closed_port).unwrap();
        ev.add(refused, Refused).unwrap();
        let mut peers = Vec::new();
        for failing in [true, false] {
            let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
            b.write_all(b"x").unwrap();
            peers.push(b);
            let ch = Channel::from_socket(a).unwrap();
            if failing {
                ev.add(ch, Failing).unwrap();
            } else {
                ev.add(ch, Panicking).unwrap();
            }
        }
        // Input nobody reads: dropped (no spin), and end of file closes the channel.
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        b.write_all(&[7u8; 100_000]).unwrap_or_default();
        b.shutdown(std::net::Shutdown::Write).unwrap();
        ev.add(Channel::from_socket(a).unwrap(), Silent).unwrap();
        peers.push(b);
        // A connection nobody accepts: closed.
        let listener = Channel::tcp_listener("127.0.0.1:0".parse().unwrap(), 8).unwrap();
        let addr = listener.local_inet_addr().unwrap();
        let deaf = ev.add(listener, Deaf).unwrap();
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        client.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            assert!(Instant::now() < deadline, "the connection was never closed");
            ev.poll_once(Some(Duration::from_millis(10))).unwrap();
            match io::Read::read(&mut client, &mut [0u8; 8]) {
                Ok(0) => break,
                Ok(_) => panic!("data from a listener that does not accept"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("{e}"),
            }
        }
        ev.close(deaf);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ev.is_empty() {
            assert!(
                Instant::now() < deadline,
                "the failing channels never closed"
            );
            ev.poll_once(Some(Duration::from_millis(10))).unwrap();
        }
    }
}

/// Counts what a logger receives.
struct Recorder(Mutex<Vec<String>>);

impl log::Log for Recorder {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push(record.args().to_string());
    }
    fn flush(&self) {}
}

static RECORDER: Recorder = Recorder(Mutex::new(Vec::new()));

/// Not a test by itself: the entry point of the child processes below. It does nothing
/// unless [`CHILD_ENV`] names a case.
#[test]
fn child_entry() {
    let Ok(case) = std::env::var(CHILD_ENV) else {
        return;
    };
    // Only sockloop's own report of the panic should show, not the default hook's.
    std::panic::set_hook(Box::new(|_| {}));
    if case == "logger" {
        log::set_logger(&RECORDER).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    }
    scenario();
    if case == "logger" {
        let records = RECORDER.0.lock().unwrap().clone();
        println!("records: {}", records.len());
        for r in records {
            println!("record: {r}");
        }
    }
}

fn run_child(case: &str, stderr: Stdio) -> Output {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, case)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child {case} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn without_a_logger_each_failure_is_one_stderr_line() {
    let out = run_child("stderr", Stdio::piped());
    let err = String::from_utf8_lossy(&out.stderr);
    let refused = lines_with(&err, "Connection refused");
    assert_eq!(refused.len(), 3, "one line per backend:\n{err}");
    assert!(refused
        .iter()
        .all(|l| l.starts_with("sockloop: error: uncaptured error, closing channel <Refused")));
    let failed = lines_with(&err, "hook failed on purpose");
    assert_eq!(failed.len(), 3, "{err}");
    let panics = lines_with(&err, "kaboom on purpose");
    assert_eq!(panics.len(), 3, "{err}");
    // Missing hooks: reported once per process (not once per backend or per event).
    let read = lines_with(&err, "has no handle_read");
    assert_eq!(read.len(), 1, "{err}");
    assert!(
        read[0].starts_with("sockloop: warn: <Silent ")
            && read[0].contains("its input is read and dropped"),
        "{read:?}"
    );
    let accepted = lines_with(&err, "has no handle_accepted");
    assert_eq!(accepted.len(), 1, "{err}");
    assert!(
        accepted[0].starts_with("sockloop: warn: <Deaf ")
            && accepted[0].contains("accepted connections are closed"),
        "{accepted:?}"
    );
    assert!(
        panics
            .iter()
            .all(|l| l.starts_with("sockloop: error: panic in handle_read on <Panicking ")),
        "a panic names its hook and channel: {panics:?}"
    );
}

#[test]
fn with_a_logger_nothing_reaches_stderr() {
    let out = run_child("logger", Stdio::piped());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        lines_with(&err, "sockloop").is_empty(),
        "nothing printed twice: {err}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        lines_with(&stdout, "record: ").len(),
        11,
        "the logger got every report: {stdout}"
    );
    assert_eq!(lines_with(&stdout, "kaboom on purpose").len(), 3);
}

#[test]
fn a_closed_stderr_never_panics() {
    let (reader, writer) = io::pipe().unwrap();
    drop(reader);
    // The child exits 0: every report's write failed with EPIPE and was ignored.
    run_child("stderr", Stdio::from(writer));
}
