//! A panic or an error that escapes a hook closes that channel only; every other channel
//! keeps working. `set_catch_panics(false)` lets panics propagate instead, and the loop is
//! still usable afterwards.

use crate::util;

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::util::{read_available, run_until, step, unix_channel, Echo, Log};
use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop, Token};

/// Where a [`Bomb`] fails once it has received `boom`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    PanicInRead,
    PanicInReadable,
    PanicInWritable,
    /// `handle_read` returns an error and `handle_error` panics.
    PanicInError,
    /// End of file, and `handle_close` panics.
    PanicInClose,
    /// `handle_read` returns an error; `handle_error` returns one too.
    ErrorFromError,
    /// `handle_read` returns an error; `handle_error` swallows it.
    ErrorSwallowed,
}

/// Echoes until it receives `boom`, then fails as told.
struct Bomb {
    fault: Fault,
    armed: bool,
    log: Log,
}

impl Dispatcher for Bomb {
    fn readable(&self, _: &Channel) -> bool {
        if self.armed && self.fault == Fault::PanicInReadable {
            panic!("boom in readable");
        }
        true
    }
    fn writable(&self, ch: &Channel) -> bool {
        if self.armed && self.fault == Fault::PanicInWritable {
            panic!("boom in writable");
        }
        ch.has_pending_output()
    }
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 1024];
        let n = ctx.recv(&mut buf)?;
        if &buf[..n] != b"boom" {
            return ctx.push(&buf[..n]);
        }
        self.armed = true;
        match self.fault {
            Fault::PanicInRead => panic!("boom in handle_read"),
            Fault::PanicInError | Fault::ErrorFromError | Fault::ErrorSwallowed => {
                Err(io::Error::other("boom"))
            }
            _ => Ok(()),
        }
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log.push("bomb:error");
        match self.fault {
            Fault::PanicInError => panic!("boom in handle_error"),
            Fault::ErrorSwallowed => Ok(()),
            _ => Err(err),
        }
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("bomb:close");
        if self.fault == Fault::PanicInClose {
            panic!("boom in handle_close");
        }
        ctx.close();
        Ok(())
    }
}

/// Sends `msg` through `peer` and steps the loop until it comes back.
fn echo(ev: &mut EventLoop, peer: &mut UnixStream, msg: &[u8]) {
    peer.write_all(msg).unwrap();
    let mut got = Vec::new();
    run_until(ev, "the echo", |_| {
        read_available(peer, &mut got);
        got.len() >= msg.len()
    });
    assert_eq!(got, msg);
}

struct Setup {
    ev: EventLoop,
    log: Log,
    good: Token,
    good_peer: UnixStream,
    bomb: Token,
    bomb_peer: UnixStream,
}

fn setup(backend: Backend, fault: Fault) -> Setup {
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (good, good_peer) = unix_channel();
    let (bomb, bomb_peer) = unix_channel();
    let good = ev
        .add(
            good,
            Echo {
                log: log.clone(),
                name: "good",
            },
        )
        .unwrap();
    let bomb = ev
        .add(
            bomb,
            Bomb {
                fault,
                armed: false,
                log: log.clone(),
            },
        )
        .unwrap();
    let mut s = Setup {
        ev,
        log,
        good,
        good_peer,
        bomb,
        bomb_peer,
    };
    echo(&mut s.ev, &mut s.bomb_peer, b"hello bomb");
    echo(&mut s.ev, &mut s.good_peer, b"hello good");
    s
}

/// Sets the bomb off; it must end up closed (its peer sees end of file) while the other
/// channel keeps echoing.
fn only_its_channel_closes(backend: Backend, fault: Fault) -> Log {
    let mut s = setup(backend, fault);
    if fault == Fault::PanicInClose {
        s.bomb_peer.write_all(b"boom").unwrap();
        step(&mut s.ev, 2);
        drop(std::mem::replace(
            &mut s.bomb_peer,
            UnixStream::pair().unwrap().0,
        ));
    } else {
        s.bomb_peer.write_all(b"boom").unwrap();
    }
    let bomb = s.bomb;
    run_until(&mut s.ev, "the failing channel closed", |ev| {
        !ev.contains(bomb)
    });
    if fault != Fault::PanicInClose {
        let mut rest = Vec::new();
        run_until(&mut s.ev, "its peer saw end of file", |_| {
            read_available(&mut s.bomb_peer, &mut rest)
        });
    }
    assert!(s.ev.contains(s.good));
    echo(&mut s.ev, &mut s.good_peer, b"still here");
    echo(&mut s.ev, &mut s.good_peer, b"and again");
    assert_eq!(s.ev.len(), 1);
    assert!(!s
        .log
        .entries()
        .iter()
        .any(|e| e.starts_with("good:") && e != "good:read"));
    s.log
}

