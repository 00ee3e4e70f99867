//! Robustness of `containerd-shim-rs-v2` under a real containerd 1.6:
//! containerd restarting under running and exiting tasks, a shim killed
//! with SIGKILL, hundreds of sequential and parallel runs, a long-lived
//! shim's fds, and grouping by annotation.
//!
//! Each test has its own private containerd and namespace
//! (`rstest-robust-<pid>-<n>`), and every container a cgroup under
//! /rstest/. "Nothing left" means: no shim of the namespace, no socket file,
//! no cgroup, no engine state under /run/containerd/rs/<ns>, no mount under
//! containerd's bundle dir, no container process.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use integration::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn start() -> Ctrd {
    Ctrd::start("rstest-robust")
}

/// Whether `pid` is gone or a zombie (its parent may be slow to reap).
fn dead(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(") ").is_none_or(|(_, r)| r.starts_with('Z')))
        .unwrap_or(true)
}

/// The parent pid of `pid` (0 when gone).
fn ppid(pid: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| status_field(&s, "PPid").parse().ok())
        .unwrap_or(0)
}

/// Asserts that the namespace has no task, container, engine state or
/// containerd bundle left, and no shim.
fn assert_namespace_empty(ctrd: &Ctrd) {
    ctrd.assert_no_shims();
    let tasks = ctrd.ctr(&["task", "ls", "-q"]);
    assert_eq!(tasks.ok().trim(), "", "tasks left");
    let containers = ctrd.ctr(&["container", "ls", "-q"]);
    assert_eq!(containers.ok().trim(), "", "containers left");
    for dir in [
        Path::new(ENGINE_ROOT).join(&ctrd.ns),
        ctrd.bundle("x").parent().unwrap().to_path_buf(),
    ] {
        let left: Vec<_> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{} holds {left:?}", dir.display());
    }
}

/// containerd stops (SIGTERM) under 20 running tasks and one that exits
/// while it is down, then starts again on the same state: it must find
/// every shim again (the shims' `address` files), see the 20 still
/// RUNNING with their pids and killable, and the short one STOPPED with
/// its exit status 5, which the shim kept while nobody was listening.
#[test]
fn containerd_restart_keeps_tasks_and_exit_status() {
    let mut ctrd = start();
    let b = Bundle::new();
    let ids: Vec<String> = (0..20).map(|i| format!("sleep{i}")).collect();
    for id in &ids {
        let r = ctrd.run(&["-d"], &b.rootfs(), id, &["sleep", "600"]);
        assert_eq!(r.code, 0, "run {id}: {r:?}\n{}", ctrd.log());
    }
    let r = ctrd.run(
        &["-d"],
        &b.rootfs(),
        "short",
        &["sh", "-c", "sleep 3; exit 5"],
    );
    assert_eq!(r.code, 0, "run short: {r:?}\n{}", ctrd.log());
    let before: BTreeMap<String, i32> = ctrd.tasks().into_iter().map(|t| (t.id, t.pid)).collect();
    assert_eq!(before.len(), 21, "{before:?}");
    let short = before["short"];
    let shims: BTreeSet<i32> = ctrd.shims().into_iter().collect();
    assert_eq!(shims.len(), 21, "one shim per task");

    ctrd.stop();
    assert!(
        !dead(short),
        "the short task exited before containerd was down: the test proves nothing"
    );
    assert!(
        wait_until(Duration::from_secs(10), || dead(short)),
        "short task {short} did not exit"
    );
    ctrd.start_again();

    let after = ctrd.tasks();
    for id in &ids {
        let t = after.iter().find(|t| &t.id == id);
        let want = Some((before[id], "RUNNING"));
        assert_eq!(
            t.map(|t| (t.pid, t.status.as_str())),
            want,
            "{id} after the restart: {after:?}\n{}",
            ctrd.log()
        );
    }
    let s = after.iter().find(|t| t.id == "short");
    assert_eq!(
        s.map(|t| t.status.as_str()),
        Some("STOPPED"),
        "{after:?}\n{}",
        ctrd.log()
    );
    let now: BTreeSet<i32> = ctrd.shims().into_iter().collect();
    assert_eq!(now, shims, "the same shims serve after the restart");

    for id in &ids {
        let r = ctrd.ctr(&["task", "kill", "-s", "KILL", id]);
        assert_eq!(r.code, 0, "kill {id} after the restart: {r:?}");
    }
    for id in &ids {
        ctrd.wait_status(id, "STOPPED");
    }
    // ctr prints a deleted task's non-zero exit status as a warning.
    let rm = ctrd.ctr(&["task", "rm", "short"]);
    assert!(
        rm.code == 0 && rm.stderr.contains("non-zero exit code 5"),
        "{rm:?}"
    );
    for id in &ids {
        let rm = ctrd.ctr(&["task", "rm", id]);
        assert!(rm.stderr.contains("non-zero exit code 137"), "{id}: {rm:?}");
    }
    for id in ids.iter().map(String::as_str).chain(["short"]) {
        ctrd.ctr(&["container", "rm", id]).ok();
    }
    for id in ids.iter().map(String::as_str).chain(["short"]) {
        ctrd.assert_gone(id);
        assert!(dead(before[id]), "process of {id} left");
    }
    assert_namespace_empty(&ctrd);
}

