//! The chat layer over real loopback sockets, on every backend: terminator switches inside
//! `found_terminator`, count terminators, the record limit, output watermarks,
//! `close_when_done`, pushes after it, producers, and an outgoing connect.

use crate::util;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

use crate::util::{run_until, Log};
use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
use sockloop::{Backend, Channel, EventLoop, SimpleProducer, Token};

/// The test's end of a connection: non-blocking, pumped between loop iterations.
struct Peer {
    stream: TcpStream,
    got: Vec<u8>,
    out: Vec<u8>,
    eof: bool,
}

impl Peer {
    fn send(&mut self, data: &[u8]) {
        self.out.extend_from_slice(data);
        self.pump_out();
    }

    fn pump_out(&mut self) {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => panic!("peer write failed: {e}"),
            }
        }
    }

    /// Reads what is there; true if anything was read or end of file seen.
    fn pump_in(&mut self) -> bool {
        let mut buf = [0u8; 65536];
        let mut any = false;
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    return true;
                }
                Ok(n) => {
                    self.got.extend_from_slice(&buf[..n]);
                    any = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return any,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    self.eof = true;
                    return true;
                }
                Err(e) => panic!("peer read failed: {e}"),
            }
        }
    }

    fn pump(&mut self) {
        self.pump_out();
        self.pump_in();
    }
}

/// A TCP connection over loopback: the server end added to `ev` with `chat`, the client
/// end returned as a [`Peer`].
fn connect<H: ChatHandler>(ev: &mut EventLoop, chat: AsyncChat<H>) -> (Token, Peer) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.set_nonblocking(true).unwrap();
    let token = ev.add(Channel::from_socket(server).unwrap(), chat).unwrap();
    let peer = Peer {
        stream: client,
        got: Vec::new(),
        out: Vec::new(),
        eof: false,
    };
    (token, peer)
}

