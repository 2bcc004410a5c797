//! The fault matrix: each row is a fault a channel can meet, with the outcome the loop
//! promises, checked on every backend (select, poll, epoll). Unless the row says
//! otherwise, a healthy "canary" echo channel shares the loop with the faulty one and must
//! still echo afterwards, and every `poll_once` / `run` returns `Ok` (nothing escapes the
//! loop). Rows already asserted in full elsewhere are listed with their test instead of
//! being written twice.
//!
//! | # | Row | Where (`file::test`, the file in `tests/` or `tests/loop/`; each test exists as `select::`, `poll::`, `epoll::`) | Asserted outcome |
//! |---|---|---|---|
//! | 1 | Reset mid-read (peer `SO_LINGER` 0 + close with unread data at the server) | `faults::reset_mid_read`; also `reset::reset_while_reading` | hooks exactly `[close]` (one `handle_close`, no `handle_error`, nothing after it); canary echoes |
//! | 2 | Reset mid-write (16 MiB queued when the peer resets) | `faults::reset_mid_write`; also `reset::reset_while_writing`, `reset::reset_while_only_writing` | hooks exactly `[close]`; in `handle_close`, `0 < pending_output() <=` what was queued just before the reset; canary echoes |
//! | 3a | Peer half-close (client `shutdown(Write)`) | `faults::peer_half_close`; also `half_close::reply_after_peer_half_close`, `half_close::no_input_polling_after_eof` | `handle_eof` once, channel stays open and still sends (client gets echo + late reply); no read event after EOF; then `request_close` → hooks `[eof, close]`; canary echoes |
//! | 3b | Own half-close (server `shutdown(Write)`) | `faults::own_half_close`; also `half_close::server_half_close_still_reads` | client reads the server's bytes then EOF; server still reads 256 KiB byte-exact with no hook but reads; client's shutdown → `[eof, close]`; canary echoes |
//! | 4 | Refused connect (nothing listens on the port) | `faults::refused_connect`; also `connect::refused`, `timeouts::refused_connect_no_timeout` | as documented on `Channel::connect`: hooks exactly `[error:ECONNREFUSED, close]`, no `handle_connect`; canary echoes |
//! | 5 | Unreachable connect | `faults::unreachable_connect` | Loopback cannot produce an *asynchronous* unreachable (that needs an ICMP error from a router), so the deterministic cases are the synchronous ones, documented on `Channel::connect` ("any other connect(2) error, at once"): TCP to a multicast address (224.0.0.1, Linux refuses with `ENETUNREACH` whatever the routing table) and an IPv4 socket to an IPv6 address (`EAFNOSUPPORT`); the call returns `Err`, the channel stays `Unconnected`; the same connect inside a hook goes to `handle_error` with that errno, then `handle_close`; canary echoes |
//! | 6 | Connect timeout (backlog-0 listener with a full accept queue) | `faults::connect_timeout`; also `timeouts::connect_timeout_fires`, `timeouts::connect_timeout_refires_when_kept` | hooks exactly `[timeout:Connect, close]`, not before the timeout; no timer left; canary echoes (skipped through `util::skip` if the queue cannot be filled: a failure under `SOCKLOOP_STRICT_TESTS=1`) |
//! | 7 | Slow reader (peer never reads the replies) | `faults::slow_reader_bounded`; also `chat_layer::watermarks_pause_and_resume_reading` | `readable()` = below a high-water mark: reading stops, `pending_output()` never exceeds the mark + one read's replies, no further reads while paused; canary echoes meanwhile; once the peer reads, every reply arrives in order |
//! | 8 | Slow writer (peer sends nothing) | `faults::slow_writer_idle`; also `timeouts::idle_timeout_closes`, `timeouts::default_handle_timeout_closes` | hooks exactly `[timeout:Idle, close]`, not before the idle timeout although the canary is busy all along; no timer left |
//! | 9a | Hook error (`handle_read` returns `Err(other)`) | `faults::hook_error`; also `panics::error_from_handle_error_closes`, `reset::disconnect_errors_from_hooks_close` | hooks exactly `[error:other, close]` in that order; peer sees EOF; canary echoes |
//! | 9b | Hook error swallowed (`handle_error` returns `Ok`) | `faults::hook_error_swallowed`; also `panics::swallowed_error_keeps_channel` | hooks exactly `[error:other]`, the channel stays and keeps echoing; canary echoes |
//! | 10a | Hook panic (caught, the default) | `faults::hook_panic`; also `panics::panic_in_hook`, `panics::panic_in_handle_error`, `panics::panic_in_handle_close` | hooks exactly `[close]` (the one cleanup call, no `handle_error`), "panic in handle_read on <channel>: boom in handle_read; closing the channel" logged once (error level); peer sees EOF; canary echoes |
//! | 10b | Hook panic with `set_catch_panics(false)` | `panics::propagates_from_hook` | the panic reaches the caller of `poll_once`/`run`; the panicking channel is closed, the other channel and one added just before still echo, `close_all` empties the map |
//! | 11a | `readable()` / `writable()` panic (caught) | `faults::predicate_panics`; also `panics::panic_in_readable`, `panics::panic_in_writable` | both channels closed after one `handle_close` each, the panic logged once each with its message; peers see EOF; canary echoes |
//! | 11b | Predicate panic with `set_catch_panics(false)` | `panics::propagates_from_predicate` | as 10b |
//! | 12 | fd closed behind the loop's back | `faults::fd_closed_behind_back` (one of two `unsafe` blocks outside `src/sys/`, with row 17b's `pthread_kill`: committing this fault needs it) | select (`EBADF` → `POLLNVAL`-like) and poll (`POLLNVAL`): hooks exactly `[close]`; canary echoes. Epoll (documented on `Backend::Epoll`): the kernel drops the registration with the file and reports nothing; the channel lingers until closed through the loop, which is clean |
//! | 13 | fd reuse within one iteration (a hook closes A, adds B on A's fd number) | `fd_reuse::new_channel_gets_no_stale_event` (identical scenario; not repeated here) | no hook on A after its close; B gets no event in the iteration it was created, and is served from the next one |
//! | 14 | `EMFILE` on accept | `accept_backoff::emfile_backoff` (child process: it lowers `RLIMIT_NOFILE`, which no in-process test may do); also `accept_backoff::backoff_doubles_to_a_cap_then_resets` (the schedule, in process) | the listener is never closed, does not spin (CPU time, retry count), pauses and resumes accepting; new clients get their echo once descriptors are free |
//! | 15 | fd ≥ 1024 on select | `select_fd_limit::high_fd_echoes` | a channel on fd ≥ 1100 echoes three rounds and closes once at EOF, no error, on every backend |
//! | 16 | Zero-length UDP datagram | `faults::zero_length_datagram`; also `bad_input::empty_datagram_is_not_eof` | `handle_read` runs, `recv_from` gives `Some((0, sender))`, then the next datagram; no EOF, no close; canary echoes |
//! | 17a | A signal with a loop handler during the wait | `faults::signal_during_wait` | SIGUSR2 raised from another thread while `poll_once(Some(2 s))` sleeps with a 300 ms timer pending: the handler runs once, in the iteration the signal woke; the timer fires at ≥ 300 ms and well before 2 s; no channel event is reported (each `poll_once` returns 0); canary echoes |
//! | 17b | `EINTR` during the wait | `faults::eintr_retried_with_remaining_time` | SIGUSR1, whose handler (signal-hook's flag) does not involve the loop, sent with `pthread_kill` to the loop thread every 40 ms for up to 3 s while `poll_once(Some(600 ms))` waits with an idle channel registered: `Ok(0)`, returned at ≥ 600 ms (an `EINTR` is not a timeout) and before 1.5 s (retried with the remaining time, not the whole timeout again); canary echoes |
//! | 18 | A hook closes every channel (`ctx.close_all()`) | `close_all::close_all_from_hook` (no canary possible: everything closes) | the map is empty, `run` returns `Ok` early, no hook runs afterwards (no `handle_close` for the closed ones, as documented), every peer sees EOF |
//! | 19 | A hook adds 1,000 channels at once | `faults::thousand_channels_from_hook` | none is served in the iteration that added it; each reads its message exactly once and echoes it; then each gets exactly one `handle_close` when its peer closes; canary echoes |
//! | 20 | Reset while the read hook consumes nothing (peer reads once, resets; the channel sends on every write event) | `hangup_routing::reset_reaches_write_and_close_without_busy_loop`; also `hangup_routing::reset_seen_by_recv_closes_at_once` | after the reset, hooks exactly `[read, write, close]` on every backend (select's sequence), one read event, no `handle_error`, the channel closed; with a hook that calls `recv`: `[read, close]` |
//! | 21 | End of file on a pipe (writer closes, with and without unread data) | `hangup_routing::pipe_eof_goes_to_handle_eof_without_data`, `hangup_routing::pipe_eof_goes_to_handle_eof_after_the_data` | hooks exactly `[eof, close]` after the data, on every backend (poll and epoll report `POLLHUP`, which used to skip `handle_eof`) |
//! | 22 | The last channel closed from outside its hooks | `run_returns::run_returns_after_a_close_from_{a_timer,a_remote_call,a_signal_handler,another_channels_hook}` | for each of `close_when_done`, `request_close`, `close`: `run(None, None)` returns (within 10 s, in practice at once) with an empty map; `handle_close` once for the first two, never for `close` |
//! | 23 | A peer half-closes with output queued | `eof_flush::eof_flushes_queued_output_{plain,chat}`, `eof_flush::eof_after_request_keeps_a_close_when_done_reply_whole`, `eof_flush::echo_example_returns_everything_to_a_half_closed_client` | 8 KiB socket buffers; N ∈ {0, 1, 100,003, 4,000,000, 50,000,000} bytes sent then `SHUT_WR` (client reading at once, after the shutdown, or slowly): exactly the N bytes come back, byte for byte, from the README's handler, a chat-layer echo and the echo example; a 20 MB producer reply queued with `close_when_done` before the client's EOF arrives whole |
//! | 24 | Failures with no logger installed; with a logger; with stderr closed | `reporting::without_a_logger_each_failure_is_one_stderr_line`, `reporting::with_a_logger_nothing_reaches_stderr`, `reporting::a_closed_stderr_never_panics` (child processes: the logger is process-wide) | a refused connect, a hook error and a hook panic each give one `sockloop: error: ...` line per backend (the panic's names the hook, the channel and the message); with a logger, all 9 records reach it and stderr has none; with stderr a closed pipe the process exits 0 |
//! | 25 | A panic in a hook, a predicate or `handle_error` | `faults::hook_panic`, `faults::predicate_panics`, `panics::panic_in_{hook,readable,writable,handle_error}` | the channel gets exactly one `handle_close` before it is closed (a panic in `handle_close` itself: not called again) |
//! | 26 | A duration too large for the clock (`Duration::MAX`) | `huge_durations::huge_idle_and_connect_timeouts_never_fire`, `huge_durations::huge_timers_never_fire_and_can_be_cancelled`, `huge_durations::huge_wait_returns_when_something_is_ready` | idle and connect timeouts, `call_later`, `call_every`, `run` / `poll_once` waits: no panic, nothing fires, the channel keeps echoing |
//!
//! Row 17 note: a process-directed signal is taken by whichever thread the kernel picks
//! (usually the test harness's main thread), so in row 17a the loop is woken through its
//! signal socket, rarely by `EINTR`. Row 17b therefore targets the loop thread with
//! `pthread_kill` (the `libc` dev-dependency; one `unsafe` call) and uses a signal whose
//! handler has nothing to do with the loop, so only the `EINTR` retry ends the wait.
//!
//! Row 12 note: closing a descriptor that a `Socket` owns is an I/O-safety violation:
//! std's debug build aborts the process when that `Socket` is later dropped on an
//! already closed number. The test therefore re-occupies the number (with `/dev/null`,
//! through safe `fcntl_dupfd_cloexec`) before the channel's own close, and holds this
//! binary's descriptor lock exclusively so no other test can be handed the number.

