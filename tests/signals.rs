//! Signal handlers: a signal raised while the loop waits runs its handler on the loop
//! thread with the right number; it runs again for every later arrival; removed handlers
//! no longer run; arrivals between two iterations coalesce into one call; signals that
//! cannot be handled are `InvalidInput`; the disposition a signal had before its first
//! handler (default action, `SIG_IGN`) comes back when the last handler is removed or its
//! loop dropped, and a handler added again after that is delivered again.
//!
//! Signal dispositions are process-wide and the tests of this binary run in parallel
//! threads, so every test that installs a handler or raises a signal holds [`SERIAL`].
//! Only SIGUSR1 and SIGUSR2 are raised in this process; SIGINT is raised in child
//! processes (this test binary re-run with [`CHILD_ENV`] set, which makes
//! [`child_entry`] run one case), which hold no lock, as they touch nothing here.
//! Where a test must know a signal has arrived before it looks, it raises the signal at
//! its own thread (raise(3)), which runs the OS handler before returning; no sleep.
//! A handler is always installed before its signal is raised, or the signal is ignored
//! ([`ignore`]) before the test installs a handler it later removes: the default action
//! of SIGUSR1/2 is to terminate the process.

mod util;

use std::cell::{Cell, RefCell};
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{getpid, kill_process, Signal};
use sockloop::signal::{SIGINT, SIGUSR1, SIGUSR2};
use sockloop::{Backend, EventLoop};
use util::{step, within};

static SERIAL: Mutex<()> = Mutex::new(());

const CHILD_ENV: &str = "SIGNALS_CHILD";

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn raise(sig: Signal) {
    kill_process(getpid(), sig).unwrap();
}

/// Raises `sig` from another thread after `delay`.
fn raise_later(sig: Signal, delay: Duration) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        thread::sleep(delay);
        raise(sig);
    })
}

/// The loop blocks in `poll_once(None)`; SIGUSR1 raised from another thread wakes it and
/// the handler runs on the loop thread with the signal's number.
fn handler_runs_on_loop_thread(backend: Backend) {
    let _serial = serial();
    within(20, "signal wakes poll_once(None)", move || {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        let calls: Rc<RefCell<Vec<(thread::ThreadId, i32)>>> = Rc::default();
        let c = calls.clone();
        ev.add_signal_handler(SIGUSR1, move |_, sig| {
            c.borrow_mut().push((thread::current().id(), sig))
        })
        .unwrap();
        let raiser = raise_later(Signal::USR1, Duration::from_millis(50));
        let start = Instant::now();
        // poll_once(None): nothing else can wake it.
        while calls.borrow().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(10));
            ev.poll_once(None).unwrap();
        }
        raiser.join().unwrap();
        assert_eq!(*calls.borrow(), [(thread::current().id(), SIGUSR1)]);
        assert!(ev.remove_signal_handler(SIGUSR1));
    });
}

/// Two handlers on one loop: each gets its own signal, and `stop` from a handler ends
/// `run_forever` (the way to wait for nothing but signals).
fn two_signals_and_stop(backend: Backend) {
    let _serial = serial();
    within(20, "run_forever stopped by a handler", move || {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        let log: Rc<RefCell<Vec<i32>>> = Rc::default();
        let l = log.clone();
        ev.add_signal_handler(SIGUSR1, move |_, sig| l.borrow_mut().push(sig))
            .unwrap();
        let l = log.clone();
        ev.add_signal_handler(SIGUSR2, move |lp, sig| {
            l.borrow_mut().push(sig);
            lp.stop();
        })
        .unwrap();
        let raiser = thread::spawn(|| {
            thread::sleep(Duration::from_millis(30));
            raise(Signal::USR1);
            thread::sleep(Duration::from_millis(30));
            raise(Signal::USR2);
        });
        ev.run_forever().unwrap();
        raiser.join().unwrap();
        assert_eq!(*log.borrow(), [SIGUSR1, SIGUSR2]);
        assert!(ev.remove_signal_handler(SIGUSR1));
        assert!(ev.remove_signal_handler(SIGUSR2));
    });
}

