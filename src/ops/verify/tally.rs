//! Which objects a verify reads back (exact streamed sampling) and the
//! counts of what it found.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::compare::*;

/// Chooses `percent`% of `n` objects at random as they stream past, like
/// restic's `--read-data-subset`: exactly that many (rounded up, at least
/// one when `n > 0` and `percent > 0`), without knowing them in advance
/// (Knuth's selection sampling: the next one is chosen with probability
/// still-wanted / still-to-come).
pub(super) struct Sampler {
    want: u64,
    left: u64,
    rng: u64,
}

impl Sampler {
    pub(super) fn new(n: u64, percent: f64) -> Sampler {
        // In millionths of a percent, in integers: 16.1% of 1000 is 161,
        // not the 162 that 1000.0 * 16.1 / 100.0 rounds up to.
        let micro = (percent.clamp(0.0, 100.0) * 1e6).round() as u128;
        let want = (u128::from(n) * micro).div_ceil(100_000_000);
        let want = u64::try_from(want).unwrap_or(n).min(n);
        Sampler {
            want,
            left: n,
            rng: seed(),
        }
    }

    /// Whether the next object is read back. Past the `n` announced
    /// (rows added since), every further one is.
    pub(super) fn take(&mut self) -> bool {
        if self.left == 0 {
            return true;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let chosen = self.rng % self.left < self.want;
        self.left -= 1;
        self.want -= u64::from(chosen);
        chosen
    }
}

pub(super) fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (nanos ^ (u64::from(std::process::id()) << 32)) | 1
}

/// Totals of a verify, as they are printed, recorded and notified.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub counts: BTreeMap<Finding, u64>,
    pub read_back: u64,
    pub bytes_read: u64,
    pub started: Option<Instant>,
}

impl Tally {
    pub fn add(&mut self, v: &Verdict) {
        *self.counts.entry(v.finding).or_default() += 1;
        self.read_back += u64::from(v.read_back);
        self.bytes_read += v.bytes_read;
    }

    pub fn count(&self, f: Finding) -> u64 {
        self.counts.get(&f).copied().unwrap_or(0)
    }

    /// Objects with a verdict other than `extra` (those were not expected).
    pub fn checked(&self) -> u64 {
        Finding::ALL
            .iter()
            .filter(|f| **f != Finding::Extra)
            .map(|f| self.count(*f))
            .sum()
    }

    pub fn problems(&self) -> u64 {
        Finding::ALL
            .iter()
            .filter(|f| **f != Finding::Ok)
            .map(|f| self.count(*f))
            .sum()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.map(|s| s.elapsed()).unwrap_or_default()
    }

    /// `204 objects checked (204 read back, 276.1 MiB in 1.9 s): 204 ok, 0 missing, ...`
    pub fn render(&self) -> String {
        let counts = Finding::ALL
            .iter()
            .map(|f| format!("{} {}", self.count(*f), f.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{} objects checked ({} read back, {:.1} MiB in {:.1} s): {counts}",
            self.checked(),
            self.read_back,
            self.bytes_read as f64 / (1024.0 * 1024.0),
            self.elapsed().as_secs_f64()
        )
    }
}