mod util;

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use sockloop::{
    Backend, Channel, Context, Dispatcher, Domain, EventLoop, SockAddr, Timeout, Token, Type,
};
use util::{
    full_listener, pattern, read_available, run_until, step, tcp_pair, unix_channel,
    write_available, Echo, Log, STEP,
};

// ---------------------------------------------------------------------------------------
// Serialisation: descriptors and signals are process-wide.

/// Every test holds it shared; the row that closes a descriptor behind the loop's back
/// holds it exclusively, so no other test is handed that number meanwhile.
static FDS: RwLock<()> = RwLock::new(());
/// Held by the rows that install signal handlers or raise signals (SIGUSR1, SIGUSR2).
static SIGNALS: Mutex<()> = Mutex::new(());

fn shared_fds() -> RwLockReadGuard<'static, ()> {
    FDS.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive_fds() -> RwLockWriteGuard<'static, ()> {
    FDS.write().unwrap_or_else(|e| e.into_inner())
}

fn serial_signals() -> MutexGuard<'static, ()> {
    SIGNALS.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------
// Captured log records, per thread (the loop logs caught panics at error level).

struct Capture;

static RECORDS: Mutex<Vec<(ThreadId, log::Level, String)>> = Mutex::new(Vec::new());
static CAPTURE: Capture = Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let mut records = RECORDS.lock().unwrap_or_else(|e| e.into_inner());
        records.push((
            thread::current().id(),
            record.level(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

fn capture_logs() {
    // Fails harmlessly once installed (by this or another test).
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Info);
}

/// Error-level records logged by this thread that contain `needle`.
fn errors_logged(needle: &str) -> usize {
    let me = thread::current().id();
    RECORDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(t, level, msg)| *t == me && *level == log::Level::Error && msg.contains(needle))
        .count()
}

// ---------------------------------------------------------------------------------------
// The canary: a healthy echo channel that must keep working after every fault.

struct Canary {
    token: Token,
    peer: UnixStream,
    log: Log,
    round: u32,
}

impl Canary {
    fn add(ev: &mut EventLoop) -> Canary {
        let (ch, peer) = unix_channel();
        let log = Log::default();
        let token = ev
            .add(
                ch,
                Echo {
                    log: log.clone(),
                    name: "canary",
                },
            )
            .unwrap();
        Canary {
            token,
            peer,
            log,
            round: 0,
        }
    }

    /// One echo round trip through the loop; nothing but reads happened to the canary.
    fn echo(&mut self, ev: &mut EventLoop) {
        self.round += 1;
        let msg = format!("canary round {}", self.round);
        self.peer.write_all(msg.as_bytes()).unwrap();
        let mut got = Vec::new();
        run_until(ev, "the canary's echo", |_| {
            read_available(&mut self.peer, &mut got);
            got.len() >= msg.len()
        });
        assert_eq!(got, msg.as_bytes(), "the canary echoes exactly");
        assert!(ev.contains(self.token), "the canary is still open");
        assert!(
            self.log.entries().iter().all(|e| e == "canary:read"),
            "the canary saw only reads: {:?}",
            self.log.entries()
        );
    }

    /// The closing check of every row: two round trips, and `run` returns `Ok`.
    fn still_serves(&mut self, ev: &mut EventLoop) {
        self.echo(ev);
        self.echo(ev);
        ev.run(Some(STEP), Some(3)).expect("run after the fault");
    }
}

// ---------------------------------------------------------------------------------------
// The faulty channel: one recording dispatcher, scripted per row.

/// How a [`Rec`] fails once its input contains `boom`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fail {
    Error,
    SwallowedError,
    Panic,
    PanicInReadable,
    PanicInWritable,
}

