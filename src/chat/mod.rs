//! asynchat: terminator-delimited input and the output FIFO.
//!
//! * [`Scanner`] is the pure input side: it splits received bytes at a [`Terminator`]
//!   exactly as CPython's `async_chat.handle_read` does, with no socket.
//! * [`ChatHandler`] is what a protocol implements: asynchat's `collect_incoming_data` and
//!   `found_terminator`, plus `handle_close`, `handle_error` and a hook for over-long
//!   records. Its callbacks receive a [`ChatContext`] with asynchat's methods
//!   (`set_terminator`, `push`, `push_with_producer`, `close_when_done`,
//!   `discard_buffers`) and the loop around the channel.
//! * [`AsyncChat`] (asynchat's `async_chat`) is the [`Dispatcher`](crate::Dispatcher) that
//!   runs a handler on a channel: reads, scanning, record limit, output back-pressure.
//! * [`Scripted`] runs the same handler on scripted reads, with no socket, for tests.
//!
//! Output goes through the channel's queue ([`Channel::push`](crate::Channel::push)),
//! producers are [`Producer`](crate::Producer)s such as
//! [`SimpleProducer`](crate::SimpleProducer).
//!
//! | asynchat | sockloop |
//! |---|---|
//! | `class P(async_chat)` | `impl ChatHandler for P`, run as `AsyncChat::new(p)` |
//! | `collect_incoming_data`, `found_terminator` | the same, on [`ChatHandler`] |
//! | `set_terminator`, `get_terminator` | [`ChatContext::set_terminator`], [`ChatContext::get_terminator`] |
//! | `push`, `push_with_producer`, `close_when_done` | the same, on [`ChatContext`] |
//! | `discard_buffers` | [`ChatContext::discard_buffers`] |
//! | `ac_in_buffer_size` | [`AsyncChat::set_in_buffer_size`] |
//! | `ac_out_buffer_size` | [`Channel::set_out_buffer_size`](crate::Channel::set_out_buffer_size) |
//! | (none) | [`AsyncChat::set_max_record`], [`AsyncChat::set_watermarks`] |

mod async_chat;
mod handler;
mod scanner;
mod script;
mod transport;

pub use async_chat::AsyncChat;
pub use handler::{ChatContext, ChatHandler};
pub use scanner::*;
pub use script::Scripted;
