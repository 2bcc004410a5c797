//! A peer that resets the connection (`SO_LINGER` 0, then close) mid-stream: the channel
//! gets exactly one `handle_close` and no `handle_error`, whether it was reading or
//! writing when the reset came.

use crate::util;

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::Duration;

use crate::util::{pattern, run_until, step, tcp_pair, Log};
use rustix::io::Errno;
use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop};

/// Reads small chunks and echoes them; records every hook, and anything after close.
struct Server {
    log: Log,
    readable: bool,
    closed: bool,
    read: usize,
    pending_at_close: Rc<RefCell<Option<usize>>>,
}

impl Server {
    fn hook(&mut self, name: &str) {
        if self.closed {
            self.log.push(format!("{name} after close"));
        }
    }
}

impl Dispatcher for Server {
    fn readable(&self, _: &Channel) -> bool {
        self.readable
    }
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.hook("read");
        let mut buf = [0u8; 1000];
        let n = ctx.recv(&mut buf)?;
        self.read += n;
        ctx.push(&buf[..n])
    }
    fn handle_write(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.hook("write");
        ctx.flush()
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log.push(format!("error:{err}"));
        Err(err)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.hook("close");
        self.closed = true;
        self.log.push("close");
        *self.pending_at_close.borrow_mut() = Some(ctx.pending_output());
        ctx.close();
        Ok(())
    }
}

fn reset(peer: TcpStream) {
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
}

struct Setup {
    ev: EventLoop,
    token: sockloop::Token,
    log: Log,
    pending_at_close: Rc<RefCell<Option<usize>>>,
    peer: TcpStream,
}

fn setup(backend: Backend, readable: bool) -> Setup {
    let (server, peer) = tcp_pair();
    let log = Log::default();
    let pending_at_close = Rc::new(RefCell::new(None));
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let dispatcher = Server {
        log: log.clone(),
        readable,
        closed: false,
        read: 0,
        pending_at_close: pending_at_close.clone(),
    };
    let token = ev
        .add(Channel::from_socket(server).unwrap(), dispatcher)
        .unwrap();
    Setup {
        ev,
        token,
        log,
        pending_at_close,
        peer,
    }
}

fn finish(mut s: Setup) {
    run_until(&mut s.ev, "the reset channel closed", |ev| {
        !ev.contains(s.token)
    });
    step(&mut s.ev, 3);
    assert_eq!(
        s.log.entries(),
        ["close"],
        "one close, no error, nothing after it"
    );
    assert!(s.ev.is_empty());
}

/// The peer streams data that the server reads 1000 bytes at a time and echoes, without
/// reading the echo; it resets while the server is still busy with it.
fn reset_while_reading(backend: Backend) {
    let mut s = setup(backend, true);
    s.peer.write_all(&pattern(200_000)).unwrap();
    run_until(&mut s.ev, "the server read some", |ev| {
        ev.dispatcher::<Server>(s.token).unwrap().read >= 50_000
    });
    let read = s.ev.dispatcher::<Server>(s.token).unwrap().read;
    assert!(read < 200_000, "the reset must come mid-stream");
    let peer = std::mem::replace(&mut s.peer, tcp_pair().1);
    reset(peer);
    finish(s);
}

/// The server pushes far more than the socket buffers hold; the peer reads a little and
/// resets. With `readable` false the channel is only watched for writing.
fn reset_during_write(backend: Backend, readable: bool) {
    let mut s = setup(backend, readable);
    let total = 16 << 20;
    let head = pattern(64 * 1024);
    let ch = s.ev.channel_mut(s.token).unwrap();
    ch.push(&head).unwrap();
    ch.push_vec(vec![0x5a; total]).unwrap();
    step(&mut s.ev, 2);
    let mut buf = vec![0u8; 64 * 1024];
    s.peer
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    s.peer.read_exact(&mut buf).unwrap();
    assert!(buf == head);
    step(&mut s.ev, 2);
    let pending = s.ev.channel(s.token).unwrap().pending_output();
    assert!(
        pending > 0,
        "the server must still be sending when the reset comes"
    );
    let peer = std::mem::replace(&mut s.peer, tcp_pair().1);
    reset(peer);
    let pending_at_close = s.pending_at_close.clone();
    finish(s);
    assert!(pending_at_close.borrow().unwrap() > 0);
}

