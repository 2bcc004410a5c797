//! Soak-test client for sockloop's example servers (driven by `soak/run.sh`).
//!
//! One single-threaded mio event loop drives every connection, so 1,000 long-lived
//! connections plus churn fit in one process on a small machine.
//!
//! `--mode echo` (against `examples/echo_server.rs`):
//! * `--conns N` long-lived connections (default 1000). Each sends one message of random
//!   length (log-uniform in 1..=`--max-msg`), waits for its whole echo, pauses a random
//!   0..2x`--think-ms` (default 100; 0 = none, i.e. flat-out ping-pong), and repeats.
//!   Each connection's bytes are a window into a shared pseudo-random table at an offset
//!   derived from the connection id, so every echoed byte is checked, and dropped,
//!   duplicated, reordered or cross-connection bytes show up as `bytes_mismatched` (or
//!   `bytes_lost` if they never come back).
//! * `--churn N` short connections in total (default 100000), started at an even pace
//!   over the run with at most `--churn-concurrency` open at once: connect, one verified
//!   echo of 1..=2048 bytes, close.
//!
//! `--mode chat` (against `examples/chat_server/`):
//! * `--slow N` slow-loris clients (default 1000): after the welcome line each sends one
//!   byte per second (letters only, never a line terminator) and reads and discards
//!   everything it is sent. Disconnects by the server are counted, not errors.
//! * `--talkers N` normal clients (default 10): `/nick tI`, then a line
//!   `m I SEQ PAYLOAD` every ~`--talk-ms` ms. Every talker checks that it receives
//!   every other talker's lines, complete and in order.
//! * `--churn N` normal short clients (default 2000): connect, welcome, `/who` ->
//!   `users: ...`, `/quit` -> `bye`, then the server closes.
//!
//! Timeline: setup (open the long-lived / slow / talker connections), then `--duration`
//! seconds of load (the first `--warmup-frac` of it is warm-up), then a drain phase (no new
//! long-lived messages or talker lines; every echo, churn connection and chat line still
//! outstanding must arrive within `--drain-timeout`), then every socket is closed.
//!
//! With `--server-pid` the server's open descriptors (/proc/PID/fd) and VmRSS are sampled
//! every `--sample-ms` and at each phase change, into `--csv` if given; the values at the
//! end of warm-up and at the end of the load are in the summary.
//!
//! Output: one JSON object on stdout. Exit status 0 when the run completed (pass/fail is
//! judged by the caller from the JSON), 2 for bad arguments, 3 if setup timed out.

#[path = "../common.rs"]
mod common;
use common::{jnum, raise_nofile, token, untoken, Pattern, PAT_EXTRA};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------- arguments

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Echo,
    Chat,
}

struct Args {
    mode: Mode,
    addr: SocketAddr,
    duration: f64,
    warmup_frac: f64,
    conns: usize,
    max_msg: usize,
    churn: u64,
    churn_concurrency: usize,
    think_ms: u64,
    slow: usize,
    talkers: usize,
    talk_ms: u64,
    server_pid: Option<u32>,
    csv: Option<String>,
    sample_ms: u64,
    drain_timeout: f64,
    setup_timeout: f64,
    seed: u64,
}

const USAGE: &str = "usage: soak --mode echo|chat --addr HOST:PORT [--duration SECS] \
[--warmup-frac F] [--conns N] [--max-msg BYTES] [--think-ms MS] [--churn N] [--churn-concurrency N] \
[--slow N] [--talkers N] [--talk-ms MS] [--server-pid PID] [--csv PATH] [--sample-ms MS] \
[--drain-timeout SECS] [--setup-timeout SECS] [--seed N]";

