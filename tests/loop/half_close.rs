//! Half-close: `handle_eof` runs once when the peer shuts down its writing side; a
//! dispatcher that overrides it can still reply in full before closing; the default closes
//! (asyncore); after end of file the channel is not polled for input; a channel that shuts
//! down its own writing side still reads what the peer sends.

use crate::util;

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::util::{
    listener, pattern, read_available, run_until, step, tcp_pair, unix_channel, write_available,
    Echo, Log,
};
use sockloop::{Backend, Channel, Context, Dispatcher, Domain, EventLoop, SockAddr, Type};

const MIB: usize = 1 << 20;

/// Reads a request until end of file, then replies with 1 MiB and closes when done.
struct Replier {
    log: Log,
    request: Vec<u8>,
}

impl Dispatcher for Replier {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        assert!(!ctx.is_eof(), "no read event after end of file");
        let mut buf = [0u8; 4096];
        let n = ctx.recv(&mut buf)?;
        self.request.extend_from_slice(&buf[..n]);
        self.log
            .push(if ctx.is_eof() { "read:eof" } else { "read" });
        Ok(())
    }
    fn handle_eof(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("eof");
        assert!(ctx.is_eof());
        assert_eq!(self.request, b"the whole request");
        ctx.push_vec(pattern(MIB))?;
        ctx.close_when_done();
        Ok(())
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push(format!("close:{}", ctx.pending_output()));
        ctx.close();
        Ok(())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log.push(format!("error:{err}"));
        Err(err)
    }
}

struct ReplyServer {
    log: Log,
}

impl Dispatcher for ReplyServer {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        channel: Channel,
        _: SockAddr,
    ) -> io::Result<()> {
        ctx.handle().add(
            channel,
            Replier {
                log: self.log.clone(),
                request: Vec::new(),
            },
        )?;
        Ok(())
    }
}

/// A std client sends a request and shuts down its writing side; the server's
/// `handle_eof` pushes a 1 MiB reply and closes when done; the client gets every byte,
/// then end of file. `handle_eof` runs once, `handle_close` once after it.
fn reply_after_peer_half_close(backend: Backend) {
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (ch, addr) = listener("127.0.0.1:0");
    ev.add(ch, ReplyServer { log: log.clone() }).unwrap();
    let addr = addr.as_socket().unwrap();
    let (tx, rx) = mpsc::channel();
    let client = thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"the whole ").unwrap();
        thread::sleep(Duration::from_millis(5));
        s.write_all(b"request").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        let r = s.read_to_end(&mut got).map(|_| got);
        let _ = tx.send(());
        r
    });
    run_until(&mut ev, "the client read to end of file", |_| {
        rx.try_recv().is_ok()
    });
    let got = client.join().unwrap().expect("the client's read");
    assert_eq!(got.len(), MIB, "the full reply");
    assert!(got == pattern(MIB), "byte-exact");
    step(&mut ev, 3);
    let entries = log.entries();
    let tail: Vec<&str> = entries
        .iter()
        .map(String::as_str)
        .filter(|e| !e.starts_with("read"))
        .collect();
    assert_eq!(tail, ["eof", "close:0"], "{entries:?}");
    assert_eq!(log.count("read:eof"), 1, "{entries:?}");
    assert_eq!(entries.last().unwrap(), "close:0");
    assert_eq!(ev.len(), 1, "only the listener is left");
}

/// The client side in the loop too: it sends a request from `handle_connect`, shuts down
/// its writing side, reads the reply and sees `handle_eof` once when the server closes.
struct Requester {
    log: Log,
    got: Vec<u8>,
}

