//! The integration tests that need no process of their own, in one test binary (one link
//! instead of one per file). Each file is a module; a test's full name is
//! `<module>::<backend>::<name>` for the loop tests (`eof_flush::epoll::...`), so
//! `cargo test --test loop eof_flush::` runs one file's tests.
//!
//! Tests that touch process-wide state stay in their own binaries under `tests/`: signal
//! dispositions or raised signals (signals, faults, run_returns, loop_state), resource
//! limits (accept_backoff, select_fd_limit), re-running their own binary as a child
//! (reporting, signals, accept_backoff), the global logger (faults, reporting), fd numbers
//! reused across a close (fd_reuse), and every epoll instance of the process read from
//! `/proc/self/fdinfo` (listener).

#[macro_use]
#[path = "../util/mod.rs"]
mod util;

#[path = "../example_proc/mod.rs"]
mod example_proc;

#[path = "../fuzz_checks/mod.rs"]
mod fuzz_checks;

mod accept_pace;
mod asyncore_ports;
mod bad_input;
mod chat_differential;
mod chat_fairness;
mod chat_hooks;
mod chat_layer;
mod chat_server;
mod close_all;
mod connect;
mod eof_flush;
mod examples_exit;
mod flow_control;
mod fuzz_mirror;
mod group;
mod half_close;
mod hangup_routing;
mod hooks;
mod http_file_server;
mod huge_durations;
mod hup_data;
mod idle;
mod idle_activity;
mod iteration_order;
mod oob;
mod output_queue;
mod panics;
mod pipe;
mod poller;
mod producers;
mod recv_no_data;
mod regressions;
mod relay;
mod remote;
mod reset;
mod smtp_sink;
mod stop;
mod timeouts;
mod timers;
mod udp;
