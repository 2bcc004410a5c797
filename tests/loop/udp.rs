//! Datagram channels: the UDP echo example (`examples/udp_echo.rs`) run in-process on every
//! backend and driven by std sockets, plus `recv_from` / `send_to` edge cases.

use crate::util;

#[path = "../../examples/udp_echo.rs"]
#[allow(dead_code)]
mod udp_echo;

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::rc::Rc;
use std::time::Duration;

use crate::util::{pattern, run_until, step, unix_path};
use rustix::io::Errno;
use sockloop::{Backend, Channel, Context, Dispatcher, Domain, EventLoop, SockAddr, Token, Type};
use udp_echo::{Limits, Stats, UdpEcho, MAX_BATCH};

/// The largest UDP payload over IPv4: 65,535 - 20 (IP header) - 8 (UDP header).
const MAX_V4: usize = 65_507;
/// The largest UDP payload over IPv6 (without jumbograms): 65,535 - 8.
const MAX_V6: usize = 65_527;

/// `len` bytes of test data, different for each `(tag, i)`.
fn payload(tag: u8, i: usize, len: usize) -> Vec<u8> {
    let mask = tag ^ (i as u8).wrapping_mul(31) ^ (i >> 8) as u8;
    pattern(len).into_iter().map(|b| b ^ mask).collect()
}

fn stats(ev: &EventLoop, t: Token) -> Stats {
    ev.dispatcher::<UdpEcho>(t)
        .expect("the echo channel is still open")
        .stats()
}

fn server(backend: Backend, addr: &str) -> io::Result<(EventLoop, Token, SocketAddr)> {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    ev.set_catch_panics(false);
    let (t, bound) = udp_echo::listen(&mut ev, addr.parse().unwrap())?;
    assert_ne!(bound.port(), 0);
    Ok((ev, t, bound))
}

