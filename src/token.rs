//! Generation-tagged channel ids.

use std::fmt;

/// Identifies one channel in an [`EventLoop`](crate::EventLoop) for its whole life.
///
/// A token is a slot index plus a generation. When a channel closes its slot's generation
/// moves on, so a token of a closed channel never names a newer channel that reuses the
/// slot or the same fd number: lookups with a stale token find nothing, and events meant
/// for the old channel are dropped (the fix for CPython's bpo-30931, where channels were
/// keyed by fd number).
///
/// # Examples
///
/// ```
/// use std::net::TcpListener;
/// use sockloop::{Channel, EventLoop, Dispatcher};
///
/// struct Idle;
/// impl Dispatcher for Idle {}
///
/// let mut event_loop = EventLoop::new()?;
/// let token = event_loop.add(Channel::from_socket(TcpListener::bind("127.0.0.1:0")?)?, Idle)?;
/// assert!(event_loop.contains(token));
/// event_loop.close(token);
/// assert!(!event_loop.contains(token));
/// # std::io::Result::Ok(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl Token {
    /// The slot index (reused after close; the generation is not).
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// The generation of the slot when this channel was added.
    pub fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}v{})", self.index, self.generation)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}v{}", self.index, self.generation)
    }
}
