//! The scanner's unit tests: the splitting rules, the record limit, and a property test
//! that any chunking of the input gives the same callbacks.

use super::*;
use proptest::prelude::*;

/// One callback as the tests record it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Data(Vec<u8>),
    Term,
    TooLong,
}

fn d(b: &[u8]) -> Ev {
    Ev::Data(b.to_vec())
}

fn bytes(b: &[u8]) -> Terminator {
    Terminator::Bytes(b.to_vec())
}

/// The initial terminator, switches applied at the k-th (0-based)
/// `Piece::Terminator`, and a record limit.
#[derive(Debug, Clone)]
struct Script {
    initial: Terminator,
    switches: Vec<(usize, Terminator)>,
    max: Option<usize>,
}

fn script(initial: Terminator) -> Script {
    Script {
        initial,
        switches: Vec::new(),
        max: None,
    }
}

/// Result of one run: the exact callbacks, the final terminator and what
/// is left buffered.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<Ev>,
    terminator: Terminator,
    buffered: usize,
}

fn run(sc: &Script, chunks: &[&[u8]]) -> Outcome {
    let mut s = Scanner::new();
    s.set_max_record(sc.max);
    s.set_terminator(sc.initial.clone()).unwrap();
    let mut events = Vec::new();
    let mut k = 0;
    'feed: for c in chunks {
        s.feed(c);
        loop {
            match s.next_piece() {
                Ok(Some(Piece::Data(data))) => {
                    assert!(!data.is_empty(), "empty data piece");
                    events.push(d(data));
                }
                Ok(Some(Piece::Terminator)) => {
                    events.push(Ev::Term);
                    if let Some((_, t)) = sc.switches.iter().find(|(at, _)| *at == k) {
                        s.set_terminator(t.clone()).unwrap();
                    }
                    k += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
                    // Sticky.
                    assert!(s.next_piece().is_err());
                    events.push(Ev::TooLong);
                    break 'feed;
                }
            }
        }
    }
    Outcome {
        events,
        terminator: s.terminator().clone(),
        buffered: s.buffered(),
    }
}

/// Merges adjacent data pieces: the chunking-independent view.
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

fn split_at_points<'a>(input: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut pts: Vec<usize> = points.iter().map(|&p| p.min(input.len())).collect();
    pts.sort_unstable();
    pts.dedup();
    let mut out = Vec::new();
    let mut from = 0;
    for p in pts {
        out.push(&input[from..p]);
        from = p;
    }
    out.push(&input[from..]);
    out
}

/// splitmix64, for reproducible random splits.
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
}

/// Every chunking the tests try: whole, 1-byte pieces, every 2-split,
/// every 3-split of short inputs, and 64 random splits.
fn chunkings(input: &[u8]) -> Vec<Vec<&[u8]>> {
    let n = input.len();
    let mut all = vec![vec![input], input.chunks(1).collect()];
    for i in 0..=n {
        all.push(split_at_points(input, &[i]));
    }
    if n <= 24 {
        for i in 0..=n {
            for j in i..=n {
                all.push(split_at_points(input, &[i, j]));
            }
        }
    }
    let mut rng = Rng(n as u64 ^ 0x5eed);
    for _ in 0..64 {
        let cuts = rng.below(n + 2);
        let pts: Vec<usize> = (0..cuts).map(|_| rng.below(n + 1)).collect();
        all.push(split_at_points(input, &pts));
    }
    all
}

/// Runs `input` under every chunking and checks the merged callbacks and
/// the final terminator; returns the outcome of the whole-buffer run.
fn check(sc: &Script, input: &[u8], expected: &[Ev], terminator: &Terminator) -> Outcome {
    for chunks in chunkings(input) {
        let out = run(sc, &chunks);
        assert_eq!(merged(&out.events), expected, "chunks {chunks:?}");
        assert_eq!(&out.terminator, terminator, "chunks {chunks:?}");
    }
    run(sc, &[input])
}

