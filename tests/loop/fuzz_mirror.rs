//! The fuzz targets (`fuzz/`) in the normal test suite, so CI keeps what fuzzing
//! found: every file of `fuzz/corpus/<target>/` is replayed through the same checks
//! (`tests/fuzz_checks/mod.rs`), and the checks also run under proptest on structured and
//! raw random inputs.
//!
//! The hand-written seeds below are the `seed-*` files of the corpus:
//! `SOCKLOOP_WRITE_CORPUS=1 cargo test --test loop fuzz_mirror::seeds` rewrites them after a
//! change of the input encoding; without the variable the test fails if a file is stale.
//!
//! The properties run a fixed set of cases (a fixed seed, no regressions file written);
//! `SOCKLOOP_PROPTEST_FRESH=1` draws fresh ones (see `tests/util/proptest_seed.rs`).
//! Failures found are kept below as named regression tests.

use crate::util;

use std::path::{Path, PathBuf};

use crate::fuzz_checks::{
    chat_run, check_chat_input, check_smtp_session, parse_replies, smtp_run, verify_chat,
    verify_smtp, ChatEv, ChatProgram, Rule, SmtpProgram, TooLong,
};
use proptest::prelude::*;
use sockloop::chat::Terminator;

fn bytes(t: &[u8]) -> Terminator {
    Terminator::Bytes(t.to_vec())
}

fn set(t: Terminator) -> Rule {
    Rule {
        terminator: Some(t),
        max_record: None,
        close: false,
    }
}

fn chat(initial: Terminator, data: &[u8]) -> ChatProgram {
    ChatProgram {
        initial,
        max_record: None,
        in_buffer_size: 65536,
        too_long: TooLong::Close,
        rules: Vec::new(),
        chunks: Vec::new(),
        data: data.to_vec(),
    }
}

/// The hand-written `chat_input` seeds.
fn chat_seeds() -> Vec<(&'static str, ChatProgram)> {
    vec![
        (
            "crlf-lines",
            ChatProgram {
                chunks: vec![3, 1, 2],
                ..chat(bytes(b"\r\n"), b"hello\r\nworld\r\n\r\na\rb\r\npartial\r")
            },
        ),
        (
            "length-prefixed",
            ChatProgram {
                rules: vec![set(Terminator::Count(5)), set(bytes(b"\n"))],
                chunks: vec![1, 4],
                ..chat(bytes(b"\n"), b"x\nhello\ny\nworld\ntail")
            },
        ),
        (
            "dot-terminator-switch",
            ChatProgram {
                rules: vec![set(bytes(b"\r\n.\r\n")), set(bytes(b"\r\n"))],
                chunks: vec![2, 5, 1],
                ..chat(
                    bytes(b"\r\n"),
                    b"DATA\r\nline\r\n..\r\n.x\r\n.\r\nQUIT\r\nrest\r\n.",
                )
            },
        ),
        (
            "limit-skip",
            ChatProgram {
                max_record: Some(4),
                too_long: TooLong::Skip,
                chunks: vec![1],
                ..chat(bytes(b"\n"), b"ab\nabcd\nabcdefgh\nxyz\n\nabcdefghij")
            },
        ),
        (
            "limit-close",
            ChatProgram {
                max_record: Some(3),
                ..chat(bytes(b"\r\n"), b"abc\r\nabc\rd\r\nnever\r\n")
            },
        ),
        (
            "limit-switch-in-hook",
            ChatProgram {
                max_record: Some(2),
                too_long: TooLong::Switch,
                rules: vec![Rule {
                    terminator: Some(Terminator::Count(2)),
                    max_record: Some(Some(1)),
                    close: false,
                }],
                ..chat(bytes(b"\n"), b"abcdef\nab\n")
            },
        ),
        (
            "limit-zero-and-lifted",
            ChatProgram {
                max_record: Some(0),
                too_long: TooLong::Skip,
                rules: vec![
                    Rule {
                        terminator: None,
                        max_record: Some(None),
                        close: false,
                    },
                    Rule {
                        terminator: None,
                        max_record: Some(Some(0)),
                        close: false,
                    },
                ],
                chunks: vec![2],
                ..chat(bytes(b";"), b";;long record;;x;y")
            },
        ),
        (
            "overlapping-terminator",
            ChatProgram {
                chunks: vec![1, 2],
                ..chat(bytes(b"aab"), b"aaabaabaaabaa")
            },
        ),
        (
            "count-none-count0",
            ChatProgram {
                rules: vec![
                    set(Terminator::Count(0)),
                    set(Terminator::None),
                    set(Terminator::Count(1)),
                ],
                chunks: vec![2, 3],
                ..chat(Terminator::Count(3), b"abcdefgh\r\nij")
            },
        ),
        (
            "huge-count",
            ChatProgram {
                rules: vec![set(Terminator::Count(u64::MAX))],
                ..chat(Terminator::Count(u64::MAX >> 1), b"everything is data\r\n")
            },
        ),
        (
            "empty-terminator-rejected",
            ChatProgram {
                rules: vec![set(Terminator::Bytes(Vec::new())), set(bytes(b"b"))],
                ..chat(Terminator::Bytes(Vec::new()), b"a;b;c")
            },
        ),
        (
            "close-when-done",
            ChatProgram {
                rules: vec![
                    set(bytes(b";")),
                    Rule {
                        terminator: None,
                        max_record: None,
                        close: true,
                    },
                ],
                chunks: vec![1],
                ..chat(Terminator::Count(2), b"ab;c;dropped;")
            },
        ),
        (
            "small-reads",
            ChatProgram {
                in_buffer_size: 1,
                max_record: Some(5),
                too_long: TooLong::Skip,
                rules: vec![set(bytes(b"\r\n")), set(bytes(b"\n"))],
                chunks: vec![7],
                ..chat(bytes(b"\r\n"), b"one\r\ntoo long line\r\ntwo\nthree\r\n")
            },
        ),
    ]
}

