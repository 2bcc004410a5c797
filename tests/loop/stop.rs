//! Stopping and bounding `run`: `stop_now` returns right after the hook (asyncore's
//! `ExitNow`), `stop` after the iteration; `count` bounds the iterations exactly; an empty
//! map returns at once, even with no timeout.

use std::cell::Cell;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use crate::util::{unix_channel, within, STEP};
use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop};

/// How the next hook to run stops the loop.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Armed {
    Now,
    Graceful,
}

#[derive(Default)]
struct Shared {
    calls: Cell<usize>,
    armed: Cell<Option<Armed>>,
}

/// Never consumes its input, so it is ready on every iteration; counts its hooks.
struct Sticky {
    shared: Rc<Shared>,
}

impl Dispatcher for Sticky {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.shared.calls.set(self.shared.calls.get() + 1);
        match self.shared.armed.take() {
            Some(Armed::Now) => ctx.handle().stop_now(),
            Some(Armed::Graceful) => ctx.handle().stop(),
            _ => {}
        }
        Ok(())
    }
}

/// `n` channels that stay readable, and their peers (kept open).
fn sticky_loop(backend: Backend, n: usize) -> (EventLoop, Rc<Shared>, Vec<UnixStream>) {
    let shared = Rc::new(Shared::default());
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut peers = Vec::new();
    for _ in 0..n {
        let (ch, mut peer) = unix_channel();
        peer.write_all(b"unread").unwrap();
        ev.add(
            ch,
            Sticky {
                shared: shared.clone(),
            },
        )
        .unwrap();
        peers.push(peer);
    }
    (ev, shared, peers)
}

fn stop_now_returns_after_the_hook(backend: Backend) {
    let (mut ev, shared, _peers) = sticky_loop(backend, 2);
    shared.armed.set(Some(Armed::Now));
    ev.run(Some(STEP), Some(100)).unwrap();
    assert_eq!(
        shared.calls.get(),
        1,
        "the other ready channel got no hook after stop_now"
    );
    // Nothing is lost: the next iteration reports both again.
    ev.run(Some(STEP), Some(1)).unwrap();
    assert_eq!(shared.calls.get(), 3);
}

fn stop_finishes_the_iteration(backend: Backend) {
    let (mut ev, shared, _peers) = sticky_loop(backend, 2);
    shared.armed.set(Some(Armed::Graceful));
    ev.run(Some(STEP), Some(100)).unwrap();
    assert_eq!(
        shared.calls.get(),
        2,
        "both channels ran in the one iteration, then run returned"
    );
    assert_eq!(shared.armed.get(), None);
}

fn count_bounds_iterations(backend: Backend) {
    let (mut ev, shared, _peers) = sticky_loop(backend, 1);
    ev.run(Some(STEP), Some(7)).unwrap();
    assert_eq!(shared.calls.get(), 7);
    ev.run(Some(STEP), Some(0)).unwrap();
    assert_eq!(shared.calls.get(), 7, "count 0 runs no iteration");
    // With no timeout: the channel is ready, so each iteration returns at once.
    ev.run(None, Some(3)).unwrap();
    assert_eq!(shared.calls.get(), 10);
}

fn empty_map_returns_at_once(backend: Backend) {
    within(5, "run on an empty map", move || {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        ev.run(None, None).unwrap();
        ev.run(None, Some(5)).unwrap();
        // Emptied by close_all.
        let (ch, _peer) = unix_channel();
        ev.add(
            ch,
            Sticky {
                shared: Rc::default(),
            },
        )
        .unwrap();
        ev.close_all();
        ev.run(None, None).unwrap();
    });
}

/// Closes itself on its first read, after adding a successor that does the same, `left`
/// more times: the loop runs while channels remain, and returns when the last closes.
struct Relay {
    left: usize,
    hops: Rc<Cell<usize>>,
}

impl Dispatcher for Relay {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.hops.set(self.hops.get() + 1);
        if self.left > 0 {
            // The successor's input comes from a pair end that closes once it is sent.
            let (a, mut b) = Channel::pair()?;
            b.push(b"go")?;
            b.close_when_done();
            ctx.handle().add(
                a,
                Relay {
                    left: self.left - 1,
                    hops: self.hops.clone(),
                },
            )?;
            ctx.handle().add(b, Sender)?;
        }
        ctx.close();
        Ok(())
    }
}

/// Only sends what was pushed to it.
struct Sender;

impl Dispatcher for Sender {}

fn runs_while_channels_remain(backend: Backend) {
    let hops = within(5, "run until the map is empty", move || {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        let hops = Rc::new(Cell::new(0));
        let (ch, mut peer) = unix_channel();
        peer.write_all(b"go").unwrap();
        ev.add(
            ch,
            Relay {
                left: 3,
                hops: hops.clone(),
            },
        )
        .unwrap();
        ev.run(None, None).unwrap();
        assert!(ev.is_empty());
        hops.get()
    });
    assert_eq!(hops, 4, "every channel added by a hook was served");
}

/// Stops the loop from `handle_close`.
struct StopOnClose {
    now: bool,
}

impl Dispatcher for StopOnClose {
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        if self.now {
            ctx.handle().stop_now();
        } else {
            ctx.handle().stop();
        }
        ctx.close();
        Ok(())
    }
}

/// `handle_close` can also run before the wait, for a channel whose close was decided
/// outside any hook (here `close_when_done` on an empty queue, from the caller). A stop
/// asked there must not leave `run(None, ..)` waiting for an event that never comes.
fn stop_from_close_before_the_wait(backend: Backend, now: bool) {
    within(
        5,
        "run after a stop from a deferred handle_close",
        move || {
            let mut ev = EventLoop::with_backend(backend).unwrap();
            let (idle, _idle_peer) = unix_channel();
            ev.add(idle, Sender).unwrap();
            let (ch, _peer) = unix_channel();
            let token = ev.add(ch, StopOnClose { now }).unwrap();
            ev.run(Some(STEP), Some(2)).unwrap();
            ev.channel_mut(token).unwrap().close_when_done();
            ev.run(None, None).unwrap();
            assert!(!ev.contains(token));
            assert_eq!(ev.len(), 1);
        },
    );
}

fn stop_now_from_close_before_the_wait(backend: Backend) {
    stop_from_close_before_the_wait(backend, true);
}

fn stop_from_close_before_the_wait_graceful(backend: Backend) {
    stop_from_close_before_the_wait(backend, false);
}

backend_tests!(
    stop_now_returns_after_the_hook,
    stop_finishes_the_iteration,
    count_bounds_iterations,
    empty_map_returns_at_once,
    runs_while_channels_remain,
    stop_now_from_close_before_the_wait,
    stop_from_close_before_the_wait_graceful,
);
