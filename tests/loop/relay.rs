//! The relay example (a TCP proxy): 50 MB both ways byte for byte with a half-close, a
//! client that stops reading holds at most the high-water mark plus one read in the
//! relay, and end of input is passed on as a shutdown. Every backend; the relay's code
//! is the example's, run in the test's loop.

#[allow(dead_code)]
#[path = "../../examples/relay.rs"]
mod example;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::pattern;
use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop, SockAddr};

/// An echo with its own back-pressure (pause while its queue is over 256 KiB).
struct Echo;

impl Dispatcher for Echo {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 65536];
        let n = ctx.recv(&mut buf)?;
        ctx.push(&buf[..n])?;
        if ctx.pending_output() > 256 * 1024 {
            ctx.pause_reading();
        }
        Ok(())
    }
    fn handle_drained(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        ctx.resume_reading();
        Ok(())
    }
}

struct EchoServer;

impl Dispatcher for EchoServer {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        channel: Channel,
        _: SockAddr,
    ) -> io::Result<()> {
        ctx.handle().add(channel, Echo)?;
        Ok(())
    }
}

/// A loop with the relay in front of `upstream` (or of an echo in the same loop).
fn relay_loop(backend: Backend, upstream: Option<SocketAddr>) -> (EventLoop, SocketAddr) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let to = upstream.unwrap_or_else(|| {
        let l = Channel::tcp_listener("127.0.0.1:0".parse().unwrap(), 64).unwrap();
        let addr = l.local_inet_addr().unwrap();
        ev.add(l, EchoServer).unwrap();
        addr
    });
    let l = Channel::tcp_listener("127.0.0.1:0".parse().unwrap(), 64).unwrap();
    let addr = l.local_inet_addr().unwrap();
    ev.add(l, example::Listener { to }).unwrap();
    (ev, addr)
}

/// The largest queue any relay side holds now.
fn relay_queue(ev: &EventLoop) -> usize {
    ev.channels()
        .filter(|(t, _)| ev.dispatcher::<example::Side>(*t).is_some())
        .map(|(_, ch)| ch.pending_output())
        .max()
        .unwrap_or(0)
}

/// Steps the loop until `done` holds (a thread finished), failing after `secs`.
fn drive(ev: &mut EventLoop, secs: u64, mut each: impl FnMut(&EventLoop), done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "the relay did not finish");
        ev.poll_once(Some(Duration::from_millis(10))).unwrap();
        each(ev);
    }
}

fn relays_50_mb_both_ways_with_half_close(backend: Backend) {
    let (mut ev, addr) = relay_loop(backend, None);
    let n = 50_000_000;
    let finished = Arc::new(AtomicBool::new(false));
    let client = {
        let finished = finished.clone();
        thread::spawn(move || {
            let stream = TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(60)))
                .unwrap();
            let mut writer = stream.try_clone().unwrap();
            let sender = thread::spawn(move || {
                writer.write_all(&pattern(n)).unwrap();
                writer.shutdown(Shutdown::Write).unwrap();
            });
            let mut got = Vec::new();
            (&stream).read_to_end(&mut got).unwrap();
            sender.join().unwrap();
            finished.store(true, Ordering::SeqCst);
            got
        })
    };
    drive(&mut ev, 120, |_| {}, || finished.load(Ordering::SeqCst));
    let got = client.join().unwrap();
    assert_eq!(got.len(), n, "{backend}: bytes back through the relay");
    assert!(got == pattern(n), "{backend}: the bytes differ");
    // Both directions ended: the relay closed both sides of that connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    while ev
        .channels()
        .any(|(t, _)| ev.dispatcher::<example::Side>(t).is_some())
    {
        assert!(
            Instant::now() < deadline,
            "{backend}: relay sides left open"
        );
        ev.poll_once(Some(Duration::from_millis(10))).unwrap();
    }
}

fn client_that_stops_reading_is_held_at_the_high_water_mark(backend: Backend) {
    let (mut ev, addr) = relay_loop(backend, None);
    let n = 64_000_000;
    let sent = Arc::new(AtomicUsize::new(0));
    let stalled = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let client = {
        let (sent, stalled, finished) = (sent.clone(), stalled.clone(), finished.clone());
        thread::spawn(move || {
            let data = pattern(n);
            let stream = TcpStream::connect(addr).unwrap();
            let mut writer = stream.try_clone().unwrap();
            writer.set_nonblocking(true).unwrap();
            // Send without reading until the relay stops taking anything for 300 ms.
            let mut last = Instant::now();
            while sent.load(Ordering::SeqCst) < n && last.elapsed() < Duration::from_millis(300) {
                let at = sent.load(Ordering::SeqCst);
                match writer.write(&data[at..]) {
                    Ok(k) => {
                        sent.fetch_add(k, Ordering::SeqCst);
                        last = Instant::now();
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(1))
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            stalled.store(sent.load(Ordering::SeqCst) < n, Ordering::SeqCst);
            // Now read everything back while sending the rest.
            writer.set_nonblocking(false).unwrap();
            let sender = thread::spawn(move || {
                let at = sent.load(Ordering::SeqCst);
                writer.write_all(&data[at..]).unwrap();
                writer.shutdown(Shutdown::Write).unwrap();
            });
            stream
                .set_read_timeout(Some(Duration::from_secs(60)))
                .unwrap();
            let mut got = Vec::new();
            (&stream).read_to_end(&mut got).unwrap();
            sender.join().unwrap();
            finished.store(true, Ordering::SeqCst);
            got
        })
    };
    let mut most = 0;
    drive(
        &mut ev,
        120,
        |ev| most = most.max(relay_queue(ev)),
        || finished.load(Ordering::SeqCst),
    );
    let got = client.join().unwrap();
    assert!(
        stalled.load(Ordering::SeqCst),
        "{backend}: back-pressure reached the client (it could send all {n} bytes without reading)"
    );
    assert!(
        most <= example::HIGH_WATER + 64 * 1024,
        "{backend}: the relay held {most} bytes for one side"
    );
    assert!(
        most > example::LOW_WATER,
        "{backend}: the relay's queue never filled ({most} bytes): nothing was measured"
    );
    assert_eq!(got.len(), n, "{backend}");
    assert!(got == pattern(n), "{backend}: the bytes differ");
}

fn end_of_input_is_passed_on_as_a_shutdown(backend: Backend) {
    // The upstream answers only once it sees end of input, then closes.
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = upstream.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut request = Vec::new();
        s.read_to_end(&mut request).unwrap();
        s.write_all(format!("got {} bytes", request.len()).as_bytes())
            .unwrap();
    });
    let (mut ev, addr) = relay_loop(backend, Some(up_addr));
    let finished = Arc::new(AtomicBool::new(false));
    let client = {
        let finished = finished.clone();
        thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(&[b'x'; 100_000]).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut reply = String::new();
            s.read_to_string(&mut reply).unwrap();
            finished.store(true, Ordering::SeqCst);
            reply
        })
    };
    drive(&mut ev, 20, |_| {}, || finished.load(Ordering::SeqCst));
    assert_eq!(client.join().unwrap(), "got 100000 bytes", "{backend}");
    server.join().unwrap();
}

backend_tests!(
    relays_50_mb_both_ways_with_half_close,
    client_that_stops_reading_is_held_at_the_high_water_mark,
    end_of_input_is_passed_on_as_a_shutdown,
);