fn client(addr: &str) -> io::Result<UdpSocket> {
    let s = UdpSocket::bind(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// Receives one datagram (the buffer is larger than any datagram, so nothing truncates).
fn recv_reply(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 65_536 + 1];
    let (n, from) = sock
        .recv_from(&mut buf)
        .expect("no echo within the timeout");
    buf.truncate(n);
    (buf, from)
}

/// Sends `data`, steps the loop until the server echoed it, and checks the echo.
fn roundtrip(ev: &mut EventLoop, t: Token, sock: &UdpSocket, server: SocketAddr, data: &[u8]) {
    let before = stats(ev, t).echoed;
    assert_eq!(sock.send_to(data, server).unwrap(), data.len());
    run_until(ev, "the echo", |ev| stats(ev, t).echoed > before);
    let (got, from) = recv_reply(sock);
    assert_eq!(from, server);
    assert_eq!(
        got.len(),
        data.len(),
        "echo of a {}-byte datagram",
        data.len()
    );
    assert!(
        got == data,
        "echo of a {}-byte datagram differs",
        data.len()
    );
}

/// Every size from empty to the IPv4 maximum comes back intact; an empty datagram comes
/// back empty and does not close the channel.
fn echo_many_sizes(backend: Backend) {
    let (mut ev, t, addr) = server(backend, "127.0.0.1:0").unwrap();
    let sock = client("127.0.0.1:0").unwrap();
    let sizes = [
        0, 1, 2, 3, 7, 0, 64, 100, 512, 1024, 1472, 1473, 1500, 4096, 8192, 9000, 0, 16_384,
        32_768, 65_000, 65_506, MAX_V4, 0, 5, MAX_V4, 0,
    ];
    for (i, &len) in sizes.iter().enumerate() {
        roundtrip(&mut ev, t, &sock, addr, &payload(1, i, len));
    }

    // A burst of small datagrams, several empty, sent before the loop runs.
    let burst: Vec<Vec<u8>> = (0..100)
        .map(|i| payload(2, i, if i % 9 == 4 { 0 } else { (i * 37) % 700 }))
        .collect();
    assert!(burst.iter().filter(|d| d.is_empty()).count() >= 3);
    for d in &burst {
        sock.send_to(d, addr).unwrap();
    }
    let target = (sizes.len() + burst.len()) as u64;
    run_until(&mut ev, "the burst echoed", |ev| {
        stats(ev, t).echoed == target
    });
    for (i, d) in burst.iter().enumerate() {
        let (got, from) = recv_reply(&sock);
        assert_eq!(from, addr);
        assert!(got == *d, "burst datagram {i} ({} bytes) differs", d.len());
    }

    step(&mut ev, 3);
    let s = stats(&ev, t);
    assert_eq!((s.received, s.echoed, s.errors), (target, target, 0));
    assert!(
        ev.contains(t),
        "an empty datagram must not close the channel"
    );
    let ch = ev.channel(t).unwrap();
    assert!(!ch.is_eof() && !ch.is_closed());
}

/// The same over IPv6 loopback, up to the IPv6 maximum; skipped if `::1` is unusable.
fn ipv6_echo(backend: Backend) {
    let (mut ev, t, addr, sock) = match server(backend, "[::1]:0").and_then(|(ev, t, addr)| {
        let sock = client("[::1]:0")?;
        Ok((ev, t, addr, sock))
    }) {
        Ok(v) => v,
        Err(e) => {
            util::skip(&format!("cannot bind [::1] ({e})"));
            return;
        }
    };
    assert!(addr.is_ipv6());
    for (i, &len) in [0, 1, 1280, 9000, MAX_V4, MAX_V6, 0, 3].iter().enumerate() {
        roundtrip(&mut ev, t, &sock, addr, &payload(6, i, len));
    }
    assert!(ev.contains(t) && !ev.channel(t).unwrap().is_eof());
    assert_eq!(stats(&ev, t).errors, 0);
}

/// Two clients sending in turn each get exactly their own replies, in order.
fn two_clients_interleaved(backend: Backend) {
    let (mut ev, t, addr) = server(backend, "127.0.0.1:0").unwrap();
    let a = client("127.0.0.1:0").unwrap();
    let b = client("127.0.0.1:0").unwrap();
    let mut total = 0;
    for round in 0..30 {
        // Sizes differ between a and b and include empty datagrams from either side.
        let da = payload(0xa, round, if round % 4 == 0 { 0 } else { round * 11 });
        let db = payload(0xb, round, if round % 5 == 1 { 0 } else { 3000 + round });
        a.send_to(&da, addr).unwrap();
        b.send_to(&db, addr).unwrap();
        if round % 3 == 0 {
            // Sometimes a second one from b before the loop runs.
            b.send_to(&db, addr).unwrap();
            total += 1;
        }
        total += 2;
        run_until(&mut ev, "both echoed", |ev| stats(ev, t).echoed == total);
        let (got, from) = recv_reply(&a);
        assert_eq!(from, addr);
        assert!(got == da, "a's reply in round {round}");
        for _ in 0..(1 + usize::from(round % 3 == 0)) {
            let (got, from) = recv_reply(&b);
            assert_eq!(from, addr);
            assert!(got == db, "b's reply in round {round}");
        }
    }
    // Nothing extra is waiting for either client.
    for c in [&a, &b] {
        c.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 16];
        let err = c.recv_from(&mut buf).expect_err("no extra datagram");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }
    assert!(ev.contains(t));
}

/// The error kind of a result that must be an error.
fn err_kind<T: std::fmt::Debug>(r: io::Result<T>) -> io::ErrorKind {
    r.expect_err("expected an error").kind()
}

