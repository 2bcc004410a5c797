//! Timers: a binary heap of deadlines over a slab of cancellable entries.
//!
//! The heap holds `(deadline, sequence, slot)`; cancelling frees the slot at once and
//! leaves the heap entry to be skipped when it surfaces (it no longer matches the slot's
//! sequence number). The heap is rebuilt when skipped entries outnumber live ones, so
//! cancel-heavy code cannot grow it without bound. Pending timers cost nothing per
//! iteration: the loop looks only at the earliest deadline.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::handle::LoopHandle;
use crate::token::Token;

/// Identifies one timer set with [`LoopHandle::call_later`], [`LoopHandle::call_at`] or
/// [`LoopHandle::call_every`], for [`cancel`](LoopHandle::cancel); the callback receives
/// it too (a periodic timer can cancel itself). Like [`Token`], it carries a generation:
/// a stale id never cancels a newer timer.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    generation: u32,
}

impl fmt::Debug for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimerId({}v{})", self.index, self.generation)
    }
}

/// A callback run on the loop thread with the loop's handle (and state) at hand.
pub(crate) type Callback<S> = Box<dyn FnOnce(&mut LoopHandle<S>, TimerId)>;
/// A periodic callback.
pub(crate) type Periodic<S> = Box<dyn FnMut(&mut LoopHandle<S>, TimerId)>;

/// What a due timer does.
pub(crate) enum Action<S> {
    Once(Callback<S>),
    Every(Duration, Periodic<S>),
    /// A channel's own deadline (idle, connect, accept back-off): the loop works out which.
    Channel(Token),
}

enum TimerState<S> {
    Vacant,
    Pending {
        seq: u64,
        action: Action<S>,
    },
    /// Taken out while its callback runs; `cancelled` stops a periodic timer re-arming.
    Running {
        cancelled: bool,
    },
}

struct TimerSlot<S> {
    generation: u32,
    entry: TimerState<S>,
}

/// A timer that is due, taken out of the set.
pub(crate) struct Due<S> {
    pub(crate) id: TimerId,
    pub(crate) deadline: Instant,
    pub(crate) action: Action<S>,
}

pub(crate) struct Timers<S> {
    heap: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    slots: Vec<TimerSlot<S>>,
    free: Vec<u32>,
    next_seq: u64,
    live: usize,
    /// Heap entries looked at by `pop_due` and `next_deadline` (for the unit tests'
    /// "pending timers cost nothing" check).
    #[cfg(test)]
    examined: usize,
}

impl<S> Default for Timers<S> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
            live: 0,
            #[cfg(test)]
            examined: 0,
        }
    }
}

