//! Load generator for the echo-server benchmarks.
//!
//! A single-threaded mio event loop (meant to be pinned to one core) drives
//! every client connection. Each connection sends a deterministic byte stream
//! (a window into a shared pseudo-random table, at an offset derived from the
//! connection id) and checks every echoed byte against it, so dropped,
//! duplicated, reordered or cross-connection bytes all show up as
//! `mismatched_bytes`.
//!
//! Modes:
//! * `pingpong`: `--conns` connections, each keeping `--depth` messages of
//!   `--size` bytes in flight; a new message is sent as soon as one has fully
//!   come back. Latency = send of a message -> last echoed byte of it read.
//! * `bulk`: the same closed loop with large chunks (default `--size 65536`,
//!   `--depth 16`, i.e. up to 1 MiB in flight per connection); read
//!   `mb_per_sec`. Latency is per chunk.
//! * `churn`: `--conns` concurrent slots, each looping: connect, one echo of
//!   `--size` bytes, close. `msgs_per_sec` counts completed connections;
//!   latency is connect start -> echo fully read.
//!
//! `--idle N` opens N extra connections before the run. Each does a one-byte
//! echo (so it is provably accepted and registered by the server, not parked
//! in the listen backlog) and then stays silent for the whole run.
//!
//! Output: one JSON object on stdout. Server figures come from
//! /proc/PID/stat (utime, stime, in clock ticks; ticks/s from the auxv
//! AT_CLKTCK via rustix) sampled at the start and end of the measured window,
//! and from VmHWM in /proc/PID/status at the end. With `--server-cpu` and
//! `--client-cpu` it also reports how busy those CPUs were (from /proc/stat,
//! softirq included), and `other_cpu_util` is the CPU (in cores) used by every
//! other process during the window: a noisy-machine detector.
//!
//! Exit status: 0 after a measured run (errors are reported in the JSON, not
//! by the exit status), 2 for bad arguments, 3 if setup timed out.

#[path = "../common.rs"]
mod common;
use common::{jnum, raise_nofile, token, untoken, Pattern, PAT_EXTRA};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- arguments

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    PingPong,
    Bulk,
    Churn,
}

struct Args {
    addr: SocketAddr,
    conns: usize,
    size: usize,
    depth: usize,
    duration: f64,
    warmup: f64,
    mode: Mode,
    idle: usize,
    server_pid: Option<u32>,
    server_cpu: Option<usize>,
    client_cpu: Option<usize>,
    setup_timeout: f64,
}

const USAGE: &str = "usage: loadgen --addr HOST:PORT [--mode pingpong|bulk|churn] [--conns N] \
[--size BYTES] [--depth K] [--duration SECS] [--warmup SECS] [--idle N] [--server-pid PID] \
[--server-cpu N] [--client-cpu N] [--setup-timeout SECS]";

fn die(msg: &str) -> ! {
    eprintln!("loadgen: {msg}\n{USAGE}");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut addr = None;
    let mut conns = 1usize;
    let mut size = None;
    let mut depth = None;
    let mut duration = 5.0f64;
    let mut warmup = 1.0f64;
    let mut mode = Mode::PingPong;
    let mut idle = 0usize;
    let mut server_pid = None;
    let mut server_cpu = None;
    let mut client_cpu = None;
    let mut setup_timeout = 600.0f64;

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
            "--addr" => addr = Some(num::<SocketAddr>(&flag, &val)),
            "--conns" => conns = num(&flag, &val),
            "--size" => size = Some(num(&flag, &val)),
            "--depth" => depth = Some(num(&flag, &val)),
            "--duration" => duration = num(&flag, &val),
            "--warmup" => warmup = num(&flag, &val),
            "--idle" => idle = num(&flag, &val),
            "--server-pid" => server_pid = Some(num(&flag, &val)),
            "--server-cpu" => server_cpu = Some(num(&flag, &val)),
            "--client-cpu" => client_cpu = Some(num(&flag, &val)),
            "--setup-timeout" => setup_timeout = num(&flag, &val),
            "--mode" => {
                mode = match val.as_str() {
                    "pingpong" => Mode::PingPong,
                    "bulk" => Mode::Bulk,
                    "churn" => Mode::Churn,
                    _ => die(&format!("unknown mode {val}")),
                }
            }
            _ => die(&format!("unknown argument {flag}")),
        }
    }
    let (def_size, def_depth) = match mode {
        Mode::Bulk => (64 * 1024, 16),
        _ => (64, 1),
    };
    let a = Args {
        addr: addr.unwrap_or_else(|| die("--addr is required")),
        conns,
        size: size.unwrap_or(def_size),
        depth: depth.unwrap_or(def_depth),
        duration,
        warmup,
        mode,
        idle,
        server_pid,
        server_cpu,
        client_cpu,
        setup_timeout,
    };
    if a.conns == 0 || a.size == 0 || a.depth == 0 || a.duration <= 0.0 || a.warmup < 0.0 {
        die("--conns, --size, --depth and --duration must be positive");
    }
    if a.mode == Mode::Churn && a.depth != 1 {
        die("--depth is meaningless in churn mode");
    }
    a
}