// ---- Bytes terminators -------------------------------------------------

#[test]
fn bytes_crlf_records() {
    let sc = script(bytes(b"\r\n"));
    let out = check(
        &sc,
        b"hello\r\nworld\r\n",
        &[d(b"hello"), Ev::Term, d(b"world"), Ev::Term],
        &bytes(b"\r\n"),
    );
    assert_eq!(out.buffered, 0);
}

#[test]
fn bytes_empty_record_has_no_data() {
    let sc = script(bytes(b"\r\n"));
    let out = check(
        &sc,
        b"\r\n\r\nx\r\n\r\n",
        &[Ev::Term, Ev::Term, d(b"x"), Ev::Term, Ev::Term],
        &bytes(b"\r\n"),
    );
    assert_eq!(
        out.events,
        [Ev::Term, Ev::Term, d(b"x"), Ev::Term, Ev::Term]
    );
}

#[test]
fn bytes_single_byte_terminator() {
    let sc = script(bytes(b"\n"));
    check(
        &sc,
        b"a\nbb\n\nccc",
        &[d(b"a"), Ev::Term, d(b"bb"), Ev::Term, Ev::Term, d(b"ccc")],
        &bytes(b"\n"),
    );
}

#[test]
fn bytes_partial_terminator_is_kept() {
    let sc = script(bytes(b"\r\n"));
    let out = check(&sc, b"abc\r", &[d(b"abc")], &bytes(b"\r\n"));
    assert_eq!(out.buffered, 1);

    let mut s = Scanner::new();
    s.set_terminator(bytes(b"\r\n.\r\n")).unwrap();
    s.feed(b"line\r\n.");
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Data(b"line")));
    assert_eq!(s.next_piece().unwrap(), None);
    assert_eq!(s.buffered(), 3);
    s.feed(b"\r");
    assert_eq!(s.next_piece().unwrap(), None);
    s.feed(b"\n");
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Terminator));
    assert_eq!(s.next_piece().unwrap(), None);
    assert_eq!(s.buffered(), 0);
}

#[test]
fn bytes_false_prefix_is_data() {
    let sc = script(bytes(b"\r\n"));
    check(
        &sc,
        b"a\rb\r\rc\r\n",
        &[d(b"a\rb\r\rc"), Ev::Term],
        &bytes(b"\r\n"),
    );
}

#[test]
fn bytes_long_terminator_split_anywhere() {
    let sc = script(bytes(b"\r\n.\r\n"));
    let out = check(
        &sc,
        b"1\r\n2\r\n.\r\n\r\n.\r\n.\r\n3\r\n.",
        &[d(b"1\r\n2"), Ev::Term, Ev::Term, d(b".\r\n3")],
        &bytes(b"\r\n.\r\n"),
    );
    // "\r\n." could still become the terminator.
    assert_eq!(out.buffered, 3);
}

#[test]
fn bytes_self_overlapping_terminators() {
    check(
        &script(bytes(b"aab")),
        b"aaabaab",
        &[d(b"a"), Ev::Term, Ev::Term],
        &bytes(b"aab"),
    );
    let out = check(
        &script(bytes(b"abcabd")),
        b"abcabcabdabcabc",
        &[d(b"abc"), Ev::Term, d(b"abc")],
        &bytes(b"abcabd"),
    );
    assert_eq!(out.buffered, 3);
    let out = check(
        &script(bytes(b"aaaa")),
        b"aaaaaaaaaab",
        &[Ev::Term, Ev::Term, d(b"aab")],
        &bytes(b"aaaa"),
    );
    assert_eq!(out.buffered, 0);
    let out = check(
        &script(bytes(b"aaaa")),
        b"aaaaaaaaaa",
        &[Ev::Term, Ev::Term],
        &bytes(b"aaaa"),
    );
    assert_eq!(out.buffered, 2);
}

