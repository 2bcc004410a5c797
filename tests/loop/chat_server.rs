//! The chat room example (`examples/chat_server/room.rs`), run in-process on every backend and
//! driven by several blocking socket clients on threads.

use crate::util;

#[path = "../../examples/chat_server/room.rs"]
#[allow(dead_code)]
mod room;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::example_proc::Server;
use crate::util::run_until;
use room::{Config, Room};
use sockloop::{Backend, Domain, EventLoop, Socket, Type};

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
    let mut ev = EventLoop::with_backend_and_state(backend, Room::new(config)).unwrap();
    let addr = room::listen(&mut ev, "127.0.0.1:0".parse().unwrap()).unwrap();
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
            assert_eq!(
                other.recv(),
                "* guest1 is now alice",
                "renames are announced"
            );
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
        stall_timeout: Some(Duration::from_secs(1)),
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

/// With no stall timeout, a member that does not read holds the room: the talker waits,
/// the member's queue stays under `max_queue` + one batch, nobody is cut; once it reads,
/// every line reaches it, in order.
fn room_waits_for_a_member_that_does_not_read(backend: Backend) {
    const LINES: usize = 100_000;
    const MAX_QUEUE: usize = 64 * 1024;
    let config = Config {
        max_queue: MAX_QUEUE,
        stall_timeout: None,
        ..Config::default()
    };
    let mut ev = EventLoop::with_backend_and_state(backend, Room::new(config)).unwrap();
    let addr = room::listen(&mut ev, "127.0.0.1:0".parse().unwrap()).unwrap();
    let connect = |ev: &mut EventLoop<Room>, rcvbuf: usize| {
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        sock.set_recv_buffer_size(rcvbuf).unwrap();
        sock.connect(&addr.into()).unwrap();
        let stream: TcpStream = sock.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let n = ev.state().tokens().len();
        run_until(ev, "joined", |ev| ev.state().tokens().len() == n + 1);
        stream
    };
    let talker = connect(&mut ev, 65536);
    let sleeper = connect(&mut ev, 4096);
    let filler = "s".repeat(93);
    let all: String = (0..LINES).map(|i| format!("{i:06} {filler}\n")).collect();
    let mut writer = talker.try_clone().unwrap();
    let flood = std::thread::spawn(move || writer.write_all(all.as_bytes()).unwrap());
    run_until(&mut ev, "the room filled up", |ev| {
        ev.state().is_congested()
    });
    let tokens = ev.state().tokens();
    for _ in 0..50 {
        ev.poll_once(Some(util::STEP)).unwrap();
        for &t in &tokens {
            let queued = ev.channel(t).map_or(0, |c| c.pending_output());
            assert!(queued <= MAX_QUEUE + 17 * 1024, "{queued} bytes queued");
        }
        assert!(
            ev.state().is_congested(),
            "the room stays full: talkers wait"
        );
    }
    assert_eq!(ev.state().tokens(), tokens, "nobody was cut");
    let read_all = std::thread::spawn(move || {
        let mut c = Client::from_stream(sleeper);
        for i in 0..LINES {
            let line = c.recv();
            assert!(line.starts_with(&format!("<guest1> {i:06} ")), "{line:.40}");
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !(read_all.is_finished() && flood.is_finished()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the room did not resume"
        );
        ev.poll_once(Some(util::STEP)).unwrap();
    }
    read_all.join().unwrap();
    flood.join().unwrap();
    drop(talker);
}

/// Two members flood each other before either reads: each is a congested member and a
/// waiting talker at once. Once they read, the room clears and both talkers resume (also
/// the one whose own drained queue cleared the room), and every line arrives, in order.
fn mutual_flood_resumes_both_talkers(backend: Backend) {
    const LINES: usize = 20_000;
    let config = Config {
        max_queue: 16 * 1024,
        stall_timeout: None,
        ..Config::default()
    };
    with_room(backend, config, |addr| {
        let clients = [Client::connect(addr), Client::connect(addr)];
        let filler = "f".repeat(60);
        let threads: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(me, mut c)| {
                let mut writer = c.writer.try_clone().unwrap();
                let all: String = (0..LINES).map(|i| format!("{i:06} {filler}\n")).collect();
                let flood = std::thread::spawn(move || writer.write_all(all.as_bytes()).unwrap());
                std::thread::spawn(move || {
                    // Let both queues fill before reading.
                    std::thread::sleep(Duration::from_millis(300));
                    let other = 2 - me; // guest1 / guest2
                    for i in 0..LINES {
                        let line = c.recv();
                        assert!(
                            line.starts_with(&format!("<guest{other}> {i:06} ")),
                            "{line:.40}"
                        );
                    }
                    flood.join().unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    });
}

backend_tests!(
    mutual_flood_resumes_both_talkers,
    room_waits_for_a_member_that_does_not_read,
    nick_who_say_quit,
    long_line_is_refused_and_closed,
    stalled_reader_is_cut_and_readers_get_everything
);

// ---- The binary, black-box ----------------------------------------------------------------

fn start_chat(extra: &[&str]) -> Server {
    let mut args = vec!["--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Server::start("chat_server", &args)
}

/// Text is neutralised, blank lines are ignored, nicks are ASCII and compared folded,
/// renames are announced.
#[test]
fn spoofing_is_neutralised() {
    let server = start_chat(&[]);
    let mut a = Client::connect(server.addr);
    let mut b = Client::connect(server.addr);
    a.writer
        .write_all(b"a\x1b[31mred\x07\x00\xff\xe2\x80\xaeevil\tx\r\r\n")
        .unwrap();
    assert_eq!(
        b.recv(),
        "<guest1> a\u{FFFD}[31mred\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}evil x\u{FFFD}"
    );
    for blank in ["   ", " \t ", "\u{200b}", "\u{202e}"] {
        a.send(blank);
    }
    a.send("marker");
    assert_eq!(b.recv(), "<guest1> marker", "blank lines are not relayed");
    a.send("/nick alice");
    assert_eq!(a.recv(), "ok");
    assert_eq!(b.recv(), "* guest1 is now alice");
    for spoof in [
        "alice\u{200b}",
        "\u{202e}ecila",
        "al\u{0456}ce",
        "1alice",
        "a b",
    ] {
        b.send(&format!("/nick {spoof}"));
        assert!(b.recv().starts_with("error: usage"), "{spoof:?} accepted");
    }
    for lookalike in ["ALICE", "a1ice", "AL1CE", "alIce"] {
        b.send(&format!("/nick {lookalike}"));
        assert_eq!(b.recv(), format!("error: {lookalike} is taken"));
    }
    a.send("/nick Alice");
    assert_eq!(a.recv(), "ok", "one's own name in another case");
    assert_eq!(b.recv(), "* alice is now Alice");
    b.send("/who");
    assert_eq!(b.recv(), "users: Alice guest2");
}

/// Lines sent just before end of file are relayed.
#[test]
fn lines_before_end_of_file_are_relayed() {
    let server = start_chat(&[]);
    let mut a = Client::connect(server.addr);
    let mut b = Client::connect(server.addr);
    a.writer.write_all(b"one\ntwo\n").unwrap();
    a.writer.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(b.recv(), "<guest1> one");
    assert_eq!(b.recv(), "<guest1> two");
    assert_eq!(a.drain_to_eof(), 0, "then the server closes");
}

/// `/who` replies beyond the client's credit wait for it: all are answered, the later
/// ones paced by `--who-rate`, and other clients are served meanwhile.
#[test]
fn who_is_rate_limited_per_client() {
    let server = start_chat(&["--who-rate", "100"]);
    let mut spammer = Client::connect(server.addr);
    let mut other = Client::connect(server.addr);
    let start = std::time::Instant::now();
    // 400 bytes of credit at once, 22 bytes per reply: 18 at once, 7 more at 100 B/s.
    spammer
        .writer
        .write_all("/who\n".repeat(25).as_bytes())
        .unwrap();
    other.send("/nick other");
    assert_eq!(other.recv(), "ok");
    let (mut answered, mut announced_at) = (0, None);
    while answered < 25 {
        let line = spammer.recv();
        if line == "* guest2 is now other" {
            announced_at = Some(answered);
        } else {
            assert!(line.starts_with("users: "), "{line}");
            answered += 1;
        }
    }
    assert!(
        announced_at.is_some_and(|n| n < 25),
        "the other client's rename came while the spammer waited: {announced_at:?}"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(1000),
        "7 replies over credit at 100 B/s came after {:?}",
        start.elapsed()
    );
}

/// Idle means nothing either way: a member that only receives is kept; once the room is
/// silent, members are cut after the idle timeout, not before.
#[test]
fn listening_member_is_not_idle() {
    let server = start_chat(&["--idle-timeout", "2"]);
    let mut talker = Client::connect(server.addr);
    let mut listener = Client::connect(server.addr);
    for i in 0..16 {
        talker.send(&format!("line {i}"));
        assert_eq!(listener.recv(), format!("<guest1> line {i}"));
        std::thread::sleep(Duration::from_millis(250)); // pacing: 4 s in all
    }
    let silent_since = std::time::Instant::now();
    assert_eq!(listener.drain_to_eof(), 0);
    assert!(
        silent_since.elapsed() >= Duration::from_millis(1900),
        "cut after {:?}",
        silent_since.elapsed()
    );
    assert_eq!(talker.drain_to_eof(), 0);
}

/// A reader at `rate` bytes per second (None: as fast as it can), with a small buffer.
fn paced_reader(
    addr: SocketAddr,
    rate: Option<usize>,
    lines: usize,
    from: &'static str,
) -> JoinHandle<Client> {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(8192).unwrap();
    sock.connect(&addr.into()).unwrap();
    let mut c = Client::from_stream(sock.into());
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let mut bytes = 0;
        for i in 0..lines {
            let line = c.recv();
            assert!(
                line.starts_with(&format!("<{from}> {i:06} ")),
                "line {i}: {line:.40}"
            );
            bytes += line.len() + 1;
            if let Some(rate) = rate {
                let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
                if let Some(ahead) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(ahead); // pacing, not an oracle
                }
            }
        }
        c
    })
}

/// A flooding talker is slowed to the pace of the slowest reader: readers at several
/// speeds all get every line, and none is cut. (Whether the room fills up here depends on
/// the kernel's socket buffers; `room_waits_for_a_member_that_does_not_read` makes it.)
fn flood_is_throttled_not_cut(backend: Backend) {
    const LINES: usize = 20_000;
    let server = start_chat(&[
        "--backend",
        backend.name(),
        "--max-queue",
        "65536",
        "--stall-timeout",
        "5",
    ]);
    let mut flooder = Client::connect(server.addr);
    let readers: Vec<_> = [None, Some(5_000_000), Some(2_000_000)]
        .into_iter()
        .map(|rate| paced_reader(server.addr, rate, LINES, "guest1"))
        .collect();
    let filler = "f".repeat(93);
    let mut all = String::new();
    for i in 0..LINES {
        all.push_str(&format!("{i:06} {filler}\n"));
    }
    flooder.writer.write_all(all.as_bytes()).unwrap();
    // Kept open until the /who.
    let _readers: Vec<Client> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    flooder.send("/who");
    assert_eq!(flooder.recv(), "users: guest1 guest2 guest3 guest4");
    assert!(!server.stderr().contains("disconnecting"));
}

/// One write of 32,768 one-byte lines to 50 members: every member gets every line, in
/// order; another client is answered meanwhile; SIGTERM still exits 0.
#[test]
fn fan_out_of_one_big_write() {
    const MEMBERS: usize = 50;
    const LINES: usize = 32_768;
    let server = start_chat(&[]);
    let mut talker = Client::connect(server.addr);
    let mut other = Client::connect(server.addr);
    let members: Vec<_> = (0..MEMBERS)
        .map(|_| {
            let mut c = Client::connect(server.addr);
            std::thread::spawn(move || {
                let mut renamed = false;
                let mut i = 0;
                while i < LINES {
                    let line = c.recv();
                    if line == "* guest2 is now other" && !renamed {
                        renamed = true; // in the middle of the burst, once
                        continue;
                    }
                    let letter = (b'a' + (i % 26) as u8) as char;
                    assert_eq!(line, format!("<guest1> {letter}"));
                    i += 1;
                }
            })
        })
        .collect();
    let burst: String = (0..LINES)
        .map(|i| format!("{}\n", (b'a' + (i % 26) as u8) as char))
        .collect();
    talker.writer.write_all(burst.as_bytes()).unwrap();
    other.send("/nick other");
    loop {
        let line = other.recv();
        if line == "ok" {
            break;
        }
        assert!(line.starts_with("<guest1> "), "{line}");
    }
    for m in members {
        m.join().unwrap();
    }
    server.signal(rustix::process::Signal::TERM);
    let mut server = server;
    assert!(server.wait_exit(Duration::from_secs(5)).success());
}

mod flood {
    use super::*;
    backend_tests!(flood_is_throttled_not_cut);
}
