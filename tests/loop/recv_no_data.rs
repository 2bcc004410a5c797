//! `recv` that would block is "no data yet": `Err` of kind `WouldBlock`, with `is_eof()`
//! false and the channel open, visible as such to code that goes on after the call (not
//! only to a hook that returns the result with `?`, which the loop ignores); end of file,
//! and only end of file, is `Ok(0)`, with `is_eof()` true. `send` that would block is
//! `Err(WouldBlock)` too, not `Ok(0)`.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::rc::Rc;

use crate::util::{run_until, unix_channel, Log};
use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop};

/// Reads until `recv` would block or gives 0, then records which and goes on.
struct Drainer {
    got: Rc<RefCell<Vec<u8>>>,
    log: Log,
}

impl Dispatcher for Drainer {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 3];
        // Bounded: a few bytes arrive per round; a recv that never reports "nothing
        // more" fails here instead of spinning.
        for _ in 0..1000 {
            match ctx.recv(&mut buf) {
                Ok(0) => {
                    assert!(ctx.is_eof(), "Ok(0) is end of file only");
                    self.log.push("eof");
                    // Code after the call: the channel is still usable.
                    assert!(!ctx.is_closed());
                    return Ok(());
                }
                Ok(n) => self.got.borrow_mut().extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(!ctx.is_eof(), "would block is not end of file");
                    self.log.push("no-data-yet");
                    assert!(!ctx.is_closed());
                    return Ok(());
                }
                Err(e) => {
                    self.log.push(format!("recv-error:{:?}", e.kind()));
                    return Ok(());
                }
            }
        }
        panic!("recv never would block nor returned 0");
    }
    fn handle_eof(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("handle_eof");
        ctx.request_close();
        Ok(())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log.push(format!("handle_error:{:?}", err.kind()));
        Err(err)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("close");
        ctx.close();
        Ok(())
    }
}

fn recv_would_block_is_no_data_yet(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (mut ch, mut peer) = unix_channel();
    // Outside any hook, before anything was sent.
    let mut buf = [0u8; 16];
    assert_eq!(
        ch.recv(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert!(
        !ch.is_eof() && !ch.is_closed(),
        "no data yet is not end of file"
    );
    let got: Rc<RefCell<Vec<u8>>> = Rc::default();
    let log = Log::default();
    let token = ev
        .add(
            ch,
            Drainer {
                got: got.clone(),
                log: log.clone(),
            },
        )
        .unwrap();

    peer.write_all(b"hello").unwrap();
    run_until(&mut ev, "the first read", |_| log.entries().len() == 1);
    assert_eq!(log.entries(), ["no-data-yet"]);
    assert_eq!(*got.borrow(), b"hello");
    let ch = ev.channel_mut(token).unwrap();
    assert!(!ch.is_eof());
    assert_eq!(
        ch.recv(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock,
        "still nothing, outside a hook"
    );
    assert!(!ch.is_eof() && !ch.is_closed());

    // The channel goes on reading.
    peer.write_all(b" world").unwrap();
    run_until(&mut ev, "the second read", |_| log.entries().len() == 2);
    assert_eq!(*got.borrow(), b"hello world");

    // End of file is `Ok(0)`.
    drop(peer);
    run_until(&mut ev, "the close", |ev| !ev.contains(token));
    assert_eq!(
        log.entries(),
        ["no-data-yet", "no-data-yet", "eof", "handle_eof", "close"]
    );
}

/// Reads with `?` until `recv` would block: the `WouldBlock` error leaves the hook and the
/// loop ignores it (no `handle_error`, no close).
struct QuestionMark {
    got: Rc<RefCell<Vec<u8>>>,
    log: Log,
}

impl Dispatcher for QuestionMark {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 3];
        // An empty buffer reads nothing and is no end of file.
        assert_eq!(ctx.recv(&mut [])?, 0);
        assert!(!ctx.is_eof());
        loop {
            let n = ctx.recv(&mut buf)?;
            if n == 0 {
                self.log.push("eof");
                return Ok(());
            }
            self.got.borrow_mut().extend_from_slice(&buf[..n]);
        }
    }
    fn handle_eof(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("handle_eof");
        ctx.request_close();
        Ok(())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log.push(format!("handle_error:{:?}", err.kind()));
        Err(err)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("close");
        ctx.close();
        Ok(())
    }
}

fn would_block_through_question_mark_is_ignored(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (ch, mut peer) = unix_channel();
    let got: Rc<RefCell<Vec<u8>>> = Rc::default();
    let log = Log::default();
    let token = ev
        .add(
            ch,
            QuestionMark {
                got: got.clone(),
                log: log.clone(),
            },
        )
        .unwrap();
    peer.write_all(b"hello").unwrap();
    run_until(&mut ev, "the first read", |_| got.borrow().len() == 5);
    peer.write_all(b" world").unwrap();
    run_until(&mut ev, "the second read", |_| got.borrow().len() == 11);
    assert_eq!(*got.borrow(), b"hello world");
    assert!(log.entries().is_empty(), "{:?}", log.entries());
    assert!(ev.contains(token) && !ev.channel(token).unwrap().is_eof());

    drop(peer);
    run_until(&mut ev, "the close", |ev| !ev.contains(token));
    assert_eq!(log.entries(), ["eof", "handle_eof", "close"]);
}

/// Sends until `send` would block, counting the would-blocks; passes the `WouldBlock`
/// error to the loop with `?`.
struct Filler {
    blocked: Rc<Cell<usize>>,
    log: Log,
}

impl Dispatcher for Filler {
    fn readable(&self, _: &Channel) -> bool {
        false
    }
    fn writable(&self, _: &Channel) -> bool {
        true
    }
    fn handle_write(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let chunk = [7u8; 4096];
        loop {
            match ctx.send(&chunk) {
                Ok(0) => {
                    // The peer is gone: the loop closes the channel after this hook.
                    self.log.push("send-0");
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(!ctx.is_closed());
                    self.blocked.set(self.blocked.get() + 1);
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log.push(format!("handle_error:{:?}", err.kind()));
        Err(err)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("close");
        ctx.close();
        Ok(())
    }
}

/// `send` that would block is `Err(WouldBlock)`, not `Ok(0)`; a hook returning it is
/// left alone by the loop. Once the peer is gone, `send` is `Ok(0)` and the loop closes.
fn send_would_block_is_an_error_the_loop_ignores(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (ch, mut peer) = unix_channel();
    let blocked = Rc::new(Cell::new(0));
    let log = Log::default();
    let token = ev
        .add(
            ch,
            Filler {
                blocked: blocked.clone(),
                log: log.clone(),
            },
        )
        .unwrap();
    run_until(&mut ev, "the socket buffer full", |_| blocked.get() == 1);
    // The peer makes room: the channel is written again, until it would block again.
    let mut buf = vec![0u8; 1 << 16];
    let mut drained = 0;
    loop {
        match peer.read(&mut buf) {
            Ok(n) => {
                assert!(n > 0);
                drained += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("peer read: {e}"),
        }
    }
    assert!(drained > 0 && buf[..1] == [7]);
    run_until(&mut ev, "the socket buffer full again", |_| {
        blocked.get() == 2
    });
    assert!(log.entries().is_empty(), "{:?}", log.entries());
    assert!(ev.contains(token));

    drop(peer);
    run_until(&mut ev, "the close", |ev| !ev.contains(token));
    assert_eq!(log.entries(), ["send-0", "close"]);
}

backend_tests!(
    recv_would_block_is_no_data_yet,
    would_block_through_question_mark_is_ignored,
    send_would_block_is_an_error_the_loop_ignores,
);
