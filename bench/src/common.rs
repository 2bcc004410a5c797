//! What the load generators (`loadgen`, `soak`) share: the verifiable byte pattern, the
//! descriptor limit, mio token packing and JSON numbers. Included by each binary with
//! `#[path = "../common.rs"] mod common;`.

#![allow(dead_code)]

use mio::Token;

/// Period of the pattern table (a prime, so connection windows rarely align).
pub const PAT_PERIOD: usize = 1_048_573;
/// The table repeats its first PAT_EXTRA bytes at the end, so any window of
/// up to PAT_EXTRA bytes is one contiguous slice.
pub const PAT_EXTRA: usize = 256 * 1024;

pub struct Pattern {
    table: Vec<u8>,
}

impl Pattern {
    pub fn new() -> Self {
        let mut table = vec![0u8; PAT_PERIOD + PAT_EXTRA];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for chunk in table[..PAT_PERIOD].chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bytes = x.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        table.copy_within(..PAT_EXTRA, PAT_PERIOD);
        Pattern { table }
    }

    pub fn conn_offset(id: u64) -> usize {
        (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) as usize % PAT_PERIOD
    }

    /// Expected bytes `[pos, pos + len)` of the stream with pattern offset `off`.
    pub fn slice(&self, off: usize, pos: u64, len: usize) -> &[u8] {
        debug_assert!(len <= PAT_EXTRA);
        let start = ((off as u64 + pos) % PAT_PERIOD as u64) as usize;
        &self.table[start..start + len]
    }
}

pub fn raise_nofile(prog: &str, need: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let cur = getrlimit(Resource::Nofile);
    let want = need + 64;
    if cur.current.is_some_and(|c| c >= want) {
        return;
    }
    let max = cur.maximum.map_or(want, |m| m.max(want));
    // Raising the hard limit needs CAP_SYS_RESOURCE; fall back to the hard limit.
    if setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: Some(max),
        },
    )
    .is_err()
    {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: cur.maximum,
                maximum: cur.maximum,
            },
        );
    }
    let now = getrlimit(Resource::Nofile).current;
    if now.is_some_and(|c| c < want) {
        eprintln!("{prog}: warning: RLIMIT_NOFILE is {now:?}, need about {want}");
    }
}

pub fn token(slot: usize, gen: u32) -> Token {
    Token(((gen as usize) << 32) | slot)
}

pub fn untoken(t: Token) -> (usize, u32) {
    (t.0 & 0xFFFF_FFFF, (t.0 >> 32) as u32)
}

pub fn jnum(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.3}"),
        _ => "null".to_string(),
    }
}
