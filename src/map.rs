//! [`Map`]: the channel map (asyncore's `socket_map`): slots of entries addressed by
//! [`Token`], with generations, deferred slot reuse and the queue of channels whose
//! predicates must be re-asked ("dirty").

use crate::channel::Channel;
use crate::deadline::Armed;
use crate::dispatcher::{Dispatcher, ACCEPT_BATCH};
use crate::interest::Interest;
use crate::token::Token;

/// A channel in the map with its dispatcher and the loop's bookkeeping for it.
pub(crate) struct Entry<S> {
    pub(crate) channel: Channel,
    pub(crate) dispatcher: Box<dyn Dispatcher<S>>,
    pub(crate) reg: Registration,
}

/// What the loop keeps about a channel besides the channel itself: its registration
/// with the backend and the loop timer armed for its deadlines.
#[derive(Debug, Default)]
pub(crate) struct Registration {
    /// The interest registered with the backend.
    pub(crate) registered: Interest,
    /// The loop timer currently armed for this channel, and its deadline.
    pub(crate) armed: Armed,
    /// A listener's accept pace (the default `Dispatcher::handle_accept`).
    pub(crate) accept: AcceptPace,
}

/// How many connections a listener's read event accepts: one while they arrive one at a
/// time (each extra `accept` would fail with `EAGAIN`), a batch once the listener is
/// reported again in the very next iteration (more were waiting), until a batch finds a
/// single connection.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AcceptPace {
    /// The loop iteration of the last accept event, if any.
    last: Option<u32>,
    burst: bool,
}

impl AcceptPace {
    /// At an accept event in loop iteration `now`: how many connections to take.
    pub(crate) fn limit(&mut self, now: u32) -> usize {
        if self.last == Some(now.wrapping_sub(1)) {
            self.burst = true;
        }
        self.last = Some(now);
        if self.burst {
            ACCEPT_BATCH
        } else {
            1
        }
    }

    /// After the event: `accepted` connections, `drained` if the backlog was found empty.
    pub(crate) fn done(&mut self, accepted: usize, drained: bool) {
        if drained && accepted <= 1 {
            self.burst = false;
        }
    }
}

enum SlotState<S> {
    Vacant,
    /// Taken out of the map while one of its hooks runs.
    Busy,
    /// Boxed: a dispatch moves the entry out and back, 8 bytes instead of ~120, and a
    /// slot stays small enough that 1,000 of them fit in L1.
    Occupied(Box<Entry<S>>),
}

struct Slot<S> {
    generation: u32,
    /// Queued in `Map::dirty` (re-ask the predicates before the next wait).
    dirty: bool,
    state: SlotState<S>,
}

/// The slots, their free lists and the dirty queue. All access goes through methods.
pub(crate) struct Map<S> {
    slots: Vec<Slot<S>>,
    /// Slots free for reuse now.
    free: Vec<u32>,
    /// Slots freed during this iteration: reusable from the next one, so no event already
    /// read from the OS can reach a new channel in a reused slot.
    pending_free: Vec<u32>,
    dirty: Vec<u32>,
    len: usize,
}

impl<S> Map<S> {
    pub(crate) fn new() -> Map<S> {
        Map {
            slots: Vec::new(),
            free: Vec::new(),
            pending_free: Vec::new(),
            dirty: Vec::new(),
            len: 0,
        }
    }

    /// The number of channels in the map (busy ones included).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The number of slots (an upper bound for slot indices).
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// True if `token` names a channel still in the map (a busy one included).
    pub(crate) fn contains(&self, token: Token) -> bool {
        self.slots.get(token.index as usize).is_some_and(|s| {
            s.generation == token.generation && !matches!(s.state, SlotState::Vacant)
        })
    }

    /// The token of the channel in slot `index`, if it holds one that is not busy.
    pub(crate) fn occupied_token(&self, index: usize) -> Option<Token> {
        let slot = self.slots.get(index)?;
        matches!(slot.state, SlotState::Occupied(_)).then_some(Token {
            index: index as u32,
            generation: slot.generation,
        })
    }

    /// The token the `k`-th next insert will get (k = 0: the next one).
    pub(crate) fn upcoming(&self, k: usize) -> Token {
        let index = match self.free.len().checked_sub(k + 1) {
            Some(i) => self.free[i],
            None => (self.slots.len() + k - self.free.len()) as u32,
        };
        let generation = self.slots.get(index as usize).map_or(0, |s| s.generation);
        Token { index, generation }
    }

