//! sockloop: Python's asyncore + asynchat model, done properly in Rust.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod chat;
mod channel;
mod context;
mod dispatcher;
mod event_loop;
mod interest;
pub mod producer;
mod route;
mod send;
#[allow(unsafe_code)]
mod sys;
mod token;

pub use channel::{is_disconnect, Channel, State};
pub use chat::{Piece, Scanner, Terminator};
pub use context::Context;
pub use dispatcher::Dispatcher;
pub use event_loop::{EventLoop, Mode};
pub use interest::Interest;
pub use producer::{Producer, SimpleProducer};
pub use socket2::{Domain, SockAddr, Socket, Type};
pub use sys::Backend;
pub use token::Token;
