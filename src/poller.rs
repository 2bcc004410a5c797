//! A bare readiness poller over the loop's backends, for code that keeps its own map.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use crate::interest::{Interest, Ready};
use crate::sys::{Backend, Event, Selector};

/// One readiness report from [`Poller::wait`]: the key the descriptor was registered
/// under and what the OS saw.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use std::os::fd::AsFd;
/// use std::time::Duration;
/// use sockloop::{Backend, Interest, Poller};
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let (server, _) = listener.accept()?;
/// client.write_all(b"x")?;
///
/// let mut poller = Poller::new(Backend::Poll)?;
/// poller.register(server.as_fd(), 7, Interest::READABLE)?;
/// let mut events = Vec::new();
/// poller.wait(&mut events, Some(Duration::from_secs(5)))?;
/// assert_eq!(events[0].key(), 7);
/// assert!(events[0].is_readable() && !events[0].is_writable());
/// # std::io::Result::Ok(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PollEvent {
    key: usize,
    ready: Ready,
}

impl PollEvent {
    /// The key the descriptor was registered under.
    pub const fn key(&self) -> usize {
        self.key
    }

    /// Input is ready (select's read set, `POLLIN`, `EPOLLIN`).
    pub const fn is_readable(&self) -> bool {
        self.ready.intersects(Ready::READ)
    }

    /// Room to write (select's write set, `POLLOUT`, `EPOLLOUT`).
    pub const fn is_writable(&self) -> bool {
        self.ready.intersects(Ready::WRITE)
    }

    /// Out-of-band or priority data (select's except set, `POLLPRI`, `EPOLLPRI`).
    pub const fn is_priority(&self) -> bool {
        self.ready.intersects(Ready::PRI)
    }

    /// The peer hung up (`POLLHUP`, `EPOLLHUP`; never reported by select).
    pub const fn is_hangup(&self) -> bool {
        self.ready.intersects(Ready::HUP)
    }

    /// An error is pending on the descriptor (`POLLERR`, `EPOLLERR`).
    pub const fn is_error(&self) -> bool {
        self.ready.intersects(Ready::ERR)
    }

    /// The descriptor is not open (`POLLNVAL`, or `EBADF` found by select).
    pub const fn is_invalid(&self) -> bool {
        self.ready.intersects(Ready::NVAL)
    }
}

impl fmt::Debug for PollEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollEvent")
            .field("key", &self.key)
            .field("readable", &self.is_readable())
            .field("writable", &self.is_writable())
            .field("priority", &self.is_priority())
            .field("hangup", &self.is_hangup())
            .field("error", &self.is_error())
            .field("invalid", &self.is_invalid())
            .finish()
    }
}

/// A readiness poller on one [`Backend`], without the channel map of [`EventLoop`].
///
/// It is for code that keeps its own map of handles and routes events itself (the Python
/// package's asyncore does): register descriptors under small integer keys, wait, and
/// read back [`PollEvent`]s by key. [`EventLoop`] is the same machinery with the map,
/// routing and the hooks built in; prefer it in Rust.
///
/// * Keys are small integers chosen by the caller (select and poll index tables by key:
///   keep them dense, e.g. slot numbers). A key names one descriptor from
///   [`register`](Poller::register) to [`deregister`](Poller::deregister).
/// * [`Interest::NONE`] is allowed and means the descriptor is not watched at all (not
///   even for hang-up), which costs no system call.
/// * The order of events is the backend's: select reports every readable key, then every
///   writable one, then every exceptional one (one event each, as `asyncore.poll`
///   dispatches); poll and epoll report one combined event per key (as `asyncore.poll2`).
/// * Deregister a descriptor before closing it. A descriptor closed behind the poller's
///   back is reported as [`is_invalid`](PollEvent::is_invalid) by select and poll and
///   silently forgotten by epoll.
///
/// [`EventLoop`]: crate::EventLoop
///
/// # Examples
///
/// ```
/// use std::os::fd::AsFd;
/// use std::time::Duration;
/// use sockloop::{Backend, Interest, Poller};
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let mut events = Vec::new();
/// for backend in Backend::ALL {
///     let mut poller = Poller::new(backend)?;
///     poller.register(client.as_fd(), 0, Interest::WRITABLE)?;
///     poller.wait(&mut events, Some(Duration::from_secs(5)))?;
///     assert!(events.iter().any(|e| e.key() == 0 && e.is_writable()));
///     poller.deregister(client.as_fd(), 0)?;
/// }
/// # std::io::Result::Ok(())
/// ```
pub struct Poller {
    selector: Selector,
    /// `keys[key]` = the registered descriptor and its interest.
    keys: Vec<Option<(RawFd, Interest)>>,
    registered: usize,
    raw: Vec<Event>,
}