// ------------------------------------------------------------- byte pattern

// ------------------------------------------------------------------- /proc

fn proc_cpu_ticks(pid: &str) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" that closes comm start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let utime = f.next()?.parse().ok()?;
    let stime = f.next()?.parse().ok()?;
    Some((utime, stime))
}

/// (busy, total) ticks of one CPU from /proc/stat. Busy counts everything but
/// idle and iowait, so it includes softirq (loopback packet delivery) and any
/// other process that ran on that CPU.
fn proc_core_ticks(cpu: usize) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let name = format!("cpu{cpu}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Task time (user + nice + system + steal) summed over all CPUs, in ticks.
/// Excludes irq/softirq time, which the kernel keeps apart from any task.
fn proc_all_task_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal
    Some(v.first()? + v.get(1)? + v.get(2)? + v.get(7).copied().unwrap_or(0))
}

/// Pids of the ksoftirqd threads: softirq work they pick up belongs to the
/// benchmark, not to "other" load.
fn ksoftirqd_pids() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let name = e.ok()?.file_name().into_string().ok()?;
        name.bytes().all(|b| b.is_ascii_digit()).then_some(())?;
        let comm = std::fs::read_to_string(format!("/proc/{name}/comm")).ok()?;
        comm.starts_with("ksoftirqd/").then_some(name)
    })
    .collect()
}

/// CPU ticks used by everything except the server, this process and
/// ksoftirqd: background load that competes with the benchmark.
fn other_ticks(spid: Option<u32>, ksoft: &[String]) -> Option<u64> {
    let all = proc_all_task_ticks()?;
    let own = proc_cpu_ticks("self").map_or(0, |(u, s)| u + s);
    let srv = spid
        .and_then(|p| proc_cpu_ticks(&p.to_string()))
        .map_or(0, |(u, s)| u + s);
    let ks: u64 = ksoft
        .iter()
        .filter_map(|p| proc_cpu_ticks(p))
        .map(|(u, s)| u + s)
        .sum();
    Some(all.saturating_sub(own + srv + ks))
}

fn core_busy(a: Option<(u64, u64)>, b: Option<(u64, u64)>) -> Option<f64> {
    let ((b0, t0), (b1, t1)) = (a?, b?);
    (t1 > t0).then(|| (b1 - b0) as f64 / (t1 - t0) as f64)
}

fn proc_vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// -------------------------------------------------------------- connections

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `--idle` connection: one-byte handshake echo, then silent.
    Idle,
    /// Measured connection (pingpong / bulk / churn).
    Active,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Open,
}

