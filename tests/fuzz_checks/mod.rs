//! The checks behind the fuzz targets, in one place.
//!
//! `fuzz/fuzz_targets/*.rs` include this file with
//! `#[path = "../../tests/fuzz_checks/mod.rs"] mod checks;` and panic on an `Err`;
//! `tests/loop/fuzz_mirror.rs` runs the same functions on the checked-in corpus
//! (`fuzz/corpus/<target>/`) and on proptest inputs. Each check takes the raw fuzz input,
//! decodes it with a hand-written byte decoder (so every byte string is a valid input, and
//! proptest can build structured inputs with the matching encoder), runs it through
//! [`Scripted`] — the real `AsyncChat` glue, with no socket — and returns `Err(what)` for
//! a broken invariant. A panic inside sockloop is a failure too.
//!
//! * [`check_chat_input`]: a [`ChatHandler`] that switches terminators (byte strings,
//!   counts, `None`, the rejected empty string), record limits and closes per a decoded
//!   rule list, fed in decoded chunks. Checked: every delivered byte, plus every terminator
//!   consumed, plus what an over-long record skipped, is exactly the input, in order; data
//!   never contains the terminator that ends it (first occurrence wins); counts count
//!   down; record limits hold and over-long records are `InvalidData` errors at exactly
//!   `max` bytes; what is left buffered is a proper prefix of the terminator; and the
//!   whole-buffer, fuzz-chunked and byte-by-byte runs agree.
//! * [`check_smtp_session`]: `examples/smtp_sink/session.rs`'s `Session`. Checked: every reply is a
//!   well-formed RFC 5321 reply (3 digits, `-`/space, ASCII text, CRLF); one reply per
//!   command line, `500 Error: line too long` exactly for lines over 510 bytes, `500` for a
//!   command with a bare CR or LF; memory stays bounded; each stored message equals the
//!   dot-unstuffed DATA, a message with a bare CR or LF is `550` and a message over the
//!   size limit `552`; nothing is left in `tmp/`; and the chunkings agree.

#![allow(dead_code)] // the fuzz targets and the mirror test each use a part

use std::cell::Cell;
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Scripted, Terminator};

#[path = "../../examples/smtp_sink/session.rs"]
#[allow(dead_code)]
pub mod smtp_sink;

// ---- Byte decoding ---------------------------------------------------------------------

/// Reads the fuzz input byte by byte; past the end every byte is 0.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data }
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }

    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// Bytes terminators of decoder kinds 3 and 4 are made of these, so that the fuzzer meets
/// them in the data often (and overlapping ones such as `aab`, `\r\n.\r\n` come up).
pub const ALPHABET: &[u8] = b"ab\r\n.";

/// Decodes a terminator: kind byte, then its arguments.
///
/// | kind % 8 | terminator |
/// |---|---|
/// | 0 | `None` |
/// | 1 | `Count(arg)`, arg one byte (0 included) |
/// | 2 | `Count(u64::MAX >> (arg % 64))` (huge counts) |
/// | 3, 4 | `Bytes`, 1 + arg % 4 bytes, each `ALPHABET[b % 5]` |
/// | 5, 6 | `Bytes`, 1 + arg % 8 raw bytes |
/// | 7 | `Bytes(empty)`: must be rejected |
pub fn decode_terminator(r: &mut Reader<'_>) -> Terminator {
    match r.byte() % 8 {
        0 => Terminator::None,
        1 => Terminator::Count(u64::from(r.byte())),
        2 => Terminator::Count(u64::MAX >> (r.byte() % 64)),
        3 | 4 => {
            let len = 1 + usize::from(r.byte() % 4);
            let t = (0..len)
                .map(|_| ALPHABET[usize::from(r.byte()) % ALPHABET.len()])
                .collect();
            Terminator::Bytes(t)
        }
        5 | 6 => {
            let len = 1 + usize::from(r.byte() % 8);
            Terminator::Bytes(r.bytes(len))
        }
        _ => Terminator::Bytes(Vec::new()),
    }
}

/// The inverse of [`decode_terminator`] for the terminators it can produce.
pub fn encode_terminator(t: &Terminator, out: &mut Vec<u8>) {
    match t {
        Terminator::None => out.push(0),
        Terminator::Count(n) if *n <= 255 => out.extend([1, *n as u8]),
        Terminator::Count(n) => {
            let shift = n.leading_zeros();
            assert_eq!(*n, u64::MAX >> shift, "count {n} cannot be encoded");
            out.extend([2, shift as u8]);
        }
        Terminator::Bytes(b) if b.is_empty() => out.push(7),
        Terminator::Bytes(b) => {
            assert!(
                b.len() <= 8,
                "terminator longer than 8 bytes cannot be encoded"
            );
            out.extend([5, (b.len() - 1) as u8]);
            out.extend_from_slice(b);
        }
    }
}

/// Decodes a record limit: `< 0x40` small (0..15), `< 0xc0` 0..127, else `None`.
pub fn decode_max(r: &mut Reader<'_>) -> Option<usize> {
    match r.byte() {
        m @ 0..0x40 => Some(usize::from(m & 0x0f)),
        m @ 0x40..0xc0 => Some(usize::from(m - 0x40)),
        _ => None,
    }
}

