//! The `anycastd-lab` command line itself (its subcommands are exercised
//! by the root package's lab tests, which run this binary). Having an
//! integration test also makes `cargo test --workspace` build the binary
//! those tests look for beside `anycastd`.

use std::process::Command;

fn lab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_anycastd-lab"))
        .args(args)
        .output()
        .expect("run anycastd-lab")
}

#[test]
fn help_lists_the_lab_commands() {
    let out = lab(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "up",
        "down",
        "status",
        "exec",
        "demo",
        "bench-db",
        "bench-checks",
        "vm",
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(cmd)),
            "{cmd} missing from:\n{text}"
        );
    }
    // The lab's internal servers are there but hidden.
    assert!(!text.contains("serve-http"), "{text}");
    assert!(lab(&["serve-http", "--help"]).status.success());
}

#[test]
fn taking_down_a_lab_that_is_not_up_fails_and_says_so() {
    let name = format!("nosuch{}", std::process::id());
    let out = lab(&["down", &name]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("lab {name} is not up")), "{err}");
}
