// The proptest configuration of every property test (`tests/loop/fuzz_mirror.rs` and the
// scanner's unit tests in src/chat/scanner/tests.rs, which `include!` it): the same cases on every run.
//
// * By default the RNG seed is fixed ([`SEED`]), so CI runs the same cases each time and
//   a red run is reproducible, and nothing is written into the source tree (no
//   `*.proptest-regressions` files: a failure found is kept as an explicit, named
//   regression test next to the property instead).
// * `SOCKLOOP_PROPTEST_FRESH=1` draws fresh random cases (for local exploration);
//   `PROPTEST_RNG_SEED=<u64>` runs another fixed seed. A failure prints the shrunk input:
//   turn it into a named regression test.

use proptest::test_runner::{Config, RngSeed};

/// The environment variable that asks for fresh random cases.
pub const FRESH_ENV: &str = "SOCKLOOP_PROPTEST_FRESH";

/// The fixed seed of the default run.
pub const SEED: u64 = 0x50c4_100b;

/// `cases` cases, seeded as described in the module docs, without failure persistence.
pub fn proptest_config(cases: u32) -> Config {
    // Config::default() has already read the PROPTEST_* variables.
    let default = Config::default();
    let fresh = std::env::var(FRESH_ENV).is_ok_and(|v| v == "1");
    let rng_seed = match default.rng_seed {
        RngSeed::Random if !fresh => RngSeed::Fixed(SEED),
        seed => seed,
    };
    Config {
        cases,
        rng_seed,
        failure_persistence: None,
        ..default
    }
}