/// `recv_from` with nothing waiting is `Err(WouldBlock)`, and such a channel gets no read
/// events.
fn recv_from_on_empty_socket_would_block(backend: Backend) {
    let mut ch = udp_echo::udp_channel("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut buf = vec![0u8; 65_536];
    for _ in 0..3 {
        assert_eq!(err_kind(ch.recv_from(&mut buf)), io::ErrorKind::WouldBlock);
    }
    assert_eq!(
        err_kind(ch.recv_from(&mut [])),
        io::ErrorKind::WouldBlock,
        "an empty buffer too"
    );
    assert!(!ch.is_eof() && !ch.is_closed());

    let mut ev = EventLoop::with_backend(backend).unwrap();
    ev.set_catch_panics(false);
    let t = ev.add(ch, UdpEcho::new()).unwrap();
    step(&mut ev, 3);
    assert_eq!(stats(&ev, t).reads, 0, "no read event without a datagram");
    let ch = ev.channel_mut(t).unwrap();
    assert_eq!(err_kind(ch.recv_from(&mut buf)), io::ErrorKind::WouldBlock);
    assert!(!ch.is_eof());
    assert!(ev.contains(t));
}

/// Records hook calls.
type Log = Rc<RefCell<Vec<String>>>;

/// Echoes, except that `big` is answered with a datagram too large for UDP over IPv4.
struct BigReply {
    log: Log,
}

impl Dispatcher for BigReply {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 2048];
        loop {
            let (n, from) = match ctx.recv_from(&mut buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            };
            if &buf[..n] == b"big" {
                ctx.send_to(&vec![7u8; MAX_V4 + 1], from)?;
                self.log.borrow_mut().push("sent big".into());
            } else {
                assert_eq!(ctx.send_to(&buf[..n], from)?, n);
                self.log.borrow_mut().push("echo".into());
            }
        }
        Ok(())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        let entry = match Errno::from_io_error(&err) {
            Some(Errno::MSGSIZE) => "error EMSGSIZE".to_string(),
            _ => format!("error {err}"),
        };
        self.log.borrow_mut().push(entry);
        Ok(()) // keep serving
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.borrow_mut().push("close".into());
        ctx.close();
        Ok(())
    }
}

/// A datagram too large to send is an error (`EMSGSIZE`) for the hook, not a panic and not
/// a close; the channel goes on serving.
fn oversized_send_to_is_an_error_for_the_hook(backend: Backend) {
    let sock = client("127.0.0.1:0").unwrap();
    let peer = sock.local_addr().unwrap();

    // Outside the loop: a plain error, the channel unharmed.
    let mut ch = udp_echo::udp_channel("127.0.0.1:0".parse().unwrap()).unwrap();
    let err = ch.send_to(&vec![0u8; MAX_V4 + 1], peer).unwrap_err();
    assert_eq!(Errno::from_io_error(&err), Some(Errno::MSGSIZE), "{err}");
    assert!(!ch.is_eof() && !ch.is_closed());
    assert_eq!(ch.send_to(&vec![1u8; MAX_V4], peer).unwrap(), MAX_V4);
    assert_eq!(recv_reply(&sock).0.len(), MAX_V4);

    // In a hook: routed to handle_error, which keeps the channel.
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    ev.set_catch_panics(false);
    let addr = ch.local_inet_addr().unwrap();
    let t = ev.add(ch, BigReply { log: log.clone() }).unwrap();
    sock.send_to(b"big", addr).unwrap();
    run_until(&mut ev, "the error reached handle_error", |_| {
        !log.borrow().is_empty()
    });
    assert_eq!(*log.borrow(), ["error EMSGSIZE"]);
    for (i, msg) in [&b"ping"[..], b"", b"pong"].into_iter().enumerate() {
        sock.send_to(msg, addr).unwrap();
        run_until(&mut ev, "the echo", |_| log.borrow().len() == i + 2);
        let (got, from) = recv_reply(&sock);
        assert_eq!((got.as_slice(), from), (msg, addr));
    }
    assert!(ev.contains(t), "the channel keeps serving");
    assert_eq!(
        *log.borrow(),
        ["error EMSGSIZE", "echo", "echo", "echo"],
        "no close, no second error"
    );

    // The echo example routes the same way and keeps serving after it.
    let (mut ev, t, addr) = server(backend, "127.0.0.1:0").unwrap();
    roundtrip(&mut ev, t, &sock, addr, b"still fine");
    assert_eq!(stats(&ev, t).errors, 0);
}

