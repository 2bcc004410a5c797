//! A hang-up is routed the same way on every backend: a reset reaches the write event and
//! one `handle_close` even when the read hook consumes nothing (no busy loop), and end of
//! file on a pipe goes to `handle_eof` before `handle_close`.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::util::{run_until, Log};
use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop, Token};

/// Sends on every write event and keeps asyncore's default `handle_read` (consumes
/// nothing), recording hooks once `armed`.
struct Sender {
    log: Log,
    reads: std::rc::Rc<std::cell::Cell<usize>>,
    consume: bool,
}

impl Dispatcher for Sender {
    fn writable(&self, _: &Channel) -> bool {
        true
    }
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.reads.set(self.reads.get() + 1);
        self.log.push("read");
        if self.consume {
            let mut buf = [0u8; 4096];
            ctx.recv(&mut buf)?;
        }
        Ok(())
    }
    fn handle_write(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("write");
        ctx.send(&[7u8; 1024])?;
        Ok(())
    }
    fn handle_eof(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("eof");
        ctx.close_when_done();
        Ok(())
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("close");
        ctx.close();
        Ok(())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log.push(format!("error:{}", err.kind()));
        Err(err)
    }
}

/// Waits (without touching the loop) until the OS reports an error or hang-up on `fd`.
fn wait_for_reset(fd: impl AsFd) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        poll(&mut fds, Some(&timeout)).unwrap();
        if fds[0].revents().intersects(PollFlags::ERR | PollFlags::HUP) {
            return;
        }
        assert!(Instant::now() < deadline, "the reset never arrived");
    }
}

/// A connected client channel running `Sender`, whose peer reads once and then resets
/// the connection; returns the hooks run after the reset, and the read-hook count.
fn after_reset(backend: Backend, consume: bool) -> (Vec<String>, usize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let watch = client.try_clone().unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let reads = std::rc::Rc::new(std::cell::Cell::new(0));
    let token = ev
        .add(
            Channel::from_socket(client).unwrap(),
            Sender {
                log: log.clone(),
                reads: reads.clone(),
                consume,
            },
        )
        .unwrap();
    run_until(&mut ev, "a first send", |_| log.has("write"));
    // The peer reads once, then closes with input unread: the kernel resets.
    let mut buf = [0u8; 16];
    server.read_exact(&mut buf).unwrap();
    socket2::SockRef::from(&server)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(server);
    wait_for_reset(&watch);
    let marker = log.entries().len();
    let reads_before = reads.get();
    run_until(&mut ev, "the reset channel closed", |ev| {
        !ev.contains(token)
    });
    let after: Vec<String> = log.entries()[marker..].to_vec();
    (after, reads.get() - reads_before)
}

fn reset_reaches_write_and_close_without_busy_loop(backend: Backend) {
    let (hooks, reads) = after_reset(backend, false);
    assert_eq!(
        hooks,
        ["read", "write", "close"],
        "{backend}: a read hook that consumes nothing still gets the write event and one close"
    );
    assert_eq!(reads, 1, "{backend}: no busy loop of read events");
}

fn reset_seen_by_recv_closes_at_once(backend: Backend) {
    let (hooks, _) = after_reset(backend, true);
    assert_eq!(hooks, ["read", "close"], "{backend}");
}

/// Records pipe reads and the end-of-file / close hooks.
struct PipeReader {
    log: Log,
}

impl Dispatcher for PipeReader {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 3];
        let n = ctx.recv(&mut buf)?;
        if n > 0 {
            self.log
                .push(format!("data:{}", String::from_utf8_lossy(&buf[..n])));
        }
        Ok(())
    }
    fn handle_eof(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("eof");
        ctx.close_when_done();
        Ok(())
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("close");
        ctx.close();
        Ok(())
    }
}

fn pipe_eof(backend: Backend, data: &[u8]) -> Vec<String> {
    let (reader, mut writer) = io::pipe().unwrap();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let token: Token = ev
        .add(
            Channel::from_owned_fd(reader.into()).unwrap(),
            PipeReader { log: log.clone() },
        )
        .unwrap();
    writer.write_all(data).unwrap();
    drop(writer);
    run_until(&mut ev, "the pipe channel closed", |ev| !ev.contains(token));
    log.entries()
}

fn pipe_eof_goes_to_handle_eof_without_data(backend: Backend) {
    assert_eq!(pipe_eof(backend, b""), ["eof", "close"], "{backend}");
}

fn pipe_eof_goes_to_handle_eof_after_the_data(backend: Backend) {
    assert_eq!(
        pipe_eof(backend, b"abcdefg"),
        ["data:abc", "data:def", "data:g", "eof", "close"],
        "{backend}"
    );
}

backend_tests!(
    reset_reaches_write_and_close_without_busy_loop,
    reset_seen_by_recv_closes_at_once,
    pipe_eof_goes_to_handle_eof_without_data,
    pipe_eof_goes_to_handle_eof_after_the_data,
);