#[derive(Clone, Copy, Default)]
struct Script {
    /// Bytes per `recv` (0: 4096).
    chunk: usize,
    /// Echo what is read, each byte repeated `amplify` times (0: no echo).
    amplify: usize,
    /// `handle_eof` keeps the channel open (default: request the close).
    keep_on_eof: bool,
    fail: Option<Fail>,
    /// `readable()` only while `pending_output()` is below this.
    high_water: Option<usize>,
    /// `readable()` false: watched for writing only.
    write_only: bool,
}

/// What a [`Rec`] saw, shared with the test.
#[derive(Default)]
struct Probe {
    /// Hooks other than read/write, in order.
    log: Log,
    got: RefCell<Vec<u8>>,
    reads: Cell<usize>,
    pending_at_close: Cell<Option<usize>>,
    max_pending: Cell<usize>,
    timeouts: RefCell<Vec<Instant>>,
    closed: Cell<bool>,
}

struct Rec {
    script: Script,
    probe: Rc<Probe>,
    armed: bool,
}

fn rec(script: Script) -> (Rec, Rc<Probe>) {
    let probe = Rc::new(Probe::default());
    (
        Rec {
            script,
            probe: probe.clone(),
            armed: false,
        },
        probe,
    )
}

impl Rec {
    fn note(&self, what: String) {
        if self.probe.closed.get() {
            self.probe.log.push(format!("{what} after close"));
        } else {
            self.probe.log.push(what);
        }
    }
}

impl Dispatcher for Rec {
    fn readable(&self, ch: &Channel) -> bool {
        if self.armed && self.script.fail == Some(Fail::PanicInReadable) {
            panic!("boom in readable");
        }
        !self.script.write_only
            && self
                .script
                .high_water
                .is_none_or(|hw| ch.pending_output() < hw)
    }
    fn writable(&self, ch: &Channel) -> bool {
        if self.armed && self.script.fail == Some(Fail::PanicInWritable) {
            panic!("boom in writable");
        }
        ch.is_connecting() || ch.has_pending_output()
    }
    fn handle_connect(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        self.note("connect".into());
        Ok(())
    }
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        if self.probe.closed.get() {
            self.note("read".into());
        }
        let chunk = if self.script.chunk == 0 {
            4096
        } else {
            self.script.chunk
        };
        let mut buf = vec![0u8; chunk];
        let n = ctx.recv(&mut buf)?;
        let data = &buf[..n];
        if n > 0 {
            self.probe.reads.set(self.probe.reads.get() + 1);
            self.probe.got.borrow_mut().extend_from_slice(data);
        }
        if let Some(fail) = self.script.fail {
            if data.windows(4).any(|w| w == b"boom") {
                self.armed = true;
                match fail {
                    Fail::Error | Fail::SwallowedError => return Err(io::Error::other("boom")),
                    Fail::Panic => panic!("boom in handle_read"),
                    Fail::PanicInReadable | Fail::PanicInWritable => return Ok(()),
                }
            }
        }
        if self.script.amplify > 0 && n > 0 {
            let reply: Vec<u8> = data
                .iter()
                .flat_map(|&b| std::iter::repeat_n(b, self.script.amplify))
                .collect();
            ctx.push_vec(reply)?;
            let max = self.probe.max_pending.get().max(ctx.pending_output());
            self.probe.max_pending.set(max);
        }
        Ok(())
    }
    fn handle_write(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        if self.probe.closed.get() {
            self.note("write".into());
        }
        ctx.flush()
    }
    fn handle_eof(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.note("eof".into());
        if !self.script.keep_on_eof {
            ctx.request_close();
        }
        Ok(())
    }
    fn handle_timeout(&mut self, ctx: &mut Context<'_>, which: Timeout) -> io::Result<()> {
        self.note(format!("timeout:{which:?}"));
        self.probe.timeouts.borrow_mut().push(Instant::now());
        ctx.request_close();
        Ok(())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        let code = match err.raw_os_error() {
            Some(n) => n.to_string(),
            None => format!("{:?}", err.kind()).to_lowercase(),
        };
        self.note(format!("error:{code}"));
        if self.script.fail == Some(Fail::SwallowedError) {
            Ok(())
        } else {
            Err(err)
        }
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.note("close".into());
        self.probe.closed.set(true);
        self.probe.pending_at_close.set(Some(ctx.pending_output()));
        ctx.close();
        Ok(())
    }
}

