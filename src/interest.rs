//! What a channel asks the OS to watch for.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// The readiness a channel asks the backend to watch: readable, writable, both or neither.
///
/// The loop computes it each time it asks a channel's [`readable`] and [`writable`]
/// predicates. `READABLE` also watches for out-of-band data (select's except set, poll's
/// `POLLPRI`), as asyncore does.
///
/// [`readable`]: crate::Dispatcher::readable
/// [`writable`]: crate::Dispatcher::writable
///
/// # Examples
///
/// ```
/// use sockloop::Interest;
///
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable());
/// assert!(Interest::NONE.is_empty());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interest(u8);

impl Interest {
    /// Watch nothing: the channel is not registered with the backend at all.
    pub const NONE: Interest = Interest(0);
    /// Watch for input (and out-of-band data, and hang-up).
    pub const READABLE: Interest = Interest(1);
    /// Watch for room to write.
    pub const WRITABLE: Interest = Interest(2);

    /// Builds an interest from asyncore's two predicates.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::Interest;
    ///
    /// assert_eq!(Interest::from_flags(true, false), Interest::READABLE);
    /// ```
    pub const fn from_flags(readable: bool, writable: bool) -> Interest {
        Interest((readable as u8) | ((writable as u8) << 1))
    }

    /// Returns true if input is watched.
    pub const fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }

    /// Returns true if room to write is watched.
    pub const fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }

    /// Returns true if nothing is watched.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        Interest(self.0 | rhs.0)
    }
}

impl BitOrAssign for Interest {
    fn bitor_assign(&mut self, rhs: Interest) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (false, false) => f.write_str("NONE"),
            (true, false) => f.write_str("READABLE"),
            (false, true) => f.write_str("WRITABLE"),
            (true, true) => f.write_str("READABLE | WRITABLE"),
        }
    }
}

/// What the OS reported for one channel in one wait (crate-internal).
///
/// The backends translate select's three sets, poll's `revents` and epoll's flags into
/// these bits; the loop routes them (see the crate docs, "Iteration order").
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub(crate) struct Ready(u8);

impl Ready {
    pub(crate) const NONE: Ready = Ready(0);
    pub(crate) const READ: Ready = Ready(1);
    pub(crate) const WRITE: Ready = Ready(2);
    /// Out-of-band / priority data (select's except set, `POLLPRI`).
    pub(crate) const PRI: Ready = Ready(4);
    /// Hang-up: the peer is gone (`POLLHUP`).
    pub(crate) const HUP: Ready = Ready(8);
    /// An error is pending on the handle (`POLLERR`).
    pub(crate) const ERR: Ready = Ready(16);
    /// The descriptor is not open (`POLLNVAL`, or EBADF found by select).
    pub(crate) const NVAL: Ready = Ready(32);

    pub(crate) const fn intersects(self, other: Ready) -> bool {
        self.0 & other.0 != 0
    }

    pub(crate) const fn union(self, other: Ready) -> Ready {
        Ready(self.0 | other.0)
    }
}

impl BitOr for Ready {
    type Output = Ready;
    fn bitor(self, rhs: Ready) -> Ready {
        Ready(self.0 | rhs.0)
    }
}

impl BitOrAssign for Ready {
    fn bitor_assign(&mut self, rhs: Ready) {
        self.0 |= rhs.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip() {
        for r in [false, true] {
            for w in [false, true] {
                let i = Interest::from_flags(r, w);
                assert_eq!(i.is_readable(), r);
                assert_eq!(i.is_writable(), w);
                assert_eq!(i.is_empty(), !r && !w);
            }
        }
        assert_eq!(
            Interest::READABLE | Interest::WRITABLE,
            Interest::from_flags(true, true)
        );
        let hup_in = Ready::HUP | Ready::READ;
        assert!(hup_in.intersects(Ready::HUP));
        assert!(!hup_in.intersects(Ready::ERR | Ready::NVAL));
        assert!(hup_in.intersects(Ready::ERR | Ready::READ));
    }
}
