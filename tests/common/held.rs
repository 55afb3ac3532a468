//! Running fgbackup in the background while a proxy holds one of its
//! requests at a gate: the fault tests' way to make an attack happen at an
//! exact moment (between hashing and deleting, between PUT and
//! verification...) with no sleep deciding the order.

use std::process::{Child, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::listeners::eventually;
use super::proxy::{FaultProxy, Hold, Options};
use super::{S3Server, Workspace};

/// Starts `fgbackup ARGS` in the background with piped output.
pub fn spawn(ws: &Workspace, args: &[String], env: &[(&str, &str)]) -> Child {
    ws.command(args, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A proxy in front of `server` holding the `skip`+1-th `method` request
/// whose target contains `target`.
pub fn holding(
    server: &S3Server,
    method: &'static str,
    target: &'static str,
    skip: usize,
) -> FaultProxy {
    let opts = Options {
        hold: Some(Hold {
            method,
            target_contains: target,
            skip,
        }),
        ..Options::default()
    };
    FaultProxy::start_with(server.port, opts)
}

/// A proxy in front of `server` whose answer to the `method` request for
/// `target` sends its head and `after` bytes of body, then waits at the
/// gate (a transfer stalled half-way).
pub fn stalling(
    server: &S3Server,
    method: &'static str,
    target: &'static str,
    after: usize,
) -> FaultProxy {
    let opts = Options {
        stall_answer: Some((method, target, after)),
        ..Options::default()
    };
    FaultProxy::start_with(server.port, opts)
}

/// Waits until the held request reached the proxy's gate.
pub fn wait_held(proxy: &FaultProxy, child: &mut Child) {
    eventually("the request to reach the proxy's gate", || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("fgbackup exited before the held request: {status}");
        }
        proxy.held.load(Ordering::SeqCst) >= 1
    });
}

/// `upload` of `ws`'s logs through `proxy` with `extra`, returned once the
/// held request is at the gate.
pub fn start_held(ws: &Workspace, proxy: &FaultProxy, extra: &[&str]) -> Child {
    let mut child = spawn(ws, &ws.s3_upload_args(&proxy.endpoint(), extra), &[]);
    wait_held(proxy, &mut child);
    child
}

pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Waits for `child` to exit, failing the test if it takes longer than `limit`.
pub fn exits_within(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("fgbackup did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
