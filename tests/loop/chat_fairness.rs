//! One read full of records cannot hold the loop: a chat channel delivers at most its
//! record budget per event, so another channel is served in between, and every record
//! still arrives, in order, before end of input is reported.

use crate::util;

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

use crate::util::run_until;
use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
use sockloop::{Backend, EventLoop};

#[derive(Default)]
struct Trace(Rc<RefCell<Vec<String>>>);

struct Lines {
    name: &'static str,
    line: Vec<u8>,
    trace: Rc<RefCell<Vec<String>>>,
}

impl ChatHandler for Lines {
    fn collect_incoming_data(&mut self, _: &mut ChatContext<'_>, data: &[u8]) -> io::Result<()> {
        self.line.extend_from_slice(data);
        Ok(())
    }
    fn found_terminator(&mut self, _: &mut ChatContext<'_>) -> io::Result<()> {
        let line = String::from_utf8(std::mem::take(&mut self.line)).unwrap();
        self.trace
            .borrow_mut()
            .push(format!("{}:{line}", self.name));
        Ok(())
    }
    fn handle_eof(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
        self.trace.borrow_mut().push(format!("{}:eof", self.name));
        ctx.close_when_done();
        Ok(())
    }
}

fn lines(name: &'static str, trace: &Trace) -> AsyncChat<Lines> {
    let mut chat = AsyncChat::new(Lines {
        name,
        line: Vec::new(),
        trace: trace.0.clone(),
    });
    chat.set_terminator(Terminator::Bytes(b"\n".to_vec()))
        .unwrap();
    chat.set_record_budget(BUDGET);
    chat
}

const BUDGET: usize = 50;

fn a_burst_of_records_is_delivered_in_turns(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let trace = Trace::default();
    let (a, mut a_peer) = util::unix_channel();
    let (b, mut b_peer) = util::unix_channel();
    let ta = ev.add(a, lines("a", &trace)).unwrap();
    ev.add(b, lines("b", &trace)).unwrap();
    let n = 5_000;
    let burst: String = (0..n).map(|i| format!("{i}\n")).collect();
    a_peer.write_all(burst.as_bytes()).unwrap();
    a_peer.shutdown(std::net::Shutdown::Write).unwrap();
    b_peer.write_all(b"hello\n").unwrap();
    run_until(&mut ev, "b's line", |_| {
        trace.0.borrow().iter().any(|e| e == "b:hello")
    });
    let a_before_b = trace
        .0
        .borrow()
        .iter()
        .take_while(|e| e.as_str() != "b:hello")
        .count();
    assert!(
        a_before_b <= 2 * BUDGET,
        "{backend}: {a_before_b} of a's records ran before b was served"
    );
    run_until(&mut ev, "a closed after its end of input", |ev| {
        !ev.contains(ta)
    });
    let a_events: Vec<String> = trace
        .0
        .borrow()
        .iter()
        .filter(|e| e.starts_with("a:"))
        .cloned()
        .collect();
    let mut expected: Vec<String> = (0..n).map(|i| format!("a:{i}")).collect();
    expected.push("a:eof".into());
    assert!(
        a_events == expected,
        "{backend}: every record in order, then eof"
    );
}

backend_tests!(a_burst_of_records_is_delivered_in_turns);
