//! Out-of-band (TCP urgent) data: it reaches `handle_expt`, where `recv_oob` returns the
//! byte, while the normal data around it still arrives through `handle_read`, in order.

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use crate::util::{listener, run_until, step, tcp_pair, Log};
use sockloop::{Backend, Channel, Context, Dispatcher, Domain, EventLoop, SockAddr, Type};

#[derive(Default)]
struct Got {
    normal: Vec<u8>,
    urgent: Vec<u8>,
    expt_calls: usize,
}

/// Collects normal data in `handle_read` and urgent data in `handle_expt`.
struct Receiver {
    got: Rc<RefCell<Got>>,
    log: Log,
}

impl Dispatcher for Receiver {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 1024];
        let n = ctx.recv(&mut buf)?;
        self.got.borrow_mut().normal.extend_from_slice(&buf[..n]);
        Ok(())
    }
    fn handle_expt(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 16];
        let n = ctx.recv_oob(&mut buf)?;
        let mut got = self.got.borrow_mut();
        got.expt_calls += 1;
        got.urgent.extend_from_slice(&buf[..n]);
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

fn check(ev: &mut EventLoop, got: &RefCell<Got>, log: &Log) {
    run_until(ev, "all normal and urgent data", |_| {
        let g = got.borrow();
        g.normal == b"hello world" && g.urgent == b"!"
    });
    step(ev, 3);
    let g = got.borrow();
    assert_eq!(
        g.normal, b"hello world",
        "the urgent byte is not in the normal stream"
    );
    assert_eq!(g.urgent, b"!");
    assert!(g.expt_calls >= 1);
    assert!(log.entries().is_empty(), "{:?}", log.entries());
}

/// A std peer sends urgent data with socket2's `send_out_of_band`.
fn from_std_peer(backend: Backend) {
    let (server, mut client) = tcp_pair();
    let got = Rc::new(RefCell::new(Got::default()));
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    ev.add(
        Channel::from_socket(server).unwrap(),
        Receiver {
            got: got.clone(),
            log: log.clone(),
        },
    )
    .unwrap();
    client.write_all(b"hello ").unwrap();
    let sent = socket2::SockRef::from(&client)
        .send_out_of_band(b"!")
        .unwrap();
    assert_eq!(sent, 1);
    client.write_all(b"world").unwrap();
    check(&mut ev, &got, &log);
}

/// A client channel sends urgent data with `Channel::send_oob` from `handle_connect`.
struct UrgentClient;

impl Dispatcher for UrgentClient {
    fn handle_connect(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        ctx.push(b"hello ")?;
        assert_eq!(ctx.send_oob(b"!")?, 1);
        ctx.push(b"world")
    }
}

/// Adds a [`Receiver`] for each accepted connection.
struct Server {
    got: Rc<RefCell<Got>>,
    log: Log,
}

impl Dispatcher for Server {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        channel: Channel,
        _: SockAddr,
    ) -> io::Result<()> {
        let ch = channel;
        ctx.handle().add(
            ch,
            Receiver {
                got: self.got.clone(),
                log: self.log.clone(),
            },
        )?;
        Ok(())
    }
}

fn between_channels(backend: Backend) {
    let got = Rc::new(RefCell::new(Got::default()));
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    ev.set_catch_panics(false);
    let (l, addr) = listener("127.0.0.1:0");
    ev.add(
        l,
        Server {
            got: got.clone(),
            log: log.clone(),
        },
    )
    .unwrap();
    let mut client = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    client.connect(addr).unwrap();
    ev.add(client, UrgentClient).unwrap();
    check(&mut ev, &got, &log);
}

/// Neither reads nor writes (`readable()` false, `writable()` true with a `handle_write`
/// that sends nothing): what the loop reports is all that happens; records every hook.
struct Bystander {
    log: Log,
}

impl Dispatcher for Bystander {
    fn readable(&self, _: &Channel) -> bool {
        false
    }
    fn writable(&self, _: &Channel) -> bool {
        true
    }
    fn handle_write(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        if !self.log.has("write") {
            self.log.push("write");
        }
        Ok(())
    }
    fn handle_expt(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        self.log.push("expt");
        Ok(())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log
            .push(format!("error:{}", err.raw_os_error().unwrap_or(0)));
        Err(err)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("close");
        ctx.close();
        Ok(())
    }
}

/// Waits (bounded) until `sock` reports all of `flags` to poll(2).
fn wait_for_poll_flags(sock: &impl std::os::fd::AsFd, flags: PollFlags, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut fds = [PollFd::new(sock, flags)];
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        rustix::event::poll(&mut fds, Some(&timeout)).unwrap();
        if fds[0].revents().contains(flags) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
    }
}

/// An exceptional condition with an error pending goes to `handle_close`, not to
/// `handle_error` nor `handle_expt` (asyncore's `handle_expt_event`). The error is one
/// that is not a disconnect, so no other rule turns it into a close: `ETIMEDOUT`, from
/// `TCP_USER_TIMEOUT` (300 ms) expiring while the peer's receive window is full, with an
/// urgent byte from the peer still pending. Select reports the urgent byte as an
/// exceptional event (this is the path under test there); poll and epoll report the
/// hang-up (the channel does not ask for priority data without asking to read); on every
/// backend the hooks are exactly `[write, close]`.
fn exceptional_event_with_error_closes(backend: Backend) {
    let (server, mut client) = tcp_pair();
    socket2::SockRef::from(&client)
        .send_out_of_band(b"!")
        .unwrap();
    wait_for_poll_flags(&server, PollFlags::PRI, "the urgent byte");
    let sock = socket2::SockRef::from(&server);
    sock.set_tcp_user_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    socket2::SockRef::from(&client)
        .set_recv_buffer_size(4096)
        .unwrap();
    server.set_nonblocking(true).unwrap();
    // Fill the peer's receive window (it never reads) and our send buffer.
    let chunk = [0u8; 65536];
    let mut server_w = &server;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match server_w.write(&chunk) {
            Ok(_) => assert!(Instant::now() < deadline, "the send buffer never filled"),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the send buffer: {e}"),
        }
    }
    wait_for_poll_flags(
        &server,
        PollFlags::PRI | PollFlags::ERR,
        "the user timeout to abort the connection",
    );
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let token = ev
        .add(
            Channel::from_socket(server).unwrap(),
            Bystander { log: log.clone() },
        )
        .unwrap();
    run_until(&mut ev, "the close", |ev| !ev.contains(token));
    assert_eq!(log.entries(), ["write", "close"]);
    drop(client.write(b"x"));
}

backend_tests!(
    from_std_peer,
    between_channels,
    exceptional_event_with_error_closes
);
