//! Bad input is an `InvalidInput` error with a useful message (or `None`/`false` for a
//! stale token), never a panic or a hang; and an empty UDP datagram is data, not end of
//! file.

use std::cell::RefCell;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::rc::Rc;

use crate::util::{run_until, step, unix_channel};
use sockloop::{
    Backend, Channel, Context, Dispatcher, Domain, EventLoop, SimpleProducer, SockAddr, Type,
};

struct Idle;
impl Dispatcher for Idle {}

fn assert_invalid<T: std::fmt::Debug>(r: io::Result<T>, what: &str) -> String {
    let err = r.expect_err(what);
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}: {err}");
    let msg = err.to_string();
    assert!(!msg.is_empty(), "{what}: no message");
    msg
}

/// Takes a channel out of a hook after closing it (the only way to hold a closed channel:
/// swapping it with a fresh one through the `&mut Channel` a hook gets).
struct Thief {
    stolen: Rc<RefCell<Option<Channel>>>,
}

impl Dispatcher for Thief {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        ctx.close();
        let (mut fresh, _) = Channel::pair()?;
        std::mem::swap(&mut **ctx, &mut fresh);
        *self.stolen.borrow_mut() = Some(fresh);
        Ok(())
    }
}

fn adding_a_closed_or_owned_channel(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut other = EventLoop::with_backend(backend).unwrap();

    // A channel that already belongs to a loop.
    let (ch, _peer) = unix_channel();
    let token = ev.add(ch, Idle).unwrap();
    let (mut taken, _) = Channel::pair().unwrap();
    std::mem::swap(ev.channel_mut(token).unwrap(), &mut taken);
    assert_eq!(taken.token(), Some(token));
    let msg = assert_invalid(other.add(taken, Idle), "adding a channel that is in a loop");
    assert!(msg.contains("loop"), "{msg}");
    assert_eq!(other.len(), 0);

    // A closed channel.
    let stolen = Rc::new(RefCell::new(None));
    let (ch, mut peer) = unix_channel();
    ev.add(
        ch,
        Thief {
            stolen: stolen.clone(),
        },
    )
    .unwrap();
    io::Write::write_all(&mut peer, b"x").unwrap();
    run_until(&mut ev, "the thief ran", |_| stolen.borrow().is_some());
    let closed = stolen.borrow_mut().take().unwrap();
    assert!(closed.is_closed());
    let msg = assert_invalid(other.add(closed, Idle), "adding a closed channel");
    assert!(msg.contains("closed"), "{msg}");
    assert_eq!(other.len(), 0);
    ev.close_all();
}

#[test]
fn from_socket_on_a_pipe() {
    let (r, _w) = std::io::pipe().unwrap();
    let fd: std::os::fd::OwnedFd = r.into();
    let msg = assert_invalid(
        Channel::from_socket(socket2::Socket::from(fd)),
        "a pipe is not a socket",
    );
    assert!(
        msg.contains("not a socket") && msg.contains("from_fd"),
        "{msg}"
    );
}

fn socket_operations_on_a_file_channel(backend: Backend) {
    let (r, _w) = std::io::pipe().unwrap();
    let mut ch = Channel::from_fd(&r).unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut buf = [0u8; 8];
    let mut msgs = vec![
        assert_invalid(ch.set_reuse_addr(), "set_reuse_addr"),
        assert_invalid(ch.set_nodelay(true), "set_nodelay"),
        assert_invalid(ch.bind(addr), "bind"),
        assert_invalid(ch.listen(1), "listen"),
        assert_invalid(ch.connect(addr), "connect"),
        assert_invalid(ch.accept(), "accept"),
        assert_invalid(ch.local_addr(), "local_addr"),
        assert_invalid(ch.peer_addr(), "peer_addr"),
        assert_invalid(ch.take_error(), "take_error"),
        assert_invalid(ch.send_to(b"x", addr), "send_to"),
        assert_invalid(ch.recv_from(&mut buf), "recv_from"),
        assert_invalid(ch.send_oob(b"x"), "send_oob"),
        assert_invalid(ch.recv_oob(&mut buf), "recv_oob"),
        assert_invalid(ch.shutdown(std::net::Shutdown::Both), "shutdown"),
    ];
    msgs.dedup();
    assert!(msgs.iter().all(|m| m.contains("not a socket")), "{msgs:?}");
    // The channel is unharmed and still works in a loop.
    assert!(ch.is_connected());
    let mut ev = EventLoop::with_backend(backend).unwrap();
    ev.add(ch, Idle).unwrap();
    step(&mut ev, 1);
    assert_eq!(ev.len(), 1);
}

#[test]
fn unknown_backend_name() {
    for backend in Backend::ALL {
        assert_eq!(backend.name().parse::<Backend>().unwrap(), backend);
    }
    let msg = assert_invalid("nope".parse::<Backend>(), "an unknown backend name");
    for name in ["nope", "select", "poll", "epoll"] {
        assert!(msg.contains(name), "{msg}");
    }
}

