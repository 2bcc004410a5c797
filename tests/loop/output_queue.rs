//! The channel's output queue (`dispatcher_with_send`) at the loop level, every backend:
//! a push whose first send is partial keeps the unsent tail, in order; an empty push
//! sends nothing (not even a zero-length datagram) and leaves nothing queued;
//! `close_when_done` behind a queue that the socket cannot take at once waits until the
//! peer has read all of it; coalescing: after a hook's (or an iteration's) first send,
//! pushes to a stream are gathered and leave together through `handle_write`, called
//! without waiting for a write event; a datagram's are not gathered.

use crate::util;

use std::io::{self, Read};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::util::{pattern, read_available, run_until, step, unix_channel, Log};
use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop};

/// Records `handle_close` and errors; does nothing else (the default `handle_write`
/// flushes the queue).
struct Quiet {
    log: Log,
}

impl Dispatcher for Quiet {
    fn readable(&self, _: &Channel) -> bool {
        false
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

/// One push far larger than the socket buffer, with nothing queued before it (the fast
/// path: send straight from the caller's buffer): the OS takes part, the rest is queued
/// (`pending_output` is exactly what the peer has not got yet, and not zero), and the
/// peer receives every byte once, in order, followed by a second push.
fn push_keeps_the_unsent_tail(backend: Backend) {
    const LEN: usize = 4 << 20;
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (ch, mut peer) = unix_channel();
    let token = ev.add(ch, Quiet { log: log.clone() }).unwrap();
    let data = pattern(LEN);
    let ch = ev.channel_mut(token).unwrap();
    assert_eq!(ch.pending_output(), 0);
    ch.push(&data).unwrap();
    let queued = ch.pending_output();
    assert!(queued > 0, "4 MiB cannot fit in a socket buffer");
    assert!(queued < LEN, "the first send took something");
    ch.push(b"second").unwrap();
    let mut got = Vec::new();
    read_available(&mut peer, &mut got);
    assert_eq!(
        got.len(),
        LEN - queued,
        "queued = what the peer has not got"
    );
    run_until(&mut ev, "all output read", |ev| {
        read_available(&mut peer, &mut got);
        got.len() >= LEN + 6 && ev.channel(token).unwrap().pending_output() == 0
    });
    assert!(
        got[..LEN] == data[..],
        "the tail follows the head, byte for byte"
    );
    assert_eq!(&got[LEN..], b"second");
    assert!(log.entries().is_empty(), "{:?}", log.entries());
}

/// A connected UDP pair: a channel over one socket, and the other, with a read timeout.
fn udp_pair() -> (Channel, UdpSocket) {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    b.connect(a.local_addr().unwrap()).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (Channel::from_socket(a).unwrap(), b)
}

/// Empty pushes, alone and between data, on a datagram socket where a zero-length send
/// would be seen (an empty datagram): the peer gets exactly the two non-empty
/// datagrams; nothing stays queued, so the channel does not ask for write events.
fn empty_push_sends_nothing(backend: Backend) {
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (ch, peer) = udp_pair();
    let token = ev.add(ch, Quiet { log: log.clone() }).unwrap();
    let ch = ev.channel_mut(token).unwrap();
    ch.push(b"").unwrap();
    ch.push_vec(Vec::new()).unwrap();
    assert_eq!(ch.pending_output(), 0, "an empty push queues nothing");
    ch.push(b"first").unwrap();
    ch.push(b"").unwrap();
    ch.push(b"second").unwrap();
    step(&mut ev, 3);
    assert_eq!(ev.channel(token).unwrap().pending_output(), 0);
    let mut buf = [0u8; 64];
    let mut datagrams = Vec::new();
    peer.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while datagrams.len() < 2 {
        match peer.recv(&mut buf) {
            Ok(n) => datagrams.push(buf[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "datagrams missing: {datagrams:?}"
                );
                ev.poll_once(Some(util::STEP)).unwrap();
            }
            Err(e) => panic!("{e}"),
        }
    }
    // Anything more would be an empty datagram: it is already in the peer's queue.
    let extra = peer.recv(&mut buf);
    assert!(
        matches!(&extra, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
        "an extra datagram: {extra:?}"
    );
    assert_eq!(datagrams, [b"first".to_vec(), b"second".to_vec()]);
    assert!(log.entries().is_empty(), "{:?}", log.entries());
}

/// `close_when_done` after 4 MiB that the socket cannot take at once: while the peer
/// reads nothing the channel stays open with output pending (the queue blocked); once
/// it reads, it gets every byte, then end of file, and `handle_close` runs once, with
/// nothing left unsent.
fn close_when_done_waits_for_a_blocked_queue(backend: Backend) {
    const LEN: usize = 4 << 20;
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (ch, mut peer) = unix_channel();
    let token = ev.add(ch, Quiet { log: log.clone() }).unwrap();
    let data = pattern(LEN);
    let ch = ev.channel_mut(token).unwrap();
    ch.push(&data).unwrap();
    ch.close_when_done();
    assert!(ch.is_closing());
    // The peer reads nothing: the queue is blocked, the channel waits.
    step(&mut ev, 5);
    let ch = ev
        .channel(token)
        .expect("still open while output is pending");
    assert!(ch.pending_output() > 0);
    assert!(log.entries().is_empty(), "{:?}", log.entries());
    let mut got = Vec::new();
    run_until(&mut ev, "everything, then end of file", |_| {
        read_available(&mut peer, &mut got)
    });
    assert_eq!(got.len(), LEN);
    assert!(got == data, "byte for byte");
    run_until(&mut ev, "the close", |ev| !ev.contains(token));
    assert_eq!(log.entries(), ["close"]);
    let mut rest = Vec::new();
    assert_eq!(peer.read_to_end(&mut rest).unwrap_or(0), 0);
}

/// Answers each read with `PIECES` pushes of `piece` bytes, and notes how much was
/// still queued when the hook returned.
struct Chatty {
    queued_after_hook: std::rc::Rc<std::cell::Cell<Option<usize>>>,
}

const PIECES: usize = 1000;

impl Dispatcher for Chatty {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 16];
        let n = match ctx.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(());
        }
        for i in 0..PIECES {
            ctx.push(format!("{i:04}\n").as_bytes())?;
        }
        self.queued_after_hook.set(Some(ctx.pending_output()));
        Ok(())
    }
}

