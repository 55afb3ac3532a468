//! One `fgbackup verify`: decides what is expected (inventory rows, or the
//! manifest chain), runs the checks of [`compare`], prints each
//! problem as it is found, records the run in `verifications`, and tells the
//! notifiers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::ops::manifest::ChainHead;
pub mod compare;
mod tally;

use crate::error::{Error, Result};
use crate::inventory::status::{RunStatus, Status};
use crate::inventory::{Archived, Expectations, Inventory, Selection, VerifyTotals};
use crate::notify::RunReport;
use crate::progress::{Job, Output, Progress};
use crate::settings::Target;

use crate::store::Store;
use crate::timefmt;
use compare::{self as verify, Cut, Finding, Plan, Tally, Verdict};

/// `verify`'s own flags.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    pub since: Option<String>,
    pub until: Option<String>,
    /// Percentage read back (100: every object).
    pub sample: f64,
    /// Walk the manifest chains and check what they record instead of the
    /// inventory's rows.
    pub manifests: bool,
    /// The manifests' public key file (`--public-key`): pinned by the
    /// auditor instead of trusting the copy in the bucket.
    pub public_key: Option<std::path::PathBuf>,
    /// `-v`, `-q`, `-P`, `--no-progress`, resolved.
    pub output: Output,
    /// `--json`: stdout holds only the summary object; problem lines go to stderr.
    pub json: bool,
}

/// What verify found wrong: the lines notifications list, and each problem
/// as an object for `--json`.
#[derive(Default)]
struct Problems {
    /// The first [`crate::notify::MAX_PROBLEMS`] lines, for notifications.
    lines: Vec<String>,
    /// The first [`JSON_PROBLEMS`], for `--json`.
    objects: Vec<serde_json::Value>,
    /// Every problem, kept or not.
    count: u64,
}

/// Problems listed in `--json` at most: every one is printed as it is found
/// and recorded in `verification_findings`; held in memory, an archive
/// checked against the wrong bucket (every object missing) would need
/// about a kilobyte for each of its objects.
const JSON_PROBLEMS: usize = 1000;
/// Findings written in one transaction at most...
const FINDINGS_BATCH: usize = 500;
/// ...and the longest one waits to be written.
const FINDINGS_AGE: std::time::Duration = std::time::Duration::from_secs(1);

impl Problems {
    /// Records a problem and prints its line (on stderr with `--json`).
    fn add(&mut self, result: &str, key: &str, detail: &str, json: bool) {
        let line = if key.is_empty() {
            detail.to_string()
        } else {
            format!("{result:<13} {key}: {detail}")
        };
        let shown = crate::logging::one_line(&line);
        crate::progress::suspend(|| match json {
            true => eprintln!("{shown}"),
            false => println!("{shown}"),
        });
        self.count += 1;
        if self.lines.len() < crate::notify::MAX_PROBLEMS {
            self.lines.push(line);
        }
        if self.objects.len() < JSON_PROBLEMS {
            self.objects
                .push(serde_json::json!({"result": result, "key": key, "detail": detail}));
        }
    }
}

/// Opens the inventory a proof command reads; it must already exist, or
/// there is nothing to compare the archive with.
pub fn open_inventory(target: &Target) -> Result<Inventory> {
    if !target.db_path.exists() {
        return Err(Error::usage(format!(
            "no inventory at {} (--db/DB_PATH): point --db at the upload's database, or rebuild one with 'fgbackup reindex'",
            target.db_path.display()
        )));
    }
    Inventory::open(&target.db_path)
}

/// The `--public-key` file's key, if one was given.
fn pinned_key(opts: &VerifyOptions) -> Result<Option<String>> {
    let Some(path) = &opts.public_key else {
        log::warn!(
            "checking manifest signatures with the public key stored in the archive; pin your own copy with --public-key"
        );
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(format!(
            "--public-key {} cannot be read ({e})",
            path.display()
        ))
    })?;
    crate::sign::parse_public_key(&text).map(Some).ok_or_else(|| {
        Error::usage(format!(
            "--public-key {} is not a public key file written by 'fgbackup keygen' (ed25519 BASE64)",
            path.display()
        ))
    })
}

