//! Out-of-band (TCP urgent) data: it reaches `handle_expt`, where `recv_oob` returns the
//! byte, while the normal data around it still arrives through `handle_read`, in order.

mod util;

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

use sockloop::{Backend, Channel, Context, Dispatcher, Domain, EventLoop, SockAddr, Type};
use util::{listener, run_until, step, tcp_pair, Log};

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
        sock: sockloop::Socket,
        _: SockAddr,
    ) -> io::Result<()> {
        let ch = Channel::from_socket(sock)?;
        ctx.add(
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

backend_tests!(from_std_peer, between_channels);