fn die(msg: &str) -> ! {
    eprintln!("soak: {msg}\n{USAGE}");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut mode = None;
    let mut addr = None;
    let mut a = Args {
        mode: Mode::Echo,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        duration: 600.0,
        warmup_frac: 0.2,
        conns: 1000,
        max_msg: 65536,
        churn: 0,
        churn_concurrency: 64,
        think_ms: 100,
        slow: 1000,
        talkers: 10,
        talk_ms: 250,
        server_pid: None,
        csv: None,
        sample_ms: 1000,
        drain_timeout: 60.0,
        setup_timeout: 60.0,
        seed: 0x5eed,
    };
    let mut churn = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (flag, None),
        };
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let val = inline
            .or_else(|| it.next())
            .unwrap_or_else(|| die(&format!("{flag} needs a value")));
        fn num<T: std::str::FromStr>(flag: &str, v: &str) -> T {
            v.parse()
                .unwrap_or_else(|_| die(&format!("bad value for {flag}: {v}")))
        }
        match flag.as_str() {
            "--mode" => {
                mode = Some(match val.as_str() {
                    "echo" => Mode::Echo,
                    "chat" => Mode::Chat,
                    _ => die(&format!("unknown mode {val}")),
                })
            }
            "--addr" => addr = Some(num::<SocketAddr>(&flag, &val)),
            "--duration" => a.duration = num(&flag, &val),
            "--warmup-frac" => a.warmup_frac = num(&flag, &val),
            "--conns" => a.conns = num(&flag, &val),
            "--max-msg" => a.max_msg = num(&flag, &val),
            "--churn" => churn = Some(num(&flag, &val)),
            "--churn-concurrency" => a.churn_concurrency = num(&flag, &val),
            "--think-ms" => a.think_ms = num(&flag, &val),
            "--slow" => a.slow = num(&flag, &val),
            "--talkers" => a.talkers = num(&flag, &val),
            "--talk-ms" => a.talk_ms = num(&flag, &val),
            "--server-pid" => a.server_pid = Some(num(&flag, &val)),
            "--csv" => a.csv = Some(val),
            "--sample-ms" => a.sample_ms = num(&flag, &val),
            "--drain-timeout" => a.drain_timeout = num(&flag, &val),
            "--setup-timeout" => a.setup_timeout = num(&flag, &val),
            "--seed" => a.seed = num(&flag, &val),
            _ => die(&format!("unknown argument {flag}")),
        }
    }
    a.mode = mode.unwrap_or_else(|| die("--mode is required"));
    a.addr = addr.unwrap_or_else(|| die("--addr is required"));
    a.churn = churn.unwrap_or(match a.mode {
        Mode::Echo => 100_000,
        Mode::Chat => 2_000,
    });
    if a.duration.is_nan() || a.duration <= 0.0 || !(0.0..1.0).contains(&a.warmup_frac) {
        die("--duration must be positive and --warmup-frac in [0, 1)");
    }
    if a.max_msg == 0 || a.max_msg > PAT_EXTRA {
        die(&format!("--max-msg must be in 1..={PAT_EXTRA}"));
    }
    if a.churn > 0 && a.churn_concurrency == 0 {
        die("--churn-concurrency must be positive");
    }
    if a.sample_ms == 0 || a.talk_ms == 0 {
        die("--sample-ms and --talk-ms must be positive");
    }
    a
}

// ------------------------------------------------------------- randomness

/// splitmix64: a seedable generator and a hash for deterministic payloads.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix(self.0)
    }

    /// Uniform in lo..=hi.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// Log-uniform-ish in 1..=max: a random bit width, then a random value below it.
    fn log_len(&mut self, max: usize) -> usize {
        let bits = 64 - (max as u64).leading_zeros() as u64; // max < 2^bits
        let width = self.range(0, bits);
        let len = 1 + self.next() % (1u64 << width);
        (len as usize).min(max)
    }
}

// ------------------------------------------------------------- byte pattern

/// The payload of talker `id`'s line number `seq`: 1..=120 lowercase letters.
fn talk_payload(id: usize, seq: u64) -> Vec<u8> {
    let h = mix((id as u64) << 40 ^ seq);
    let len = 1 + (h % 120) as usize;
    (0..len)
        .map(|i| b'a' + (mix(h ^ i as u64) % 26) as u8)
        .collect()
}

// ------------------------------------------------------------------- /proc

fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn proc_fd_count(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

// -------------------------------------------------------------- connections

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    /// Echo: long-lived, one random-length message in flight.
    Long,
    /// Echo: connect, one echo, close.
    Churn,
    /// Chat: trickles a byte a second, never a line terminator.
    Slow,
    /// Chat: sends numbered lines, checks everyone else's.
    Talker,
    /// Chat: connect, /who, /quit.
    ChatChurn,
}

struct Conn {
    stream: TcpStream,
    gen: u32,
    role: Role,
    /// Talker index (Talker), connection number (others).
    id: u64,
    connected: bool,
    started: Instant,
    // echo
    pat_off: usize,
    sent: u64,
    target: u64,
    recvd: u64,
    // chat
    out: Vec<u8>,
    out_pos: usize,
    line: Vec<u8>,
    step: u8,
    trickled: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Phase {
    Setup,
    Warmup,
    Load,
    Drain,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Setup => "setup",
            Phase::Warmup => "warmup",
            Phase::Load => "load",
            Phase::Drain => "drain",
        }
    }
}

#[derive(Default)]
struct Stats {
    errors: u64,
    // echo
    msgs: u64,
    bytes_sent: u64,
    bytes_verified: u64,
    bytes_mismatched: u64,
    bytes_lost: u64,
    long_failed: u64,
    churn_started: u64,
    churn_completed: u64,
    churn_failed: u64,
    churn_active: usize,
    churn_lat_ns: Vec<u64>,
    // chat
    slow_welcomed: u64,
    slow_failed: u64,
    slow_disconnected: u64,
    slow_disc_after: Vec<f64>,
    slow_bytes: u64,
    talkers_ready: u64,
    talkers_failed: u64,
    talk_lines_sent: u64,
    talk_lines_delivered: u64,
    talk_bad_lines: u64,
}

struct Gen {
    args: Args,
    pat: Pattern,
    rng: Rng,
    poll: Poll,
    slots: Vec<Option<Conn>>,
    free: Vec<usize>,
    next_gen: u32,
    next_id: u64,
    phase: Phase,
    connecting: usize,
    s: Stats,
    timers: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    /// Lines each talker has sent so far.
    talk_sent: Vec<u64>,
    /// `talk_expect[i][j]`: the next line number talker i expects from talker j.
    talk_expect: Vec<Vec<u64>>,
    talk_alive: Vec<bool>,
}

