//! Accept back-off on `EMFILE`: a listener that runs out of descriptors is never closed
//! and never spins; accepting pauses (`Channel::is_accept_paused`) and resumes once
//! descriptors are free again.
//!
//! The descriptor limit is per process, so the test re-executes its own binary as a child
//! (`--exact <backend>::emfile_backoff`, with `SOCKLOOP_EMFILE_CHILD=<backend>`). The
//! child lowers `RLIMIT_NOFILE` to leave room for a dozen connections, serves echo
//! connections (keeping every one open), and reports its state on stderr in `@@` lines.
//! It takes commands on stdin (`close N`, `exit`) through a [`sockloop::Remote`], and
//! gives up by itself after 60 s. The parent connects clients until the child hits
//! `EMFILE`, connects a few more, checks the child is alive and still listening and
//! that it does not spin (a behavioural check: its CPU time from `/proc/<pid>/stat` over
//! one second of starvation, and how often it retried the accept), then has it close
//! some connections and checks a new client gets its echo. The child is killed on any
//! failure.
//!
//! `backoff_doubles_to_a_cap_then_resets` checks the back-off's schedule in process,
//! with a `handle_accept` that reports `EMFILE` itself.

mod util;

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use sockloop::{Backend, Context, Dispatcher, EventLoop, LoopHandle, Token};
use util::{listener, Echo, Log};

const CHILD_ENV: &str = "SOCKLOOP_EMFILE_CHILD";
/// Descriptors the child leaves itself for connections, above the ones it has open.
const HEADROOM: u64 = 12;

fn emfile_backoff(backend: Backend) {
    match std::env::var(CHILD_ENV) {
        Ok(b) if b == backend.name() => child(backend),
        // A child started for another backend: not this test's business.
        Ok(_) => {}
        Err(_) => parent(backend),
    }
}

// ---------------------------------------------------------------------------------------
// The child.

/// Accepts and keeps every connection as an echo channel; counts accept outcomes.
#[derive(Default)]
struct Acceptor {
    conns: Vec<Token>,
    accepted: usize,
    emfile: usize,
    other_errors: usize,
}

impl Dispatcher for Acceptor {
    fn handle_accept(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        match ctx.accept() {
            Ok(Some((sock, _))) => {
                let t = ctx.handle().add(
                    sock,
                    Echo {
                        log: Log::default(),
                        name: "conn",
                    },
                )?;
                self.conns.push(t);
                self.accepted += 1;
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                if Errno::from_io_error(&e) == Some(Errno::MFILE) {
                    self.emfile += 1;
                } else {
                    self.other_errors += 1;
                }
                Err(e)
            }
        }
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        eprintln!("@@LISTENER_CLOSED");
        ctx.close();
        Ok(())
    }
}

/// The lowest descriptor limit that leaves `free` numbers unused below it (the child may
/// have inherited descriptors with holes between them; those above the limit stay open).
fn limit_leaving(free: u64) -> u64 {
    let open: std::collections::HashSet<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .collect();
    let mut left = free;
    let mut fd = 0;
    loop {
        if !open.contains(&fd) {
            left -= 1;
            if left == 0 {
                return fd + 1;
            }
        }
        fd += 1;
    }
}

