//! End of file with a hang-up while input is still queued: a peer writes a lot and closes
//! completely; a reader that takes only 1000 bytes per `handle_read` still gets every
//! byte, in order, and then exactly one `handle_close`, after the data.
//!
//! A Unix stream socket and a pipe report `POLLHUP` as soon as the peer is gone; a TCP
//! socket does once both directions are shut, so the server shuts down its own side first.

use std::cell::RefCell;
use std::io::{self, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::thread;

use crate::util::{pattern, run_until, step, tcp_pair, Log};
use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop, Token};

/// Reads at most 1000 bytes per call; records close and anything after it.
struct Slow {
    log: Log,
    got: Rc<RefCell<Vec<u8>>>,
    closed: bool,
}

impl Dispatcher for Slow {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        if self.closed {
            self.log.push("read after close");
        }
        let mut buf = [0u8; 1000];
        let n = ctx.recv(&mut buf)?;
        self.got.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log.push(format!("error:{err}"));
        Err(err)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.closed = true;
        self.log
            .push(format!("close after {} bytes", self.got.borrow().len()));
        ctx.close();
        Ok(())
    }
}

/// How the peer is connected to the reading channel.
#[derive(Clone, Copy)]
enum Transport {
    Unix,
    Tcp,
    Pipe,
}

/// Builds the reading channel and a writer the peer thread owns.
fn connect(transport: Transport) -> (Channel, Box<dyn Write + Send>) {
    match transport {
        Transport::Unix => {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            (Channel::from_socket(a).unwrap(), Box::new(b))
        }
        Transport::Tcp => {
            let (server, client) = tcp_pair();
            server.shutdown(Shutdown::Write).unwrap();
            (Channel::from_socket(server).unwrap(), Box::new(client))
        }
        Transport::Pipe => {
            let (reader, writer) = std::io::pipe().unwrap();
            (Channel::from_fd(&reader).unwrap(), Box::new(writer))
        }
    }
}

fn add(ev: &mut EventLoop, ch: Channel) -> (Token, Log, Rc<RefCell<Vec<u8>>>) {
    let log = Log::default();
    let got = Rc::new(RefCell::new(Vec::new()));
    let token = ev
        .add(
            ch,
            Slow {
                log: log.clone(),
                got: got.clone(),
                closed: false,
            },
        )
        .unwrap();
    (token, log, got)
}

fn check(ev: &mut EventLoop, token: Token, log: &Log, got: &RefCell<Vec<u8>>, data: &[u8]) {
    run_until(ev, "the reader closed", |ev| !ev.contains(token));
    step(ev, 3);
    assert_eq!(got.borrow().len(), data.len(), "every byte was delivered");
    assert!(*got.borrow() == data, "the bytes arrived in order");
    assert_eq!(log.entries(), [format!("close after {} bytes", data.len())]);
}

/// The peer writes 1 MiB (more than any buffer holds) from a thread and closes; the end
/// of the data is still queued when the hang-up arrives.
fn streamed(backend: Backend, transport: Transport) {
    let data = pattern(1 << 20);
    let (ch, mut writer) = connect(transport);
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (token, log, got) = add(&mut ev, ch);
    let sent = data.clone();
    let peer = thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        drop(writer);
    });
    check(&mut ev, token, &log, &got, &data);
    peer.join().unwrap();
}

/// All the data and the hang-up are there before the first iteration.
fn queued(backend: Backend, transport: Transport) {
    let data = pattern(32 * 1024);
    let (ch, mut writer) = connect(transport);
    writer.write_all(&data).unwrap();
    drop(writer);
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (token, log, got) = add(&mut ev, ch);
    check(&mut ev, token, &log, &got, &data);
}

fn unix_streamed(backend: Backend) {
    streamed(backend, Transport::Unix);
}

fn tcp_streamed(backend: Backend) {
    streamed(backend, Transport::Tcp);
}

fn pipe_streamed(backend: Backend) {
    streamed(backend, Transport::Pipe);
}

fn unix_queued(backend: Backend) {
    queued(backend, Transport::Unix);
}

fn tcp_queued(backend: Backend) {
    queued(backend, Transport::Tcp);
}

fn pipe_queued(backend: Backend) {
    queued(backend, Transport::Pipe);
}

backend_tests!(
    unix_streamed,
    tcp_streamed,
    pipe_streamed,
    unix_queued,
    tcp_queued,
    pipe_queued
);