/// What a verify checks the archive against, and what the chain walk
/// (with `--manifests`) found on the way.
struct Checked<'a> {
    /// The objects that must be there, and every key the records name.
    source: Box<dyn Expectations + 'a>,
    /// With `--manifests`: broken signatures, links or missing manifests.
    chain_problems: Vec<String>,
    /// With `--manifests`: each chain's newest manifest.
    heads: Vec<ChainHead>,
    /// With `--manifests`: what could not be checked, said.
    notes: Vec<String>,
}

/// Runs `fgbackup verify`; returns the exit status (0 all ok, 1 problems).
pub fn verify(target: &Target, opts: &VerifyOptions) -> Result<i32> {
    crate::signal::install();
    let inv = open_inventory(target)?;
    inv.close_stale_verifications()?;
    let store = crate::build::open_reader(target)?;
    store.check().map_err(|e| Error::runtime(e.message))?;
    let checked = expectations(store.as_ref(), target, opts, &inv)?;
    let (count, _) = checked.source.totals()?;
    if count == 0 && !opts.manifests {
        nothing_to_verify(target, opts);
        return Ok(1);
    }
    note_unpinned_key(opts);
    let id = inv.start_verification(&store.describe(), &scope(target, opts))?;
    let mut tally = Tally {
        started: Some(Instant::now()),
        ..Tally::default()
    };
    let mut problems = Problems::default();
    for p in &checked.chain_problems {
        problems.add("chain", "", p, opts.json);
    }
    for n in &checked.notes {
        say(opts, &format!("note          {n}"));
    }
    for h in &checked.heads {
        say(opts, &head_line(h));
    }
    let run = Run {
        inv: &inv,
        id,
        target,
        opts,
    };
    let cut = run.checks(&store, checked.source.as_ref(), &mut tally, &mut problems)?;
    run.finish(
        &tally,
        &cut,
        &checked.chain_problems,
        &checked.heads,
        problems,
    )
}

/// A line that is no problem (a note, a chain head): stdout, or stderr with
/// `--json`; not with `-q`.
fn say(opts: &VerifyOptions, line: &str) {
    if opts.output.quiet() {
        return;
    }
    let shown = crate::logging::one_line(line);
    crate::progress::suspend(|| match opts.json {
        true => eprintln!("{shown}"),
        false => println!("{shown}"),
    });
}

/// `chain head    HOST: sequence 12, sha256 ..., KEY, written T`: what an
/// auditor compares with the head the run notifications carried.
fn head_line(h: &ChainHead) -> String {
    format!(
        "chain head    {}: sequence {}, sha256 {}, {}, written {}",
        h.host,
        h.sequence.map_or("- (format 1)".into(), |s| s.to_string()),
        h.sha256,
        h.key,
        h.created_at
    )
}

/// What is expected: with `--manifests`, what the signed chains record
/// (walking them finds the chain problems too); otherwise the inventory's
/// archived rows in the `--prefix/--since/--until` selection.
fn expectations<'a>(
    store: &dyn Store,
    target: &Target,
    opts: &VerifyOptions,
    inv: &'a Inventory,
) -> Result<Checked<'a>> {
    if opts.manifests {
        let pinned = pinned_key(opts)?;
        let walk =
            crate::ops::manifest::walk_chains(store, &target.prefix, pinned.as_deref(), inv)?;
        return Ok(Checked {
            source: Box::new(walk.expected),
            chain_problems: walk.problems,
            heads: walk.heads,
            notes: walk.notes,
        });
    }
    let selection = Selection {
        key_prefix: target.prefix.clone(),
        since: opts.since.clone(),
        until: opts.until.clone(),
    };
    Ok(Checked {
        source: Box::new(Archived {
            inv,
            statuses: Status::archived_names(),
            selection,
        }),
        chain_problems: Vec::new(),
        heads: Vec::new(),
        notes: Vec::new(),
    })
}

/// An empty selection of the inventory proves nothing: said plainly (as
/// the `--json` object with `--json`), and the verify fails.
fn nothing_to_verify(target: &Target, opts: &VerifyOptions) {
    let why = format!(
        "nothing to verify: the inventory {} has no archived files under this --prefix/--since/--until",
        target.db_path.display()
    );
    match opts.json {
        true => println!(
            "{}",
            serde_json::json!({"command": "verify", "ok": false, "exit_code": 1, "error": why})
        ),
        false => println!("verify: {why}"),
    }
}

