//! Multi-core: N loops on N threads, one listener each on a shared port.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use socket2::{Domain, Socket, Type};

use crate::channel::Channel;
use crate::dispatcher::Dispatcher;
use crate::event_loop::EventLoop;
use crate::remote::Remote;
use crate::sys::Backend;

/// N event loops on N threads, each with its own listening socket on the same address
/// (`SO_REUSEPORT`: the kernel spreads incoming connections across them), each listener's
/// dispatcher built by one factory on its loop's thread.
///
/// This is the libuv / nginx way to use several cores: no state is shared between loops,
/// so each stays single-threaded and callback-driven. Connections stay on the loop that
/// accepted them.
///
/// # Examples
///
/// ```
/// use std::io;
/// use sockloop::{Backend, Channel, Context, Dispatcher, LoopGroup, SockAddr};
///
/// struct Server;
/// impl Dispatcher for Server {
///     fn handle_accepted(&mut self, ctx: &mut Context<'_>, channel: Channel, _: SockAddr) -> io::Result<()> {
///         ctx.handle().add(channel, Conn)?;
///         Ok(())
///     }
/// }
/// struct Conn;
/// impl Dispatcher for Conn {}
///
/// let group = LoopGroup::listen("127.0.0.1:0".parse().unwrap(), 2, Backend::Epoll, |_, _| Ok(Server))?;
/// let addr = group.local_addr();
/// std::net::TcpStream::connect(addr)?;
/// group.stop();
/// group.join()?;
/// # io::Result::Ok(())
/// ```
pub struct LoopGroup<S: 'static = ()> {
    addr: SocketAddr,
    workers: Vec<(Remote<S>, JoinHandle<io::Result<()>>)>,
}

/// The listen backlog of each listener.
const BACKLOG: i32 = 1024;

fn reuseport_listener(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket)
}

/// A one-shot slot a loop thread fills once its setup is done (a `Mutex` and a `Condvar`:
/// an mpsc channel would cost the example binary tens of KiB for one message).
struct Handoff<S> {
    slot: Mutex<Option<io::Result<Remote<S>>>>,
    filled: Condvar,
}

impl<S> Handoff<S> {
    fn new() -> Handoff<S> {
        Handoff {
            slot: Mutex::new(None),
            filled: Condvar::new(),
        }
    }

    fn put(&self, result: io::Result<Remote<S>>) {
        *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        self.filled.notify_one();
    }

