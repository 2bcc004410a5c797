//! Flow-control building blocks: `pause_reading` / `resume_reading` on this channel or
//! another one (re-asked by the loop with no touch), `handle_drained` when the queue
//! falls to the low-water mark, `shutdown_when_done`, and the debug-build check that warns
//! about a cached predicate whose answer changed without a touch.

use crate::util;

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::util::{run_until, Log};
use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop, Token};

/// Counts bytes read; pauses the `target` channel when it reads "pause", resumes it on
/// "resume".
struct Controller {
    target: Token,
}

impl Dispatcher for Controller {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 64];
        let n = ctx.recv(&mut buf)?;
        let target = ctx.channel_mut(self.target).unwrap();
        match &buf[..n] {
            b"pause" => target.pause_reading(),
            b"resume" => target.resume_reading(),
            _ => {}
        }
        Ok(())
    }
}

struct Counter {
    read: Rc<Cell<usize>>,
}

impl Dispatcher for Counter {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 64];
        let n = ctx.recv(&mut buf)?;
        self.read.set(self.read.get() + n);
        Ok(())
    }
}

fn pause_and_resume_another_channel(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let read = Rc::new(Cell::new(0));
    let (t_ch, mut t_peer) = util::unix_channel();
    let target = ev.add(t_ch, Counter { read: read.clone() }).unwrap();
    let (c_ch, mut c_peer) = util::unix_channel();
    ev.add(c_ch, Controller { target }).unwrap();

    t_peer.write_all(b"a").unwrap();
    run_until(&mut ev, "the first byte", |_| read.get() == 1);
    c_peer.write_all(b"pause").unwrap();
    run_until(&mut ev, "paused", |ev| {
        ev.channel(target).unwrap().is_reading_paused()
    });
    t_peer.write_all(b"b").unwrap();
    util::step(&mut ev, 10);
    assert_eq!(read.get(), 1, "{backend}: a paused channel is not read");
    c_peer.write_all(b"resume").unwrap();
    run_until(&mut ev, "the byte sent while paused", |_| read.get() == 2);
}

/// Records `handle_drained` calls and keeps the queue it is given.
struct Drainer {
    log: Log,
}

impl Dispatcher for Drainer {
    fn handle_drained(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push(format!("drained:{}", ctx.pending_output()));
        Ok(())
    }
}

fn drained_runs_once_per_fall_to_the_low_water_mark(backend: Backend) {
    for low in [0, 100_000] {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        let log = Log::default();
        let (mut ch, mut peer) = util::unix_channel();
        ch.set_low_water(low);
        let token = ev.add(ch, Drainer { log: log.clone() }).unwrap();
        // Far more than the socket takes: the rest is queued.
        ev.channel_mut(token)
            .unwrap()
            .push(&vec![7u8; 4_000_000])
            .unwrap();
        assert!(ev.channel(token).unwrap().pending_output() > low);
        util::step(&mut ev, 3);
        assert!(log.entries().is_empty(), "{backend}: not drained yet");
        let mut got = Vec::new();
        run_until(&mut ev, "drained", |_| {
            util::read_available(&mut peer, &mut got);
            !log.entries().is_empty()
        });
        let entries = log.entries();
        let at: usize = entries[0]
            .strip_prefix("drained:")
            .unwrap()
            .parse()
            .unwrap();
        assert!(at <= low, "{backend}: ran at {at} bytes queued, mark {low}");
        run_until(&mut ev, "everything read", |_| {
            util::read_available(&mut peer, &mut got);
            got.len() == 4_000_000
        });
        util::step(&mut ev, 3);
        assert_eq!(
            log.entries().len(),
            1,
            "{backend}: once per fall: {entries:?}"
        );
    }
}

fn shutdown_when_done_sends_then_half_closes(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let read = Rc::new(Cell::new(0));
    let (ch, peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let token = ev
        .add(
            Channel::from_socket(ch).unwrap(),
            Counter { read: read.clone() },
        )
        .unwrap();
    let big = util::pattern(3_000_000);
    let ch = ev.channel_mut(token).unwrap();
    ch.push(&big).unwrap();
    ch.shutdown_when_done();
    let err = ch.push(b"late").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(!ch.is_closing(), "a shutdown is not a close");
    let reader = std::thread::spawn(move || {
        let mut peer = peer;
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap(); // end of file: the shutdown
        peer.write_all(b"still listening?").unwrap();
        (got, peer)
    });
    run_until(&mut ev, "the reply after the shutdown", |_| {
        read.get() == 16
    });
    let (got, _peer) = reader.join().unwrap();
    assert!(
        got == big,
        "{backend}: everything before the shutdown arrived"
    );
    // A close after the shutdown still closes.
    ev.channel_mut(token).unwrap().close_when_done();
    run_until(&mut ev, "closed", |ev| !ev.contains(token));
}

/// readable() follows a flag the loop cannot see (no touch).
#[cfg(debug_assertions)]
struct Hidden {
    open: Rc<Cell<bool>>,
    read: Rc<Cell<usize>>,
}

#[cfg(debug_assertions)]
impl Dispatcher for Hidden {
    fn readable(&self, _: &Channel) -> bool {
        self.open.get()
    }
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 64];
        let n = ctx.recv(&mut buf)?;
        self.read.set(self.read.get() + n);
        Ok(())
    }
}

/// Debug builds: a predicate that changed without a touch is noticed within about a
/// second (and the channel served), not left stale forever.
#[cfg(debug_assertions)]
fn debug_builds_notice_a_stale_predicate(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let open = Rc::new(Cell::new(false));
    let read = Rc::new(Cell::new(0));
    let (ch, mut peer) = util::unix_channel();
    ev.add(
        ch,
        Hidden {
            open: open.clone(),
            read: read.clone(),
        },
    )
    .unwrap();
    peer.write_all(b"x").unwrap();
    util::step(&mut ev, 5);
    assert_eq!(read.get(), 0);
    open.set(true); // no touch
    let start = Instant::now();
    run_until(&mut ev, "the stale predicate re-asked", |_| read.get() == 1);
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[cfg(not(debug_assertions))]
fn debug_builds_notice_a_stale_predicate(_: Backend) {}

backend_tests!(
    pause_and_resume_another_channel,
    drained_runs_once_per_fall_to_the_low_water_mark,
    shutdown_when_done_sends_then_half_closes,
    debug_builds_notice_a_stale_predicate,
);