fn smtp(data: &[u8]) -> SmtpProgram {
    SmtpProgram {
        max_size: SmtpProgram::DEFAULT_MAX,
        eof: false,
        chunks: Vec::new(),
        data: data.to_vec(),
    }
}

/// The hand-written `smtp_session` seeds.
fn smtp_seeds() -> Vec<(&'static str, SmtpProgram)> {
    let long_ok = format!("NOOP {}\r\n", "x".repeat(505));
    let long_bad = format!("NOOP {}\r\n", "x".repeat(506));
    let mut long_lines = format!("HELO me\r\n{long_ok}{long_bad}").into_bytes();
    long_lines.extend_from_slice(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n");
    long_lines.extend_from_slice(format!("{}\r\n.\r\nNOOP\r\n", "y".repeat(1500)).as_bytes());
    long_lines.extend_from_slice(format!("VRFY {}", "z".repeat(600)).as_bytes());
    vec![
        (
            "esmtp-session",
            SmtpProgram {
                chunks: vec![7, 3],
                ..smtp(
                    b"EHLO client.example\r\nMAIL FROM:<a@x> SIZE=100 BODY=8BITMIME\r\n\
                      RCPT TO:<b@x>\r\nRCPT TO:<c@y>\r\nDATA\r\nSubject: hi\r\n\r\nhello\r\n\
                      .\r\nQUIT\r\nNOOP\r\n",
                )
            },
        ),
        (
            "dot-stuffing",
            SmtpProgram {
                chunks: vec![1, 2, 3],
                ..smtp(
                    b"HELO me\r\nMAIL FROM:<>\r\nRCPT TO:<b@x>\r\nDATA\r\n..\r\n...\r\n.hidden\r\n\
                      . x\r\n\r\n\xff\x00 8-bit\r\nlast.\r\n.\r\n",
                )
            },
        ),
        (
            "pipelined-rset-in-data",
            smtp(
                b"HELO me\r\nMAIL FROM:<>\r\nRCPT TO:<b@x>\r\nDATA\r\n.\r\nMAIL FROM:<p@x>\r\n\
                  RCPT TO:<q@x>\r\nDATA\r\nRSET\r\nQUIT\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n",
            ),
        ),
        (
            "long-lines",
            SmtpProgram {
                chunks: vec![200, 13],
                ..smtp(&long_lines)
            },
        ),
        (
            "over-size",
            SmtpProgram {
                max_size: 64,
                chunks: vec![5],
                ..smtp(
                    b"EHLO me\r\nMAIL FROM:<a@x> SIZE=65\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\n\
                      DATA\r\n0123456789012345678901234567890123456789\r\n01234567890123456789\r\n\
                      .\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nsmall\r\n.\r\n",
                )
            },
        ),
        (
            "errors",
            smtp(
                b"MAIL FROM:<a@x>\r\nHELO\r\n\r\nFOO bar\r\nHELO me\r\nMAIL FROM:bob\r\n\
                  MAIL FROM:<a@x> SIZE=1\r\nRCPT TO:<b@x>\r\nMAIL FROM:<a@x>\r\nMAIL FROM:<a@x>\r\n\
                  RCPT TO:<>\r\nRCPT TO:<b@x> X=1\r\nDATA x\r\nRSET x\r\nVRFY\r\nVRFY b\r\nHELP\r\n\
                  QUIT now\r\n",
            ),
        ),
        (
            "eof-mid-data",
            SmtpProgram {
                eof: true,
                chunks: vec![9],
                ..smtp(b"HELO me\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nhalf a mess")
            },
        ),
        (
            "bare-cr-lf",
            SmtpProgram {
                eof: true,
                chunks: vec![1],
                ..smtp(
                    b"NOOP\rX\r\nHELO me\n\r\nHELO me\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\n\
                      DATA\r\n\n.\n\r\r\n.\r\r\n\r.\r\n.\r\nNOOP\r",
                )
            },
        ),
    ]
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Every file of `fuzz/corpus/<target>/`, sorted by name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 8,
        "{}: only {} corpus files",
        dir.display(),
        files.len()
    );
    files
}

