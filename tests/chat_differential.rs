//! Differential test: `chat::Scanner` against CPython's own asynchat.
//!
//! Generates random inputs, read splits and terminator-switch scripts with a
//! fixed-seed PRNG, replays each through `Scanner` and through a real
//! `asynchat.async_chat` (`tests/py/asynchat_trace.py`), and asserts that
//! both report the same callbacks — with the exact same data boundaries, and
//! again after merging adjacent data.
//!
//! Needs a `python3` (or `$PYTHON`) that still ships asynchat (CPython 3.11
//! or older), so it is ignored by default:
//! `cargo test --test chat_differential -- --ignored`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use sockloop::chat::{Piece, Scanner, Terminator};

const CASES: usize = 300;
const SEED: u64 = 0x5eed_a5c1_c4a7;

/// One scripted run, as both sides understand it.
#[derive(Debug, Clone)]
struct Case {
    initial: Terminator,
    /// What each `recv` returns; never empty (an empty recv is EOF).
    chunks: Vec<Vec<u8>>,
    /// `(k, t)`: `set_terminator(t)` inside the k-th `found_terminator`;
    /// at most one per k.
    switches: Vec<(usize, Terminator)>,
}

/// splitmix64: small, deterministic, good enough to pick test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// Mostly protocol-ish bytes, so terminators and their prefixes are common.
    fn byte(&mut self) -> u8 {
        const ALPHABET: &[u8] = b"ab\r\n.";
        if self.chance(5) {
            self.next() as u8
        } else {
            ALPHABET[self.below(ALPHABET.len())]
        }
    }

    fn terminator(&mut self) -> Terminator {
        match self.below(20) {
            0..=2 => Terminator::None,
            3..=8 => Terminator::Count(self.below(13) as u64),
            9..=10 => Terminator::Bytes(b"\r\n".to_vec()),
            11 => Terminator::Bytes(b"\r\n.\r\n".to_vec()),
            _ => {
                let len = 1 + self.below(5);
                Terminator::Bytes((0..len).map(|_| self.byte()).collect())
            }
        }
    }

    fn case(&mut self) -> Case {
        let len = self.below(80);
        let input: Vec<u8> = (0..len).map(|_| self.byte()).collect();
        let mut chunks = Vec::new();
        let mut rest = &input[..];
        while !rest.is_empty() {
            let n = match self.below(4) {
                0 => 1,
                1 => rest.len(),
                _ => 1 + self.below(rest.len()),
            };
            let (chunk, tail) = rest.split_at(n.min(rest.len()));
            chunks.push(chunk.to_vec());
            rest = tail;
        }
        let mut switches = Vec::new();
        for k in 0..10 {
            if self.chance(40) {
                switches.push((k, self.terminator()));
            }
        }
        Case {
            initial: self.terminator(),
            chunks,
            switches,
        }
    }
}

