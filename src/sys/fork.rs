//! A count of the `fork`s this process has made (and, in a child, of those that made
//! it), kept by `pthread_atfork` handlers: a channel opened before a fork shares its
//! socket with the other process, so the loop must deregister it from epoll explicitly
//! before closing it (closing our descriptor would not remove the registration while the
//! other process holds the socket open).
//!
//! `posix_spawn` and `vfork` run no fork handlers, and need none: the parent is suspended
//! until the child `exec`s, which closes every descriptor sockloop opened (all are
//! close-on-exec).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Once;

static FORKS: AtomicU32 = AtomicU32::new(0);
/// `pthread_atfork` failed: forks are not counted, so no epoch is ever "unchanged".
static UNCOUNTED: AtomicBool = AtomicBool::new(false);
static WATCH: Once = Once::new();

unsafe extern "C" fn forked() {
    // Async-signal-safe: one atomic add, no allocation, no lock.
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// The fork epoch now, for a descriptor being opened; the first call starts counting
/// (nothing sockloop opened can predate it: every channel asks when it is made).
pub(crate) fn epoch() -> u32 {
    WATCH.call_once(|| {
        // SAFETY: `forked` takes no arguments, lives for the whole program and only
        // touches an atomic, as fork handlers must (they run in the parent and in the
        // child right after fork(2)). Registered once.
        let rc = unsafe { libc::pthread_atfork(None, Some(forked), Some(forked)) };
        if rc != 0 {
            UNCOUNTED.store(true, Ordering::Relaxed);
        }
    });
    FORKS.load(Ordering::Relaxed)
}

/// True if no fork happened since `epoch` (from [`epoch`]) and forks are being counted.
pub(crate) fn unchanged_since(epoch: u32) -> bool {
    !UNCOUNTED.load(Ordering::Relaxed) && FORKS.load(Ordering::Relaxed) == epoch
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::io;
    use std::os::fd::AsRawFd;
    use std::rc::Rc;
    use std::sync::{Mutex, MutexGuard};
    use std::time::Duration;

    use super::{epoch, unchanged_since};
    use crate::{Backend, Channel, Context, Dispatcher, Domain, EventLoop, Type};

    /// Forks a child that keeps `keep` open (and closes its copies of every other
    /// descriptor, so no other test's sockets stay open in it) until it is killed;
    /// returns its pid.
    fn fork_holder(keep: Option<std::os::fd::RawFd>) -> libc::pid_t {
        // SAFETY: the child runs only async-signal-safe calls (close, pause) until it is
        // killed, as a child of a multi-threaded process must.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            for fd in 3..4096 {
                if Some(fd) != keep {
                    // SAFETY: async-signal-safe; closing a descriptor number that is not
                    // open fails harmlessly with EBADF.
                    unsafe { libc::close(fd) };
                }
            }
            loop {
                // SAFETY: async-signal-safe; the parent ends the child with SIGKILL.
                unsafe { libc::pause() };
            }
        }
        assert!(pid > 0, "fork failed: {}", io::Error::last_os_error());
        pid
    }

    fn reap(pid: libc::pid_t) {
        let mut status = 0;
        // SAFETY: `pid` is our own child; `status` is a valid place for waitpid to write.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, &mut status, 0);
        }
    }

    /// Serialises this module's tests: a fork in one changes the epoch under the others.
    static FORKING: Mutex<()> = Mutex::new(());

    fn serial() -> MutexGuard<'static, ()> {
        FORKING.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[test]
    fn a_fork_moves_the_epoch() {
        let _serial = serial();
        let before = epoch();
        assert!(unchanged_since(before));
        reap(fork_holder(None));
        assert!(!unchanged_since(before));
    }

    struct CountReads(Rc<Cell<u32>>);

    impl Dispatcher for CountReads {
        fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
            self.0.set(self.0.get() + 1);
            ctx.recv(&mut [0u8; 64]).map(drop)
        }
    }

    /// A channel opened before a fork: the child holds its socket, so closing ours does
    /// not remove the epoll registration; the loop must deregister it itself, or the
    /// socket's readiness reaches whichever channel takes the slot next.
    #[test]
    fn socket_shared_with_a_child_is_deregistered() {
        let _serial = serial();
        for backend in Backend::ALL {
            let mut lp = EventLoop::with_backend(backend).unwrap();
            let (ch, mut peer) = Channel::pair().unwrap();
            assert!(ch.is_sole_reference());
            let child = fork_holder(ch.own_fd().map(|fd| fd.as_raw_fd()));
            assert!(!ch.is_sole_reference());
            let old = lp.add(ch, CountReads(Rc::default())).unwrap();
            lp.poll_once(Some(Duration::from_millis(10))).unwrap();
            assert!(lp.close(old));
            lp.poll_once(Some(Duration::from_millis(10))).unwrap();
            let reads = Rc::new(Cell::new(0));
            let (fresh, _fresh_peer) = Channel::pair().unwrap();
            lp.add(fresh, CountReads(reads.clone())).unwrap();
            peer.send(b"for the child's copy").unwrap();
            for _ in 0..5 {
                lp.poll_once(Some(Duration::from_millis(10))).unwrap();
            }
            reap(child);
            assert_eq!(reads.get(), 0, "{backend:?}: stale event after a fork");
        }
    }

    #[test]
    fn sockets_sockloop_opened_are_sole_references_until_lent() {
        let _serial = serial();
        let (a, b) = Channel::pair().unwrap();
        assert!(a.is_sole_reference() && b.is_sole_reference());
        let _ = a.socket().unwrap();
        assert!(!a.is_sole_reference(), "socket() lends");
        let _ = b.fd();
        assert!(!b.is_sole_reference(), "fd() lends");
        let c = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
        assert!(c.is_sole_reference());
        let _ = c.as_raw_fd();
        assert!(!c.is_sole_reference(), "as_raw_fd() lends");

        let (x, _y) = std::os::unix::net::UnixStream::pair().unwrap();
        let given = Channel::from_socket(x).unwrap();
        assert!(!given.is_sole_reference(), "the caller may keep a copy");

        let mut listener = Channel::tcp_listener("127.0.0.1:0".parse().unwrap(), 4).unwrap();
        let addr = listener.local_inet_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let accepted = loop {
            if let Some((ch, _)) = listener.accept().unwrap() {
                break ch;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(accepted.is_sole_reference());
        let mut pushed = accepted;
        pushed
            .push_with_producer(crate::SimpleProducer::new(b"x".to_vec(), 1).unwrap())
            .unwrap();
        assert!(
            !pushed.is_sole_reference(),
            "a producer is offered the socket"
        );
    }
}
