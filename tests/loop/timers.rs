//! Timers: `call_later` / `call_at` / `call_every` / `cancel` on the loop and from hooks.
//! A timer never fires early; equal deadlines fire in the order set; the wait is bounded
//! by the next deadline; `run` keeps going while timers are pending and returns after the
//! last one; cancelled timers never fire and stale ids cancel nothing; 10,000 far-future
//! timers do not disturb the loop's channels.

use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::util::{
    listener, read_available, run_until, step, unix_channel, within, EchoServer, Log,
};
use sockloop::{Backend, Context, Dispatcher, EventLoop, LoopHandle, TimerId, Token};

/// A small deterministic generator (xorshift), so the "random" delays are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// An idle listener: keeps `run` going without ever becoming ready.
fn idle_listener(ev: &mut LoopHandle) -> Token {
    let (ch, _) = listener("127.0.0.1:0");
    ev.add(
        ch,
        EchoServer {
            log: Log::default(),
        },
    )
    .unwrap()
}

/// 300 timers with delays of 0..30 ms (microsecond resolution): each fires at or after its
/// deadline, all of them fire exactly once, and `run` with only timers returns after the
/// last one.
fn never_early(backend: Backend) {
    within(30, "timers never early", move || {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ backend.name().len() as u64);
        let fired: Rc<RefCell<Vec<(usize, Instant, Instant)>>> = Rc::default();
        const N: usize = 300;
        for i in 0..N {
            let delay = Duration::from_micros(rng.next() % 30_000);
            let deadline = Instant::now() + delay;
            let fired = fired.clone();
            if i % 2 == 0 {
                ev.call_later(delay, move |_, _| {
                    fired.borrow_mut().push((i, deadline, Instant::now()))
                });
            } else {
                ev.call_at(deadline, move |_, _| {
                    fired.borrow_mut().push((i, deadline, Instant::now()))
                });
            }
        }
        assert_eq!(ev.timers(), N);
        ev.run(Some(Duration::from_secs(1)), Some(100_000)).unwrap();
        let fired = fired.borrow();
        assert_eq!(fired.len(), N, "every timer fired, and run returned after");
        let mut seen = vec![false; N];
        for &(i, deadline, at) in fired.iter() {
            assert!(!seen[i], "timer {i} fired twice");
            seen[i] = true;
            assert!(at >= deadline, "timer {i} fired {:?} early", deadline - at);
        }
        assert_eq!(ev.timers(), 0);
    });
}

/// Timers set with one `Instant` fire in the order they were set, in one pass.
fn equal_deadlines_in_order(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let order: Rc<RefCell<Vec<usize>>> = Rc::default();
    let at = Instant::now() + Duration::from_millis(15);
    for i in 0..100 {
        let order = order.clone();
        ev.call_at(at, move |_, _| order.borrow_mut().push(i));
    }
    // Also a timer already in the past, all at the same instant.
    let past = Instant::now();
    for i in 100..110 {
        let order = order.clone();
        ev.call_at(past, move |_, _| order.borrow_mut().push(i));
    }
    run_until(&mut ev, "all timers fired", |_| order.borrow().len() == 110);
    let expect: Vec<usize> = (100..110).chain(0..100).collect();
    assert_eq!(*order.borrow(), expect);
}

/// The wait is min(run timeout, next deadline): one iteration with a 10 s timeout and an
/// idle listener returns when a 20 ms timer is due, and runs it.
fn wait_bounded_by_next_deadline(backend: Backend) {
    within(20, "run(10 s, 1 iteration)", move || {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        idle_listener(&mut ev);
        let ran = Rc::new(Cell::new(None));
        let start = Instant::now();
        let r = ran.clone();
        ev.call_later(Duration::from_millis(20), move |_, _| {
            r.set(Some(Instant::now()))
        });
        ev.run(Some(Duration::from_secs(10)), Some(1)).unwrap();
        let elapsed = start.elapsed();
        let at = ran.get().expect("the timer ran in that one iteration");
        assert!(at >= start + Duration::from_millis(20), "never early");
        assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
        assert_eq!(ev.timers(), 0);
        assert_eq!(ev.len(), 1, "the listener is untouched");
    });
}

/// With no channels, `run(None, None)` keeps going while timers are pending, and returns
/// once the last one has fired (nothing is left to wake it).
fn run_returns_after_last_timer(backend: Backend) {
    within(20, "run with only timers", move || {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        let fired = Rc::new(Cell::new(0));
        let start = Instant::now();
        for ms in [10, 30, 20] {
            let fired = fired.clone();
            ev.call_later(Duration::from_millis(ms), move |_, _| {
                fired.set(fired.get() + 1)
            });
        }
        ev.run(None, None).unwrap();
        assert_eq!(fired.get(), 3);
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!(ev.timers(), 0);
        // Nothing left: returns at once.
        ev.run(None, None).unwrap();
    });
}