fn child(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let remote = ev.remote().unwrap();
    let (ch, addr) = listener("127.0.0.1:0");
    let lt = ev.add(ch, Acceptor::default()).unwrap();

    // Commands from the parent, run on the loop thread.
    thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let cmd = line.trim().to_string();
            if remote.call(move |lp| command(lp, lt, &cmd)).is_err() {
                return;
            }
        }
        // The parent is gone: end.
        let _ = remote.call(|lp| {
            lp.close_all();
            lp.stop();
        });
    });

    // Status: sampled every 10 ms (the pause can be short), printed every 100 ms.
    let ever_paused = Rc::new(Cell::new(false));
    let tick = Rc::new(Cell::new(0u64));
    let (ep, tk) = (ever_paused.clone(), tick.clone());
    let born = Instant::now();
    let status = ev.call_every(Duration::from_millis(10), move |lp, _| {
        let paused = lp.channel(lt).is_some_and(|c| c.is_accept_paused());
        ep.set(ep.get() || paused);
        tk.set(tk.get() + 1);
        if tk.get() % 10 == 0 {
            let a = lp.dispatcher::<Acceptor>(lt);
            let (accepted, emfile, other) =
                a.map_or((0, 0, 0), |a| (a.accepted, a.emfile, a.other_errors));
            eprintln!(
                "@@STATUS ms={} accepted={accepted} open={} paused={} ever_paused={} \
                 emfile={emfile} other_errors={other} listening={}",
                born.elapsed().as_millis(),
                lp.len().saturating_sub(1),
                paused as u8,
                ep.get() as u8,
                lp.channel(lt).is_some_and(|c| c.is_accepting()) as u8,
            );
        }
    });
    // Never outlive a lost parent.
    ev.call_later(Duration::from_secs(60), |lp, _| {
        eprintln!("@@GAVE_UP");
        lp.close_all();
        lp.stop();
    });

    let limit = limit_leaving(HEADROOM);
    let old = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(limit),
            maximum: old.maximum,
        },
    )
    .unwrap();
    eprintln!("@@READY addr={} limit={limit}", addr.as_socket().unwrap());
    ev.run(Some(Duration::from_millis(500)), Some(1_000_000))
        .unwrap();
    ev.cancel(status);
    eprintln!("@@DONE");
}

fn command(lp: &mut LoopHandle, lt: Token, cmd: &str) {
    let mut words = cmd.split_whitespace();
    match (
        words.next(),
        words.next().and_then(|n| n.parse::<usize>().ok()),
    ) {
        (Some("close"), Some(n)) => {
            let conns = lp
                .dispatcher_mut::<Acceptor>(lt)
                .map(|a| std::mem::take(&mut a.conns))
                .unwrap_or_default();
            let mut closed = 0;
            let mut kept = Vec::new();
            for t in conns {
                if closed < n && lp.close(t) {
                    closed += 1;
                } else if lp.contains(t) {
                    kept.push(t);
                }
            }
            if let Some(a) = lp.dispatcher_mut::<Acceptor>(lt) {
                a.conns = kept;
            }
            eprintln!("@@CLOSED {closed}");
        }
        (Some("exit"), _) => {
            lp.close_all();
            lp.stop();
        }
        _ => eprintln!("@@UNKNOWN {cmd}"),
    }
}

// ---------------------------------------------------------------------------------------
// The parent.

/// One `@@STATUS` line.
#[derive(Clone, Debug, Default)]
struct Status {
    /// When the child printed it: milliseconds since the child's loop was set up.
    ms: u64,
    accepted: usize,
    open: usize,
    paused: bool,
    ever_paused: bool,
    emfile: usize,
    other_errors: usize,
    listening: bool,
}