/// One read event receives at most `MAX_BATCH` datagrams, even with more waiting.
fn at_most_a_batch_per_read_event(backend: Backend) {
    let (mut ev, t, addr) = server(backend, "127.0.0.1:0").unwrap();
    let sock = client("127.0.0.1:0").unwrap();
    let n = 2 * MAX_BATCH + 2;
    let sent: Vec<Vec<u8>> = (0..n).map(|i| payload(3, i, i % 17)).collect();
    for d in &sent {
        sock.send_to(d, addr).unwrap();
    }
    run_until(&mut ev, "all echoed", |ev| {
        let s = stats(ev, t);
        assert!(s.max_batch <= MAX_BATCH, "{s:?}");
        s.echoed == n as u64
    });
    let s = stats(&ev, t);
    assert_eq!(s.max_batch, MAX_BATCH, "{s:?}");
    assert!(
        s.reads >= 3,
        "{n} datagrams need at least 3 read events: {s:?}"
    );
    for (i, d) in sent.iter().enumerate() {
        assert!(recv_reply(&sock).0 == *d, "datagram {i}");
    }
}

/// A datagram channel over a Unix socket, where a peer that does not read makes `send_to`
/// block for real: echoes are queued, the queue stays within its limit (reading stops),
/// and every datagram, empty ones included, comes back exactly once and in order.
fn blocked_sends_are_queued_not_dropped(backend: Backend) {
    let server_path = unix_path(&format!("udp-echo-{}", backend.name()));
    let client_path = unix_path(&format!("udp-client-{}", backend.name()));
    let mut ch = Channel::create_socket(Domain::UNIX, Type::DGRAM).unwrap();
    ch.bind(SockAddr::unix(&server_path).unwrap()).unwrap();
    let limits = Limits {
        max_datagrams: 8,
        max_bytes: 1 << 20,
    };
    let mut ev = EventLoop::with_backend(backend).unwrap();
    ev.set_catch_panics(false);
    let t = ev.add(ch, UdpEcho::with_limits(limits)).unwrap();
    let sock = UnixDatagram::bind(&client_path).unwrap();
    sock.set_nonblocking(true).unwrap();

    let total = 200;
    let sent: Vec<Vec<u8>> = (0..total)
        .map(|i| payload(4, i, if i % 5 == 0 { 0 } else { 100 + i }))
        .collect();
    let mut next = 0;
    let send_some = |next: &mut usize| {
        while *next < total {
            match sock.send_to(&sent[*next], &server_path) {
                Ok(_) => *next += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("client send: {e}"),
            }
        }
    };

    // Phase 1: the client sends and does not read, until the server's queue is full.
    run_until(&mut ev, "the server's queue is full", |ev| {
        send_some(&mut next);
        ev.dispatcher::<UdpEcho>(t).unwrap().is_full()
    });
    let s = stats(&ev, t);
    assert!(
        s.queued > 0 && s.max_queued <= limits.max_datagrams,
        "{s:?}"
    );
    // Reading has stopped: nothing more is received however long the loop runs.
    step(&mut ev, 5);
    send_some(&mut next);
    step(&mut ev, 5);
    let held = stats(&ev, t);
    assert_eq!(held.received, s.received, "a full queue stops reading");
    assert_eq!(ev.dispatcher::<UdpEcho>(t).unwrap().queued(), 8);
    assert!(next < total, "the client was held back too");

    // Phase 2: the client reads; everything comes back exactly once, in order.
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut buf = vec![0u8; 65_536];
    run_until(&mut ev, "every echo received", |ev| {
        loop {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    assert_eq!(from.as_pathname(), Some(server_path.as_path()));
                    got.push(buf[..n].to_vec());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("client recv: {e}"),
            }
        }
        send_some(&mut next);
        let s = stats(ev, t);
        assert!(s.max_queued <= limits.max_datagrams, "{s:?}");
        got.len() >= total
    });
    step(&mut ev, 3);
    assert!(sock.recv_from(&mut buf).is_err(), "no duplicate echo");
    assert_eq!(got.len(), total);
    for (i, (g, s)) in got.iter().zip(&sent).enumerate() {
        assert!(g == s, "echo {i}: {} bytes, expected {}", g.len(), s.len());
    }
    let s = stats(&ev, t);
    assert_eq!(
        (s.received, s.echoed, s.errors),
        (total as u64, total as u64, 0)
    );
    assert!(ev.contains(t) && !ev.channel(t).unwrap().is_eof());
    let _ = std::fs::remove_file(&server_path);
    let _ = std::fs::remove_file(&client_path);
}

