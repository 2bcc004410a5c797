//! `Remote`: closures sent from other threads run on the loop thread, in order, exactly
//! once; `stop` ends a blocked `run`; `wake` ends a blocked `poll_once`; once the loop is
//! dropped every method is an error (`NotConnected`), never a panic.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{listener, within, EchoServer, Log};
use sockloop::{Backend, EventLoop, Remote};

fn with_listener(backend: Backend) -> EventLoop {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (ch, _) = listener("127.0.0.1:0");
    ev.add(
        ch,
        EchoServer {
            log: Log::default(),
        },
    )
    .unwrap();
    ev
}

/// Closures sent from another thread run on the loop thread, in the order sent.
fn calls_run_on_loop_thread_in_order(backend: Backend) {
    within(20, "remote calls", move || {
        let mut ev = with_listener(backend);
        let remote = ev.remote().unwrap();
        let seen: Arc<Mutex<Vec<(thread::ThreadId, usize)>>> = Arc::default();
        let loop_thread = thread::current().id();
        let s = seen.clone();
        let sender = thread::spawn(move || {
            let me = thread::current().id();
            for i in 0..200 {
                let s = s.clone();
                remote
                    .call(move |_| s.lock().unwrap().push((thread::current().id(), i)))
                    .unwrap();
                if i % 50 == 0 {
                    thread::sleep(Duration::from_millis(2));
                }
            }
            remote.call(|lp| lp.stop()).unwrap();
            me
        });
        ev.run(Some(Duration::from_millis(100)), Some(1000))
            .unwrap();
        let sender_thread = sender.join().unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 200);
        for (k, &(tid, i)) in seen.iter().enumerate() {
            assert_eq!(i, k, "in the order sent");
            assert_eq!(tid, loop_thread, "on the loop thread");
            assert_ne!(tid, sender_thread);
        }
        assert_eq!(ev.len(), 1, "the listener is still there");
    });
}

/// A remote closure gets the whole loop: it can set a timer, which then fires.
fn call_sets_a_timer(backend: Backend) {
    within(20, "remote call sets a timer", move || {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        let remote = ev.remote().unwrap();
        // Keeps `run` alive until the call arrives.
        let keep = ev.call_later(Duration::from_secs(60), |_, _| {});
        let fired = Arc::new(AtomicBool::new(false));
        let f = fired.clone();
        thread::spawn(move || {
            remote
                .call(move |lp| {
                    lp.cancel(keep);
                    let f = f.clone();
                    lp.call_later(Duration::from_millis(5), move |_, _| {
                        f.store(true, Ordering::SeqCst)
                    });
                })
                .unwrap()
        });
        // Returns once the remote timer fired and nothing is left.
        ev.run(None, None).unwrap();
        assert!(fired.load(Ordering::SeqCst));
        assert_eq!(ev.timers(), 0);
    });
}

/// `stop` from another thread ends `run(None, None)` on a loop with a listener.
fn stop_from_another_thread(backend: Backend) {
    within(20, "run(None, None) stopped remotely", move || {
        let mut ev = with_listener(backend);
        let remote = ev.remote().unwrap();
        let start = Instant::now();
        let stopper = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            remote.stop()
        });
        ev.run(None, None).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(50));
        stopper.join().unwrap().unwrap();
        assert_eq!(ev.len(), 1, "stop closes nothing");
        // A stop is consumed by the run it ended: the next run is bounded by its count.
        ev.run(Some(Duration::from_millis(1)), Some(3)).unwrap();
    });
}

/// `wake` makes a `poll_once(None)` blocked with nothing ready return.
fn wake_unblocks_poll_once(backend: Backend) {
    within(20, "poll_once(None) woken", move || {
        let mut ev = with_listener(backend);
        let remote = ev.remote().unwrap();
        let start = Instant::now();
        let waker = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            remote.wake()
        });
        let n = ev.poll_once(None).unwrap();
        assert_eq!(n, 0, "a wake-up is not a channel event");
        assert!(start.elapsed() >= Duration::from_millis(50));
        waker.join().unwrap().unwrap();
        // The wake-up was consumed: a short poll now just times out.
        assert_eq!(ev.poll_once(Some(Duration::from_millis(5))).unwrap(), 0);
    });
}

/// A `Remote` alone does not keep `run` going.
fn remote_alone_does_not_keep_run_alive(backend: Backend) {
    within(10, "run with only a remote", move || {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        let _remote = ev.remote().unwrap();
        ev.run(None, None).unwrap();
    });
}

