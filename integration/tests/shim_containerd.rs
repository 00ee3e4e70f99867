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

use std::path::{Path, PathBuf};
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
    // Quiet at info level (containerd runs shims without -debug here): a
    // clean run writes nothing to the shim log containerd copies.
    let log = ctrd.log();
    let shim_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("runtime=io.containerd.rs.v2"))
        .collect();
    assert!(shim_lines.is_empty(), "{shim_lines:#?}");
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
    ctrd.wait_status("bg", "STOPPED");
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

/// `ctr run -t`: the shim holds the pty master, copies both ways, applies
/// ctr's ResizePty (sent before Start) and reports the exit code.
#[test]
fn rs_shim_terminal_run() {
    let ctrd = Ctrd::start("rstest-shimc");
    let b = Bundle::new();
    let bin = shim_bin();
    let rootfs = b.rootfs();
    let cgroup = ctrd.cgroup("tty");
    let args = [
        "run",
        "--rm",
        "-t",
        "--runtime",
        bin.to_str().unwrap(),
        "--cgroup",
        &cgroup,
        "--rootfs",
        rootfs.to_str().unwrap(),
        "tty",
        "/bin/sh",
    ];
    let pty = PtyChild::spawn(ctrd.cmd(&args));
    pty.resize(33, 101);
    let mut pty = pty;
    let prompt = pty.read_until("# ", Duration::from_secs(20));
    assert!(
        prompt.contains("# "),
        "no prompt: {prompt:?}\n{}",
        ctrd.log()
    );
    pty.write("tty; stty size; echo done-$((6*7)); exit 5\n");
    let out = pty.read_until("done-42", Duration::from_secs(10));
    assert!(out.contains("/dev/pts/0"), "{out:?}");
    assert!(
        out.contains("33 101"),
        "window size reached the container: {out:?}"
    );
    assert_eq!(pty.wait(Duration::from_secs(20)), 5);
    ctrd.assert_gone("tty");
}

