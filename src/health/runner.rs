//! One tokio task per check: a random start-up delay, then a probe every
//! interval, each result fed to the check's hysteresis and reported.

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use super::{probe, random_u64, Check, Hysteresis, ProbeContext};

/// The outcome of one probe, sent after every probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<I> {
    pub id: I,
    pub ok: bool,
    /// How long the probe took (up to the timeout when it failed).
    pub latency: Duration,
    /// `ProbeError::reason()`: a fixed label for metrics.
    pub reason: Option<&'static str>,
    /// `ProbeError`'s message, for logs.
    pub error: Option<String>,
    /// `Some(new_state)` when this probe changed the check's state.
    pub transition: Option<bool>,
    /// The check's state after this probe.
    pub up: bool,
}

/// Start probing `check`. Aborting the returned handle stops it at once
/// (an exec probe's process group is killed); the task also ends when the
/// receiver of `tx` is gone.
pub fn spawn<I>(
    id: I,
    check: Check,
    ctx: Arc<ProbeContext>,
    tx: UnboundedSender<Report<I>>,
) -> JoinHandle<()>
where
    I: Copy + Hash + Send + 'static,
{
    tokio::spawn(async move {
        // Spread the first probes of checks configured together.
        let jitter = random_below(check.jitter, id);
        let mut ticker = interval_at(Instant::now() + jitter, check.interval);
        // A late probe (a stalled runtime) shifts the schedule instead of
        // firing a burst of catch-up probes.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut state = Hysteresis::new(check.rise, check.fall, check.initial_up);
        loop {
            ticker.tick().await;
            let started = Instant::now();
            let result = probe(&check, &ctx).await;
            let (ok, latency, reason, error) = match result {
                Ok(latency) => (true, latency, None, None),
                Err(e) => (
                    false,
                    started.elapsed(),
                    Some(e.reason()),
                    Some(e.to_string()),
                ),
            };
            let transition = state.record(ok);
            let report = Report {
                id,
                ok,
                latency,
                reason,
                error,
                transition,
                up: state.is_up(),
            };
            if tx.send(report).is_err() {
                return;
            }
        }
    })
}

/// A random duration in `0..=max`.
fn random_below(max: Duration, salt: impl Hash) -> Duration {
    let max_ns = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if max_ns == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(random_u64(salt) % max_ns.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::super::testutil::{check, closed_tcp_port, ctx};
    use super::*;

    async fn next<I>(rx: &mut mpsc::UnboundedReceiver<Report<I>>) -> Report<I> {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("no report within 5 s")
            .expect("runner stopped")
    }

    #[tokio::test]
    async fn reports_every_probe_and_rises_after_rise_successes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let c = check(&format!(
            "type = \"tcp\"\nport = {port}\ninterval_ms = 50\ntimeout_ms = 50\nrise = 3"
        ));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handle = spawn(7u32, c, Arc::new(ctx()), tx);

        for _ in 0..2 {
            let r = next(&mut rx).await;
            assert_eq!(
                (r.id, r.ok, r.transition, r.up),
                (7, true, None, false),
                "{r:?}"
            );
            assert_eq!((r.reason, r.error.as_deref()), (None, None));
        }
        let r = next(&mut rx).await;
        assert_eq!(
            (r.ok, r.transition, r.up),
            (true, Some(true), true),
            "{r:?}"
        );
        let r = next(&mut rx).await;
        assert_eq!((r.ok, r.transition, r.up), (true, None, true), "{r:?}");
        handle.abort();
        drop(listener);
    }

    #[tokio::test]
    async fn falls_after_fall_failures_with_reasons() {
        let port = closed_tcp_port().await;
        let c = check(&format!(
            "type = \"tcp\"\nport = {port}\ninterval_ms = 50\ntimeout_ms = 50\nfall = 2\ninitial = \"up\""
        ));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handle = spawn(1u8, c, Arc::new(ctx()), tx);
        let r = next(&mut rx).await;
        assert_eq!((r.ok, r.transition, r.up), (false, None, true), "{r:?}");
        assert_eq!(r.reason, Some("refused"));
        assert_eq!(r.error.as_deref(), Some("connection refused"));
        let r = next(&mut rx).await;
        assert_eq!(
            (r.ok, r.transition, r.up),
            (false, Some(false), false),
            "{r:?}"
        );
        handle.abort();
    }

    #[tokio::test]
    async fn abort_stops_the_runner() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let c = check(&format!(
            "type = \"tcp\"\nport = {port}\ninterval_ms = 20\ntimeout_ms = 20"
        ));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handle = spawn(0u32, c, Arc::new(ctx()), tx);
        next(&mut rx).await;
        handle.abort();
        assert!(handle.await.unwrap_err().is_cancelled());
        // The task and its sender are gone: the channel drains and closes.
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            while rx.recv().await.is_some() {}
        })
        .await;
        assert!(closed.is_ok(), "channel still open after abort");
    }

    #[tokio::test]
    async fn first_probes_are_spread_over_the_jitter() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Sixteen checks started together, each first probe after its own
        // random delay in 0..=400 ms (the next one a minute later). Without
        // the jitter they would all report within a few ms; with it the
        // first and last are 100 ms or more apart (16 uniform delays
        // closer than that: probability about 1e-8), and none waits much
        // past 400 ms.
        let c = check(&format!(
            "type = \"tcp\"\nport = {port}\njitter_ms = 400\ninterval_ms = 60000"
        ));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let start = Instant::now();
        let handles: Vec<_> = (0u32..16)
            .map(|id| spawn(id, c.clone(), Arc::new(ctx()), tx.clone()))
            .collect();
        let mut firsts = Vec::new();
        while firsts.len() < handles.len() {
            next(&mut rx).await;
            firsts.push(start.elapsed());
        }
        for h in &handles {
            h.abort();
        }
        let (first, last) = (firsts[0], firsts[firsts.len() - 1]);
        assert!(
            last - first >= Duration::from_millis(100),
            "16 first probes within {:?}: the jitter was not applied ({firsts:?})",
            last - first
        );
        assert!(
            last < Duration::from_millis(400) + Duration::from_secs(2),
            "{firsts:?}"
        );
    }

    #[test]
    fn jitter_stays_in_range() {
        assert_eq!(random_below(Duration::ZERO, 1), Duration::ZERO);
        let max = Duration::from_millis(100);
        let samples: Vec<Duration> = (0..200).map(|i| random_below(max, i)).collect();
        assert!(samples.iter().all(|d| *d <= max));
        // Spread out, not one value (200 samples all in one half is ~1e-60).
        assert!(samples.iter().any(|d| *d < max / 2));
        assert!(samples.iter().any(|d| *d > max / 2));
    }
}