pub fn encode_max(m: Option<usize>, out: &mut Vec<u8>) {
    out.push(match m {
        Some(v) if v < 0x80 => v as u8 + 0x40,
        Some(v) => panic!("record limit {v} cannot be encoded"),
        None => 0xff,
    });
}

/// Splits `data` into chunks of the given sizes, cycling through them; a size of 0 is an
/// empty feed. No sizes (or only zeros) is one chunk.
pub fn split_by_sizes<'a>(data: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    if sizes.iter().all(|&s| s == 0) {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut rest = data;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, more) = rest.split_at(usize::from(size).min(rest.len()));
        out.push(chunk);
        rest = more;
    }
    out
}

/// Position of the first `needle` in `hay` (non-empty needle).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The `buffered` field of `AsyncChat`'s `Debug` output: the bytes its scanner holds.
pub fn chat_buffered<H>(chat: &AsyncChat<H>) -> usize {
    let text = format!("{chat:?}");
    let at = text
        .find("buffered: ")
        .unwrap_or_else(|| panic!("no `buffered` in {text}"));
    text[at + 10..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

// ---- chat_input --------------------------------------------------------------------------

/// What the handler does on a found terminator (the k-th uses rule `k % len`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `set_terminator` (an empty `Bytes` must be rejected, nothing changing).
    pub terminator: Option<Terminator>,
    /// `set_max_record`.
    pub max_record: Option<Option<usize>>,
    /// `close_when_done` (after pushing the reply).
    pub close: bool,
}

/// What `handle_record_too_long` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooLong {
    /// Returns the error: the channel closes.
    Close,
    /// Returns `Ok`: the rest of the record is skipped.
    Skip,
    /// Applies the current rule (usually a new terminator, which ends the skipping), then
    /// returns `Ok`.
    Switch,
}

/// A decoded `chat_input` fuzz input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatProgram {
    pub initial: Terminator,
    pub max_record: Option<usize>,
    pub in_buffer_size: usize,
    pub too_long: TooLong,
    pub rules: Vec<Rule>,
    /// Feed sizes, cycled (see [`split_by_sizes`]).
    pub chunks: Vec<u8>,
    pub data: Vec<u8>,
}

impl ChatProgram {
    /// Layout: initial terminator, record limit, in-buffer size (0 = 65536), too-long
    /// policy (% 3), rule count (% 9) and the rules (flags byte: 1 terminator follows,
    /// 2 limit follows, `0xf0` all set = close), chunk count (% 17) and sizes, then the
    /// data.
    pub fn decode(input: &[u8]) -> ChatProgram {
        let mut r = Reader::new(input);
        let initial = decode_terminator(&mut r);
        let max_record = decode_max(&mut r);
        let in_buffer_size = match r.byte() {
            0 => 65536,
            n => usize::from(n),
        };
        let too_long = match r.byte() % 3 {
            0 => TooLong::Close,
            1 => TooLong::Skip,
            _ => TooLong::Switch,
        };
        let rules = (0..r.byte() % 9)
            .map(|_| {
                let flags = r.byte();
                let terminator = (flags & 1 != 0).then(|| decode_terminator(&mut r));
                let max_record = (flags & 2 != 0).then(|| decode_max(&mut r));
                Rule {
                    terminator,
                    max_record,
                    close: flags & 0xf0 == 0xf0,
                }
            })
            .collect();
        let n = usize::from(r.byte() % 17);
        let chunks = r.bytes(n);
        ChatProgram {
            initial,
            max_record,
            in_buffer_size,
            too_long,
            rules,
            chunks,
            data: r.rest().to_vec(),
        }
    }

    /// The input that [`decode`](ChatProgram::decode)s to `self`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        encode_terminator(&self.initial, &mut out);
        encode_max(self.max_record, &mut out);
        out.push(match self.in_buffer_size {
            65536 => 0,
            n @ 1..=255 => n as u8,
            n => panic!("in_buffer_size {n} cannot be encoded"),
        });
        out.push(self.too_long as u8);
        assert!(self.rules.len() <= 8);
        out.push(self.rules.len() as u8);
        for rule in &self.rules {
            let flags = u8::from(rule.terminator.is_some())
                | (u8::from(rule.max_record.is_some()) << 1)
                | if rule.close { 0xf0 } else { 0 };
            out.push(flags);
            if let Some(t) = &rule.terminator {
                encode_terminator(t, &mut out);
            }
            if let Some(m) = rule.max_record {
                encode_max(m, &mut out);
            }
        }
        assert!(self.chunks.len() <= 16);
        out.push(self.chunks.len() as u8);
        out.extend_from_slice(&self.chunks);
        out.extend_from_slice(&self.data);
        out
    }
}

/// One callback, as the probe handler saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEv {
    /// `collect_incoming_data`, and the terminator right after it.
    Data { bytes: Vec<u8>, after: Terminator },
    /// `found_terminator`: the terminator it reports, the terminator and limit after the
    /// rule, and whether the rule closed.
    Term {
        found: Terminator,
        after: Terminator,
        max_after: Option<usize>,
        close: bool,
    },
    /// `handle_record_too_long`.
    TooLong {
        kind: io::ErrorKind,
        terminator: Terminator,
        max: Option<usize>,
        handled: bool,
        switched: bool,
        close: bool,
        after: Terminator,
        max_after: Option<usize>,
    },
    /// `handle_error`.
    Error(io::ErrorKind),
    /// `handle_close`.
    Close,
}