/// A periodic timer ticks N times and is cancelled from inside its own callback; `run`
/// then returns (no timer left), and the id is spent.
fn periodic_cancelled_from_inside(backend: Backend) {
    within(20, "periodic timer", move || {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        let ticks: Rc<RefCell<Vec<Instant>>> = Rc::default();
        let id: Rc<Cell<Option<TimerId>>> = Rc::default();
        let cancel_result = Rc::new(Cell::new(None));
        let start = Instant::now();
        let period = Duration::from_millis(5);
        let (t, i, c) = (ticks.clone(), id.clone(), cancel_result.clone());
        let timer = ev.call_every(period, move |lp, _| {
            t.borrow_mut().push(Instant::now());
            if t.borrow().len() == 7 {
                c.set(Some(lp.cancel(i.get().unwrap())));
            }
        });
        id.set(Some(timer));
        assert_eq!(ev.timers(), 1);
        ev.run(Some(Duration::from_secs(1)), Some(10_000)).unwrap();
        let ticks = ticks.borrow();
        assert_eq!(ticks.len(), 7, "ticked 7 times, then stopped");
        assert_eq!(
            cancel_result.get(),
            Some(true),
            "cancel from inside succeeds"
        );
        for (k, at) in ticks.iter().enumerate() {
            assert!(
                *at >= start + period * (k as u32 + 1),
                "tick {k} early: {:?}",
                *at - start
            );
        }
        assert_eq!(ev.timers(), 0);
        assert!(
            !ev.cancel(timer),
            "a cancelled periodic timer cannot be cancelled twice"
        );
    });
}

/// A periodic timer whose loop was held up for several periods skips the ticks it
/// missed instead of running them in a burst: the loop is stalled for 6 periods inside
/// the first tick (the stall is the fault under test, not a wait); the next tick comes a
/// full period after the stalled one ended (never early), and no two later ticks come
/// closer than a quarter of a period (a burst of missed ticks runs them back to back,
/// microseconds apart; the quarter leaves room for a tick that runs late).
fn periodic_timer_skips_missed_ticks(backend: Backend) {
    within(20, "periodic timer after a stall", move || {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        idle_listener(&mut ev);
        let period = Duration::from_millis(30);
        // (start, end) of each tick.
        let ticks: Rc<RefCell<Vec<(Instant, Instant)>>> = Rc::default();
        let t = ticks.clone();
        ev.call_every(period, move |_, _| {
            let start = Instant::now();
            if t.borrow().is_empty() {
                std::thread::sleep(period * 6);
            }
            t.borrow_mut().push((start, Instant::now()));
        });
        run_until(&mut ev, "five ticks", |_| ticks.borrow().len() >= 5);
        let ticks = ticks.borrow();
        let after_stall = ticks[1].0 - ticks[0].1;
        assert!(
            after_stall >= period,
            "the tick after the stall came {after_stall:?} after it: a missed tick ran late"
        );
        for k in 2..ticks.len() {
            let gap = ticks[k].0 - ticks[k - 1].0;
            assert!(
                gap >= period / 4,
                "tick {k} came {gap:?} after tick {}: missed ticks ran in a burst",
                k - 1
            );
        }
    });
}

/// A periodic timer cancelled from outside its callback stops ticking.
fn periodic_cancelled_from_outside(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let id = ev.call_every(Duration::from_millis(2), move |_, _| t.set(t.get() + 1));
    run_until(&mut ev, "three ticks", |_| ticks.get() >= 3);
    assert!(ev.cancel(id));
    let seen = ticks.get();
    step(&mut ev, 5);
    assert_eq!(ticks.get(), seen, "no tick after cancel");
    assert_eq!(ev.timers(), 0);
}

/// Cancelling before the deadline: the timer never fires; `cancel` is true once, then
/// false; cancelling a timer that fired is false.
fn cancel_before_due(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let l = log.clone();
    let doomed = ev.call_later(Duration::from_millis(10), move |_, _| l.push("doomed"));
    let l = log.clone();
    let kept = ev.call_later(Duration::from_millis(30), move |_, _| l.push("kept"));
    assert_eq!(ev.timers(), 2);
    assert!(ev.cancel(doomed));
    assert!(!ev.cancel(doomed), "second cancel");
    assert_eq!(ev.timers(), 1);
    within_loop(&mut ev);
    assert_eq!(log.entries(), ["kept"]);
    assert!(!ev.cancel(kept), "already fired");
}

