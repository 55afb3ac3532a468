//! SIGTERM/SIGINT (and SIGHUP) handling for a clean stop.
//!
//! SIGHUP's default is to end the process on the spot, like `kill -9` for
//! a run in progress (no rows, no summary, a daemon's API gone without a
//! word). A command that runs once treats it as a stop signal (the
//! terminal went away); the long-running ones (`serve`, `daemon`) take it
//! as systemd's `reload` and go on ([`install_service`]).
//!
//! On a stop signal the workers finish (or abort) the file in hand, take no
//! new file, and the run writes its rows and summary. No file is deleted
//! unless its copy was verified, so a stop at any instant is safe; this just
//! makes it tidy (no orphaned multipart uploads, a truthful `runs` row).
//!
//! Blocking work that must not outlive a stop signal (notifications) runs
//! through [`run_bounded`], which also gives it a hard time limit.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);
static HUP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_hup(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    HUP.store(true, Ordering::SeqCst);
}

fn set(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    let handler = handler as libc::sighandler_t;
    // SAFETY: the handlers only perform an atomic store, which is
    // async-signal-safe; `signal` has no other preconditions.
    unsafe {
        libc::signal(sig, handler);
    }
}

/// Installs the handler for SIGTERM, SIGINT and SIGHUP: each asks for a
/// clean stop (a command that runs once).
pub fn install() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        set(sig, on_signal);
    }
}

/// Like [`install`], but SIGHUP asks for a reload (see [`take_reload`]):
/// for `serve` and `daemon`, which systemd reloads with `kill -HUP`.
pub fn install_service() {
    set(libc::SIGTERM, on_signal);
    set(libc::SIGINT, on_signal);
    set(libc::SIGHUP, on_hup);
}

/// True once per SIGHUP received since the last call (service mode).
pub fn take_reload() -> bool {
    HUP.swap(false, Ordering::SeqCst)
}

/// A command whose output's reader went away (`fgbackup doctor | head -1`)
/// ends at its next write, silently, like any Unix tool: Rust ignores
/// SIGPIPE, so `println!` panicked ("failed printing to stdout", exit 134).
/// Sockets are unaffected (std sends with MSG_NOSIGNAL). Only for commands
/// that change nothing (`cmd::dispatch` chooses).
pub fn end_quietly_on_closed_stdout() {
    // SAFETY: restoring the default action of a signal; no handler runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// True once a stop signal arrived.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Sleeps for `d`, or less when a stop signal arrives meanwhile.
pub fn sleep_unless_stopped(d: Duration) {
    let until = Instant::now() + d;
    while !stop_requested() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// How long a wait goes on once a stop signal has been seen: enough for a
/// notification about an interrupted run to still go out, short enough that
/// systemd's stop (90 s by default) or a second Ctrl-C is never needed.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// How often a bounded wait looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// When a bounded wait first saw the stop flag. One instant for the whole
/// process, so every later wait shares the same grace instead of each
/// getting its own: the process ends at most [`STOP_GRACE`] after that.
static STOP_SEEN: OnceLock<Instant> = OnceLock::new();

/// Why [`run_bounded`] stopped waiting for its work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abandoned {
    /// The work did not finish within its time limit.
    TimedOut(Duration),
    /// A stop signal arrived and the grace after it ran out.
    Stopped,
    /// The helper thread could not start, or ended without a result (panic).
    Failed(String),
}

impl fmt::Display for Abandoned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Abandoned::TimedOut(d) => write!(f, "abandoned: timed out after {}", seconds(*d)),
            Abandoned::Stopped => write!(
                f,
                "abandoned: stop signal (SIGTERM/SIGINT/SIGHUP) received, {} s grace over",
                STOP_GRACE.as_secs()
            ),
            Abandoned::Failed(why) => write!(f, "abandoned: {why}"),
        }
    }
}

/// `30 s`, `0.3 s`: whole seconds without decimals, as the constants are.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Runs `f` on a helper thread and waits at most `timeout` for its result,
/// giving up early (after [`STOP_GRACE`]) on SIGTERM/SIGINT.
///
/// Why: some blocking calls cannot be interrupted from outside (a DNS lookup
/// in the system resolver, a library without a timeout on one read), and the
/// signal handler only sets a flag. Waiting on a channel in short slices
/// keeps the caller in charge of time. An abandoned thread keeps running
/// until its own call returns, and dies with the process; so `f` should
/// still carry its own timeouts (a daemon would otherwise collect threads).
/// `what` names the thread (`ps -L`, panic messages).
pub fn run_bounded<T, F>(what: &str, timeout: Duration, f: F) -> Result<T, Abandoned>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    bounded(what, timeout, &stop_requested, &STOP_SEEN, f)
}

