//! Per-channel state and the socket operations a hook uses.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use crate::deadline::Deadlines;
use crate::errors::is_disconnect;
use crate::producer::Producer;
use crate::send::{Flushed, OutputQueue};
use crate::sys::fork;
use crate::token::Token;

/// Where a channel is in its life, asyncore's `accepting` / `connecting` / `connected` flags
/// as one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Open but neither listening nor connected: a fresh or bound socket, a datagram socket
    /// without a default peer. Pipes and other fds are [`State::Connected`].
    Unconnected,
    /// Listening (asyncore's `accepting`): never in the write set, never `connected`.
    Accepting,
    /// A non-blocking connect is in progress; it completes on the next read or write event.
    Connecting,
    /// Connected to a peer (asyncore's `connected`).
    Connected,
    /// Closed: the OS handle is released and no hook runs again.
    Closed,
}

/// The OS handle under a channel. A socket is kept as its plain fd (socket2's methods
/// through [`SockRef`]): reaching the descriptor on the per-message path is then a load,
/// not a call into socket2.
enum Handle {
    Socket(OwnedFd),
    /// A pipe, tty or other fd (asyncore's `file_dispatcher`): recv/send are read/write.
    File(OwnedFd),
    Closed,
}

/// What the loop must do after the current hook (crate-internal): run `handle_eof` or
/// `handle_close`. A bit set: it is tested after every hook.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pending(u16);

impl Pending {
    /// recv saw end of file (stays set: [`Channel::is_eof`]).
    pub(crate) const EOF: u16 = 1;
    /// `handle_eof` is due for that end of file (cleared when it runs).
    pub(crate) const EOF_UNREPORTED: u16 = 2;
    /// send or recv failed with a disconnect error (ECONNRESET, EPIPE, ...).
    pub(crate) const DISCONNECTED: u16 = 4;
    /// everything before `close_when_done` was sent.
    pub(crate) const DONE: u16 = 8;
    /// [`Channel::request_close`] was called.
    pub(crate) const REQUESTED: u16 = 16;
    /// recv returned data (cleared by the loop before a read event after a hang-up, to
    /// tell a hook that reads from one that does not). Not part of [`Pending::any`].
    pub(crate) const INPUT: u16 = 32;
    /// send wrote bytes: activity for the idle timeout, stamped by the loop with its
    /// per-iteration clock (a push to another channel counts too). Not part of
    /// [`Pending::any`].
    pub(crate) const OUTPUT: u16 = 64;
    /// The output queue fell to its low-water mark: `handle_drained` is due.
    pub(crate) const DRAINED: u16 = 128;
    /// Output was gathered (see [`Channel::push`], "Coalescing"): the loop runs
    /// `handle_write` for it before it waits.
    pub(crate) const GATHERED: u16 = 256;

    pub(crate) fn set(&mut self, bit: u16) {
        self.0 |= bit;
    }

    pub(crate) fn clear(&mut self, bit: u16) {
        self.0 &= !bit;
    }

    pub(crate) fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }

    /// `handle_write` for gathered output, `handle_drained`, `handle_eof` or
    /// `handle_close` is due: one test, as it runs after every hook.
    pub(crate) fn any(self) -> bool {
        self.has(
            Self::GATHERED
                | Self::DRAINED
                | Self::EOF_UNREPORTED
                | Self::DISCONNECTED
                | Self::DONE
                | Self::REQUESTED,
        )
    }

    /// `handle_close` is due.
    pub(crate) fn close(self) -> bool {
        self.0 & (Self::DISCONNECTED | Self::DONE | Self::REQUESTED) != 0
    }
}

/// An OS handle plus its state and output queue: what asyncore's `dispatcher` keeps besides
/// the user's hooks.
///
/// A hook reaches its own channel through [`Context`](crate::Context) (which dereferences
/// to it, so `ctx.recv(..)` and `ctx.push(..)` read like asyncore's `self.recv(..)`), and
/// other channels through [`Context::channel_mut`](crate::Context::channel_mut).
///
/// Operations never block: every handle is non-blocking. As with std's non-blocking
/// sockets, a [`recv`](Channel::recv) or [`send`](Channel::send) that would block returns
/// an error of kind [`WouldBlock`](io::ErrorKind::WouldBlock), which the loop ignores
/// when a hook returns it; `recv`'s `Ok(0)` is end of file.
///
/// # Examples
///
/// ```
/// use sockloop::{Channel, Domain, State, Type};
///
/// let mut ch = Channel::create_socket(Domain::IPV4, Type::STREAM)?;
/// ch.set_reuse_addr()?;
/// ch.bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())?;
/// ch.listen(16)?;
/// assert_eq!(ch.state(), State::Accepting);
/// assert_ne!(ch.local_addr()?.as_socket().unwrap().port(), 0);
/// # std::io::Result::Ok(())
/// ```
pub struct Channel {
    handle: Handle,
    state: State,
    pub(crate) output: OutputQueue,
    pub(crate) pending: Pending,
    /// Allocated when a timeout is set or accepting backs off: most channels have none.
    pub(crate) deadlines: Option<Box<Deadlines>>,
    /// Set once, when a loop adds the channel; shown by `Display` with the label (the
    /// dispatcher's type name), as asyncore's repr names the class.
    token: Option<Token>,
    label: &'static str,
    reading_paused: bool,
    /// A datagram socket: a zero-length read is an empty datagram, not end of file.
    /// Known from creation, so end of file costs no `getsockopt(SO_TYPE)`.
    datagram: bool,
    /// This channel already sent at once during the current hook or iteration: later
    /// pushes are gathered in the queue and leave on the write event (see
    /// [`Channel::push`], "Coalescing"). Cleared by the loop after each hook and before
    /// each wait.
    pub(crate) gathering: bool,
    /// Where [`connect`](Channel::connect) is connecting to: shown by `Display` while
    /// connecting (the socket has no peer address yet), so a refused connect names its
    /// target, not the local port.
    connecting_to: Option<Box<SockAddr>>,
    /// Another reference to the socket may exist: it came from the caller
    /// ([`from_socket`](Channel::from_socket), [`from_fd`](Channel::from_fd), ...) or was
    /// lent ([`socket`](Channel::socket), [`fd`](Channel::fd), `raw_fd`, `as_raw_fd`).
    /// Atomic only so that lending takes `&self`; it is a plain load and store.
    shared: AtomicBool,
    /// The fork epoch (`sys::fork`) when sockloop opened the socket.
    epoch: u32,
}