fn errno(e: Errno) -> String {
    format!("error:{}", e.raw_os_error())
}

/// Steps the loop until `token` is gone, then three more iterations (for anything that
/// would run after the close).
fn until_closed(ev: &mut EventLoop, token: Token, what: &str) {
    run_until(ev, what, |ev| !ev.contains(token));
    step(ev, 3);
}

fn reset(peer: std::net::TcpStream) {
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
}

// ---------------------------------------------------------------------------------------
// Rows 1-2: resets.

fn reset_mid_read(backend: Backend) {
    let _fds = shared_fds();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let (server, mut peer) = tcp_pair();
    let (d, probe) = rec(Script {
        chunk: 1000,
        amplify: 1,
        ..Script::default()
    });
    let token = ev.add(Channel::from_socket(server).unwrap(), d).unwrap();
    peer.write_all(&pattern(200_000)).unwrap();
    run_until(&mut ev, "the server read some", |_| {
        probe.got.borrow().len() >= 50_000
    });
    assert!(
        probe.got.borrow().len() < 200_000,
        "the reset comes with unread data at the server"
    );
    reset(peer);
    until_closed(&mut ev, token, "the reset channel closed");
    assert_eq!(probe.log.entries(), ["close"], "one close, no error");
    assert!(
        *probe.got.borrow() == pattern(probe.got.borrow().len()),
        "what arrived is an exact prefix"
    );
    canary.still_serves(&mut ev);
    assert_eq!(ev.len(), 1);
}

fn reset_mid_write(backend: Backend) {
    let _fds = shared_fds();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let (server, mut peer) = tcp_pair();
    let (d, probe) = rec(Script::default());
    let token = ev.add(Channel::from_socket(server).unwrap(), d).unwrap();
    let head = pattern(64 * 1024);
    let ch = ev.channel_mut(token).unwrap();
    ch.push(&head).unwrap();
    ch.push_vec(vec![0x5a; 16 << 20]).unwrap();
    step(&mut ev, 2);
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = vec![0u8; head.len()];
    peer.read_exact(&mut buf).unwrap();
    assert!(buf == head);
    step(&mut ev, 2);
    let queued = ev.channel(token).unwrap().pending_output();
    assert!(queued > 0, "still sending when the reset comes");
    reset(peer);
    until_closed(&mut ev, token, "the reset channel closed");
    assert_eq!(probe.log.entries(), ["close"], "one close, no error");
    let at_close = probe.pending_at_close.get().unwrap();
    assert!(
        at_close > 0 && at_close <= queued,
        "handle_close sees the unsent bytes: {at_close} (queued before the reset: {queued})"
    );
    canary.still_serves(&mut ev);
}

// ---------------------------------------------------------------------------------------
// Row 3: half-close, both ways.

fn peer_half_close(backend: Backend) {
    let _fds = shared_fds();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let (server, mut client) = tcp_pair();
    let (d, probe) = rec(Script {
        amplify: 1,
        keep_on_eof: true,
        ..Script::default()
    });
    let token = ev.add(Channel::from_socket(server).unwrap(), d).unwrap();
    client.write_all(b"request").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    run_until(&mut ev, "handle_eof", |_| probe.log.has("eof"));
    let reads = probe.reads.get();
    step(&mut ev, 10);
    assert_eq!(probe.log.entries(), ["eof"], "handle_eof once, no close");
    assert_eq!(probe.reads.get(), reads, "no read after end of file");
    assert_eq!(*probe.got.borrow(), b"request");
    canary.echo(&mut ev);
    // Still open for output.
    ev.channel_mut(token)
        .unwrap()
        .push(b" + late reply")
        .unwrap();
    client.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    run_until(&mut ev, "echo and late reply", |_| {
        read_available(&mut client, &mut got);
        got.len() >= 20
    });
    assert_eq!(got, b"request + late reply");
    ev.channel_mut(token).unwrap().request_close();
    until_closed(&mut ev, token, "the close");
    assert_eq!(probe.log.entries(), ["eof", "close"]);
    canary.still_serves(&mut ev);
}

fn own_half_close(backend: Backend) {
    let _fds = shared_fds();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let (server, mut client) = tcp_pair();
    let (d, probe) = rec(Script::default());
    let token = ev.add(Channel::from_socket(server).unwrap(), d).unwrap();
    let ch = ev.channel_mut(token).unwrap();
    ch.push(b"goodbye").unwrap();
    ch.shutdown(Shutdown::Write).unwrap();
    client.set_nonblocking(true).unwrap();
    let mut from_server = Vec::new();
    run_until(&mut ev, "EOF at the client", |_| {
        read_available(&mut client, &mut from_server)
    });
    assert_eq!(from_server, b"goodbye");
    let data = pattern(256 * 1024);
    let mut sent = 0;
    run_until(&mut ev, "the server read everything", |_| {
        write_available(&mut client, &data, &mut sent);
        probe.got.borrow().len() == data.len()
    });
    assert!(*probe.got.borrow() == data, "byte-exact");
    assert!(probe.log.entries().is_empty(), "{:?}", probe.log.entries());
    canary.echo(&mut ev);
    client.shutdown(Shutdown::Write).unwrap();
    until_closed(&mut ev, token, "the close");
    assert_eq!(probe.log.entries(), ["eof", "close"]);
    canary.still_serves(&mut ev);
}

