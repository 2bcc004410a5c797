//! Signals delivered to the loop thread, and the signal numbers to name them.
//!
//! [`LoopHandle::add_signal_handler`](crate::LoopHandle::add_signal_handler) installs, through
//! the `signal-hook` crate, an OS handler that does only what is async-signal-safe: it sets
//! a flag and writes one byte to a socket the loop watches. The loop then runs the
//! callback on its own thread, as asyncio's `add_signal_handler` does.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use signal_hook::consts::signal::{
    SIGALRM, SIGCHLD, SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH,
};

use crate::handle::LoopHandle;

/// A signal callback.
pub(crate) type Handler<S> = Box<dyn FnMut(&mut LoopHandle<S>, i32)>;

struct Registration<S> {
    signal: i32,
    flag: Arc<AtomicBool>,
    /// `None` while the handler runs (it is taken out so it can reach the loop).
    handler: Option<Handler<S>>,
    ids: [signal_hook::SigId; 2],
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
        // The flag first, then the wake-up, so the loop always sees the flag it woke for.
        let flag_id = signal_hook::flag::register(signal, Arc::clone(&flag))?;
        let pipe_id = match self
            .write
            .try_clone()
            .and_then(|w| signal_hook::low_level::pipe::register(signal, w))
        {
            Ok(id) => id,
            Err(e) => {
                signal_hook::low_level::unregister(flag_id);
                return Err(e);
            }
        };
        self.registrations.push(Registration {
            signal,
            flag,
            handler: Some(handler),
            ids: [flag_id, pipe_id],
        });
        Ok(())
    }

    /// Removes the handler for `signal`; false if there was none.
    pub(crate) fn remove(&mut self, signal: i32) -> bool {
        let Some(i) = self.registrations.iter().position(|r| r.signal == signal) else {
            return false;
        };
        let r = self.registrations.remove(i);
        for id in r.ids {
            signal_hook::low_level::unregister(id);
        }
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
            for id in r.ids {
                signal_hook::low_level::unregister(id);
            }
        }
    }
}
