//! Non-blocking connect: a refused connect reaches `handle_error` with `ECONNREFUSED`,
//! then `handle_close` once; output queued before the connect completes is sent after
//! it, in order and completely.

use crate::util;

use std::cell::RefCell;
use std::io::{self, Read};
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use crate::util::{pattern, run_until, step, Log};
use rustix::io::Errno;
use sockloop::{Backend, Channel, Context, Dispatcher, Domain, EventLoop, SockAddr, Type};

/// Records every hook; keeps the error `handle_error` received.
struct Recorder {
    log: Log,
    error: Rc<RefCell<Option<io::Error>>>,
}

impl Dispatcher for Recorder {
    fn handle_connect(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        self.log.push("connect");
        Ok(())
    }
    fn handle_read(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        self.log.push("read");
        Ok(())
    }
    fn handle_write(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        self.log.push("write");
        Ok(())
    }
    fn handle_expt(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        self.log.push("expt");
        Ok(())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log.push("error");
        let copy = io::Error::new(err.kind(), err.to_string());
        *self.error.borrow_mut() = Some(err);
        Err(copy)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("close");
        ctx.close();
        Ok(())
    }
}

/// A loopback address nothing listens on: bind a listener for a free port, then drop it.
fn dead_addr() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn refused(backend: Backend) {
    let log = Log::default();
    let error = Rc::new(RefCell::new(None));
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut ch = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    ch.connect(dead_addr())
        .expect("a non-blocking connect reports refusal later");
    assert!(ch.is_connecting());
    let token = ev
        .add(
            ch,
            Recorder {
                log: log.clone(),
                error: error.clone(),
            },
        )
        .unwrap();
    run_until(&mut ev, "the refused channel closed", |ev| {
        !ev.contains(token)
    });
    step(&mut ev, 3);
    assert_eq!(
        log.entries(),
        ["error", "close"],
        "exactly one error, then one close"
    );
    let err = error.borrow_mut().take().unwrap();
    assert_eq!(
        Errno::from_io_error(&err),
        Some(Errno::CONNREFUSED),
        "{err}"
    );
    assert_eq!(err.raw_os_error(), Some(Errno::CONNREFUSED.raw_os_error()));
    assert!(ev.is_empty());
}

/// Pushes a large buffer before the connect completes, then a marker from
/// `handle_connect`, then closes when done.
struct Sender {
    log: Log,
    queued_at_connect: Rc<RefCell<Option<usize>>>,
}

impl Dispatcher for Sender {
    fn handle_connect(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push("connect");
        *self.queued_at_connect.borrow_mut() = Some(ctx.pending_output());
        ctx.push(b"<after connect>")?;
        ctx.close_when_done();
        Ok(())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log.push(format!("error:{err}"));
        Err(err)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push(format!("close:{}", ctx.pending_output()));
        ctx.close();
        Ok(())
    }
}

const MIB: usize = 1 << 20;

fn output_queued_before_connect(backend: Backend, domain: Domain) {
    // The peer: a std listener read to end of file on its own thread.
    let (addr, reader): (SockAddr, thread::JoinHandle<Vec<u8>>) = if domain == Domain::UNIX {
        let path = util::unix_path(&format!("connect-queued-{}", backend.name()));
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let addr = SockAddr::unix(&path).unwrap();
        (addr, thread::spawn(move || read_all(l.accept().unwrap().0)))
    } else {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().into();
        (addr, thread::spawn(move || read_all(l.accept().unwrap().0)))
    };

    let data = pattern(MIB);
    let mut ch = Channel::create_socket(domain, Type::STREAM).unwrap();
    ch.connect(addr).unwrap();
    assert!(ch.is_connecting());
    for piece in data.chunks(64 * 1024 + 7) {
        ch.push(piece).unwrap();
    }
    assert_eq!(
        ch.pending_output(),
        MIB,
        "nothing is sent before the connect completes"
    );

    let log = Log::default();
    let queued_at_connect = Rc::new(RefCell::new(None));
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let token = ev
        .add(
            ch,
            Sender {
                log: log.clone(),
                queued_at_connect: queued_at_connect.clone(),
            },
        )
        .unwrap();
    run_until(&mut ev, "everything sent and the channel closed", |ev| {
        !ev.contains(token)
    });

    let got = reader.join().unwrap();
    let mut expect = data;
    expect.extend_from_slice(b"<after connect>");
    assert_eq!(got.len(), expect.len(), "the peer got every byte");
    assert!(got == expect, "the peer got the bytes in order");
    assert_eq!(
        *queued_at_connect.borrow(),
        Some(MIB),
        "handle_connect ran before any send"
    );
    assert_eq!(log.entries(), ["connect", "close:0"]);
}

fn read_all(mut s: impl Read + SetTimeout) -> Vec<u8> {
    s.timeout(Duration::from_secs(10));
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    got
}

trait SetTimeout {
    fn timeout(&self, d: Duration);
}

impl SetTimeout for std::net::TcpStream {
    fn timeout(&self, d: Duration) {
        self.set_read_timeout(Some(d)).unwrap();
    }
}

impl SetTimeout for std::os::unix::net::UnixStream {
    fn timeout(&self, d: Duration) {
        self.set_read_timeout(Some(d)).unwrap();
    }
}

fn queued_before_connect_tcp(backend: Backend) {
    output_queued_before_connect(backend, Domain::IPV4);
}

fn queued_before_connect_unix(backend: Backend) {
    output_queued_before_connect(backend, Domain::UNIX);
}

backend_tests!(
    refused,
    queued_before_connect_tcp,
    queued_before_connect_unix
);
