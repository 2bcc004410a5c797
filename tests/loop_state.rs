//! Loop-owned state: every kind of callback (hook, timer, signal handler, `Remote` call,
//! chat handler) reaches the same `S` through the one `LoopHandle`, with no
//! `Rc<RefCell<_>>`; timer callbacks get their own `TimerId`; `run_until` returns at its
//! deadline; the state comes back with `into_state`.

mod util;

use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Scripted, Terminator};
use sockloop::{signal, Backend, Channel, Context, Dispatcher, EventLoop, LoopHandle, Token};

/// A chat room as loop state: who is in, and what each kind of callback did.
#[derive(Default)]
struct Room {
    members: Vec<Token>,
    lines: Vec<Vec<u8>>,
    ticks: u32,
    from_remote: Vec<String>,
    signalled: u32,
    /// Not `Send`: the state never leaves the loop thread.
    not_send: Rc<()>,
}

/// One helper used from a hook, a timer and a `Remote` call.
fn broadcast(lp: &mut LoopHandle<Room>, line: &[u8]) -> io::Result<()> {
    lp.state_mut().lines.push(line.to_vec());
    for token in lp.state().members.clone() {
        if let Some(member) = lp.channel_mut(token) {
            member.push(line)?;
        }
    }
    Ok(())
}

struct Member;

