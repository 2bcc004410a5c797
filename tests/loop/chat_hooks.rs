//! A chat handler gets the channel hooks a protocol needs without wrapping `AsyncChat`
//! in its own dispatcher: `handle_eof` (answer after the client's end of input),
//! `handle_timeout`, `handle_drained` and a `readable` gate.

use crate::util;

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::time::Duration;

use crate::util::run_until;
use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
use sockloop::{Backend, Channel, EventLoop, Timeout};

/// Counts lines; at end of input answers with the count and a big tail, then closes.
/// Says "bye" on an idle timeout. Counts `handle_drained` calls.
struct Counting {
    lines: usize,
    drained: Rc<Cell<usize>>,
    gate: Rc<Cell<bool>>,
}

impl ChatHandler for Counting {
    fn collect_incoming_data(&mut self, _: &mut ChatContext<'_>, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn found_terminator(&mut self, _: &mut ChatContext<'_>) -> io::Result<()> {
        self.lines += 1;
        Ok(())
    }
    fn readable(&self, _: &Channel) -> bool {
        self.gate.get()
    }
    fn handle_eof(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
        ctx.push(format!("{} lines\n", self.lines).as_bytes())?;
        ctx.push(&vec![b'.'; 2_000_000])?;
        ctx.close_when_done();
        Ok(())
    }
    fn handle_timeout(&mut self, ctx: &mut ChatContext<'_>, which: Timeout) -> io::Result<()> {
        assert_eq!(which, Timeout::Idle);
        ctx.push(b"bye\n")?;
        ctx.close_when_done();
        Ok(())
    }
    fn handle_drained(&mut self, _: &mut ChatContext<'_>) -> io::Result<()> {
        self.drained.set(self.drained.get() + 1);
        Ok(())
    }
}

fn chat(drained: &Rc<Cell<usize>>, gate: &Rc<Cell<bool>>) -> AsyncChat<Counting> {
    let mut chat = AsyncChat::new(Counting {
        lines: 0,
        drained: drained.clone(),
        gate: gate.clone(),
    });
    chat.set_terminator(Terminator::Bytes(b"\n".to_vec()))
        .unwrap();
    chat
}

fn chat_handler_answers_after_end_of_input(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let drained = Rc::new(Cell::new(0));
    let gate = Rc::new(Cell::new(true));
    let (ch, peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let token = ev
        .add(Channel::from_socket(ch).unwrap(), chat(&drained, &gate))
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut peer = peer;
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        peer.write_all(b"a\nb\nc\n").unwrap();
        peer.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        got
    });
    run_until(&mut ev, "the chat channel closed", |ev| !ev.contains(token));
    let got = reader.join().unwrap();
    assert!(got.starts_with(b"3 lines\n"), "{backend}");
    assert_eq!(
        got.len(),
        8 + 2_000_000,
        "{backend}: the whole answer, after EOF"
    );
    assert_eq!(
        drained.get(),
        0,
        "{backend}: a queue that ends in a close never drains"
    );
}

fn chat_handler_hears_the_queue_drain(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let drained = Rc::new(Cell::new(0));
    let gate = Rc::new(Cell::new(true));
    let (ch, mut peer) = util::unix_channel();
    let token = ev.add(ch, chat(&drained, &gate)).unwrap();
    // More than the socket takes at once: it is queued, then drains as the peer reads.
    ev.channel_mut(token)
        .unwrap()
        .push(&vec![b'x'; 3_000_000])
        .unwrap();
    let mut got = Vec::new();
    run_until(&mut ev, "the queue drained", |_| {
        util::read_available(&mut peer, &mut got);
        drained.get() > 0
    });
    assert_eq!(drained.get(), 1, "{backend}");
    assert_eq!(ev.channel(token).unwrap().pending_output(), 0);
}

fn chat_handler_gets_timeouts_and_gates_reading(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let drained = Rc::new(Cell::new(0));
    let gate = Rc::new(Cell::new(false));
    let (mut ch, mut peer) = util::unix_channel();
    ch.set_idle_timeout(Some(Duration::from_millis(100)));
    let token = ev.add(ch, chat(&drained, &gate)).unwrap();
    peer.write_all(b"x\n").unwrap();
    let mut got = Vec::new();
    run_until(&mut ev, "the idle timeout's goodbye", |ev| {
        util::read_available(&mut peer, &mut got);
        !ev.contains(token)
    });
    util::read_available(&mut peer, &mut got);
    assert_eq!(got, b"bye\n", "{backend}");
    let lines = ev
        .dispatcher::<AsyncChat<Counting>>(token)
        .map(|c| c.handler().lines);
    assert_eq!(lines, None, "closed");
}

backend_tests!(
    chat_handler_answers_after_end_of_input,
    chat_handler_hears_the_queue_drain,
    chat_handler_gets_timeouts_and_gates_reading,
);