const MAX_CONNECTING: usize = 256;
const READ_BUF: usize = 256 * 1024;
const CHURN_MAX_MSG: usize = 2048;

/// Outcome of handling an event or timer for a connection.
enum Next {
    Keep,
    /// Finished as planned (churn): close it quietly.
    Done,
    /// Failed; the reason is already counted.
    Failed,
    /// Closed by the server where that is allowed (a slow client): already counted.
    Gone,
}

impl Gen {
    fn error(&mut self, what: &str) {
        self.s.errors += 1;
        if self.s.errors <= 10 {
            eprintln!("soak: error: {what}");
        } else if self.s.errors == 11 {
            eprintln!("soak: (further errors not printed)");
        }
    }

    /// Starts a connection; returns false if it failed at once (already counted).
    fn connect(&mut self, role: Role, id: u64) -> bool {
        let mut stream = match TcpStream::connect(self.args.addr) {
            Ok(s) => s,
            Err(e) => {
                self.error(&format!("{role:?} connect: {e}"));
                self.count_failure(role, id);
                return false;
            }
        };
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        self.next_gen = self.next_gen.wrapping_add(1).max(1);
        let gen = self.next_gen;
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            token(slot, gen),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.error(&format!("register: {e}"));
            self.free.push(slot);
            self.count_failure(role, id);
            return false;
        }
        let conn_no = self.next_id;
        self.next_id += 1;
        self.slots[slot] = Some(Conn {
            stream,
            gen,
            role,
            id,
            connected: false,
            started: Instant::now(),
            pat_off: Pattern::conn_offset(conn_no),
            sent: 0,
            target: 0,
            recvd: 0,
            out: Vec::new(),
            out_pos: 0,
            line: Vec::new(),
            step: 0,
            trickled: 0,
        });
        self.connecting += 1;
        true
    }

    /// Accounts a connection that failed (before or after connecting).
    fn count_failure(&mut self, role: Role, id: u64) {
        match role {
            Role::Long => self.s.long_failed += 1,
            Role::Churn | Role::ChatChurn => {
                self.s.churn_failed += 1;
                self.s.churn_active -= 1;
            }
            Role::Slow => self.s.slow_failed += 1,
            Role::Talker => {
                self.s.talkers_failed += 1;
                self.talk_alive[id as usize] = false;
            }
        }
    }

    /// Removes a finished or failed connection from its slot and accounts for it.
    fn finish(&mut self, slot: usize, c: Conn, next: Next) {
        if !c.connected {
            self.connecting -= 1;
        }
        if matches!(c.role, Role::Long | Role::Churn) {
            self.s.bytes_lost += c.sent.saturating_sub(c.recvd);
        }
        match next {
            Next::Keep => unreachable!(),
            Next::Done => {
                self.s.churn_completed += 1;
                self.s.churn_active -= 1;
                self.s
                    .churn_lat_ns
                    .push(c.started.elapsed().as_nanos() as u64);
            }
            Next::Failed => self.count_failure(c.role, c.id),
            Next::Gone => {}
        }
        let mut stream = c.stream;
        let _ = self.poll.registry().deregister(&mut stream);
        drop(stream);
        self.free.push(slot);
    }

    fn schedule(&mut self, at: Instant, slot: usize, gen: u32) {
        self.timers.push(Reverse((at, slot, gen)));
    }

    fn on_event(&mut self, slot: usize, readable: bool, writable: bool, buf: &mut [u8]) {
        let Some(mut c) = self.slots[slot].take() else {
            return;
        };
        match self.drive(slot, &mut c, readable, writable, buf) {
            Next::Keep => self.slots[slot] = Some(c),
            next => self.finish(slot, c, next),
        }
    }

    fn on_timer(&mut self, slot: usize, gen: u32) {
        let Some(mut c) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if c.gen != gen {
            self.slots[slot] = Some(c);
            return;
        }
        let next = match c.role {
            Role::Long if self.phase < Phase::Drain && c.recvd == c.target => {
                let len = self.rng.log_len(self.args.max_msg);
                c.target += len as u64;
                let mut nobuf = [0u8; 0];
                self.drive_echo(slot, &mut c, false, &mut nobuf)
            }
            Role::Slow => {
                let byte = b'a' + (c.trickled % 26) as u8;
                c.trickled += 1;
                self.s.slow_bytes += 1;
                c.out.push(byte);
                self.schedule(Instant::now() + Duration::from_secs(1), slot, gen);
                self.flush_chat(&mut c)
            }
            Role::Talker if self.phase < Phase::Drain => {
                let id = c.id as usize;
                let seq = self.talk_sent[id];
                self.talk_sent[id] += 1;
                self.s.talk_lines_sent += 1;
                let _ = writeln!(
                    LineBuf(&mut c.out),
                    "m {id} {seq} {}",
                    String::from_utf8_lossy(&talk_payload(id, seq))
                );
                let ms = self.args.talk_ms;
                let delay = self.rng.range(ms / 2, ms + ms / 2);
                self.schedule(Instant::now() + Duration::from_millis(delay), slot, gen);
                self.flush_chat(&mut c)
            }
            _ => Next::Keep,
        };
        match next {
            Next::Keep => self.slots[slot] = Some(c),
            next => self.finish(slot, c, next),
        }
    }

    fn drive(
        &mut self,
        slot: usize,
        c: &mut Conn,
        readable: bool,
        writable: bool,
        buf: &mut [u8],
    ) -> Next {
        if !c.connected {
            if !writable && !readable {
                return Next::Keep;
            }
            match c.stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => {
                    self.error(&format!("{:?} connect: {e}", c.role));
                    return Next::Failed;
                }
            }
            match c.stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotConnected => return Next::Keep,
                Err(e) => {
                    self.error(&format!("{:?} connect: {e}", c.role));
                    return Next::Failed;
                }
            }
            c.connected = true;
            self.connecting -= 1;
            let _ = c.stream.set_nodelay(true);
            match c.role {
                Role::Long => {
                    let len = self.rng.log_len(self.args.max_msg);
                    c.target += len as u64;
                }
                Role::Churn => {
                    let len = self.rng.range(1, CHURN_MAX_MSG as u64);
                    c.target += len;
                }
                _ => {}
            }
        }
        match c.role {
            Role::Long | Role::Churn => self.drive_echo(slot, c, readable, buf),
            _ => self.drive_chat(slot, c, readable, buf),
        }
    }

    // ---------------------------------------------------------------- echo

    fn drive_echo(&mut self, slot: usize, c: &mut Conn, readable: bool, buf: &mut [u8]) -> Next {
        if readable {
            loop {
                match c.stream.read(buf) {
                    Ok(0) => {
                        self.error(&format!("{:?}: server closed the connection", c.role));
                        return Next::Failed;
                    }
                    Ok(n) => {
                        if !self.check_echo(c, &buf[..n]) {
                            return Next::Failed;
                        }
                        if c.recvd == c.target {
                            self.s.msgs += 1;
                            if c.role == Role::Churn {
                                return Next::Done;
                            }
                            if self.phase < Phase::Drain {
                                let think = self.args.think_ms;
                                if think == 0 {
                                    let len = self.rng.log_len(self.args.max_msg);
                                    c.target += len as u64;
                                } else {
                                    let ms = self.rng.range(0, 2 * think);
                                    let at = Instant::now() + Duration::from_millis(ms);
                                    self.schedule(at, slot, c.gen);
                                }
                            }
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.error(&format!("{:?} read: {e}", c.role));
                        return Next::Failed;
                    }
                }
            }
        }
        while c.sent < c.target {
            let len = ((c.target - c.sent) as usize).min(PAT_EXTRA);
            let data = self.pat.slice(c.pat_off, c.sent, len);
            match c.stream.write(data) {
                Ok(0) => {
                    self.error("write returned 0");
                    return Next::Failed;
                }
                Ok(n) => {
                    c.sent += n as u64;
                    self.s.bytes_sent += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error(&format!("{:?} write: {e}", c.role));
                    return Next::Failed;
                }
            }
        }
        Next::Keep
    }

    /// Checks echoed bytes; false if any is wrong (counted).
    fn check_echo(&mut self, c: &mut Conn, data: &[u8]) -> bool {
        // Bytes beyond what was sent can't be an echo: all of them mismatch.
        let expected_max = c.sent.saturating_sub(c.recvd) as usize;
        let good_len = data.len().min(expected_max);
        let want = self.pat.slice(c.pat_off, c.recvd, good_len);
        let mut bad = (data.len() - good_len) as u64;
        if &data[..good_len] != want {
            bad += data[..good_len]
                .iter()
                .zip(want)
                .filter(|(a, b)| a != b)
                .count() as u64;
        }
        c.recvd += data.len() as u64;
        if bad > 0 {
            self.s.bytes_mismatched += bad;
            self.s.bytes_verified += data.len() as u64 - bad;
            self.error(&format!("{:?}: {bad} mismatched echo bytes", c.role));
            return false;
        }
        self.s.bytes_verified += data.len() as u64;
        true
    }

    // ---------------------------------------------------------------- chat

    fn flush_chat(&mut self, c: &mut Conn) -> Next {
        while c.out_pos < c.out.len() {
            match c.stream.write(&c.out[c.out_pos..]) {
                Ok(0) => break,
                Ok(n) => c.out_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.chat_lost(c, &format!("write: {e}")),
            }
        }
        if c.out_pos == c.out.len() {
            c.out.clear();
            c.out_pos = 0;
        }
        Next::Keep
    }

    /// The server closed (or reset) a chat connection.
    fn chat_lost(&mut self, c: &mut Conn, how: &str) -> Next {
        match c.role {
            // Not an error once it is in: the server may drop slow clients.
            Role::Slow if c.step > 0 => {
                self.s.slow_disconnected += 1;
                self.s
                    .slow_disc_after
                    .push(c.started.elapsed().as_secs_f64());
                Next::Gone
            }
            Role::ChatChurn if c.step == 3 && how == "eof" => Next::Done,
            _ => {
                self.error(&format!("{:?} {}: connection lost ({how})", c.role, c.id));
                Next::Failed
            }
        }
    }

    fn drive_chat(&mut self, slot: usize, c: &mut Conn, readable: bool, buf: &mut [u8]) -> Next {
        if readable {
            loop {
                match c.stream.read(buf) {
                    Ok(0) => return self.chat_lost(c, "eof"),
                    Ok(n) => {
                        if c.role == Role::Slow {
                            if c.step == 0 {
                                c.step = 1;
                                self.s.slow_welcomed += 1;
                                // Start trickling at a random point within a second.
                                let at =
                                    Instant::now() + Duration::from_millis(self.rng.range(0, 999));
                                self.schedule(at, slot, c.gen);
                            }
                            continue;
                        }
                        let mut start = 0;
                        let data = &buf[..n];
                        while let Some(pos) = data[start..].iter().position(|&b| b == b'\n') {
                            c.line.extend_from_slice(&data[start..start + pos]);
                            start += pos + 1;
                            let line = std::mem::take(&mut c.line);
                            let ok = self.chat_line(slot, c, &line);
                            c.line = line;
                            c.line.clear();
                            if !ok {
                                return Next::Failed;
                            }
                        }
                        c.line.extend_from_slice(&data[start..]);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return self.chat_lost(c, &format!("read: {e}")),
                }
            }
        }
        self.flush_chat(c)
    }

    /// Handles one line (without `\n`) sent to a talker or chat churn client.
    fn chat_line(&mut self, slot: usize, c: &mut Conn, line: &[u8]) -> bool {
        let bad = |g: &mut Gen, c: &Conn, why: &str| {
            g.error(&format!(
                "{:?} {} (step {}): {why}: {:?}",
                c.role,
                c.id,
                c.step,
                String::from_utf8_lossy(&line[..line.len().min(120)])
            ));
            false
        };
        if line.starts_with(b"<") {
            if c.role == Role::Talker && c.step == 2 {
                return self.talk_line(c, line);
            }
            // Other clients' chatter, before a talker is ready or to a churn client.
            return true;
        }
        if line.starts_with(b"* ") {
            return true; // another client's rename (`* OLD is now NEW`)
        }
        match (c.role, c.step) {
            (_, 0) if line.starts_with(b"welcome") => {
                c.step = 1;
                if c.role == Role::Talker {
                    let _ = writeln!(LineBuf(&mut c.out), "/nick t{}", c.id);
                } else {
                    c.out.extend_from_slice(b"/who\n");
                }
                true
            }
            (Role::Talker, 1) if line == b"ok" => {
                c.step = 2;
                self.s.talkers_ready += 1;
                if self.phase > Phase::Setup {
                    self.schedule(Instant::now(), slot, c.gen);
                }
                true
            }
            (Role::ChatChurn, 1) if line.starts_with(b"users: ") => {
                c.step = 2;
                c.out.extend_from_slice(b"/quit\n");
                true
            }
            (Role::ChatChurn, 2) if line == b"bye" => {
                c.step = 3;
                true
            }
            _ => bad(self, c, "unexpected line"),
        }
    }

    /// `<tJ> m J SEQ PAYLOAD` received by talker `c`.
    fn talk_line(&mut self, c: &mut Conn, line: &[u8]) -> bool {
        let me = c.id as usize;
        let parsed = (|| {
            let s = std::str::from_utf8(line).ok()?;
            let (name, rest) = s.strip_prefix("<t")?.split_once("> m ")?;
            let mut f = rest.splitn(3, ' ');
            let j: usize = f.next()?.parse().ok()?;
            let seq: u64 = f.next()?.parse().ok()?;
            let payload = f.next()?;
            (name.parse::<usize>().ok()? == j && j < self.talk_sent.len() && j != me)
                .then(|| (j, seq, payload.as_bytes() == talk_payload(j, seq)))
        })();
        match parsed {
            Some((j, seq, true)) if seq == self.talk_expect[me][j] => {
                self.talk_expect[me][j] += 1;
                self.s.talk_lines_delivered += 1;
                true
            }
            other => {
                self.s.talk_bad_lines += 1;
                let why = match other {
                    Some((j, seq, true)) => format!(
                        "from t{j}: line {seq}, expected {}",
                        self.talk_expect[me][j]
                    ),
                    Some((_, _, false)) => "corrupt payload".to_string(),
                    None => "unparseable".to_string(),
                };
                self.error(&format!(
                    "talker {me}: {why}: {:?}",
                    String::from_utf8_lossy(&line[..line.len().min(120)])
                ));
                false
            }
        }
    }

    // ------------------------------------------------------------- phases

    fn start_churn(&mut self) {
        self.s.churn_started += 1;
        self.s.churn_active += 1;
        let role = match self.args.mode {
            Mode::Echo => Role::Churn,
            Mode::Chat => Role::ChatChurn,
        };
        let id = self.s.churn_started;
        self.connect(role, id);
    }

    fn setup_step(&mut self, started: &mut [usize; 3]) -> bool {
        let (want_long, want_slow, want_talk) = match self.args.mode {
            Mode::Echo => (self.args.conns, 0, 0),
            Mode::Chat => (0, self.args.slow, self.args.talkers),
        };
        while started[0] < want_long && self.connecting < MAX_CONNECTING {
            started[0] += 1;
            self.connect(Role::Long, started[0] as u64);
        }
        while started[0] == want_long && started[1] < want_slow && self.connecting < MAX_CONNECTING
        {
            started[1] += 1;
            self.connect(Role::Slow, started[1] as u64);
        }
        let slow_done = (self.s.slow_welcomed + self.s.slow_failed) as usize >= want_slow;
        while slow_done && started[2] < want_talk && self.connecting < MAX_CONNECTING {
            let id = started[2];
            started[2] += 1;
            self.connect(Role::Talker, id as u64);
        }
        let talk_done = (self.s.talkers_ready + self.s.talkers_failed) as usize >= want_talk;
        started[0] == want_long
            && self.connecting == 0
            && slow_done
            && started[2] == want_talk
            && talk_done
    }

    fn drained(&self) -> bool {
        if self.s.churn_started < self.args.churn || self.s.churn_active > 0 {
            return false;
        }
        let n = self.talk_sent.len();
        for i in (0..n).filter(|&i| self.talk_alive[i]) {
            for j in (0..n).filter(|&j| j != i) {
                if self.talk_expect[i][j] < self.talk_sent[j] {
                    return false;
                }
            }
        }
        self.slots.iter().flatten().all(|c| match c.role {
            Role::Long => c.recvd >= c.target,
            _ => true,
        })
    }

    fn long_alive(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|c| c.role == Role::Long)
            .count()
    }

    fn slow_alive(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|c| c.role == Role::Slow)
            .count()
    }
}

