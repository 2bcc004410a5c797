//! End of input does not throw away queued output: a client that sends N bytes and then
//! shuts down its writing side gets exactly N bytes back, from the README's plain echo
//! handler, from a chat-layer echo, and from the echo example; and a chat-layer reply
//! queued with `close_when_done` before the client's end of file is sent whole. Small
//! socket buffers, so the queue really fills.

use crate::example_proc;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::pattern;
use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop, SimpleProducer, SockAddr};

const SMALL_BUFFER: usize = 8 * 1024;
const BIG: usize = 50_000_000;

/// The README's echo handler, unchanged: it relies on the default `handle_eof`.
struct ReadmeEcho;

impl Dispatcher for ReadmeEcho {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        let n = ctx.recv(&mut buf)?;
        ctx.push(&buf[..n])
    }
}

/// A chat-layer echo: every piece of input goes straight back.
struct ChatEcho;

impl ChatHandler for ChatEcho {
    fn collect_incoming_data(&mut self, ctx: &mut ChatContext<'_>, data: &[u8]) -> io::Result<()> {
        ctx.push(data)
    }
    fn found_terminator(&mut self, _: &mut ChatContext<'_>) -> io::Result<()> {
        Ok(())
    }
}

/// An HTTP/1.0-style responder: on the blank line ending the request, queues a
/// `size`-byte body through a producer and `close_when_done`.
struct Responder {
    size: usize,
}

impl ChatHandler for Responder {
    fn collect_incoming_data(&mut self, _: &mut ChatContext<'_>, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn found_terminator(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
        ctx.push_with_producer(SimpleProducer::new(pattern(self.size), 65536)?)?;
        ctx.close_when_done();
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Plain,
    Chat,
    Http(usize),
}

struct Server(Kind);

impl Dispatcher for Server {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        channel: Channel,
        _: SockAddr,
    ) -> io::Result<()> {
        let ch = channel;
        match self.0 {
            Kind::Plain => ctx.handle().add(ch, ReadmeEcho)?,
            Kind::Chat => ctx.handle().add(ch, AsyncChat::new(ChatEcho))?,
            Kind::Http(size) => {
                let mut chat = AsyncChat::new(Responder { size });
                chat.set_terminator(Terminator::Bytes(b"\r\n\r\n".to_vec()))?;
                ctx.handle().add(ch, chat)?
            }
        };
        ctx.close(); // one client per test: the loop ends when it is done
        Ok(())
    }
}

/// How the client reads the replies.
#[derive(Clone, Copy, PartialEq)]
enum Reader {
    /// While sending.
    Concurrent,
    /// Only after sending everything and shutting down: the server must queue.
    AfterSend,
    /// While sending, but slowly, so the server's queue is full when end of file comes.
    Slow,
}

/// A client with small buffers: one thread sends `request` then shuts down its writing
/// side; this thread reads until end of file. Returns what came back.
fn client(addr: SocketAddr, request: Vec<u8>, reader: Reader) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.set_send_buffer_size(SMALL_BUFFER).unwrap();
        sock.set_recv_buffer_size(SMALL_BUFFER).unwrap();
        sock.connect(&addr.into()).unwrap();
        let stream: TcpStream = sock.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let sender = thread::spawn(move || {
            writer.write_all(&request).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let mut sender = Some(sender);
        if reader == Reader::AfterSend {
            sender.take().unwrap().join().unwrap();
        }
        let mut got = Vec::new();
        let mut stream = stream;
        let mut buf = vec![0u8; SMALL_BUFFER];
        loop {
            let n = stream.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if reader == Reader::Slow {
                thread::sleep(Duration::from_micros(200));
            }
        }
        if let Some(sender) = sender {
            sender.join().unwrap();
        }
        got
    })
}