/// `ctr task exec` with `-t` (a pty of its own) and with piped stdin
/// (the process reads the FIFO itself and sees EOF when ctr closes it);
/// `task ps` labels exec processes with their exec id.
#[test]
fn rs_shim_exec_terminal_stdin_and_ps() {
    let ctrd = Ctrd::start("rstest-shimc");
    let b = Bundle::new();
    let r = ctrd.run(&["-d"], &b.rootfs(), "ext", &["sleep", "60"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", ctrd.log());
    let args = [
        "task",
        "exec",
        "-t",
        "--exec-id",
        "t1",
        "ext",
        "/bin/sh",
        "-c",
        "tty; exit 4",
    ];
    let mut pty = PtyChild::spawn(ctrd.cmd(&args));
    let out = pty.read_until("/dev/pts/", Duration::from_secs(20));
    assert!(out.contains("/dev/pts/"), "{out:?}\n{}", ctrd.log());
    assert_eq!(pty.wait(Duration::from_secs(20)), 4);

    let mut cat = ctrd.cmd(&["task", "exec", "--exec-id", "in", "ext", "/bin/cat"]);
    let out = cat
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"piped line\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(0), "piped line\n")
    );

    let r = ctrd.ctr(&[
        "task",
        "exec",
        "-d",
        "--exec-id",
        "bg",
        "ext",
        "sleep",
        "60",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let ps = ctrd.ctr(&["task", "ps", "ext"]);
    assert!(ps.ok().contains("ExecID:bg"), "{ps:?}");
    assert_eq!(ps.ok().matches("ExecID:").count(), 1, "{ps:?}");
    for pid in ctrd.shims() {
        assert_eq!(threads(pid), 1, "the server stays single-threaded");
    }
    ctrd.ctr(&["task", "kill", "-a", "-s", "KILL", "ext"]).ok();
    assert!(wait_until(Duration::from_secs(10), || ctrd
        .ctr(&["task", "ls"])
        .stdout
        .contains("STOPPED")));
    ctrd.ctr(&["task", "rm", "ext"]).ok();
    ctrd.ctr(&["container", "rm", "ext"]).ok();
    ctrd.assert_gone("ext");
}

/// `--log-uri`: `file://` appends stdout and stderr to the file;
/// `binary://` hands them to a logging binary on fds 3 and 4 with
/// CONTAINER_ID/CONTAINER_NAMESPACE set; `binary-v2://` refuses a logger
/// that closes its readiness fd without writing a byte.
#[test]
fn rs_shim_log_uris() {
    let ctrd = Ctrd::start("rstest-shimc");
    let b = Bundle::new();
    let dir = ScratchDir::new("rstest-logs");
    let script = "echo to-out; echo to-err >&2; exit 6";

    let file = dir.path().join("sub/file.log");
    let uri = format!("file://{}", file.display());
    let r = ctrd.run(
        &["--rm", "--log-uri", &uri],
        &b.rootfs(),
        "flog",
        &["sh", "-c", script],
    );
    assert_eq!(r.code, 6, "{r:?}\n{}", ctrd.log());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "to-out\nto-err\n");
    ctrd.assert_gone("flog");

    let logger = dir.path().join("logger.sh");
    std::fs::write(
        &logger,
        "#!/bin/sh\nout=$1\necho \"$CONTAINER_ID $CONTAINER_NAMESPACE $HOME\" > $out.env\n\
         cat <&3 5>&- > $out.out &\ncat <&4 5>&- > $out.err &\n\
         [ \"$2\" = ready ] && printf x >&5\nexec 5>&-\nwait\n",
    )
    .unwrap();
    std::fs::set_permissions(&logger, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let base = dir.path().join("bin");
    let uri = format!("binary://{}?{}", logger.display(), base.display());
    let r = ctrd.run(
        &["--rm", "--log-uri", &uri],
        &b.rootfs(),
        "blog",
        &["sh", "-c", script],
    );
    assert_eq!(r.code, 6, "{r:?}\n{}", ctrd.log());
    let read = |ext: &str| std::fs::read_to_string(format!("{}.{ext}", base.display()));
    assert!(
        wait_until(Duration::from_secs(5), || read("err")
            .is_ok_and(|s| !s.is_empty())),
        "logger output"
    );
    assert_eq!(read("out").unwrap(), "to-out\n");
    assert_eq!(read("err").unwrap(), "to-err\n");
    assert_eq!(read("env").unwrap(), format!("blog {} \n", ctrd.ns));
    ctrd.assert_gone("blog");

    let v2 = |arg: &str| format!("binary-v2://{}?{}&{arg}", logger.display(), base.display());
    let r = ctrd.run(
        &["--rm", "--log-uri", &v2("ready")],
        &b.rootfs(),
        "v2ok",
        &["true"],
    );
    assert_eq!(r.code, 0, "{r:?}\n{}", ctrd.log());
    ctrd.assert_gone("v2ok");
    let r = ctrd.run(
        &["--rm", "--log-uri", &v2("mute")],
        &b.rootfs(),
        "v2no",
        &["true"],
    );
    assert!(r.stderr.contains("without reporting ready"), "{r:?}");
    let _ = ctrd.ctr(&["container", "rm", "v2no"]);
    ctrd.assert_gone("v2no");
}

/// A container in the host's pid namespace: when its init exits, what it
/// left running is killed at once (no pid namespace does that for it),
/// before anyone deletes the task.
#[test]
fn rs_shim_kills_leftovers_without_pid_namespace() {
    let ctrd = Ctrd::start("rstest-shimc");
    let b = Bundle::new();
    let out = ScratchDir::new("rstest-hostpid");
    // This test's own (the host's) pid namespace; pid 1's is not readable
    // on every machine.
    let ns = format!("pid:/proc/{}/ns/pid", std::process::id());
    let mount = format!(
        "type=bind,src={},dst=/out,options=rbind:rw",
        out.path().display()
    );
    let r = ctrd.run(
        &["-d", "--with-ns", &ns, "--mount", &mount],
        &b.rootfs(),
        "hostpid",
        &["sh", "-c", "sleep 1000 & echo $! > /out/pid; exit 0"],
    );
    assert_eq!(r.code, 0, "{r:?}\n{}", ctrd.log());
    ctrd.wait_status("hostpid", "STOPPED");
    let pid: i32 = std::fs::read_to_string(out.path().join("pid"))
        .unwrap()
        .trim()
        .parse()
        .expect("background pid");
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "background sleep {pid} survived its init"
    );
    ctrd.ctr(&["task", "rm", "hostpid"]).ok();
    ctrd.ctr(&["container", "rm", "hostpid"]).ok();
    ctrd.assert_gone("hostpid");
}

/// A directory removed on drop (also when an assertion fails).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(prefix: &str) -> ScratchDir {
        let d = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&d).unwrap();
        ScratchDir(d)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
