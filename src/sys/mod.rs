//! OS readiness backends: the backend contract, written once, and one file per backend.
//! (`signal` holds the other system calls that need `unsafe`: sigaction(2); `fork` the
//! `pthread_atfork` count of forks.)
//!
//! This is the only module allowed to use `unsafe`. The contract every backend keeps:
//!
//! * [`Selector::update`] moves one descriptor from the interest it had (`old`,
//!   [`Interest::NONE`] = not registered) to `new` ([`Interest::NONE`] = deregister). The loop
//!   calls it only when a channel's interest changed, and always deregisters a descriptor
//!   before closing it ([`Selector::deregister_before_close`]), so a backend never holds
//!   a closed descriptor it was told about.
//! * [`Selector::wait`] fills `events` with what the OS reported, keyed by the `key` the
//!   descriptor was registered under, retrying `EINTR` with the time that remains.
//!   Select reports in three phases (all reads, then all writes, then all exceptional
//!   conditions), as `asyncore.poll` dispatches; poll and epoll report one combined event
//!   per descriptor, as `asyncore.poll2` does.

use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use crate::interest::{Interest, Ready};

mod epoll;
pub(crate) mod fork;
mod poll;
mod select;
pub(crate) mod signal;

/// Which readiness API the loop waits with, chosen at run time.
///
/// Every observable behaviour is the same on all three; they differ in cost and limits.
///
/// # Examples
///
/// ```
/// use sockloop::{Backend, EventLoop};
///
/// for backend in Backend::ALL {
///     let event_loop = EventLoop::with_backend(backend)?;
///     assert_eq!(event_loop.backend(), backend);
/// }
/// # std::io::Result::Ok(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// select(2), faithful to `asyncore.poll`. Cost per wait grows with the highest fd.
    /// On Linux descriptors at or above `FD_SETSIZE` (1024) work (the sets are sized to the
    /// highest descriptor); elsewhere they are refused with an `InvalidInput` error.
    Select,
    /// poll(2), faithful to `asyncore.poll2`. Cost per wait grows with the channel count.
    Poll,
    /// The OS-native readiness API, level-triggered: epoll(7) on Linux. Registrations are
    /// kept between iterations and the kernel is called only when an interest changes.
    /// Regular files cannot be registered with epoll; they are reported ready at once
    /// (they always are, for select and poll too).
    ///
    /// One difference: a descriptor closed behind the loop's back (by code that does not
    /// own it) is reported by select and poll (`EBADF` / `POLLNVAL`: the channel gets
    /// `handle_close`), but epoll silently forgets it, and the channel then waits for an
    /// event that never comes (until its idle timeout, if one is set). Never close a
    /// channel's descriptor except through the channel.
    Epoll,
}

impl Backend {
    /// All backends, for tests that run on each.
    pub const ALL: [Backend; 3] = [Backend::Select, Backend::Poll, Backend::Epoll];

    /// The lowercase name used on command lines: `select`, `poll` or `epoll`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::Backend;
    ///
    /// assert_eq!(Backend::Poll.name(), "poll");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Select => "select",
            Backend::Poll => "poll",
            Backend::Epoll => "epoll",
        }
    }
}

impl Default for Backend {
    /// [`Backend::Epoll`].
    fn default() -> Backend {
        Backend::Epoll
    }
}

impl std::str::FromStr for Backend {
    type Err = io::Error;

    /// Parses `select`, `poll` or `epoll`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming the allowed values for anything else.
    fn from_str(s: &str) -> io::Result<Backend> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unknown backend {s:?}: expected one of select, poll, epoll"),
                )
            })
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The key of the loop's cross-thread wake-up registration.
pub(crate) const WAKER_KEY: usize = 0;
/// The key of the loop's signal wake-up registration.
pub(crate) const SIGNAL_KEY: usize = 1;
/// Channel `i` (its slot index) is registered under key `FIRST_CHANNEL_KEY + i`; the keys
/// below are the loop's own. Keys stay small: select and poll index tables by key.
pub(crate) const FIRST_CHANNEL_KEY: usize = 2;

/// One readiness report: which registration, and what the OS saw.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    pub(crate) key: usize,
    pub(crate) ready: Ready,
}

/// The backend in use, dispatched statically.
pub(crate) enum Selector {
    Select(select::Selector),
    Poll(poll::Selector),
    Epoll(epoll::Selector),
}