/// Regression: `send_to` used to return `Ok(0)` both for "would block" and for an empty
/// datagram sent, so a caller could not tell a lost echo from a delivered one. Now an
/// empty datagram sent is `Ok(0)` and would-block is `Err(WouldBlock)`.
fn send_to_would_block_is_not_an_empty_datagram_sent(backend: Backend) {
    let a_path = unix_path(&format!("send-to-a-{}", backend.name()));
    let b_path = unix_path(&format!("send-to-b-{}", backend.name()));
    let mut a = Channel::create_socket(Domain::UNIX, Type::DGRAM).unwrap();
    a.bind(SockAddr::unix(&a_path).unwrap()).unwrap();
    let mut b = Channel::create_socket(Domain::UNIX, Type::DGRAM).unwrap();
    b.bind(SockAddr::unix(&b_path).unwrap()).unwrap();
    let b_addr = SockAddr::unix(&b_path).unwrap();

    assert_eq!(a.send_to(b"", b_addr.clone()).unwrap(), 0);
    let mut filled = 1;
    loop {
        match a.send_to(b"x", b_addr.clone()) {
            Ok(n) => assert_eq!(n, 1),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("send_to: {e}"),
        }
        filled += 1;
        assert!(filled < 100_000, "the peer's queue never filled");
    }
    assert_eq!(
        err_kind(a.send_to(b"", b_addr.clone())),
        io::ErrorKind::WouldBlock,
        "would block must not look like an empty datagram sent"
    );
    assert!(!a.is_closed() && !a.is_eof());

    // The peer got exactly what was reported as sent.
    let mut buf = [0u8; 16];
    let mut sizes = Vec::new();
    loop {
        match b.recv_from(&mut buf) {
            Ok((n, _)) => sizes.push(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("recv_from: {e}"),
        }
    }
    assert_eq!(sizes.len(), filled);
    assert_eq!(sizes[0], 0);
    assert!(sizes[1..].iter().all(|&n| n == 1));

    // With room again, an empty datagram is sent and arrives, also through a loop.
    let mut ev = EventLoop::with_backend(backend).unwrap();
    ev.set_catch_panics(false);
    let bt = ev.add(b, UdpEcho::new()).unwrap();
    assert_eq!(a.send_to(b"", b_addr).unwrap(), 0);
    run_until(&mut ev, "the empty datagram echoed", |ev| {
        stats(ev, bt).echoed == 1
    });
    let (n, from) = a.recv_from(&mut buf).expect("the empty echo");
    assert_eq!(n, 0);
    assert_eq!(from.as_pathname(), Some(b_path.as_path()));
    assert!(ev.contains(bt));
    let _ = std::fs::remove_file(&a_path);
    let _ = std::fs::remove_file(&b_path);
}

backend_tests!(
    echo_many_sizes,
    ipv6_echo,
    two_clients_interleaved,
    recv_from_on_empty_socket_would_block,
    oversized_send_to_is_an_error_for_the_hook,
    at_most_a_batch_per_read_event,
    blocked_sends_are_queued_not_dropped,
    send_to_would_block_is_not_an_empty_datagram_sent,
);