/// The `@@` line in `line`, as its tag and its `key=value` fields. Anything before the
/// `@@` (output of the test harness on the same line) is ignored.
fn parse(line: &str) -> Option<(String, HashMap<String, String>)> {
    let rest = &line[line.find("@@")? + 2..];
    let mut words = rest.split_whitespace();
    let tag = words.next()?.to_string();
    let fields = words
        .filter_map(|w| {
            let (k, v) = w.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect();
    Some((tag, fields))
}

fn status_of(fields: &HashMap<String, String>) -> Option<Status> {
    let num = |k: &str| fields.get(k)?.parse::<usize>().ok();
    Some(Status {
        ms: fields.get("ms")?.parse().ok()?,
        accepted: num("accepted")?,
        open: num("open")?,
        paused: num("paused")? == 1,
        ever_paused: num("ever_paused")? == 1,
        emfile: num("emfile")?,
        other_errors: num("other_errors")?,
        listening: num("listening")? == 1,
    })
}

/// The child process; killed when dropped (on any failure), reaped either way.
struct ChildProc {
    proc: std::process::Child,
    lines: mpsc::Receiver<String>,
    output: Vec<String>,
    status: Option<Status>,
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

impl ChildProc {
    fn spawn(backend: Backend) -> ChildProc {
        let exe = std::env::current_exe().unwrap();
        let name = format!("{}::emfile_backoff", backend.name());
        let mut proc = Command::new(exe)
            .args(["--exact", &name, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, backend.name())
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = proc.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ChildProc {
            proc,
            lines,
            output: Vec::new(),
            status: None,
        }
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\nlast status: {:?}\nchild output:\n{}",
            self.status,
            self.output.join("\n")
        );
    }

    /// Waits up to `secs` for an `@@<tag>` line for which `f` gives `Some`.
    fn wait_for<T>(
        &mut self,
        what: &str,
        secs: u64,
        mut f: impl FnMut(&str, &HashMap<String, String>) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.fail(&format!("timed out waiting for: {what}"));
            }
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let parsed = parse(&line);
                    self.output.push(line);
                    let Some((tag, fields)) = parsed else {
                        continue;
                    };
                    if tag == "STATUS" {
                        match status_of(&fields) {
                            Some(s) => self.status = Some(s),
                            None => self.fail("malformed status line"),
                        }
                    }
                    if tag == "LISTENER_CLOSED" {
                        self.fail("the child closed its listener");
                    }
                    if let Some(v) = f(&tag, &fields) {
                        return v;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let code = self.proc.wait().ok();
                    self.fail(&format!(
                        "the child exited early ({code:?}) waiting for: {what}"
                    ));
                }
            }
        }
    }

    /// Takes in the lines queued so far without waiting, so that the next line read was
    /// printed after the ones before this call.
    fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            let parsed = parse(&line);
            self.output.push(line);
            match parsed {
                Some((tag, fields)) if tag == "STATUS" => self.status = status_of(&fields),
                Some((tag, _)) if tag == "LISTENER_CLOSED" => {
                    self.fail("the child closed its listener")
                }
                _ => {}
            }
        }
    }

    /// Waits for a status line for which `pred` holds.
    fn wait_status(&mut self, what: &str, secs: u64, pred: impl Fn(&Status) -> bool) -> Status {
        self.wait_for(what, secs, |tag, fields| {
            if tag != "STATUS" {
                return None;
            }
            status_of(fields).filter(|s| pred(s))
        })
    }

    fn send(&mut self, cmd: &str) {
        let stdin = self.proc.stdin.as_mut().unwrap();
        if let Err(e) = writeln!(stdin, "{cmd}").and_then(|_| stdin.flush()) {
            self.fail(&format!("writing {cmd:?} to the child: {e}"));
        }
    }

    fn is_running(&mut self) -> bool {
        matches!(self.proc.try_wait(), Ok(None))
    }

    /// utime + stime of the child, in clock ticks (USER_HZ, 100 per second on Linux).
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.proc.id())).unwrap();
        // The command name (field 2) is in parentheses and may contain spaces.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 and 15 of the whole line are 12 and 13 after the name (from 3).
        let utime: u64 = fields[11].parse().unwrap();
        let stime: u64 = fields[12].parse().unwrap();
        utime + stime
    }
}

