//! rsrun as a drop-in for runc under containerd's own Go shim
//! (`containerd-shim-runc-v2`), driven with `ctr --runc-binary`: the exact
//! command lines, log format, console socket, pid files and exec process
//! files containerd uses. A private containerd (own root, state, sockets)
//! is started for the test and stopped after it.

use std::time::Duration;

use integration::*;

/// `ctr run` flags that select rsrun with a private runc root.
fn run_args<'a>(bin: &'a str, root: &'a str) -> Vec<&'a str> {
    vec!["run", "--runc-binary", bin, "--runc-root", root]
}

fn rootfs() -> (Bundle, String) {
    let b = Bundle::new();
    let r = b.rootfs().to_str().unwrap().to_string();
    (b, r)
}

#[test]
fn go_shim_runs_execs_and_kills_through_rsrun() {
    let (rt, ctrd) = (Runtime::rsrun(), Containerd::start("rstest"));
    let (bin, root) = (
        rsrun_bin().display().to_string(),
        rt.root.display().to_string(),
    );
    let (_b, rootfs) = rootfs();
    // The Go shim joins the runc root with the containerd namespace.
    let rt = Runtime {
        bin: rsrun_bin(),
        root: rt.root.join("rstest"),
    };

    let mut run = run_args(&bin, &root);
    run.extend([
        "--rm",
        "--rootfs",
        &rootfs,
        "fg",
        "sh",
        "-c",
        "echo hello; exit 3",
    ]);
    let r = ctrd.ctr(&run);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (3, "hello\n"),
        "{r:?}\n{}",
        ctrd.log()
    );

    let mut run = run_args(&bin, &root);
    run.extend(["-d", "--rootfs", &rootfs, "bg", "sleep", "60"]);
    ctrd.ctr(&run).ok();
    assert!(
        rt.ids().contains(&"bg".to_string()),
        "rsrun state root holds the task"
    );
    let r = ctrd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "bg",
        "sh",
        "-c",
        "echo in-exec; exit 4",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (4, "in-exec\n"), "{r:?}");
    let ps = ctrd.ctr(&["task", "ps", "bg"]);
    let pid = rt.state("bg")["pid"].as_i64().unwrap().to_string();
    assert!(ps.ok().contains(&pid), "{ps:?}");
    ctrd.ctr(&["task", "kill", "-s", "KILL", "bg"]).ok();
    assert!(wait_until(Duration::from_secs(10), || ctrd
        .ctr(&["task", "ls"])
        .stdout
        .contains("STOPPED")));
    ctrd.ctr(&["task", "rm", "bg"]).ok();
    ctrd.ctr(&["container", "rm", "bg"]).ok();
    assert!(rt.ids().is_empty(), "task rm deletes the rsrun container");
    assert!(!cgroup_exists("/rstest/bg"), "cgroup removed");
}

#[test]
fn go_shim_terminal_and_seccomp_through_rsrun() {
    let (rt, ctrd) = (Runtime::rsrun(), Containerd::start("rstest"));
    let (bin, root) = (
        rsrun_bin().display().to_string(),
        rt.root.display().to_string(),
    );
    let (_b, rootfs) = rootfs();
    let mut run = run_args(&bin, &root);
    run.extend([
        "--rm",
        "--seccomp",
        "--rootfs",
        &rootfs,
        "sc",
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status",
    ]);
    assert_eq!(
        ctrd.ctr(&run).ok().split_whitespace().collect::<Vec<_>>(),
        ["Seccomp:", "2"]
    );

    let mut run = run_args(&bin, &root);
    run.extend(["--rm", "-t", "--rootfs", &rootfs, "tty", "sh"]);
    let mut pty = PtyChild::spawn(ctrd.cmd(&run));
    pty.read_until("# ", Duration::from_secs(20));
    pty.write("tty; exit 5\n");
    let out = pty.read_until("/dev/pts/0", Duration::from_secs(10));
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert_eq!(pty.wait(Duration::from_secs(20)), 5);
}