impl Dispatcher for Requester {
    fn handle_connect(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        ctx.push(b"the whole request")?;
        assert_eq!(ctx.pending_output(), 0, "a small request goes out at once");
        ctx.shutdown(Shutdown::Write)?;
        self.log.push("client:sent");
        Ok(())
    }
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 65536];
        let n = ctx.recv(&mut buf)?;
        self.got.extend_from_slice(&buf[..n]);
        Ok(())
    }
    fn handle_eof(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push(format!("client:eof:{}", self.got.len()));
        ctx.request_close();
        Ok(())
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("client:close");
        assert!(self.got == pattern(MIB), "the reply, byte-exact");
        ctx.close();
        Ok(())
    }
}

fn both_ends_in_the_loop(backend: Backend) {
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (ch, addr) = listener("127.0.0.1:0");
    ev.add(ch, ReplyServer { log: log.clone() }).unwrap();
    let mut client = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    client.connect(addr).unwrap();
    let token = ev
        .add(
            client,
            Requester {
                log: log.clone(),
                got: Vec::new(),
            },
        )
        .unwrap();
    run_until(&mut ev, "both sides closed", |ev| {
        !ev.contains(token) && log.has("close:0")
    });
    step(&mut ev, 3);
    let entries = log.entries();
    let want = [
        "client:sent".to_string(),
        format!("client:eof:{MIB}"),
        "client:close".to_string(),
    ];
    let client_side: Vec<String> = entries
        .iter()
        .filter(|e| e.starts_with("client:"))
        .cloned()
        .collect();
    assert_eq!(client_side, want);
    assert_eq!(log.count("eof"), 1, "{entries:?}");
    assert_eq!(log.count("close:0"), 1, "{entries:?}");
    assert!(!entries.iter().any(|e| e.contains("error")), "{entries:?}");
}

/// Without an override, end of file closes the channel (asyncore): the data before it
/// is echoed, then `handle_close` runs once.
fn default_eof_closes(backend: Backend) {
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (server, mut client) = tcp_pair();
    let token = ev
        .add(
            Channel::from_socket(server).unwrap(),
            Echo {
                log: log.clone(),
                name: "conn",
            },
        )
        .unwrap();
    client.write_all(b"last words").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    client.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut gone = false;
    run_until(&mut ev, "the echo and the close", |ev| {
        gone |= read_available(&mut client, &mut got);
        gone && !ev.contains(token)
    });
    assert_eq!(got, b"last words");
    step(&mut ev, 3);
    assert_eq!(log.entries(), ["conn:read", "conn:close"]);
}

/// Keeps the channel open at end of file and counts reads.
struct KeepOpen {
    reads: Rc<Cell<usize>>,
    eofs: Rc<Cell<usize>>,
    closes: Rc<Cell<usize>>,
}

impl Dispatcher for KeepOpen {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.reads.set(self.reads.get() + 1);
        let mut buf = [0u8; 64];
        ctx.recv(&mut buf)?;
        Ok(())
    }
    fn handle_eof(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        self.eofs.set(self.eofs.get() + 1);
        Ok(())
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.closes.set(self.closes.get() + 1);
        ctx.close();
        Ok(())
    }
}

