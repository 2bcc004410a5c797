//! Where a chat handler's output goes: a channel in a loop, or a scripted peer. The
//! chat layer is written once against this trait; [`ChatContext`](super::ChatContext)
//! forwards to it.

use std::io;

use crate::channel::Pending;
use crate::context::Context;
use crate::handle::LoopHandle;
use crate::producer::Producer;
use crate::token::Token;

pub(crate) trait Transport<S> {
    fn push(&mut self, data: &[u8]) -> io::Result<()>;
    fn push_vec(&mut self, data: Vec<u8>) -> io::Result<()>;
    fn push_producer(&mut self, producer: Box<dyn Producer>) -> io::Result<()>;
    fn close_when_done(&mut self);
    fn request_close(&mut self);
    fn is_closing(&self) -> bool;
    fn close(&mut self);
    fn is_closed(&self) -> bool;
    /// Drops queued output; returns the bytes dropped.
    fn discard_output(&mut self) -> usize;
    /// Bytes queued and not yet sent.
    fn pending_output(&self) -> usize;
    /// True once input must not be delivered any more: closed, closing, or the peer is
    /// gone.
    fn stops_input(&self) -> bool;
    fn token(&self) -> Token;
    fn handle(&mut self) -> &mut LoopHandle<S>;
    fn handle_ref(&self) -> &LoopHandle<S>;
    /// For messages: the channel as asyncore's repr shows it.
    fn describe(&self) -> String;
}

impl<S: 'static> Transport<S> for Context<'_, S> {
    fn push(&mut self, data: &[u8]) -> io::Result<()> {
        self.channel.push(data)
    }
    fn push_vec(&mut self, data: Vec<u8>) -> io::Result<()> {
        self.channel.push_vec(data)
    }
    fn push_producer(&mut self, producer: Box<dyn Producer>) -> io::Result<()> {
        self.channel.push_boxed_producer(producer)
    }
    fn close_when_done(&mut self) {
        self.channel.close_when_done();
    }
    fn request_close(&mut self) {
        self.channel.request_close();
    }
    fn is_closing(&self) -> bool {
        self.channel.is_closing()
    }
    fn close(&mut self) {
        Context::close(self);
    }
    fn is_closed(&self) -> bool {
        self.channel.is_closed()
    }
    fn discard_output(&mut self) -> usize {
        self.channel.discard_output()
    }
    fn pending_output(&self) -> usize {
        self.channel.pending_output()
    }
    fn stops_input(&self) -> bool {
        self.channel.is_closed()
            || self.channel.is_closing()
            || self.channel.pending.has(Pending::DISCONNECTED)
    }
    fn token(&self) -> Token {
        self.token
    }
    fn handle(&mut self) -> &mut LoopHandle<S> {
        self.handle
    }
    fn handle_ref(&self) -> &LoopHandle<S> {
        self.handle
    }
    fn describe(&self) -> String {
        self.channel.to_string()
    }
}