impl Dispatcher<Room> for Member {
    fn handle_read(&mut self, ctx: &mut Context<'_, Room>) -> io::Result<()> {
        let mut buf = [0u8; 256];
        let n = ctx.recv(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        // The sender's own channel is out of the map while its hook runs: echo to it here,
        // the others through the helper.
        ctx.push(&buf[..n])?;
        broadcast(ctx.handle(), &buf[..n])
    }

    fn handle_close(&mut self, ctx: &mut Context<'_, Room>) -> io::Result<()> {
        let me = ctx.token();
        ctx.state_mut().members.retain(|&t| t != me);
        ctx.close();
        Ok(())
    }
}

fn read_exactly(peer: &mut Channel, want: usize, ev: &mut EventLoop<Room>) -> Vec<u8> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < want {
        assert!(Instant::now() < deadline, "timed out: got {got:?}");
        ev.poll_once(Some(util::STEP)).unwrap();
        let mut buf = [0u8; 256];
        if let Ok(n) = peer.recv(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    got
}

/// A hook, a timer and a Remote call reach the same state and the same helper.
fn hook_timer_and_remote_share_state(backend: Backend) {
    let mut ev = EventLoop::with_backend_and_state(backend, Room::default()).unwrap();
    let (a, mut peer_a) = Channel::pair().unwrap();
    let (b, mut peer_b) = Channel::pair().unwrap();
    let ta = ev.add(a, Member).unwrap();
    let tb = ev.add(b, Member).unwrap();
    ev.state_mut().members.extend([ta, tb]);

    peer_a.send(b"hi\n").unwrap();
    // a gets its echo, b the broadcast (a is out of the map during its own hook).
    assert_eq!(read_exactly(&mut peer_a, 3, &mut ev), b"hi\n");
    assert_eq!(read_exactly(&mut peer_b, 3, &mut ev), b"hi\n");

    ev.call_later(Duration::ZERO, |lp, _| broadcast(lp, b"tick\n").unwrap());
    assert_eq!(read_exactly(&mut peer_a, 5, &mut ev), b"tick\n");
    assert_eq!(read_exactly(&mut peer_b, 5, &mut ev), b"tick\n");

    let remote = ev.remote().unwrap();
    std::thread::spawn(move || {
        remote
            .call(|lp: &mut LoopHandle<Room>| {
                lp.state_mut().from_remote.push("worker".into());
                broadcast(lp, b"remote\n").unwrap();
            })
            .unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(read_exactly(&mut peer_a, 7, &mut ev), b"remote\n");
    assert_eq!(read_exactly(&mut peer_b, 7, &mut ev), b"remote\n");

    // A member leaves: its handle_close updates the state.
    drop(peer_b);
    let deadline = Instant::now() + Duration::from_secs(5);
    while ev.state().members.len() != 1 {
        assert!(Instant::now() < deadline, "b never left");
        ev.poll_once(Some(util::STEP)).unwrap();
    }
    let room = ev.into_state();
    assert_eq!(room.members, [ta]);
    assert_eq!(room.lines, [&b"hi\n"[..], b"tick\n", b"remote\n"]);
    assert_eq!(room.from_remote, ["worker"]);
    assert_eq!(Rc::strong_count(&room.not_send), 1);
}

/// A periodic timer receives its own id and cancels itself through it; `run` then
/// returns (nothing left).
fn periodic_timer_cancels_itself_by_its_id(backend: Backend) {
    let mut ev = EventLoop::with_backend_and_state(backend, Room::default()).unwrap();
    let id = ev.call_every(Duration::from_millis(1), |lp, me| {
        lp.state_mut().ticks += 1;
        if lp.state().ticks == 3 {
            assert!(lp.cancel(me));
        }
    });
    let start = Instant::now();
    ev.run(Some(Duration::from_millis(100)), Some(1000))
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(ev.state().ticks, 3);
    assert!(!ev.cancel(id), "already cancelled by itself");
    assert_eq!(ev.timers(), 0);
}

/// A one-shot timer's id is the one `call_later` returned.
fn one_shot_timer_gets_the_id_call_later_returned(backend: Backend) {
    let mut ev = EventLoop::with_backend_and_state(backend, Vec::new()).unwrap();
    let first = ev.call_later(Duration::ZERO, |lp, id| lp.state_mut().push(id));
    let second = ev.call_later(Duration::from_millis(1), |lp, id| lp.state_mut().push(id));
    ev.run(Some(Duration::from_millis(100)), Some(100)).unwrap();
    assert_eq!(ev.into_state(), [first, second]);
}

/// A signal handler reaches the state.
fn signal_handler_reaches_state(backend: Backend) {
    // Signals are per process; the three backends' tests run in parallel threads.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut ev = EventLoop::with_backend_and_state(backend, Room::default()).unwrap();
    ev.add_signal_handler(signal::SIGUSR2, |lp, sig| {
        assert_eq!(sig, signal::SIGUSR2);
        lp.state_mut().signalled += 1;
    })
    .unwrap();
    signal_hook::low_level::raise(signal::SIGUSR2).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while ev.state().signalled == 0 {
        assert!(Instant::now() < deadline, "the handler never ran");
        ev.poll_once(Some(util::STEP)).unwrap();
    }
    assert!(ev.remove_signal_handler(signal::SIGUSR2));
    assert_eq!(ev.state().signalled, 1);
}

/// `run_until` returns at its deadline with a channel that never becomes ready, and
/// reports that the deadline ended it; with nothing left it returns false at once.
fn run_until_returns_at_the_deadline(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (a, _peer) = Channel::pair().unwrap();
    struct Idle;
    impl Dispatcher for Idle {}
    let token = ev.add(a, Idle).unwrap();
    let start = Instant::now();
    assert!(ev.run_until(start + Duration::from_millis(30)).unwrap());
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(30),
        "returned early: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "returned late: {took:?}");
    ev.close(token);
    assert!(!ev
        .run_until(Instant::now() + Duration::from_secs(60))
        .unwrap());
}

/// A chat handler reads and changes the loop state through its ChatContext, on a real
/// channel and on the scripted transport alike.
#[derive(Default)]
struct Counter(Vec<u8>);

impl ChatHandler<u32> for Counter {
    fn collect_incoming_data(
        &mut self,
        _: &mut ChatContext<'_, u32>,
        data: &[u8],
    ) -> io::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }
    fn found_terminator(&mut self, ctx: &mut ChatContext<'_, u32>) -> io::Result<()> {
        self.0.clear();
        *ctx.state_mut() += 1;
        let n = *ctx.state();
        ctx.push(format!("{n}\n").as_bytes())
    }
}

fn chat() -> AsyncChat<Counter> {
    let mut chat = AsyncChat::new(Counter::default());
    chat.set_terminator(Terminator::Bytes(b"\n".to_vec()))
        .unwrap();
    chat
}

fn chat_handler_reaches_state(backend: Backend) {
    let mut ev = EventLoop::with_backend_and_state(backend, 10u32).unwrap();
    let (a, mut peer) = Channel::pair().unwrap();
    ev.add(a, chat()).unwrap();
    peer.send(b"x\ny\n").unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < 6 {
        assert!(Instant::now() < deadline, "got {got:?}");
        ev.poll_once(Some(util::STEP)).unwrap();
        let mut buf = [0u8; 64];
        if let Ok(n) = peer.recv(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(got, b"11\n12\n");
    assert_eq!(*ev.state(), 12);

    let mut script = Scripted::with_state(chat(), 0u32);
    script.feed(b"a\nb\n").unwrap();
    assert_eq!(script.take_output(), b"1\n2\n");
    assert_eq!(*script.state(), 2);
}

backend_tests!(
    hook_timer_and_remote_share_state,
    periodic_timer_cancels_itself_by_its_id,
    one_shot_timer_gets_the_id_call_later_returned,
    signal_handler_reaches_state,
    run_until_returns_at_the_deadline,
    chat_handler_reaches_state,
);