// ---------------------------------------------------------------------------------------
// Rows 4-6: connects that fail.

fn dead_addr() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn refused_connect(backend: Backend) {
    let _fds = shared_fds();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let mut ch = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    ch.connect(dead_addr()).unwrap();
    let (d, probe) = rec(Script::default());
    let token = ev.add(ch, d).unwrap();
    until_closed(&mut ev, token, "the refused channel closed");
    assert_eq!(
        probe.log.entries(),
        [errno(Errno::CONNREFUSED), "close".into()]
    );
    canary.still_serves(&mut ev);
}

/// A multicast destination: Linux refuses a TCP connect to it with `ENETUNREACH` at once,
/// whatever the routing table holds.
const MULTICAST: &str = "224.0.0.1:9";

/// Connects from inside `handle_read`, as a proxy would, and returns the error.
struct Dialer {
    to: SockAddr,
    log: Log,
}

impl Dispatcher for Dialer {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 64];
        ctx.recv(&mut buf)?;
        let mut out = Channel::create_socket(Domain::IPV4, Type::STREAM)?;
        out.connect(self.to.clone())?;
        ctx.handle().add(
            out,
            Echo {
                log: self.log.clone(),
                name: "unexpected",
            },
        )?;
        Ok(())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log
            .push(format!("error:{}", err.raw_os_error().unwrap_or(-1)));
        Err(err)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("close");
        ctx.close();
        Ok(())
    }
}

fn unreachable_connect(backend: Backend) {
    let _fds = shared_fds();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let multicast: std::net::SocketAddr = MULTICAST.parse().unwrap();

    let mut ch = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    let err = ch
        .connect(multicast)
        .expect_err("no route to a multicast address");
    assert_eq!(Errno::from_io_error(&err), Some(Errno::NETUNREACH), "{err}");
    assert_eq!(ch.state(), sockloop::State::Unconnected);

    let mut ch = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    let v6: std::net::SocketAddr = "[::1]:9".parse().unwrap();
    let err = ch
        .connect(v6)
        .expect_err("an IPv6 address on an IPv4 socket");
    assert_eq!(
        Errno::from_io_error(&err),
        Some(Errno::AFNOSUPPORT),
        "{err}"
    );
    assert_eq!(ch.state(), sockloop::State::Unconnected);

    // The same failure inside a hook: handle_error with the errno, then handle_close.
    let log = Log::default();
    let (dialer, mut trigger) = unix_channel();
    let token = ev
        .add(
            dialer,
            Dialer {
                to: multicast.into(),
                log: log.clone(),
            },
        )
        .unwrap();
    trigger.write_all(b"dial").unwrap();
    until_closed(&mut ev, token, "the dialer closed");
    assert_eq!(log.entries(), [errno(Errno::NETUNREACH), "close".into()]);
    canary.still_serves(&mut ev);
    assert_eq!(ev.len(), 1, "no channel was added for the failed connect");
}

fn connect_timeout(backend: Backend) {
    let _fds = shared_fds();
    let Some((_listener, _queued, addr)) = full_listener() else {
        util::skip("could not fill a backlog-0 accept queue on loopback");
        return;
    };
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let timeout = Duration::from_millis(100);
    let mut ch = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    ch.set_connect_timeout(Some(timeout));
    let start = Instant::now();
    ch.connect(addr).unwrap();
    let (d, probe) = rec(Script::default());
    let token = ev.add(ch, d).unwrap();
    until_closed(&mut ev, token, "the connect timeout");
    assert_eq!(probe.log.entries(), ["timeout:Connect", "close"]);
    assert!(probe.timeouts.borrow()[0] >= start + timeout, "never early");
    assert_eq!(ev.timers(), 0, "no timer left");
    canary.still_serves(&mut ev);
}

// ---------------------------------------------------------------------------------------
// Rows 7-8: slow peers.

fn slow_reader_bounded(backend: Backend) {
    const HIGH: usize = 256 * 1024;
    const READ: usize = 1000;
    const AMP: usize = 100;
    const REQUEST: usize = 30_000; // 3 MB of replies: far beyond the socket buffers
    let _fds = shared_fds();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let (server, mut client) = tcp_pair();
    // Small socket buffers, so 3 MB of replies cannot hide in them.
    socket2::SockRef::from(&server)
        .set_send_buffer_size(32 * 1024)
        .unwrap();
    socket2::SockRef::from(&client)
        .set_recv_buffer_size(32 * 1024)
        .unwrap();
    let (d, probe) = rec(Script {
        chunk: READ,
        amplify: AMP,
        high_water: Some(HIGH),
        ..Script::default()
    });
    let token = ev.add(Channel::from_socket(server).unwrap(), d).unwrap();
    let request = pattern(REQUEST);
    client.write_all(&request).unwrap();
    // Until reading stops: 20 iterations without a read while input is left.
    let mut quiet = 0;
    let mut reads = 0;
    run_until(&mut ev, "reading paused", |_| {
        if probe.reads.get() == reads {
            quiet += 1;
        } else {
            (reads, quiet) = (probe.reads.get(), 0);
        }
        quiet >= 20
    });
    let read = probe.got.borrow().len();
    assert!(
        read < REQUEST,
        "it stopped reading ({read} of {REQUEST} bytes)"
    );
    assert!(ev.channel(token).unwrap().pending_output() >= HIGH);
    canary.echo(&mut ev);
    step(&mut ev, 10);
    assert_eq!(probe.got.borrow().len(), read, "no read while paused");
    let max = probe.max_pending.get();
    assert!(
        max <= HIGH + READ * AMP,
        "the queue grew to {max} (limit {HIGH} + one read's replies {})",
        READ * AMP
    );
    // The peer reads: every reply comes, in order.
    client.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    run_until(&mut ev, "all replies", |_| {
        read_available(&mut client, &mut got);
        got.len() >= REQUEST * AMP
    });
    let expect: Vec<u8> = request
        .iter()
        .flat_map(|&b| std::iter::repeat_n(b, AMP))
        .collect();
    assert!(got == expect, "every reply, in order");
    assert!(probe.max_pending.get() <= HIGH + READ * AMP);
    assert!(probe.log.entries().is_empty(), "{:?}", probe.log.entries());
    canary.still_serves(&mut ev);
}