struct Conn {
    stream: TcpStream,
    gen: u32,
    kind: Kind,
    state: State,
    pat_off: usize,
    /// Stream bytes handed to the kernel.
    sent: u64,
    /// Stream bytes that should have been sent (messages queued so far).
    target: u64,
    /// Echoed stream bytes received (and checked).
    recvd: u64,
    /// (end offset, send time) of every message still in flight.
    inflight: VecDeque<(u64, Instant)>,
    /// When connect() was called (churn latency starts here).
    started: Instant,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Phase {
    SetupIdle,
    SetupActive,
    Warmup,
    Measure,
}

#[derive(Clone, Copy, Default)]
struct Counters {
    msgs: u64,
    bytes: u64,
}

struct Gen {
    args: Args,
    pat: Pattern,
    poll: Poll,
    slots: Vec<Option<Conn>>,
    next_gen: u32,
    next_id: u64,
    phase: Phase,
    counters: Counters,
    errors: u64,
    mismatched: u64,
    /// Round-trip samples (ns) completed during the measured window.
    samples: Vec<u64>,
    connecting: usize,
    idle_started: usize,
    /// Idle connections that finished their handshake echo or failed.
    idle_done: usize,
    active_started: usize,
    /// Churn slots whose connect failed immediately; retried next iteration.
    empty_slots: Vec<usize>,
}

const MAX_CONNECTING: usize = 256;
const READ_BUF: usize = 256 * 1024;

impl Gen {
    /// Starts a connection in `slot` (pushing a new slot if `slot` is None).
    fn connect(&mut self, slot: Option<usize>, kind: Kind) -> bool {
        let mut stream = match TcpStream::connect(self.args.addr) {
            Ok(s) => s,
            Err(e) => {
                self.error(&format!("connect: {e}"));
                if let Some(s) = slot {
                    self.empty_slots.push(s);
                }
                return false;
            }
        };
        let slot = slot.unwrap_or_else(|| {
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
            self.empty_slots.push(slot);
            return false;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.slots[slot] = Some(Conn {
            stream,
            gen,
            kind,
            state: State::Connecting,
            pat_off: Pattern::conn_offset(id),
            sent: 0,
            target: 0,
            recvd: 0,
            inflight: VecDeque::new(),
            started: Instant::now(),
        });
        self.connecting += 1;
        true
    }

    fn error(&mut self, what: &str) {
        self.errors += 1;
        if self.errors <= 10 {
            eprintln!("loadgen: error: {what}");
        } else if self.errors == 11 {
            eprintln!("loadgen: (further errors not printed)");
        }
    }

    fn queue_msg(c: &mut Conn, len: usize, now: Instant) {
        c.target += len as u64;
        c.inflight.push_back((c.target, now));
    }

    /// Handles one event. Returns the connection if it is finished or
    /// failed (its slot is then empty); the caller drops it.
    fn on_event(
        &mut self,
        slot: usize,
        readable: bool,
        writable: bool,
        buf: &mut [u8],
    ) -> Option<Conn> {
        let mut c = self.slots[slot].take().expect("live slot");
        if self.drive(&mut c, readable, writable, buf) {
            self.slots[slot] = Some(c);
            return None;
        }
        if c.state == State::Connecting {
            self.connecting -= 1;
        }
        if c.kind == Kind::Idle && !c.inflight.is_empty() {
            self.idle_done += 1; // failed before its handshake: stop waiting for it
        }
        Some(c)
    }

    fn drive(&mut self, c: &mut Conn, readable: bool, writable: bool, buf: &mut [u8]) -> bool {
        if c.state == State::Connecting {
            if !writable && !readable {
                return true;
            }
            match c.stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => {
                    self.error(&format!("connect: {e}"));
                    return false;
                }
            }
            match c.stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotConnected => return true,
                Err(e) => {
                    self.error(&format!("connect: {e}"));
                    return false;
                }
            }
            c.state = State::Open;
            self.connecting -= 1;
            let _ = c.stream.set_nodelay(true);
            let now = Instant::now();
            match c.kind {
                Kind::Idle => Self::queue_msg(c, 1, now),
                Kind::Active if self.args.mode == Mode::Churn => {
                    Self::queue_msg(c, self.args.size, c.started);
                }
                Kind::Active => {
                    for _ in 0..self.args.depth {
                        Self::queue_msg(c, self.args.size, now);
                    }
                }
            }
            if !self.flush(c) {
                return false;
            }
        }

        if readable {
            loop {
                match c.stream.read(buf) {
                    Ok(0) => {
                        self.error("server closed the connection");
                        return false;
                    }
                    Ok(n) => {
                        match self.received(c, &buf[..n]) {
                            Some(true) => {}
                            Some(false) => return false, // done (churn / bad data)
                            None => return false,
                        }
                        // A short read drained the socket: epoll will report
                        // the next arrival as a fresh edge, so skip the
                        // EAGAIN read (tokio does the same).
                        if n < buf.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.error(&format!("read: {e}"));
                        return false;
                    }
                }
            }
        }
        if c.sent < c.target && !self.flush(c) {
            return false;
        }
        true
    }