/// The shim of a running task dies by SIGKILL. containerd runs our
/// `delete` (force-delete with the engine, unmount the rootfs, exit 137)
/// and drops the task: `ctr task ls` no longer lists it (containerd 1.6
/// forgets a task whose shim is gone) and the 137 reaches subscribers as
/// /tasks/exit. Nothing of the container survives, not even the dead
/// shim's socket file. The rootfs is an image snapshot, so the shim
/// really mounted it.
#[test]
fn killed_shim_is_cleaned_up_by_delete() {
    let ctrd = start();
    let b = Bundle::new();
    let image = ctrd.import_image(&b.rootfs());
    let (mut events, events_path) = ctrd.record_events();
    let id = "victim";
    let r = ctrd.run_image(&["-d"], &image, id, &["sleep", "600"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", ctrd.log());
    let t = ctrd.task(id).expect("task listed");
    assert_eq!(t.status, "RUNNING");
    let rootfs = ctrd.bundle(id).join("rootfs");
    let mounted = || {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        mi.contains(&format!(" {} ", rootfs.display()))
    };
    assert!(mounted(), "the shim mounted the snapshot on {rootfs:?}");
    assert!(ctrd.engine_state(id).exists());
    assert!(cgroup_exists(&ctrd.cgroup(id)));
    let shims = ctrd.shims();
    assert_eq!(shims.len(), 1);
    assert_eq!(ppid(t.pid), shims[0], "the container is the shim's child");

    kill(Pid::from_raw(shims[0]), Signal::SIGKILL).unwrap();

    let exit = format!(
        r#""container_id":"{id}","id":"{id}","pid":{},"exit_status":137"#,
        t.pid
    );
    let seen = wait_until(Duration::from_secs(15), || {
        std::fs::read_to_string(&events_path).is_ok_and(|e| {
            e.lines()
                .any(|l| l.contains(&ctrd.ns) && l.contains("/tasks/exit") && l.contains(&exit))
        })
    });
    let _ = events.kill();
    let _ = events.wait();
    let log = std::fs::read_to_string(&events_path).unwrap_or_default();
    assert!(seen, "no /tasks/exit with 137: {log}\n{}", ctrd.log());
    assert!(dead(t.pid), "the container process outlived its shim");
    assert!(
        wait_until(Duration::from_secs(10), || ctrd.task(id).is_none()),
        "containerd still lists the task: {:?}",
        ctrd.tasks()
    );
    assert!(!mounted(), "rootfs mount left on {rootfs:?}");
    assert!(!ctrd.engine_state(id).exists(), "engine state left");
    assert!(!cgroup_exists(&ctrd.cgroup(id)), "cgroup left");

    // containerd forgot the task; the container record is ours to remove.
    let rm = ctrd.ctr(&["task", "rm", id]);
    assert!(rm.code != 0 && rm.stderr.contains("not found"), "{rm:?}");
    ctrd.ctr(&["container", "rm", id]).ok();
    ctrd.assert_gone(id);
    assert_namespace_empty(&ctrd);
}

/// 500 `ctr run --rm /bin/true` one after another, then 50 at once: no
/// failure, no hang (a `ctr` that takes 60 s is killed and counts as a
/// failure), and nothing left of any of them.
#[test]
fn many_runs_sequential_and_parallel_leave_nothing() {
    const SEQUENTIAL: usize = 500;
    const PARALLEL: usize = 50;
    let ctrd = start();
    let b = Bundle::new();
    let rootfs = b.rootfs();
    let mut failures = Vec::new();
    let t0 = Instant::now();
    for i in 0..SEQUENTIAL {
        let id = format!("seq{i}");
        let r = ctrd.run(&["--rm"], &rootfs, &id, &["/bin/true"]);
        if r.code != 0 {
            failures.push((id, r));
        }
    }
    let sequential = t0.elapsed();
    let t1 = Instant::now();
    let parallel: Vec<(String, Run)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..PARALLEL)
            .map(|i| {
                let (ctrd, rootfs) = (&ctrd, &rootfs);
                s.spawn(move || {
                    let id = format!("par{i}");
                    let r = ctrd.run(&["--rm"], rootfs, &id, &["/bin/true"]);
                    (id, r)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!(
        "{SEQUENTIAL} sequential runs: {sequential:?} ({:?} each); {PARALLEL} parallel: {:?}",
        sequential / SEQUENTIAL as u32,
        t1.elapsed()
    );
    failures.extend(parallel.into_iter().filter(|(_, r)| r.code != 0));
    assert!(
        failures.is_empty(),
        "{} of {} runs failed, first: {:?}\n{}",
        failures.len(),
        SEQUENTIAL + PARALLEL,
        failures.first(),
        ctrd.log()
    );
    let ids = (0..SEQUENTIAL)
        .map(|i| format!("seq{i}"))
        .chain((0..PARALLEL).map(|i| format!("par{i}")));
    ctrd.assert_no_shims();
    for id in ids {
        ctrd.assert_task_gone(&id);
    }
    assert_namespace_empty(&ctrd);
}

/// One long-lived shim serves 200 execs into its container and 50 grouped
/// `run --rm` containers created and deleted beside it: its fd count (and
/// thread count) after all that is what it was before.
#[test]
fn long_lived_shim_does_not_leak_fds() {
    let ctrd = start();
    let b = Bundle::new();
    let group = format!("io.kubernetes.cri.sandbox-id={}", unique("pod"));
    let r = ctrd.run(
        &["-d", "--annotation", &group],
        &b.rootfs(),
        "pause",
        &["sleep", "600"],
    );
    assert_eq!(r.code, 0, "{r:?}\n{}", ctrd.log());
    let shim = ctrd.shims()[0];
    let exec = |i: usize| {
        let r = ctrd.ctr(&[
            "task",
            "exec",
            "--exec-id",
            &format!("e{i}"),
            "pause",
            "/bin/true",
        ]);
        assert_eq!(r.code, 0, "exec {i}: {r:?}\n{}", ctrd.log());
    };
    // Warm up: lazily opened fds (event client, log FIFO) are not leaks.
    exec(0);
    let first = fd_count(shim);
    let mut samples = vec![first];
    for i in 1..=200 {
        exec(i);
        if i % 50 == 0 {
            samples.push(fd_count(shim));
        }
    }
    for i in 0..50 {
        let id = format!("member{i}");
        let r = ctrd.run(
            &["--rm", "--annotation", &group],
            &b.rootfs(),
            &id,
            &["/bin/true"],
        );
        assert_eq!(r.code, 0, "{id}: {r:?}\n{}", ctrd.log());
        if i % 25 == 24 {
            samples.push(fd_count(shim));
        }
    }
    assert_eq!(ctrd.shims(), vec![shim], "one shim served all of it");
    eprintln!("shim fds: {samples:?} (start, every 50 execs, every 25 runs)");
    let last = *samples.last().unwrap();
    assert!(
        last <= first,
        "shim fds grew: {samples:?} (200 execs, then 50 grouped runs)\n{:?}",
        std::fs::read_dir(format!("/proc/{shim}/fd"))
            .map(|d| d
                .flatten()
                .map(|e| std::fs::read_link(e.path()).unwrap_or_default())
                .collect::<Vec<_>>())
            .unwrap_or_default()
    );
    assert_eq!(threads(shim), 1, "the server stays single-threaded");
    ctrd.kill_and_remove("pause");
    ctrd.assert_gone("pause");
    assert_namespace_empty(&ctrd);
}

/// Containers with one `io.kubernetes.cri.sandbox-id` share one shim (its
/// socket named after the sandbox, not the ids); `io.containerd.runc.v2.group`
/// takes precedence over a different sandbox id. The shim outlives the
/// removal of all but the last of them, then exits and its socket goes.
#[test]
fn grouped_containers_share_one_shim() {
    let ctrd = start();
    let b = Bundle::new();
    let sandbox = unique("sandbox");
    let by_sandbox = format!("io.kubernetes.cri.sandbox-id={sandbox}");
    let by_group = format!("io.containerd.runc.v2.group={sandbox}");
    let other = format!("io.kubernetes.cri.sandbox-id={}", unique("other"));
    let members: [(&str, Vec<&str>); 3] = [
        ("ga", vec!["--annotation", &by_sandbox]),
        ("gb", vec!["--annotation", &by_sandbox]),
        (
            "gc",
            vec!["--annotation", &by_group, "--annotation", &other],
        ),
    ];
    for (id, flags) in &members {
        let mut flags = flags.clone();
        flags.push("-d");
        let r = ctrd.run(&flags, &b.rootfs(), id, &["sleep", "600"]);
        assert_eq!(r.code, 0, "{id}: {r:?}\n{}", ctrd.log());
    }
    let shims = ctrd.shims();
    assert_eq!(shims.len(), 1, "one shim for the group: {shims:?}");
    for (id, _) in &members {
        let t = ctrd.task(id).expect("listed");
        assert_eq!(t.status, "RUNNING", "{id}");
        assert_eq!(ppid(t.pid), shims[0], "{id} is a child of the one shim");
        assert!(!ctrd.socket(id).exists(), "no per-id socket for {id}");
    }
    let socket = ctrd.socket(&sandbox);
    assert!(socket.exists(), "the group's socket {}", socket.display());

    for (id, _) in &members[..2] {
        ctrd.kill_and_remove(id);
        assert_eq!(ctrd.shims(), shims, "the shim serves the rest after {id}");
        assert!(socket.exists(), "socket kept while gc runs");
        ctrd.assert_task_gone(id);
    }
    assert_eq!(ctrd.task("gc").map(|t| t.status), Some("RUNNING".into()));
    ctrd.kill_and_remove("gc");
    ctrd.assert_gone("gc");
    assert!(!socket.exists(), "group socket {} left", socket.display());
    assert_namespace_empty(&ctrd);
}

/// Exec stdin that nobody reads never holds the shim: an exec whose
/// process ignores a stdin fed without end (`yes`) finishes, ctr returns,
/// and once the task is removed its shim exits (the Rust runc shim keeps
/// such a shim forever, waiting on the copy).
#[test]
fn unread_exec_stdin_does_not_hold_the_shim() {
    let ctrd = start();
    let b = Bundle::new();
    let r = ctrd.run(&["-d"], &b.rootfs(), "stdin", &["sleep", "60"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", ctrd.log());
    let mut yes = std::process::Command::new("yes")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let feed = yes.stdout.take().unwrap();
    let mut exec = ctrd.cmd(&[
        "task",
        "exec",
        "--exec-id",
        "deaf",
        "stdin",
        "sh",
        "-c",
        "sleep 1; echo done",
    ]);
    let mut exec = exec
        .stdin(std::process::Stdio::from(feed))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_child(&mut exec, Duration::from_secs(20));
    let _ = yes.kill();
    let _ = yes.wait();
    assert_eq!(code, 0, "exec with unread stdin finished\n{}", ctrd.log());
    for pid in ctrd.shims() {
        assert_eq!(threads(pid), 1, "the server stays single-threaded");
    }
    ctrd.kill_and_remove("stdin");
    ctrd.assert_gone("stdin");
}