/// A configurable handler: collects records and answers each with `respond`.
type Respond = Box<dyn FnMut(&mut ChatContext<'_>, Vec<u8>) -> io::Result<()>>;

struct Records {
    log: Log,
    record: Vec<u8>,
    respond: Respond,
}

impl Records {
    fn chat(
        log: &Log,
        terminator: Terminator,
        respond: impl FnMut(&mut ChatContext<'_>, Vec<u8>) -> io::Result<()> + 'static,
    ) -> AsyncChat<Records> {
        let mut chat = AsyncChat::new(Records {
            log: log.clone(),
            record: Vec::new(),
            respond: Box::new(respond),
        });
        chat.set_terminator(terminator).unwrap();
        chat
    }
}

impl ChatHandler for Records {
    fn collect_incoming_data(&mut self, _: &mut ChatContext<'_>, data: &[u8]) -> io::Result<()> {
        self.record.extend_from_slice(data);
        Ok(())
    }
    fn found_terminator(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
        let record = std::mem::take(&mut self.record);
        self.log
            .push(format!("record:{}", String::from_utf8_lossy(&record)));
        (self.respond)(ctx, record)
    }
    fn handle_connect(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
        self.log.push("connect");
        ctx.push(b"hello\n")
    }
    fn handle_close(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
        self.log.push("close");
        ctx.close();
        Ok(())
    }
    fn handle_error(&mut self, _: &mut ChatContext<'_>, err: io::Error) -> io::Result<()> {
        self.log.push(format!("error:{:?}", err.kind()));
        Err(err)
    }
}

fn bytes(t: &[u8]) -> Terminator {
    Terminator::Bytes(t.to_vec())
}

/// A length line, then a counted body, switching inside `found_terminator`; sent in
/// awkward pieces, each piece flushed through the loop before the next.
fn switch_terminators_over_sockets(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let chat = Records::chat(&log, bytes(b"\r\n"), |ctx, record| {
        if let Terminator::Count(_) = ctx.get_terminator() {
            ctx.push(b"body:")?;
            ctx.push_vec(record)?;
            ctx.push(b"\n")?;
            ctx.set_terminator(bytes(b"\r\n"))
        } else {
            let n: u64 = String::from_utf8_lossy(&record).parse().unwrap();
            ctx.set_terminator(Terminator::Count(n))
        }
    });
    let (_, mut peer) = connect(&mut ev, chat);
    let input = b"3\r\nabc10\r\n01234567892\r\n\r\n1\r\nz";
    let expect = b"body:abc\nbody:0123456789\nbody:\r\n\nbody:z\n";
    // Everything at once: all switches happen inside one read.
    peer.send(input);
    run_until(&mut ev, "all bodies echoed", |_| {
        peer.pump();
        peer.got.len() >= expect.len()
    });
    assert_eq!(peer.got, expect);
    // Byte by byte, each byte read on its own.
    peer.got.clear();
    for &b in input.iter() {
        peer.send(&[b]);
        ev.poll_once(Some(util::STEP)).unwrap(); // usually reads just this byte
    }
    run_until(&mut ev, "all bodies echoed again", |_| {
        peer.pump();
        peer.got.len() >= expect.len()
    });
    assert_eq!(peer.got, expect);
}

/// A count terminator counts down across reads, then collects everything.
fn count_terminator_across_reads(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let mut chat = Records::chat(&log, Terminator::Count(100_000), |ctx, record| {
        ctx.push(format!("{}\n", record.len()).as_bytes())?;
        ctx.set_terminator(Terminator::Count(3))
    });
    chat.set_in_buffer_size(4096).unwrap();
    let (_, mut peer) = connect(&mut ev, chat);
    peer.send(&vec![b'x'; 100_000 + 6]);
    run_until(&mut ev, "counted records answered", |_| {
        peer.pump();
        peer.got == b"100000\n3\n3\n"
    });
}

/// A line over the limit closes that channel only (the default); the other keeps working.
fn record_too_long_closes_only_that_channel(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (log_a, log_b) = (Log::default(), Log::default());
    let echo = |ctx: &mut ChatContext<'_>, mut record: Vec<u8>| {
        record.push(b'\n');
        ctx.push_vec(record)
    };
    let mut a = Records::chat(&log_a, bytes(b"\n"), echo);
    a.set_max_record(Some(100));
    let mut b = Records::chat(&log_b, bytes(b"\n"), echo);
    b.set_max_record(Some(100));
    let (ta, mut pa) = connect(&mut ev, a);
    let (tb, mut pb) = connect(&mut ev, b);
    pa.send(&[b'y'; 100]);
    pa.send(b"\n");
    pa.send(&[b'z'; 5000]); // no terminator at all: the limit still fires
    pb.send(b"fine\n");
    run_until(&mut ev, "a closed", |ev| {
        pa.pump();
        pb.pump();
        !ev.contains(ta) && pa.eof
    });
    assert_eq!(pa.got.len(), 101, "the 100-byte line was still answered");
    assert_eq!(
        log_a.entries()[1..],
        ["error:InvalidData".to_string(), "close".to_string()]
    );
    pb.send(b"still here\n");
    run_until(&mut ev, "b answered", |_| {
        pb.pump();
        pb.got == b"fine\nstill here\n"
    });
    assert!(ev.contains(tb));
    assert!(!log_b.entries().iter().any(|e| e.starts_with("error")));
}

/// A peer that sends requests without reading: reading pauses above the high-water mark,
/// the queue stays bounded, and everything arrives once the peer reads.
fn watermarks_pause_and_resume_reading(backend: Backend) {
    const REPLY: usize = 100_000;
    const REQUESTS: usize = 400; // 40 MB of replies: far more than socket buffers hold
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let mut chat = Records::chat(&log, bytes(b"\n"), |ctx, record| {
        let n: usize = String::from_utf8_lossy(&record).parse().unwrap();
        ctx.push_vec(vec![(n % 251) as u8; REPLY])
    });
    chat.set_watermarks(Some((100_000, 200_000))).unwrap();
    chat.set_in_buffer_size(64).unwrap();
    let (token, mut peer) = connect(&mut ev, chat);
    for i in 0..REQUESTS {
        peer.send(format!("{i}\n").as_bytes());
    }
    run_until(&mut ev, "reading paused", |ev| {
        peer.pump_out();
        ev.dispatcher::<AsyncChat<Records>>(token)
            .unwrap()
            .is_reading_paused()
    });
    let mut max_pending = 0;
    for _ in 0..20 {
        ev.poll_once(Some(util::STEP)).unwrap();
        peer.pump_out();
        max_pending = max_pending.max(ev.channel(token).unwrap().pending_output());
    }
    // One read of 64 bytes can be at most 64 requests' worth of replies past the mark.
    assert!(
        max_pending <= 200_000 + 64 * REPLY,
        "queue grew to {max_pending}"
    );
    let answered = log.entries().len();
    assert!(
        answered < REQUESTS,
        "it kept reading: {answered} requests answered"
    );
    // Now read: reading resumes, and every reply comes, in order.
    run_until(&mut ev, "all replies", |_| {
        peer.pump();
        peer.got.len() >= REQUESTS * REPLY
    });
    assert_eq!(peer.got.len(), REQUESTS * REPLY);
    for (i, reply) in peer.got.chunks(REPLY).enumerate() {
        assert!(
            reply.iter().all(|&b| b == (i % 251) as u8),
            "reply {i} out of order"
        );
    }
    assert!(!ev
        .dispatcher::<AsyncChat<Records>>(token)
        .unwrap()
        .is_reading_paused());
}

/// One read full of requests with large replies: delivery stops at the high-water mark in
/// the middle of the read (the rest waits in the scanner) and resumes as the peer reads,
/// so the queue passes the mark by at most one reply; every reply comes, in order.
fn watermarks_stop_delivery_within_a_read(backend: Backend) {
    const REPLY: usize = 100_000;
    const REQUESTS: usize = 400; // about 1.6 KB of requests, 40 MB of replies
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let mut chat = Records::chat(&log, bytes(b"\n"), |ctx, record| {
        let n: usize = String::from_utf8_lossy(&record).parse().unwrap();
        ctx.push_vec(vec![(n % 251) as u8; REPLY])
    });
    chat.set_watermarks(Some((100_000, 200_000))).unwrap();
    let (token, mut peer) = connect(&mut ev, chat);
    let all: String = (0..REQUESTS).map(|i| format!("{i}\n")).collect();
    peer.send(all.as_bytes());
    run_until(&mut ev, "the requests read", |_| !log.entries().is_empty());
    let mut max_pending = 0;
    for _ in 0..20 {
        ev.poll_once(Some(util::STEP)).unwrap();
        max_pending = max_pending.max(ev.channel(token).unwrap().pending_output());
    }
    assert!(
        max_pending <= 200_000 + REPLY,
        "queue grew to {max_pending} within one read"
    );
    assert!(log.entries().len() < REQUESTS, "delivery did not stop");
    run_until(&mut ev, "all replies", |ev| {
        max_pending = max_pending.max(ev.channel(token).unwrap().pending_output());
        peer.pump();
        peer.got.len() >= REQUESTS * REPLY
    });
    assert!(
        max_pending <= 200_000 + REPLY,
        "queue grew to {max_pending}"
    );
    assert_eq!(peer.got.len(), REQUESTS * REPLY);
    for (i, reply) in peer.got.chunks(REPLY).enumerate() {
        assert!(
            reply.iter().all(|&b| b == (i % 251) as u8),
            "reply {i} out of order"
        );
    }
}

/// `close_when_done`: the reply is sent completely, then the channel closes; later input
/// is not delivered and `handle_close` runs once.
fn close_when_done_sends_then_closes(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let chat = Records::chat(&log, bytes(b"\n"), |ctx, record| {
        if record == b"quit" {
            ctx.push_vec(vec![b'.'; 3_000_000])?;
            ctx.push(b"bye\n")?;
            ctx.close_when_done();
        }
        Ok(())
    });
    let (token, mut peer) = connect(&mut ev, chat);
    peer.send(b"a\nquit\nb\n");
    run_until(&mut ev, "peer sees end of file", |_| {
        peer.pump();
        peer.eof
    });
    assert_eq!(peer.got.len(), 3_000_004);
    assert!(peer.got.ends_with(b"...bye\n"));
    assert!(!ev.contains(token));
    assert_eq!(log.entries(), ["record:a", "record:quit", "close"]);
}

/// Pushing after `close_when_done` is an error (routed to `handle_error`), never a
/// silent drop.
fn push_after_close_when_done_errors(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let chat = Records::chat(&log, bytes(b"\n"), |ctx, _| {
        ctx.push(b"last\n")?;
        ctx.close_when_done();
        let err = ctx.push(b"late\n").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = ctx
            .push_with_producer(SimpleProducer::new("late", 2)?)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        Err(err)
    });
    let (token, mut peer) = connect(&mut ev, chat);
    peer.send(b"x\n");
    run_until(&mut ev, "closed", |ev| !ev.contains(token));
    assert_eq!(log.entries(), ["record:x", "error:InvalidInput", "close"]);
}

/// Producers interleave with pushes in order; output goes out until the socket blocks.
fn producers_keep_order(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let chat = Records::chat(&log, bytes(b"\n"), |ctx, _| {
        ctx.push(b"<")?;
        ctx.push_with_producer(SimpleProducer::new(vec![b'p'; 1_000_000], 777)?)?;
        ctx.push(b"|")?;
        ctx.push_with_producer(SimpleProducer::new(&b"tail"[..], 1)?)?;
        ctx.push(b">")
    });
    let (_, mut peer) = connect(&mut ev, chat);
    peer.send(b"go\n");
    run_until(&mut ev, "all produced", |_| {
        peer.pump();
        peer.got.ends_with(b">")
    });
    let mut expect = b"<".to_vec();
    expect.extend_from_slice(&[b'p'; 1_000_000]);
    expect.extend_from_slice(b"|tail>");
    assert_eq!(peer.got, expect);
}

/// Closing inside `found_terminator` stops parsing at once: the rest of the same read is
/// never delivered, and `handle_close` does not run.
fn close_in_found_terminator_stops_parsing(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let chat = Records::chat(&log, bytes(b";"), |ctx, _| {
        ctx.close();
        assert!(ctx.is_closed());
        Ok(())
    });
    let (token, mut peer) = connect(&mut ev, chat);
    peer.send(b"a;b;c;");
    run_until(&mut ev, "closed", |ev| !ev.contains(token));
    assert_eq!(log.entries(), ["record:a"]);
    run_until(&mut ev, "peer sees end of file", |_| {
        peer.pump_in();
        peer.eof
    });
}

/// An outgoing connect runs the handler's `handle_connect`; the greeting goes out after.
fn outgoing_connect_runs_handle_connect(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut ch = Channel::create_socket(sockloop::Domain::IPV4, sockloop::Type::STREAM).unwrap();
    ch.connect(listener.local_addr().unwrap()).unwrap();
    ev.add(ch, Records::chat(&log, bytes(b"\n"), |_, _| Ok(())))
        .unwrap();
    let (mut server, _) = listener.accept().unwrap();
    run_until(&mut ev, "connected", |_| log.has("connect"));
    let mut buf = [0u8; 6];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello\n");
}

backend_tests!(
    switch_terminators_over_sockets,
    count_terminator_across_reads,
    record_too_long_closes_only_that_channel,
    watermarks_pause_and_resume_reading,
    watermarks_stop_delivery_within_a_read,
    close_when_done_sends_then_closes,
    push_after_close_when_done_errors,
    producers_keep_order,
    close_in_found_terminator_stops_parsing,
    outgoing_connect_runs_handle_connect,
);