/// After `remove_signal_handler` the handler no longer runs, and the signal has the
/// disposition it had before (here `SIG_IGN`, so the process is still here after it
/// arrives); `remove` is true once, then false. Dropping a loop with a handler installed
/// restores the disposition too.
fn removed_handler_no_longer_runs(backend: Backend) {
    let _serial = serial();
    ignore(SIGUSR1);
    ignore(SIGUSR2);
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let usr1 = Rc::new(Cell::new(0));
    let usr2 = Rc::new(Cell::new(0));
    let u = usr1.clone();
    ev.add_signal_handler(SIGUSR1, move |_, _| u.set(u.get() + 1))
        .unwrap();
    let u = usr2.clone();
    ev.add_signal_handler(SIGUSR2, move |_, _| u.set(u.get() + 1))
        .unwrap();
    raise(Signal::USR1);
    util::run_until(&mut ev, "the first SIGUSR1", |_| usr1.get() == 1);

    assert!(ev.remove_signal_handler(SIGUSR1));
    assert!(!ev.remove_signal_handler(SIGUSR1), "already removed");
    assert!(is_ignored(SIGUSR1), "SIG_IGN restored");
    assert!(!is_ignored(SIGUSR2), "SIGUSR2 still handled");
    // Raised at this thread: both are delivered, in this order, before raise returns.
    raise_here(SIGUSR1);
    raise_here(SIGUSR2);
    util::run_until(&mut ev, "SIGUSR2 (sent after SIGUSR1)", |_| usr2.get() == 1);
    step(&mut ev, 5);
    assert_eq!(usr1.get(), 1, "the removed handler did not run");

    // Dropping the loop removes its handlers and restores SIG_IGN (the process is still
    // here after both were delivered).
    drop(ev);
    assert!(is_ignored(SIGUSR2), "SIG_IGN restored on drop");
    raise_here(SIGUSR2);
    raise_here(SIGUSR1);
    assert_eq!((usr1.get(), usr2.get()), (1, 1));
}

/// A handler can be replaced: only the newest runs.
fn replaced_handler(backend: Backend) {
    let _serial = serial();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log: Rc<RefCell<Vec<&str>>> = Rc::default();
    let l = log.clone();
    ev.add_signal_handler(SIGUSR2, move |_, _| l.borrow_mut().push("old"))
        .unwrap();
    let l = log.clone();
    ev.add_signal_handler(SIGUSR2, move |_, _| l.borrow_mut().push("new"))
        .unwrap();
    raise(Signal::USR2);
    util::run_until(&mut ev, "the handler", |_| !log.borrow().is_empty());
    step(&mut ev, 3);
    assert_eq!(*log.borrow(), ["new"]);
    assert!(ev.remove_signal_handler(SIGUSR2));
}

/// Raises `sig` at the calling thread (raise(3)): the OS handler has run when this
/// returns, so the arrival is an observed fact, not something a sleep hopes for.
fn raise_here(sig: i32) {
    signal_hook::low_level::raise(sig).unwrap();
}

/// Several arrivals before the loop looks run the handler once, and the handler stays
/// installed: a later arrival of another signal (another wake-up) does not run it again.
fn arrivals_coalesce_into_one_call(backend: Backend) {
    let _serial = serial();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let usr1 = Rc::new(Cell::new(0));
    let usr2 = Rc::new(Cell::new(0));
    let u = usr1.clone();
    ev.add_signal_handler(SIGUSR1, move |_, _| u.set(u.get() + 1))
        .unwrap();
    let u = usr2.clone();
    ev.add_signal_handler(SIGUSR2, move |_, _| u.set(u.get() + 1))
        .unwrap();
    for _ in 0..3 {
        raise_here(SIGUSR1);
    }
    util::run_until(&mut ev, "the SIGUSR1 handler", |_| usr1.get() > 0);
    // Another wake-up for another signal: the three arrivals were one call, and nothing
    // of them is left over to run again.
    raise_here(SIGUSR2);
    util::run_until(&mut ev, "the SIGUSR2 handler", |_| usr2.get() > 0);
    step(&mut ev, 3);
    assert_eq!((usr1.get(), usr2.get()), (1, 1), "three arrivals, one call");
    assert!(ev.remove_signal_handler(SIGUSR1));
    assert!(ev.remove_signal_handler(SIGUSR2));
}

/// A handler runs again for each arrival that comes after its previous call, not only
/// for the first.
fn handler_runs_for_every_arrival(backend: Backend) {
    let _serial = serial();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    ev.add_signal_handler(SIGUSR1, move |_, _| c.set(c.get() + 1))
        .unwrap();
    for n in 1..=4 {
        raise_here(SIGUSR1);
        util::run_until(&mut ev, &format!("handler call {n}"), |_| calls.get() == n);
    }
    step(&mut ev, 3);
    assert_eq!(calls.get(), 4, "one call per separate arrival");
    // Raised from another thread while the loop waits: also handled each time.
    for n in 5..=6 {
        let raiser = raise_later(Signal::USR1, Duration::from_millis(10));
        util::run_until(&mut ev, &format!("handler call {n}"), |_| calls.get() == n);
        raiser.join().unwrap();
    }
    assert!(ev.remove_signal_handler(SIGUSR1));
}