fn slow_writer_idle(backend: Backend) {
    const IDLE: Duration = Duration::from_millis(150);
    let _fds = shared_fds();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let (server, _silent) = tcp_pair();
    let mut ch = Channel::from_socket(server).unwrap();
    ch.set_idle_timeout(Some(IDLE));
    let (d, probe) = rec(Script::default());
    let start = Instant::now();
    let token = ev.add(ch, d).unwrap();
    // The canary is busy all along; that is no activity on the silent channel.
    let deadline = start + Duration::from_secs(5);
    for _ in 0..100_000 {
        if !ev.contains(token) || Instant::now() > deadline {
            break;
        }
        canary.echo(&mut ev);
    }
    step(&mut ev, 3);
    assert!(!ev.contains(token), "the idle channel closed");
    assert_eq!(probe.log.entries(), ["timeout:Idle", "close"]);
    assert!(probe.timeouts.borrow()[0] >= start + IDLE, "never early");
    assert_eq!(ev.timers(), 0, "no timer left");
    canary.still_serves(&mut ev);
}

// ---------------------------------------------------------------------------------------
// Rows 9-11: errors and panics in hooks and predicates.

/// A unix-pair channel with `script`, its peer, after one good echo.
fn armed(ev: &mut EventLoop, fail: Fail) -> (Token, UnixStream, Rc<Probe>) {
    let (ch, mut peer) = unix_channel();
    let (d, probe) = rec(Script {
        amplify: 1,
        fail: Some(fail),
        ..Script::default()
    });
    let token = ev.add(ch, d).unwrap();
    peer.write_all(b"hello").unwrap();
    let mut got = Vec::new();
    run_until(ev, "the first echo", |_| {
        read_available(&mut peer, &mut got);
        got.len() >= 5
    });
    (token, peer, probe)
}

/// Steps until the peer sees end of file (its channel's descriptor is closed).
fn peer_sees_eof(ev: &mut EventLoop, peer: &mut UnixStream) {
    let mut rest = Vec::new();
    run_until(ev, "the peer saw end of file", |_| {
        read_available(peer, &mut rest)
    });
}

fn hook_error(backend: Backend) {
    let _fds = shared_fds();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let (token, mut peer, probe) = armed(&mut ev, Fail::Error);
    peer.write_all(b"boom").unwrap();
    until_closed(&mut ev, token, "the failing channel closed");
    assert_eq!(probe.log.entries(), ["error:other", "close"]);
    peer_sees_eof(&mut ev, &mut peer);
    canary.still_serves(&mut ev);
}

fn hook_error_swallowed(backend: Backend) {
    let _fds = shared_fds();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let (token, mut peer, probe) = armed(&mut ev, Fail::SwallowedError);
    peer.write_all(b"boom").unwrap();
    run_until(&mut ev, "handle_error", |_| probe.log.has("error:other"));
    step(&mut ev, 3);
    assert!(ev.contains(token), "the channel stays");
    peer.write_all(b"still here").unwrap();
    let mut got = Vec::new();
    run_until(&mut ev, "the echo after the error", |_| {
        read_available(&mut peer, &mut got);
        got.len() >= 10
    });
    assert_eq!(got, b"still here");
    assert_eq!(probe.log.entries(), ["error:other"]);
    canary.still_serves(&mut ev);
}

fn hook_panic(backend: Backend) {
    let _fds = shared_fds();
    capture_logs();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let (token, mut peer, probe) = armed(&mut ev, Fail::Panic);
    let needle = "boom in handle_read; closing the channel";
    let before = errors_logged(needle);
    peer.write_all(b"boom").unwrap();
    until_closed(&mut ev, token, "the panicking channel closed");
    assert_eq!(
        probe.log.entries(),
        ["close"],
        "one handle_close (the cleanup call), no handle_error, after a panic"
    );
    assert_eq!(
        errors_logged(needle) - before,
        1,
        "the panic was logged once, with its message"
    );
    peer_sees_eof(&mut ev, &mut peer);
    canary.still_serves(&mut ev);
}

fn predicate_panics(backend: Backend) {
    let _fds = shared_fds();
    capture_logs();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let needle = "closing the channel";
    let before = errors_logged(needle);
    let (r, mut r_peer, r_probe) = armed(&mut ev, Fail::PanicInReadable);
    let (w, mut w_peer, w_probe) = armed(&mut ev, Fail::PanicInWritable);
    r_peer.write_all(b"boom").unwrap();
    w_peer.write_all(b"boom").unwrap();
    run_until(&mut ev, "both closed", |ev| {
        !ev.contains(r) && !ev.contains(w)
    });
    step(&mut ev, 3);
    assert_eq!(r_probe.log.entries(), ["close"], "one cleanup call");
    assert_eq!(w_probe.log.entries(), ["close"], "one cleanup call");
    assert_eq!(errors_logged(needle) - before, 2, "each panic logged once");
    peer_sees_eof(&mut ev, &mut r_peer);
    peer_sees_eof(&mut ev, &mut w_peer);
    canary.still_serves(&mut ev);
}

// ---------------------------------------------------------------------------------------
// Row 12: a descriptor closed behind the loop's back.

/// Puts `/dev/null` on descriptor number `fd` if (and only if) it is free, and leaves it
/// there: the channel that owned the number owns it again, so its own close is no
/// double close. Safe code: `fcntl_dupfd_cloexec` returns the lowest free number ≥ `fd`.
fn reoccupy(fd: RawFd) {
    use std::os::fd::AsRawFd;
    let null = std::fs::File::open("/dev/null").unwrap();
    if null.as_raw_fd() == fd {
        // The lowest free number was `fd` itself.
        std::mem::forget(null);
        return;
    }
    let dup = rustix::io::fcntl_dupfd_cloexec(null.as_fd(), fd).unwrap();
    if dup.as_raw_fd() == fd {
        std::mem::forget(dup);
    }
}

/// Re-occupies its descriptor's number before closing (see [`reoccupy`]).
struct Victim {
    fd: RawFd,
    inner: Rec,
}

