//! The live progress display of `upload` and `verify` (rclone `-P` style),
//! and [`Output`]: how much a run says, decided once from its flags.
//!
//! The display is for a person at a terminal; the systemd journal and cron
//! mail must keep getting one log line per file and nothing else. So it is
//! drawn only when stderr is a terminal or `-P` asks for it, and while it is
//! drawn every log line and every line a run prints goes through
//! [`suspend`], which lifts the display, writes the line above it and draws
//! it again: nothing ever writes into the middle of a frame.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use log::LevelFilter;

/// How much the log says (`-q`, default, `-v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// Errors only; no display, no summary after a clean run.
    Quiet,
    #[default]
    Normal,
    /// One line per file even under the display.
    Verbose,
}

/// Verbosity plus whether the display is drawn, resolved from the flags.
/// The default is today's plain output: per-file lines, no display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Output {
    pub verbosity: Verbosity,
    pub progress: bool,
}

impl Output {
    /// `progress` is `Some` when `-P` or `--no-progress` was given; without
    /// them the display is on exactly when stderr is a terminal and the run
    /// is not `-q`.
    pub fn resolve(
        verbose: bool,
        quiet: bool,
        progress: Option<bool>,
        stderr_is_tty: bool,
    ) -> Output {
        let verbosity = if quiet {
            Verbosity::Quiet
        } else if verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        Output {
            verbosity,
            progress: progress.unwrap_or(stderr_is_tty && !quiet),
        }
    }

    /// The most detailed log level this output lets through (`RUST_LOG`,
    /// when set, overrides it: see [`crate::logging::apply`]). Under the
    /// display the per-file `info` lines go, unless `-v` keeps them.
    pub fn log_ceiling(self) -> LevelFilter {
        match self.verbosity {
            Verbosity::Quiet => LevelFilter::Error,
            Verbosity::Normal if self.progress => LevelFilter::Warn,
            Verbosity::Normal | Verbosity::Verbose => LevelFilter::Trace,
        }
    }

    pub fn quiet(self) -> bool {
        self.verbosity == Verbosity::Quiet
    }

    pub fn verbose(self) -> bool {
        self.verbosity == Verbosity::Verbose
    }
}

/// stderr is a terminal that can redraw lines: not a pipe or file, and
/// `TERM` is set and not `dumb` (an editor's shell buffer, a serial console).
pub fn stderr_can_draw() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && !console::is_dumb()
}

/// Which run is shown: the words of the two lines.
#[derive(Debug, Clone, Copy)]
pub enum Job {
    Upload,
    Verify,
    Restore,
    Grep,
}

impl Job {
    fn template(self) -> &'static str {
        match self {
            Job::Upload => {
                "Transferred: {binary_bytes} / {binary_total_bytes}, {percent}%, {binary_bytes_per_sec}, ETA {eta}\n\
                 Files:       {msg}, elapsed {elapsed}"
            }
            Job::Verify => {
                "Checked:     {binary_bytes} / {binary_total_bytes}, {percent}%, {binary_bytes_per_sec}, ETA {eta}\n\
                 Objects:     {msg}, elapsed {elapsed}"
            }
            Job::Restore => {
                "Restored:    {binary_bytes} / {binary_total_bytes}, {percent}%, {binary_bytes_per_sec}, ETA {eta}\n\
                 Files:       {msg}, elapsed {elapsed}"
            }
            Job::Grep => {
                "Searched:    {binary_bytes} / {binary_total_bytes}, {percent}%, {binary_bytes_per_sec}, ETA {eta}\n\
                 Archives:    {msg}, elapsed {elapsed}"
            }
        }
    }

    fn failed_word(self) -> &'static str {
        match self {
            Job::Upload | Job::Restore => "failures",
            Job::Verify | Job::Grep => "problems",
        }
    }
}

/// How often the display is redrawn (also while one large file is sent).
const REFRESH: Duration = Duration::from_millis(500);