    /// Checks and accounts echoed bytes. Some(true): keep going; Some(false):
    /// connection finished (churn) or unusable; None: error already counted.
    fn received(&mut self, c: &mut Conn, data: &[u8]) -> Option<bool> {
        // Bytes beyond what was sent can't be an echo: all of them mismatch.
        let expected_max = c.sent.saturating_sub(c.recvd) as usize;
        let (good_part, extra) = if data.len() > expected_max {
            (&data[..expected_max], data.len() - expected_max)
        } else {
            (data, 0)
        };
        let mut bad = extra as u64;
        let mut pos = c.recvd;
        for chunk in good_part.chunks(PAT_EXTRA) {
            let want = self.pat.slice(c.pat_off, pos, chunk.len());
            if chunk != want {
                bad += chunk.iter().zip(want).filter(|(a, b)| a != b).count() as u64;
            }
            pos += chunk.len() as u64;
        }
        c.recvd += data.len() as u64;
        if self.phase == Phase::Measure && c.kind == Kind::Active {
            self.counters.bytes += data.len() as u64;
        }
        if bad > 0 {
            self.mismatched += bad;
            self.error(&format!("{bad} mismatched echo bytes"));
            return None;
        }
        let now = Instant::now();
        let mut finished = false;
        while let Some(&(end, t0)) = c.inflight.front() {
            if end > c.recvd {
                break;
            }
            c.inflight.pop_front();
            match c.kind {
                Kind::Idle => self.idle_done += 1,
                Kind::Active => {
                    self.counters.msgs += 1;
                    if self.phase == Phase::Measure {
                        self.samples.push(now.duration_since(t0).as_nanos() as u64);
                    }
                    if self.args.mode == Mode::Churn {
                        finished = true;
                    } else {
                        Self::queue_msg(c, self.args.size, now);
                    }
                }
            }
        }
        Some(!finished)
    }

    fn flush(&mut self, c: &mut Conn) -> bool {
        while c.sent < c.target {
            // Bulk writes one chunk per call; ping-pong hands every queued
            // message to the kernel at once.
            let max = match self.args.mode {
                Mode::Bulk => self.args.size.min(PAT_EXTRA),
                _ => PAT_EXTRA,
            };
            let len = ((c.target - c.sent) as usize).min(max);
            let data = self.pat.slice(c.pat_off, c.sent, len);
            match c.stream.write(data) {
                Ok(0) => {
                    self.error("write returned 0");
                    return false;
                }
                Ok(n) => c.sent += n as u64,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error(&format!("write: {e}"));
                    return false;
                }
            }
        }
        true
    }
}

// --------------------------------------------------------------------- main

fn percentile_us(sorted: &[u64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1] as f64 / 1000.0)
}