struct Probe {
    rules: Vec<Rule>,
    too_long: TooLong,
    terms: usize,
    events: Vec<ChatEv>,
    /// The most callbacks a run may make: every callback but the last few consumes input,
    /// so more means parsing stalled (it would loop forever).
    most: usize,
}

impl Probe {
    fn record(&mut self, ev: ChatEv) {
        assert!(
            self.events.len() < self.most,
            "no progress: over {} callbacks, the last {:?}",
            self.most,
            &self.events[self.events.len() - 3..]
        );
        self.events.push(ev);
    }

    /// Applies rule `terms % len`; returns (terminator switched, close asked).
    fn apply_rule(&mut self, ctx: &mut ChatContext<'_>) -> (bool, bool) {
        if self.rules.is_empty() {
            return (false, false);
        }
        let rule = self.rules[self.terms % self.rules.len()].clone();
        let mut switched = false;
        if let Some(t) = rule.terminator {
            let before = ctx.get_terminator().clone();
            match ctx.set_terminator(t.clone()) {
                Ok(()) => {
                    assert_ne!(
                        t,
                        Terminator::Bytes(Vec::new()),
                        "empty terminator accepted"
                    );
                    assert_eq!(ctx.get_terminator(), &t, "get_terminator after set");
                    switched = true;
                }
                Err(e) => {
                    assert_eq!(t, Terminator::Bytes(Vec::new()), "rejected {t:?}: {e}");
                    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
                    assert_eq!(ctx.get_terminator(), &before, "rejected set changed it");
                }
            }
        }
        if let Some(m) = rule.max_record {
            ctx.set_max_record(m);
            assert_eq!(ctx.max_record(), m, "max_record after set");
        }
        (switched, rule.close)
    }
}

impl ChatHandler for Probe {
    fn collect_incoming_data(&mut self, ctx: &mut ChatContext<'_>, data: &[u8]) -> io::Result<()> {
        // During counted data get_terminator still includes it (as asynchat's).
        let after = match ctx.get_terminator() {
            &Terminator::Count(n) if n > 0 => {
                Terminator::Count(n.saturating_sub(data.len() as u64))
            }
            t => t.clone(),
        };
        self.record(ChatEv::Data {
            bytes: data.to_vec(),
            after,
        });
        Ok(())
    }

    fn found_terminator(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
        let found = ctx.get_terminator().clone();
        ctx.push(format!("T{}\n", self.terms).as_bytes())?;
        let (_, close) = self.apply_rule(ctx);
        self.terms += 1;
        self.record(ChatEv::Term {
            found,
            after: ctx.get_terminator().clone(),
            max_after: ctx.max_record(),
            close,
        });
        if close {
            ctx.close_when_done();
        }
        Ok(())
    }

    fn handle_record_too_long(
        &mut self,
        ctx: &mut ChatContext<'_>,
        err: io::Error,
    ) -> io::Result<()> {
        let terminator = ctx.get_terminator().clone();
        let max = ctx.max_record();
        ctx.push(b"L\n")?;
        let (handled, (switched, close)) = match self.too_long {
            TooLong::Close => (false, (false, false)),
            TooLong::Skip => (true, (false, false)),
            TooLong::Switch => (true, self.apply_rule(ctx)),
        };
        self.record(ChatEv::TooLong {
            kind: err.kind(),
            terminator,
            max,
            handled,
            switched,
            close,
            after: ctx.get_terminator().clone(),
            max_after: ctx.max_record(),
        });
        if close {
            ctx.close_when_done();
        }
        if handled {
            Ok(())
        } else {
            Err(err)
        }
    }

    fn handle_close(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
        self.record(ChatEv::Close);
        ctx.close();
        Ok(())
    }

    fn handle_error(&mut self, _: &mut ChatContext<'_>, err: io::Error) -> io::Result<()> {
        self.record(ChatEv::Error(err.kind()));
        Err(err)
    }
}

/// The result of one `chat_input` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatOutcome {
    /// How many input bytes were fed before the channel closed.
    pub fed: usize,
    pub events: Vec<ChatEv>,
    pub output: Vec<u8>,
    pub terminator: Terminator,
    pub closed: bool,
    /// Bytes the scanner holds at the end.
    pub buffered: usize,
    /// Invariants broken while running (memory held after a feed).
    pub violations: Vec<String>,
}