#[test]
fn bytes_exact_cpython_boundaries() {
    // Expected sequences recorded from CPython 3.11 asynchat.
    let sc = script(bytes(b"\r\n"));
    assert_eq!(
        run(&sc, &[b"abc\r", b"\nx"]).events,
        [d(b"abc"), Ev::Term, d(b"x")]
    );
    assert_eq!(
        run(&sc, &[b"ab\r\n\r\nc"]).events,
        [d(b"ab"), Ev::Term, Ev::Term, d(b"c")]
    );
    let sc = script(bytes(b"aab"));
    assert_eq!(run(&sc, &[b"aa", b"ab"]).events, [d(b"a"), Ev::Term]);
    assert_eq!(run(&sc, &[b"aaab"]).events, [d(b"a"), Ev::Term]);
    // A kept prefix is delivered together with the next read.
    let sc = script(bytes(b"\r\n"));
    assert_eq!(run(&sc, &[b"a\r", b"b"]).events, [d(b"a"), d(b"\rb")]);
}

#[test]
fn empty_bytes_terminator_is_rejected() {
    let mut s = Scanner::new();
    s.set_terminator(bytes(b"x")).unwrap();
    let err = s.set_terminator(Terminator::Bytes(Vec::new())).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("at least one byte"), "{err}");
    assert_eq!(s.terminator(), &bytes(b"x"));
}

// ---- Count terminators --------------------------------------------------

#[test]
fn count_then_collect_everything() {
    let sc = script(Terminator::Count(3));
    check(
        &sc,
        b"abcdefgh",
        &[d(b"abc"), Ev::Term, d(b"defgh")],
        &Terminator::Count(0),
    );
}

#[test]
fn count_counts_down_across_feeds() {
    let sc = script(Terminator::Count(10));
    let out = check(&sc, b"1234", &[d(b"1234")], &Terminator::Count(6));
    assert_eq!(out.buffered, 0);

    let mut s = Scanner::new();
    s.set_terminator(Terminator::Count(5)).unwrap();
    s.feed(b"ab");
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Data(b"ab")));
    assert_eq!(s.terminator(), &Terminator::Count(3));
    assert_eq!(s.next_piece().unwrap(), None);
    s.feed(b"cdefg");
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Data(b"cde")));
    assert_eq!(s.terminator(), &Terminator::Count(0));
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Terminator));
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Data(b"fg")));
    assert_eq!(s.next_piece().unwrap(), None);
}

#[test]
fn count_exact_cpython_boundaries() {
    // CPython 3.11: [b'ab', b'cdef'] with 4 -> ab, cd, term, ef.
    let sc = script(Terminator::Count(4));
    assert_eq!(
        run(&sc, &[b"ab", b"cdef"]).events,
        [d(b"ab"), d(b"cd"), Ev::Term, d(b"ef")]
    );
    assert_eq!(run(&sc, &[b"abcd"]).events, [d(b"abcd"), Ev::Term]);
}

#[test]
fn count_zero_is_none() {
    let sc = script(Terminator::Count(0));
    check(&sc, b"abc\r\n", &[d(b"abc\r\n")], &Terminator::Count(0));
}

#[test]
fn count_huge() {
    let sc = script(Terminator::Count(u64::MAX));
    check(&sc, b"abc", &[d(b"abc")], &Terminator::Count(u64::MAX - 3));
}

#[test]
fn count_repeated_records() {
    let mut sc = script(Terminator::Count(2));
    sc.switches = (0..4).map(|k| (k, Terminator::Count(2))).collect();
    check(
        &sc,
        b"aabbccddee",
        &[
            d(b"aa"),
            Ev::Term,
            d(b"bb"),
            Ev::Term,
            d(b"cc"),
            Ev::Term,
            d(b"dd"),
            Ev::Term,
            d(b"ee"),
            Ev::Term,
        ],
        &Terminator::Count(0),
    );
}

// ---- None ---------------------------------------------------------------