impl Dispatcher for Victim {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.inner.handle_read(ctx)
    }
    fn handle_error(&mut self, ctx: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.inner.handle_error(ctx, err)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        reoccupy(self.fd);
        self.inner.handle_close(ctx)
    }
}

fn fd_closed_behind_back(backend: Backend) {
    let _fds = exclusive_fds();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let (ch, mut peer) = unix_channel();
    let fd = ch.raw_fd().unwrap();
    let (inner, probe) = rec(Script::default());
    let token = ev.add(ch, Victim { fd, inner }).unwrap();
    step(&mut ev, 2);
    // SAFETY: closes a descriptor the channel owns, which is the fault under test. This
    // binary's descriptor lock is held exclusively, so no other test can be handed the
    // number before `reoccupy` puts `/dev/null` back on it (in `handle_close`, or below
    // if the loop never noticed); the channel's own close then closes that instead.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    // Activity, for a backend that would still report the (gone) socket.
    let _ = peer.write_all(b"anyone there?");
    let deadline = Instant::now() + Duration::from_secs(2);
    while ev.contains(token) && Instant::now() < deadline {
        ev.poll_once(Some(STEP))
            .expect("poll_once with a closed descriptor");
    }
    let noticed = !ev.contains(token);
    if backend == Backend::Epoll {
        // Documented (Backend::Epoll): the kernel drops the registration with the file
        // and reports nothing; the channel lingers until closed through the loop.
        assert!(!noticed, "epoll reported a descriptor it cannot see");
        reoccupy(fd);
        assert!(ev.close(token));
        assert!(probe.log.entries().is_empty());
    } else {
        assert!(noticed, "the loop never noticed the closed descriptor");
        step(&mut ev, 3);
        assert_eq!(probe.log.entries(), ["close"]);
    }
    peer_sees_eof(&mut ev, &mut peer);
    canary.still_serves(&mut ev);
}

// ---------------------------------------------------------------------------------------
// Row 16: a zero-length datagram.

#[derive(Default)]
struct DatagramProbe {
    got: RefCell<Vec<(Vec<u8>, std::net::SocketAddr)>>,
    reads: Cell<usize>,
    closed: Cell<bool>,
}

struct Datagrams(Rc<DatagramProbe>);

impl Dispatcher for Datagrams {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.0.reads.set(self.0.reads.get() + 1);
        let mut buf = [0u8; 1500];
        loop {
            let (n, from) = match ctx.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            };
            let from = from.as_socket().unwrap();
            self.0.got.borrow_mut().push((buf[..n].to_vec(), from));
        }
        assert!(!ctx.is_eof(), "an empty datagram is no end of file");
        Ok(())
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.0.closed.set(true);
        ctx.close();
        Ok(())
    }
}

fn zero_length_datagram(backend: Backend) {
    let _fds = shared_fds();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let mut ch = Channel::create_socket(Domain::IPV4, Type::DGRAM).unwrap();
    ch.bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
        .unwrap();
    let addr = ch.local_inet_addr().unwrap();
    let probe = Rc::new(DatagramProbe::default());
    let token = ev.add(ch, Datagrams(probe.clone())).unwrap();
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let from = sender.local_addr().unwrap();
    assert_eq!(sender.send_to(b"", addr).unwrap(), 0);
    run_until(&mut ev, "the empty datagram", |_| {
        !probe.got.borrow().is_empty()
    });
    assert!(probe.reads.get() >= 1, "handle_read ran");
    sender.send_to(b"next", addr).unwrap();
    run_until(&mut ev, "the next datagram", |_| {
        probe.got.borrow().len() >= 2
    });
    step(&mut ev, 3);
    assert_eq!(
        *probe.got.borrow(),
        [(Vec::new(), from), (b"next".to_vec(), from)]
    );
    assert!(!probe.closed.get() && ev.contains(token), "no close");
    canary.still_serves(&mut ev);
}

// ---------------------------------------------------------------------------------------
// Row 17: a signal while the loop waits.

fn signal_during_wait(backend: Backend) {
    let _fds = shared_fds();
    let _signals = serial_signals();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let handled: Rc<RefCell<Vec<Instant>>> = Rc::default();
    let h = handled.clone();
    ev.add_signal_handler(sockloop::signal::SIGUSR2, move |_, sig| {
        assert_eq!(sig, sockloop::signal::SIGUSR2);
        h.borrow_mut().push(Instant::now());
    })
    .unwrap();
    let fired: Rc<Cell<Option<Instant>>> = Rc::default();
    let f = fired.clone();
    let start = Instant::now();
    ev.call_later(Duration::from_millis(300), move |_, _| {
        f.set(Some(Instant::now()))
    });
    let raiser = thread::spawn(|| {
        thread::sleep(Duration::from_millis(100));
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::USR2)
            .unwrap();
    });
    let mut iterations = 0;
    while fired.get().is_none() && iterations < 10 {
        let n = ev.poll_once(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(n, 0, "no channel event: the signal is not one");
        iterations += 1;
    }
    raiser.join().unwrap();
    let fired = fired.get().expect("the timer fired");
    assert!(fired >= start + Duration::from_millis(300), "not early");
    assert!(
        fired < start + Duration::from_millis(1500),
        "on time, not at the end of the 2 s wait: {:?}",
        fired - start
    );
    assert_eq!(handled.borrow().len(), 1, "the handler ran once");
    assert!(
        handled.borrow()[0] < start + Duration::from_millis(300),
        "the signal woke the wait (handler at {:?})",
        handled.borrow()[0] - start
    );
    assert!(iterations <= 3, "{iterations} iterations");
    assert!(canary.log.entries().is_empty(), "no spurious canary event");
    canary.still_serves(&mut ev);
    assert!(ev.remove_signal_handler(sockloop::signal::SIGUSR2));
}

