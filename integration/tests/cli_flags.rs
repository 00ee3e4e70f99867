//! Global flags and the smaller create/exec flags: `--log` in both formats,
//! `--debug`, `--systemd-cgroup`, `--no-new-keyring`, the "creating" status,
//! the default cgroup path, and `exec --preserve-fds`.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use integration::*;
use serde_json::{json, Value};

#[test]
fn log_json_records_the_error_for_callers() {
    let rt = Runtime::rsrun();
    let log = rt.root.join("log.json");
    let l = log.to_str().unwrap();
    let r = rt.run(&["--log", l, "--log-format", "json", "start", "ghost"]);
    // The global flags go before the verb; Runtime::run puts --root first.
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stderr.trim_end().lines().count(), 1, "{r:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], json!("error"), "{text}");
    assert!(
        last["msg"].as_str().unwrap().contains("does not exist"),
        "{text}"
    );
    assert!(last["time"].as_str().unwrap().ends_with('Z'), "{text}");
}

#[test]
fn log_text_format_and_debug_flag() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let log = rt.root.join("log.txt");
    let l = log.to_str().unwrap();
    b.sh("echo hi").save();
    let id = unique("dbg");
    let r = rt.run(&["--debug", "--log", l, "run", "--bundle", b.path(), &id]);
    assert_eq!(r.ok(), "hi\n");
    let r = rt.run(&["--log", l, "kill", &id, "NOPE"]);
    assert_eq!(r.code, 1);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("level=error msg="), "{text}");
}

#[test]
fn systemd_cgroup_is_refused_clearly() {
    let (rt, b) = (Runtime::rsrun(), Bundle::new());
    b.save();
    let id = unique("sd");
    let r = rt.run(&["--systemd-cgroup", "create", "--bundle", b.path(), &id]);
    assert!(r.err().contains("systemd"), "{r:?}");
    assert_eq!(r.stderr.trim_end().lines().count(), 1, "{r:?}");
    assert_nothing_left(&rt, &b, &id);
}

#[test]
fn new_session_keyring_unless_no_new_keyring() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    // /proc/keys is masked by default; unmask it to look.
    let masked = b.config["linux"]["maskedPaths"].as_array_mut().unwrap();
    masked.retain(|p| p != "/proc/keys");
    let id = unique("key");
    b.sh(&format!("grep -c ' _ses.{id}:' /proc/keys || true"))
        .save();
    let r = rt.run(&["run", "--bundle", b.path(), &id]);
    assert_eq!(r.ok().trim(), "1", "a fresh _ses.<id> session keyring");
    let id2 = unique("nokey");
    b.sh(&format!("grep -c ' _ses.{id2}:' /proc/keys || true"))
        .save();
    let r = rt.run(&["run", "--no-new-keyring", "--bundle", b.path(), &id2]);
    assert_eq!(
        r.ok().trim(),
        "0",
        "--no-new-keyring keeps the caller's keyring"
    );
}

#[test]
fn creating_status_is_visible_until_init_is_ready() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "1"]}]});
    b.sh("sleep 10").save();
    let id = unique("creating");
    let mut child = rt
        .cmd(&["create", "--bundle", b.path(), &id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let seen = wait_until(Duration::from_secs(5), || {
        rt.run(&["state", &id]).code == 0 && rt.status(&id) == "creating"
    });
    assert!(seen, "never saw status creating");
    assert_eq!(rt.state(&id)["pid"], json!(0));
    assert_eq!(wait_child(&mut child, Duration::from_secs(10)), 0);
    assert_eq!(rt.status(&id), "created");
    rt.run(&["delete", "-f", &id]).ok();
    assert_nothing_left(&rt, &b, &id);
}

#[test]
fn default_cgroup_path_is_rsrun_slash_id() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    b.config["linux"]
        .as_object_mut()
        .unwrap()
        .remove("cgroupsPath");
    b.sh("sleep 10").save();
    let id = unique("defcg");
    rt.run_detached(&["run", "-d", "--bundle", b.path(), &id])
        .ok();
    let path = format!("/rsrun/{id}");
    assert!(
        cgroup_exists(&path),
        "{path} missing while the container runs"
    );
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    let procs = std::fs::read_to_string(format!("/sys/fs/cgroup/pids{path}/cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
    rt.run(&["delete", "-f", &id]).ok();
    assert!(!cgroup_exists(&path), "{path} left after delete");
}

#[test]
fn exec_preserve_fds_passes_an_extra_fd() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    b.sh("sleep 10").save();
    let id = unique("xfd");
    rt.run_detached(&["run", "-d", "--bundle", b.path(), &id])
        .ok();
    std::fs::write(b.dir.join("fd3"), "exec fd 3\n").unwrap();
    let file = std::fs::File::open(b.dir.join("fd3")).unwrap();
    let raw = file.as_raw_fd();
    let mut cmd = rt.cmd(&["exec", "--preserve-fds", "1", &id, "sh", "-c", "cat <&3"]);
    // SAFETY: dup2 in the child between fork and exec is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself keeps O_CLOEXEC: clear it explicitly.
            if (raw != 3 && libc::dup2(raw, 3) < 0) || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "exec fd 3\n",
        "{out:?}"
    );
    let r = rt.run(&["exec", &id, "sh", "-c", "ls /proc/self/fd"]);
    assert_eq!(
        r.ok().split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"],
        "only stdio and ls's own fd"
    );
    rt.run(&["delete", "-f", &id]).ok();
}

/// Container processes start with no signal blocked or ignored, whatever
/// rsrun inherited (the Rust runtime itself ignores SIGPIPE; a caller may
/// ignore SIGHUP), for init and for exec'd processes alike.
#[test]
fn container_processes_start_with_a_clean_signal_state() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    b.config["process"]["args"] = json!(["grep", "-E", "SigIgn|SigBlk", "/proc/self/status"]);
    b.save();
    let with_hup_ignored = |args: &[&str]| {
        let mut cmd = rt.cmd(args);
        // SAFETY: signal() between fork and exec is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                Ok(())
            });
        }
        String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned()
    };
    let clean = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n";
    let id = unique("sig");
    assert_eq!(with_hup_ignored(&["run", "--bundle", b.path(), &id]), clean);
    b.sh("sleep 10").save();
    let id = unique("sigx");
    rt.run_detached(&["run", "-d", "--bundle", b.path(), &id])
        .ok();
    let out = with_hup_ignored(&[
        "exec",
        &id,
        "grep",
        "-E",
        "SigIgn|SigBlk",
        "/proc/self/status",
    ]);
    assert_eq!(out, clean);
    rt.run(&["delete", "-f", &id]).ok();
}

/// `run` in the foreground forwards the signals it receives to the
/// container's init and exits with init's status.
#[test]
fn foreground_run_forwards_signals() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    b.sh("trap 'exit 43' TERM; echo ready; while :; do sleep 0.05; done")
        .save();
    let id = unique("fwd");
    let mut child = rt
        .cmd(&["run", "--bundle", b.path(), &id])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        rt.run(&["state", &id]).code == 0 && rt.status(&id) == "running"
    }));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(wait_child(&mut child, Duration::from_secs(10)), 43);
    assert!(!rt.root.join(&id).exists(), "run removes the container");
}