#[test]
fn chat_input_corpus_replays() {
    for (name, data) in corpus("chat_input") {
        if let Err(e) = check_chat_input(&data) {
            panic!("fuzz/corpus/chat_input/{name}: {e}");
        }
    }
}

#[test]
fn smtp_session_corpus_replays() {
    for (name, data) in corpus("smtp_session") {
        if let Err(e) = check_smtp_session(&data) {
            panic!("fuzz/corpus/smtp_session/{name}: {e}");
        }
    }
}

/// The seeds decode to what they were written from, pass, and are in the corpus.
#[test]
fn seeds_are_in_the_corpus() {
    let write = std::env::var_os("SOCKLOOP_WRITE_CORPUS").is_some();
    let mut files = Vec::new();
    for (name, p) in chat_seeds() {
        let input = p.encode();
        assert_eq!(ChatProgram::decode(&input), p, "{name}");
        check_chat_input(&input).unwrap_or_else(|e| panic!("seed {name}: {e}"));
        files.push(("chat_input", name, input));
    }
    for (name, p) in smtp_seeds() {
        let input = p.encode();
        assert_eq!(SmtpProgram::decode(&input), p, "{name}");
        check_smtp_session(&input).unwrap_or_else(|e| panic!("seed {name}: {e}"));
        files.push(("smtp_session", name, input));
    }
    for (target, name, input) in files {
        let path = corpus_dir(target).join(format!("seed-{name}"));
        if write {
            std::fs::create_dir_all(corpus_dir(target)).unwrap();
            std::fs::write(&path, &input).unwrap();
        } else {
            let on_disk = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (SOCKLOOP_WRITE_CORPUS=1)", path.display()));
            assert_eq!(
                on_disk,
                input,
                "{} is stale (SOCKLOOP_WRITE_CORPUS=1 rewrites it)",
                path.display()
            );
        }
    }
}