fn reset_while_writing(backend: Backend) {
    reset_during_write(backend, true);
}

fn reset_while_only_writing(backend: Backend) {
    reset_during_write(backend, false);
}

/// Returns a given error from `handle_read`, as code doing its own I/O would.
struct Failing {
    errno: Errno,
    log: Log,
}

impl Dispatcher for Failing {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 16];
        ctx.recv(&mut buf)?;
        Err(self.errno.into())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log
            .push(format!("{}:error", self.errno.raw_os_error()));
        Err(err)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log
            .push(format!("{}:close", self.errno.raw_os_error()));
        ctx.close();
        Ok(())
    }
}

/// asyncore's `_DISCONNECTED` errors returned by a hook lead to `handle_close`, not
/// `handle_error`; any other error goes to `handle_error` (whose default then closes).
fn disconnect_errors_from_hooks_close(backend: Backend) {
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut peers = Vec::new();
    let disconnects = [
        Errno::CONNRESET,
        Errno::NOTCONN,
        Errno::SHUTDOWN,
        Errno::CONNABORTED,
        Errno::PIPE,
        Errno::BADF,
    ];
    for errno in disconnects.into_iter().chain([Errno::ACCESS]) {
        let (ch, mut peer) = util::unix_channel();
        peer.write_all(b"x").unwrap();
        ev.add(
            ch,
            Failing {
                errno,
                log: log.clone(),
            },
        )
        .unwrap();
        peers.push(peer);
    }
    run_until(&mut ev, "every channel closed", |ev| ev.is_empty());
    for errno in disconnects {
        let n = errno.raw_os_error();
        assert_eq!(
            log.count(&format!("{n}:close")),
            1,
            "errno {n}: {:?}",
            log.entries()
        );
        assert!(
            !log.has(&format!("{n}:error")),
            "errno {n} went to handle_error"
        );
    }
    let n = Errno::ACCESS.raw_os_error();
    assert_eq!(log.count(&format!("{n}:error")), 1, "{:?}", log.entries());
    assert_eq!(log.count(&format!("{n}:close")), 1, "{:?}", log.entries());
}

/// Reads a request, then answers with `send`; records what `send` returned and every
/// later hook.
struct Answerer {
    log: Log,
}

impl Dispatcher for Answerer {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 64];
        if ctx.recv(&mut buf)? > 0 {
            let sent = ctx.send(b"pong")?;
            self.log.push(format!("sent:{sent}"));
            // Code after the call goes on: the close comes after the hook returns.
            assert!(!ctx.is_closed());
        }
        Ok(())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log.push(format!("error:{err}"));
        Err(err)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("close");
        ctx.close();
        Ok(())
    }
}

/// A disconnect met by the channel's own I/O inside a hook, with no hang-up reported by
/// the OS: the peer (a Unix stream) sent a request and shut down its reading side, so
/// the reply's `send` fails with `EPIPE` while the socket reports only "readable" on
/// every backend (under poll and epoll a reset also reports a hang-up, which takes
/// another path; this is the path select takes for a reset, on all three). `send`
/// returns 0, and after the hook the loop runs `handle_close` once, never
/// `handle_error`.
fn disconnect_met_by_send_in_a_hook_closes(backend: Backend) {
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (ch, mut peer) = util::unix_channel();
    peer.write_all(b"ping").unwrap();
    peer.shutdown(std::net::Shutdown::Read).unwrap();
    let token = ev.add(ch, Answerer { log: log.clone() }).unwrap();
    run_until(&mut ev, "the close", |ev| !ev.contains(token));
    assert_eq!(log.entries(), ["sent:0", "close"]);
}

backend_tests!(
    reset_while_reading,
    reset_while_writing,
    reset_while_only_writing,
    disconnect_errors_from_hooks_close,
    disconnect_met_by_send_in_a_hook_closes,
);