fn stale_tokens(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (ch, _peer) = unix_channel();
    let stale = ev.add(ch, Idle).unwrap();
    assert!(ev.close(stale));
    assert!(ev.channel(stale).is_none());
    assert!(ev.channel_mut(stale).is_none());
    assert!(ev.dispatcher::<Idle>(stale).is_none());
    assert!(ev.dispatcher_mut::<Idle>(stale).is_none());
    assert!(!ev.contains(stale));
    assert!(!ev.close(stale));

    // And from inside a hook.
    struct Prober {
        stale: sockloop::Token,
        seen: Rc<RefCell<Option<(bool, bool, bool)>>>,
    }
    impl Dispatcher for Prober {
        fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
            let mut buf = [0u8; 8];
            ctx.recv(&mut buf)?;
            let seen = (
                ctx.channel_mut(self.stale).is_none(),
                ctx.handle().dispatcher_mut::<Idle>(self.stale).is_none(),
                !ctx.close_channel(self.stale),
            );
            *self.seen.borrow_mut() = Some(seen);
            Ok(())
        }
    }
    step(&mut ev, 1);
    let seen = Rc::new(RefCell::new(None));
    let (ch, mut peer) = unix_channel();
    let token = ev
        .add(
            ch,
            Prober {
                stale,
                seen: seen.clone(),
            },
        )
        .unwrap();
    assert_eq!(
        token.index(),
        stale.index(),
        "the new channel reuses the stale token's slot"
    );
    io::Write::write_all(&mut peer, b"x").unwrap();
    run_until(&mut ev, "the prober ran", |_| seen.borrow().is_some());
    assert_eq!(*seen.borrow(), Some((true, true, true)));
    assert!(
        ev.contains(token),
        "a stale close must not close the slot's new channel"
    );
}

fn push_after_close_when_done(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (mut ch, _peer) = unix_channel();
    ch.push(b"last words").unwrap();
    ch.close_when_done();
    assert!(ch.is_closing());
    let msg = assert_invalid(ch.push(b"more"), "push after close_when_done");
    assert!(msg.contains("close_when_done"), "{msg}");
    assert_invalid(
        ch.push_vec(vec![1; 100_000]),
        "push_vec after close_when_done",
    );
    assert_invalid(
        ch.push_with_producer(SimpleProducer::new(b"x".to_vec(), 1).unwrap()),
        "push_with_producer after close_when_done",
    );
    assert_invalid(ch.set_out_buffer_size(0), "an output buffer of 0 bytes");
    let token = ev.add(ch, Idle).unwrap();
    run_until(&mut ev, "the channel closed when done", |ev| {
        !ev.contains(token)
    });
}

/// Datagrams received, with their senders.
type Received = Rc<RefCell<Vec<(Vec<u8>, SocketAddr)>>>;

/// Receives datagrams and records them.
struct Datagrams {
    got: Received,
    closed: Rc<RefCell<bool>>,
}

impl Dispatcher for Datagrams {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 1500];
        loop {
            let (n, from) = match ctx.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            };
            self.got
                .borrow_mut()
                .push((buf[..n].to_vec(), from.as_socket().unwrap()));
        }
        assert!(!ctx.is_eof());
        Ok(())
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        *self.closed.borrow_mut() = true;
        ctx.close();
        Ok(())
    }
}

fn udp_socket(addr: &str) -> (Channel, SockAddr) {
    let mut ch = Channel::create_socket(Domain::IPV4, Type::DGRAM).unwrap();
    ch.bind(addr.parse::<SocketAddr>().unwrap()).unwrap();
    let local = ch.local_addr().unwrap();
    (ch, local)
}

fn empty_datagram_is_not_eof(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    ev.set_catch_panics(false);
    let (mut a, a_addr) = udp_socket("127.0.0.1:0");
    let (b, b_addr) = udp_socket("127.0.0.1:0");
    let mut buf = [0u8; 16];
    assert_eq!(
        a.recv_from(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock,
        "nothing waiting would block"
    );
    let got = Rc::new(RefCell::new(Vec::new()));
    let closed = Rc::new(RefCell::new(false));
    let bt = ev
        .add(
            b,
            Datagrams {
                got: got.clone(),
                closed: closed.clone(),
            },
        )
        .unwrap();
    assert_eq!(a.send_to(b"", b_addr.clone()).unwrap(), 0);
    assert_eq!(a.send_to(b"after", b_addr).unwrap(), 5);
    let at = ev.add(a, Idle).unwrap();
    run_until(&mut ev, "both datagrams", |_| got.borrow().len() == 2);
    step(&mut ev, 2);
    let from = a_addr.as_socket().unwrap();
    assert_eq!(
        *got.borrow(),
        [(Vec::new(), from), (b"after".to_vec(), from)]
    );
    assert!(!*closed.borrow(), "an empty datagram is not end of file");
    assert!(ev.contains(bt) && ev.contains(at));

    // `recv` on a datagram channel: an empty datagram reads as 0 bytes, not end of file.
    let sizes = Rc::new(RefCell::new(Vec::new()));
    let (c, c_addr) = udp_socket("127.0.0.1:0");
    let ct = ev
        .add(
            c,
            Recv {
                sizes: sizes.clone(),
                closed: closed.clone(),
            },
        )
        .unwrap();
    let a = ev.channel_mut(at).unwrap();
    a.send_to(b"", c_addr.clone()).unwrap();
    a.send_to(b"x", c_addr).unwrap();
    run_until(&mut ev, "both datagrams via recv", |_| {
        sizes.borrow().len() == 2
    });
    step(&mut ev, 2);
    assert_eq!(*sizes.borrow(), [0, 1]);
    assert!(!*closed.borrow(), "an empty datagram is not end of file");
    assert!(ev.contains(ct));
    ev.close_all();
}

/// Receives datagrams with plain `recv`, recording their sizes.
struct Recv {
    sizes: Rc<RefCell<Vec<usize>>>,
    closed: Rc<RefCell<bool>>,
}

impl Dispatcher for Recv {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 1500];
        let n = ctx.recv(&mut buf)?;
        assert!(!ctx.is_eof());
        self.sizes.borrow_mut().push(n);
        Ok(())
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        *self.closed.borrow_mut() = true;
        ctx.close();
        Ok(())
    }
}

backend_tests!(
    adding_a_closed_or_owned_channel,
    socket_operations_on_a_file_channel,
    stale_tokens,
    push_after_close_when_done,
    empty_datagram_is_not_eof,
);