/// The checks are not vacuous: runs that lose, duplicate or misreport input, and malformed
/// replies, are caught.
#[test]
fn checks_catch_violations() {
    let (_, p) = chat_seeds().swap_remove(3); // limit-skip
    let good = chat_run(&p, &[&p.data]);
    verify_chat(&p, &good).unwrap();
    assert!(good
        .events
        .iter()
        .any(|e| matches!(e, ChatEv::TooLong { .. })));

    let tamper = |f: &dyn Fn(&mut Vec<ChatEv>)| {
        let mut bad = good.clone();
        f(&mut bad.events);
        verify_chat(&p, &bad).expect_err("tampered run accepted")
    };
    // A byte lost, a byte duplicated, a terminator dropped, a record over the limit.
    let lost = tamper(&|ev| {
        if let ChatEv::Data { bytes, .. } = &mut ev[0] {
            bytes.remove(0);
        }
    });
    assert!(lost.contains("lost or duplicated"), "{lost}");
    tamper(&|ev| {
        if let ChatEv::Data { bytes, .. } = &mut ev[0] {
            bytes.insert(0, bytes[0]);
        }
    });
    tamper(&|ev| {
        ev.remove(1);
    });
    tamper(&|ev| {
        let i = ev
            .iter()
            .position(|e| matches!(e, ChatEv::TooLong { .. }))
            .unwrap();
        ev.remove(i);
    });
    let mut bad = good.clone();
    bad.output.push(b'x');
    verify_chat(&p, &bad).expect_err("extra output accepted");

    let (_, p) = chat_seeds().swap_remove(0); // crlf-lines: ends in a held "\r"
    let mut bad = chat_run(&p, &[&p.data]);
    assert_eq!(bad.buffered, 1);
    verify_chat(&p, &bad).unwrap();
    bad.buffered = 0;
    verify_chat(&p, &bad).expect_err("wrong buffered count accepted");

    let (_, p) = smtp_seeds().swap_remove(1); // dot-stuffing
    let good = smtp_run(&p, &[&p.data]);
    verify_smtp(&p, &good).unwrap();
    let mut bad = good.clone();
    bad.stored[0].extend_from_slice(b".\r\n");
    verify_smtp(&p, &bad).expect_err("wrong stored message accepted");
    let mut bad = good.clone();
    bad.output.extend_from_slice(b"250 OK\r\n");
    verify_smtp(&p, &bad).expect_err("extra reply accepted");

    for bad in [
        &b"25 OK\r\n"[..],
        b"250 OK\n",
        b"250-a\r\n251 b\r\n",
        b"250-a\r\n",
        b"250_OK\r\n",
        b"650 OK\r\n",
        b"250 caf\xc3\xa9\r\n",
        b"250 a\rb\r\n",
    ] {
        parse_replies(bad).expect_err(&String::from_utf8_lossy(bad));
    }
    assert_eq!(
        parse_replies(b"250-a\r\n250 b\r\n220 c\r\n").unwrap().len(),
        2
    );
}

// ---- Regressions: what fuzzing found -------------------------------------------------

