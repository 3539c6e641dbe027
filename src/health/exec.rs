//! Exec check: the operator's script, exit status 0 = healthy.
//!
//! The script runs in a process group of its own. When the probe's
//! deadline passes (or the check is stopped), the probe future is dropped
//! and the whole group gets SIGKILL, so background children of the script
//! die with it.

use std::process::{ExitStatus, Stdio};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::{Check, ExecCheck, ProbeError};

pub(super) async fn probe(check: &Check, exec: &ExecCheck) -> Result<(), ProbeError> {
    let Some((program, args)) = exec.argv.split_first() else {
        return Err(ProbeError::Exit("empty command".into()));
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env("ANYCASTD_CHECK_ADDRESS", check.target.ip().to_string())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(port) = exec.port {
        command.env("ANYCASTD_CHECK_PORT", port.to_string());
    }
    if let Some((uid, gid)) = exec.user {
        // Supplementary groups dropped with the switch (std sets them
        // empty when the gid is set).
        command.uid(uid).gid(gid);
    }
    let child = command.spawn().map_err(|e| ProbeError::io("spawn", e))?;
    let mut group = Group {
        pgid: child.id().and_then(|id| i32::try_from(id).ok()),
        child,
    };
    let status = group
        .child
        .wait()
        .await
        .map_err(|e| ProbeError::io("wait", e))?;
    // Reaped: the number may now be reused, never signal it again.
    group.pgid = None;
    if status.success() {
        Ok(())
    } else {
        Err(ProbeError::Exit(describe(status)))
    }
}

/// The script's process group, killed on drop unless the leader was reaped.
struct Group {
    pgid: Option<i32>,
    child: Child,
}

impl Drop for Group {
    fn drop(&mut self) {
        // The leader is not reaped yet (at worst a zombie), so its pid still
        // names this group and no other.
        if let Some(pgid) = self.pgid {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        // `kill_on_drop` then has tokio reap the leader in the background.
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(s) => format!("killed by {s}"),
            Err(_) => format!("killed by signal {signal}"),
        },
        (None, None) => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::testutil::{check, ctx, live_members_of_group};
    use super::super::*;

    #[tokio::test]
    async fn true_succeeds() {
        probe(&check("type = \"exec\"\ncommand = [\"true\"]"), &ctx())
            .await
            .unwrap();
        probe(&check("type = \"exec\"\ncommand = \"exit 0\""), &ctx())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn false_fails() {
        let err = probe(&check("type = \"exec\"\ncommand = [\"false\"]"), &ctx())
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "exit");
        assert_eq!(err.to_string(), "exit status 1");
        let err = probe(&check("type = \"exec\"\ncommand = \"kill -9 $$\""), &ctx())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "killed by SIGKILL");
    }

    #[tokio::test]
    async fn missing_program_fails() {
        let c = check("type = \"exec\"\ncommand = [\"/nonexistent/anycastd-check\"]");
        let err = probe(&c, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "io", "{err}");
    }

    #[tokio::test]
    async fn target_is_in_the_environment() {
        let config: CheckConfig = toml::from_str(
            "type = \"exec\"\ncommand = 'test \"$ANYCASTD_CHECK_ADDRESS:$ANYCASTD_CHECK_PORT\" = 127.0.0.1:8080'",
        )
        .unwrap();
        let c = config
            .resolve(super::super::testutil::LOCALHOST, Some(8080))
            .unwrap();
        probe(&c, &ctx()).await.unwrap();
    }

    /// keepalived's `script_user`: the script runs as that user (the
    /// daemon runs as root).
    #[tokio::test]
    async fn runs_as_the_configured_user() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (switching users)"
        );
        let nobody = nix::unistd::User::from_name("nobody")
            .unwrap()
            .expect("user nobody");
        let c = check(&format!(
            "type = \"exec\"\nuser = \"nobody\"\ncommand = 'test \"$(id -u)\" = {}'",
            nobody.uid
        ));
        probe(&c, &ctx()).await.unwrap();
        let as_root = check("type = \"exec\"\ncommand = 'test \"$(id -u)\" = 65534'");
        assert!(
            probe(&as_root, &ctx()).await.is_err(),
            "runs as root without user"
        );
        let config: CheckConfig =
            toml::from_str("type = \"exec\"\nuser = \"no-such-user-here\"\ncommand = \"true\"")
                .unwrap();
        let err = config
            .resolve(super::super::testutil::LOCALHOST, None)
            .unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[tokio::test]
    async fn sleep_is_killed_at_the_deadline() {
        let c = check(
            "type = \"exec\"\ncommand = [\"sleep\", \"5\"]\ninterval_ms = 200\ntimeout_ms = 200",
        );
        let start = Instant::now();
        let err = probe(&c, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "timeout");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn the_whole_process_group_is_killed() {
        let dir = std::env::temp_dir();
        let pid_file = dir.join(format!("anycastd-health-exec-{}.pid", std::process::id()));
        let _ = std::fs::remove_file(&pid_file);
        // The shell is the group leader: its pid is the group id.
        let c = check(&format!(
            "type = \"exec\"\ncommand = \"echo $$ > {}; sleep 30 & sleep 30\"\ninterval_ms = 500\ntimeout_ms = 500",
            pid_file.display()
        ));
        let start = Instant::now();
        let err = probe(&c, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "timeout");
        assert!(start.elapsed() < Duration::from_secs(3));

        let pgid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::fs::remove_file(&pid_file).unwrap();
        // SIGKILL is delivered at once; allow the scheduler a moment anyway.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let live = live_members_of_group(pgid);
            if live.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still alive in group {pgid}: {live:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn the_group_lives_while_the_probe_runs() {
        // The converse of the test above, so it cannot pass by looking at
        // the wrong group: while the probe is still running, its members
        // are found.
        let pid_file = std::env::temp_dir().join(format!(
            "anycastd-health-exec-live-{}.pid",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&pid_file);
        let c = check(&format!(
            "type = \"exec\"\ncommand = \"echo $$ > {}; sleep 30 & sleep 30\"\ninterval_ms = 3000\ntimeout_ms = 3000",
            pid_file.display()
        ));
        let ctx = ctx();
        let mut running = Box::pin(probe(&c, &ctx));
        let deadline = Instant::now() + Duration::from_secs(2);
        let pgid = loop {
            tokio::select! {
                _ = &mut running => panic!("probe ended early"),
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            if let Some(pgid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                // Wait for the shell and its children to be started.
                if live_members_of_group(pgid).len() >= 2 {
                    break pgid;
                }
            }
            assert!(Instant::now() < deadline, "the script did not start");
        };
        // Stopping the check (dropping the probe) kills the group too.
        drop(running);
        std::fs::remove_file(&pid_file).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !live_members_of_group(pgid).is_empty() {
            assert!(Instant::now() < deadline, "group {pgid} survived the drop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