#[test]
fn none_is_all_data() {
    let sc = script(Terminator::None);
    check(&sc, b"a\r\nb\n", &[d(b"a\r\nb\n")], &Terminator::None);
    // One piece per read, like CPython.
    assert_eq!(run(&sc, &[b"ab", b"c"]).events, [d(b"ab"), d(b"c")]);
    assert_eq!(run(&sc, &[]).events, []);
}

// ---- Switching terminators ------------------------------------------------

#[test]
fn switch_in_found_terminator_applies_to_same_buffer() {
    // A chunked-transfer-like protocol: size line, then body.
    let mut sc = script(bytes(b"\r\n"));
    sc.switches = vec![
        (0, Terminator::Count(3)),
        (1, bytes(b"\r\n")),
        (2, Terminator::Count(5)),
        (3, Terminator::None),
    ];
    check(
        &sc,
        b"3\r\nabc5\r\nhello\r\nrest",
        &[
            d(b"3"),
            Ev::Term,
            d(b"abc"),
            Ev::Term,
            d(b"5"),
            Ev::Term,
            d(b"hello"),
            Ev::Term,
            d(b"\r\nrest"),
        ],
        &Terminator::None,
    );
}

#[test]
fn switch_between_bytes_terminators() {
    let mut sc = script(bytes(b"\r\n"));
    sc.switches = vec![(0, bytes(b"\r\n.\r\n")), (1, bytes(b"\n"))];
    check(
        &sc,
        b"LIST\r\na\r\nb\r\n.\r\nx\ny",
        &[
            d(b"LIST"),
            Ev::Term,
            d(b"a\r\nb"),
            Ev::Term,
            d(b"x"),
            Ev::Term,
            d(b"y"),
        ],
        &bytes(b"\n"),
    );
}

#[test]
fn switch_from_count_to_bytes() {
    let mut sc = script(Terminator::Count(2));
    sc.switches = vec![(0, bytes(b";"))];
    check(
        &sc,
        b";;a;",
        &[d(b";;"), Ev::Term, d(b"a"), Ev::Term],
        &bytes(b";"),
    );
}

#[test]
fn set_terminator_between_data_and_terminator_keeps_pending_terminator() {
    let mut s = Scanner::new();
    s.set_terminator(bytes(b"\r\n")).unwrap();
    s.feed(b"ab\r\ncd");
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Data(b"ab")));
    // As in CPython, the terminator found is still reported and skipped
    // by its own length.
    s.set_terminator(bytes(b"xyz")).unwrap();
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Terminator));
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Data(b"cd")));
}

// ---- discard --------------------------------------------------------------

#[test]
fn discard_drops_held_prefix_and_pending_terminator() {
    let mut s = Scanner::new();
    s.set_terminator(bytes(b"\r\n")).unwrap();
    s.feed(b"abc\r");
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Data(b"abc")));
    assert_eq!(s.next_piece().unwrap(), None);
    s.discard();
    assert_eq!(s.buffered(), 0);
    s.feed(b"\n");
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Data(b"\n")));

    s.feed(b"x\r\ny");
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Data(b"x")));
    s.discard();
    assert_eq!(s.next_piece().unwrap(), None);
    assert_eq!(s.terminator(), &bytes(b"\r\n"));
}

// ---- Record limit ---------------------------------------------------------

fn limited(max: usize) -> Script {
    Script {
        max: Some(max),
        ..script(bytes(b"\r\n"))
    }
}

#[test]
fn max_record_exactly_at_limit_is_accepted() {
    let sc = limited(5);
    check(
        &sc,
        b"abcde\r\n\r\nabc\r\nabcde\r\nab",
        &[
            d(b"abcde"),
            Ev::Term,
            Ev::Term,
            d(b"abc"),
            Ev::Term,
            d(b"abcde"),
            Ev::Term,
            d(b"ab"),
        ],
        &bytes(b"\r\n"),
    );
}

