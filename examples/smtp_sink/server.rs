//! The SMTP sink on the loop: the session's channel, the listener, and the writer's
//! results coming back.

use std::io;
use std::net::SocketAddr;

use sockloop::chat::AsyncChat;
use sockloop::{Channel, Context, Dispatcher, EventLoop, LoopHandle, SockAddr, Timeout, Token};

use super::{Session, Sink, Storage};

/// On the loop thread: hands each result to its session (if it is still connected).
fn completed(ev: &mut LoopHandle<Sink>, done: Vec<(Token, u64, io::Result<String>)>) {
    for (token, seq, result) in done {
        let Some(conn) = ev.dispatcher_mut::<Conn>(token) else {
            if let Ok(name) = &result {
                log::info!("stored {name} for a client that left before its reply");
            }
            continue;
        };
        let (out, close) = conn.chat.handler_mut().stored(seq, result);
        if let Some(ch) = ev.channel_mut(token) {
            if !out.is_empty() && ch.push_vec(out).is_err() {
                continue; // already closing
            }
            if close {
                ch.close_when_done();
            }
        }
    }
}

/// A session on the loop: the chat channel, not read from while the session is
/// [backlogged](Session::is_backlogged), and kept open after the client's end of file
/// until the replies still waiting for storage are sent.
pub struct Conn {
    chat: AsyncChat<Session>,
}

impl Dispatcher<Sink> for Conn {
    fn readable(&self, channel: &Channel) -> bool {
        self.chat.readable(channel) && !self.chat.handler().is_backlogged()
    }

    fn writable(&self, channel: &Channel) -> bool {
        self.chat.writable(channel)
    }

    fn handle_connect(&mut self, ctx: &mut Context<'_, Sink>) -> io::Result<()> {
        self.chat.handle_connect(ctx)
    }

    fn handle_read(&mut self, ctx: &mut Context<'_, Sink>) -> io::Result<()> {
        self.chat.handle_read(ctx)
    }

    fn handle_write(&mut self, ctx: &mut Context<'_, Sink>) -> io::Result<()> {
        self.chat.handle_write(ctx)
    }

    fn handle_expt(&mut self, ctx: &mut Context<'_, Sink>) -> io::Result<()> {
        self.chat.handle_expt(ctx)
    }

    fn handle_eof(&mut self, ctx: &mut Context<'_, Sink>) -> io::Result<()> {
        let session = self.chat.handler_mut();
        if session.deferred.is_empty() {
            self.chat.handle_eof(ctx)
        } else {
            session.eof = true; // closed by `completed` once the replies are out
            Ok(())
        }
    }

    fn handle_timeout(&mut self, ctx: &mut Context<'_, Sink>, which: Timeout) -> io::Result<()> {
        self.chat.handle_timeout(ctx, which)
    }

    fn handle_close(&mut self, ctx: &mut Context<'_, Sink>) -> io::Result<()> {
        self.chat.handle_close(ctx)
    }

    fn handle_error(&mut self, ctx: &mut Context<'_, Sink>, err: io::Error) -> io::Result<()> {
        self.chat.handle_error(ctx, err)
    }
}

/// The listening channel: each connection gets a [`Session`] and the greeting.
pub struct Listener;

impl Dispatcher<Sink> for Listener {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_, Sink>,
        channel: Channel,
        _: SockAddr,
    ) -> io::Result<()> {
        let mut ch = channel;
        ch.set_idle_timeout(ctx.state().config.idle_timeout);
        ch.push(&ctx.state().greeting())?;
        let chat = Session::chat()?;
        ctx.handle().add(ch, Conn { chat })?;
        Ok(())
    }
}

/// Starts the writer thread (reporting through the loop's `Remote`) and opens the sink on
/// `addr` in `event_loop`; returns the address it is listening on.
///
/// # Errors
///
/// Listening errors, naming the address; the thread could not be started.
pub fn listen(event_loop: &mut EventLoop<Sink>, addr: SocketAddr) -> io::Result<SocketAddr> {
    let remote = event_loop.remote()?;
    if let Storage::Writer(writer) = &mut event_loop.state_mut().storage {
        writer.start(remote, completed)?;
    }
    let listener = Channel::tcp_listener(addr, 1024)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let bound = listener.local_inet_addr()?;
    event_loop.add(listener, Listener)?;
    Ok(bound)
}
