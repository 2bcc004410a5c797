//! An idle loop does not spin: with default predicates a connected channel is not
//! watched for writing, a channel that wants nothing is not registered at all (with
//! epoll: deregistered, even after its peer hung up), so each iteration waits its full
//! timeout. In `Mode::Exact` predicates are asked every iteration; in `Mode::Scalable` an
//! idle channel's are not re-asked.

use std::cell::Cell;
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::util::{listener, run_until, tcp_pair, unix_channel};
use sockloop::{Backend, Channel, Dispatcher, EventLoop, Mode};

/// Default predicates; counts how often the loop asks them.
#[derive(Default)]
struct Counted {
    readable: Rc<Cell<usize>>,
    writable: Rc<Cell<usize>>,
    reads: Rc<Cell<usize>>,
    /// `readable` calls counted when the last read ran.
    asked_at_read: Rc<Cell<usize>>,
}

impl Dispatcher for Counted {
    fn readable(&self, _: &Channel) -> bool {
        self.readable.set(self.readable.get() + 1);
        true
    }
    fn writable(&self, ch: &Channel) -> bool {
        self.writable.set(self.writable.get() + 1);
        ch.is_connecting() || ch.has_pending_output()
    }
    fn handle_read(&mut self, ctx: &mut sockloop::Context<'_>) -> std::io::Result<()> {
        self.reads.set(self.reads.get() + 1);
        self.asked_at_read.set(self.readable.get());
        let mut buf = [0u8; 1024];
        ctx.recv(&mut buf)?;
        Ok(())
    }
}

/// Wants nothing once `active` is turned off.
struct Dormant {
    active: bool,
}

impl Dispatcher for Dormant {
    fn readable(&self, _: &Channel) -> bool {
        self.active
    }
    fn writable(&self, _: &Channel) -> bool {
        false
    }
}

struct Idle;
impl Dispatcher for Idle {}

fn does_not_spin(backend: Backend, mode: Mode) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    ev.set_mode(mode);
    // A connected TCP channel with the default predicates, its peer open and quiet.
    let (server, _client) = tcp_pair();
    ev.add(Channel::from_socket(server).unwrap(), Idle).unwrap();
    // An idle listener.
    let (l, _) = listener("127.0.0.1:0");
    ev.add(l, Idle).unwrap();
    // A Unix channel that was watched, then wants nothing, and whose peer then hangs up:
    // a registration with no interest would report the hang-up forever.
    let (ch, peer) = unix_channel();
    let dormant = ev.add(ch, Dormant { active: true }).unwrap();
    ev.poll_once(Some(Duration::from_millis(1))).unwrap();
    ev.dispatcher_mut::<Dormant>(dormant).unwrap().active = false;
    ev.poll_once(Some(Duration::from_millis(1))).unwrap();
    drop(peer);

    let start = Instant::now();
    let mut iterations = 0;
    let mut dispatched = 0;
    while start.elapsed() < Duration::from_millis(300) {
        dispatched += ev.poll_once(Some(Duration::from_millis(100))).unwrap();
        iterations += 1;
    }
    assert!(
        iterations < 10,
        "{backend} {mode:?}: {iterations} iterations in 300 ms: the loop spins"
    );
    assert_eq!(dispatched, 0, "{backend} {mode:?}: nothing was ready");
    assert_eq!(ev.len(), 3);
}

fn scalable_does_not_spin(backend: Backend) {
    does_not_spin(backend, Mode::Scalable);
}

fn exact_does_not_spin(backend: Backend) {
    does_not_spin(backend, Mode::Exact);
}

fn predicate_calls(backend: Backend, mode: Mode) -> (usize, usize) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    ev.set_mode(mode);
    let counted = Counted::default();
    let (readable, writable, reads, asked_at_read) = (
        counted.readable.clone(),
        counted.writable.clone(),
        counted.reads.clone(),
        counted.asked_at_read.clone(),
    );
    let (ch, mut peer) = unix_channel();
    ev.add(ch, counted).unwrap();
    let idle = Duration::from_millis(1);
    for _ in 0..5 {
        ev.poll_once(Some(idle)).unwrap();
    }
    let first = (readable.get(), writable.get());
    // A hook runs: in either mode the predicates are asked again afterwards.
    peer.write_all(b"x").unwrap();
    run_until(&mut ev, "the channel read", |_| reads.get() == 1);
    for _ in 0..5 {
        ev.poll_once(Some(idle)).unwrap();
    }
    assert!(
        readable.get() > asked_at_read.get(),
        "{mode:?}: predicates re-asked after a hook ran"
    );
    first
}

fn exact_asks_every_iteration(backend: Backend) {
    assert_eq!(predicate_calls(backend, Mode::Exact), (5, 5));
}

fn scalable_asks_idle_channel_once(backend: Backend) {
    assert_eq!(predicate_calls(backend, Mode::Scalable), (1, 1));
}

backend_tests!(
    scalable_does_not_spin,
    exact_does_not_spin,
    exact_asks_every_iteration,
    scalable_asks_idle_channel_once,
);