/// A few hand-picked cases first, then random ones.
fn cases() -> Vec<Case> {
    let b = |s: &[u8]| Terminator::Bytes(s.to_vec());
    let fixed = |initial, chunks: &[&[u8]], switches| Case {
        initial,
        chunks: chunks.iter().map(|c| c.to_vec()).collect(),
        switches,
    };
    let mut all = vec![
        fixed(b(b"\r\n"), &[b"abc\r", b"\nx"], vec![]),
        fixed(b(b"\r\n"), &[b"ab\r\n\r\nc"], vec![]),
        fixed(b(b"aab"), &[b"aa", b"ab"], vec![]),
        fixed(b(b"abcabd"), &[b"abcab", b"cabdabcabc"], vec![]),
        fixed(Terminator::Count(4), &[b"ab", b"cdef"], vec![]),
        fixed(Terminator::Count(0), &[b"ab", b"c"], vec![]),
        fixed(
            b(b"\r\n"),
            &[b"3\r\nabc5\r", b"\nhello\r\nrest"],
            vec![
                (0, Terminator::Count(3)),
                (1, b(b"\r\n")),
                (2, Terminator::Count(5)),
                (3, Terminator::None),
            ],
        ),
    ];
    let mut rng = Rng(SEED);
    all.extend((0..CASES).map(|_| rng.case()));
    all
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn terminator_json(t: &Terminator) -> String {
    match t {
        Terminator::None => "null".to_string(),
        Terminator::Bytes(b) => format!(r#"{{"bytes":"{}"}}"#, hex(b)),
        Terminator::Count(n) => format!(r#"{{"count":{n}}}"#),
    }
}

fn case_json(case: &Case, merge: bool) -> String {
    let chunks: Vec<String> = case
        .chunks
        .iter()
        .map(|c| format!("\"{}\"", hex(c)))
        .collect();
    let switches: Vec<String> = case
        .switches
        .iter()
        .map(|(k, t)| format!("[{k},{}]", terminator_json(t)))
        .collect();
    format!(
        r#"{{"initial":{},"chunks":[{}],"switches":[{}],"merge":{merge}}}"#,
        terminator_json(&case.initial),
        chunks.join(","),
        switches.join(",")
    )
}

/// One callback.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Data(Vec<u8>),
    Term,
}

/// Replays a case through `Scanner` the way the chat glue drives it.
fn scan(case: &Case) -> Vec<Ev> {
    let mut s = Scanner::new();
    s.set_terminator(case.initial.clone())
        .expect("valid initial terminator");
    let mut events = Vec::new();
    let mut found = 0;
    for chunk in &case.chunks {
        s.feed(chunk);
        while let Some(piece) = s.next_piece().expect("no record limit set") {
            match piece {
                Piece::Data(d) => events.push(Ev::Data(d.to_vec())),
                Piece::Terminator => {
                    events.push(Ev::Term);
                    if let Some((_, t)) = case.switches.iter().find(|(k, _)| *k == found) {
                        s.set_terminator(t.clone()).expect("valid terminator");
                    }
                    found += 1;
                }
            }
        }
    }
    events
}

fn merged(events: &[Ev]) -> Vec<Ev> {
    let mut out: Vec<Ev> = Vec::new();
    for e in events {
        match (out.last_mut(), e) {
            (Some(Ev::Data(prev)), Ev::Data(more)) => prev.extend_from_slice(more),
            _ => out.push(e.clone()),
        }
    }
    out
}

/// Renders callbacks exactly as asynchat_trace.py prints one case.
fn events_json(events: &[Ev]) -> String {
    let items: Vec<String> = events
        .iter()
        .map(|e| match e {
            Ev::Data(d) => format!(r#"["data","{}"]"#, hex(d)),
            Ev::Term => r#"["term"]"#.to_string(),
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// Runs asynchat_trace.py on `input` and returns one JSON line per case.
fn python_trace(input: &str) -> Vec<String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/asynchat_trace.py");
    let mut child = Command::new(&python)
        .args(["-W", "ignore", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}; this test needs CPython <= 3.11"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    // Write from a thread so a large output cannot deadlock against us.
    let input = input.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("wait for python");
    writer
        .join()
        .expect("writer thread")
        .expect("write cases to python");
    assert!(
        out.status.success(),
        "{python} {script} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() >= 2 && lines[0] == "[" && lines[lines.len() - 1] == "]",
        "unexpected output from {script}:\n{text}"
    );
    lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.trim_end_matches(',').to_string())
        .collect()
}

#[test]
#[ignore = "needs python3 with asynchat (CPython ≤3.11); run by .ci/run with --ignored"]
fn scanner_matches_cpython_asynchat() {
    let cases = cases();
    // Every case twice: merged (the chunking-independent view) and exact.
    let input = format!(
        "[\n{}\n]\n",
        cases
            .iter()
            .flat_map(|c| [case_json(c, true), case_json(c, false)])
            .collect::<Vec<_>>()
            .join(",\n")
    );
    let traces = python_trace(&input);
    assert_eq!(traces.len(), 2 * cases.len(), "one trace per case");
    for (i, case) in cases.iter().enumerate() {
        let exact = scan(case);
        for (merge, ours, theirs) in [
            (true, events_json(&merged(&exact)), &traces[2 * i]),
            (false, events_json(&exact), &traces[2 * i + 1]),
        ] {
            assert_eq!(
                &ours,
                theirs,
                "case {i} (merge: {merge}) differs from CPython\n\
                 case:     {}\n\
                 chunks:   {:?}\n\
                 sockloop: {ours}\n\
                 asynchat: {theirs}",
                case_json(case, merge),
                case.chunks
                    .iter()
                    .map(|c| c.escape_ascii().to_string())
                    .collect::<Vec<_>>(),
            );
        }
    }
    println!("{} cases identical to CPython asynchat", cases.len());
}