/// Found by `chat_input` (a libFuzzer timeout) and by `chat_input_raw`: with a record limit
/// of 0, a `handle_record_too_long` that sets a terminator starts a new record at the same
/// position, which is over the limit at once, so `AsyncChat` called the hook again, forever,
/// without consuming input (a stalled event loop; memory grew with each call). Now that
/// record is skipped without a second call.
#[test]
fn regression_limit_zero_switch_in_hook_livelock() {
    use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Scripted};
    use std::io;

    #[derive(Default)]
    struct Resync {
        hooks: usize,
        records: Vec<Vec<u8>>,
        data: Vec<u8>,
    }
    impl ChatHandler for Resync {
        fn collect_incoming_data(&mut self, _: &mut ChatContext<'_>, d: &[u8]) -> io::Result<()> {
            self.data.extend_from_slice(d);
            Ok(())
        }
        fn found_terminator(&mut self, _: &mut ChatContext<'_>) -> io::Result<()> {
            self.records.push(std::mem::take(&mut self.data));
            Ok(())
        }
        fn handle_record_too_long(
            &mut self,
            ctx: &mut ChatContext<'_>,
            _: io::Error,
        ) -> io::Result<()> {
            self.hooks += 1;
            assert!(self.hooks < 100, "handle_record_too_long called in a loop");
            ctx.push(b"too long\n")?;
            ctx.set_terminator(Terminator::Bytes(b"\n".to_vec()))
        }
    }

    let input = b"x\nab\n\nyz";
    for size in 1..=input.len() {
        let mut chat = AsyncChat::new(Resync::default());
        chat.set_terminator(Terminator::Bytes(b"\n".to_vec()))
            .unwrap();
        chat.set_max_record(Some(0));
        let mut s = Scripted::new(chat);
        for chunk in input.chunks(size) {
            s.feed(chunk).unwrap();
        }
        assert_eq!(s.handler().hooks, 3, "reads of {size}");
        assert_eq!(s.handler().records, [b""], "reads of {size}");
        assert_eq!(s.take_output(), b"too long\n".repeat(3));
        assert!(!s.is_closed());
    }

    // The fuzzer's input, minimized: terminator "\n", limit 0, the hook sets "\n", data "x".
    let p = ChatProgram::decode(b"\x05\x00\x0a\x40\x00\x02\x01\x01\x05\x00\x0a\x00x");
    assert_eq!(
        (p.max_record, p.too_long, &p.data[..]),
        (Some(0), TooLong::Switch, &b"x"[..])
    );
    check_chat_input(&p.encode()).unwrap();
}

/// Found by `smtp_session` (and `smtp_session_raw`): the `500` reply to an unknown command
/// echoed the verb through `from_utf8_lossy(..).escape_debug()`, which keeps non-ASCII
/// characters (and U+FFFD for invalid UTF-8) as they are, so the reply text held bytes
/// over 126: not an RFC 5321 reply (textstring is HT and printable US-ASCII; UTF-8 needs
/// SMTPUTF8, which the sink does not offer). Now the verb is escaped as ASCII.
/// A case proptest found while bare CR/LF handling changed (it was committed as a
/// proptest-regressions entry): a bare LF line inside DATA, then a command-looking line.
/// The session must refuse the message (550) and stay consistent with the checks.
#[test]
fn regression_smtp_bare_lf_line_in_data() {
    let p = SmtpProgram {
        max_size: 33_554_432,
        ..smtp(b"HELO me\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n\nHELO me\r\n.\r\n")
    };
    check_smtp_session(&p.encode()).unwrap();
    let out = smtp_run(&p, &[&p.data]);
    verify_smtp(&p, &out).unwrap();
    let text = String::from_utf8(out.output).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("550")),
        "the message with a bare LF is refused: {text}"
    );
}

#[test]
fn regression_smtp_unknown_verb_reply_is_ascii() {
    let p = SmtpProgram {
        max_size: 160,
        ..smtp(b"\xff\r\ncaf\xc3\xa9 x\r\n\"Q\\\x7f\tX\r\nNOOP\r\n")
    };
    let out = smtp_run(&p, &[&p.data]);
    verify_smtp(&p, &out).unwrap();
    let text = String::from_utf8(out.output).unwrap();
    let replies: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(
        replies,
        [
            r#"500 Error: command "\xff" not recognized"#,
            r#"500 Error: command "CAF\xc3\xa9" not recognized"#,
            r#"500 Error: command "\"Q\\\x7f\tX" not recognized"#,
            "250 OK",
        ]
    );
    // The fuzzer's input, minimized: data "\xff\r\n".
    check_smtp_session(b"\x0a\x66\xff\r\n").unwrap();
    // The same failure as proptest shrank it (raw input, the one entry of the former
    // `fuzz_mirror.proptest-regressions`): an unknown verb "\x80"; also a valid chat input.
    let shrunk = [0, 162, 0, 0, 0, 0, 128, 13, 10];
    check_smtp_session(&shrunk).unwrap();
    check_chat_input(&shrunk).unwrap();
}

// ---- The same checks on random inputs ------------------------------------------------

