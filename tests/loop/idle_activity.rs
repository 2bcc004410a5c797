//! What "idle" means for `set_idle_timeout`: nothing in either direction. Output the
//! kernel takes at once from a push made outside the channel's own hooks (another
//! channel's hook, a timer) is activity, so a member that only listens is not idle; once
//! nothing moves, the timeout fires.

use crate::util;

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::util::run_until;
use sockloop::{Backend, Context, Dispatcher, EventLoop, LoopHandle, Timeout};

const IDLE: Duration = Duration::from_millis(150);

struct Listener {
    timed_out: Rc<Cell<Option<Instant>>>,
}

impl Dispatcher for Listener {
    fn handle_timeout(&mut self, ctx: &mut Context<'_>, which: Timeout) -> io::Result<()> {
        assert_eq!(which, Timeout::Idle);
        self.timed_out.set(Some(Instant::now()));
        ctx.request_close();
        Ok(())
    }
}

fn output_pushed_from_elsewhere_is_activity(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (mut ch, mut peer) = util::unix_channel();
    ch.set_idle_timeout(Some(IDLE));
    let timed_out = Rc::new(Cell::new(None));
    let token = ev
        .add(
            ch,
            Listener {
                timed_out: timed_out.clone(),
            },
        )
        .unwrap();
    // A timer "broadcasts" to the listener every 30 ms for 5 idle periods.
    let last_push = Rc::new(Cell::new(Instant::now()));
    let pushes = Rc::new(RefCell::new(0));
    let start = Instant::now();
    let ticker = {
        let last_push = last_push.clone();
        let pushes = pushes.clone();
        ev.call_every(Duration::from_millis(30), move |lp: &mut LoopHandle, _| {
            if let Some(ch) = lp.channel_mut(token) {
                ch.push(b"news\n").unwrap();
                last_push.set(Instant::now());
                *pushes.borrow_mut() += 1;
            }
        })
    };
    let mut got = Vec::new();
    run_until(&mut ev, "five idle periods of broadcasts", |_| {
        util::read_available(&mut peer, &mut got);
        start.elapsed() >= IDLE * 5
    });
    assert_eq!(
        timed_out.get(),
        None,
        "{backend}: a listener receiving output is not idle"
    );
    assert!(*pushes.borrow() >= 10, "the ticker ran");
    assert!(ev.contains(token));
    // The broadcasts stop: now it is idle.
    ev.cancel(ticker);
    run_until(&mut ev, "the idle timeout", |_| timed_out.get().is_some());
    let fired = timed_out.get().unwrap();
    assert!(
        fired.duration_since(last_push.get()) >= IDLE,
        "{backend}: never before the idle timeout after the last output"
    );
    run_until(&mut ev, "closed", |ev| !ev.contains(token));
}

backend_tests!(output_pushed_from_elsewhere_is_activity);