/// Runs `op` again when a signal interrupted it (`EINTR`), as std's `read_exact` does.
#[inline]
fn retry_interrupted<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// "crate::module::Type<Args>" → "Type<Args>", for messages.
pub(crate) fn short_type_name(full: &str) -> &str {
    let base = full.split('<').next().unwrap_or(full);
    match base.rfind("::") {
        Some(i) => &full[i + 2..],
        None => full,
    }
}

fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the channel is closed")
}

fn not_a_socket() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "this channel wraps a plain fd (file dispatcher), not a socket",
    )
}

impl Channel {
    /// A channel on a descriptor that came from the caller: it may have other references.
    fn with_handle(handle: Handle, state: State) -> Channel {
        Channel {
            shared: AtomicBool::new(true),
            epoch: 0,
            handle,
            state,
            output: OutputQueue::default(),
            pending: Pending::default(),
            deadlines: None,
            token: None,
            label: "channel",
            reading_paused: false,
            datagram: false,
            gathering: false,
            connecting_to: None,
        }
    }

    /// A channel on a socket sockloop just opened (socket, socketpair, accept): the only
    /// reference to it, until lent or until the process forks.
    fn opened(socket: Socket, state: State) -> Channel {
        let mut ch = Channel::with_handle(Handle::Socket(socket.into()), state);
        ch.shared = AtomicBool::new(false);
        ch.epoch = fork::epoch();
        ch
    }

    /// True if nothing but this channel can refer to its socket: then closing the
    /// descriptor is enough to remove it from an epoll set (no other descriptor keeps the
    /// open file description, and its registration, alive), and the loop skips the
    /// `epoll_ctl(DEL)` system call.
    pub(crate) fn is_sole_reference(&self) -> bool {
        !self.shared.load(Ordering::Relaxed) && fork::unchanged_since(self.epoch)
    }