/// USER_HZ: the unit of utime/stime in /proc (fixed at 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .expect("the listener still completes handshakes");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn parent(backend: Backend) {
    let mut child = ChildProc::spawn(backend);
    let addr: SocketAddr = child.wait_for("the child's address", 20, |tag, fields| {
        (tag == "READY").then(|| fields.get("addr")?.parse().ok())?
    });

    // Connect one client at a time until the child reports EMFILE.
    let mut clients = Vec::new();
    let exhausted = loop {
        if clients.len() >= 40 {
            child.fail("no EMFILE after 40 connections");
        }
        clients.push(connect(addr));
        let n = clients.len();
        let s = child.wait_status("the connection accepted, or EMFILE", 10, |s| {
            s.accepted >= n || s.emfile > 0
        });
        if s.emfile > 0 {
            break s;
        }
    };
    assert_eq!(exhausted.other_errors, 0, "only EMFILE: {exhausted:?}");
    // More clients than descriptors: they wait in the kernel's accept queue, which
    // proves the socket is still listening.
    for _ in 0..3 {
        clients.push(connect(addr));
    }
    let starved = child.wait_status("accepting paused", 10, |s| s.ever_paused);
    let capacity = starved.accepted;
    assert!(capacity > 0, "{starved:?}");
    assert!(starved.listening, "{starved:?}");

    // One second of starvation: the child must not spin (behavioural check; a busy
    // loop would use about 100% of a CPU, and retry the accept thousands of times).
    // The status lines are queued: "before" is the first one printed after the lines
    // already queued, "after" the first one the child printed a full second after
    // "before" (its own clock, `ms`), so the retry count covers the whole window.
    child.drain();
    let before = child.wait_status("a status before the measurement", 5, |_| true);
    let cpu0 = child.cpu_ticks();
    let t0 = Instant::now();
    thread::sleep(Duration::from_secs(1));
    let cpu1 = child.cpu_ticks();
    let wall = t0.elapsed().as_secs_f64();
    let after = child.wait_status("a status one second after the first", 5, |s| {
        s.ms >= before.ms + 1000
    });
    let cpu = (cpu1 - cpu0) as f64 / TICKS_PER_SEC;
    assert!(
        cpu < 0.3 * wall,
        "the starved child used {cpu:.2} s of CPU in {wall:.2} s: it spins"
    );
    let window = (after.ms - before.ms) as f64 / 1000.0;
    let retries = after.emfile - before.emfile;
    // With the back-off (10 ms doubling to 1 s) a second of starvation that starts soon
    // after the first EMFILE holds at most about 7 retries; a constant 10 ms holds 100.
    assert!(
        retries as f64 <= 20.0 * window,
        "{retries} accept retries in {window:.2} s: no back-off ({before:?} → {after:?})"
    );
    eprintln!(
        "{}: capacity {capacity}, {} queued, {cpu:.2} s CPU in {wall:.2} s, {retries} retries",
        backend.name(),
        clients.len() - capacity
    );
    assert!(child.is_running(), "the child died while starved");
    assert!(after.listening, "still listening: {after:?}");
    assert_eq!(after.accepted, capacity, "nothing accepted while starved");
    assert_eq!(after.open, capacity, "no connection was dropped");

    // Free descriptors: enough for everything queued plus one new client.
    let queued = clients.len() - capacity;
    let free = (queued + 2).min(capacity);
    child.send(&format!("close {free}"));
    child.wait_for("the close", 10, |tag, _| (tag == "CLOSED").then_some(()));
    let mut fresh = connect(addr);
    fresh.write_all(b"ping after the drought").unwrap();
    let mut got = [0u8; 22];
    if let Err(e) = fresh.read_exact(&mut got) {
        child.fail(&format!(
            "no echo for a new client after freeing descriptors: {e}"
        ));
    }
    assert_eq!(&got, b"ping after the drought");
    let resumed = child.wait_status("accepting resumed", 10, |s| {
        !s.paused && s.accepted > capacity + queued
    });
    assert!(resumed.listening);

    child.send("exit");
    child.wait_for("the child's end", 10, |tag, _| {
        (tag == "DONE").then_some(())
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Ok(Some(code)) = child.proc.try_wait() {
            break code;
        }
        if Instant::now() > deadline {
            child.fail("the child did not exit");
        }
        thread::sleep(Duration::from_millis(10));
    };
    assert!(code.success(), "child exit: {code:?}");
    drop(clients);
}