/// `write!` into a byte vector.
struct LineBuf<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for LineBuf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

// ----------------------------------------------------------------- sampling

#[derive(Clone, Copy, Default)]
struct Sample {
    fds: Option<u64>,
    rss_kb: Option<u64>,
    anon_kb: Option<u64>,
}

struct Sampler {
    pid: Option<u32>,
    csv: Option<std::fs::File>,
    t0: Instant,
    next: Instant,
    every: Duration,
    max_rss_kb: u64,
    max_fds: u64,
}

impl Sampler {
    fn sample(&mut self, g: &Gen, label: &str) -> Sample {
        let Some(pid) = self.pid else {
            return Sample::default();
        };
        let s = Sample {
            fds: proc_fd_count(pid),
            rss_kb: proc_status_kb(pid, "VmRSS:"),
            anon_kb: proc_status_kb(pid, "RssAnon:"),
        };
        self.max_rss_kb = self.max_rss_kb.max(s.rss_kb.unwrap_or(0));
        self.max_fds = self.max_fds.max(s.fds.unwrap_or(0));
        if let Some(f) = self.csv.as_mut() {
            let opt = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
            let _ = writeln!(
                f,
                "{:.3},{:.3},{label},{},{},{},{},{},{},{},{}",
                unix_now(),
                self.t0.elapsed().as_secs_f64(),
                opt(s.fds),
                opt(s.rss_kb),
                opt(s.anon_kb),
                g.slots.iter().flatten().count(),
                g.long_alive(),
                g.slow_alive(),
                g.s.churn_completed,
                g.s.bytes_verified,
            );
        }
        s
    }
}

