//! Differential tests: the chat layer against CPython's own asynchat.
//!
//! Generates random inputs, read splits and terminator-switch scripts with a
//! fixed-seed PRNG, replays each through sockloop and through a real
//! `asynchat.async_chat` (`tests/py/asynchat_trace.py`), and asserts that
//! both report the same callbacks:
//!
//! * `scanner_matches_cpython_asynchat`: [`Scanner`] alone, switches inside
//!   `found_terminator`; exact data boundaries, and again after merging
//!   adjacent data.
//! * `hooks_match_cpython_asynchat`: a [`ChatHandler`] on an [`AsyncChat`]
//!   (through [`Scripted`], one `feed` per `recv`), switching the terminator
//!   inside `collect_incoming_data` and `found_terminator` at chosen call
//!   indices; every callback with its data and the terminator that
//!   `get_terminator()` returns at its entry. This is the level users see:
//!   a switch made in `collect_incoming_data` and the value a hook reads are
//!   `ChatContext`'s and `AsyncChat`'s doing, not the scanner's. Where
//!   sockloop deliberately differs, the Python side ends the trace with an
//!   explicit `["excluded", reason]` and only what comes before is compared.
//! * `documented_differences_from_asynchat`: those differences, replayed on
//!   both sides without the exclusion, must be exactly what `AsyncChat`'s
//!   "Differences from asynchat" says.
//!
//! Needs a `python3` (or `$PYTHON`) that still ships asynchat (CPython 3.11
//! or older), so it is ignored by default:
//! `cargo test --test loop chat_differential:: -- --ignored`.

use std::fmt::Write as _;
use std::io;
use std::io::Write as _;
use std::process::{Command, Stdio};

use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Piece, Scanner, Scripted, Terminator};

const CASES: usize = 300;
const SEED: u64 = 0x5eed_a5c1_c4a7;
/// Cases of the hook-level test, from their own seed (the scanner's stay as they were).
const HOOK_CASES: usize = 500;
const HOOK_SEED: u64 = 0x0400_c5ee_dc01_1ec7;

/// One scripted run, as both sides understand it.
#[derive(Debug, Clone)]
struct Case {
    initial: Terminator,
    /// What each `recv` returns; never empty (an empty recv is EOF).
    chunks: Vec<Vec<u8>>,
    /// `(k, t)`: `set_terminator(t)` inside the k-th `found_terminator`;
    /// at most one per k.
    switches: Vec<(usize, Terminator)>,
    /// The same inside the k-th `collect_incoming_data` (hook-level test only).
    collect_switches: Vec<(usize, Terminator)>,
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
            collect_switches: Vec::new(),
        }
    }

    /// A case with switches inside both hooks.
    fn hook_case(&mut self) -> Case {
        let mut case = self.case();
        for k in 0..16 {
            if self.chance(30) {
                case.collect_switches.push((k, self.terminator()));
            }
        }
        case
    }
}