/// Runs `p` with its data fed as `chunks` (which must concatenate to `p.data`).
pub fn chat_run(p: &ChatProgram, chunks: &[&[u8]]) -> ChatOutcome {
    let mut chat = AsyncChat::new(Probe {
        rules: p.rules.clone(),
        too_long: p.too_long,
        terms: 0,
        events: Vec::new(),
        most: 4 * p.data.len() + 16,
    });
    let set = chat.set_terminator(p.initial.clone());
    if p.initial == Terminator::Bytes(Vec::new()) {
        let err = set.expect_err("empty initial terminator accepted");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(chat.get_terminator(), &Terminator::None);
    } else {
        set.expect("set_terminator");
    }
    chat.set_max_record(p.max_record);
    chat.set_in_buffer_size(p.in_buffer_size)
        .expect("set_in_buffer_size");
    let mut s = Scripted::new(chat);
    let mut fed = 0;
    let mut violations = Vec::new();
    for chunk in chunks {
        if s.is_closed() {
            break;
        }
        s.feed(chunk).expect("feed on an open channel");
        fed += chunk.len();
        if !s.is_closed() {
            // Drained after every read: at most a proper prefix of the terminator is held.
            let held = chat_buffered(s.chat());
            let most = match s.chat().get_terminator() {
                Terminator::Bytes(t) => t.len() - 1,
                _ => 0,
            };
            if held > most {
                violations.push(format!(
                    "after feeding {fed} bytes the scanner holds {held} (terminator {:?})",
                    s.chat().get_terminator()
                ));
            }
        }
    }
    ChatOutcome {
        fed,
        terminator: s.chat().get_terminator().clone(),
        closed: s.is_closed(),
        buffered: chat_buffered(s.chat()),
        output: s.take_output(),
        events: s.handler().events.clone(),
        violations,
    }
}

/// Checks one run against the input: see the module docs.
pub fn verify_chat(p: &ChatProgram, out: &ChatOutcome) -> Result<(), String> {
    if let Some(v) = out.violations.first() {
        return Err(v.clone());
    }
    let input = &p.data[..out.fed];
    let empty = Terminator::Bytes(Vec::new());
    let mut term = if p.initial == empty {
        Terminator::None
    } else {
        p.initial.clone()
    };
    let mut max = p.max_record;
    // The current record's data, and its count if it is a count record.
    let mut record: Vec<u8> = Vec::new();
    let mut count_record = match term {
        Terminator::Count(n) if n > 0 => Some(n),
        _ => None,
    };
    let mut cur = 0;
    let mut terms = 0;
    let mut expected_output = Vec::new();
    let mut skipped_to_end = false;
    let mut closing = false;
    let mut closed = false;
    let mut error_due = false;
    for (i, ev) in out.events.iter().enumerate() {
        let at = || format!("event {i} {ev:?} at input offset {cur}");
        if closed {
            return Err(format!("{}: callback after handle_close", at()));
        }
        if skipped_to_end && *ev != ChatEv::Close {
            return Err(format!("{}: callback while skipping to the end", at()));
        }
        if error_due && !matches!(ev, ChatEv::Error(_)) {
            return Err(format!("{}: expected handle_error", at()));
        }
        if closing && *ev != ChatEv::Close {
            return Err(format!("{}: expected handle_close", at()));
        }
        match ev {
            ChatEv::Data { bytes, after } => {
                if bytes.is_empty() {
                    return Err(format!("{}: empty data", at()));
                }
                if !input[cur..].starts_with(bytes) {
                    return Err(format!(
                        "{}: data is not the next input (lost or duplicated bytes)",
                        at()
                    ));
                }
                match &term {
                    Terminator::None | Terminator::Count(0) => {
                        if after != &term {
                            return Err(format!("{}: terminator changed to {after:?}", at()));
                        }
                    }
                    &Terminator::Count(n) => {
                        let len = bytes.len() as u64;
                        if len > n || *after != Terminator::Count(n - len) {
                            return Err(format!("{}: count {n} did not count down", at()));
                        }
                    }
                    Terminator::Bytes(t) => {
                        if after != &term {
                            return Err(format!("{}: terminator changed to {after:?}", at()));
                        }
                        // Only a new occurrence can overlap the new bytes.
                        let mut tail = record[record.len().saturating_sub(t.len() - 1)..].to_vec();
                        tail.extend_from_slice(bytes);
                        if find(&tail, t).is_some() {
                            return Err(format!("{}: data holds the terminator", at()));
                        }
                        if let Some(m) = max {
                            if record.len() + bytes.len() > m {
                                return Err(format!(
                                    "{}: record of {} bytes over the limit {m}",
                                    at(),
                                    record.len() + bytes.len()
                                ));
                            }
                        }
                    }
                }
                record.extend_from_slice(bytes);
                cur += bytes.len();
                term = after.clone();
            }
            ChatEv::Term {
                found,
                after,
                max_after,
                close,
            } => {
                if found != &term {
                    return Err(format!("{}: expected terminator {term:?}", at()));
                }
                match &term {
                    Terminator::Bytes(t) => {
                        if !input[cur..].starts_with(t) {
                            return Err(format!("{}: terminator not in the input here", at()));
                        }
                        let mut tail = record[record.len().saturating_sub(t.len() - 1)..].to_vec();
                        let before = tail.len();
                        tail.extend_from_slice(t);
                        if find(&tail, t) != Some(before) {
                            return Err(format!("{}: not the first occurrence", at()));
                        }
                        cur += t.len();
                    }
                    Terminator::Count(0) => match count_record {
                        Some(n) if record.len() as u64 == n => {}
                        _ => {
                            return Err(format!(
                                "{}: count record {count_record:?} ended after {} bytes",
                                at(),
                                record.len()
                            ))
                        }
                    },
                    _ => return Err(format!("{}: found_terminator with {term:?}", at())),
                }
                expected_output.extend_from_slice(format!("T{terms}\n").as_bytes());
                terms += 1;
                term = after.clone();
                max = *max_after;
                record.clear();
                count_record = match term {
                    Terminator::Count(n) if n > 0 => Some(n),
                    _ => None,
                };
                closing = *close;
            }
            ChatEv::TooLong {
                kind,
                terminator,
                max: max_then,
                handled,
                switched,
                close,
                after,
                max_after,
            } => {
                let Terminator::Bytes(t) = &term else {
                    return Err(format!("{}: record limit with {term:?}", at()));
                };
                if *kind != io::ErrorKind::InvalidData {
                    return Err(format!("{}: error kind {kind:?}, not InvalidData", at()));
                }
                if terminator != &term || *max_then != max {
                    return Err(format!("{}: expected {term:?}, limit {max:?}", at()));
                }
                if Some(record.len()) != max {
                    return Err(format!(
                        "{}: over-long after {} bytes, limit {max:?}",
                        at(),
                        record.len()
                    ));
                }
                // The next byte must be known to be data: the input after the record
                // neither starts with the terminator nor could still become it.
                let rest = &p.data[cur..];
                if rest.starts_with(t) || t.starts_with(rest) {
                    return Err(format!("{}: the record may still end here", at()));
                }
                expected_output.extend_from_slice(b"L\n");
                max = *max_after;
                if !handled {
                    error_due = true;
                } else if *switched {
                    term = after.clone();
                    record.clear();
                    count_record = match term {
                        Terminator::Count(n) if n > 0 => Some(n),
                        _ => None,
                    };
                    // A new record over the limit at once (limit 0, data next) is skipped
                    // without a second call: the hook must not be able to stall parsing.
                    if let (Terminator::Bytes(t), Some(0), false) = (&term, max, close) {
                        let rest = &input[cur..];
                        if !rest.starts_with(t) && !t.starts_with(rest) {
                            match find(rest, t) {
                                Some(k) => cur += k + t.len(),
                                None => skipped_to_end = true,
                            }
                        }
                    }
                } else {
                    if after != &term {
                        return Err(format!("{}: terminator changed unasked", at()));
                    }
                    // The rest of the record and its terminator are dropped.
                    match find(&input[cur..], t) {
                        Some(k) => cur += k + t.len(),
                        None => skipped_to_end = true,
                    }
                    record.clear();
                }
                closing = *close;
            }
            ChatEv::Error(kind) => {
                if !error_due || *kind != io::ErrorKind::InvalidData {
                    return Err(format!("{}: unexpected handle_error", at()));
                }
                error_due = false;
                closing = true;
            }
            ChatEv::Close => {
                if !closing {
                    return Err(format!("{}: unexpected handle_close", at()));
                }
                closing = false;
                closed = true;
            }
        }
    }
    if closing || error_due {
        return Err("the channel did not close as asked".to_string());
    }
    if closed != out.closed {
        return Err(format!(
            "closed {} but handle_close ran: {closed}",
            out.closed
        ));
    }
    if out.output != expected_output {
        return Err(format!(
            "output {:?}, expected {:?}",
            String::from_utf8_lossy(&out.output),
            String::from_utf8_lossy(&expected_output)
        ));
    }
    if out.terminator != term {
        return Err(format!(
            "final terminator {:?}, expected {term:?}",
            out.terminator
        ));
    }
    if closed || skipped_to_end {
        return Ok(());
    }
    if count_record.is_some_and(|n| record.len() as u64 == n) {
        return Err(format!(
            "count record of {} bytes complete, but no found_terminator",
            record.len()
        ));
    }
    // Everything not delivered is a held, proper prefix of the terminator.
    let rest = &input[cur..];
    let ok = match &term {
        Terminator::Bytes(t) => rest.len() < t.len() && t.starts_with(rest),
        _ => rest.is_empty(),
    };
    if !ok {
        return Err(format!(
            "{} bytes at offset {cur} never delivered ({:?}), terminator {term:?}",
            rest.len(),
            String::from_utf8_lossy(rest)
        ));
    }
    if out.buffered != rest.len() {
        return Err(format!(
            "scanner holds {} bytes, expected {}",
            out.buffered,
            rest.len()
        ));
    }
    Ok(())
}

