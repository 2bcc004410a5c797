//! asynchat: terminator-delimited input and the output FIFO.
//!
//! [`Scanner`] is the pure input side: it splits received bytes at a [`Terminator`]
//! exactly as CPython's `async_chat.handle_read` does. Output (`push`,
//! `push_with_producer`, `close_when_done`) is the channel's output queue, see
//! [`Channel::push`](crate::Channel::push).

mod terminator;

pub use terminator::*;
