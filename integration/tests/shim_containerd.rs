//! `containerd-shim-rs-v2` as the runtime of a private containerd, driven
//! with `ctr run --runtime <absolute path of the shim>` (containerd ≥ 1.6
//! accepts a path as the runtime name): the task API end to end — create,
//! start, wait, exit codes, kill, ps, delete, shutdown, events (ctr's exit
//! status comes from Wait; `task ls` from State).
//!
//! Every test uses its own containerd namespace (`rstest-shimc-<pid>-<n>`)
//! and puts its containers' cgroups under /rstest/ (`ctr run --cgroup`).
//! After each task: no server of that namespace left, its socket file,
//! cgroup and engine state gone, nothing mounted under its bundle
//! (`Ctrd::assert_gone`, shared with shim_robust.rs). On drop, leftovers of
//! a failed assertion are removed through containerd, then any shim still
//! running and containerd are stopped by pid.

use std::path::Path;
use std::time::Duration;

use integration::*;

#[test]
fn rs_shim_runs_echo_and_cleans_up() {
    let ctrd = Ctrd::start("rstest-shimc");
    let b = Bundle::new();
    let r = ctrd.run(&["--rm"], &b.rootfs(), "echo", &["/bin/echo", "hi"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "hi\n"),
        "{r:?}\n{}",
        ctrd.log()
    );
    ctrd.assert_gone("echo");
    assert!(ctrd.ctr(&["container", "ls", "-q"]).ok().trim().is_empty());
}

/// Back-to-back `run --rm` with one id: each `start` lands on the socket
/// the previous shim is just leaving. The dying shim must unlink it at
/// Shutdown so the next `start` binds afresh (it once took the Create and
/// exited, orphaning the container and hanging ctr).
#[test]
fn rs_shim_back_to_back_runs_with_one_id() {
    let ctrd = Ctrd::start("rstest-shimc");
    let b = Bundle::new();
    for i in 0..15 {
        let r = ctrd.run(&["--rm"], &b.rootfs(), "again", &["/bin/true"]);
        assert_eq!(r.code, 0, "run {i}: {r:?}\n{}", ctrd.log());
    }
    ctrd.assert_gone("again");
}

#[test]
fn rs_shim_reports_exit_codes() {
    let ctrd = Ctrd::start("rstest-shimc");
    let b = Bundle::new();
    let r = ctrd.run(&["--rm"], &b.rootfs(), "seven", &["sh", "-c", "exit 7"]);
    assert_eq!(r.code, 7, "{r:?}\n{}", ctrd.log());
    ctrd.assert_gone("seven");
    let r = ctrd.run(
        &["--rm"],
        &b.rootfs(),
        "both",
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (3, "out\n", "err\n"),
        "{r:?}"
    );
    ctrd.assert_gone("both");
}

#[test]
fn rs_shim_detached_ps_kill_and_remove() {
    let ctrd = Ctrd::start("rstest-shimc");
    let b = Bundle::new();
    let r = ctrd.run(&["-d"], &b.rootfs(), "bg", &["sleep", "60"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", ctrd.log());
    let ls = ctrd.ctr(&["task", "ls"]);
    let line = ls
        .ok()
        .lines()
        .find(|l| l.starts_with("bg "))
        .unwrap_or_default()
        .to_string();
    assert!(line.contains("RUNNING"), "{ls:?}");
    let pid = line.split_whitespace().nth(1).unwrap().to_string();
    assert!(alive(pid.parse().unwrap()), "task pid {pid} is alive");
    assert!(
        ctrd.socket("bg").exists(),
        "server socket exists while running"
    );
    let shims = ctrd.shims();
    assert_eq!(shims.len(), 1, "one server");
    assert_eq!(threads(shims[0]), 1, "the server stays single-threaded");

    let ps = ctrd.ctr(&["task", "ps", "bg"]);
    assert!(
        ps.ok()
            .lines()
            .any(|l| l.split_whitespace().next() == Some(pid.as_str())),
        "{ps:?}"
    );

    // A running task cannot be removed.
    assert_ne!(ctrd.ctr(&["task", "rm", "bg"]).code, 0);

    ctrd.ctr(&["task", "kill", "-s", "KILL", "bg"]).ok();
    let stopped = wait_until(Duration::from_secs(10), || {
        ctrd.ctr(&["task", "ls"])
            .stdout
            .lines()
            .any(|l| l.starts_with("bg ") && l.contains("STOPPED"))
    });
    assert!(stopped, "{:?}", ctrd.ctr(&["task", "ls"]));
    // Signalling a finished process: NotFound from the server.
    let again = ctrd.ctr(&["task", "kill", "-s", "KILL", "bg"]);
    assert!(again.stderr.contains("not found"), "{again:?}");
    ctrd.ctr(&["task", "rm", "bg"]).ok();
    ctrd.ctr(&["container", "rm", "bg"]).ok();
    ctrd.assert_gone("bg");
    assert!(!alive(pid.parse().unwrap()) || !Path::new(&format!("/proc/{pid}/cgroup")).exists());
}

#[test]
fn rs_shim_execs_in_a_running_task() {
    let ctrd = Ctrd::start("rstest-shimc");
    let b = Bundle::new();
    let r = ctrd.run(&["-d"], &b.rootfs(), "ex", &["sleep", "60"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", ctrd.log());
    let r = ctrd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "ex",
        "sh",
        "-c",
        "echo in-exec; exit 4",
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (4, "in-exec\n"),
        "{r:?}\n{}",
        ctrd.log()
    );
    for pid in ctrd.shims() {
        assert_eq!(threads(pid), 1, "the server stays single-threaded");
    }
    ctrd.ctr(&["task", "kill", "-s", "KILL", "ex"]).ok();
    assert!(wait_until(Duration::from_secs(10), || ctrd
        .ctr(&["task", "ls"])
        .stdout
        .contains("STOPPED")));
    ctrd.ctr(&["task", "rm", "ex"]).ok();
    ctrd.ctr(&["container", "rm", "ex"]).ok();
    ctrd.assert_gone("ex");
}