/// Adjacent data events joined (keeping the last `after`): the chunking-independent view.
pub fn merged(events: &[ChatEv]) -> Vec<ChatEv> {
    let mut out: Vec<ChatEv> = Vec::new();
    for ev in events {
        match (out.last_mut(), ev) {
            (
                Some(ChatEv::Data { bytes, after }),
                ChatEv::Data {
                    bytes: more,
                    after: later,
                },
            ) => {
                bytes.extend_from_slice(more);
                *after = later.clone();
            }
            _ => out.push(ev.clone()),
        }
    }
    out
}

fn same_chat(what: &str, a: &ChatOutcome, b: &ChatOutcome) -> Result<(), String> {
    let (ma, mb) = (merged(&a.events), merged(&b.events));
    if ma != mb {
        let i = ma.iter().zip(&mb).take_while(|(x, y)| x == y).count();
        return Err(format!(
            "{what}: callbacks differ from the whole-buffer run at {i}: {:?} vs {:?}",
            ma.get(i),
            mb.get(i)
        ));
    }
    if (&a.output, &a.terminator, a.closed) != (&b.output, &b.terminator, b.closed) {
        return Err(format!(
            "{what}: output/terminator/closed differ: {:?} vs {:?}",
            (&a.terminator, a.closed),
            (&b.terminator, b.closed)
        ));
    }
    if !a.closed && a.buffered != b.buffered {
        return Err(format!("{what}: buffered {} vs {}", a.buffered, b.buffered));
    }
    Ok(())
}