/// Sets a flag when dropped: tells whether a closure was dropped without running.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// After the loop is dropped every method of every clone is `NotConnected`; closures
/// queued but not run are dropped, not run; no panic.
fn after_drop_everything_errs(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let remote = ev.remote().unwrap();
    let clone = remote.clone();
    let ran = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    let (r, guard) = (ran.clone(), DropFlag(dropped.clone()));
    remote
        .call(move |_| {
            let _guard = &guard;
            r.store(true, Ordering::SeqCst);
        })
        .unwrap();
    drop(ev);
    assert!(!ran.load(Ordering::SeqCst), "never ran");
    assert!(dropped.load(Ordering::SeqCst), "dropped with the loop");

    let late_dropped = Arc::new(AtomicBool::new(false));
    let guard = DropFlag(late_dropped.clone());
    for r in [&remote, &clone] {
        assert_eq!(r.wake().unwrap_err().kind(), io::ErrorKind::NotConnected);
        assert_eq!(r.stop().unwrap_err().kind(), io::ErrorKind::NotConnected);
        assert_eq!(
            r.call(|_| panic!("must not run")).unwrap_err().kind(),
            io::ErrorKind::NotConnected
        );
    }
    let e = remote
        .call(move |_| {
            let _guard = &guard;
        })
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotConnected);
    assert!(
        late_dropped.load(Ordering::SeqCst),
        "a refused closure is dropped"
    );
    // From another thread too.
    let r = remote.clone();
    let kinds =
        thread::spawn(move || [r.wake(), r.stop(), r.call(|_| {})].map(|x| x.unwrap_err().kind()))
            .join()
            .unwrap();
    assert_eq!(kinds, [io::ErrorKind::NotConnected; 3]);
    let _ = format!("{remote:?}");
}