/// A handler can remove itself from inside; a later arrival then runs nothing, and `run`
/// with nothing left returns at once.
fn handler_removes_itself(backend: Backend) {
    let _serial = serial();
    ignore(SIGUSR1);
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    ev.add_signal_handler(SIGUSR1, move |lp, sig| {
        c.set(c.get() + 1);
        assert!(lp.remove_signal_handler(sig), "removing itself");
    })
    .unwrap();
    raise_here(SIGUSR1);
    util::run_until(&mut ev, "the handler", |_| calls.get() > 0);
    // Delivered (and ignored: SIG_IGN is back) before raise returns.
    raise_here(SIGUSR1);
    step(&mut ev, 3);
    assert_eq!(calls.get(), 1, "removed itself");
    assert!(!ev.remove_signal_handler(SIGUSR1));
    // Nothing left: run returns at once.
    within(10, "run after the last handler is gone", move || {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        ev.run(None, None).unwrap();
    });
}

/// A handler does not keep `run` going (a client's loop ends when its channels are
/// done, signal handler or not); `run_forever` waits for it.
fn handler_does_not_keep_run_alive(backend: Backend) {
    let _serial = serial();
    {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        ev.add_signal_handler(SIGUSR2, |lp, _| lp.stop()).unwrap();
        assert_returns_at_once(&mut ev);
    }
    within(20, "run_forever stopped by the handler", move || {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        ev.add_signal_handler(SIGUSR2, |lp, _| lp.stop()).unwrap();
        let raiser = thread::spawn(|| {
            thread::sleep(Duration::from_millis(30));
            raise(Signal::USR2);
        });
        ev.run_forever().unwrap();
        raiser.join().unwrap();
        assert!(ev.remove_signal_handler(SIGUSR2));
    });
}

/// SIGKILL and SIGSTOP (and SIGSEGV, SIGILL, SIGFPE) cannot be handled: `InvalidInput`,
/// as documented, and the loop is unchanged.
fn unhandleable_signals(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    for sig in [
        Signal::KILL,
        Signal::STOP,
        Signal::SEGV,
        Signal::ILL,
        Signal::FPE,
    ] {
        let err = ev.add_signal_handler(sig.as_raw(), |_, _| {}).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(!ev.remove_signal_handler(sig.as_raw()));
    }
    // No handler was installed: run has nothing to wait for.
    assert_returns_at_once(&mut ev);
}

/// A number that is no signal at all is `InvalidInput`; no handler is left behind.
fn invalid_signal_number(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    for sig in [-1, 0, 4096] {
        let err = ev.add_signal_handler(sig, |_, _| {}).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{sig}: {err}");
        assert!(!ev.remove_signal_handler(sig));
    }
    assert_returns_at_once(&mut ev);
}

/// `run` has nothing to wait for: it returns at once instead of running 1000 iterations
/// of 10 ms.
fn assert_returns_at_once(ev: &mut EventLoop) {
    let start = Instant::now();
    ev.run(Some(Duration::from_millis(10)), Some(1000)).unwrap();
    assert!(start.elapsed() < Duration::from_secs(5), "run kept going");
}

/// Two loops handle the same signal: removing it from one leaves the other's installed
/// (the disposition is restored only when the process's last handler goes).
fn two_loops_share_a_signal(backend: Backend) {
    let _serial = serial();
    ignore(SIGUSR2);
    let mut a = EventLoop::with_backend(backend).unwrap();
    let mut b = EventLoop::with_backend(backend).unwrap();
    let calls = Rc::new(Cell::new(0));
    a.add_signal_handler(SIGUSR2, |_, _| panic!("removed"))
        .unwrap();
    let c = calls.clone();
    b.add_signal_handler(SIGUSR2, move |_, _| c.set(c.get() + 1))
        .unwrap();
    assert!(a.remove_signal_handler(SIGUSR2));
    assert!(!is_ignored(SIGUSR2), "still handled by the other loop");
    raise_here(SIGUSR2);
    util::run_until(&mut b, "the other loop's handler", |_| calls.get() == 1);
    step(&mut a, 3);
    drop(b);
    assert!(is_ignored(SIGUSR2), "SIG_IGN restored by the last one");
}

/// After `remove_signal_handler`, SIGINT has its default action again: the child dies
/// of it.
fn removed_handler_restores_default_action(backend: Backend) {
    let out = run_child("remove", backend);
    assert_killed_by_sigint(&out, "remove");
}

