//! The default `handle_accept`'s pace: one connection per event while they arrive one at
//! a time, a batch (up to `ACCEPT_BATCH`) once the listener is ready again in the very
//! next iteration, and back to one per event when a batch finds a single connection.
//! (What it saves, an `accept` that would fail with `EAGAIN` per connection, is counted
//! by `bench/syscalls/run.sh`.)

use std::io;
use std::net::TcpStream;
use std::time::Duration;

use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop, SockAddr, ACCEPT_BATCH};

/// The loop's state: connections accepted so far.
type Accepted = usize;

struct Listener;

impl Dispatcher<Accepted> for Listener {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_, Accepted>,
        channel: Channel,
        _: SockAddr,
    ) -> io::Result<()> {
        *ctx.state_mut() += 1;
        ctx.handle().add(channel, Quiet)?;
        Ok(())
    }
}

/// An accepted connection whose client never sends: no events of its own.
struct Quiet;

impl Dispatcher<Accepted> for Quiet {}

/// One iteration that waits for the listener (clients connected before it are in the
/// backlog already); returns the connections accepted so far.
fn iteration(lp: &mut EventLoop<Accepted>) -> usize {
    lp.poll_once(Some(Duration::from_secs(5))).unwrap();
    *lp.state()
}

/// An iteration with nothing to do: the next accept event is not in the very next one.
fn idle(lp: &mut EventLoop<Accepted>) {
    assert_eq!(lp.poll_once(Some(Duration::from_millis(20))).unwrap(), 0);
}

/// `n` clients, connected (in the listener's backlog) before the loop's next wait.
fn connect(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let clients = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // The handshake's last ACK is processed in the kernel's softirq; on a loaded machine
    // it can lag the client's connect: give it time to reach the backlog.
    std::thread::sleep(Duration::from_millis(20));
    clients
}

fn accept_pace_follows_arrivals(backend: Backend) {
    let mut lp = EventLoop::with_backend_and_state(backend, 0).unwrap();
    let listener = Channel::tcp_listener("127.0.0.1:0".parse().unwrap(), 256).unwrap();
    let addr = listener.local_inet_addr().unwrap();
    lp.add(listener, Listener).unwrap();
    idle(&mut lp);

    // One at a time: one per event.
    let _first = connect(addr, 1);
    assert_eq!(iteration(&mut lp), 1);
    idle(&mut lp);

    // A burst of 40 (and then more than a batch): the first event takes one, the
    // listener is ready again in the next iteration, which takes the rest at once.
    let _burst = connect(addr, 40);
    assert_eq!(iteration(&mut lp), 2, "one per event until a burst shows");
    assert_eq!(iteration(&mut lp), 41, "the rest of the burst in one event");
    let _flood = connect(addr, ACCEPT_BATCH + 10);
    assert_eq!(
        iteration(&mut lp),
        41 + ACCEPT_BATCH,
        "at most a batch per event"
    );
    assert_eq!(iteration(&mut lp), 41 + ACCEPT_BATCH + 10);

    // A batch that finds a single connection ends the burst: later arrivals of two are
    // taken one per event again.
    idle(&mut lp);
    let _single = connect(addr, 1);
    let before = 42 + ACCEPT_BATCH + 10;
    assert_eq!(iteration(&mut lp), before);
    idle(&mut lp);
    let _pair = connect(addr, 2);
    assert_eq!(iteration(&mut lp), before + 1, "back to one per event");
    assert_eq!(iteration(&mut lp), before + 2);
}

backend_tests!(accept_pace_follows_arrivals);