/// Runs `ev` until nothing is left, bounded in count.
fn within_loop(ev: &mut EventLoop) {
    let start = Instant::now();
    ev.run(Some(Duration::from_millis(100)), Some(200)).unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// A stale id (cancelled, or fired) never cancels a newer timer that reuses its slot.
fn stale_id_cancels_nothing(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let a = ev.call_later(Duration::from_millis(5), |_, _| {});
    assert!(ev.cancel(a));
    let l = log.clone();
    let b = ev.call_later(Duration::from_millis(5), move |_, _| l.push("b"));
    assert_ne!(a, b);
    assert!(!ev.cancel(a), "stale id after cancel");
    within_loop(&mut ev);
    assert_eq!(log.entries(), ["b"]);
    // b fired; its slot is reused by c; b's id must not cancel c.
    let l = log.clone();
    let c = ev.call_later(Duration::from_millis(5), move |_, _| l.push("c"));
    assert!(!ev.cancel(b), "stale id after firing");
    within_loop(&mut ev);
    assert_eq!(log.entries(), ["b", "c"]);
    assert!(!ev.cancel(c));
}

/// A timer set by a timer callback runs in a later iteration, never in the same pass: a
/// zero-delay timer that re-arms itself advances one link per iteration.
fn timer_set_by_timer_waits_for_next_iteration(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let count = Rc::new(Cell::new(0));
    fn link(count: Rc<Cell<usize>>, lp: &mut LoopHandle) {
        count.set(count.get() + 1);
        if count.get() < 1000 {
            lp.call_later(Duration::ZERO, move |lp, _| link(count, lp));
        }
    }
    let c = count.clone();
    ev.call_later(Duration::ZERO, move |lp, _| link(c, lp));
    for i in 1..=5 {
        ev.poll_once(Some(Duration::from_millis(100))).unwrap();
        assert_eq!(count.get(), i, "one link per iteration");
    }
    ev.run(Some(Duration::from_millis(100)), Some(5000))
        .unwrap();
    assert_eq!(count.get(), 1000);
}

/// The same with timers that are already due when set: each link re-arms itself with
/// `call_at` a deadline in the past, so only the rule "timers set during this pass wait
/// for a later pass" (not the clock) keeps it to one link per iteration; `run` with a
/// count returns although the chain never ends by itself.
fn timer_set_due_by_timer_waits_for_next_iteration(backend: Backend) {
    within(20, "a self-re-arming due timer", move || {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        idle_listener(&mut ev);
        let count = Rc::new(Cell::new(0usize));
        let past = Instant::now();
        fn link(count: Rc<Cell<usize>>, past: Instant, lp: &mut LoopHandle) {
            count.set(count.get() + 1);
            // Bounded, so that a broken loop fails the assertions instead of hanging.
            if count.get() < 10_000 {
                lp.call_at(past, move |lp, _| link(count, past, lp));
            }
        }
        let c = count.clone();
        ev.call_at(past, move |lp, _| link(c, past, lp));
        for i in 1..=5 {
            ev.poll_once(Some(Duration::from_secs(1))).unwrap();
            assert_eq!(count.get(), i, "one link per iteration");
        }
        ev.run(Some(Duration::from_secs(1)), Some(10)).unwrap();
        assert_eq!(count.get(), 15, "one link per iteration of run");
        assert_eq!(ev.timers(), 1, "the next link is pending");
    });
}

/// `EventLoop::stop` from a timer ends `run(None, None)` that has a listener.
fn stop_from_timer(backend: Backend) {
    within(20, "stop from a timer", move || {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        idle_listener(&mut ev);
        ev.call_later(Duration::from_millis(20), |lp, _| lp.stop());
        ev.run(None, None).unwrap();
        assert_eq!(ev.len(), 1);
    });
}

/// Reads "go", then sets timers from the hook: one pushes a reply through the loop, a
/// later one asks for the close.
struct Scheduler {
    log: Log,
}

impl Dispatcher for Scheduler {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 64];
        let n = ctx.recv(&mut buf)?;
        if &buf[..n] != b"go" {
            return Ok(());
        }
        self.log.push("read");
        let token = ctx.token();
        let set = Instant::now();
        let log = self.log.clone();
        ctx.handle()
            .call_later(Duration::from_millis(10), move |lp, _| {
                assert!(Instant::now() >= set + Duration::from_millis(10));
                log.push("push timer");
                lp.channel_mut(token)
                    .unwrap()
                    .push(b"from a timer")
                    .unwrap();
            });
        let log = self.log.clone();
        ctx.handle()
            .call_later(Duration::from_millis(30), move |lp, _| {
                log.push("close timer");
                lp.channel_mut(token).unwrap().request_close();
            });
        // Set and cancelled from the hook: never fires.
        let log = self.log.clone();
        let id = ctx
            .handle()
            .call_later(Duration::from_millis(5), move |_, _| log.push("cancelled"));
        assert!(ctx.handle().cancel(id));
        Ok(())
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("close");
        ctx.close();
        Ok(())
    }
}

