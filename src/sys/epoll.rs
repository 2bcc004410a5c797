//! epoll(7) backend, level-triggered.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::buffer::spare_capacity;
use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
use rustix::event::Timespec;

use super::Event;
use crate::interest::{Interest, Ready};

/// Registrations live in the kernel; only changes cost a system call. Descriptors epoll
/// refuses with EPERM (regular files, which are always ready) are kept aside and reported
/// ready on every wait, without blocking.
pub(crate) struct Selector {
    epoll: OwnedFd,
    buf: Vec<epoll::Event>,
    always_ready: Vec<(usize, Interest)>,
}

// SAFETY: the only part of a `Selector` that is not `Send` by the auto trait is the event
// buffer: rustix's `epoll::Event` holds an `epoll_data` union with a pointer variant. This
// backend only ever stores and reads a plain `u64` key there (`EventData::new_u64` /
// `.u64()`), never a pointer, and the rest is a descriptor and plain data, none of it tied
// to a thread. So a selector (and the public `Poller` over it) may move to another thread,
// e.g. into the Python package's `allow_threads` while it waits.
unsafe impl Send for Selector {}

fn flags(interest: Interest) -> EventFlags {
    let mut f = EventFlags::empty();
    if interest.is_readable() {
        f |= EventFlags::IN | EventFlags::PRI;
    }
    if interest.is_writable() {
        f |= EventFlags::OUT;
    }
    f
}

fn ready_of(interest: Interest) -> Ready {
    let mut r = Ready::default();
    if interest.is_readable() {
        r |= Ready::READ;
    }
    if interest.is_writable() {
        r |= Ready::WRITE;
    }
    r
}

impl Selector {
    pub(crate) fn new() -> io::Result<Selector> {
        Ok(Selector {
            epoll: epoll::create(CreateFlags::CLOEXEC)?,
            buf: Vec::with_capacity(256),
            always_ready: Vec::new(),
        })
    }

    /// Forgets `key` without a system call: its descriptor, the last reference to its
    /// socket, is about to be closed, which removes it from the epoll set.
    pub(crate) fn forget(&mut self, key: usize) {
        self.always_ready.retain(|&(k, _)| k != key);
    }

    pub(crate) fn update(
        &mut self,
        fd: BorrowedFd<'_>,
        key: usize,
        old: Interest,
        new: Interest,
    ) -> io::Result<()> {
        if let Some(i) = self.always_ready.iter().position(|&(k, _)| k == key) {
            if new.is_empty() {
                self.always_ready.swap_remove(i);
            } else {
                self.always_ready[i].1 = new;
            }
            return Ok(());
        }
        let data = EventData::new_u64(key as u64);
        let result = if old.is_empty() {
            epoll::add(&self.epoll, fd, data, flags(new))
        } else if new.is_empty() {
            epoll::delete(&self.epoll, fd)
        } else {
            epoll::modify(&self.epoll, fd, data, flags(new))
        };
        match result {
            Err(rustix::io::Errno::PERM) if old.is_empty() => {
                self.always_ready.push((key, new));
                Ok(())
            }
            other => Ok(other?),
        }
    }

    pub(crate) fn wait(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<&Timespec>,
    ) -> io::Result<()> {
        let zero = Timespec::default();
        let timeout = if self.always_ready.is_empty() {
            timeout
        } else {
            Some(&zero)
        };
        self.buf.clear();
        epoll::wait(&self.epoll, spare_capacity(&mut self.buf), timeout)?;
        events.extend(self.buf.iter().map(|ev| Event {
            key: ev.data.u64() as usize,
            ready: ready_of_flags(ev.flags),
        }));
        if self.buf.len() == self.buf.capacity() {
            self.buf.reserve(self.buf.capacity());
        }
        events.extend(self.always_ready.iter().map(|&(key, interest)| Event {
            key,
            ready: ready_of(interest),
        }));
        Ok(())
    }
}

/// epoll's flags as `Ready` bits, by table lookup: every epoll flag the loop asks for or
/// the kernel reports unasked (IN, PRI, OUT, ERR, HUP) is below bit 5.
#[inline]
fn ready_of_flags(f: EventFlags) -> Ready {
    const TABLE: [Ready; 32] = {
        const PAIRS: [(EventFlags, Ready); 5] = [
            (EventFlags::IN, Ready::READ),
            (EventFlags::OUT, Ready::WRITE),
            (EventFlags::PRI, Ready::PRI),
            (EventFlags::HUP, Ready::HUP),
            (EventFlags::ERR, Ready::ERR),
        ];
        let mut table = [Ready::NONE; 32];
        let mut bits = 0;
        while bits < 32 {
            let mut i = 0;
            while i < PAIRS.len() {
                if bits as u32 & PAIRS[i].0.bits() != 0 {
                    table[bits] = table[bits].union(PAIRS[i].1);
                }
                i += 1;
            }
            bits += 1;
        }
        table
    };
    TABLE[(f.bits() & 31) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_table_maps_each_flag_and_combinations() {
        assert_eq!(ready_of_flags(EventFlags::empty()), Ready::NONE);
        assert_eq!(ready_of_flags(EventFlags::IN), Ready::READ);
        assert_eq!(ready_of_flags(EventFlags::OUT), Ready::WRITE);
        assert_eq!(ready_of_flags(EventFlags::PRI), Ready::PRI);
        assert_eq!(ready_of_flags(EventFlags::HUP), Ready::HUP);
        assert_eq!(ready_of_flags(EventFlags::ERR), Ready::ERR);
        assert_eq!(
            ready_of_flags(EventFlags::IN | EventFlags::HUP | EventFlags::RDHUP),
            Ready::READ | Ready::HUP
        );
        assert_eq!(
            ready_of_flags(EventFlags::OUT | EventFlags::ERR | EventFlags::HUP),
            Ready::WRITE | Ready::ERR | Ready::HUP
        );
    }
}
