//! Records what `fgbackup --version` reports: the git commit and the target
//! triple the binary was built for.

use std::process::Command;

fn main() {
    let commit = std::env::var("FGBACKUP_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        });
    println!(
        "cargo:rustc-env=FGBACKUP_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".into())
    );
    println!(
        "cargo:rustc-env=FGBACKUP_TARGET={}",
        std::env::var("TARGET").unwrap_or_else(|_| "unknown".into())
    );
    println!("cargo:rerun-if-env-changed=FGBACKUP_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    // Run again when HEAD moves, watching the files git really keeps it in:
    // a linked worktree (`git worktree add`) has a `.git` file, its HEAD in
    // its own git dir and its branches in the common one. A path that does
    // not exist would make cargo rerun this script, and so rebuild the
    // binary and every test target, on each invocation.
    for (ask, file) in [
        ("--absolute-git-dir", "HEAD"),
        ("--git-common-dir", "refs/heads"),
        ("--git-common-dir", "packed-refs"),
    ] {
        let dir = Command::new("git")
            .args(["rev-parse", ask])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        // A relative answer is relative to the package root, the cwd here.
        let path = dir.map(|d| std::path::Path::new(&d).join(file));
        if let Some(path) = path.filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
