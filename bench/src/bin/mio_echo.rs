//! Baseline echo server: a minimal, hand-written mio 1.x event loop.
//!
//! * one thread, one `Poll`, edge-triggered (mio is always edge-triggered);
//! * every connection is registered once for READABLE | WRITABLE, so no
//!   `epoll_ctl` is ever needed after accept (for TCP, Linux only raises a
//!   writable edge after the send buffer was full, so this costs no wakeups);
//! * reads go into one shared 64 KiB buffer and loop until `WouldBlock`;
//! * echoed bytes are written straight from that buffer; only what the kernel
//!   refuses is copied into a per-connection pending buffer, flushed on the
//!   next writable edge;
//! * a connection whose pending buffer passes `HIGH_WATER` stops being read
//!   (backpressure) until it drains.
//!
//! Usage: `mio_echo [--addr 127.0.0.1:0]`. Prints `listening on <addr>` once
//! bound, then serves until killed.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;

const LISTENER: Token = Token(0);
const READ_BUF: usize = 64 * 1024;
/// Stop reading from a connection while this much echo data is queued for it.
const HIGH_WATER: usize = 1024 * 1024;

struct Conn {
    stream: TcpStream,
    /// Bytes the kernel refused; `pending[pending_off..]` is still to be sent.
    pending: Vec<u8>,
    pending_off: usize,
    peer_closed: bool,
}

impl Conn {
    fn pending_len(&self) -> usize {
        self.pending.len() - self.pending_off
    }

    /// Handles any readiness edge. Returns false when the connection is done.
    fn service(&mut self, buf: &mut [u8]) -> bool {
        if self.pending_len() > 0 && !self.flush() {
            return false;
        }
        while !self.peer_closed && self.pending_len() < HIGH_WATER {
            match self.stream.read(buf) {
                Ok(0) => self.peer_closed = true,
                Ok(n) => {
                    if !self.echo(&buf[..n]) {
                        return false;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        // On EOF, linger only until the queued echo has been written.
        !(self.peer_closed && self.pending_len() == 0)
    }

    /// Writes `data` directly if nothing is queued; queues what is refused.
    fn echo(&mut self, data: &[u8]) -> bool {
        let mut off = 0;
        if self.pending_len() == 0 {
            while off < data.len() {
                match self.stream.write(&data[off..]) {
                    Ok(0) => return false,
                    Ok(n) => off += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
        }
        self.pending.extend_from_slice(&data[off..]);
        true
    }

    fn flush(&mut self) -> bool {
        while self.pending_off < self.pending.len() {
            match self.stream.write(&self.pending[self.pending_off..]) {
                Ok(0) => return false,
                Ok(n) => self.pending_off += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if self.pending_off == self.pending.len() {
            self.pending_off = 0;
            if self.pending.capacity() > 4 * READ_BUF {
                self.pending = Vec::new(); // don't pin a large burst buffer forever
            } else {
                self.pending.clear();
            }
        } else if self.pending_off > self.pending.len() / 2 {
            self.pending.drain(..self.pending_off);
            self.pending_off = 0;
        }
        true
    }
}

fn parse_addr() -> SocketAddr {
    let mut addr = String::from("127.0.0.1:0");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--addr" {
            addr = args.next().unwrap_or_else(|| usage("--addr needs a value"));
        } else if let Some(v) = a.strip_prefix("--addr=") {
            addr = v.to_string();
        } else {
            usage(&format!("unknown argument {a}"));
        }
    }
    addr.parse()
        .unwrap_or_else(|e| usage(&format!("bad --addr {addr}: {e}")))
}

fn usage(msg: &str) -> ! {
    eprintln!("mio_echo: {msg}\nusage: mio_echo [--addr 127.0.0.1:0]");
    std::process::exit(2)
}

fn main() -> io::Result<()> {
    let addr = parse_addr();
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("listening on {}", listener.local_addr()?);

    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Option<Conn>> = Vec::new(); // token = index + 1
    let mut free: Vec<usize> = Vec::new();
    let mut buf = vec![0u8; READ_BUF];

    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let idx = free.pop().unwrap_or_else(|| {
                                conns.push(None);
                                conns.len() - 1
                            });
                            poll.registry().register(
                                &mut stream,
                                Token(idx + 1),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conns[idx] = Some(Conn {
                                stream,
                                pending: Vec::new(),
                                pending_off: 0,
                                peer_closed: false,
                            });
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e)
                            if matches!(
                                e.kind(),
                                ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                            ) => {}
                        Err(e) => {
                            // e.g. EMFILE: drop this edge; the next connect retriggers.
                            eprintln!("mio_echo: accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let idx = event.token().0 - 1;
            let keep = match conns.get_mut(idx).and_then(Option::as_mut) {
                Some(conn) => conn.service(&mut buf),
                None => continue,
            };
            if !keep {
                conns[idx] = None; // dropping closes the fd, which deregisters it
                free.push(idx);
            }
        }
    }
}
