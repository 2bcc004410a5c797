//! The guide: the level between the README and the API docs.
//!
//! Short chapters, each a page of prose around programs you can run. Every code block in
//! them is a doctest: `cargo test --doc` compiles all of them and runs every one that
//! ends by itself (on loopback, port 0, with every loop bounded in time and in
//! iterations). The few marked `no_run` serve until a signal, and each is a tested
//! example: `examples/asyncore_echo_server.rs` and `examples/asyncore_http_client.rs`,
//! included verbatim in [the porting chapter](porting) and run by
//! `tests/loop/asyncore_ports.rs`, and the main thread of `echo_server --threads N` in
//! [the multi-core chapter](multi_core), run by `tests/loop/examples_exit.rs`.
//!
//! 1. [Writing a server and writing a client](server_and_client)
//! 2. [Sharing state](sharing_state): loop-owned state, one helper for hooks, timers and
//!    other threads
//! 3. [Timers and timeouts](timers): `call_later`, `call_every`, idle and connect timeouts
//! 4. [Flow control between channels](flow_control): `pause_reading`, `handle_drained`
//! 5. [Half-close](half_close): `shutdown`, `handle_eof`, `shutdown_when_done`
//! 6. [Producers and big files](producers): `push_with_producer`, `FileProducer`
//! 7. [Logging](logging): `env_logger`, and the stderr fallback
//! 8. [Multi-core with `LoopGroup`](multi_core)
//! 9. [Testing a protocol handler without sockets](testing): `Scripted`
//! 10. [Porting an asyncore program line by line](porting)
//!
//! Where to go next: the [`Dispatcher`](crate::Dispatcher) trait (every hook and its
//! default), [`Channel`](crate::Channel) (what a hook can do to its channel),
//! [`LoopHandle`](crate::LoopHandle) (what every callback can do to the loop), and the
//! examples listed in the README.

#[doc = include_str!("guide/server_and_client.md")]
pub mod server_and_client {}

#[doc = include_str!("guide/sharing_state.md")]
pub mod sharing_state {}

#[doc = include_str!("guide/timers.md")]
pub mod timers {}

#[doc = include_str!("guide/flow_control.md")]
pub mod flow_control {}

#[doc = include_str!("guide/half_close.md")]
pub mod half_close {}

#[doc = include_str!("guide/producers.md")]
pub mod producers {}

#[doc = include_str!("guide/logging.md")]
pub mod logging {}

#[doc = include_str!("guide/multi_core.md")]
pub mod multi_core {}

#[doc = include_str!("guide/testing.md")]
pub mod testing {}

#[doc = concat!(
    include_str!("guide/porting.md"),
    "\n## The echo server, whole\n\nPython (`src/guide/asyncore_echo_server.py`, from the CPython 3.11 documentation):\n\n```python\n",
    include_str!("guide/asyncore_echo_server.py"),
    "```\n\nRust (`examples/asyncore_echo_server.rs`, run by `tests/loop/asyncore_ports.rs`; `no_run` here because it serves until a signal):\n\n```rust,no_run\n",
    include_str!("../examples/asyncore_echo_server.rs"),
    "```\n\n## The HTTP client, whole\n\nPython (`src/guide/asyncore_http_client.py`, from the CPython 3.11 documentation):\n\n```python\n",
    include_str!("guide/asyncore_http_client.py"),
    "```\n\nRust (`examples/asyncore_http_client.rs`, run by `tests/loop/asyncore_ports.rs` against a local HTTP server; `no_run` here because it would connect to www.python.org):\n\n```rust,no_run\n",
    include_str!("../examples/asyncore_http_client.rs"),
    "```\n",
)]
pub mod porting {}