/// The `chat_input` fuzz target: decodes `input`, runs it whole, in the decoded chunks
/// and (for up to 2 KiB) byte by byte, and checks each run and that they agree.
pub fn check_chat_input(input: &[u8]) -> Result<(), String> {
    let p = ChatProgram::decode(input);
    let whole = chat_run(&p, &[&p.data]);
    verify_chat(&p, &whole).map_err(|e| format!("whole: {e}"))?;
    let chunked = chat_run(&p, &split_by_sizes(&p.data, &p.chunks));
    verify_chat(&p, &chunked).map_err(|e| format!("chunked: {e}"))?;
    same_chat("chunked", &whole, &chunked)?;
    if p.data.len() <= 2048 {
        let bytewise = chat_run(&p, &p.data.chunks(1).collect::<Vec<_>>());
        verify_chat(&p, &bytewise).map_err(|e| format!("bytewise: {e}"))?;
        same_chat("bytewise", &whole, &bytewise)?;
    }
    Ok(())
}

// ---- smtp_session ------------------------------------------------------------------------

/// The sink's longest command line without its CRLF.
pub const SMTP_MAX_LINE: usize = smtp_sink::MAX_COMMAND_LINE - 2;

/// A decoded `smtp_session` fuzz input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpProgram {
    /// `--max-size`.
    pub max_size: usize,
    /// The peer closes after the last chunk.
    pub eof: bool,
    /// Feed sizes, cycled (see [`split_by_sizes`]).
    pub chunks: Vec<u8>,
    /// What the client sends.
    pub data: Vec<u8>,
}

impl SmtpProgram {
    /// The default `--max-size`, chosen by a first byte of 0xff.
    pub const DEFAULT_MAX: usize = 32 * 1024 * 1024;