impl Poller {
    /// Opens a poller on `backend`.
    ///
    /// # Errors
    ///
    /// Whatever the OS says when creating the backend's handle (epoll_create1).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{Backend, Poller};
    ///
    /// assert_eq!(Poller::new(Backend::Epoll)?.backend(), Backend::Epoll);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn new(backend: Backend) -> io::Result<Poller> {
        Ok(Poller {
            selector: Selector::new(backend)?,
            keys: Vec::new(),
            registered: 0,
            raw: Vec::new(),
        })
    }

    /// The backend this poller waits with.
    pub fn backend(&self) -> Backend {
        self.selector.backend()
    }

    /// The number of registered keys (with any interest, [`Interest::NONE`] included).
    pub fn len(&self) -> usize {
        self.registered
    }

    /// Returns true if no key is registered.
    pub fn is_empty(&self) -> bool {
        self.registered == 0
    }

    /// The interest `key` is registered with, or `None` if it is not registered.
    pub fn interest(&self, key: usize) -> Option<Interest> {
        self.keys.get(key).copied().flatten().map(|(_, i)| i)
    }

    /// Starts watching `fd` under `key` for `interest`.
    ///
    /// # Errors
    ///
    /// `AlreadyExists` if `key` is registered; otherwise what the OS says (epoll_ctl).
    /// On an error nothing is registered.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use sockloop::{Backend, Interest, Poller};
    ///
    /// let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let mut poller = Poller::new(Backend::Select)?;
    /// poller.register(socket.as_fd(), 3, Interest::READABLE)?;
    /// assert!(poller.register(socket.as_fd(), 3, Interest::READABLE).is_err());
    /// assert_eq!(poller.interest(3), Some(Interest::READABLE));
    /// # std::io::Result::Ok(())
    /// ```
    pub fn register(
        &mut self,
        fd: BorrowedFd<'_>,
        key: usize,
        interest: Interest,
    ) -> io::Result<()> {
        if self.interest(key).is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("key {key} is already registered: modify or deregister it first"),
            ));
        }
        self.selector.update(fd, key, Interest::NONE, interest)?;
        if self.keys.len() <= key {
            self.keys.resize(key + 1, None);
        }
        self.keys[key] = Some((fd.as_raw_fd(), interest));
        self.registered += 1;
        Ok(())
    }

    /// Changes what `key` (registered with the same `fd`) is watched for. Costs a system
    /// call only on epoll and only when the interest changes.
    ///
    /// # Errors
    ///
    /// `NotFound` if `key` is not registered, `InvalidInput` if it was registered with
    /// another descriptor; otherwise what the OS says (epoll_ctl). On an error the
    /// registration is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use sockloop::{Backend, Interest, Poller};
    ///
    /// let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let mut poller = Poller::new(Backend::Epoll)?;
    /// poller.register(socket.as_fd(), 0, Interest::NONE)?;
    /// poller.modify(socket.as_fd(), 0, Interest::READABLE | Interest::WRITABLE)?;
    /// assert_eq!(poller.interest(0), Some(Interest::READABLE | Interest::WRITABLE));
    /// # std::io::Result::Ok(())
    /// ```
    pub fn modify(&mut self, fd: BorrowedFd<'_>, key: usize, interest: Interest) -> io::Result<()> {
        let old = self.registered_with(fd, key)?;
        self.selector.update(fd, key, old, interest)?;
        self.keys[key] = Some((fd.as_raw_fd(), interest));
        Ok(())
    }

    /// Stops watching `key` (registered with the same `fd`). Call it before closing `fd`.
    ///
    /// # Errors
    ///
    /// `NotFound` if `key` is not registered, `InvalidInput` if it was registered with
    /// another descriptor. If the OS refuses (epoll_ctl on a descriptor already closed),
    /// the key is forgotten all the same and the OS error is returned.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use sockloop::{Backend, Interest, Poller};
    ///
    /// let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let mut poller = Poller::new(Backend::Epoll)?;
    /// poller.register(socket.as_fd(), 1, Interest::READABLE)?;
    /// poller.deregister(socket.as_fd(), 1)?;
    /// assert!(poller.is_empty() && poller.interest(1).is_none());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn deregister(&mut self, fd: BorrowedFd<'_>, key: usize) -> io::Result<()> {
        let old = self.registered_with(fd, key)?;
        self.keys[key] = None;
        self.registered -= 1;
        self.selector.update(fd, key, old, Interest::NONE)
    }

    /// Waits up to `timeout` (`None`: until an event) and replaces the contents of
    /// `events` with what the OS reported. `EINTR` is retried with the time that remains;
    /// sub-millisecond timeouts round up, never down to a busy zero. With nothing
    /// watched it simply sleeps for `timeout`.
    ///
    /// # Errors
    ///
    /// What the OS says (select, poll or epoll_wait), `EINTR` excepted.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use sockloop::{Backend, Poller};
    ///
    /// let mut poller = Poller::new(Backend::Select)?;
    /// let mut events = Vec::new();
    /// let start = Instant::now();
    /// poller.wait(&mut events, Some(Duration::from_millis(5)))?;
    /// assert!(events.is_empty() && start.elapsed() >= Duration::from_millis(5));
    /// # std::io::Result::Ok(())
    /// ```
    pub fn wait(
        &mut self,
        events: &mut Vec<PollEvent>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        self.selector.wait(&mut self.raw, timeout)?;
        events.clear();
        events.extend(self.raw.iter().map(|e| PollEvent {
            key: e.key,
            ready: e.ready,
        }));
        Ok(())
    }

    fn registered_with(&self, fd: BorrowedFd<'_>, key: usize) -> io::Result<Interest> {
        match self.keys.get(key).copied().flatten() {
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("key {key} is not registered: register it first"),
            )),
            Some((raw, _)) if raw != fd.as_raw_fd() => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "key {key} is registered with fd {raw}, not fd {}: deregister it with the fd it was registered with",
                    fd.as_raw_fd()
                ),
            )),
            Some((_, interest)) => Ok(interest),
        }
    }
}

impl fmt::Debug for Poller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poller")
            .field("backend", &self.backend())
            .field("registered", &self.registered)
            .finish()
    }
}