/// [`run_bounded`] with the stop flag and its first-seen instant passed in,
/// so unit tests need not raise the process-wide flag.
fn bounded<T, F>(
    what: &str,
    timeout: Duration,
    stop: &dyn Fn() -> bool,
    seen: &OnceLock<Instant>,
    f: F,
) -> Result<T, Abandoned>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    // Capacity 1: the helper never blocks on sending, even when nobody waits.
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(what.to_string())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| Abandoned::Failed(format!("cannot start a helper thread: {e}")))?;
    // A timeout too large for an Instant means no deadline at all.
    let deadline = Instant::now().checked_add(timeout);
    loop {
        let grace_end = stop().then(|| *seen.get_or_init(Instant::now) + STOP_GRACE);
        let limit = match (grace_end, deadline) {
            (Some(g), Some(d)) => Some(g.min(d)),
            (g, d) => g.or(d),
        };
        let now = Instant::now();
        if let Some(limit) = limit.filter(|l| now >= *l) {
            // The work may have finished just now: its result wins.
            return rx.try_recv().map_err(|_| {
                if deadline == Some(limit) {
                    Abandoned::TimedOut(timeout)
                } else {
                    Abandoned::Stopped
                }
            });
        }
        let slice = limit.map_or(POLL, |l| (l - now).min(POLL));
        match rx.recv_timeout(slice) {
            Ok(value) => return Ok(value),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Abandoned::Failed(format!(
                    "the {what} thread ended without a result (it panicked)"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn never() -> bool {
        false
    }

    #[test]
    fn quick_work_returns_its_value() {
        let seen = OnceLock::new();
        let r = bounded("t-quick", Duration::from_secs(5), &never, &seen, || 42);
        assert_eq!(r, Ok(42));
        assert!(seen.get().is_none(), "no stop, no grace started");
        let r = bounded("t-max", Duration::MAX, &never, &seen, || 7);
        assert_eq!(
            r,
            Ok(7),
            "a timeout past any Instant is no deadline, not a panic"
        );
    }

    #[test]
    fn hung_work_times_out_on_time() {
        let seen = OnceLock::new();
        let started = Instant::now();
        let r = bounded("t-hung", Duration::from_millis(300), &never, &seen, || {
            std::thread::sleep(Duration::from_secs(30))
        });
        assert_eq!(r, Err(Abandoned::TimedOut(Duration::from_millis(300))));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }

    // docs/SAFETY.md S16
    #[test]
    fn a_stop_gives_hung_work_only_the_grace() {
        let flag = AtomicBool::new(false);
        let stop = || flag.load(Ordering::SeqCst);
        let seen = OnceLock::new();
        let started = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(200));
                flag.store(true, Ordering::SeqCst);
            });
            let r = bounded("t-stop", Duration::from_secs(60), &stop, &seen, || {
                std::thread::sleep(Duration::from_secs(60))
            });
            assert_eq!(r, Err(Abandoned::Stopped));
        });
        let took = started.elapsed();
        assert!(
            took >= STOP_GRACE && took < STOP_GRACE + Duration::from_secs(2),
            "{took:?}"
        );
        // A later wait shares the same grace: it gives up at once.
        let again = Instant::now();
        let r = bounded("t-stop2", Duration::from_secs(60), &stop, &seen, || {
            std::thread::sleep(Duration::from_secs(60))
        });
        assert_eq!(r, Err(Abandoned::Stopped));
        assert!(again.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn work_started_after_a_stop_still_gets_to_finish_within_the_grace() {
        let stop = || true;
        let seen = OnceLock::new();
        let r = bounded("t-late", Duration::from_secs(60), &stop, &seen, || {
            std::thread::sleep(Duration::from_millis(300));
            "sent"
        });
        assert_eq!(r, Ok("sent"));
    }

    #[test]
    fn a_panicking_helper_is_reported_not_waited_for() {
        let seen = OnceLock::new();
        let r: Result<(), _> = bounded("t-panic", Duration::from_secs(60), &never, &seen, || {
            panic!("boom")
        });
        assert!(
            matches!(r, Err(Abandoned::Failed(ref m)) if m.contains("panicked")),
            "{r:?}"
        );
    }
}