fn serve(backend: Backend, kind: Kind, request: Vec<u8>, reader: Reader) -> Vec<u8> {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    // Small buffers set before listen, so accepted sockets start with them (shrinking a
    // live connection's receive buffer can stall TCP in zero-window probes).
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_send_buffer_size(SMALL_BUFFER).unwrap();
    sock.set_recv_buffer_size(SMALL_BUFFER).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    sock.bind(&any.into()).unwrap();
    sock.listen(8).unwrap();
    let listener = Channel::from_socket(sock).unwrap();
    let addr = listener.local_inet_addr().unwrap();
    ev.add(listener, Server(kind)).unwrap();
    let got = client(addr, request, reader);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ev.is_empty() {
        assert!(Instant::now() < deadline, "the server never finished");
        ev.poll_once(Some(Duration::from_millis(50))).unwrap();
    }
    got.join().unwrap()
}

fn echoes_everything(backend: Backend, kind: Kind) {
    let cases = [
        (0, Reader::Concurrent),
        (1, Reader::Concurrent),
        (100_003, Reader::AfterSend),
        (4_000_000, Reader::Slow),
        (BIG, Reader::Concurrent),
    ];
    for (n, reader) in cases {
        let data = pattern(n);
        let got = serve(backend, kind, data.clone(), reader);
        assert_eq!(
            got.len(),
            n,
            "{backend}: bytes echoed after the client's EOF"
        );
        assert!(
            got == data,
            "{backend}: the echo differs from what was sent"
        );
    }
}

fn eof_flushes_queued_output_plain(backend: Backend) {
    echoes_everything(backend, Kind::Plain);
}

fn eof_flushes_queued_output_chat(backend: Backend) {
    echoes_everything(backend, Kind::Chat);
}

fn eof_after_request_keeps_a_close_when_done_reply_whole(backend: Backend) {
    let size = 20_000_000;
    let got = serve(
        backend,
        Kind::Http(size),
        b"GET / HTTP/1.0\r\n\r\n".to_vec(),
        Reader::AfterSend,
    );
    assert_eq!(got.len(), size, "{backend}");
    assert!(got == pattern(size), "{backend}: the body differs");
}

backend_tests!(
    eof_flushes_queued_output_plain,
    eof_flushes_queued_output_chat,
    eof_after_request_keeps_a_close_when_done_reply_whole,
);

/// Rust code without white space, comments or trailing commas: two snippets that differ
/// only in formatting compare equal.
fn code_only(text: &str) -> String {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<String>()
        .split_whitespace()
        .collect();
    code.replace(",)", ")")
}

/// The echo example's handlers (`Server` and `Echo`) are the README's, and the crate
/// docs', so the README's first command runs the code it shows.
#[test]
fn echo_example_handlers_are_the_readmes() {
    let root = env!("CARGO_MANIFEST_DIR");
    let example = std::fs::read_to_string(format!("{root}/examples/echo_server.rs")).unwrap();
    let start = example
        .find("struct Server;")
        .expect("struct Server in the example");
    let echo = example
        .find("impl Dispatcher for Echo")
        .expect("impl Dispatcher for Echo");
    let end = echo + example[echo..].find("\n}\n").expect("the end of that impl") + 2;
    let handlers = code_only(&example[start..end]);
    assert!(handlers.ends_with("ctx.push(&buf[..n])}}"), "{handlers}");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    assert!(
        code_only(&readme).contains(&handlers),
        "README.md differs from the example"
    );
    let lib = std::fs::read_to_string(format!("{root}/src/lib.rs")).unwrap();
    let lib: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        code_only(&lib).contains(&handlers),
        "the crate docs differ from the example"
    );
}

/// The echo example (the README's first command) on every backend, black box.
#[test]
fn echo_example_returns_everything_to_a_half_closed_client() {
    for backend in Backend::ALL {
        let server = example_proc::Server::start(
            "echo_server",
            &["--addr", "127.0.0.1:0", "--backend", backend.name()],
        );
        let addr = server.addr;
        for (n, reader) in [(4_000_000, Reader::Slow), (BIG, Reader::Concurrent)] {
            let data = pattern(n);
            let got = client(addr, data.clone(), reader).join().unwrap();
            assert_eq!(got.len(), n, "{backend}");
            assert!(got == data, "{backend}: the echo differs");
        }
    }
}
