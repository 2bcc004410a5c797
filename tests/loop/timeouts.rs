//! Idle and connect timeouts: `handle_timeout(Idle)` after no read or write event for the
//! idle timeout (default: close, `handle_close` once); activity postpones it; a dispatcher
//! that keeps the channel sees it again one period later; a connect that does not complete
//! gets `handle_timeout(Connect)`; a refused connect is an error and a close as before,
//! and its connect timeout never fires afterwards.
//!
//! A connect that stays in progress on loopback: a listener with backlog 0 that never
//! accepts has room for one connection; once that is queued, Linux drops further SYNs
//! (the accept queue is full), so the next connect stays in SYN-SENT for seconds.

use crate::util;

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::util::{full_listener, run_until, step, tcp_pair, Log};
use sockloop::{Backend, Channel, Context, Dispatcher, Domain, EventLoop, Timeout, Type};

/// Records hooks with the time of each timeout; closes on a timeout unless `keep`.
struct Recorder {
    log: Log,
    at: Rc<RefCell<Vec<Instant>>>,
    keep: bool,
}

impl Recorder {
    fn new(log: &Log, keep: bool) -> (Recorder, Rc<RefCell<Vec<Instant>>>) {
        let at = Rc::default();
        (
            Recorder {
                log: log.clone(),
                at: Rc::clone(&at),
                keep,
            },
            at,
        )
    }
}

impl Dispatcher for Recorder {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        let n = ctx.recv(&mut buf)?;
        if n > 0 {
            self.log.push("read");
        }
        Ok(())
    }
    fn handle_connect(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        self.log.push("connect");
        Ok(())
    }
    fn handle_timeout(&mut self, ctx: &mut Context<'_>, which: Timeout) -> io::Result<()> {
        self.log.push(format!("timeout:{which:?}"));
        self.at.borrow_mut().push(Instant::now());
        if !self.keep {
            ctx.request_close();
        }
        Ok(())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log.push(format!("error:{:?}", err.kind()));
        Err(err)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("close");
        ctx.close();
        Ok(())
    }
}

const IDLE: Duration = Duration::from_millis(50);

/// No activity: `handle_timeout(Idle)` after the idle timeout, never before; the default
/// behaviour (request_close) runs `handle_close` once; no timer is left.
fn idle_timeout_closes(backend: Backend) {
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (server, _client) = tcp_pair();
    let mut ch = Channel::from_socket(server).unwrap();
    ch.set_idle_timeout(Some(IDLE));
    assert_eq!(ch.idle_timeout(), Some(IDLE));
    let (rec, at) = Recorder::new(&log, false);
    let start = Instant::now();
    let token = ev.add(ch, rec).unwrap();
    run_until(&mut ev, "the idle close", |ev| !ev.contains(token));
    step(&mut ev, 3);
    assert_eq!(log.entries(), ["timeout:Idle", "close"]);
    assert!(at.borrow()[0] >= start + IDLE, "never early");
    assert_eq!(ev.timers(), 0, "the channel's timer is gone with it");
}

/// The default `handle_timeout` (not overridden) closes too.
struct Plain {
    log: Log,
}

impl Dispatcher for Plain {
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("close");
        ctx.close();
        Ok(())
    }
}

fn default_handle_timeout_closes(backend: Backend) {
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (server, _client) = tcp_pair();
    let mut ch = Channel::from_socket(server).unwrap();
    ch.set_idle_timeout(Some(Duration::from_millis(20)));
    let token = ev.add(ch, Plain { log: log.clone() }).unwrap();
    run_until(&mut ev, "the idle close", |ev| !ev.contains(token));
    step(&mut ev, 3);
    assert_eq!(log.entries(), ["close"]);
}

/// Activity postpones the idle timeout: a byte every 10 ms for 200 ms with a 50 ms idle
/// timeout, no timeout. Each byte is written before the loop polls for it, so a stalled
/// test thread stalls the loop too and cannot fake idleness. Then silence: the timeout
/// comes at least 50 ms after the last byte.
fn activity_postpones_idle(backend: Backend) {
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (server, mut client) = tcp_pair();
    let mut ch = Channel::from_socket(server).unwrap();
    ch.set_idle_timeout(Some(IDLE));
    let (rec, at) = Recorder::new(&log, false);
    let token = ev.add(ch, rec).unwrap();
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < Duration::from_millis(200) {
        client.write_all(b".").unwrap();
        sent += 1;
        run_until(&mut ev, "the byte", |_| log.count("read") >= sent);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!log.has("timeout:Idle"), "{:?}", log.entries());
    assert!(ev.contains(token));
    let last = Instant::now();
    client.write_all(b".").unwrap();
    sent += 1;
    run_until(&mut ev, "the last byte", |_| log.count("read") >= sent);
    run_until(&mut ev, "the idle close", |ev| !ev.contains(token));
    assert!(
        at.borrow()[0] >= last + IDLE,
        "not before the last byte + the timeout"
    );
    let tail: Vec<String> = log.entries().into_iter().filter(|e| e != "read").collect();
    assert_eq!(tail, ["timeout:Idle", "close"]);
}

