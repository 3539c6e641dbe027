//! Any bytes as a configuration file: TOML into the validated config
//! (`Config::parse_at`, what `anycastd run` and `check-config` do with a
//! file, `include` not followed) never panics; a refusal names the file
//! and a line and column inside the text.
#![no_main]
use libfuzzer_sys::fuzz_target;

// The daemon's modules, compiled in by path as src/main.rs declares them:
// the config names the health checks', services' and speaker's types, and
// those modules name each other through `crate::`.
#[allow(dead_code, unused_imports)]
#[path = "../../../src/cli/mod.rs"]
mod cli;
#[allow(dead_code, unused_imports)]
#[path = "../../../src/config.rs"]
mod config;
#[allow(dead_code, unused_imports)]
#[path = "../../../src/daemon/mod.rs"]
mod daemon;
#[allow(dead_code, unused_imports)]
#[path = "../../../src/health/mod.rs"]
mod health;
#[allow(dead_code, unused_imports)]
#[path = "../../../src/protocol.rs"]
mod protocol;

/// 2027-01-15, inside the key windows of the example configs.
const NOW: u64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::Config::parse_at("fuzz.toml", text, NOW) {
        Ok(_) => {}
        Err(config::ConfigError::Invalid {
            file, line, column, ..
        }) => {
            let lines = text.matches('\n').count() + 1;
            assert_eq!(file, "fuzz.toml");
            assert!((1..=lines).contains(&line), "line {line} of {lines}");
            assert!(column >= 1, "column {column}");
        }
        Err(e) => panic!("no file is read without include: {e}"),
    }
});
