//! poll(2) backend.

use std::io;
use std::os::fd::BorrowedFd;

use rustix::event::{PollFd, PollFlags, Timespec};

use super::{slot_of, Event};
use crate::interest::{Interest, Ready};

/// Registrations kept as a persistent `pollfd` array, edited in place on interest changes.
#[derive(Default)]
pub(crate) struct Selector {
    fds: Vec<PollFd<'static>>,
    keys: Vec<usize>,
    slots: Vec<u32>,
}

fn flags(interest: Interest) -> PollFlags {
    let mut f = PollFlags::empty();
    if interest.is_readable() {
        f |= PollFlags::IN | PollFlags::PRI;
    }
    if interest.is_writable() {
        f |= PollFlags::OUT;
    }
    f
}

impl Selector {
    pub(crate) fn new() -> Selector {
        Selector::default()
    }

    pub(crate) fn update(
        &mut self,
        fd: BorrowedFd<'_>,
        key: usize,
        _old: Interest,
        new: Interest,
    ) -> io::Result<()> {
        // SAFETY: the pollfd outlives the borrow on paper only: the loop deregisters a
        // descriptor (removing this entry) before it closes it, and poll(2) reports a
        // descriptor closed behind the loop's back as POLLNVAL, never touching memory.
        let fd: BorrowedFd<'static> =
            unsafe { BorrowedFd::borrow_raw(std::os::fd::AsRawFd::as_raw_fd(&fd)) };
        let slot = slot_of(&mut self.slots, key);
        match (*slot, new.is_empty()) {
            (0, true) => {}
            (0, false) => {
                *slot = self.fds.len() as u32 + 1;
                self.fds.push(PollFd::from_borrowed_fd(fd, flags(new)));
                self.keys.push(key);
            }
            (i, true) => {
                *slot = 0;
                let i = i as usize - 1;
                self.fds.swap_remove(i);
                self.keys.swap_remove(i);
                if let Some(&moved) = self.keys.get(i) {
                    self.slots[moved] = i as u32 + 1;
                }
            }
            (i, false) => {
                self.fds[i as usize - 1] = PollFd::from_borrowed_fd(fd, flags(new));
            }
        }
        Ok(())
    }

    pub(crate) fn wait(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<&Timespec>,
    ) -> io::Result<()> {
        let mut n = rustix::event::poll(&mut self.fds, timeout)?;
        for (pfd, &key) in self.fds.iter().zip(&self.keys) {
            if n == 0 {
                break;
            }
            let r = pfd.revents();
            if r.is_empty() {
                continue;
            }
            n -= 1;
            let mut ready = Ready::default();
            if r.intersects(PollFlags::IN) {
                ready |= Ready::READ;
            }
            if r.intersects(PollFlags::OUT) {
                ready |= Ready::WRITE;
            }
            if r.intersects(PollFlags::PRI) {
                ready |= Ready::PRI;
            }
            if r.intersects(PollFlags::HUP) {
                ready |= Ready::HUP;
            }
            if r.intersects(PollFlags::ERR) {
                ready |= Ready::ERR;
            }
            if r.intersects(PollFlags::NVAL) {
                ready |= Ready::NVAL;
            }
            events.push(Event { key, ready });
        }
        Ok(())
    }
}
