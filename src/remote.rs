//! Reaching the loop from other threads: [`Remote`] (asyncio's `call_soon_threadsafe`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rustix::event::{eventfd, EventfdFlags};

use crate::event_loop::EventLoop;

/// A closure sent to the loop thread.
type Call = Box<dyn FnOnce(&mut EventLoop) + Send>;

struct Queue {
    /// False once the loop is gone: nothing more is accepted.
    open: bool,
    calls: Vec<Call>,
}

struct Shared {
    queue: Mutex<Queue>,
    stop: AtomicBool,
    /// An eventfd the loop watches; writing to it wakes the loop's wait.
    wake_fd: OwnedFd,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
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

/// A handle to an [`EventLoop`] that other threads can hold: it wakes the loop, runs
/// closures on the loop thread, and stops it. `Send + Sync + Clone`; get one with
/// [`EventLoop::remote`].
///
/// Closures run in the order they were sent, on the loop thread, during the iteration in
/// which the loop wakes up, after that iteration's channel events. Every method returns an
/// error (never panics) once the loop has been dropped; closures still queued when it is
/// dropped are dropped without running.
///
/// # Examples
///
/// ```
/// use sockloop::EventLoop;
///
/// let mut event_loop = EventLoop::new()?;
/// let remote = event_loop.remote()?;
/// let worker = std::thread::spawn(move || {
///     remote.call(|lp: &mut EventLoop| {
///         println!("on the loop thread");
///         lp.stop();
///     })
/// });
/// worker.join().unwrap()?;
/// // No channels: wait for the call (it stops the loop).
/// event_loop.run_forever()?;
/// # std::io::Result::Ok(())
/// ```
#[derive(Clone)]
pub struct Remote {
    shared: Arc<Shared>,
}

impl Remote {
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

    /// Runs `f` on the loop thread with the loop at hand (asyncio's
    /// `call_soon_threadsafe`), and wakes the loop.
    ///
    /// # Errors
    ///
    /// `NotConnected` if the loop is gone (`f` is dropped without running).
    pub fn call(&self, f: impl FnOnce(&mut EventLoop) + Send + 'static) -> io::Result<()> {
        {
            let mut queue = self.shared.lock();
            if !queue.open {
                return Err(loop_gone());
            }
            queue.calls.push(Box::new(f));
        }
        self.shared.wake()
    }

    /// Makes [`run`](EventLoop::run) return after the iteration in which it wakes up.
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

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("open", &self.shared.lock().open)
            .finish()
    }
}

/// The loop's side: owns the eventfd registration and drains the queue.
pub(crate) struct Inbox {
    shared: Arc<Shared>,
}

impl Inbox {
    pub(crate) fn new() -> io::Result<Inbox> {
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

    pub(crate) fn remote(&self) -> Remote {
        Remote {
            shared: Arc::clone(&self.shared),
        }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.shared.wake_fd.as_fd()
    }

    /// Clears the wake-up and takes what was sent: the closures, and whether a stop was
    /// asked.
    pub(crate) fn take(&self) -> (Vec<Call>, bool) {
        let mut counter = [0u8; 8];
        // Nonblocking: EAGAIN just means no wake-up was pending.
        let _ = rustix::io::read(&self.shared.wake_fd, &mut counter);
        let calls = std::mem::take(&mut self.shared.lock().calls);
        (calls, self.shared.stop.swap(false, Ordering::SeqCst))
    }
}

impl Drop for Inbox {
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