    /// Waits for the thread's result; an error if the thread ended without one (it
    /// panicked in the factory).
    fn take(&self, thread: &JoinHandle<io::Result<()>>) -> io::Result<Remote<S>> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(result) = slot.take() {
                return result;
            }
            if thread.is_finished() {
                return Err(io::Error::other("a loop thread died during setup"));
            }
            // Timed, so a thread that panics before filling the slot is noticed.
            slot = self
                .filled
                .wait_timeout(slot, std::time::Duration::from_millis(10))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl LoopGroup {
    /// Binds `threads` listeners to `addr` (port 0: one free port, shared by all), then
    /// starts one loop per listener on `backend`, each on its own thread. On each thread
    /// `factory(index, &mut loop)` builds the listener's dispatcher (and may set timers or
    /// add channels to that loop). The loops run until [`stop`](LoopGroup::stop).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for zero threads; a bind, loop or factory error from any thread (the
    /// loops already started are stopped and joined first).
    pub fn listen<D, F>(
        addr: SocketAddr,
        threads: usize,
        backend: Backend,
        factory: F,
    ) -> io::Result<LoopGroup>
    where
        D: Dispatcher,
        F: Fn(usize, &mut EventLoop) -> io::Result<D> + Send + Sync + 'static,
    {
        LoopGroup::listen_with_state(addr, threads, backend, |_| (), factory)
    }
}

impl<S: 'static> LoopGroup<S> {
    /// As [`listen`](LoopGroup::listen), with a state per loop: `state(index)` runs on
    /// each loop's thread and makes that loop's state (it need not be `Send`; loops share
    /// nothing unless the state holds something shared, e.g. an `Arc` of counters).
    ///
    /// # Errors
    ///
    /// As [`listen`](LoopGroup::listen).
    pub fn listen_with_state<D, M, F>(
        addr: SocketAddr,
        threads: usize,
        backend: Backend,
        state: M,
        factory: F,
    ) -> io::Result<LoopGroup<S>>
    where
        D: Dispatcher<S>,
        M: Fn(usize) -> S + Send + Sync + 'static,
        F: Fn(usize, &mut EventLoop<S>) -> io::Result<D> + Send + Sync + 'static,
    {
        if threads == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a loop group needs at least one thread",
            ));
        }
        let first = reuseport_listener(addr)?;
        let addr = first
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("listener without an inet address"))?;
        let mut listeners = vec![first];
        for _ in 1..threads {
            listeners.push(reuseport_listener(addr)?);
        }
        let factory = Arc::new((state, factory));
        let mut group = LoopGroup {
            addr,
            workers: Vec::with_capacity(threads),
        };
        for (index, listener) in listeners.into_iter().enumerate() {
            let factory = Arc::clone(&factory);
            // The loop thread hands back its Remote (or its setup error) through this slot.
            let ready = Arc::new(Handoff::new());
            let ready_tx = Arc::clone(&ready);
            let thread = std::thread::Builder::new()
                .name(format!("sockloop-{index}"))
                .spawn(move || {
                    let setup = || -> io::Result<EventLoop<S>> {
                        let (state, factory) = &*factory;
                        let mut event_loop =
                            EventLoop::with_backend_and_state(backend, state(index))?;
                        let dispatcher = factory(index, &mut event_loop)?;
                        event_loop.add(Channel::from_socket(listener)?, dispatcher)?;
                        Ok(event_loop)
                    };
                    match setup().and_then(|mut lp| Ok((lp.remote()?, lp))) {
                        Ok((remote, mut event_loop)) => {
                            ready_tx.put(Ok(remote));
                            event_loop.run_forever()
                        }
                        Err(e) => {
                            ready_tx.put(Err(e));
                            Ok(())
                        }
                    }
                })?;
            match ready.take(&thread) {
                Ok(remote) => group.workers.push((remote, thread)),
                Err(e) => {
                    let _ = thread.join();
                    // Dropping the group stops and joins the loops already running.
                    return Err(e);
                }
            }
        }
        Ok(group)
    }

    /// The address every listener is bound to (the real port, if 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The number of loops.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Always false: a group has at least one loop.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Remote handles to each loop, in thread order (to run closures on one of them).
    pub fn remotes(&self) -> impl Iterator<Item = &Remote<S>> {
        self.workers.iter().map(|(remote, _)| remote)
    }

    /// Asks every loop to stop after its current iteration. Returns at once; see
    /// [`join`](LoopGroup::join).
    pub fn stop(&self) {
        for (remote, _) in &self.workers {
            // A loop that already ended has nothing to stop.
            let _ = remote.stop();
        }
    }

    /// Waits for every loop to end (they run until [`stop`](LoopGroup::stop)).
    ///
    /// # Errors
    ///
    /// The first loop's error, in thread order; a panicked loop thread is an error of kind
    /// `Other`.
    pub fn join(mut self) -> io::Result<()> {
        let mut result = Ok(());
        for (_, thread) in std::mem::take(&mut self.workers) {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a loop thread panicked")));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    }
}

impl<S: 'static> Drop for LoopGroup<S> {
    /// Stops and joins the loops still running.
    fn drop(&mut self) {
        self.stop();
        for (_, thread) in self.workers.drain(..) {
            let _ = thread.join();
        }
    }
}

impl<S: 'static> std::fmt::Debug for LoopGroup<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopGroup")
            .field("addr", &self.addr)
            .field("loops", &self.workers.len())
            .finish()
    }
}