// --------------------------------------------------------------------- main

fn percentile_ms(sorted: &[u64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1] as f64 / 1e6)
}

fn jint(v: Option<u64>) -> String {
    v.map_or("null".to_string(), |v| v.to_string())
}

fn main() {
    let args = parse_args();
    let open = match args.mode {
        Mode::Echo => args.conns,
        Mode::Chat => args.slow + args.talkers,
    };
    raise_nofile("soak", (open + args.churn_concurrency) as u64);
    let talkers = if args.mode == Mode::Chat {
        args.talkers
    } else {
        0
    };
    let mut g = Gen {
        pat: Pattern::new(),
        rng: Rng(args.seed),
        poll: Poll::new().unwrap_or_else(|e| die(&format!("poll: {e}"))),
        slots: Vec::with_capacity(open + args.churn_concurrency),
        free: Vec::new(),
        next_gen: 0,
        next_id: 0,
        phase: Phase::Setup,
        connecting: 0,
        s: Stats::default(),
        timers: BinaryHeap::new(),
        talk_sent: vec![0; talkers],
        talk_expect: vec![vec![0; talkers]; talkers],
        talk_alive: vec![true; talkers],
        args,
    };
    let csv = g.args.csv.as_ref().map(|p| {
        let mut f =
            std::fs::File::create(p).unwrap_or_else(|e| die(&format!("--csv {p}: {e}")));
        let _ = writeln!(
            f,
            "unix_time,t_s,phase,server_fds,server_rss_kb,server_rss_anon_kb,client_conns,long_alive,slow_alive,churn_completed,bytes_verified"
        );
        f
    });
    let t_begin = Instant::now();
    let mut sampler = Sampler {
        pid: g.args.server_pid,
        csv,
        t0: t_begin,
        next: t_begin,
        every: Duration::from_millis(g.args.sample_ms),
        max_rss_kb: 0,
        max_fds: 0,
    };

    let mut events = Events::with_capacity(4096);
    let mut buf = vec![0u8; READ_BUF];
    let mut started = [0usize; 3];
    let mut t_run = t_begin;
    let mut t_drain = t_begin;
    let mut unix_run = 0.0;
    let mut unix_warm = 0.0;
    let mut unix_load_end = 0.0;
    let mut at_start = Sample::default();
    let mut at_warm = Sample::default();
    let mut at_end = Sample::default();
    let mut setup_failed = false;
    let mut drain_timed_out = false;
    let run = Duration::from_secs_f64(g.args.duration);
    let warm = Duration::from_secs_f64(g.args.duration * g.args.warmup_frac);
    let drain_timeout = Duration::from_secs_f64(g.args.drain_timeout);

    loop {
        let now = Instant::now();
        match g.phase {
            Phase::Setup => {
                if g.setup_step(&mut started) {
                    g.phase = Phase::Warmup;
                    t_run = now;
                    unix_run = unix_now();
                    at_start = sampler.sample(&g, "warmup");
                    // Talkers start now, spread over one interval.
                    let ready: Vec<(usize, u32)> = g
                        .slots
                        .iter()
                        .enumerate()
                        .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
                        .filter(|(_, c)| c.role == Role::Talker && c.step == 2)
                        .map(|(i, c)| (i, c.gen))
                        .collect();
                    for (slot, gen) in ready {
                        let delay = g.rng.range(0, g.args.talk_ms);
                        g.schedule(now + Duration::from_millis(delay), slot, gen);
                    }
                    eprintln!(
                        "soak: setup done in {:.2} s; running {:.0} s",
                        now.duration_since(t_begin).as_secs_f64(),
                        g.args.duration
                    );
                    continue;
                }
                if now.duration_since(t_begin).as_secs_f64() > g.args.setup_timeout {
                    eprintln!(
                        "soak: setup timed out: {} connecting, started {started:?}",
                        g.connecting
                    );
                    setup_failed = true;
                    break;
                }
            }
            Phase::Warmup => {
                if now >= t_run + warm {
                    g.phase = Phase::Load;
                    unix_warm = unix_now();
                    at_warm = sampler.sample(&g, "load");
                    continue;
                }
            }
            Phase::Load => {
                if now >= t_run + run {
                    at_end = sampler.sample(&g, "drain");
                    unix_load_end = unix_now();
                    g.phase = Phase::Drain;
                    t_drain = now;
                    continue;
                }
            }
            Phase::Drain => {
                if g.drained() {
                    break;
                }
                if now >= t_drain + drain_timeout {
                    drain_timed_out = true;
                    eprintln!("soak: drain timed out after {:.0} s", g.args.drain_timeout);
                    break;
                }
            }
        }
        // Churn: an even pace over the run, then whatever is left during the drain.
        if g.phase >= Phase::Warmup {
            let due = if g.phase == Phase::Drain {
                g.args.churn
            } else {
                let frac = now.duration_since(t_run).as_secs_f64() / g.args.duration;
                ((g.args.churn as f64 * frac).ceil() as u64).min(g.args.churn)
            };
            while g.s.churn_started < due && g.s.churn_active < g.args.churn_concurrency {
                g.start_churn();
            }
        }
        if now >= sampler.next {
            sampler.next = now + sampler.every;
            sampler.sample(&g, g.phase.name());
        }

        let mut timeout = Duration::from_millis(5);
        if let Some(Reverse((at, _, _))) = g.timers.peek() {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        if let Err(e) = g.poll.poll(&mut events, Some(timeout)) {
            if e.kind() != ErrorKind::Interrupted {
                die(&format!("poll: {e}"));
            }
        }
        for ev in events.iter() {
            let (slot, gen) = untoken(ev.token());
            match g.slots.get(slot) {
                Some(Some(c)) if c.gen == gen => {}
                _ => continue, // stale event for a connection already gone
            }
            let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
            let writable = ev.is_writable() || ev.is_write_closed() || ev.is_error();
            g.on_event(slot, readable, writable, &mut buf);
        }
        let now = Instant::now();
        while let Some(&Reverse((at, slot, gen))) = g.timers.peek() {
            if at > now {
                break;
            }
            g.timers.pop();
            g.on_timer(slot, gen);
        }
    }

    // Whatever is still open counts as lost bytes / unfinished churn.
    let t_close = Instant::now();
    let long_alive_end = g.long_alive() as u64;
    let slow_alive_end = g.slow_alive() as u64;
    let mut unfinished = 0u64;
    for c in g.slots.iter().flatten() {
        match c.role {
            Role::Long => g.s.bytes_lost += c.sent.saturating_sub(c.recvd),
            Role::Churn => {
                g.s.bytes_lost += c.sent.saturating_sub(c.recvd);
                unfinished += 1;
            }
            Role::ChatChurn => unfinished += 1,
            _ => {}
        }
    }
    sampler.sample(&g, "closing");
    g.slots.clear(); // closes every socket
    let hwm = g.args.server_pid.and_then(|p| proc_status_kb(p, "VmHWM:"));

    let mut lat = std::mem::take(&mut g.s.churn_lat_ns);
    lat.sort_unstable();
    let s = &g.s;
    let a = &g.args;
    let mode = match a.mode {
        Mode::Echo => "echo",
        Mode::Chat => "chat",
    };
    let talk_expected: u64 = if talkers > 1 {
        (0..talkers)
            .filter(|&i| g.talk_alive[i])
            .map(|i| {
                (0..talkers)
                    .filter(|&j| j != i)
                    .map(|j| g.talk_sent[j])
                    .sum::<u64>()
            })
            .sum()
    } else {
        0
    };
    let mut disc = s.slow_disc_after.clone();
    disc.sort_by(f64::total_cmp);
    let mut fields: Vec<(&str, String)> = vec![
        ("mode", format!("\"{mode}\"")),
        ("duration_s", format!("{:.3}", a.duration)),
        ("warmup_s", format!("{:.3}", warm.as_secs_f64())),
        ("setup_failed", setup_failed.to_string()),
        ("drain_timed_out", drain_timed_out.to_string()),
        (
            "drain_s",
            format!(
                "{:.3}",
                if g.phase == Phase::Drain {
                    t_close.duration_since(t_drain).as_secs_f64()
                } else {
                    0.0
                }
            ),
        ),
        ("t_run_unix", format!("{unix_run:.3}")),
        ("t_warm_end_unix", format!("{unix_warm:.3}")),
        ("t_load_end_unix", format!("{unix_load_end:.3}")),
        ("errors", s.errors.to_string()),
        ("churn_target", a.churn.to_string()),
        ("churn_started", s.churn_started.to_string()),
        ("churn_completed", s.churn_completed.to_string()),
        ("churn_failed", s.churn_failed.to_string()),
        ("churn_unfinished", unfinished.to_string()),
        ("churn_p50_ms", jnum(percentile_ms(&lat, 0.5))),
        ("churn_p99_ms", jnum(percentile_ms(&lat, 0.99))),
        ("churn_max_ms", jnum(percentile_ms(&lat, 1.0))),
        ("server_fds_start", jint(at_start.fds)),
        ("server_fds_warm_end", jint(at_warm.fds)),
        ("server_fds_load_end", jint(at_end.fds)),
        ("server_fds_max", sampler.max_fds.to_string()),
        ("server_rss_kb_start", jint(at_start.rss_kb)),
        ("server_rss_kb_warm_end", jint(at_warm.rss_kb)),
        ("server_rss_kb_load_end", jint(at_end.rss_kb)),
        ("server_rss_kb_max_sampled", sampler.max_rss_kb.to_string()),
        ("server_rss_anon_kb_warm_end", jint(at_warm.anon_kb)),
        ("server_rss_anon_kb_load_end", jint(at_end.anon_kb)),
        ("server_vmhwm_kb", jint(hwm)),
    ];
    match a.mode {
        Mode::Echo => fields.extend([
            ("conns", a.conns.to_string()),
            ("long_alive_end", long_alive_end.to_string()),
            ("long_failed", s.long_failed.to_string()),
            ("max_msg", a.max_msg.to_string()),
            ("msgs", s.msgs.to_string()),
            ("bytes_sent", s.bytes_sent.to_string()),
            ("bytes_verified", s.bytes_verified.to_string()),
            ("bytes_mismatched", s.bytes_mismatched.to_string()),
            ("bytes_lost", s.bytes_lost.to_string()),
        ]),
        Mode::Chat => fields.extend([
            ("slow", a.slow.to_string()),
            ("slow_welcomed", s.slow_welcomed.to_string()),
            ("slow_failed", s.slow_failed.to_string()),
            ("slow_disconnected", s.slow_disconnected.to_string()),
            ("slow_disconnect_first_s", jnum(disc.first().copied())),
            ("slow_disconnect_last_s", jnum(disc.last().copied())),
            ("slow_alive_end", slow_alive_end.to_string()),
            ("slow_bytes_trickled", s.slow_bytes.to_string()),
            ("talkers", a.talkers.to_string()),
            ("talkers_ready", s.talkers_ready.to_string()),
            ("talkers_failed", s.talkers_failed.to_string()),
            ("talk_lines_sent", s.talk_lines_sent.to_string()),
            ("talk_lines_expected", talk_expected.to_string()),
            ("talk_lines_delivered", s.talk_lines_delivered.to_string()),
            ("talk_bad_lines", s.talk_bad_lines.to_string()),
        ]),
    }
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect();
    println!("{{{}}}", body.join(", "));
    if setup_failed {
        std::process::exit(3);
    }
}