/// Many threads × many calls: each call runs exactly once, each thread's calls in order.
fn many_threads_each_call_once(backend: Backend) {
    const THREADS: usize = 8;
    const CALLS: usize = 500;
    within(60, "many remote calls", move || {
        let mut ev = with_listener(backend);
        let remote: Remote = ev.remote().unwrap();
        let counts: Arc<Vec<AtomicUsize>> =
            Arc::new((0..THREADS * CALLS).map(|_| AtomicUsize::new(0)).collect());
        let last: Arc<Vec<AtomicUsize>> =
            Arc::new((0..THREADS).map(|_| AtomicUsize::new(0)).collect());
        let order_ok = Arc::new(AtomicBool::new(true));
        let total = Arc::new(AtomicUsize::new(0));
        let senders: Vec<_> = (0..THREADS)
            .map(|t| {
                let remote = remote.clone();
                let (counts, last, order_ok, total) = (
                    counts.clone(),
                    last.clone(),
                    order_ok.clone(),
                    total.clone(),
                );
                thread::spawn(move || {
                    for i in 0..CALLS {
                        let (counts, last, order_ok, total) = (
                            counts.clone(),
                            last.clone(),
                            order_ok.clone(),
                            total.clone(),
                        );
                        remote
                            .call(move |lp| {
                                counts[t * CALLS + i].fetch_add(1, Ordering::SeqCst);
                                // i + 1 must follow i for the same thread.
                                if last[t].swap(i + 1, Ordering::SeqCst) != i {
                                    order_ok.store(false, Ordering::SeqCst);
                                }
                                if total.fetch_add(1, Ordering::SeqCst) + 1 == THREADS * CALLS {
                                    lp.stop();
                                }
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        ev.run(Some(Duration::from_millis(100)), Some(100_000))
            .unwrap();
        for s in senders {
            s.join().unwrap();
        }
        assert_eq!(total.load(Ordering::SeqCst), THREADS * CALLS);
        for (k, c) in counts.iter().enumerate() {
            assert_eq!(c.load(Ordering::SeqCst), 1, "call {k} ran once");
        }
        assert!(
            order_ok.load(Ordering::SeqCst),
            "each thread's calls in order"
        );
        // Nothing more arrives.
        ev.run(Some(Duration::from_millis(1)), Some(3)).unwrap();
        assert_eq!(total.load(Ordering::SeqCst), THREADS * CALLS);
    });
}

/// A call that posts another call through a `Remote` while the loop is draining its
/// inbox: the second call is not lost and runs without waiting for an unrelated wake-up
/// (each `poll_once` may wait 5 s; both calls run within two iterations, in well under
/// a second).
fn call_posted_while_draining_runs_promptly(backend: Backend) {
    within(20, "a call posted by a call", move || {
        let mut ev = with_listener(backend);
        let remote = ev.remote().unwrap();
        let log: Arc<Mutex<Vec<&str>>> = Arc::default();
        let (l, r) = (log.clone(), remote.clone());
        remote
            .call(move |_| {
                l.lock().unwrap().push("first");
                let l = l.clone();
                r.call(move |_| l.lock().unwrap().push("second")).unwrap();
            })
            .unwrap();
        let start = Instant::now();
        let mut iterations = 0;
        while log.lock().unwrap().len() < 2 && iterations < 3 {
            ev.poll_once(Some(Duration::from_secs(5))).unwrap();
            iterations += 1;
        }
        let took = start.elapsed();
        assert_eq!(*log.lock().unwrap(), ["first", "second"], "none lost");
        assert!(
            took < Duration::from_secs(1),
            "the second call waited {took:?} ({iterations} iterations) for another wake-up"
        );
    });
}

/// The same with the second call posted by another thread while the first one runs on
/// the loop (the first waits until the second is in the inbox).
fn call_posted_by_another_thread_while_draining_runs_promptly(backend: Backend) {
    within(20, "a call posted while another runs", move || {
        let mut ev = with_listener(backend);
        let remote = ev.remote().unwrap();
        let posted = Arc::new(AtomicBool::new(false));
        let second = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let p = posted.clone();
        remote
            .call(move |_| {
                started_tx.send(()).unwrap();
                let deadline = Instant::now() + Duration::from_secs(5);
                while !p.load(Ordering::SeqCst) {
                    assert!(
                        Instant::now() < deadline,
                        "the second call was never posted"
                    );
                    thread::yield_now();
                }
            })
            .unwrap();
        let (r, p, s) = (remote.clone(), posted.clone(), second.clone());
        let poster = thread::spawn(move || {
            started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
            r.call(move |_| s.store(true, Ordering::SeqCst)).unwrap();
            p.store(true, Ordering::SeqCst);
        });
        let start = Instant::now();
        let mut iterations = 0;
        while !second.load(Ordering::SeqCst) && iterations < 3 {
            ev.poll_once(Some(Duration::from_secs(5))).unwrap();
            iterations += 1;
        }
        poster.join().unwrap();
        let took = start.elapsed();
        assert!(second.load(Ordering::SeqCst), "the second call was lost");
        assert!(
            took < Duration::from_secs(1),
            "the second call waited {took:?} ({iterations} iterations) for another wake-up"
        );
    });
}

/// Sets `go` each time it reads: the loop is about to take its inbox in this iteration.
struct Starter {
    go: Arc<AtomicUsize>,
}

impl sockloop::Dispatcher for Starter {
    fn handle_read(&mut self, ctx: &mut sockloop::Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 64];
        let n = ctx.recv(&mut buf)?;
        self.go.fetch_add(n, Ordering::SeqCst);
        Ok(())
    }
}

/// The same from another thread, racing the loop's drain. Each round, a call A writes a
/// byte to a channel of the loop and wakes it, so the next iteration has a read event
/// and a wake-up: its `handle_read` tells the other thread, which posts call B after a
/// spin that varies from round to round (0 to 3 µs), so that some rounds post B while
/// the loop takes its inbox. Nothing else wakes the loop (each `poll_once` may wait
/// 3 s), yet B runs within a second, every round. (A stress check: a post that lands
/// between the loop taking its calls and clearing its wake-up counter is a window of
/// about 100 ns, which only some runs hit; the deterministic guard of that window is the
/// unit test `remote::tests::call_posted_during_take_is_taken_or_wakes_again`.)
fn calls_racing_the_drain_are_not_stranded(backend: Backend) {
    const ROUNDS: usize = 2000;
    within(60, "racing calls", move || {
        let mut ev = with_listener(backend);
        let remote = ev.remote().unwrap();
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let go = Arc::new(AtomicUsize::new(0));
        ev.add(
            sockloop::Channel::from_socket(a).unwrap(),
            Starter { go: go.clone() },
        )
        .unwrap();
        let peer = Arc::new(b);
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let poster = thread::spawn(move || -> Result<(), String> {
            for round in 0..ROUNDS {
                let (peer, waker) = (peer.clone(), remote.clone());
                remote
                    .call(move |_| {
                        io::Write::write_all(&mut &*peer, b"x").unwrap();
                        waker.wake().unwrap();
                    })
                    .unwrap();
                let start = Instant::now();
                while go.load(Ordering::SeqCst) <= round {
                    if start.elapsed() > Duration::from_secs(2) {
                        let _ = remote.stop();
                        return Err(format!("round {round}: call A never ran"));
                    }
                    std::hint::spin_loop();
                }
                let delay = Duration::from_nanos((round as u64 * 7) % 3000);
                let spin = Instant::now();
                while spin.elapsed() < delay {
                    std::hint::spin_loop();
                }
                let r2 = r.clone();
                remote
                    .call(move |_| {
                        r2.fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap();
                let start = Instant::now();
                while r.load(Ordering::SeqCst) <= round {
                    if start.elapsed() > Duration::from_secs(1) {
                        let _ = remote.stop();
                        return Err(format!(
                            "round {round} (posted {delay:?} after the read event): call B \
                             had not run after 1 s: stranded"
                        ));
                    }
                    thread::yield_now();
                }
            }
            Ok(())
        });
        let deadline = Instant::now() + Duration::from_secs(50);
        while !poster.is_finished() {
            assert!(Instant::now() < deadline, "the poster never finished");
            ev.poll_once(Some(Duration::from_secs(3))).unwrap();
        }
        poster.join().unwrap().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), ROUNDS);
    });
}

backend_tests!(
    calls_run_on_loop_thread_in_order,
    call_sets_a_timer,
    stop_from_another_thread,
    wake_unblocks_poll_once,
    remote_alone_does_not_keep_run_alive,
    after_drop_everything_errs,
    many_threads_each_call_once,
    call_posted_while_draining_runs_promptly,
    call_posted_by_another_thread_while_draining_runs_promptly,
    calls_racing_the_drain_are_not_stranded,
);
