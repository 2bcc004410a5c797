//! Reaching the loop from other threads: [`Remote`] (asyncio's `call_soon_threadsafe`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rustix::event::{eventfd, EventfdFlags};

use crate::handle::LoopHandle;

/// A closure sent to the loop thread.
type Call<S> = Box<dyn FnOnce(&mut LoopHandle<S>) + Send>;

struct Queue<S> {
    /// False once the loop is gone: nothing more is accepted.
    open: bool,
    calls: Vec<Call<S>>,
}

struct Shared<S> {
    queue: Mutex<Queue<S>>,
    stop: AtomicBool,
    /// An eventfd the loop watches; writing to it wakes the loop's wait.
    wake_fd: OwnedFd,
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Queue<S>> {
        // A closure never runs under the lock, so a poisoned lock only means another thread
        // panicked between two plain field updates; the queue is still consistent.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self) -> io::Result<()> {
        match rustix::io::write(&self.wake_fd, &1u64.to_ne_bytes()) {
            // EAGAIN: the counter is saturated, so a wake-up is already pending.
            Ok(_) | Err(rustix::io::Errno::AGAIN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn loop_gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the event loop is gone")
}

/// A handle to an [`EventLoop`](crate::EventLoop) that other threads can hold: it wakes
/// the loop, runs closures on the loop thread with its [`LoopHandle`] (and so its state,
/// which need not be `Send`), and stops it. `Send + Sync + Clone` whatever the state type;
/// get one with [`LoopHandle::remote`].
///
/// Closures run in the order they were sent, on the loop thread, during the iteration in
/// which the loop wakes up, after that iteration's channel events. Every method returns an
/// error (never panics) once the loop has been dropped; closures still queued when it is
/// dropped are dropped without running.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use sockloop::{EventLoop, LoopHandle};
///
/// // The loop's state: a counter (an `Rc` here only to show it need not be `Send`).
/// let mut event_loop = EventLoop::with_state(Rc::new(std::cell::Cell::new(0)))?;
/// let remote = event_loop.remote()?;
/// let worker = std::thread::spawn(move || {
///     remote.call(|lp: &mut LoopHandle<Rc<std::cell::Cell<u32>>>| {
///         lp.state().set(lp.state().get() + 1);
///         lp.stop();
///     })
/// });
/// worker.join().unwrap()?;
/// // No channels: wait for the call (it stops the loop).
/// event_loop.run_forever()?;
/// assert_eq!(event_loop.state().get(), 1);
/// # std::io::Result::Ok(())
/// ```
pub struct Remote<S = ()> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for Remote<S> {
    fn clone(&self) -> Self {
        Remote {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S> Remote<S> {
    /// Wakes the loop if it is waiting (it then runs one iteration, re-asking nothing).
    ///
    /// # Errors
    ///
    /// `NotConnected` if the loop is gone.
    pub fn wake(&self) -> io::Result<()> {
        if !self.shared.lock().open {
            return Err(loop_gone());
        }
        self.shared.wake()
    }

    /// Runs `f` on the loop thread with the loop's handle and state at hand (asyncio's
    /// `call_soon_threadsafe`), and wakes the loop.
    ///
    /// # Errors
    ///
    /// `NotConnected` if the loop is gone (`f` is dropped without running).
    pub fn call(&self, f: impl FnOnce(&mut LoopHandle<S>) + Send + 'static) -> io::Result<()> {
        {
            let mut queue = self.shared.lock();
            if !queue.open {
                return Err(loop_gone());
            }
            queue.calls.push(Box::new(f));
        }
        self.shared.wake()
    }

    /// Makes [`run`](crate::EventLoop::run) return after the iteration in which it wakes up.
    ///
    /// # Errors
    ///
    /// `NotConnected` if the loop is gone.
    pub fn stop(&self) -> io::Result<()> {
        if !self.shared.lock().open {
            return Err(loop_gone());
        }
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake()
    }
}

impl<S> std::fmt::Debug for Remote<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("open", &self.shared.lock().open)
            .finish()
    }
}

/// The loop's side: owns the eventfd registration and drains the queue.
pub(crate) struct Inbox<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Inbox<S> {
    pub(crate) fn new() -> io::Result<Inbox<S>> {
        let wake_fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Inbox {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    open: true,
                    calls: Vec::new(),
                }),
                stop: AtomicBool::new(false),
                wake_fd,
            }),
        })
    }

    pub(crate) fn remote(&self) -> Remote<S> {
        Remote {
            shared: Arc::clone(&self.shared),
        }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.shared.wake_fd.as_fd()
    }

    /// Clears the wake-up and takes what was sent: the closures, and whether a stop was
    /// asked.
    pub(crate) fn take(&self) -> (Vec<Call<S>>, bool) {
        let mut counter = [0u8; 8];
        // Nonblocking: EAGAIN just means no wake-up was pending.
        let _ = rustix::io::read(&self.shared.wake_fd, &mut counter);
        let calls = std::mem::take(&mut self.shared.lock().calls);
        (calls, self.shared.stop.swap(false, Ordering::SeqCst))
    }
}

impl<S> Drop for Inbox<S> {
    fn drop(&mut self) {
        let calls = {
            let mut queue = self.shared.lock();
            queue.open = false;
            std::mem::take(&mut queue.calls)
        };
        // Dropped outside the lock: a closure's captures may do anything in their Drop.
        drop(calls);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A call posted while `take` runs is either taken, or leaves a wake-up pending for
    /// the next iteration: never both missed (stranded until an unrelated wake-up). To
    /// hit that window every time, the wake-up counter is made blocking and empty, so
    /// `take` blocks in its read of it; the call is posted only once the taking thread
    /// is seen blocked there (`/proc/thread-self/syscall`: its first argument is the
    /// counter's descriptor).
    #[test]
    fn call_posted_during_take_is_taken_or_wakes_again() {
        let inbox = Inbox::<()>::new().unwrap();
        let remote = inbox.remote();
        rustix::io::ioctl_fionbio(inbox.fd(), false).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&inbox.fd());
        let (tx, rx) = std::sync::mpsc::channel();
        let taker = std::thread::spawn(move || {
            let me = std::fs::read_link("/proc/thread-self").unwrap();
            tx.send(me).unwrap();
            let (calls, _) = inbox.take();
            (inbox, calls.len())
        });
        let me = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let syscall = std::path::Path::new("/proc").join(me).join("syscall");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now = std::fs::read_to_string(&syscall).unwrap_or_default();
            let mut words = now.split_whitespace();
            if words.nth(1) == Some(format!("{fd:#x}").as_str()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the taker never blocked on the counter: {now:?}"
            );
            std::thread::yield_now();
        }
        remote.call(|_| {}).unwrap();
        let (inbox, taken) = taker.join().unwrap();
        rustix::io::ioctl_fionbio(inbox.fd(), true).unwrap();
        let mut counter = [0u8; 8];
        let wake_pending = rustix::io::read(inbox.fd(), &mut counter).is_ok();
        assert!(
            taken == 1 || wake_pending,
            "the call was neither taken nor left a wake-up: stranded"
        );
        assert_eq!(taken + inbox.take().0.len(), 1, "the call was not lost");
    }
}