/// The display currently drawn, for [`suspend`]. One at a time per process.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn active() -> std::sync::MutexGuard<'static, Option<ProgressBar>> {
    ACTIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f` (which writes a line to stderr or stdout) with the display
/// lifted, then draws it again; just runs `f` when nothing is drawn.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    let bar = active().clone();
    match bar {
        Some(bar) => bar.suspend(f),
        None => f(),
    }
}

/// One run's display: files done of the total, bytes done of the total,
/// rate, ETA and failures so far. A hidden one (display off) does nothing.
#[derive(Debug, Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
    job: Option<Job>,
    files: u64,
    total_files: u64,
    failed: u64,
    /// Shared with the refresher thread while the display is drawn.
    live: Arc<Live>,
    refresher: Option<JoinHandle<()>>,
}

/// The byte count's inputs: the files done (each counted by its size) and
/// the bytes still on their way ([`crate::in_flight`]), which move without any
/// file finishing; a thread folds them into the display between files.
#[derive(Debug, Default)]
struct Live {
    done_bytes: AtomicU64,
    total_bytes: u64,
    /// [`crate::in_flight::in_flight`] when the run started (a daemon's earlier
    /// cycle may have left bytes there).
    base: u64,
    stop: AtomicBool,
}

impl Live {
    /// Files done plus bytes on their way, never past the total (a retried
    /// body counts twice) and never back.
    fn show(&self, bar: &ProgressBar) {
        let moving = crate::in_flight::in_flight().saturating_sub(self.base);
        let shown = self
            .done_bytes
            .load(Ordering::Relaxed)
            .saturating_add(moving)
            .min(self.total_bytes);
        bar.set_position(shown.max(bar.position()));
    }
}

/// How often the byte count takes in the bytes on their way.
const LIVE_TICK: Duration = Duration::from_millis(200);

/// Refreshes the byte count every [`LIVE_TICK`] until told to stop.
fn spawn_refresher(bar: ProgressBar, live: Arc<Live>) -> Option<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("progress".into())
        .spawn(move || {
            while !live.stop.load(Ordering::Relaxed) {
                live.show(&bar);
                std::thread::park_timeout(LIVE_TICK);
            }
        })
        .ok()
}

impl Progress {
    /// Starts the display when `out` has it on; `total_bytes` is the sum of
    /// the sizes of the `total_files` files the run will go through.
    pub fn start(out: Output, job: Job, total_files: u64, total_bytes: u64) -> Progress {
        let mut p = Progress {
            bar: None,
            job: Some(job),
            files: 0,
            total_files,
            failed: 0,
            live: Arc::new(Live {
                total_bytes,
                base: crate::in_flight::in_flight(),
                ..Live::default()
            }),
            refresher: None,
        };
        if out.progress {
            let bar = ProgressBar::with_draw_target(Some(total_bytes), draw_target());
            if let Ok(style) = ProgressStyle::with_template(job.template()) {
                bar.set_style(style);
            }
            bar.set_message(p.message());
            bar.enable_steady_tick(REFRESH);
            *active() = Some(bar.clone());
            // No thread, no live bytes: the count still moves per file.
            p.refresher = spawn_refresher(bar.clone(), Arc::clone(&p.live));
            p.bar = Some(bar);
        }
        p
    }

    /// One file (or object) is through, `bytes` of it accounted for;
    /// `metered` is what it had sent on the way ([`crate::in_flight`]).
    pub fn file_done(&mut self, bytes: u64, metered: u64, failed: bool) {
        self.files += 1;
        self.failed += u64::from(failed);
        self.live.done_bytes.fetch_add(bytes, Ordering::Relaxed);
        crate::in_flight::settle(metered);
        if let Some(bar) = &self.bar {
            bar.set_message(self.message());
            self.live.show(bar);
        }
    }

    /// A failure that is not one of the files counted (a delete refused
    /// after the file's row, an object nobody archived).
    pub fn failure(&mut self) {
        self.failed += 1;
        if let Some(bar) = &self.bar {
            bar.set_message(self.message());
        }
    }

    /// Draws the final frame and leaves it on the screen.
    pub fn finish(self) {
        drop(self);
    }

    /// `57 / 200, failures: 0`
    fn message(&self) -> String {
        let word = self.job.map_or("failures", Job::failed_word);
        format!(
            "{} / {}, {word}: {}",
            self.files, self.total_files, self.failed
        )
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.live.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.refresher.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        if let Some(bar) = self.bar.take() {
            *active() = None;
            bar.finish();
        }
    }
}

/// stderr; when it cannot draw (`-P` forced the display) a target that
/// draws anyway, since indicatif hides itself on anything but a terminal.
fn draw_target() -> ProgressDrawTarget {
    let hz = 4;
    if stderr_can_draw() {
        ProgressDrawTarget::stderr_with_hz(hz)
    } else {
        ProgressDrawTarget::term_like_with_hz(Box::new(Forced(console::Term::stderr())), hz)
    }
}

/// console's stderr terminal with its terminal check left out.
#[derive(Debug)]
struct Forced(console::Term);

impl TermLike for Forced {
    fn width(&self) -> u16 {
        self.0.size().1
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_flags_and_terminal() {
        let plain = Output::default();
        assert_eq!(Output::resolve(false, false, None, false), plain);
        assert_eq!(plain.log_ceiling(), LevelFilter::Trace, "today's output");
        let tty = Output::resolve(false, false, None, true);
        assert!(tty.progress);
        assert_eq!(tty.log_ceiling(), LevelFilter::Warn);
        let verbose = Output::resolve(true, false, None, true);
        assert!(verbose.progress && verbose.verbose());
        assert_eq!(verbose.log_ceiling(), LevelFilter::Trace);
        let quiet = Output::resolve(false, true, None, true);
        assert!(!quiet.progress && quiet.quiet());
        assert_eq!(quiet.log_ceiling(), LevelFilter::Error);
        assert!(Output::resolve(false, false, Some(true), false).progress);
        assert!(!Output::resolve(false, false, Some(false), true).progress);
        assert!(Output::resolve(false, true, Some(true), false).progress);
    }

    #[test]
    fn hidden_display_counts_and_draws_nothing() {
        let mut p = Progress::start(Output::default(), Job::Upload, 3, 30);
        p.file_done(10, 0, false);
        p.file_done(10, 0, true);
        p.failure();
        assert!(p.bar.is_none());
        assert_eq!(p.message(), "2 / 3, failures: 2");
        p.finish();
        assert_eq!(suspend(|| 7), 7);
    }
}