fn terminator() -> impl Strategy<Value = Terminator> {
    let byte = prop::sample::select(b"ab\r\n.;".to_vec());
    prop_oneof![
        1 => Just(Terminator::None),
        1 => (0u64..=255).prop_map(Terminator::Count),
        1 => (0u32..64).prop_map(|s| Terminator::Count(u64::MAX >> s)),
        4 => prop::collection::vec(byte, 1..=5).prop_map(Terminator::Bytes),
        1 => Just(Terminator::Bytes(Vec::new())),
    ]
}

fn max_record() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![
        Just(None),
        (0usize..16).prop_map(Some),
        (0usize..128).prop_map(Some)
    ]
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        prop::option::of(terminator()),
        prop::option::of(max_record()),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(terminator, max_record, close)| Rule {
            terminator,
            max_record,
            close,
        })
}

fn chat_program() -> impl Strategy<Value = ChatProgram> {
    let data = prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(b"ab\r\n.;".to_vec()),
            1 => any::<u8>(),
        ],
        0..300,
    );
    (
        terminator(),
        max_record(),
        prop_oneof![Just(65536usize), 1usize..=255],
        prop::sample::select(vec![TooLong::Close, TooLong::Skip, TooLong::Switch]),
        prop::collection::vec(rule(), 0..=8),
        prop::collection::vec(any::<u8>(), 0..=16),
        data,
    )
        .prop_map(
            |(initial, max_record, in_buffer_size, too_long, rules, chunks, data)| ChatProgram {
                initial,
                max_record,
                in_buffer_size,
                too_long,
                rules,
                chunks,
                data,
            },
        )
}

/// SMTP client lines, valid and not.
fn smtp_line() -> impl Strategy<Value = Vec<u8>> {
    let fixed: Vec<&'static [u8]> = vec![
        b"HELO me\r\n",
        b"EHLO me\r\n",
        b"MAIL FROM:<a@x>\r\n",
        b"MAIL FROM:<a@x> SIZE=100\r\n",
        b"MAIL FROM:<>\r\n",
        b"RCPT TO:<b@y>\r\n",
        b"DATA\r\n",
        b".\r\n",
        b"..\r\n",
        b".x\r\n",
        b"\r\n",
        b"RSET\r\n",
        b"NOOP\r\n",
        b"QUIT\r\n",
        b"VRFY b\r\n",
        b"line of text\r\n",
        b"\r",
        b"\n",
    ];
    prop_oneof![
        8 => prop::sample::select(fixed).prop_map(<[u8]>::to_vec),
        1 => (500usize..530, any::<u8>()).prop_map(|(n, b)| {
            let mut l = vec![b | 0x40; n];
            l.extend_from_slice(b"\r\n");
            l
        }),
        1 => prop::collection::vec(any::<u8>(), 0..20),
    ]
}

fn smtp_program() -> impl Strategy<Value = SmtpProgram> {
    (
        prop_oneof![
            Just(SmtpProgram::DEFAULT_MAX),
            (0usize..64).prop_map(|m| m * 16)
        ],
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..=16),
        prop::collection::vec(smtp_line(), 0..30),
    )
        .prop_map(|(max_size, eof, chunks, lines)| SmtpProgram {
            max_size,
            eof,
            chunks,
            data: lines.concat(),
        })
}

proptest! {
    #![proptest_config(util::proptest_seed::proptest_config(500))]

    #[test]
    fn chat_input_structured(p in chat_program()) {
        let input = p.encode();
        prop_assert_eq!(&ChatProgram::decode(&input), &p);
        if let Err(e) = check_chat_input(&input) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn chat_input_raw(input in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Err(e) = check_chat_input(&input) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn smtp_session_structured(p in smtp_program()) {
        let input = p.encode();
        prop_assert_eq!(&SmtpProgram::decode(&input), &p);
        if let Err(e) = check_smtp_session(&input) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn smtp_session_raw(input in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Err(e) = check_smtp_session(&input) {
            prop_assert!(false, "{}", e);
        }
    }
}