    /// Puts an entry in a free slot (the caller checked the slot limit) and queues it
    /// for its first predicates; returns its token. `fill` gets the token first.
    pub(crate) fn insert(&mut self, fill: impl FnOnce(Token) -> Entry<S>) -> Token {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = self.slots.len() as u32;
                self.slots.push(Slot {
                    generation: 0,
                    dirty: false,
                    state: SlotState::Vacant,
                });
                i
            }
        };
        let slot = &mut self.slots[index as usize];
        let token = Token {
            index,
            generation: slot.generation,
        };
        slot.state = SlotState::Occupied(Box::new(fill(token)));
        self.len += 1;
        self.mark_dirty(index);
        token
    }

    /// Queues slot `index` for re-asking its predicates before the next wait.
    pub(crate) fn mark_dirty(&mut self, index: u32) {
        if let Some(slot) = self.slots.get_mut(index as usize) {
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push(index);
            }
        }
    }

    /// A channel that is not running a hook.
    pub(crate) fn entry(&self, token: Token) -> Option<&Entry<S>> {
        let slot = self.slots.get(token.index as usize)?;
        match &slot.state {
            SlotState::Occupied(e) if slot.generation == token.generation => Some(&**e),
            _ => None,
        }
    }

    /// Mutable access to a channel that is not running a hook; marks it for re-asking
    /// (a busy channel's slot is marked too, and gets `None`).
    pub(crate) fn entry_mut(&mut self, token: Token) -> Option<&mut Entry<S>> {
        if !self.contains(token) {
            return None;
        }
        self.mark_dirty(token.index);
        match &mut self.slots[token.index as usize].state {
            SlotState::Occupied(e) => Some(&mut **e),
            _ => None,
        }
    }

    /// The entry in slot `index` if it holds one that is not busy, without marking it.
    pub(crate) fn at_mut(&mut self, index: usize) -> Option<&mut Entry<S>> {
        match &mut self.slots.get_mut(index)?.state {
            SlotState::Occupied(e) => Some(&mut **e),
            _ => None,
        }
    }

    /// Removes a live, not busy channel: its slot is freed (reusable next iteration) and
    /// the entry handed to the caller to close and drop. `None` for a stale token or a
    /// busy channel.
    pub(crate) fn remove(&mut self, token: Token) -> Option<Box<Entry<S>>> {
        let slot = self.slots.get_mut(token.index as usize)?;
        if slot.generation != token.generation {
            return None;
        }
        match std::mem::replace(&mut slot.state, SlotState::Vacant) {
            SlotState::Occupied(entry) => {
                self.free(token.index);
                Some(entry)
            }
            other => {
                slot.state = other;
                None
            }
        }
    }

    /// Takes the entry in slot `index` out for a dispatch (the slot is busy until
    /// [`put_back`](Map::put_back) or [`free`](Map::free)).
    #[inline(always)]
    pub(crate) fn check_out(&mut self, index: usize) -> Option<(Token, Box<Entry<S>>)> {
        let slot = self.slots.get_mut(index)?;
        match std::mem::replace(&mut slot.state, SlotState::Busy) {
            SlotState::Occupied(entry) => Some((
                Token {
                    index: index as u32,
                    generation: slot.generation,
                },
                entry,
            )),
            other => {
                slot.state = other;
                None
            }
        }
    }

    /// Puts a checked-out entry back in its slot.
    #[inline(always)]
    pub(crate) fn put_back(&mut self, index: usize, entry: Box<Entry<S>>) {
        self.slots[index].state = SlotState::Occupied(entry);
    }

    /// Frees a busy or just emptied slot: the generation moves on and the slot is
    /// reusable from the next iteration.
    pub(crate) fn free(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        slot.state = SlotState::Vacant;
        slot.generation = slot.generation.wrapping_add(1);
        self.pending_free.push(index);
        self.len -= 1;
    }

    /// At the start of an iteration: slots freed during the last one become reusable.
    pub(crate) fn release_freed(&mut self) {
        self.free.append(&mut self.pending_free);
    }

    /// Every channel that is not busy, with its token, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Token, &Entry<S>)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| match &slot.state {
                SlotState::Occupied(e) => Some((
                    Token {
                        index: index as u32,
                        generation: slot.generation,
                    },
                    &**e,
                )),
                _ => None,
            })
    }

    /// Every channel that is not busy and not queued for re-asking, with its slot index.
    #[cfg(debug_assertions)]
    pub(crate) fn settled(&self) -> impl Iterator<Item = (usize, &Entry<S>)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| match &slot.state {
                SlotState::Occupied(e) if !slot.dirty => Some((index, &**e)),
                _ => None,
            })
    }

    /// Empties the dirty queue (every slot is about to be asked anyway).
    pub(crate) fn clear_dirty(&mut self) {
        for slot in &mut self.slots {
            slot.dirty = false;
        }
        self.dirty.clear();
    }

    /// Takes the dirty queue, unmarking its slots; give it back with
    /// [`restore_dirty`](Map::restore_dirty) to keep its allocation.
    pub(crate) fn take_dirty(&mut self) -> Vec<u32> {
        let dirty = std::mem::take(&mut self.dirty);
        for &index in &dirty {
            self.slots[index as usize].dirty = false;
        }
        dirty
    }

    /// Gives back the (emptied) queue taken by [`take_dirty`](Map::take_dirty); what was
    /// marked meanwhile stays queued.
    pub(crate) fn restore_dirty(&mut self, mut dirty: Vec<u32>) {
        dirty.clear();
        dirty.append(&mut self.dirty);
        self.dirty = dirty;
    }
}