impl Selector {
    pub(crate) fn new(backend: Backend) -> io::Result<Selector> {
        Ok(match backend {
            Backend::Select => Selector::Select(select::Selector::new()),
            Backend::Poll => Selector::Poll(poll::Selector::new()),
            Backend::Epoll => Selector::Epoll(epoll::Selector::new()?),
        })
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Selector::Select(_) => Backend::Select,
            Selector::Poll(_) => Backend::Poll,
            Selector::Epoll(_) => Backend::Epoll,
        }
    }

    /// Moves `fd` (registered under `key`) from interest `old` to `new`.
    pub(crate) fn update(
        &mut self,
        fd: BorrowedFd<'_>,
        key: usize,
        old: Interest,
        new: Interest,
    ) -> io::Result<()> {
        if old == new {
            return Ok(());
        }
        match self {
            Selector::Select(s) => s.update(fd, key, old, new),
            Selector::Poll(s) => s.update(fd, key, old, new),
            Selector::Epoll(s) => s.update(fd, key, old, new),
        }
    }

    /// Deregisters `fd` (registered under `key` with interest `old`), which the caller
    /// closes right after. If `sole_reference` (no other descriptor refers to the same
    /// socket), epoll needs no system call: closing the last descriptor removes it from
    /// the epoll set. Otherwise, and for select and poll, as `update` to no interest.
    pub(crate) fn deregister_before_close(
        &mut self,
        fd: BorrowedFd<'_>,
        key: usize,
        old: Interest,
        sole_reference: bool,
    ) -> io::Result<()> {
        match self {
            Selector::Epoll(s) if sole_reference => {
                s.forget(key);
                Ok(())
            }
            _ => self.update(fd, key, old, Interest::NONE),
        }
    }

    /// Waits up to `timeout` (`None` = forever) and fills `events`; retries `EINTR`.
    pub(crate) fn wait(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut remaining = timeout;
        loop {
            events.clear();
            let ts = remaining.map(timespec);
            let result = match self {
                Selector::Select(s) => s.wait(events, ts.as_ref()),
                Selector::Poll(s) => s.wait(events, ts.as_ref()),
                Selector::Epoll(s) => s.wait(events, ts.as_ref()),
            };
            match result {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                }
                other => return other,
            }
        }
    }
}

/// The longest single wait: about 24 days, which fits every backend's timeout type.
/// A longer timeout just wakes once and waits again.
const MAX_WAIT_SECS: u64 = 2_000_000;

/// Converts a timeout to a `Timespec`, clamped to [`MAX_WAIT_SECS`]. Backends that take
/// milliseconds round up (rustix does), so a sub-millisecond timeout never becomes a busy 0.
fn timespec(d: Duration) -> rustix::event::Timespec {
    let (secs, nanos) = if d.as_secs() >= MAX_WAIT_SECS {
        (MAX_WAIT_SECS, 0)
    } else {
        (d.as_secs(), d.subsec_nanos())
    };
    rustix::event::Timespec {
        tv_sec: secs as _,
        tv_nsec: nanos as _,
    }
}

/// Returns true if `fd` is an open descriptor.
fn is_open(fd: RawFd) -> bool {
    // SAFETY: the borrowed fd is used for one fcntl(F_GETFD), which only inspects the
    // descriptor table and reports EBADF for a closed number; it never touches the file.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_getfd(fd).is_ok()
}

/// Grows a dense registration table: `slots[key]` is 1 + the index of `key`'s entry.
fn slot_of(slots: &mut Vec<u32>, key: usize) -> &mut u32 {
    if slots.len() <= key {
        slots.resize(key + 1, 0);
    }
    &mut slots[key]
}

/// Views an initialized byte buffer as the `MaybeUninit` buffer socket2's receive calls take.
pub(crate) fn as_uninit(buf: &mut [u8]) -> &mut [std::mem::MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the same size, alignment and validity as `u8`; the
    // callees (socket2's recv_from / recv_out_of_band) only ever write initialized bytes
    // received from the kernel into the slice, so it stays a valid `[u8]` afterwards.
    unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) }
}

/// `sendfile(2)`: up to `count` bytes of `file` from `*offset` to `socket`, advancing
/// `*offset` by what was sent (the file's own position is not used). `EAGAIN` is
/// `WouldBlock`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn sendfile(
    socket: BorrowedFd<'_>,
    file: &std::fs::File,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    Ok(rustix::fs::sendfile(socket, file, Some(offset), count)?)
}

/// No `sendfile(2)` here: the caller falls back to reading and writing.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn sendfile(
    _: BorrowedFd<'_>,
    _: &std::fs::File,
    _: &mut u64,
    _: usize,
) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

/// True for the errors that mean "`sendfile(2)` cannot do this pair of descriptors"
/// (`EINVAL`, `ENOSYS`, `EOPNOTSUPP`): fall back to copying.
pub(crate) fn sendfile_unsupported(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Unsupported
        || matches!(
            rustix::io::Errno::from_io_error(err),
            Some(
                rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::OPNOTSUPP
            )
        )
}
