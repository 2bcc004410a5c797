//! The hook lifecycle over IPv4, IPv6 and Unix sockets: connect, accept, accepted, read,
//! write, close, on every backend, all inside one loop.

use crate::util;

use std::io;

use crate::util::{listener, run_until, unix_path, EchoServer, Log};
use sockloop::{Backend, Channel, Context, Dispatcher, Domain, EventLoop, SockAddr, Type};

/// Connects, sends a greeting from handle_connect, reads the echo, then closes.
struct Client {
    log: Log,
    got: Vec<u8>,
    expect: usize,
}

impl Dispatcher for Client {
    fn handle_connect(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("client:connect");
        assert!(
            ctx.is_connected(),
            "connected must be set before handle_connect"
        );
        ctx.push(b"hello, ")?;
        ctx.push(b"world")
    }
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 1024];
        let n = ctx.recv(&mut buf)?;
        self.got.extend_from_slice(&buf[..n]);
        if self.got.len() >= self.expect {
            self.log.push("client:done");
            ctx.close();
        }
        Ok(())
    }
    fn handle_write(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("client:write");
        ctx.flush()
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("client:close");
        ctx.close();
        Ok(())
    }
}

fn round_trip(backend: Backend, server: Channel, addr: SockAddr, domain: Domain) {
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let server_token = ev.add(server, EchoServer { log: log.clone() }).unwrap();
    assert!(ev.channel(server_token).unwrap().is_accepting());

    let mut client = Channel::create_socket(domain, Type::STREAM).unwrap();
    client.connect(addr).unwrap();
    assert!(client.is_connecting() || client.is_connected());
    let client_token = ev
        .add(
            client,
            Client {
                log: log.clone(),
                got: Vec::new(),
                expect: 12,
            },
        )
        .unwrap();
    run_until(&mut ev, "client got its echo", |ev| {
        !ev.contains(client_token)
    });
    assert_eq!(log.count("client:connect"), 1);
    assert_eq!(log.count("server:accepted"), 1);
    assert!(log.has("conn:read"));
    assert!(log.has("client:done"));
    assert_eq!(
        log.count("client:close"),
        0,
        "closing yourself does not call handle_close"
    );
    // The server side sees end of file and closes once.
    run_until(&mut ev, "server side closed", |_| log.has("conn:close"));
    for _ in 0..3 {
        ev.poll_once(Some(util::STEP)).unwrap();
    }
    assert_eq!(log.count("conn:close"), 1);
    assert!(
        !log.entries().iter().any(|e| e.contains("error")),
        "{:?}",
        log.entries()
    );
    assert_eq!(ev.len(), 1, "only the listener is left");
    ev.close_all();
    assert!(ev.is_empty());
}

fn ipv4(backend: Backend) {
    let (server, addr) = listener("127.0.0.1:0");
    assert_ne!(addr.as_socket().unwrap().port(), 0, "the real port, not 0");
    round_trip(backend, server, addr, Domain::IPV4);
}

fn ipv6(backend: Backend) {
    let Ok(std_listener) = std::net::TcpListener::bind("[::1]:0") else {
        util::skip("no IPv6 loopback on this machine");
        return;
    };
    drop(std_listener);
    let (server, addr) = listener("[::1]:0");
    round_trip(backend, server, addr, Domain::IPV6);
}

fn unix(backend: Backend) {
    let path = unix_path(&format!("hooks-{}", backend.name()));
    let mut server = Channel::create_socket(Domain::UNIX, Type::STREAM).unwrap();
    let addr = SockAddr::unix(&path).unwrap();
    server.bind(addr.clone()).unwrap();
    server.listen(16).unwrap();
    assert_eq!(
        server.local_addr().unwrap().as_pathname(),
        Some(path.as_path())
    );
    round_trip(backend, server, addr, Domain::UNIX);
    let _ = std::fs::remove_file(&path);
}

/// Wrapping std sockets of every kind gives the right state.
fn wrap_std_sockets(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    struct Quiet;
    impl Dispatcher for Quiet {
        fn readable(&self, _: &Channel) -> bool {
            false
        }
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let path = unix_path(&format!("wrap-{}", backend.name()));
    let ul = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let us = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let states = [
        Channel::from_socket(l).unwrap(),
        Channel::from_socket(s).unwrap(),
        Channel::from_socket(u).unwrap(),
        Channel::from_socket(ul).unwrap(),
        Channel::from_socket(us).unwrap(),
    ]
    .into_iter()
    .map(|ch| {
        let state = ch.state();
        ev.add(ch, Quiet).unwrap();
        state
    })
    .collect::<Vec<_>>();
    use sockloop::State::*;
    assert_eq!(
        states,
        [Accepting, Connected, Unconnected, Accepting, Connected]
    );
    ev.run(Some(util::STEP), Some(2)).unwrap();
    assert_eq!(ev.len(), 5);
    let _ = std::fs::remove_file(&path);
}

backend_tests!(ipv4, ipv6, unix, wrap_std_sockets);