#[test]
fn max_record_exceeded_with_terminator_in_buffer() {
    check(
        &limited(5),
        b"ab\r\nabcdef\r\n",
        &[d(b"ab"), Ev::Term, d(b"abcde"), Ev::TooLong],
        &bytes(b"\r\n"),
    );
}

#[test]
fn max_record_exceeded_without_terminator() {
    check(
        &limited(5),
        b"abcde\rX",
        &[d(b"abcde"), Ev::TooLong],
        &bytes(b"\r\n"),
    );
    check(
        &limited(0),
        b"\r\n\r\nx",
        &[Ev::Term, Ev::Term, Ev::TooLong],
        &bytes(b"\r\n"),
    );
}

#[test]
fn max_record_error_is_sticky_until_discard() {
    let mut s = Scanner::new();
    s.set_terminator(bytes(b"\n")).unwrap();
    s.set_max_record(Some(3));
    s.feed(b"abcd\nok\n");
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Data(b"abc")));
    let err = s.next_piece().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("longer than 3 bytes"), "{err}");
    assert!(s.next_piece().is_err());
    s.discard();
    s.feed(b"ok\n");
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Data(b"ok")));
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Terminator));
}

#[test]
fn max_record_does_not_limit_count_or_none() {
    let mut sc = Script {
        max: Some(2),
        ..script(Terminator::Count(6))
    };
    sc.switches = vec![(0, Terminator::None)];
    check(
        &sc,
        b"abcdefghij",
        &[d(b"abcdef"), Ev::Term, d(b"ghij")],
        &Terminator::None,
    );
}

#[test]
fn max_record_bounds_memory() {
    let mut s = Scanner::new();
    s.set_terminator(bytes(b"\r\n.\r\n")).unwrap();
    s.set_max_record(Some(100_000));
    let feed = [b'x'; 4096];
    let mut delivered = 0;
    // Bounded: the limit is reached after 25 feeds; a limit that never trips fails
    // here instead of hanging (or growing without end).
    let mut error = None;
    'feed: for _ in 0..100 {
        s.feed(&feed);
        assert!(s.buffered() <= feed.len() + 4);
        for _ in 0..=feed.len() {
            match s.next_piece() {
                Ok(Some(Piece::Data(data))) => delivered += data.len(),
                Ok(Some(Piece::Terminator)) => panic!("no terminator in input"),
                Ok(None) => {
                    assert!(s.buffered() <= 4);
                    continue 'feed;
                }
                Err(e) => {
                    error = Some(e);
                    break 'feed;
                }
            }
        }
        panic!(
            "one feed of {} bytes gave more pieces than bytes",
            feed.len()
        );
    }
    let err = error.expect("the record limit was never reported (400 KiB fed)");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(delivered, 100_000);
}

// ---- Buffer management ------------------------------------------------------

#[test]
fn unlimited_scanner_holds_only_a_partial_terminator() {
    let mut s = Scanner::new();
    s.set_terminator(bytes(b"\r\n")).unwrap();
    let mut total = 0;
    for _ in 0..256 {
        s.feed(&[b'y'; 4095]);
        s.feed(b"\r");
        while let Some(p) = s.next_piece().unwrap() {
            if let Piece::Data(data) = p {
                total += data.len();
            }
        }
        assert_eq!(s.buffered(), 1);
    }
    assert_eq!(total, 256 * 4096 - 1);
}

#[test]
fn many_records_in_one_buffer() {
    let input = b"x\r\n".repeat(100_000);
    let mut s = Scanner::new();
    s.set_terminator(bytes(b"\r\n")).unwrap();
    s.feed(&input);
    let (mut data, mut terms) = (0, 0);
    while let Some(p) = s.next_piece().unwrap() {
        match p {
            Piece::Data(b"x") => data += 1,
            Piece::Data(other) => panic!("unexpected {other:?}"),
            Piece::Terminator => terms += 1,
        }
    }
    assert_eq!((data, terms), (100_000, 100_000));
}