/// Coalescing: of a hook's 1,000 small pushes only the first is sent at once; the other
/// 999 are gathered (still queued when the hook returns, though the socket has room) and
/// leave together right after it, in the same iteration, in order, byte for byte.
fn pushes_after_the_first_are_gathered_then_sent_after_the_hook(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (ch, mut peer) = unix_channel();
    let queued = std::rc::Rc::new(std::cell::Cell::new(None));
    let token = ev
        .add(
            ch,
            Chatty {
                queued_after_hook: queued.clone(),
            },
        )
        .unwrap();
    std::io::Write::write_all(&mut peer, b"go").unwrap();
    run_until(&mut ev, "the hook ran", |_| queued.get().is_some());
    assert_eq!(
        queued.get(),
        Some((PIECES - 1) * 5),
        "the first push went at once, the rest were gathered"
    );
    assert_eq!(
        ev.channel(token).unwrap().pending_output(),
        0,
        "sent in the iteration of the hook, without waiting for a write event"
    );
    let mut got = Vec::new();
    run_until(&mut ev, "everything sent", |ev| {
        read_available(&mut peer, &mut got);
        got.len() == PIECES * 5 && ev.channel(token).unwrap().pending_output() == 0
    });
    let want: Vec<u8> = (0..PIECES)
        .flat_map(|i| format!("{i:04}\n").into_bytes())
        .collect();
    assert!(got == want, "out of order or altered");
}

/// Pushes to another channel from a timer: the first goes at once, the rest are
/// gathered and sent before the loop waits again; a datagram channel gathers nothing
/// (every push is its own datagram, sent at once).
fn pushes_from_a_timer_are_gathered_but_datagrams_are_not(backend: Backend) {
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (ch, mut peer) = unix_channel();
    let stream = ev.add(ch, Quiet { log: log.clone() }).unwrap();
    let (ch, udp_peer) = udp_pair();
    let dgram = ev.add(ch, Quiet { log: log.clone() }).unwrap();
    let seen = std::rc::Rc::new(std::cell::Cell::new((usize::MAX, usize::MAX)));
    let s = seen.clone();
    ev.call_later(Duration::ZERO, move |lp, _| {
        let ch = lp.channel_mut(stream).unwrap();
        for _ in 0..10 {
            ch.push(b"abc").unwrap();
        }
        let stream_queued = ch.pending_output();
        let ch = lp.channel_mut(dgram).unwrap();
        for i in 0..10u8 {
            ch.push(&[i]).unwrap();
        }
        s.set((stream_queued, ch.pending_output()));
    });
    run_until(&mut ev, "the timer ran", |_| seen.get().0 != usize::MAX);
    assert_eq!(
        seen.get(),
        (27, 0),
        "stream: 9 pushes gathered; datagrams: none"
    );
    let mut got = Vec::new();
    run_until(&mut ev, "the stream's output", |_| {
        read_available(&mut peer, &mut got);
        got.len() == 30
    });
    assert_eq!(got, b"abc".repeat(10));
    let mut buf = [0u8; 8];
    for i in 0..10u8 {
        let n = udp_peer.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[i], "datagram {i}: one push, one datagram");
    }
    assert!(log.entries().is_empty(), "{:?}", log.entries());
}

backend_tests!(
    pushes_after_the_first_are_gathered_then_sent_after_the_hook,
    pushes_from_a_timer_are_gathered_but_datagrams_are_not,
    push_keeps_the_unsent_tail,
    empty_push_sends_nothing,
    close_when_done_waits_for_a_blocked_queue,
);