fn main() {
    let args = parse_args();
    raise_nofile("loadgen", (args.conns + args.idle) as u64);

    let mut g = Gen {
        pat: Pattern::new(),
        poll: Poll::new().unwrap_or_else(|e| die(&format!("poll: {e}"))),
        slots: Vec::with_capacity(args.conns + args.idle),
        next_gen: 0,
        next_id: 0,
        phase: Phase::SetupIdle,
        counters: Counters::default(),
        errors: 0,
        mismatched: 0,
        samples: Vec::with_capacity(1 << 20),
        connecting: 0,
        idle_started: 0,
        idle_done: 0,
        active_started: 0,
        empty_slots: Vec::new(),
        args,
    };
    let clk_tck = rustix::param::clock_ticks_per_second() as f64;
    let spid = g.args.server_pid;
    let server_ticks = |pid: Option<u32>| pid.and_then(|p| proc_cpu_ticks(&p.to_string()));

    let mut events = Events::with_capacity(4096);
    let mut buf = vec![0u8; READ_BUF];
    let t_begin = Instant::now();
    let mut t_run = t_begin; // end of setup
    let mut t_measure = t_begin;
    let mut start = Counters::default();
    let mut srv0 = None;
    let mut cli0 = None;
    let mut score0 = None;
    let mut other0 = None;
    let ksoft = ksoftirqd_pids();
    let mut ccore0 = None;
    let mut setup_s = 0.0;
    let mut setup_failed = false;

    loop {
        let now = Instant::now();
        // ---- phase transitions and connection starts
        match g.phase {
            Phase::SetupIdle => {
                // At most MAX_CONNECTING handshakes outstanding, so the
                // server's listen backlog never overflows.
                while g.idle_started < g.args.idle && g.idle_started - g.idle_done < MAX_CONNECTING
                {
                    g.idle_started += 1;
                    if !g.connect(None, Kind::Idle) {
                        g.idle_done += 1; // counted as an error; don't wait for it
                    }
                }
                if g.idle_done >= g.args.idle {
                    g.phase = Phase::SetupActive;
                    continue;
                }
            }
            Phase::SetupActive => {
                while g.active_started < g.args.conns && g.connecting < MAX_CONNECTING {
                    g.active_started += 1;
                    g.connect(None, Kind::Active);
                }
                // Done once every active connect has resolved (churn: started).
                if g.active_started == g.args.conns
                    && (g.connecting == 0 || g.args.mode == Mode::Churn)
                {
                    g.phase = Phase::Warmup;
                    t_run = now;
                    setup_s = now.duration_since(t_begin).as_secs_f64();
                    continue;
                }
            }
            Phase::Warmup => {
                if now.duration_since(t_run).as_secs_f64() >= g.args.warmup {
                    g.phase = Phase::Measure;
                    t_measure = Instant::now();
                    start = g.counters;
                    // Bytes count only inside the window (see `received`).
                    start.bytes = 0;
                    g.counters.bytes = 0;
                    srv0 = server_ticks(spid);
                    cli0 = proc_cpu_ticks("self");
                    score0 = g.args.server_cpu.and_then(proc_core_ticks);
                    other0 = other_ticks(spid, &ksoft);
                    ccore0 = g.args.client_cpu.and_then(proc_core_ticks);
                    continue;
                }
            }
            Phase::Measure => {
                if now.duration_since(t_measure).as_secs_f64() >= g.args.duration {
                    break;
                }
            }
        }
        if g.phase < Phase::Warmup
            && now.duration_since(t_begin).as_secs_f64() > g.args.setup_timeout
        {
            eprintln!(
                "loadgen: setup timed out: idle {}/{} done, active {}/{} started, {} connecting",
                g.idle_done, g.args.idle, g.active_started, g.args.conns, g.connecting
            );
            setup_failed = true;
            setup_s = now.duration_since(t_begin).as_secs_f64();
            break;
        }
        // Churn slots whose connect failed outright are retried here.
        if g.args.mode == Mode::Churn && g.phase >= Phase::Warmup {
            for slot in std::mem::take(&mut g.empty_slots) {
                g.connect(Some(slot), Kind::Active);
            }
        }

        let timeout = if g.empty_slots.is_empty() { 20 } else { 1 };
        if let Err(e) = g
            .poll
            .poll(&mut events, Some(Duration::from_millis(timeout)))
        {
            if e.kind() != ErrorKind::Interrupted {
                die(&format!("poll: {e}"));
            }
        }
        for ev in events.iter() {
            let (slot, gen) = untoken(ev.token());
            match g.slots.get(slot) {
                Some(Some(c)) if c.gen == gen => {}
                _ => continue, // stale event for a connection already replaced
            }
            let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
            let writable = ev.is_writable() || ev.is_write_closed() || ev.is_error();
            if let Some(done) = g.on_event(slot, readable, writable, &mut buf) {
                let kind = done.kind;
                drop(done); // closes the socket
                if g.args.mode == Mode::Churn && kind == Kind::Active {
                    g.connect(Some(slot), Kind::Active);
                }
            }
        }
    }

    let t_end = Instant::now();
    let window = t_end.duration_since(t_measure).as_secs_f64();
    let srv1 = server_ticks(spid);
    let cli1 = proc_cpu_ticks("self");
    let score1 = g.args.server_cpu.and_then(proc_core_ticks);
    let other1 = other_ticks(spid, &ksoft);
    let ccore1 = g.args.client_cpu.and_then(proc_core_ticks);
    let hwm = spid.and_then(proc_vm_hwm_kb);

    let msgs = g.counters.msgs - start.msgs;
    let bytes = g.counters.bytes;
    let mut samples = std::mem::take(&mut g.samples);
    samples.sort_unstable();

    let measured = !setup_failed && window > 0.0;
    let rate = |x: f64| if measured { Some(x / window) } else { None };
    let (srv_user, srv_sys) = match (srv0, srv1) {
        (Some(a), Some(b)) if measured => (
            Some((b.0 - a.0) as f64 / clk_tck),
            Some((b.1 - a.1) as f64 / clk_tck),
        ),
        _ => (None, None),
    };
    let srv_cpu = srv_user.zip(srv_sys).map(|(u, s)| u + s);
    let cpu_per_msg = srv_cpu.filter(|_| msgs > 0).map(|c| c * 1e6 / msgs as f64);
    let cli_cpu = match (cli0, cli1) {
        (Some(a), Some(b)) if measured => Some(((b.0 + b.1) - (a.0 + a.1)) as f64 / clk_tck),
        _ => None,
    };
    let mode = match g.args.mode {
        Mode::PingPong => "pingpong",
        Mode::Bulk => "bulk",
        Mode::Churn => "churn",
    };
    // Drop every socket before printing so the server sees the closes early.
    g.slots.clear();

    let fields = [
        ("mode", format!("\"{mode}\"")),
        ("conns", g.args.conns.to_string()),
        ("idle", g.args.idle.to_string()),
        ("size", g.args.size.to_string()),
        ("depth", g.args.depth.to_string()),
        ("warmup_s", format!("{:.3}", g.args.warmup)),
        ("window_s", format!("{window:.3}")),
        ("setup_s", format!("{setup_s:.3}")),
        ("setup_failed", setup_failed.to_string()),
        (
            "msgs",
            if measured {
                msgs.to_string()
            } else {
                "null".into()
            },
        ),
        ("msgs_per_sec", jnum(rate(msgs as f64))),
        ("mb_per_sec", jnum(rate(bytes as f64 / 1e6))),
        ("p50_us", jnum(percentile_us(&samples, 0.50))),
        ("p99_us", jnum(percentile_us(&samples, 0.99))),
        ("p999_us", jnum(percentile_us(&samples, 0.999))),
        ("latency_samples", samples.len().to_string()),
        ("errors", g.errors.to_string()),
        ("mismatched_bytes", g.mismatched.to_string()),
        ("server_user_s", jnum(srv_user)),
        ("server_sys_s", jnum(srv_sys)),
        ("server_cpu_util", jnum(srv_cpu.map(|c| c / window))),
        ("server_cpu_us_per_msg", jnum(cpu_per_msg)),
        (
            "server_peak_rss_kb",
            hwm.map_or("null".into(), |v| v.to_string()),
        ),
        ("client_cpu_util", jnum(cli_cpu.map(|c| c / window))),
        (
            "server_core_busy",
            jnum(core_busy(score0, score1).filter(|_| measured)),
        ),
        (
            "client_core_busy",
            jnum(core_busy(ccore0, ccore1).filter(|_| measured)),
        ),
        (
            "other_cpu_util",
            jnum(match (other0, other1) {
                (Some(a), Some(b)) if measured => {
                    Some(b.saturating_sub(a) as f64 / clk_tck / window)
                }
                _ => None,
            }),
        ),
        ("clk_tck", format!("{clk_tck}")),
    ];
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect();
    println!("{{{}}}", body.join(", "));
    if setup_failed {
        std::process::exit(3);
    }
}
