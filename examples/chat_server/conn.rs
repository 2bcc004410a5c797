//! A member's channel (the chat layer plus the room's flow control) and opening the room.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sockloop::chat::AsyncChat;
use sockloop::{Channel, Context, Dispatcher, EventLoop, LoopHandle, Timeout};

use super::{Client, Listener, Room};

/// A member's channel: the chat layer plus the room's flow control.
pub struct Conn {
    pub(super) chat: AsyncChat<Client>,
}

impl Dispatcher<Room> for Conn {
    /// Not while lines of its last read wait for their turn.
    fn readable(&self, channel: &Channel) -> bool {
        self.chat.readable(channel) && self.chat.handler().backlog.is_empty()
    }

    /// Also for another turn, when lines wait and the room can take them.
    fn writable(&self, channel: &Channel) -> bool {
        let client = self.chat.handler();
        self.chat.writable(channel)
            || (!client.backlog.is_empty() && !client.who_wait && !client.parked)
    }

    fn handle_read(&mut self, ctx: &mut Context<'_, Room>) -> io::Result<()> {
        let me = ctx.token();
        ctx.state_mut().active(me, Instant::now());
        self.chat.handle_read(ctx)?;
        self.chat.handler_mut().pump(ctx)
    }

    fn handle_write(&mut self, ctx: &mut Context<'_, Room>) -> io::Result<()> {
        let before = ctx.pending_output();
        self.chat.handle_write(ctx)?;
        let after = ctx.pending_output();
        if after < before {
            let me = ctx.token();
            let talkers = ctx.state_mut().drained(me, after, Instant::now());
            if talkers.contains(&me) {
                self.chat.handler_mut().parked = false; // wake cannot reach this channel
            }
            super::wake(ctx.handle(), talkers);
        }
        self.chat.handler_mut().pump(ctx)
    }

    fn handle_connect(&mut self, ctx: &mut Context<'_, Room>) -> io::Result<()> {
        self.chat.handle_connect(ctx)
    }

    fn handle_expt(&mut self, ctx: &mut Context<'_, Room>) -> io::Result<()> {
        self.chat.handle_expt(ctx)
    }

    /// Serves what is left of the backlog (as far as the room allows now), then the chat
    /// layer's end of file.
    fn handle_eof(&mut self, ctx: &mut Context<'_, Room>) -> io::Result<()> {
        self.chat.handler_mut().pump(ctx)?;
        self.chat.handle_eof(ctx)
    }

    fn handle_timeout(&mut self, ctx: &mut Context<'_, Room>, which: Timeout) -> io::Result<()> {
        self.chat.handle_timeout(ctx, which)
    }

    fn handle_close(&mut self, ctx: &mut Context<'_, Room>) -> io::Result<()> {
        self.chat.handle_close(ctx)
    }

    fn handle_error(&mut self, ctx: &mut Context<'_, Room>, err: io::Error) -> io::Result<()> {
        self.chat.handle_error(ctx, err)
    }
}

/// Opens the room (the loop's state) on `addr` in `event_loop`, with a timer that
/// disconnects stalled and idle members; returns the address it is listening on.
///
/// # Errors
///
/// If it cannot listen on `addr` (the error names it).
pub fn listen(event_loop: &mut EventLoop<Room>, addr: SocketAddr) -> io::Result<SocketAddr> {
    let listener = Channel::tcp_listener(addr, 1024)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let bound = listener.local_inet_addr()?;
    let config = event_loop.state().config;
    let shortest = [config.idle_timeout, config.stall_timeout]
        .into_iter()
        .flatten()
        .min();
    if let Some(shortest) = shortest {
        let period = (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        event_loop.call_every(period, |lp: &mut LoopHandle<Room>, _| {
            let overdue = lp.state().overdue(Instant::now(), |t| {
                lp.channel(t).map_or(0, Channel::pending_output)
            });
            for (token, why) in overdue {
                log::info!("disconnecting: {why}");
                if let Some(ch) = lp.channel_mut(token) {
                    ch.request_close();
                }
            }
        });
    }
    event_loop.add(listener, Listener)?;
    Ok(bound)
}