#[test]
fn feed_without_draining_keeps_everything() {
    let mut s = Scanner::new();
    s.set_terminator(bytes(b";")).unwrap();
    s.feed(b"ab;c");
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Data(b"ab")));
    // Compaction while a terminator is pending must keep it.
    s.feed(b"d;");
    s.feed(b"e");
    assert_eq!(s.buffered(), 5);
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Terminator));
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Data(b"cd")));
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Terminator));
    assert_eq!(s.next_piece().unwrap(), Some(Piece::Data(b"e")));
    assert_eq!(s.next_piece().unwrap(), None);
}

#[test]
fn helpers_match_cpython() {
    // f_p_a_e("qwerty\r", "\r\n") => 1, f_p_a_e("qwertydkjf", "\r\n") => 0
    assert_eq!(find_prefix_at_end(b"qwerty\r", b"\r\n"), 1);
    assert_eq!(find_prefix_at_end(b"qwertydkjf", b"\r\n"), 0);
    assert_eq!(find_prefix_at_end(b"xabcab", b"abcabd"), 5);
    assert_eq!(find_prefix_at_end(b"ab", b"abcabd"), 2);
    assert_eq!(find_prefix_at_end(b"a", b"a"), 0);
    assert_eq!(find(b"abcabd", b"abd"), Some(3));
    assert_eq!(find(b"ab", b"abd"), None);
    assert_eq!(find(b"aab", b"b"), Some(2));
    assert_eq!(find(b"", b"b"), None);
    assert_eq!(find(b"abc", b""), None);
}

#[test]
fn debug_does_not_dump_the_buffer() {
    let mut s = Scanner::new();
    s.feed(b"secret");
    let text = format!("{s:?}");
    assert!(text.contains("buffered: 6"), "{text}");
    assert!(!text.contains("secret"), "{text}");
}

// ---- Property: chunking never changes the callbacks -------------------------

fn terminator_strategy() -> impl Strategy<Value = Terminator> {
    let byte = prop::sample::select(vec![b'a', b'b', b'\r', b'\n']);
    prop_oneof![
        Just(Terminator::None),
        (0u64..8).prop_map(Terminator::Count),
        prop::collection::vec(byte, 1..5).prop_map(Terminator::Bytes),
    ]
}

fn script_strategy() -> impl Strategy<Value = Script> {
    (
        terminator_strategy(),
        prop::collection::vec((0usize..10, terminator_strategy()), 0..8),
        prop::option::of(0usize..12),
    )
        .prop_map(|(initial, switches, max)| Script {
            initial,
            switches,
            max,
        })
}

/// A fixed seed unless `SOCKLOOP_PROPTEST_FRESH=1`; no regressions file. Shared with
/// the integration tests (whose file declares its items `pub` for them).
#[allow(unreachable_pub)]
mod proptest_seed {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/util/proptest_seed.rs"
    ));
}

proptest! {
    #![proptest_config(proptest_seed::proptest_config(2000))]

    #[test]
    fn any_chunking_gives_the_same_callbacks(
        sc in script_strategy(),
        input in prop::collection::vec(
            prop::sample::select(vec![b'a', b'b', b'\r', b'\n']), 0..80),
        cuts_a in prop::collection::vec(0usize..80, 0..12),
        cuts_b in prop::collection::vec(0usize..80, 0..12),
    ) {
        let whole = run(&sc, &[&input]);
        let a = run(&sc, &split_at_points(&input, &cuts_a));
        let b = run(&sc, &split_at_points(&input, &cuts_b));
        let bytewise = run(&sc, &input.chunks(1).collect::<Vec<_>>());
        for other in [&a, &b, &bytewise] {
            prop_assert_eq!(merged(&other.events), merged(&whole.events));
            prop_assert_eq!(&other.terminator, &whole.terminator);
            if !whole.events.contains(&Ev::TooLong) {
                prop_assert_eq!(other.buffered, whole.buffered);
            }
        }
    }
}
