//! Signals delivered to the loop thread, and the signal numbers to name them.
//!
//! [`LoopHandle::add_signal_handler`](crate::LoopHandle::add_signal_handler) installs, through
//! the `signal-hook` crate, an OS handler that does only what is async-signal-safe: it sets
//! a flag and writes one byte to a socket the loop watches. The loop then runs the
//! callback on its own thread, as asyncio's `add_signal_handler` does.
//!
//! The disposition a signal had before the first handler for it (in any loop of the
//! process) is recorded, and put back when the last one is removed or its loop dropped:
//! `SIGINT` terminates again, a signal the program ignored is ignored again.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use signal_hook::consts::signal::{
    SIGALRM, SIGCHLD, SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH,
};

use crate::handle::LoopHandle;
use crate::report::report;
use crate::sys::signal::Disposition;

/// A signal callback.
pub(crate) type Handler<S> = Box<dyn FnMut(&mut LoopHandle<S>, i32)>;

struct Registration<S> {
    signal: i32,
    flag: Arc<AtomicBool>,
    /// `None` while the handler runs (it is taken out so it can reach the loop).
    handler: Option<Handler<S>>,
    ids: [signal_hook::SigId; 2],
}

/// What the process knows about one signal's disposition. Process-wide, as dispositions
/// are: several loops (on several threads) may handle the same signal.
#[derive(Debug)]
struct Slot {
    signal: i32,
    /// Registrations: one per loop that handles the signal.
    users: usize,
    /// The disposition before the first of them; set back when the last one goes.
    before: Option<Disposition>,
    /// signal-hook's own disposition, as it first installed it. signal-hook installs its
    /// OS handler only once per process (and keeps its record of the signal forever), so
    /// when the signal is handled again after a restore, the loop reinstalls it.
    hook: Option<Disposition>,
}

static SLOTS: Mutex<Vec<Slot>> = Mutex::new(Vec::new());

fn slots() -> MutexGuard<'static, Vec<Slot>> {
    SLOTS.lock().unwrap_or_else(|e| e.into_inner())
}

fn slot(slots: &mut Vec<Slot>, signal: i32) -> &mut Slot {
    let i = match slots.iter().position(|s| s.signal == signal) {
        Some(i) => i,
        None => {
            slots.push(Slot {
                signal,
                users: 0,
                before: None,
                hook: None,
            });
            slots.len() - 1
        }
    };
    &mut slots[i]
}

/// Registers `flag` and the wake-up socket `write` with signal-hook for `signal`, after
/// recording the disposition to restore if this is the process's first registration.
fn install(
    signal: i32,
    flag: &Arc<AtomicBool>,
    write: &UnixStream,
) -> io::Result<[signal_hook::SigId; 2]> {
    let mut slots = slots();
    let slot = slot(&mut slots, signal);
    let before = match slot.users {
        0 => Some(Disposition::get(signal)?),
        _ => None,
    };
    // The flag first, then the wake-up, so the loop always sees the flag it woke for.
    let flag_id = signal_hook::flag::register(signal, Arc::clone(flag))?;
    let mut ids = vec![flag_id];
    let result = write
        .try_clone()
        .and_then(|w| signal_hook::low_level::pipe::register(signal, w))
        .and_then(|pipe_id| {
            ids.push(pipe_id);
            match before {
                Some(_) => hook_installed(slot, signal),
                None => Ok(()),
            }
        });
    match result {
        Ok(()) => {
            if before.is_some() {
                slot.before = before;
            }
            slot.users += 1;
            Ok([ids[0], ids[1]])
        }
        Err(e) => {
            if let Some(before) = before {
                // Best effort: the registration failed, so nothing of it may stay.
                let _ = before.set(signal);
            }
            for id in ids {
                signal_hook::low_level::unregister(id);
            }
            Err(e)
        }
    }
}

/// Makes sure signal-hook's OS handler is `signal`'s disposition (after a restore,
/// signal-hook does not install it again by itself).
fn hook_installed(slot: &mut Slot, signal: i32) -> io::Result<()> {
    let now = Disposition::get(signal)?;
    match slot.hook {
        None => slot.hook = Some(now),
        Some(hook) if !hook.same_handler(&now) => hook.set(signal)?,
        Some(_) => {}
    }
    Ok(())
}

/// Unregisters `ids` (one loop's registration for `signal`); the last registration of the
/// process sets the recorded disposition back first, so an arrival in between gets it
/// rather than signal-hook's handler with nothing left to run.
fn uninstall(signal: i32, ids: [signal_hook::SigId; 2]) {
    let mut slots = slots();
    let slot = slot(&mut slots, signal);
    slot.users -= 1;
    if slot.users == 0 {
        if let Some(before) = slot.before.take() {
            if let Err(e) = before.set(signal) {
                report(
                    log::Level::Error,
                    format_args!("cannot restore the disposition of signal {signal}: {e}"),
                );
            }
        }
    }
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
}

/// The loop's signal state: one wake-up socket pair for all signals, a flag per signal.
pub(crate) struct Signals<S> {
    read: UnixStream,
    write: UnixStream,
    registrations: Vec<Registration<S>>,
}

impl<S> Signals<S> {
    pub(crate) fn new() -> io::Result<Signals<S>> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        Ok(Signals {
            read,
            write,
            registrations: Vec::new(),
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Installs (or replaces) the handler for `signal`.
    pub(crate) fn add(&mut self, signal: i32, handler: Handler<S>) -> io::Result<()> {
        // signal-hook panics on these rather than returning an error.
        if signal_hook::consts::FORBIDDEN.contains(&signal) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "this signal cannot be handled",
            ));
        }
        if let Some(r) = self.registrations.iter_mut().find(|r| r.signal == signal) {
            r.handler = Some(handler);
            return Ok(());
        }
        let flag = Arc::new(AtomicBool::new(false));
        let ids = install(signal, &flag, &self.write)?;
        self.registrations.push(Registration {
            signal,
            flag,
            handler: Some(handler),
            ids,
        });
        Ok(())
    }

    /// Removes the handler for `signal`; false if there was none.
    pub(crate) fn remove(&mut self, signal: i32) -> bool {
        let Some(i) = self.registrations.iter().position(|r| r.signal == signal) else {
            return false;
        };
        let r = self.registrations.remove(i);
        uninstall(r.signal, r.ids);
        true
    }

    /// Drains the wake-up socket and returns the signals that arrived, each with its
    /// handler taken out (give it back with [`restore`](Signals::restore)).
    pub(crate) fn take_arrived(&mut self) -> Vec<(i32, Handler<S>)> {
        let mut buf = [0u8; 64];
        while matches!(self.read.read(&mut buf), Ok(n) if n > 0) {}
        let mut arrived = Vec::new();
        for r in &mut self.registrations {
            if r.flag.swap(false, Ordering::SeqCst) {
                if let Some(h) = r.handler.take() {
                    arrived.push((r.signal, h));
                }
            }
        }
        arrived
    }

    /// Gives a handler back after it ran, unless it was removed or replaced meanwhile.
    pub(crate) fn restore(&mut self, signal: i32, handler: Handler<S>) {
        if let Some(r) = self.registrations.iter_mut().find(|r| r.signal == signal) {
            if r.handler.is_none() {
                r.handler = Some(handler);
            }
        }
    }
}

impl<S> Drop for Signals<S> {
    fn drop(&mut self) {
        for r in self.registrations.drain(..) {
            uninstall(r.signal, r.ids);
        }
    }
}