    /// Layout: max size (byte * 16, 0xff = the default 32 MiB), then a byte with the EOF
    /// flag (0x80) and the chunk count (% 17), the chunk sizes, then the data.
    pub fn decode(input: &[u8]) -> SmtpProgram {
        let mut r = Reader::new(input);
        let max_size = match r.byte() {
            0xff => Self::DEFAULT_MAX,
            b => usize::from(b) * 16,
        };
        let flags = r.byte();
        let n = usize::from((flags & 0x7f) % 17);
        let chunks = r.bytes(n);
        SmtpProgram {
            max_size,
            eof: flags & 0x80 != 0,
            chunks,
            data: r.rest().to_vec(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![match self.max_size {
            Self::DEFAULT_MAX => 0xff,
            m if m % 16 == 0 && m / 16 < 0xff => (m / 16) as u8,
            m => panic!("max_size {m} cannot be encoded"),
        }];
        assert!(self.chunks.len() <= 16);
        out.push(self.chunks.len() as u8 | if self.eof { 0x80 } else { 0 });
        out.extend_from_slice(&self.chunks);
        out.extend_from_slice(&self.data);
        out
    }
}

/// The result of one `smtp_session` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpOutcome {
    /// The greeting and every reply, in order.
    pub output: Vec<u8>,
    /// The stored messages, in the order of their `250 OK: queued as` replies.
    pub stored: Vec<Vec<u8>>,
    pub closed: bool,
    pub violations: Vec<String>,
}

/// A fresh, empty directory for one run (in /dev/shm when there is one: the sink syncs
/// every message it stores).
pub fn scratch_dir(tag: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static DIR: Cell<Option<usize>> = const { Cell::new(None) };
    }
    let n = DIR.with(|d| {
        d.get().unwrap_or_else(|| {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            d.set(Some(n));
            n
        })
    });
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("sockloop-fuzz-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

const QUEUED: &str = "250 OK: queued as ";

/// Runs the session of `p` with its data fed as `chunks`.
pub fn smtp_run(p: &SmtpProgram, chunks: &[&[u8]]) -> SmtpOutcome {
    let dir = scratch_dir("smtp");
    let config = smtp_sink::Config {
        max_size: p.max_size,
        ..smtp_sink::Config::new(&dir)
    };
    let sink = smtp_sink::Sink::inline(config).expect("Sink::inline");
    let mut output = sink.greeting();
    let chat = smtp_sink::Session::chat().expect("Session::chat");
    let mut s = Scripted::with_state(chat, sink);
    let mut violations = Vec::new();
    let mut fed = 0;
    for chunk in chunks {
        if s.is_closed() {
            break;
        }
        s.feed(chunk).expect("feed on an open channel");
        fed += chunk.len();
        output.extend(s.take_output());
        let body = s.handler().buffered();
        if body > 2 * p.max_size + 8 {
            violations.push(format!(
                "after {fed} bytes the session holds {body} bytes of message (max {})",
                p.max_size
            ));
        }
        if !s.is_closed() && chat_buffered(s.chat()) > 1 {
            violations.push(format!(
                "after {fed} bytes the scanner holds {} bytes",
                chat_buffered(s.chat())
            ));
        }
    }
    if p.eof {
        s.feed_eof();
        output.extend(s.take_output());
    }
    let mut stored = Vec::new();
    let mut files = HashSet::new();
    for line in output.split(|&b| b == b'\n') {
        if let Some(id) = line.strip_prefix(QUEUED.as_bytes()) {
            let id = String::from_utf8_lossy(id.strip_suffix(b"\r").unwrap_or(id)).to_string();
            let name = format!("new/{id}");
            match std::fs::read(dir.join(&name)) {
                Ok(file) => stored.push(file),
                Err(e) => violations.push(format!("queued as {id}, but no {name}: {e}")),
            }
            files.insert(name);
        }
    }
    for sub in ["tmp", "new", "cur"] {
        for entry in std::fs::read_dir(dir.join(sub)).expect("read scratch dir") {
            let name = format!(
                "{sub}/{}",
                entry.expect("dir entry").file_name().to_string_lossy()
            );
            if !files.contains(&name) {
                violations.push(format!("stray file {name} in the maildir"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    SmtpOutcome {
        output,
        stored,
        closed: s.is_closed(),
        violations,
    }
}

/// One reply: its code and its lines (without CRLF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<Vec<u8>>,
}

impl Reply {
    /// The last line's text, after the code and the space.
    pub fn text(&self) -> &[u8] {
        let last = self.lines.last().expect("a reply has a line");
        last.get(4..).unwrap_or(b"")
    }
}

/// Parses a server's output into replies, checking RFC 5321 4.2's grammar: every line
/// `Reply-code ("-" / SP) textstring CRLF` with a code `[2-5][0-5][0-9]`, textstring only
/// HT and printable US-ASCII, `-` lines followed by the same code.
pub fn parse_replies(output: &[u8]) -> Result<Vec<Reply>, String> {
    let mut replies = Vec::new();
    let mut open: Option<Reply> = None;
    let mut rest = output;
    while !rest.is_empty() {
        let Some(end) = find(rest, b"\r\n") else {
            return Err(format!(
                "reply line without CRLF: {:?}",
                String::from_utf8_lossy(rest)
            ));
        };
        let line = &rest[..end];
        rest = &rest[end + 2..];
        let shown = || String::from_utf8_lossy(line).to_string();
        let code_ok = line.len() >= 3
            && (b'2'..=b'5').contains(&line[0])
            && (b'0'..=b'5').contains(&line[1])
            && line[2].is_ascii_digit();
        if !code_ok {
            return Err(format!("bad reply code in {:?}", shown()));
        }
        let code = line[..3]
            .iter()
            .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
        let sep = line.get(3).copied();
        if !matches!(sep, None | Some(b' ') | Some(b'-')) {
            return Err(format!("bad separator in reply {:?}", shown()));
        }
        if sep == Some(b'-') && line.len() == 3 {
            return Err(format!("continuation without text {:?}", shown()));
        }
        if let Some(bad) = line
            .get(4..)
            .unwrap_or(b"")
            .iter()
            .find(|&&b| b != b'\t' && !(32..=126).contains(&b))
        {
            return Err(format!(
                "reply text holds byte {bad:#04x} (RFC 5321 textstring is HT and printable US-ASCII): {:?}",
                shown()
            ));
        }
        let reply = open.get_or_insert_with(|| Reply {
            code,
            lines: Vec::new(),
        });
        if reply.code != code {
            return Err(format!(
                "multiline reply {} continued with {:?}",
                reply.code,
                shown()
            ));
        }
        reply.lines.push(line.to_vec());
        if sep != Some(b'-') {
            replies.extend(open.take());
        }
    }
    if open.is_some() {
        return Err("multiline reply without a last line".to_string());
    }
    Ok(replies)
}

/// Checks one run against the client's input: see the module docs.
pub fn verify_smtp(p: &SmtpProgram, out: &SmtpOutcome) -> Result<(), String> {
    if let Some(v) = out.violations.first() {
        return Err(v.clone());
    }
    let replies = parse_replies(&out.output)?;
    let mut replies = replies.iter();
    let mut next = |what: &str| replies.next().ok_or_else(|| format!("no reply to {what}"));
    if next("the connection")?.code != 220 {
        return Err("no 220 greeting first".to_string());
    }
    let mut stored = out.stored.iter();
    let mut data_phase = false;
    let mut body: Vec<u8> = Vec::new();
    let mut bare = false;
    let mut quit = false;
    let mut rest = &p.data[..];
    while let Some(end) = find(rest, b"\r\n") {
        let line = &rest[..end];
        rest = &rest[end + 2..];
        let shown = String::from_utf8_lossy(&line[..line.len().min(60)]).to_string();
        if data_phase {
            if line == b"." {
                data_phase = false;
                let r = next("the end of DATA")?;
                if bare {
                    // RFC 5321 2.3.8: a CR or LF outside a CRLF refuses the message.
                    if r.code != 550 {
                        return Err(format!("message with a bare CR or LF: reply {}", r.code));
                    }
                    continue;
                }
                if body.len() > p.max_size {
                    if r.code != 552 {
                        return Err(format!(
                            "message of {} bytes over {}: reply {}",
                            body.len(),
                            p.max_size,
                            r.code
                        ));
                    }
                    continue;
                }
                if !r.text().starts_with(b"OK: queued as ") || r.code != 250 {
                    return Err(format!(
                        "message of {} bytes: reply {:?}",
                        body.len(),
                        String::from_utf8_lossy(&r.lines[0])
                    ));
                }
                let Some(file) = stored.next() else {
                    return Err("queued message not stored".to_string());
                };
                // Two header lines, then the message as sent, unstuffed.
                let mut header = file.splitn(3, |&b| b == b'\n');
                let (from, rcpt, stored_body) = (header.next(), header.next(), header.next());
                let ok_header = from
                    .is_some_and(|l| l.starts_with(b"X-Mail-From: ") && l.ends_with(b"\r"))
                    && rcpt.is_some_and(|l| l.starts_with(b"X-Rcpt-To: ") && l.ends_with(b"\r"));
                if !ok_header || stored_body != Some(&body[..]) {
                    return Err(format!(
                        "stored message differs from the DATA sent: {:?} vs body {:?}",
                        String::from_utf8_lossy(file),
                        String::from_utf8_lossy(&body)
                    ));
                }
                body.clear();
            } else {
                bare |= line.iter().any(|&b| b == b'\r' || b == b'\n');
                body.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
                body.extend_from_slice(b"\r\n");
            }
            continue;
        }
        let r = next(&shown)?;
        let too_long = r.code == 500 && r.text() == b"Error: line too long";
        if (line.len() > SMTP_MAX_LINE) != too_long {
            return Err(format!(
                "line of {} bytes ({shown:?}) answered {:?}",
                line.len(),
                String::from_utf8_lossy(&r.lines[0])
            ));
        }
        if too_long {
            continue;
        }
        if line.iter().any(|&b| b == b'\r' || b == b'\n') {
            if r.code != 500 {
                return Err(format!("command with a bare CR or LF answered {}", r.code));
            }
            continue;
        }
        let (verb, arg) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], line[i + 1..].trim_ascii()),
            None => (line, &b""[..]),
        };
        let verb = verb.to_ascii_uppercase();
        let known = [
            "HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "HELP", "QUIT",
        ]
        .iter()
        .any(|v| verb == v.as_bytes());
        if !known && r.code != 500 {
            return Err(format!("unknown command {shown:?} answered {}", r.code));
        }
        match r.code {
            354 if verb == b"DATA" && arg.is_empty() => {
                data_phase = true;
                body.clear();
                bare = false;
            }
            221 if verb == b"QUIT" && arg.is_empty() => {
                quit = true;
                break;
            }
            354 | 221 => return Err(format!("{shown:?} answered {}", r.code)),
            _ if r.text().starts_with(b"OK: queued") => {
                return Err(format!("{shown:?} answered queued"))
            }
            _ => {}
        }
    }
    if !quit && !data_phase {
        // A partial command line already known to be too long has had its 500.
        let known = rest.len() - usize::from(rest.ends_with(b"\r"));
        if known > SMTP_MAX_LINE {
            let r = next("a partial long line")?;
            if r.code != 500 || r.text() != b"Error: line too long" {
                return Err(format!(
                    "partial line of {known} bytes answered {:?}",
                    String::from_utf8_lossy(&r.lines[0])
                ));
            }
        }
    }
    if let Some(extra) = replies.next() {
        return Err(format!(
            "reply {:?} answers nothing",
            String::from_utf8_lossy(&extra.lines[0])
        ));
    }
    if stored.next().is_some() {
        return Err("a message was stored without its reply".to_string());
    }
    if out.closed != (quit || p.eof) {
        return Err(format!(
            "closed: {}, but QUIT: {quit}, EOF: {}",
            out.closed, p.eof
        ));
    }
    Ok(())
}

/// The output with message ids replaced: comparable between runs.
pub fn normalized(output: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in output.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(QUEUED.as_bytes()) {
            out.extend_from_slice(QUEUED.as_bytes());
            out.extend_from_slice(b"ID\r\n");
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

fn same_smtp(what: &str, a: &SmtpOutcome, b: &SmtpOutcome) -> Result<(), String> {
    if normalized(&a.output) != normalized(&b.output) {
        return Err(format!(
            "{what}: replies differ from the whole-buffer run:\n{}\nvs\n{}",
            String::from_utf8_lossy(&normalized(&a.output)),
            String::from_utf8_lossy(&normalized(&b.output))
        ));
    }
    if a.stored != b.stored || a.closed != b.closed {
        return Err(format!("{what}: stored messages or close state differ"));
    }
    Ok(())
}

/// The `smtp_session` fuzz target: decodes `input`, runs the session whole, in the
/// decoded chunks and (for up to 2 KiB) byte by byte, and checks each run and that they
/// agree.
pub fn check_smtp_session(input: &[u8]) -> Result<(), String> {
    let p = SmtpProgram::decode(input);
    let whole = smtp_run(&p, &[&p.data]);
    verify_smtp(&p, &whole).map_err(|e| format!("whole: {e}"))?;
    let chunked = smtp_run(&p, &split_by_sizes(&p.data, &p.chunks));
    verify_smtp(&p, &chunked).map_err(|e| format!("chunked: {e}"))?;
    same_smtp("chunked", &whole, &chunked)?;
    if p.data.len() <= 2048 {
        let bytewise = smtp_run(&p, &p.data.chunks(1).collect::<Vec<_>>());
        verify_smtp(&p, &bytewise).map_err(|e| format!("bytewise: {e}"))?;
        same_smtp("bytewise", &whole, &bytewise)?;
    }
    Ok(())
}