/// A dispatcher that keeps the channel sees the idle timeout again, one period after the
/// previous one; clearing the timeout stops it.
fn idle_refires_when_kept(backend: Backend) {
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (server, _client) = tcp_pair();
    let period = Duration::from_millis(30);
    let mut ch = Channel::from_socket(server).unwrap();
    ch.set_idle_timeout(Some(period));
    let (rec, at) = Recorder::new(&log, true);
    let start = Instant::now();
    let token = ev.add(ch, rec).unwrap();
    run_until(&mut ev, "three idle timeouts", |_| at.borrow().len() >= 3);
    {
        // The k-th timeout (from 0) comes at least k + 1 periods after the start: each
        // re-fires one period after the loop's clock reading for the previous one (which
        // the hook's own reading may trail under load, so gaps between the hooks' readings
        // are not compared).
        let at = at.borrow();
        for (k, t) in at.iter().enumerate() {
            assert!(
                *t >= start + period * (k as u32 + 1),
                "timeout {k} after {:?}",
                *t - start
            );
        }
    }
    assert!(ev.contains(token));
    assert!(log.entries().iter().all(|e| e == "timeout:Idle"));
    // Cleared: no more timeouts.
    ev.channel_mut(token).unwrap().set_idle_timeout(None);
    let n = at.borrow().len();
    let until = Instant::now() + period * 4;
    while Instant::now() < until {
        ev.poll_once(Some(util::STEP)).unwrap();
    }
    assert_eq!(at.borrow().len(), n, "no timeout after clearing it");
    ev.close(token);
    assert_eq!(ev.timers(), 0);
}

/// A connect that stays in progress: `handle_timeout(Connect)` after the connect timeout
/// (never before), and the default-like close; no `handle_connect`, no error.
fn connect_timeout_fires(backend: Backend) {
    connect_timeout_case(backend, true);
}

/// The same with the timeout set after `connect` was called: the clock still starts at
/// the connect.
fn connect_timeout_set_after_connect(backend: Backend) {
    connect_timeout_case(backend, false);
}

fn connect_timeout_case(backend: Backend, before: bool) {
    let Some((_listener, _queued, addr)) = full_listener() else {
        util::skip("could not fill a backlog-0 accept queue on loopback");
        return;
    };
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let timeout = Duration::from_millis(100);
    let mut ch = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    if before {
        ch.set_connect_timeout(Some(timeout));
    }
    let start = Instant::now();
    ch.connect(addr).unwrap();
    if !before {
        ch.set_connect_timeout(Some(timeout));
    }
    assert_eq!(ch.connect_timeout(), Some(timeout));
    assert!(ch.is_connecting());
    let (rec, at) = Recorder::new(&log, false);
    let token = ev.add(ch, rec).unwrap();
    run_until(&mut ev, "the connect timeout", |ev| !ev.contains(token));
    step(&mut ev, 3);
    assert_eq!(log.entries(), ["timeout:Connect", "close"]);
    assert!(at.borrow()[0] >= start + timeout, "never early");
    assert_eq!(ev.timers(), 0);
}

/// Kept open after a connect timeout: it fires again one period later while the connect
/// is still in progress.
fn connect_timeout_refires_when_kept(backend: Backend) {
    let Some((_listener, _queued, addr)) = full_listener() else {
        util::skip("could not fill a backlog-0 accept queue on loopback");
        return;
    };
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let timeout = Duration::from_millis(40);
    let mut ch = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    ch.set_connect_timeout(Some(timeout));
    let start = Instant::now();
    ch.connect(addr).unwrap();
    let (rec, at) = Recorder::new(&log, true);
    let token = ev.add(ch, rec).unwrap();
    run_until(&mut ev, "two connect timeouts", |_| at.borrow().len() >= 2);
    let at = at.borrow();
    assert!(at[0] >= start + timeout);
    assert!(
        at[1] >= start + timeout * 2,
        "re-fired after {:?}",
        at[1] - start
    );
    assert!(ev.channel(token).unwrap().is_connecting());
    assert_eq!(log.entries(), ["timeout:Connect", "timeout:Connect"]);
    ev.close(token);
}

/// A connect that completes in time: `handle_connect`, and the connect timeout never
/// fires afterwards (an idle connected channel with no idle timeout stays open).
fn completed_connect_never_times_out(backend: Backend) {
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let timeout = Duration::from_millis(50);
    let mut ch = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    ch.set_connect_timeout(Some(timeout));
    ch.connect(l.local_addr().unwrap()).unwrap();
    let (rec, _) = Recorder::new(&log, false);
    let token = ev.add(ch, rec).unwrap();
    run_until(&mut ev, "the connect", |_| log.has("connect"));
    let until = Instant::now() + timeout * 3;
    while Instant::now() < until {
        ev.poll_once(Some(util::STEP)).unwrap();
    }
    assert_eq!(log.entries(), ["connect"]);
    assert!(ev.channel(token).unwrap().is_connected());
    ev.close(token);
    assert_eq!(ev.timers(), 0);
}

/// A refused connect (nothing listening) with a connect timeout: an error and a close as
/// before; the timeout never fires after the close and no timer is left.
fn refused_connect_no_timeout(backend: Backend) {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let timeout = Duration::from_millis(30);
    let mut ch = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    ch.set_connect_timeout(Some(timeout));
    ch.set_idle_timeout(Some(timeout));
    ch.connect(dead).unwrap();
    let (rec, _) = Recorder::new(&log, false);
    let token = ev.add(ch, rec).unwrap();
    run_until(&mut ev, "the refused channel closed", |ev| {
        !ev.contains(token)
    });
    let until = Instant::now() + timeout * 3;
    while Instant::now() < until {
        ev.poll_once(Some(util::STEP)).unwrap();
    }
    assert_eq!(log.entries(), ["error:ConnectionRefused", "close"]);
    assert_eq!(ev.timers(), 0);
}

backend_tests!(
    idle_timeout_closes,
    default_handle_timeout_closes,
    activity_postpones_idle,
    idle_refires_when_kept,
    connect_timeout_fires,
    connect_timeout_refires_when_kept,
    completed_connect_never_times_out,
    refused_connect_no_timeout,
    connect_timeout_set_after_connect,
);