/// With `--manifests` and no `--public-key`, the chain is checked with a
/// key anyone who can replace objects can replace too: the operator hears
/// of it (unless `-q`).
fn note_unpinned_key(opts: &VerifyOptions) {
    if opts.manifests && opts.public_key.is_none() && !opts.output.quiet() {
        eprintln!(
            "verify: note: signatures checked with the public key stored in the archive; pass --public-key with your own copy, or whoever can replace objects can re-sign the chain"
        );
    }
}

/// One verify's record in the inventory and its settings.
struct Run<'a> {
    inv: &'a Inventory,
    id: i64,
    target: &'a Target,
    opts: &'a VerifyOptions,
}

impl Run<'_> {
    /// Checks, printing and recording each problem the moment it is found.
    /// One loop on purpose: printing, recording and sampling share the
    /// streamed verdicts, which are never collected.
    fn checks(
        &self,
        store: &Arc<dyn Store>,
        source: &dyn Expectations,
        tally: &mut Tally,
        problems: &mut Problems,
    ) -> Result<Option<Cut>> {
        let (opts, inv) = (self.opts, self.inv);
        let plan = Plan {
            prefix: self.target.prefix.clone(),
            sample: opts.sample,
            extras: opts.since.is_none() && opts.until.is_none(),
            workers: self.target.workers,
            retries: self.target.retries,
        };
        let mut db_error = None;
        // The display counts expected objects and their archived bytes,
        // each object's when it is checked (read back, or only listed).
        let (files, bytes) = source.totals()?;
        let mut progress = Progress::start(opts.output, Job::Verify, files, bytes);
        // Findings are written in batches (at most FINDINGS_BATCH, or
        // FINDINGS_AGE old): an empty bucket against a big inventory would
        // otherwise cost an fsync per object.
        let mut pending: Vec<(String, &'static str, String)> = Vec::new();
        let mut since = Instant::now();
        let mut each = |v: Verdict| {
            tally.add(&v);
            let problem = v.finding != Finding::Ok;
            match v.finding {
                Finding::Extra => progress.failure(),
                _ => progress.file_done(v.size, v.metered, problem),
            }
            if problem {
                problems.add(v.finding.as_str(), &v.key, &v.detail, opts.json);
                pending.push((v.key.clone(), v.finding.as_str(), v.detail.clone()));
                if pending.len() >= FINDINGS_BATCH || since.elapsed() >= FINDINGS_AGE {
                    if let Err(e) = inv.add_findings(self.id, &pending) {
                        db_error.get_or_insert(e);
                    }
                    pending.clear();
                    since = Instant::now();
                }
            } else {
                // -v: one line per object, like upload's per-file lines.
                let level = match opts.output.verbose() {
                    true => log::Level::Info,
                    false => log::Level::Debug,
                };
                log::log!(level, "ok {}: {}", v.key, v.detail);
            }
        };
        let cut = verify::check(store, &plan, source, &mut each);
        progress.finish();
        if let Err(e) = inv.add_findings(self.id, &pending) {
            db_error.get_or_insert(e);
        }
        let cut = cut?;
        match db_error {
            Some(e) => Err(e),
            None => Ok(cut),
        }
    }

    /// Prints the summary, records it, notifies; returns the exit status.
    fn finish(
        &self,
        tally: &Tally,
        cut: &Option<Cut>,
        chain_problems: &[String],
        heads: &[ChainHead],
        problems: Problems,
    ) -> Result<i32> {
        let opts = self.opts;
        let clean = tally.problems() == 0 && chain_problems.is_empty() && cut.is_none();
        let exit_code = if clean { 0 } else { 1 };
        let status = match cut {
            Some(Cut::Interrupted) => RunStatus::Interrupted,
            _ if clean => RunStatus::Ok,
            _ => RunStatus::Failed,
        };
        let totals = VerifyTotals {
            status,
            checked: tally.checked(),
            read_back: tally.read_back,
            ok: tally.count(Finding::Ok),
            missing: tally.count(Finding::Missing),
            altered: tally.count(Finding::Altered),
            size_mismatch: tally.count(Finding::SizeMismatch),
            extra: tally.count(Finding::Extra),
            errors: tally.count(Finding::Error) + chain_problems.len() as u64,
            bytes_read: tally.bytes_read,
            duration_ms: tally.elapsed().as_millis() as u64,
            exit_code,
        };
        if opts.json {
            println!("{}", json_summary(&totals, cut, heads, &problems));
        } else if !(clean && opts.output.quiet()) {
            // -q: a clean verify prints nothing (its problems were printed above).
            println!("{}", summary_line(tally, chain_problems, cut));
        }
        self.inv.finish_verification(self.id, &totals)?;
        notify(self.target, tally, clean, cut, problems);
        Ok(exit_code)
    }
}