// ---------------------------------------------------------------------------------------
// The back-off's schedule, in process: a listener whose `handle_accept` reports EMFILE
// (as an `accept` out of descriptors would) while a connection waits in its queue.

/// Fails the next `fail` accepts with `EMFILE`, then accepts (and drops) a connection;
/// records when each `handle_accept` ran.
struct Flaky {
    calls: Rc<std::cell::RefCell<Vec<Instant>>>,
    fail: Rc<Cell<usize>>,
    accepted: Rc<Cell<usize>>,
}

impl Dispatcher for Flaky {
    fn handle_accept(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.calls.borrow_mut().push(Instant::now());
        if self.fail.get() > 0 {
            self.fail.set(self.fail.get() - 1);
            return Err(io::Error::from_raw_os_error(Errno::MFILE.raw_os_error()));
        }
        if ctx.accept()?.is_some() {
            self.accepted.set(self.accepted.get() + 1);
        }
        Ok(())
    }
}

/// The back-off really doubles from 10 ms up to 1 s, and a successful accept resets it:
/// nine `EMFILE`s in a row are retried after 10, 20, 40, …, 640 ms, then 1 s, 1 s
/// (each gap at least three quarters of its delay, the rest being slack for a scheduling
/// delay between the loop's clock read and the hook, which still tells 20 ms from a
/// constant 10 ms; and well under the doubled delay, so a back-off without the 1 s cap
/// fails);
/// then the tenth call accepts; two more `EMFILE`s are retried after 10 and 20 ms again.
fn backoff_doubles_to_a_cap_then_resets(backend: Backend) {
    const LATE: Duration = Duration::from_millis(500);
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (ch, addr) = listener("127.0.0.1:0");
    let calls: Rc<std::cell::RefCell<Vec<Instant>>> = Rc::default();
    let fail = Rc::new(Cell::new(9));
    let accepted = Rc::new(Cell::new(0));
    let lt = ev
        .add(
            ch,
            Flaky {
                calls: calls.clone(),
                fail: fail.clone(),
                accepted: accepted.clone(),
            },
        )
        .unwrap();
    let addr = addr.as_socket().unwrap();
    let run_until = |ev: &mut EventLoop, what: &str, secs: u64, cond: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            ev.poll_once(Some(util::STEP)).unwrap();
        }
    };
    let check_gaps = |calls: &[Instant], first_delay_ms: u64| {
        for (i, pair) in calls.windows(2).enumerate() {
            let gap = pair[1] - pair[0];
            let delay = Duration::from_millis((first_delay_ms << i).min(1000));
            assert!(
                gap >= delay * 3 / 4,
                "retry {} came {gap:?} after the EMFILE: the back-off is {delay:?} there",
                i + 1
            );
            assert!(
                gap < delay + LATE,
                "retry {} came {gap:?} after the EMFILE: expected {delay:?}",
                i + 1
            );
        }
    };

    let _first = TcpStream::connect(addr).unwrap();
    run_until(&mut ev, "nine EMFILEs, then an accept", 15, &|| {
        accepted.get() == 1
    });
    let first_run = calls.borrow().clone();
    assert_eq!(
        first_run.len(),
        10,
        "nine failed accepts and one that worked"
    );
    check_gaps(&first_run, 10);
    assert!(!ev.channel(lt).unwrap().is_accept_paused());

    // A success resets the back-off: the next EMFILE waits 10 ms again, not 1 s.
    calls.borrow_mut().clear();
    fail.set(2);
    let _second = TcpStream::connect(addr).unwrap();
    run_until(&mut ev, "two EMFILEs, then an accept", 5, &|| {
        accepted.get() == 2
    });
    let second_run = calls.borrow().clone();
    assert_eq!(second_run.len(), 3);
    check_gaps(&second_run, 10);
    assert!(!ev.channel(lt).unwrap().is_accept_paused());
}

backend_tests!(emfile_backoff, backoff_doubles_to_a_cap_then_resets);