impl<S> Timers<S> {
    /// The number of pending (and running periodic) timers.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    pub(crate) fn insert(&mut self, deadline: Instant, action: Action<S>) -> TimerId {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(TimerSlot {
                    generation: 0,
                    entry: TimerState::Vacant,
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.live += 1;
        let id = TimerId {
            index,
            generation: self.slots[index as usize].generation,
        };
        self.schedule(id, deadline, action);
        id
    }

    fn schedule(&mut self, id: TimerId, deadline: Instant, action: Action<S>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.slots[id.index as usize].entry = TimerState::Pending { seq, action };
        self.heap.push(Reverse((deadline, seq, id.index)));
    }

    /// Cancels a pending timer, or stops a running periodic one from re-arming. Returns
    /// false for a timer that already fired or was cancelled.
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return false;
        };
        if slot.generation != id.generation {
            return false;
        }
        match &mut slot.entry {
            TimerState::Pending { .. } => {
                self.free_slot(id.index);
                self.compact_if_sparse();
                true
            }
            TimerState::Running { cancelled } if !*cancelled => {
                *cancelled = true;
                true
            }
            _ => false,
        }
    }

    fn free_slot(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        slot.entry = TimerState::Vacant;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        self.live -= 1;
    }

    /// Drops stale heap entries once they outnumber live ones.
    fn compact_if_sparse(&mut self) {
        if self.heap.len() > 64 && self.heap.len() > 2 * self.live {
            let slots = &self.slots;
            self.heap.retain(|Reverse((_, seq, index))| {
                matches!(slots[*index as usize].entry, TimerState::Pending { seq: s, .. } if s == *seq)
            });
        }
    }

    /// Drops stale entries from the top of the heap; true if the top is live.
    fn settle_top(&mut self) -> Option<(Instant, u64, u32)> {
        while let Some(&Reverse(top)) = self.heap.peek() {
            #[cfg(test)]
            {
                self.examined += 1;
            }
            let (_, seq, index) = top;
            match self.slots[index as usize].entry {
                TimerState::Pending { seq: s, .. } if s == seq => return Some(top),
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.settle_top().map(|(deadline, _, _)| deadline)
    }

    /// A mark for [`pop_due`](Timers::pop_due): timers (re-)armed after it are newer.
    pub(crate) fn mark(&self) -> u64 {
        self.next_seq
    }

    /// Takes the earliest timer if it is due at `now` and was armed before `mark`. Equal
    /// deadlines come out in the order they were set. A periodic timer's slot stays
    /// reserved (as running) until [`finish`](Timers::finish).
    pub(crate) fn pop_due(&mut self, now: Instant, mark: u64) -> Option<Due<S>> {
        let (deadline, seq, index) = self.settle_top()?;
        if deadline > now || seq >= mark {
            return None;
        }
        self.heap.pop();
        let slot = &mut self.slots[index as usize];
        let id = TimerId {
            index,
            generation: slot.generation,
        };
        let TimerState::Pending { action, .. } =
            std::mem::replace(&mut slot.entry, TimerState::Running { cancelled: false })
        else {
            unreachable!("settle_top returned a pending entry")
        };
        if !matches!(action, Action::Every(..)) {
            self.free_slot(index);
        }
        Some(Due {
            id,
            deadline,
            action,
        })
    }

    /// After a periodic timer's callback ran: re-arm it one period after its deadline (or
    /// one period from `now` if it fell behind: missed ticks are skipped, not bunched),
    /// unless it was cancelled meanwhile.
    pub(crate) fn finish(
        &mut self,
        id: TimerId,
        deadline: Instant,
        now: Instant,
        period: Duration,
        f: Periodic<S>,
    ) {
        let slot = &self.slots[id.index as usize];
        if slot.generation != id.generation {
            return;
        }
        if matches!(slot.entry, TimerState::Running { cancelled: true }) {
            self.free_slot(id.index);
            return;
        }
        let mut next = deadline_after(deadline, period);
        if next <= now {
            next = deadline_after(now, period);
        }
        self.schedule(id, next, Action::Every(period, f));
    }
}

/// The instant `delay` from `now`, saturating far in the future instead of overflowing.
pub(crate) fn deadline_after(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Why a channel's timer fired, passed to
/// [`Dispatcher::handle_timeout`](crate::Dispatcher::handle_timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// No read or write event reached the channel for its
    /// [idle timeout](crate::Channel::set_idle_timeout).
    Idle,
    /// The connect did not complete within the
    /// [connect timeout](crate::Channel::set_connect_timeout).
    Connect,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop() -> Action<()> {
        Action::Once(Box::new(|_, _| {}))
    }

    fn drain(timers: &mut Timers<()>, now: Instant) -> Vec<TimerId> {
        std::iter::from_fn(|| timers.pop_due(now, u64::MAX).map(|d| d.id)).collect()
    }

    #[test]
    fn equal_deadlines_fire_in_insertion_order() {
        let mut timers = Timers::<()>::default();
        let t0 = Instant::now();
        let ids: Vec<_> = (0..50).map(|_| timers.insert(t0, noop())).collect();
        assert_eq!(drain(&mut timers, t0), ids);
        assert_eq!(timers.len(), 0);
    }

    #[test]
    fn not_due_before_deadline() {
        let mut timers = Timers::<()>::default();
        let t0 = Instant::now();
        let late = timers.insert(t0 + Duration::from_millis(5), noop());
        let early = timers.insert(t0 + Duration::from_millis(1), noop());
        assert!(timers.pop_due(t0, u64::MAX).is_none());
        assert_eq!(
            drain(&mut timers, t0 + Duration::from_millis(1)),
            vec![early]
        );
        assert_eq!(
            drain(&mut timers, t0 + Duration::from_millis(9)),
            vec![late]
        );
    }

    #[test]
    fn cancel_and_stale_ids() {
        let mut timers = Timers::<()>::default();
        let t0 = Instant::now();
        let a = timers.insert(t0, noop());
        assert!(timers.cancel(a));
        assert!(!timers.cancel(a), "second cancel");
        let b = timers.insert(t0, noop()); // reuses a's slot
        assert!(!timers.cancel(a), "stale id must not cancel the new timer");
        assert_eq!(drain(&mut timers, t0), vec![b]);
        assert!(!timers.cancel(b), "fired");
    }

    #[test]
    fn ten_thousand_pending_timers_cost_one_peek() {
        let mut timers = Timers::<()>::default();
        let t0 = Instant::now();
        for i in 0..10_000u64 {
            timers.insert(t0 + Duration::from_secs(60 + i), noop());
        }
        timers.examined = 0;
        for _ in 0..100 {
            assert!(timers.pop_due(t0, u64::MAX).is_none());
            assert!(timers.next_deadline().is_some());
        }
        assert_eq!(timers.examined, 200, "one heap peek per call");
    }

    #[test]
    fn cancelled_entries_do_not_accumulate() {
        let mut timers = Timers::<()>::default();
        let t0 = Instant::now();
        let keep = timers.insert(t0 + Duration::from_secs(1), noop());
        for _ in 0..100_000 {
            let id = timers.insert(t0 + Duration::from_secs(2), noop());
            timers.cancel(id);
        }
        assert!(timers.heap.len() <= 130, "heap kept {}", timers.heap.len());
        assert_eq!(timers.len(), 1);
        assert!(timers.cancel(keep));
    }

    #[test]
    fn periodic_rearms_and_skips_missed_ticks() {
        let mut timers = Timers::<()>::default();
        let t0 = Instant::now();
        let p = Duration::from_millis(10);
        let id = timers.insert(t0 + p, Action::Every(p, Box::new(|_, _| {})));
        let due = timers.pop_due(t0 + p, u64::MAX).unwrap();
        let Action::Every(period, f) = due.action else {
            panic!("periodic")
        };
        // The callback ran late by 35 ms: the next tick is one period from now.
        let now = t0 + Duration::from_millis(45);
        timers.finish(id, due.deadline, now, period, f);
        assert_eq!(timers.next_deadline(), Some(now + p));
        assert_eq!(timers.len(), 1);
        // Cancelled while running: not re-armed.
        let due = timers.pop_due(now + p, u64::MAX).unwrap();
        assert!(timers.cancel(id));
        let Action::Every(period, f) = due.action else {
            panic!("periodic")
        };
        timers.finish(id, due.deadline, now + p, period, f);
        assert_eq!(timers.len(), 0);
        assert_eq!(timers.next_deadline(), None);
    }
}