/// After end of file the channel is not watched for input: no read event (a busy loop)
/// across several iterations; it stays open and can still send.
fn no_input_polling_after_eof(backend: Backend) {
    for unix in [true, false] {
        let mut ev = EventLoop::with_backend(backend).unwrap();
        let (reads, eofs, closes) = (Rc::default(), Rc::default(), Rc::default());
        let (ch, mut peer): (Channel, Box<dyn ReadWriteShutdown>) = if unix {
            let (ch, peer) = unix_channel();
            (ch, Box::new(peer))
        } else {
            let (server, client) = tcp_pair();
            client.set_nonblocking(true).unwrap();
            (Channel::from_socket(server).unwrap(), Box::new(client))
        };
        let token = ev
            .add(
                ch,
                KeepOpen {
                    reads: Rc::clone(&reads),
                    eofs: Rc::clone(&eofs),
                    closes: Rc::clone(&closes),
                },
            )
            .unwrap();
        peer.write_all(b"x").unwrap();
        peer.shut_write();
        run_until(&mut ev, "end of file", |_| eofs.get() == 1);
        let reads_at_eof = reads.get();
        for _ in 0..10 {
            let n = ev.poll_once(Some(util::STEP)).unwrap();
            assert_eq!(n, 0, "nothing is dispatched after end of file");
        }
        assert_eq!(reads.get(), reads_at_eof, "no read after end of file");
        assert_eq!((eofs.get(), closes.get()), (1, 0));
        assert!(ev.channel(token).unwrap().is_eof());
        // The writing side still works.
        ev.channel_mut(token).unwrap().push(b"late reply").unwrap();
        let mut got = Vec::new();
        run_until(&mut ev, "the late reply", |_| {
            read_available(&mut peer, &mut got);
            got.len() >= 10
        });
        assert_eq!(got, b"late reply");
        assert_eq!(reads.get(), reads_at_eof);
        // Closing after the fact: request_close from outside a hook runs handle_close.
        ev.channel_mut(token).unwrap().request_close();
        run_until(&mut ev, "closed", |ev| !ev.contains(token));
        assert_eq!((eofs.get(), closes.get()), (1, 1));
    }
}

trait ReadWriteShutdown: Read + Write {
    fn shut_write(&self);
}

impl ReadWriteShutdown for std::net::TcpStream {
    fn shut_write(&self) {
        self.shutdown(Shutdown::Write).unwrap();
    }
}

impl ReadWriteShutdown for std::os::unix::net::UnixStream {
    fn shut_write(&self) {
        self.shutdown(Shutdown::Write).unwrap();
    }
}

/// Records everything it reads; closes on end of file (default `handle_eof`).
struct Collector {
    got: Rc<std::cell::RefCell<Vec<u8>>>,
    log: Log,
}

impl Dispatcher for Collector {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 65536];
        let n = ctx.recv(&mut buf)?;
        self.got.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(())
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("close");
        ctx.close();
        Ok(())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log.push(format!("error:{err}"));
        Err(err)
    }
}

/// The server half-closes: after its `shutdown(Write)` the client sees end of file but
/// still sends, and the server reads all of it; the client's own shutdown then closes the
/// server's channel once.
fn server_half_close_still_reads(backend: Backend) {
    let log = Log::default();
    let got = Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (server, mut client) = tcp_pair();
    let token = ev
        .add(
            Channel::from_socket(server).unwrap(),
            Collector {
                got: got.clone(),
                log: log.clone(),
            },
        )
        .unwrap();
    ev.channel_mut(token)
        .unwrap()
        .push(b"goodbye from the server")
        .unwrap();
    ev.channel_mut(token)
        .unwrap()
        .shutdown(Shutdown::Write)
        .unwrap();
    assert!(
        !ev.channel(token).unwrap().is_eof(),
        "our own shutdown is no EOF"
    );
    client.set_nonblocking(true).unwrap();
    let mut from_server = Vec::new();
    run_until(&mut ev, "end of file at the client", |_| {
        read_available(&mut client, &mut from_server)
    });
    assert_eq!(from_server, b"goodbye from the server");
    // The client keeps talking: 256 KiB.
    let data = pattern(256 * 1024);
    let mut sent = 0;
    run_until(&mut ev, "the server read everything", |_| {
        write_available(&mut client, &data, &mut sent);
        got.borrow().len() == data.len()
    });
    assert!(*got.borrow() == data, "byte-exact");
    assert!(ev.contains(token), "still open");
    assert!(log.entries().is_empty(), "{:?}", log.entries());
    client.shutdown(Shutdown::Write).unwrap();
    run_until(&mut ev, "the close", |ev| !ev.contains(token));
    step(&mut ev, 3);
    assert_eq!(log.entries(), ["close"]);
}

backend_tests!(
    reply_after_peer_half_close,
    both_ends_in_the_loop,
    default_eof_closes,
    no_input_polling_after_eof,
    server_half_close_still_reads,
);