fn panic_in_hook(backend: Backend) {
    let log = only_its_channel_closes(backend, Fault::PanicInRead);
    assert!(!log.has("bomb:error"), "{:?}", log.entries());
    assert_eq!(
        log.count("bomb:close"),
        1,
        "a panic gets the one cleanup call: {:?}",
        log.entries()
    );
}

fn panic_in_readable(backend: Backend) {
    let log = only_its_channel_closes(backend, Fault::PanicInReadable);
    assert_eq!(log.count("bomb:close"), 1, "{:?}", log.entries());
}

fn panic_in_writable(backend: Backend) {
    let log = only_its_channel_closes(backend, Fault::PanicInWritable);
    assert_eq!(log.count("bomb:close"), 1, "{:?}", log.entries());
}

fn panic_in_handle_error(backend: Backend) {
    let log = only_its_channel_closes(backend, Fault::PanicInError);
    assert_eq!(log.count("bomb:error"), 1);
    assert_eq!(
        log.count("bomb:close"),
        1,
        "a panicking handle_error still ends in handle_close"
    );
}

fn panic_in_handle_close(backend: Backend) {
    let log = only_its_channel_closes(backend, Fault::PanicInClose);
    assert_eq!(log.count("bomb:close"), 1);
}

fn error_from_handle_error_closes(backend: Backend) {
    let log = only_its_channel_closes(backend, Fault::ErrorFromError);
    assert_eq!(log.count("bomb:error"), 1);
    assert_eq!(
        log.count("bomb:close"),
        1,
        "handle_close runs once after handle_error fails"
    );
}

fn swallowed_error_keeps_channel(backend: Backend) {
    let mut s = setup(backend, Fault::ErrorSwallowed);
    s.bomb_peer.write_all(b"boom").unwrap();
    run_until(&mut s.ev, "handle_error ran", |_| s.log.has("bomb:error"));
    echo(&mut s.ev, &mut s.bomb_peer, b"still open");
    assert_eq!(s.log.count("bomb:error"), 1);
    assert!(!s.log.has("bomb:close"));
    assert_eq!(s.ev.len(), 2);
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// With panics not caught, the panic reaches the caller of `run`. The loop stays
/// consistent: the channel that panicked is gone, the others (one added just before the
/// panic included) go on being served, and `close_all` empties the map.
fn propagates(backend: Backend, fault: Fault) {
    let mut s = setup(backend, fault);
    s.ev.set_catch_panics(false);
    s.bomb_peer.write_all(b"boom").unwrap();
    let mut late = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        // The bomb reads "boom" (and panics here, for a hook fault).
        s.ev.poll_once(Some(util::STEP)).unwrap();
        // Queued for its first predicate check behind the bomb's re-check.
        let (ch, peer) = unix_channel();
        late = Some((
            s.ev.add(
                ch,
                Echo {
                    log: s.log.clone(),
                    name: "late",
                },
            )
            .unwrap(),
            peer,
        ));
        s.ev.run(Some(util::STEP), Some(100))
    }));
    let payload = result.expect_err("the panic propagates out of the loop");
    let msg = panic_message(&*payload);
    assert!(msg.starts_with("boom in"), "unexpected panic: {msg}");

    assert!(
        !s.ev.contains(s.bomb),
        "the channel that panicked is closed"
    );
    assert_eq!(
        s.log.count("bomb:close"),
        1,
        "a propagating panic still gives the channel its one cleanup call"
    );
    let mut rest = Vec::new();
    run_until(&mut s.ev, "the bomb's peer saw end of file", |_| {
        read_available(&mut s.bomb_peer, &mut rest)
    });
    echo(&mut s.ev, &mut s.good_peer, b"after the panic");
    let mut expected_len = 1;
    if let Some((token, mut peer)) = late.take() {
        echo(&mut s.ev, &mut peer, b"late channel");
        assert!(s.ev.contains(token));
        expected_len += 1;
    }
    assert_eq!(s.ev.len(), expected_len);
    s.ev.close_all();
    assert!(s.ev.is_empty(), "close_all left {} channels", s.ev.len());
}

fn propagates_from_hook(backend: Backend) {
    propagates(backend, Fault::PanicInRead);
}

fn propagates_from_predicate(backend: Backend) {
    propagates(backend, Fault::PanicInReadable);
}

backend_tests!(
    panic_in_hook,
    panic_in_readable,
    panic_in_writable,
    panic_in_handle_error,
    panic_in_handle_close,
    error_from_handle_error_closes,
    swallowed_error_keeps_channel,
    propagates_from_hook,
    propagates_from_predicate,
);