/// A few hand-picked cases first, then random ones.
fn cases() -> Vec<Case> {
    let b = |s: &[u8]| Terminator::Bytes(s.to_vec());
    let fixed = |initial, chunks: &[&[u8]], switches| Case {
        initial,
        chunks: chunks.iter().map(|c| c.to_vec()).collect(),
        switches,
        collect_switches: Vec::new(),
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
    case_json_with(case, &format!(r#""merge":{merge}"#))
}

/// A case for the hook-level trace; `exclude`: end it at a documented difference.
fn hook_case_json(case: &Case, exclude: bool) -> String {
    case_json_with(case, &format!(r#""observe":true,"exclude":{exclude}"#))
}

fn case_json_with(case: &Case, options: &str) -> String {
    let chunks: Vec<String> = case
        .chunks
        .iter()
        .map(|c| format!("\"{}\"", hex(c)))
        .collect();
    let switches = |list: &[(usize, Terminator)]| {
        list.iter()
            .map(|(k, t)| format!("[{k},{}]", terminator_json(t)))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        r#"{{"initial":{},"chunks":[{}],"switches":[{}],"collect_switches":[{}],{options}}}"#,
        terminator_json(&case.initial),
        chunks.join(","),
        switches(&case.switches),
        switches(&case.collect_switches),
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

/// One hook call as a handler sees it: data, and `get_terminator()` at entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hook {
    Collect(Vec<u8>, Terminator),
    Found(Terminator),
}

/// Records every callback and switches the terminator where the case says.
struct Tracer {
    collect_switches: Vec<(usize, Terminator)>,
    found_switches: Vec<(usize, Terminator)>,
    collected: usize,
    found: usize,
    trace: Vec<Hook>,
    /// Trace positions of the callbacks that switched: (index, inside collect).
    switched: Vec<(usize, bool)>,
}

impl Tracer {
    fn after(&mut self, ctx: &mut ChatContext<'_>, collect: bool) -> io::Result<()> {
        let (k, list) = if collect {
            (&mut self.collected, &self.collect_switches)
        } else {
            (&mut self.found, &self.found_switches)
        };
        if let Some((_, t)) = list.iter().find(|(at, _)| at == k) {
            ctx.set_terminator(t.clone())?;
            self.switched.push((self.trace.len() - 1, collect));
        }
        *k += 1;
        // Every callback but a found_terminator right after its data consumes input, and
        // inputs are under 100 bytes: far fewer calls than this, or parsing is stuck.
        assert!(self.trace.len() < 1000, "no progress: {:?}", &self.trace);
        Ok(())
    }
}

impl ChatHandler for Tracer {
    fn collect_incoming_data(&mut self, ctx: &mut ChatContext<'_>, data: &[u8]) -> io::Result<()> {
        self.trace
            .push(Hook::Collect(data.to_vec(), ctx.get_terminator().clone()));
        self.after(ctx, true)
    }

    fn found_terminator(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
        self.trace.push(Hook::Found(ctx.get_terminator().clone()));
        self.after(ctx, false)
    }
}

/// Replays a case through a handler on an `AsyncChat`, one `feed` per `recv`: the calls,
/// and the positions of those that switched (index, inside collect).
fn hooks(case: &Case) -> (Vec<Hook>, Vec<(usize, bool)>) {
    let mut chat = AsyncChat::new(Tracer {
        collect_switches: case.collect_switches.clone(),
        found_switches: case.switches.clone(),
        collected: 0,
        found: 0,
        trace: Vec::new(),
        switched: Vec::new(),
    });
    chat.set_terminator(case.initial.clone())
        .expect("valid initial terminator");
    let mut script = Scripted::new(chat);
    for chunk in &case.chunks {
        assert!(chunk.len() <= script.chat().in_buffer_size());
        script.feed(chunk).expect("scripted channel stays open");
    }
    assert!(!script.is_closed(), "the handler never fails");
    let tracer = script.handler_mut();
    (
        std::mem::take(&mut tracer.trace),
        std::mem::take(&mut tracer.switched),
    )
}

/// Renders hook calls as asynchat_trace.py does in observe mode, one item each.
fn hook_items(trace: &[Hook]) -> Vec<String> {
    trace
        .iter()
        .map(|h| match h {
            Hook::Collect(d, t) => format!(r#"["collect","{}",{}]"#, hex(d), terminator_json(t)),
            Hook::Found(t) => format!(r#"["found",{}]"#, terminator_json(t)),
        })
        .collect()
}

/// The top-level items of one JSON list line (hex, numbers and reason names hold no
/// brackets, braces or commas).
fn json_items(line: &str) -> Vec<String> {
    let inner = line
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .unwrap_or_else(|| panic!("not a JSON list: {line}"));
    let mut items = Vec::new();
    let (mut depth, mut from) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(inner[from..i].to_string());
                from = i + 1;
            }
            _ => {}
        }
    }
    if !inner.is_empty() {
        items.push(inner[from..].to_string());
    }
    items
}

fn b(s: &[u8]) -> Terminator {
    Terminator::Bytes(s.to_vec())
}

fn hook_fixed(
    initial: Terminator,
    chunks: &[&[u8]],
    collect_switches: Vec<(usize, Terminator)>,
    switches: Vec<(usize, Terminator)>,
) -> Case {
    Case {
        initial,
        chunks: chunks.iter().map(|c| c.to_vec()).collect(),
        switches,
        collect_switches,
    }
}

/// The tricky spots by hand, then random cases.
fn hook_cases() -> Vec<Case> {
    use Terminator::{Count, None as Unset};
    let mut all = vec![
        // A switch in collect_incoming_data, in the middle of a buffer that already holds
        // the old terminator: the old one still ends this record.
        hook_fixed(b(b"\r\n"), &[b"ab\r\ncd\r\n"], vec![(0, b(b"c"))], vec![]),
        hook_fixed(
            b(b"\r\n"),
            &[b"ab\r\ncd\r\nef"],
            vec![(0, Count(2))],
            vec![],
        ),
        hook_fixed(b(b"\n"), &[b"ab\ncd\n", b"e\n"], vec![(0, Unset)], vec![]),
        // Count(0), set from either hook: collects everything, never found_terminator.
        hook_fixed(b(b"\n"), &[b"a\nbc\nd", b"\n"], vec![], vec![(0, Count(0))]),
        hook_fixed(b(b"\n"), &[b"ab\ncd\n"], vec![(0, Count(0))], vec![]),
        hook_fixed(Count(0), &[b"ab", b"c\nd\n"], vec![(0, b(b"\n"))], vec![]),
        // None, then back (from collect_incoming_data, the only hook None still calls).
        hook_fixed(
            b(b"\n"),
            &[b"a\nb\nc", b"\nd\ne"],
            vec![(1, b(b"\n"))],
            vec![(0, Unset)],
        ),
        hook_fixed(
            b(b"\r\n"),
            &[b"x\r\ny", b"z\r", b"\nw\r\n"],
            vec![(1, Unset), (2, b(b"\r\n"))],
            vec![(0, Unset)],
        ),
        // What get_terminator reports while a count is received, across reads.
        hook_fixed(Count(5), &[b"ab", b"cdefg"], vec![], vec![]),
        hook_fixed(Count(3), &[b"abc", b"de"], vec![], vec![(0, Count(1))]),
        // A switch in collect while a count is received: a documented difference, so the
        // trace is compared up to it (and in full by documented_differences_from_asynchat).
        hook_fixed(Count(2), &[b"abc\n"], vec![(0, b(b"\n"))], vec![]),
        hook_fixed(Count(5), &[b"ab", b"cd\n"], vec![(0, Count(3))], vec![]),
        // A switch in collect during Count(0) or None is not during a count: compared.
        hook_fixed(Count(0), &[b"ab", b"c\n"], vec![(0, Count(2))], vec![]),
        hook_fixed(Unset, &[b"ab", b"cde"], vec![(0, Count(2))], vec![]),
    ];
    let mut rng = Rng(HOOK_SEED);
    all.extend((0..HOOK_CASES).map(|_| rng.hook_case()));
    all
}

#[test]
#[ignore = "needs python3 with asynchat (CPython ≤3.11); run by .ci/run with --ignored"]
fn hooks_match_cpython_asynchat() {
    let cases = hook_cases();
    let input = format!(
        "[\n{}\n]\n",
        cases
            .iter()
            .map(|c| hook_case_json(c, true))
            .collect::<Vec<_>>()
            .join(",\n")
    );
    let traces = python_trace(&input);
    assert_eq!(traces.len(), cases.len(), "one trace per case");
    let mut excluded: Vec<(String, usize)> = Vec::new();
    let (mut full, mut compared_calls) = (0, 0);
    let mut compared_switches = [0, 0]; // [in found_terminator, in collect_incoming_data]
    for (i, (case, theirs)) in cases.iter().zip(&traces).enumerate() {
        let (trace, switched) = hooks(case);
        let ours = hook_items(&trace);
        let theirs = json_items(theirs);
        // A documented difference: compare what comes before asynchat_trace.py's mark.
        let cut = theirs.iter().position(|e| e.starts_with(r#"["excluded","#));
        let n = cut.unwrap_or(theirs.len());
        assert_eq!(
            ours.get(..n).unwrap_or(&ours),
            &theirs[..n],
            "case {i} differs from CPython\n\
             case:     {}\n\
             chunks:   {:?}\n\
             sockloop: {}\n\
             asynchat: {}",
            hook_case_json(case, true),
            case.chunks
                .iter()
                .map(|c| c.escape_ascii().to_string())
                .collect::<Vec<_>>(),
            ours.join(","),
            theirs.join(","),
        );
        match cut {
            Some(at) => {
                let reason = theirs[at].split('"').nth(3).unwrap_or("?").to_string();
                match excluded.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, count)) => *count += 1,
                    None => excluded.push((reason, 1)),
                }
            }
            None => {
                assert_eq!(ours.len(), theirs.len(), "case {i}: extra calls");
                full += 1;
            }
        }
        compared_calls += n;
        for &(at, collect) in &switched {
            // The excluded collect call itself is compared but its switch's effect is not.
            if at < n && !(cut.is_some() && at + 1 == n && collect) {
                compared_switches[usize::from(collect)] += 1;
            }
        }
    }
    println!(
        "{} cases, {full} identical to CPython asynchat in full, {compared_calls} callbacks \
         compared, switches compared: {} in found_terminator, {} in collect_incoming_data; \
         excluded at a documented difference: {excluded:?}",
        cases.len(),
        compared_switches[0],
        compared_switches[1],
    );
    // The exclusions must not hollow the comparison out.
    assert!(
        full * 3 >= cases.len() * 2,
        "only {full} cases compared in full"
    );
    assert!(
        compared_switches.iter().all(|&n| n >= 100),
        "too few switches compared: {compared_switches:?}"
    );
}

/// What asynchat and sockloop each do at the differences named in `AsyncChat`'s
/// "Differences from asynchat" (asynchat's side run without the exclusion).
#[test]
#[ignore = "needs python3 with asynchat (CPython ≤3.11); run by .ci/run with --ignored"]
fn documented_differences_from_asynchat() {
    use Hook::{Collect as C, Found as F};
    use Terminator::{Count, None as Unset};
    let c = |d: &[u8], t: Terminator| C(d.to_vec(), t);
    let type_error = r#"["error","TypeError"]"#.to_string();
    let with = |items: Vec<Hook>, extra: Option<&String>| {
        let mut items = hook_items(&items);
        items.extend(extra.cloned());
        items
    };
    // (case, asynchat's callbacks, then an exception if any, sockloop's callbacks)
    let cases = [
        // A switch in collect while a count is received, the data completing the count:
        // asynchat overwrites the new terminator with 0 before found_terminator.
        (
            hook_fixed(Count(2), &[b"abc\n"], vec![(0, b(b"\n"))], vec![]),
            with(
                vec![c(b"ab", Count(2)), F(Count(0)), c(b"c\n", Count(0))],
                None,
            ),
            vec![
                c(b"ab", Count(2)),
                F(b(b"\n")),
                c(b"c", b(b"\n")),
                F(b(b"\n")),
            ],
        ),
        // ... the count not complete yet: asynchat subtracts the data from the new
        // terminator: a TypeError for bytes or None, a shortened count for a count.
        (
            hook_fixed(Count(5), &[b"ab", b"cd\n"], vec![(0, b(b"\n"))], vec![]),
            with(vec![c(b"ab", Count(5))], Some(&type_error)),
            vec![c(b"ab", Count(5)), c(b"cd", b(b"\n")), F(b(b"\n"))],
        ),
        (
            hook_fixed(Count(5), &[b"ab", b"cd\n"], vec![(0, Unset)], vec![]),
            with(vec![c(b"ab", Count(5))], Some(&type_error)),
            vec![c(b"ab", Count(5)), c(b"cd\n", Unset)],
        ),
        (
            hook_fixed(Count(5), &[b"ab", b"cd\n"], vec![(0, Count(3))], vec![]),
            with(
                vec![
                    c(b"ab", Count(5)),
                    c(b"c", Count(1)),
                    F(Count(0)),
                    c(b"d\n", Count(0)),
                ],
                None,
            ),
            vec![c(b"ab", Count(5)), c(b"cd\n", Count(3)), F(Count(0))],
        ),
        // A switch in collect whose data stops before a kept partial terminator:
        // asynchat holds the kept bytes until the next recv, which may never come.
        (
            hook_fixed(b(b"\r\n"), &[b"ab\r"], vec![(0, Unset)], vec![]),
            with(vec![c(b"ab", b(b"\r\n"))], None),
            vec![c(b"ab", b(b"\r\n")), c(b"\r", Unset)],
        ),
        (
            hook_fixed(b(b"\r\n"), &[b"ab\r", b"x"], vec![(0, Count(1))], vec![]),
            with(
                vec![
                    c(b"ab", b(b"\r\n")),
                    c(b"\r", Count(1)),
                    F(Count(0)),
                    c(b"x", Count(0)),
                ],
                None,
            ),
            vec![
                c(b"ab", b(b"\r\n")),
                c(b"\r", Count(1)),
                F(Count(0)),
                c(b"x", Count(0)),
            ],
        ),
        (
            hook_fixed(b(b"\r\n"), &[b"ab\r", b"\n"], vec![(0, b(b"\r"))], vec![]),
            with(
                vec![c(b"ab", b(b"\r\n")), F(b(b"\r")), c(b"\n", b(b"\r"))],
                None,
            ),
            vec![c(b"ab", b(b"\r\n")), F(b(b"\r")), c(b"\n", b(b"\r"))],
        ),
    ];
    let input = format!(
        "[\n{}\n]\n",
        cases
            .iter()
            .map(|(case, _, _)| hook_case_json(case, false))
            .collect::<Vec<_>>()
            .join(",\n")
    );
    let traces = python_trace(&input);
    assert_eq!(traces.len(), cases.len(), "one trace per case");
    for (i, ((case, asynchat, sockloop), theirs)) in cases.iter().zip(&traces).enumerate() {
        let json = hook_case_json(case, false);
        assert_eq!(&json_items(theirs), asynchat, "case {i}: asynchat, {json}");
        assert_eq!(&hooks(case).0, sockloop, "case {i}: sockloop, {json}");
    }
}