/// Row 17b: `EINTR` for real. A signal whose handler has nothing to do with the loop
/// (signal-hook's flag handler for SIGUSR1) is sent with `pthread_kill` to the loop
/// thread, every 40 ms, while it sleeps in `poll_once(Some(600 ms))` with one idle
/// channel registered. Each arrival interrupts the wait; the loop must retry with the
/// time that remains: `poll_once` returns `Ok(0)` after 600 ms (never earlier: an
/// `EINTR` is not a timeout) and long before 600 ms after the last signal (the signals go
/// on for up to 3 s, so a retry with the whole timeout again would return after them).
fn eintr_retried_with_remaining_time(backend: Backend) {
    use std::os::unix::thread::JoinHandleExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};

    const WAIT: Duration = Duration::from_millis(600);
    let _fds = shared_fds();
    let _signals = serial_signals();
    let arrived = Arc::new(AtomicBool::new(false));
    let id = signal_hook::flag::register(sockloop::signal::SIGUSR1, Arc::clone(&arrived)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let d = Arc::clone(&done);
    let a = Arc::clone(&arrived);
    let looper = thread::spawn(move || {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        let mut canary = Canary::add(&mut ev);
        ready_tx.send(()).unwrap();
        // Wait for the first arrival, so the measured wait below is interrupted for sure.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !a.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "no SIGUSR1 reached the loop thread"
            );
            assert_eq!(ev.poll_once(Some(STEP)).unwrap(), 0);
        }
        let start = Instant::now();
        let n = ev.poll_once(Some(WAIT));
        let took = start.elapsed();
        d.store(true, Ordering::SeqCst);
        assert_eq!(
            n.expect("EINTR is retried, not returned"),
            0,
            "no channel event"
        );
        assert!(canary.log.entries().is_empty(), "no spurious canary event");
        canary.still_serves(&mut ev);
        took
    });
    ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let start = Instant::now();
    let mut sent = 0;
    while !done.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(3) {
        // SAFETY: the pthread_t of a thread that is not joined yet (we hold its handle
        // and join it below), so it names a live or finished-but-unjoined thread.
        let rc = unsafe { libc::pthread_kill(looper.as_pthread_t(), libc::SIGUSR1) };
        assert_eq!(rc, 0, "pthread_kill");
        sent += 1;
        thread::sleep(Duration::from_millis(40));
    }
    let took = looper.join().unwrap();
    assert!(signal_hook::low_level::unregister(id));
    assert!(sent >= 10, "{sent} signals sent");
    assert!(
        took >= WAIT,
        "EINTR is not a timeout: returned after {took:?}"
    );
    assert!(
        took < Duration::from_millis(1500),
        "the wait was retried with the whole timeout: returned after {took:?} ({sent} signals)"
    );
}

// ---------------------------------------------------------------------------------------
// Row 19: a hook adds 1,000 channels at once.

const MANY: usize = 1000;

#[derive(Default)]
struct Crowd {
    iteration: Cell<usize>,
    /// (channel number, iteration) of every read.
    reads: RefCell<Vec<(usize, usize)>>,
    closes: RefCell<Vec<usize>>,
    added_at: Cell<Option<usize>>,
    peers: RefCell<Vec<UnixStream>>,
}

struct Member {
    n: usize,
    crowd: Rc<Crowd>,
}

impl Dispatcher for Member {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 64];
        let len = ctx.recv(&mut buf)?;
        if len > 0 {
            self.crowd
                .reads
                .borrow_mut()
                .push((self.n, self.crowd.iteration.get()));
            ctx.push(&buf[..len])?;
        }
        Ok(())
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.crowd.closes.borrow_mut().push(self.n);
        ctx.close();
        Ok(())
    }
}

/// On its first input, adds [`MANY`] socketpair channels, each with a message waiting.
struct Spawner(Rc<Crowd>);

impl Dispatcher for Spawner {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 64];
        ctx.recv(&mut buf)?;
        if self.0.added_at.get().is_some() {
            return Ok(());
        }
        for n in 0..MANY {
            let (ch, mut peer) = unix_channel();
            peer.write_all(format!("member {n}").as_bytes())?;
            ctx.handle().add(
                ch,
                Member {
                    n,
                    crowd: self.0.clone(),
                },
            )?;
            self.0.peers.borrow_mut().push(peer);
        }
        self.0.added_at.set(Some(self.0.iteration.get()));
        Ok(())
    }
}

fn thousand_channels_from_hook(backend: Backend) {
    let _fds = shared_fds();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut canary = Canary::add(&mut ev);
    let crowd = Rc::new(Crowd::default());
    let (ch, mut trigger) = unix_channel();
    ev.add(ch, Spawner(crowd.clone())).unwrap();
    trigger.write_all(b"go").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while crowd.reads.borrow().len() < MANY {
        assert!(
            Instant::now() < deadline,
            "{} of {MANY} served",
            crowd.reads.borrow().len()
        );
        crowd.iteration.set(crowd.iteration.get() + 1);
        ev.poll_once(Some(STEP)).unwrap();
    }
    step(&mut ev, 3);
    let added_at = crowd.added_at.get().expect("the hook added them");
    let reads = crowd.reads.borrow().clone();
    assert_eq!(reads.len(), MANY, "each read exactly once");
    let mut seen = vec![false; MANY];
    for &(n, at) in &reads {
        assert!(!seen[n], "channel {n} read twice");
        seen[n] = true;
        assert!(
            at > added_at,
            "channel {n} served in the iteration that added it"
        );
    }
    assert_eq!(ev.len(), MANY + 2);
    canary.echo(&mut ev);
    // Every echo arrived, and every close is delivered once.
    let mut peers = std::mem::take(&mut *crowd.peers.borrow_mut());
    for (n, peer) in peers.iter_mut().enumerate() {
        peer.set_nonblocking(false).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let want = format!("member {n}");
        let mut got = vec![0u8; want.len()];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(got, want.as_bytes());
    }
    drop(peers);
    run_until(&mut ev, "every member closed", |_| {
        crowd.closes.borrow().len() >= MANY
    });
    step(&mut ev, 3);
    let mut closes = crowd.closes.borrow().clone();
    closes.sort_unstable();
    assert_eq!(closes, (0..MANY).collect::<Vec<_>>(), "each closed once");
    assert_eq!(ev.len(), 2);
    canary.still_serves(&mut ev);
}

backend_tests!(
    reset_mid_read,
    reset_mid_write,
    peer_half_close,
    own_half_close,
    refused_connect,
    unreachable_connect,
    connect_timeout,
    slow_reader_bounded,
    slow_writer_idle,
    hook_error,
    hook_error_swallowed,
    hook_panic,
    predicate_panics,
    zero_length_datagram,
    signal_during_wait,
    eintr_retried_with_remaining_time,
    thousand_channels_from_hook,
    fd_closed_behind_back,
);