    /// Creates a non-blocking, close-on-exec socket (asyncore's `create_socket`).
    ///
    /// `domain` is [`Domain::IPV4`], [`Domain::IPV6`] or [`Domain::UNIX`]; `ty` is
    /// [`Type::STREAM`] or [`Type::DGRAM`].
    ///
    /// # Errors
    ///
    /// What socket(2) reports, e.g. an unsupported family.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{Channel, Domain, State, Type};
    ///
    /// let ch = Channel::create_socket(Domain::IPV6, Type::DGRAM)?;
    /// assert_eq!(ch.state(), State::Unconnected);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn create_socket(domain: Domain, ty: Type) -> io::Result<Channel> {
        // Non-blocking and close-on-exec from socket(2) itself: no fcntl calls.
        let socket = Socket::new(domain, ty.nonblocking(), None)?;
        let mut ch = Channel::opened(socket, State::Unconnected);
        ch.set_type(ty);
        Ok(ch)
    }

    /// Notes what the socket type means for reads and the output queue.
    fn set_type(&mut self, ty: Type) {
        self.datagram = ty == Type::DGRAM;
        // Each push is one message: never merged with another, never split.
        self.output
            .set_keep_boundaries(ty == Type::DGRAM || ty == Type::SEQPACKET);
    }

    /// A TCP channel connecting to the first address `addr` resolves to: the channel is
    /// [`State::Connecting`] and completes as [`connect`](Channel::connect) describes
    /// (`handle_connect`, or `handle_error` with e.g. `ECONNREFUSED`). Name resolution,
    /// if `addr` is a host name, blocks the calling thread (std's resolver): pass a
    /// `SocketAddr` inside a loop.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `addr` resolves to nothing; resolution errors; errors of
    /// socket(2) and connect(2) other than "in progress".
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{Channel, State};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let ch = Channel::tcp_connect(listener.local_addr()?)?;
    /// assert_eq!(ch.state(), State::Connecting);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn tcp_connect(addr: impl std::net::ToSocketAddrs) -> io::Result<Channel> {
        let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the address resolved to nothing",
            )
        })?;
        let mut ch = Channel::create_socket(Domain::for_address(addr), Type::STREAM)?;
        ch.connect(addr)?;
        Ok(ch)
    }

    /// A listening TCP channel on `addr`: [`create_socket`](Channel::create_socket),
    /// [`set_reuse_addr`](Channel::set_reuse_addr), [`bind`](Channel::bind) and
    /// [`listen`](Channel::listen) in one call, the way asyncore servers start.
    ///
    /// # Errors
    ///
    /// What any of those steps reports (address in use, permission, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{Channel, State};
    ///
    /// let ch = Channel::tcp_listener("127.0.0.1:0".parse().unwrap(), 128)?;
    /// assert_eq!(ch.state(), State::Accepting);
    /// assert_ne!(ch.local_inet_addr()?.port(), 0);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn tcp_listener(addr: std::net::SocketAddr, backlog: i32) -> io::Result<Channel> {
        let mut ch = Channel::create_socket(Domain::for_address(addr), Type::STREAM)?;
        ch.set_reuse_addr()?;
        ch.bind(addr)?;
        ch.listen(backlog)?;
        Ok(ch)
    }

    /// Wraps an existing socket: a std `TcpListener`, `TcpStream`, `UdpSocket`,
    /// `UnixListener`, `UnixStream`, `UnixDatagram` or a `socket2::Socket`.
    ///
    /// The socket is made non-blocking. Its state is read from the OS: a listening socket
    /// is [`State::Accepting`], one with a peer is [`State::Connected`], anything else
    /// [`State::Unconnected`] (asyncore's `getpeername` check, without an error).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the descriptor is not a socket; other errors from the OS.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{Channel, State};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let client = std::net::TcpStream::connect(addr)?;
    /// let listening = Channel::from_socket(listener)?;
    /// assert_eq!(listening.state(), State::Accepting);
    /// assert_eq!(Channel::from_socket(client)?.state(), State::Connected);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn from_socket(socket: impl Into<Socket>) -> io::Result<Channel> {
        let socket: Socket = socket.into();
        let state = match socket.is_listener() {
            Ok(true) => State::Accepting,
            Ok(false) => match socket.peer_addr() {
                Ok(_) => State::Connected,
                Err(e)
                    if matches!(
                        Errno::from_io_error(&e),
                        Some(Errno::NOTCONN | Errno::INVAL)
                    ) =>
                {
                    State::Unconnected
                }
                Err(e) => return Err(e),
            },
            Err(e) if Errno::from_io_error(&e) == Some(Errno::NOTSOCK) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a socket: use Channel::from_fd for pipes and other fds",
                ))
            }
            Err(e) => return Err(e),
        };
        socket.set_nonblocking(true)?;
        let ty = socket.r#type()?;
        let mut ch = Channel::with_handle(Handle::Socket(socket.into()), state);
        ch.set_type(ty);
        Ok(ch)
    }

    /// Wraps a duplicate of any pollable fd: a pipe end, a tty, a character device
    /// (asyncore's `file_dispatcher`). The duplicate is made non-blocking and close-on-exec;
    /// the caller keeps its own fd. The channel starts [`State::Connected`];
    /// [`recv`](Channel::recv) and [`send`](Channel::send) are read(2) and write(2).
    ///
    /// Regular files are always "ready" to select and poll, and cannot be registered with
    /// epoll; every backend reports them ready on each iteration, so reading one through
    /// the loop reads it to the end without waiting.
    ///
    /// Note that `O_NONBLOCK` lives on the open file description, which the duplicate
    /// shares with the original fd.
    ///
    /// # Errors
    ///
    /// What dup(2) or fcntl(2) report.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::Channel;
    ///
    /// let (reader, writer) = std::io::pipe()?;
    /// let r = Channel::from_fd(&reader)?;
    /// let w = Channel::from_fd(&writer)?;
    /// assert!(r.is_connected() && w.is_connected());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn from_fd(fd: &impl AsFd) -> io::Result<Channel> {
        let dup = rustix::io::fcntl_dupfd_cloexec(fd, 0)?;
        Channel::from_owned_fd(dup)
    }

    /// Like [`from_fd`](Channel::from_fd) but takes ownership of `fd` instead of
    /// duplicating it.
    ///
    /// # Errors
    ///
    /// What fcntl(2) reports.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::Channel;
    ///
    /// let (reader, _writer) = std::io::pipe()?;
    /// let ch = Channel::from_owned_fd(reader.into())?;
    /// assert!(ch.is_connected());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn from_owned_fd(fd: OwnedFd) -> io::Result<Channel> {
        rustix::io::ioctl_fionbio(&fd, true)?;
        Ok(Channel::with_handle(Handle::File(fd), State::Connected))
    }

    /// A connected pair of stream channels over a Unix socketpair, handy for tests and for
    /// talking between channels of one loop.
    ///
    /// # Errors
    ///
    /// What socketpair(2) reports.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = sockloop::Channel::pair()?;
    /// assert!(a.is_connected() && b.is_connected());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn pair() -> io::Result<(Channel, Channel)> {
        // Close-on-exec from socketpair(2) (socket2 sets it); non-blocking here.
        let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((
            Channel::opened(a, State::Connected),
            Channel::opened(b, State::Connected),
        ))
    }

    /// The socket, borrowed: a [`SockRef`](crate::SockRef), which dereferences to a
    /// [`socket2::Socket`], for socket options sockloop has no method for
    /// (`set_keepalive`, `set_send_buffer_size`, `set_ttl`, ...). socket2 is re-exported
    /// ([`Socket`](crate::Socket), [`SockRef`](crate::SockRef),
    /// [`SockAddr`](crate::SockAddr), [`Domain`](crate::Domain), [`Type`](crate::Type));
    /// its version is part of sockloop's public API. Do not make it blocking: the loop
    /// relies on non-blocking calls. Lending it (as [`fd`](Channel::fd), `raw_fd` and
    /// `as_raw_fd` do) tells the loop a duplicate may exist: on epoll it then
    /// deregisters the channel explicitly before closing it, one `epoll_ctl` more (a
    /// socket nothing else refers to leaves the epoll set when it is closed).
    ///
    /// # Errors
    ///
    /// `InvalidInput` on a file channel, `NotConnected` once closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (ch, _peer) = sockloop::Channel::pair()?;
    /// ch.socket()?.set_send_buffer_size(64 * 1024)?;
    /// assert!(ch.socket()?.send_buffer_size()? >= 64 * 1024);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn socket(&self) -> io::Result<SockRef<'_>> {
        self.shared.store(true, Ordering::Relaxed);
        self.sock()
    }

    /// [`socket`](Channel::socket) for sockloop's own calls: not a loan.
    fn sock(&self) -> io::Result<SockRef<'_>> {
        match &self.handle {
            Handle::Socket(s) => Ok(SockRef::from(s)),
            Handle::File(_) => Err(not_a_socket()),
            Handle::Closed => Err(closed_error()),
        }
    }

    /// Records the channel's place in a loop (once: a channel belongs to one loop).
    pub(crate) fn join_loop(&mut self, token: Token, label: &'static str) {
        self.token = Some(token);
        self.label = label;
    }

    /// The dispatcher's full type name given at `add` (`"channel"` before); messages
    /// show it through [`short_type_name`], shortened only when one is written.
    pub(crate) fn label(&self) -> &'static str {
        self.label
    }

    /// The token this channel was added under, or `None` before it is added to a loop.
    pub fn token(&self) -> Option<Token> {
        self.token
    }

    /// The channel's state.
    pub fn state(&self) -> State {
        self.state
    }

    /// asyncore's `accepting`: the channel is listening.
    pub fn is_accepting(&self) -> bool {
        self.state == State::Accepting
    }

    /// asyncore's `connecting`: a non-blocking connect is in progress.
    pub fn is_connecting(&self) -> bool {
        self.state == State::Connecting
    }

    /// asyncore's `connected`.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// True once the channel is closed.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// True once [`recv`](Channel::recv) has seen end of file. The loop then runs
    /// [`handle_eof`](crate::Dispatcher::handle_eof) after the current hook returns, and
    /// stops watching the channel for input.
    pub fn is_eof(&self) -> bool {
        self.pending.has(Pending::EOF)
    }

    /// Asks the loop to run this channel's `handle_close` (once) when the current hook
    /// returns, and then close it: what asyncore code did by calling `self.handle_close()`
    /// from another hook, without the risk of running it twice.
    pub fn request_close(&mut self) {
        self.pending.set(Pending::REQUESTED);
    }

    /// Sets (or with `None`, clears) the idle timeout: when the channel has been idle for
    /// this long, the loop runs [`handle_timeout`](crate::Dispatcher::handle_timeout) with
    /// [`Timeout::Idle`](crate::Timeout::Idle) (default: close). The clock starts now.
    ///
    /// Idle means nothing happened in either direction: no read or write event reached
    /// the channel, and none of its output was sent, including output the kernel took at
    /// once from a [`push`](Channel::push) made by another channel's hook (a member of a
    /// chat room that only listens is not idle while the room talks). Activity is
    /// stamped with the loop's per-iteration clock, so it costs no timer operation per
    /// message.
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        self.deadlines_mut().set_idle(timeout, Instant::now());
    }

    /// The idle timeout, if one is set.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.deadlines.as_ref().and_then(|d| d.idle())
    }

    /// Sets (or clears) the connect timeout: if a [`connect`](Channel::connect) has not
    /// completed this long after it started, the loop runs
    /// [`handle_timeout`](crate::Dispatcher::handle_timeout) with
    /// [`Timeout::Connect`](crate::Timeout::Connect) (default: close).
    pub fn set_connect_timeout(&mut self, timeout: Option<Duration>) {
        let connecting = self.is_connecting();
        self.deadlines_mut()
            .set_connect(timeout, connecting, Instant::now());
    }

    /// The connect timeout, if one is set.
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.deadlines.as_ref().and_then(|d| d.connect())
    }

    /// True while a listening channel has stopped accepting because the OS ran out of
    /// descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`); the loop resumes
    /// accepting after a back-off.
    pub fn is_accept_paused(&self) -> bool {
        self.deadlines.as_ref().is_some_and(|d| d.accept_paused())
    }

    /// The OS descriptor number, or `None` once closed. For logging and for matching
    /// against OS tools; the loop itself never identifies a channel by it.
    pub fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        self.fd().map(|fd| std::os::fd::AsRawFd::as_raw_fd(&fd))
    }

    pub(crate) fn deadlines_mut(&mut self) -> &mut Deadlines {
        self.deadlines.get_or_insert_with(Box::default)
    }

    pub(crate) fn set_connected(&mut self) {
        self.state = State::Connected;
    }

    /// The descriptor, borrowed, for OS calls sockloop does not wrap (rustix, nix,
    /// another crate's poller); `None` once closed. (No `AsFd` impl: a closed channel has
    /// no descriptor to lend, and `as_fd` cannot say so without panicking.) Do not close
    /// it or make it blocking: the loop owns it.
    ///
    /// # Examples
    ///
    /// ```
    /// let (ch, _peer) = sockloop::Channel::pair()?;
    /// let fd = ch.fd().expect("open");
    /// assert!(rustix::io::fcntl_getfd(fd).is_ok());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.shared.store(true, Ordering::Relaxed);
        self.own_fd()
    }

    /// [`fd`](Channel::fd) for sockloop's own calls: not a loan.
    pub(crate) fn own_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.handle {
            Handle::Socket(fd) | Handle::File(fd) => Some(fd.as_fd()),
            Handle::Closed => None,
        }
    }

    /// Releases the OS handle. Deregistration is the loop's job and happens first.
    pub(crate) fn close_fd(&mut self) {
        self.handle = Handle::Closed;
        self.state = State::Closed;
    }

    /// Sets `SO_REUSEADDR` (asyncore's `set_reuse_addr`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` on a file channel, `NotConnected` on a closed one, or the OS's error.
    pub fn set_reuse_addr(&mut self) -> io::Result<()> {
        self.sock()?.set_reuse_address(true)
    }

    /// Sets `SO_REUSEPORT`, so several listeners (one per thread) can share an address.
    ///
    /// # Errors
    ///
    /// As [`set_reuse_addr`](Channel::set_reuse_addr).
    pub fn set_reuse_port(&mut self) -> io::Result<()> {
        self.sock()?.set_reuse_port(true)
    }

    /// Sets or clears `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// As [`set_reuse_addr`](Channel::set_reuse_addr); also fails on non-TCP sockets.
    pub fn set_nodelay(&mut self, nodelay: bool) -> io::Result<()> {
        self.sock()?.set_tcp_nodelay(nodelay)
    }

    /// Binds the socket. Pass a `std::net::SocketAddr` or a [`SockAddr`] (for Unix paths:
    /// `SockAddr::unix(path)?`).
    ///
    /// # Errors
    ///
    /// What bind(2) reports (address in use, permission, wrong family).
    pub fn bind(&mut self, addr: impl Into<SockAddr>) -> io::Result<()> {
        self.sock()?.bind(&addr.into())
    }

    /// Starts listening; the channel becomes [`State::Accepting`].
    ///
    /// # Errors
    ///
    /// What listen(2) reports, e.g. on a datagram socket.
    pub fn listen(&mut self, backlog: i32) -> io::Result<()> {
        self.sock()?.listen(backlog)?;
        self.state = State::Accepting;
        Ok(())
    }

    /// Starts a non-blocking connect (asyncore's `connect`).
    ///
    /// In progress (`EINPROGRESS`, `EALREADY`, `EWOULDBLOCK`) or already done (success,
    /// `EISCONN`): the channel becomes [`State::Connecting`], and the loop completes the
    /// connect on the channel's next read or write event by reading `SO_ERROR`: zero makes
    /// it [`State::Connected`] and runs `handle_connect`; non-zero is routed to
    /// `handle_error` with that error (e.g. `ECONNREFUSED`). An immediate success is thus
    /// reported on the next iteration rather than inside this call, where no hook can run.
    ///
    /// # Errors
    ///
    /// Any other connect(2) error, at once (e.g. `EINVAL` for a wrong family).
    pub fn connect(&mut self, addr: impl Into<SockAddr>) -> io::Result<()> {
        let addr = addr.into();
        match self.sock()?.connect(&addr) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    Errno::from_io_error(&e),
                    Some(Errno::INPROGRESS | Errno::ALREADY | Errno::WOULDBLOCK | Errno::ISCONN)
                ) => {}
            Err(e) => return Err(e),
        }
        self.state = State::Connecting;
        self.connecting_to = Some(Box::new(addr));
        if let Some(d) = &mut self.deadlines {
            d.start_connect(Instant::now());
        }
        Ok(())
    }

    /// Accepts one connection as a ready channel: `Ok(None)` if none is waiting
    /// (`EWOULDBLOCK`) or it was aborted before accept (`ECONNABORTED`). The channel is
    /// [`State::Connected`], non-blocking and close-on-exec from `accept4(2)` itself (no
    /// further system call per connection); add it to the loop as it is.
    ///
    /// # Errors
    ///
    /// Other accept(2) errors, e.g. `EMFILE` when out of descriptors.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{Channel, State};
    ///
    /// let mut listener = Channel::tcp_listener("127.0.0.1:0".parse().unwrap(), 16)?;
    /// assert!(listener.accept()?.is_none()); // nobody yet
    /// let _client = std::net::TcpStream::connect(listener.local_inet_addr()?)?;
    /// let (ch, _addr) = loop {
    ///     if let Some(accepted) = listener.accept()? {
    ///         break accepted;
    ///     }
    /// };
    /// assert_eq!(ch.state(), State::Connected);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn accept(&mut self) -> io::Result<Option<(Channel, SockAddr)>> {
        let flags = i32::from(Type::from(0).nonblocking().cloexec());
        match self.sock()?.accept4(flags) {
            Ok((s, addr)) => Ok(Some((Channel::opened(s, State::Connected), addr))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if Errno::from_io_error(&e) == Some(Errno::CONNABORTED) => Ok(None),
            Err(e) => Err(e),
        }
    }

    #[inline]
    fn classify<T: Default>(&mut self, result: io::Result<T>) -> io::Result<T> {
        match result {
            Ok(v) => Ok(v),
            Err(e) => self.classify_err(e),
        }
    }

    /// The error half of [`classify`](Channel::classify), out of line: the success path
    /// is the one taken per message.
    #[cold]
    #[inline(never)]
    fn classify_err<T: Default>(&mut self, err: io::Error) -> io::Result<T> {
        if matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ) {
            return Ok(T::default());
        }
        if is_disconnect(&err) {
            self.pending.set(Pending::DISCONNECTED);
            return Ok(T::default());
        }
        Err(err)
    }

    /// Sends what the OS takes now, bypassing the output queue (asyncore's `send`).
    ///
    /// As std's `Write::write` on a non-blocking socket: `Ok(n)` is the bytes the OS
    /// took (`n > 0` for non-empty `data`); `Err(e)` with `e.kind() ==`
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) if it took nothing (try again on a write
    /// event; a hook can pass it on with `?`, the loop ignores it). A disconnect error is
    /// `Ok(0)`, after which the loop runs `handle_close` when the current hook returns.
    /// Prefer [`push`](Channel::push), which keeps what the OS did not take.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use sockloop::Channel;
    ///
    /// let (mut a, mut b) = Channel::pair()?;
    /// assert_eq!(a.send(b"ping")?, 4); // the OS took it all
    /// let mut buf = [0u8; 16];
    /// assert_eq!(b.recv(&mut buf)?, 4);
    ///
    /// // Fill the socket buffer: once the OS takes nothing, `send` would block.
    /// let chunk = [0u8; 4096];
    /// let err = loop {
    ///     match a.send(&chunk) {
    ///         Ok(n) => assert!(n > 0),
    ///         Err(e) => break e,
    ///     }
    /// };
    /// assert_eq!(err.kind(), ErrorKind::WouldBlock);
    ///
    /// // Once the peer is gone, `send` is `Ok(0)`: the loop would close the channel.
    /// drop(b);
    /// assert_eq!(a.send(b"late")?, 0);
    /// # std::io::Result::Ok(())
    /// ```
    ///
    /// # Errors
    ///
    /// `WouldBlock` as above; other errors than disconnects.
    #[inline]
    pub fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        if matches!(self.handle, Handle::Closed) {
            return Err(closed_error());
        }
        match self.send_errno(data) {
            Ok(n) => Ok(n),
            Err(e) => self.disconnect_as(e.into(), 0),
        }
    }

    /// One send(2) (`MSG_NOSIGNAL`) or write(2), retried on `EINTR`, marking output;
    /// errors as a plain errno, cheap to test on the per-message path.
    #[inline]
    fn send_errno(&mut self, data: &[u8]) -> Result<usize, Errno> {
        let r = loop {
            let r = match &self.handle {
                Handle::Socket(s) => rustix::net::send(s, data, rustix::net::SendFlags::NOSIGNAL),
                Handle::File(f) => rustix::io::write(f, data),
                Handle::Closed => Err(Errno::BADF),
            };
            if r != Err(Errno::INTR) {
                break r;
            }
        };
        if let Ok(n) = r {
            if n > 0 {
                self.pending.set(Pending::OUTPUT);
            }
        }
        r
    }

    /// [`send`](Channel::send) with would-block as `Ok(0)`: for [`push`](Channel::push),
    /// which queues what the OS did not take.
    #[inline]
    fn send_some(&mut self, data: &[u8]) -> io::Result<usize> {
        match self.send_errno(data) {
            Ok(n) => Ok(n),
            Err(Errno::AGAIN) => Ok(0),
            Err(e) => self.disconnect_as(e.into(), 0),
        }
    }

    /// A disconnect error marks the channel for `handle_close` and becomes `Ok(value)`;
    /// any other error is returned. Out of line: the success path is the one taken per
    /// message.
    #[cold]
    #[inline(never)]
    fn disconnect_as<T>(&mut self, err: io::Error, value: T) -> io::Result<T> {
        if is_disconnect(&err) {
            self.pending.set(Pending::DISCONNECTED);
            return Ok(value);
        }
        Err(err)
    }

    /// Receives into `buf` (asyncore's `recv`).
    ///
    /// As std's `Read::read` on a non-blocking socket: `Ok(n)` with `n > 0` is data;
    /// `Err(e)` with `e.kind() ==` [`WouldBlock`](io::ErrorKind::WouldBlock) means no data
    /// yet (a **fix**: asyncore raised; a hook can pass it on with `?`, the loop ignores
    /// it); `Ok(0)` is end of file (or an empty `buf`). A disconnect error is also
    /// `Ok(0)`: the stream is over. Once the current hook returns, the loop runs
    /// `handle_eof` on end of file (default: send what is queued, then close) and
    /// `handle_close` on a disconnect error. On a datagram channel `Ok(0)` is an empty
    /// datagram, not end of file.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use sockloop::Channel;
    ///
    /// let (mut a, mut b) = Channel::pair()?;
    /// let mut buf = [0u8; 16];
    ///
    /// // Nothing sent yet: would block.
    /// let err = b.recv(&mut buf).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::WouldBlock);
    /// assert!(!b.is_eof());
    ///
    /// // Data.
    /// a.send(b"hello")?;
    /// assert_eq!(b.recv(&mut buf)?, 5);
    /// assert_eq!(&buf[..5], b"hello");
    ///
    /// // End of file: the peer is gone.
    /// drop(a);
    /// assert_eq!(b.recv(&mut buf)?, 0);
    /// assert!(b.is_eof());
    /// # std::io::Result::Ok(())
    /// ```
    ///
    /// # Errors
    ///
    /// `WouldBlock` as above; other errors than disconnects.
    #[inline]
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // read(2) is recv(2) without flags; rustix makes the system call itself, without
        // the socket2 and libc wrappers (~15 instructions per call).
        let fd = match &self.handle {
            Handle::Socket(fd) | Handle::File(fd) => fd.as_fd(),
            Handle::Closed => return Err(closed_error()),
        };
        let r = loop {
            let r = rustix::io::read(fd, &mut *buf);
            if r != Err(Errno::INTR) {
                break r;
            }
        };
        match r {
            Ok(0) if !buf.is_empty() && !self.datagram => {
                self.pending.set(Pending::EOF | Pending::EOF_UNREPORTED);
                Ok(0)
            }
            Ok(n) => {
                self.pending.set(Pending::INPUT);
                Ok(n)
            }
            Err(e) => self.disconnect_as(e.into(), 0),
        }
    }

    /// Receives one datagram and its sender (std's `UdpSocket::recv_from`): `Err(e)` with
    /// `e.kind() ==` [`WouldBlock`](io::ErrorKind::WouldBlock) if none is waiting. An
    /// empty datagram is `Ok((0, addr))`, data, not end of file.
    ///
    /// # Errors
    ///
    /// `WouldBlock` as above; `InvalidInput` on a file channel; other recvfrom(2) errors.
    pub fn recv_from(&mut self, buf: &mut [u8]) -> io::Result<(usize, SockAddr)> {
        let socket = self.sock()?;
        retry_interrupted(|| socket.recv_from(crate::sys::as_uninit(&mut *buf)))
    }

    /// Sends one datagram to `addr` (std's `UdpSocket::send_to`): `Ok(bytes sent)`, or
    /// `Err(e)` with `e.kind() ==` [`WouldBlock`](io::ErrorKind::WouldBlock) if the socket
    /// would block (nothing was sent; try again on a write event). An empty datagram is
    /// data: sending one is `Ok(0)`. A disconnect error is returned as such, and the loop
    /// also runs `handle_close` once the current hook returns, as with
    /// [`send`](Channel::send).
    ///
    /// # Errors
    ///
    /// `WouldBlock` as above; `InvalidInput` on a file channel; other sendto(2) errors
    /// (e.g. `EMSGSIZE`).
    pub fn send_to(&mut self, data: &[u8], addr: impl Into<SockAddr>) -> io::Result<usize> {
        let addr = addr.into();
        let socket = self.sock()?;
        let r = retry_interrupted(|| socket.send_to(data, &addr));
        if let Err(e) = &r {
            if is_disconnect(e) {
                self.pending.set(Pending::DISCONNECTED);
            }
        }
        r
    }

    /// Sends `data` as TCP urgent (out-of-band) data: as [`send`](Channel::send),
    /// `Err` of kind [`WouldBlock`](io::ErrorKind::WouldBlock) if the OS took nothing.
    ///
    /// # Errors
    ///
    /// As [`send`](Channel::send).
    pub fn send_oob(&mut self, data: &[u8]) -> io::Result<usize> {
        let socket = self.sock()?;
        let r = retry_interrupted(|| socket.send_out_of_band(data));
        match r {
            Ok(n) => Ok(n),
            Err(e) => self.disconnect_as(e, 0),
        }
    }

    /// Receives out-of-band data (in `handle_expt`): `Ok(0)` if there is none (urgent
    /// data has no end of file, so 0 is unambiguous here).
    ///
    /// # Errors
    ///
    /// Errors other than would-block and disconnects; `EINVAL` from the OS when no
    /// urgent data is pending is reported as `Ok(0)`.
    pub fn recv_oob(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.sock()?.recv_out_of_band(crate::sys::as_uninit(buf));
        match r {
            Err(e) if Errno::from_io_error(&e) == Some(Errno::INVAL) => Ok(0),
            other => self.classify(other),
        }
    }

    /// Shuts down one or both directions (`shutdown(Write)` sends FIN and keeps reading).
    ///
    /// # Errors
    ///
    /// What shutdown(2) reports; `ENOTCONN` is not an error.
    pub fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        match self.sock()?.shutdown(how) {
            Err(e) if Errno::from_io_error(&e) == Some(Errno::NOTCONN) => Ok(()),
            other => other,
        }
    }

    /// The local address, as the OS reports it (after binding port 0, the real port).
    ///
    /// # Errors
    ///
    /// `InvalidInput` on a file channel, `NotConnected` when closed, or getsockname's error.
    pub fn local_addr(&self) -> io::Result<SockAddr> {
        self.sock()?.local_addr()
    }

    /// The local address of an IPv4/IPv6 socket as a `std::net::SocketAddr`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a Unix socket, and as [`local_addr`](Channel::local_addr).
    pub fn local_inet_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.local_addr()?.as_socket().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "not an IPv4 or IPv6 socket")
        })
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// `ENOTCONN` when not connected, and as [`local_addr`](Channel::local_addr).
    pub fn peer_addr(&self) -> io::Result<SockAddr> {
        self.sock()?.peer_addr()
    }

    /// Takes the pending socket error (`SO_ERROR`), clearing it.
    ///
    /// # Errors
    ///
    /// As [`local_addr`](Channel::local_addr).
    pub fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        self.sock()?.take_error()
    }

    /// Queues `data` and sends what the OS takes now; the rest goes out, in order, on
    /// write events (asyncore's `dispatcher_with_send`, asynchat's `push`). Before a
    /// connect completes the data waits and is sent after it (a **fix**: asyncore could
    /// drop it on `ENOTCONN`). Empty data queues nothing.
    ///
    /// # Coalescing
    ///
    /// For a channel in a loop, the first push of a hook (with nothing queued) is sent at
    /// once, straight from `data`: no copy, and the usual one reply per event costs one
    /// `send`. What is pushed after it in the same hook (or, for a channel reached
    /// through `channel_mut`, in the same iteration) is gathered in the queue, small
    /// pushes merged, and leaves in order, one `send` per [out buffer
    /// size](Channel::set_out_buffer_size), through
    /// [`handle_write`](crate::Dispatcher::handle_write) as any queued output, which the
    /// loop calls without waiting for a write event: right after the hook for the hook's
    /// own channel, before it waits for the others (what the OS does not take waits for
    /// the write event). A hook that answers 1,000 small records with 1,000 pushes makes
    /// two `send` calls, not 1,000, and a broadcast to many channels one or two per
    /// channel. Gathered bytes count in [`pending_output`](Channel::pending_output)
    /// until then. A channel outside any loop sends at every push.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use sockloop::Channel;
    ///
    /// let (a, mut peer) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ch = Channel::from_socket(a)?;
    /// ch.push(b"hello, ")?;
    /// ch.push_vec(b"world".to_vec())?;
    /// let mut got = [0u8; 12];
    /// peer.read_exact(&mut got)?;
    /// assert_eq!(&got, b"hello, world");
    /// assert_eq!(ch.pending_output(), 0);
    /// # std::io::Result::Ok(())
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidInput` after [`close_when_done`](Channel::close_when_done) (a **fix**:
    /// asynchat dropped it silently); `NotConnected` on a closed channel.
    #[inline]
    pub fn push(&mut self, data: &[u8]) -> io::Result<()> {
        // Fast path, inline: connected (so not closed), nothing queued, not sealed, not
        // gathering: send straight from the caller's buffer, one system call; the queue
        // is not touched when the OS takes it all. In a loop, later pushes of this hook
        // are gathered (see "Coalescing").
        if self.state == State::Connected
            && !self.gathering
            && self.output.is_empty()
            && !self.output.is_sealed()
            && !data.is_empty()
            && !self.pending.has(Pending::DISCONNECTED)
        {
            self.gathering = self.gathers();
            let sent = self.send_some(data)?;
            if sent == data.len() {
                return Ok(());
            }
            return self.output.push(&data[sent..]);
        }
        self.push_slow(data)
    }

    /// [`push`](Channel::push) when output is queued or gathered (or the channel is not
    /// connected, sealed, closed): into the queue, out of line.
    #[inline(never)]
    fn push_slow(&mut self, data: &[u8]) -> io::Result<()> {
        if self.is_closed() {
            return Err(closed_error());
        }
        self.output.push(data)?;
        if self.gathering && !data.is_empty() {
            self.pending.set(Pending::GATHERED);
        }
        Ok(())
    }

    /// Sends now unless output is being gathered ([`push`](Channel::push)'s
    /// "Coalescing"); in a loop, what is pushed after this in the same hook is gathered.
    fn flush_unless_gathering(&mut self) -> io::Result<()> {
        if self.gathering {
            self.pending.set(Pending::GATHERED);
            return Ok(());
        }
        self.gathering = self.gathers();
        self.flush()
    }

    /// In a loop, a stream's later pushes are gathered (a message socket's are not:
    /// each is its own send anyway).
    fn gathers(&self) -> bool {
        self.token.is_some() && !self.output.keeps_boundaries()
    }

    /// Like [`push`](Channel::push) but takes ownership of the buffer, avoiding a copy of
    /// large data.
    ///
    /// # Errors
    ///
    /// As [`push`](Channel::push).
    pub fn push_vec(&mut self, data: Vec<u8>) -> io::Result<()> {
        if self.is_closed() {
            return Err(closed_error());
        }
        self.output.push_vec(data)?;
        self.flush_unless_gathering()
    }

    /// Queues a producer: what it produces is sent in order after what is already queued,
    /// until it is finished (asynchat's `push_with_producer`). On a socket, a producer
    /// that can ([`FileProducer`](crate::FileProducer)) sends with `sendfile(2)`.
    ///
    /// A producer's error ends it and is routed like a hook error: returned from the
    /// flush that met it (this call, or the write event's, and so to
    /// [`handle_error`](crate::Dispatcher::handle_error)); see [`Producer`]'s "Errors"
    /// for what the peer sees.
    ///
    /// # Errors
    ///
    /// As [`push`](Channel::push), and the producer's error if it fails at once.
    pub fn push_with_producer(&mut self, producer: impl Producer + 'static) -> io::Result<()> {
        self.push_boxed_producer(Box::new(producer))
    }

    pub(crate) fn push_boxed_producer(&mut self, producer: Box<dyn Producer>) -> io::Result<()> {
        if self.is_closed() {
            return Err(closed_error());
        }
        self.output.push_producer(producer)?;
        // A producer is offered the socket (`Producer::send_direct`): a loan.
        self.shared.store(true, Ordering::Relaxed);
        self.flush_unless_gathering()
    }

    /// Closes the channel once everything queued so far is sent (asynchat's
    /// `close_when_done`); the loop then runs `handle_close`. Later pushes are errors.
    /// An error met while flushing here (a producer's, a send error) is kept and
    /// reaches `handle_error` on the next write event.
    pub fn close_when_done(&mut self) {
        self.output.close_when_done();
        self.flush_or_defer();
    }

    /// Flushes where the caller cannot return an error: one (a producer's failure, a send
    /// error) stays queued and reaches `handle_error` through the next write event.
    fn flush_or_defer(&mut self) {
        if let Err(e) = self.flush_unless_gathering() {
            self.output.defer_error(e);
        }
    }

    /// Shuts down the writing side (sends FIN) once everything queued so far is sent,
    /// and keeps the channel open for reading: the half-close a proxy passes on when one
    /// side ends its input. Later pushes are errors; a later
    /// [`close_when_done`](Channel::close_when_done) still closes after it.
    ///
    /// A send error at the shutdown (other than a disconnect) goes to `handle_error`,
    /// like any send error; on a file channel that error is `InvalidInput` (a pipe
    /// cannot be half-closed).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use sockloop::Channel;
    ///
    /// let (a, mut peer) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ch = Channel::from_socket(a)?;
    /// ch.push(b"last words")?;
    /// ch.shutdown_when_done();
    /// let mut got = Vec::new();
    /// peer.read_to_end(&mut got)?; // end of file: the channel shut down its writing side
    /// assert_eq!(got, b"last words");
    /// assert!(!ch.is_closed());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn shutdown_when_done(&mut self) {
        self.output.shutdown_when_done();
        self.flush_or_defer();
    }

    /// Stops reading from this channel: the loop no longer watches it for input, whatever
    /// [`readable`](crate::Dispatcher::readable) answers, until
    /// [`resume_reading`](Channel::resume_reading). The loop re-asks the channel by
    /// itself: call it from the channel's own hook, or on another channel reached through
    /// [`Context::channel_mut`](crate::Context::channel_mut) or
    /// [`LoopHandle::channel_mut`](crate::LoopHandle::channel_mut) (flow control between
    /// channels, as a proxy does when the far side's queue is full). Input already in the
    /// socket stays there; nothing is lost.
    pub fn pause_reading(&mut self) {
        self.reading_paused = true;
    }

    /// Undoes [`pause_reading`](Channel::pause_reading).
    pub fn resume_reading(&mut self) {
        self.reading_paused = false;
    }

    /// True between [`pause_reading`](Channel::pause_reading) and
    /// [`resume_reading`](Channel::resume_reading).
    pub fn is_reading_paused(&self) -> bool {
        self.reading_paused
    }

    /// The low-water mark: when the unsent output falls to it (from above), the loop
    /// runs [`handle_drained`](crate::Dispatcher::handle_drained) after the current hook.
    /// Default 0: the hook runs when everything queued, producers included, was sent.
    pub fn low_water(&self) -> usize {
        self.output.low_water()
    }

    /// Sets [`low_water`](Channel::low_water).
    pub fn set_low_water(&mut self, bytes: usize) {
        self.output.set_low_water(bytes);
    }

    /// True after [`close_when_done`](Channel::close_when_done): the channel closes once
    /// its queue drains.
    pub fn is_closing(&self) -> bool {
        self.output.is_closing()
    }

    /// Drops all queued output and returns how many bytes were dropped (the output half
    /// of asynchat's `discard_buffers`).
    pub fn discard_output(&mut self) -> usize {
        self.output.discard()
    }

    /// Bytes queued and not yet sent (producers' future output is not counted).
    pub fn pending_output(&self) -> usize {
        self.output.len()
    }

    /// True if anything is queued: bytes, a producer or a close mark.
    pub fn has_pending_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// The largest single send from the queue, and the size up to which small pushes are
    /// coalesced (asynchat's `ac_out_buffer_size`, default 65536).
    pub fn out_buffer_size(&self) -> usize {
        self.output.chunk()
    }

    /// Sets [`out_buffer_size`](Channel::out_buffer_size).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for 0.
    pub fn set_out_buffer_size(&mut self, size: usize) -> io::Result<()> {
        self.output.set_chunk(size)
    }

    /// Sends queued output until the OS would block. Does nothing while not connected
    /// (the queue waits for the connect to complete).
    ///
    /// # Errors
    ///
    /// Send errors other than would-block and disconnects (which are left to the loop,
    /// as in [`send`](Channel::send)).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.state != State::Connected
            || self.output.is_empty()
            || self.pending.has(Pending::DISCONNECTED)
        {
            return Ok(());
        }
        let before = self.output.written();
        let was_drained = self.output.is_drained();
        let result = loop {
            // A socket is offered to producers for sendfile(2).
            let direct = match &self.handle {
                Handle::Socket(s) => Some(s.as_fd()),
                _ => None,
            };
            let result = self
                .output
                .flush_to(Channel::write_via(&self.handle), direct);
            if !matches!(result, Ok(Flushed::ShutdownReached)) {
                break result;
            }
            if let Err(e) = self.shutdown(Shutdown::Write) {
                break Err(e);
            }
        };
        if self.output.written() != before {
            self.pending.set(Pending::OUTPUT);
        }
        if !was_drained && self.output.is_drained() {
            self.pending.set(Pending::DRAINED);
        }
        match self.classify(result)? {
            Flushed::CloseReached => self.pending.set(Pending::DONE),
            Flushed::Drained | Flushed::Blocked | Flushed::ShutdownReached => {}
        }
        Ok(())
    }

    fn write_via(handle: &Handle) -> impl FnMut(&[u8]) -> io::Result<usize> + '_ {
        move |data| match handle {
            // MSG_NOSIGNAL, as socket2's `write`: a peer that is gone is EPIPE, not SIGPIPE.
            Handle::Socket(s) => Ok(rustix::net::send(
                s,
                data,
                rustix::net::SendFlags::NOSIGNAL,
            )?),
            Handle::File(f) => Ok(rustix::io::write(f, data)?),
            Handle::Closed => Err(closed_error()),
        }
    }
}

impl std::os::fd::AsRawFd for Channel {
    /// The descriptor number; -1 once closed (use [`raw_fd`](Channel::raw_fd) for an
    /// `Option`).
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.raw_fd().unwrap_or(-1)
    }
}

impl fmt::Display for Channel {
    /// Like asyncore's repr: `<type listening|connected|... address token>`; the address
    /// is the peer's once connected, the target while connecting, else the local one.
    ///
    /// ```
    /// use sockloop::{Channel, Domain, Type};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let target = listener.local_addr()?;
    /// let mut ch = Channel::create_socket(Domain::IPV4, Type::STREAM)?;
    /// ch.connect(target)?;
    /// assert_eq!(ch.to_string(), format!("<channel connecting {target}>"));
    /// # std::io::Result::Ok(())
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Unconnected => "unconnected",
            State::Accepting => "listening",
            State::Connecting => "connecting",
            State::Connected => "connected",
            State::Closed => "closed",
        };
        write!(f, "<{} {}", short_type_name(self.label), state)?;
        match &self.handle {
            Handle::Socket(fd) => {
                let s = SockRef::from(fd);
                let addr = match (self.state, &self.connecting_to) {
                    (State::Connected, _) => s.peer_addr(),
                    (State::Connecting, Some(to)) => Ok((**to).clone()),
                    _ => s.local_addr(),
                };
                match addr {
                    Ok(a) => match (a.as_socket(), a.as_pathname()) {
                        (Some(sa), _) => write!(f, " {sa}")?,
                        (None, Some(p)) => write!(f, " {}", p.display())?,
                        (None, None) => f.write_str(" unnamed")?,
                    },
                    Err(_) => f.write_str(" ?")?,
                }
            }
            Handle::File(fd) => write!(f, " fd {}", std::os::fd::AsRawFd::as_raw_fd(fd))?,
            Handle::Closed => {}
        }
        match self.token {
            Some(t) => write!(f, " {t}>"),
            None => f.write_str(">"),
        }
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
