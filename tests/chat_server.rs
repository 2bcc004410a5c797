//! The chat room example (`examples/chat_server/room.rs`), run in-process on every backend and
//! driven by several blocking socket clients on threads.

mod util;

#[path = "../examples/chat_server/room.rs"]
#[allow(dead_code)]
mod chat_server;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use chat_server::Config;
use sockloop::{Backend, Domain, EventLoop, Socket, Type};
use util::run_until;

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(addr).unwrap())
    }

    fn from_stream(stream: TcpStream) -> Client {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut c = Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        let welcome = c.recv();
        assert!(welcome.starts_with("welcome"), "{welcome:?}");
        c
    }

    fn send(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).unwrap();
        self.writer.write_all(b"\n").unwrap();
    }

    fn recv(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).unwrap();
        assert!(n > 0, "unexpected end of file");
        assert!(line.ends_with('\n'), "{line:?}");
        line.pop();
        line
    }

    /// Reads to end of file (or reset); returns how many bytes came first.
    fn drain_to_eof(&mut self) -> usize {
        let mut total = 0;
        let mut buf = [0u8; 65536];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return total,
                Ok(n) => total += n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return total,
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }
}

/// Runs the room on `backend` until `clients` (a thread driving sockets) finishes.
fn with_room(backend: Backend, config: Config, clients: impl FnOnce(SocketAddr) + Send + 'static) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let addr = chat_server::listen(&mut ev, "127.0.0.1:0".parse().unwrap(), config).unwrap();
    assert_ne!(addr.port(), 0);
    let handle: JoinHandle<()> = std::thread::spawn(move || clients(addr));
    run_until(&mut ev, "the clients' script finished", |_| {
        handle.is_finished()
    });
    if let Err(panic) = handle.join() {
        std::panic::resume_unwind(panic);
    }
}

fn nick_who_say_quit(backend: Backend) {
    with_room(backend, Config::default(), |addr| {
        let mut a = Client::connect(addr);
        let mut b = Client::connect(addr);
        let mut c = Client::connect(addr);
        a.send("/nick alice");
        assert_eq!(a.recv(), "ok");
        for other in [&mut b, &mut c] {
            assert_eq!(other.recv(), "* guest1 is now alice", "renames are announced");
        }
        b.writer.write_all(b"/nick bob\r\n").unwrap();
        assert_eq!(b.recv(), "ok");
        assert_eq!(a.recv(), "* guest2 is now bob");
        assert_eq!(c.recv(), "* guest2 is now bob");
        c.send("/who");
        assert_eq!(c.recv(), "users: alice bob guest3");
        b.send("/nick alice");
        assert!(b.recv().starts_with("error"), "a taken name is refused");
        a.send("hello\r");
        a.send("");
        a.send("second line");
        for client in [&mut b, &mut c] {
            assert_eq!(client.recv(), "<alice> hello");
            assert_eq!(client.recv(), "<alice> second line");
        }
        c.send("from c");
        assert_eq!(a.recv(), "<guest3> from c");
        assert_eq!(b.recv(), "<guest3> from c");
        c.send("/quit");
        assert_eq!(c.recv(), "bye");
        assert_eq!(c.drain_to_eof(), 0);
        b.send("/who");
        assert_eq!(b.recv(), "users: alice bob");
        // A line split over many writes is one line.
        for piece in ["sp", "li", "t\r", "\n"] {
            a.writer.write_all(piece.as_bytes()).unwrap();
            a.writer.flush().unwrap();
        }
        assert_eq!(b.recv(), "<alice> split");
        a.send("/quit");
        assert_eq!(a.recv(), "bye");
        b.send("/who");
        assert_eq!(b.recv(), "users: bob");
    });
}

fn long_line_is_refused_and_closed(backend: Backend) {
    let config = Config {
        max_line: 100,
        ..Config::default()
    };
    with_room(backend, config, |addr| {
        let mut a = Client::connect(addr);
        let mut b = Client::connect(addr);
        // Exactly at the limit (the \r does not count) is fine.
        a.send(&format!("{}\r", "x".repeat(100)));
        assert_eq!(b.recv(), format!("<guest1> {}", "x".repeat(100)));
        a.send(&"y".repeat(101));
        assert_eq!(a.recv(), "error: line too long");
        assert_eq!(a.drain_to_eof(), 0);
        // No terminator at all: the limit still fires.
        let mut c = Client::connect(addr);
        c.writer.write_all(&[b'z'; 10_000]).unwrap();
        assert_eq!(c.recv(), "error: line too long");
        assert_eq!(c.drain_to_eof(), 0);
        b.send("/who");
        assert_eq!(b.recv(), "users: guest2");
    });
}

/// A member that stops reading holds the room up (talkers are not read from), and is cut
/// after the stall timeout; a reader that keeps up gets every line, in order.
fn stalled_reader_is_cut_and_readers_get_everything(backend: Backend) {
    const LINES: usize = 10_000;
    const LEN: usize = 1000;
    let config = Config {
        max_queue: 64 * 1024,
        stall_timeout: Some(Duration::from_millis(500)),
        ..Config::default()
    };
    with_room(backend, config, |addr| {
        // The stalled client: a small receive buffer, and it does not read.
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        sock.connect(&addr.into()).unwrap();
        let mut slow = Client::from_stream(sock.into());
        let mut reader = Client::connect(addr);
        let read_all = std::thread::spawn(move || {
            for i in 0..LINES {
                let line = reader.recv();
                assert!(
                    line.starts_with(&format!("<guest3> {i:05} ")),
                    "line {i}: {:.40}",
                    line
                );
                assert_eq!(line.len(), "<guest3> ".len() + LEN);
            }
            assert_eq!(reader.recv(), "<guest3> after");
            reader.send("/who");
            assert_eq!(reader.recv(), "users: guest2 guest3");
        });
        let mut sender = Client::connect(addr);
        let filler = "m".repeat(LEN - 6);
        let mut all = String::new();
        for i in 0..LINES {
            all.push_str(&format!("{i:05} {filler}\n"));
        }
        // Blocks while the room is held up, until the stalled client is cut.
        sender.writer.write_all(all.as_bytes()).unwrap();
        let got = slow.drain_to_eof();
        assert!(
            got < LINES * LEN,
            "the stalled client got everything ({got} bytes)"
        );
        sender.send("/who");
        assert_eq!(sender.recv(), "users: guest2 guest3");
        sender.send("after");
        read_all.join().unwrap();
    });
}

backend_tests!(
    nick_who_say_quit,
    long_line_is_refused_and_closed,
    stalled_reader_is_cut_and_readers_get_everything
);
