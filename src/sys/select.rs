//! select(2) backend.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use rustix::event::{fd_set_insert, fd_set_num_elements, FdSetElement, FdSetIter, Timespec};

use super::{is_open, slot_of, Event};
use crate::interest::{Interest, Ready};

struct Watched {
    fd: RawFd,
    key: usize,
    interest: Interest,
}

/// Registrations kept in a dense list; the three sets are rebuilt for each wait, sized to
/// the highest descriptor (so there is no `FD_SETSIZE` cap on Linux).
#[derive(Default)]
pub(crate) struct Selector {
    entries: Vec<Watched>,
    slots: Vec<u32>,
    read: Vec<FdSetElement>,
    write: Vec<FdSetElement>,
    except: Vec<FdSetElement>,
    /// `by_fd[fd]` = 1 + index into `entries`, rebuilt by each wait.
    by_fd: Vec<u32>,
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
        let fd = fd.as_raw_fd();
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        if !new.is_empty() && fd as usize >= 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("fd {fd} is at or above FD_SETSIZE (1024), the select backend's limit on this OS; use Backend::Poll or Backend::Epoll"),
            ));
        }
        let slot = slot_of(&mut self.slots, key);
        match (*slot, new.is_empty()) {
            (0, true) => {}
            (0, false) => {
                *slot = self.entries.len() as u32 + 1;
                self.entries.push(Watched {
                    fd,
                    key,
                    interest: new,
                });
            }
            (i, true) => {
                *slot = 0;
                let i = i as usize - 1;
                self.entries.swap_remove(i);
                if let Some(moved) = self.entries.get(i) {
                    self.slots[moved.key] = i as u32 + 1;
                }
            }
            (i, false) => {
                let e = &mut self.entries[i as usize - 1];
                e.fd = fd;
                e.interest = new;
            }
        }
        Ok(())
    }

    pub(crate) fn wait(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<&Timespec>,
    ) -> io::Result<()> {
        let nfds = self.entries.iter().map(|e| e.fd + 1).max().unwrap_or(0);
        let len = fd_set_num_elements(self.entries.len(), nfds);
        for set in [&mut self.read, &mut self.write, &mut self.except] {
            set.clear();
            set.resize(len, FdSetElement::default());
        }
        self.by_fd.clear();
        self.by_fd.resize(nfds as usize, 0);
        for (i, e) in self.entries.iter().enumerate() {
            self.by_fd[e.fd as usize] = i as u32 + 1;
            if e.interest.is_readable() {
                fd_set_insert(&mut self.read, e.fd);
            }
            if e.interest.is_writable() {
                fd_set_insert(&mut self.write, e.fd);
            }
            fd_set_insert(&mut self.except, e.fd);
        }
        // SAFETY: every fd in the sets was registered by the loop, which deregisters a
        // descriptor before closing it; a descriptor closed behind the loop's back makes
        // select fail with EBADF (handled below), it cannot make it touch other memory:
        // the sets are sized by fd_set_num_elements for nfds.
        let result = unsafe {
            rustix::event::select(
                nfds,
                Some(&mut self.read),
                Some(&mut self.write),
                Some(&mut self.except),
                timeout,
            )
        };
        match result {
            Ok(0) => Ok(()),
            Ok(_) => {
                self.harvest(events);
                Ok(())
            }
            Err(rustix::io::Errno::BADF) => {
                // A descriptor was closed behind the loop's back: report it as invalid,
                // like poll's POLLNVAL, so its channel is closed instead of failing the loop.
                events.extend(
                    self.entries
                        .iter()
                        .filter(|e| !is_open(e.fd))
                        .map(|e| Event {
                            key: e.key,
                            ready: Ready::NVAL,
                        }),
                );
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reports in asyncore.poll's order: every read, then every write, then every except.
    fn harvest(&self, events: &mut Vec<Event>) {
        let phases = [
            (&self.read, Ready::READ),
            (&self.write, Ready::WRITE),
            (&self.except, Ready::PRI),
        ];
        for (set, ready) in phases {
            for fd in FdSetIter::new(set) {
                if let Some(&i) = self.by_fd.get(fd as usize).filter(|&&i| i != 0) {
                    let key = self.entries[i as usize - 1].key;
                    events.push(Event { key, ready });
                }
            }
        }
    }
}