/// Timers set from a hook with `Context::call_later` push data to the channel and close
/// it (through `request_close`, so `handle_close` runs once); a timer for a channel that
/// is gone finds nothing.
fn timers_from_hooks(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let (ch, mut peer) = unix_channel();
    let token = ev.add(ch, Scheduler { log: log.clone() }).unwrap();
    peer.write_all(b"go").unwrap();
    let mut got = Vec::new();
    let mut gone = false;
    run_until(&mut ev, "the reply and the close", |ev| {
        gone |= read_available(&mut peer, &mut got);
        gone && !ev.contains(token)
    });
    assert_eq!(got, b"from a timer");
    assert_eq!(
        log.entries(),
        ["read", "push timer", "close timer", "close"]
    );
    // A timer that outlives its channel: the token is stale, nothing happens.
    let found = Rc::new(Cell::new(None));
    let f = found.clone();
    ev.call_later(Duration::ZERO, move |lp, _| {
        f.set(Some(lp.channel_mut(token).is_some()))
    });
    within_loop(&mut ev);
    assert_eq!(found.get(), Some(false));
    assert_eq!(log.count("close"), 1);
}

/// 10,000 timers pending far in the future: the loop still serves an echo exchange, and
/// none of them fires; cancelling them all leaves none.
fn many_far_timers_do_not_disturb(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let fired = Rc::new(Cell::new(0usize));
    let mut ids = Vec::new();
    for i in 0..10_000u64 {
        let f = fired.clone();
        ids.push(ev.call_later(
            Duration::from_secs(3600) + Duration::from_millis(i),
            move |_, _| f.set(f.get() + 1),
        ));
    }
    assert_eq!(ev.timers(), 10_000);
    let log = Log::default();
    let (ch, addr) = listener("127.0.0.1:0");
    ev.add(ch, EchoServer { log: log.clone() }).unwrap();
    let mut client = std::net::TcpStream::connect(addr.as_socket().unwrap()).unwrap();
    client.set_nonblocking(true).unwrap();
    for round in 0..5 {
        let msg = format!("echo round {round}");
        client.write_all(msg.as_bytes()).unwrap();
        let mut got = Vec::new();
        run_until(&mut ev, "the echo", |_| {
            read_available(&mut client, &mut got);
            got.len() >= msg.len()
        });
        assert_eq!(got, msg.as_bytes());
    }
    assert_eq!(fired.get(), 0);
    assert_eq!(ev.timers(), 10_000);
    for id in ids {
        assert!(ev.cancel(id));
    }
    assert_eq!(ev.timers(), 0);
    ev.close_all();
}

/// A panicking timer callback is logged and the loop goes on: later timers still run, a
/// periodic timer that panicked is not re-armed. With `set_catch_panics(false)` the panic
/// propagates and the loop is still usable (and not kept alive by the dead timer).
fn panicking_timers(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    ev.call_later(Duration::ZERO, |_, _| panic!("one-shot timer panics"));
    ev.call_every(Duration::from_millis(1), |_, _| {
        panic!("periodic timer panics")
    });
    ev.call_later(Duration::from_millis(5), move |_, _| r.set(r.get() + 1));
    within_loop(&mut ev);
    assert_eq!(ran.get(), 1, "the timer after the panicking ones ran");
    assert_eq!(ev.timers(), 0, "the panicking periodic timer is gone");

    ev.set_catch_panics(false);
    ev.call_every(Duration::from_millis(1), |_, _| panic!("propagates"));
    let r = ran.clone();
    ev.call_later(Duration::from_millis(20), move |_, _| r.set(r.get() + 1));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ev.run(Some(Duration::from_millis(50)), Some(1000))
    }));
    assert!(caught.is_err(), "the panic propagated");
    assert_eq!(ev.timers(), 1, "the panicking periodic timer was dropped");
    within_loop(&mut ev);
    assert_eq!(ran.get(), 2, "the loop is usable after the panic");
}

backend_tests!(
    panicking_timers,
    never_early,
    equal_deadlines_in_order,
    wait_bounded_by_next_deadline,
    run_returns_after_last_timer,
    periodic_cancelled_from_inside,
    periodic_cancelled_from_outside,
    cancel_before_due,
    stale_id_cancels_nothing,
    timer_set_by_timer_waits_for_next_iteration,
    timer_set_due_by_timer_waits_for_next_iteration,
    periodic_timer_skips_missed_ticks,
    stop_from_timer,
    timers_from_hooks,
    many_far_timers_do_not_disturb,
);