/// The last line of a verify.
fn summary_line(tally: &Tally, chain_problems: &[String], cut: &Option<Cut>) -> String {
    let mut line = format!("verify: {}", tally.render());
    if !chain_problems.is_empty() {
        line.push_str(&format!(
            "; {} manifest chain problem(s)",
            chain_problems.len()
        ));
    }
    match cut {
        Some(Cut::Interrupted) => line.push_str("; stopped by a signal before the end"),
        Some(Cut::Aborted(why)) => line.push_str(&format!("; stopped early: {why}")),
        None => {}
    }
    line
}

/// `--json`: the verify as one object, with the figures recorded in the
/// `verifications` row and every problem.
fn json_summary(
    t: &VerifyTotals,
    cut: &Option<Cut>,
    heads: &[ChainHead],
    problems: &Problems,
) -> serde_json::Value {
    serde_json::json!({
        "command": "verify",
        "ok": t.exit_code == 0,
        "exit_code": t.exit_code,
        "status": t.status.as_str(),
        "checked": t.checked,
        "read_back": t.read_back,
        "counts": {
            "ok": t.ok, "missing": t.missing, "altered": t.altered,
            "size_mismatch": t.size_mismatch, "extra": t.extra, "error": t.errors,
        },
        "bytes_read": t.bytes_read,
        "duration_secs": t.duration_ms as f64 / 1000.0,
        "stopped_early": match cut {
            Some(Cut::Aborted(why)) => Some(why.as_str()),
            Some(Cut::Interrupted) => Some("interrupted by a stop signal"),
            None => None,
        },
        "problems": problems.objects,
        "problems_omitted": problems.count - problems.objects.len() as u64,
        "chain_heads": heads.iter().map(|h| serde_json::json!({
            "host": h.host, "key": h.key, "sha256": h.sha256,
            "sequence": h.sequence, "created_at": h.created_at,
        })).collect::<Vec<_>>(),
    })
}

/// What the `scope` column says about this verify.
fn scope(target: &Target, opts: &VerifyOptions) -> String {
    let mut s = vec![
        if opts.manifests {
            "manifests"
        } else {
            "inventory"
        }
        .to_string(),
    ];
    if !target.prefix.is_empty() {
        s.push(format!("prefix {}", target.prefix));
    }
    if let Some(d) = &opts.since {
        s.push(format!("since {d}"));
    }
    if let Some(d) = &opts.until {
        s.push(format!("until {d}"));
    }
    if opts.manifests && opts.public_key.is_none() {
        s.push("public key from the archive, not pinned".into());
    }
    if opts.sample < 100.0 {
        s.push(format!("sample {}%", opts.sample));
    }
    s.join(", ")
}

/// Email and webhooks, as after an upload; the textfile and flag file are
/// the upload's and are left alone.
fn notify(target: &Target, tally: &Tally, clean: bool, cut: &Option<Cut>, problems: Problems) {
    let n = &target.notify;
    if n.email.is_none() && n.webhooks.is_empty() {
        return;
    }
    let cfg = crate::notify::NotifyConfig {
        email: n.email.clone(),
        webhooks: n.webhooks.clone(),
        flag_file: None,
        metrics_textfile: None,
    };
    let report = RunReport {
        job: "verify",
        host: crate::host::hostname(),
        ok: clean,
        files: tally.checked(),
        failed: tally.problems(),
        duration_secs: tally.elapsed().as_secs_f64(),
        finished_unix: timefmt::unix_seconds(std::time::SystemTime::now()),
        counts: Finding::ALL
            .iter()
            .filter(|f| tally.count(**f) > 0)
            .map(|f| (f.as_str().to_string(), tally.count(*f)))
            .collect::<BTreeMap<_, _>>(),
        problems_omitted: problems.count - problems.lines.len() as u64,
        problems: problems.lines,
        fatal: match cut {
            Some(Cut::Aborted(why)) => Some(why.clone()),
            Some(Cut::Interrupted) => Some("interrupted by a stop signal".into()),
            None => None,
        },
        ..RunReport::default()
    };
    let failures = crate::notify::notify_all(&cfg, &report);
    if failures > 0 {
        log::error!("{failures} notification(s) failed; the verify results above stand");
    }
}