/// Dropping the loop restores the default action too.
fn dropped_loop_restores_default_action(backend: Backend) {
    let out = run_child("drop", backend);
    assert_killed_by_sigint(&out, "drop");
}

/// A program that ignored SIGINT before its handler ignores it again after removal.
fn removed_handler_restores_sig_ign(backend: Backend) {
    let out = run_child("ignored", backend);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ignored again") && stdout.contains("survived"),
        "child ignored: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A handler added again after the removal restored the default action is delivered
/// again (and its removal restores the default action again).
fn handler_added_again_is_delivered(backend: Backend) {
    let out = run_child("readd", backend);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("delivered again"),
        "the re-added handler did not run: {}",
        out.status
    );
    assert_killed_by_sigint(&out, "readd");
}

/// Not a test by itself: the entry point of the child processes above. It does nothing
/// unless [`CHILD_ENV`] names a case (`case:backend`). Each case ends by raising SIGINT,
/// which kills the child unless SIGINT is ignored.
#[test]
fn child_entry() {
    let Ok(case) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (case, backend) = case.split_once(':').unwrap();
    let mut ev = EventLoop::with_backend(backend.parse().unwrap()).unwrap();
    match case {
        "remove" => {
            set_default(SIGINT);
            ev.add_signal_handler(SIGINT, |_, _| {}).unwrap();
            assert!(ev.remove_signal_handler(SIGINT));
        }
        "drop" => {
            set_default(SIGINT);
            ev.add_signal_handler(SIGINT, |_, _| {}).unwrap();
            drop(ev);
        }
        "ignored" => {
            ignore(SIGINT);
            ev.add_signal_handler(SIGINT, |_, _| {}).unwrap();
            assert!(!is_ignored(SIGINT));
            assert!(ev.remove_signal_handler(SIGINT));
            if is_ignored(SIGINT) {
                println!("ignored again");
            }
        }
        "readd" => {
            set_default(SIGINT);
            ev.add_signal_handler(SIGINT, |_, _| {}).unwrap();
            assert!(ev.remove_signal_handler(SIGINT));
            let calls = Rc::new(Cell::new(0));
            let c = calls.clone();
            ev.add_signal_handler(SIGINT, move |_, _| c.set(c.get() + 1))
                .unwrap();
            raise_here(SIGINT);
            util::run_until(&mut ev, "the re-added handler", |_| calls.get() == 1);
            println!("delivered again");
            assert!(ev.remove_signal_handler(SIGINT));
        }
        _ => panic!("unknown case {case}"),
    }
    raise_here(SIGINT);
    println!("survived SIGINT");
}

fn run_child(case: &str, backend: Backend) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{case}:{backend}"))
        .output()
        .unwrap()
}

fn assert_killed_by_sigint(out: &Output, case: &str) {
    assert_eq!(
        out.status.signal(),
        Some(SIGINT),
        "child {case} was not killed by SIGINT: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sets `sig` to `SIG_IGN`: the disposition the program had before a test's handler.
fn ignore(sig: i32) {
    // SAFETY: SIG_IGN is a valid disposition for the signals the tests use.
    assert_ne!(unsafe { libc::signal(sig, libc::SIG_IGN) }, libc::SIG_ERR);
}

/// Sets `sig` to `SIG_DFL` (whatever the parent process left it at).
fn set_default(sig: i32) {
    // SAFETY: SIG_DFL is a valid disposition for the signals the tests use.
    assert_ne!(unsafe { libc::signal(sig, libc::SIG_DFL) }, libc::SIG_ERR);
}

fn is_ignored(sig: i32) -> bool {
    let mut now = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null `act` only reads; `oldact` points to a `sigaction`-sized buffer.
    assert_eq!(
        unsafe { libc::sigaction(sig, std::ptr::null(), now.as_mut_ptr()) },
        0
    );
    // SAFETY: sigaction succeeded and filled it in.
    unsafe { now.assume_init() }.sa_sigaction == libc::SIG_IGN
}

backend_tests!(
    handler_runs_on_loop_thread,
    two_signals_and_stop,
    removed_handler_no_longer_runs,
    replaced_handler,
    arrivals_coalesce_into_one_call,
    handler_runs_for_every_arrival,
    handler_removes_itself,
    handler_does_not_keep_run_alive,
    invalid_signal_number,
    unhandleable_signals,
    two_loops_share_a_signal,
    removed_handler_restores_default_action,
    dropped_loop_restores_default_action,
    removed_handler_restores_sig_ign,
    handler_added_again_is_delivered,
);
