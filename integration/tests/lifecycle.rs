//! The container lifecycle through the runc command line: create, start,
//! state, list, kill, delete, run (foreground, detached, with a terminal),
//! ps and exec, as runc's README and man pages describe them.

use std::io::{IoSliceMut, Read};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::process::{Child, Stdio};
use std::time::Duration;

use integration::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);

/// A detached container running `script`; returns its bundle, id and init pid.
fn started(rt: &Runtime, script: &str) -> (Bundle, String, i32) {
    let mut b = Bundle::new();
    b.sh(script).save();
    let id = unique("lc");
    rt.run_detached(&["run", "-d", "--bundle", b.path(), &id])
        .ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    (b, id, pid)
}

/// The ids of the `ID` column and the words of the header of `list`.
fn list_table(rt: &Runtime) -> (Vec<String>, Vec<(String, String)>) {
    let out = rt.run(&["list"]).ok().to_string();
    let mut lines = out.lines();
    let header = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w[0].to_string(), w[2].to_string())
        })
        .collect();
    (header, rows)
}

fn check_state(v: &Value, id: &str, b: &Bundle, status: &str) {
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ] {
        assert!(keys.contains(&k), "state lacks {k}: {v}");
    }
    assert_eq!(v["id"], json!(id));
    assert_eq!(v["status"], json!(status));
    assert_eq!(v["bundle"], json!(b.path()));
    assert_eq!(v["rootfs"], json!(b.rootfs().to_str().unwrap()));
    assert_eq!(v["owner"], json!("root"));
    assert!(
        v["created"].as_str().unwrap().contains('T'),
        "created is RFC 3339: {v}"
    );
    let pid = v["pid"].as_i64().unwrap() as i32;
    if status == "stopped" {
        assert_eq!(pid, 0, "a stopped container reports pid 0 (as runc): {v}");
    } else {
        assert!(pid > 0 && alive(pid), "pid {pid} must be alive: {v}");
    }
}

#[test]
fn readme_workflow_create_start_kill_delete() {
    let rt = Runtime::rsrun();
    let b = Bundle::new();
    let mut c = b.config.clone();
    c["process"]["terminal"] = json!(false);
    c["process"]["args"] = json!(["sleep", "5"]);
    std::fs::write(b.dir.join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
    let id = unique("readme");

    rt.run_detached(&["create", "--bundle", b.path(), &id]).ok();
    let (header, rows) = list_table(&rt);
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    assert_eq!(rows, [(id.clone(), "created".to_string())]);
    check_state(&rt.state(&id), &id, &b, "created");

    rt.run(&["start", &id]).ok();
    assert_eq!(list_table(&rt).1, [(id.clone(), "running".to_string())]);
    check_state(&rt.state(&id), &id, &b, "running");

    let err = rt.run(&["delete", &id]).err().to_string();
    assert!(
        err.contains(&format!("cannot delete container {id} that is not stopped")),
        "{err}"
    );
    assert_eq!(
        rt.status(&id),
        "running",
        "a refused delete changes nothing"
    );

    rt.run(&["kill", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped");
    check_state(&rt.state(&id), &id, &b, "stopped");
    rt.run(&["delete", &id]).ok();
    assert!(rt.ids().is_empty());
    assert!(rt.run(&["state", &id]).err().contains("does not exist"));
    assert_nothing_left(&rt, &b, &id);
}

#[test]
fn delete_force_kills_a_running_container() {
    let rt = Runtime::rsrun();
    let (b, id, pid) = started(&rt, "sleep 100");
    rt.run(&["delete", "-f", &id]).ok();
    assert!(
        wait_until(T, || !alive(pid)),
        "init {pid} survived delete -f"
    );
    assert_nothing_left(&rt, &b, &id);
}

#[test]
fn run_foreground_returns_exit_code_and_removes_container() {
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    for (script, code) in [("exit 7", 7), ("true", 0)] {
        b.sh(script).save();
        let id = unique("fg");
        let r = rt.run_bundle(&b, &id);
        assert_eq!(r.code, code, "{script}: {r:?}");
        assert!(rt.ids().is_empty(), "run must delete {id}");
        assert_nothing_left(&rt, &b, &id);
    }
}

#[test]
fn run_foreground_killed_from_outside_gives_137() {
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    b.sh("echo ready; exec sleep 100").save();
    let id = unique("fg");
    let (mut child, _out) = rt.spawn_run_ready(&b, &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    assert_eq!(wait_child(&mut child, T), 137);
    assert_nothing_left(&rt, &b, &id);
}

#[test]
fn run_detached_with_pid_file() {
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    b.sh("exec sleep 100").save();
    let id = unique("det");
    let pid_file = b.dir.join("init.pid");
    rt.run_detached(&[
        "run",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--bundle",
        b.path(),
        &id,
    ])
    .ok();
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));
    let st = rt.state(&id);
    assert_eq!(st["status"], "running");
    assert_eq!(st["pid"], json!(pid));
    let ps: Vec<i32> = serde_json::from_str(rt.run(&["ps", "--format", "json", &id]).ok()).unwrap();
    assert_eq!(ps, [pid], "ps lists init");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cg.contains(&b.cgroups_path()),
        "init not in {}: {cg}",
        b.cgroups_path()
    );
    rt.run(&["kill", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped");
    rt.run(&["delete", &id]).ok();
    assert_nothing_left(&rt, &b, &id);
}

#[test]
fn run_with_terminal_on_a_pty() {
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["args"] = json!(["sh"]);
    b.save();
    let id = unique("tty");
    let mut p = PtyChild::spawn(rt.cmd(&["run", "--bundle", b.path(), &id]));
    p.write("tty; exit 3\n");
    let out = p.read_until("/dev/pts/0", T);
    assert!(out.contains("/dev/pts/0"), "tty output: {out:?}");
    assert_eq!(p.wait(T), 3, "{out:?}");
    assert_nothing_left(&rt, &b, &id);
}

/// Accepts one connection on `l` and receives the fd sent with SCM_RIGHTS.
fn recv_fd(l: &UnixListener) -> OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::AsRawFd;
    let (conn, _) = l.accept().unwrap();
    let mut buf = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed this descriptor for us.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received on the console socket");
}

#[test]
fn create_with_console_socket_sends_pty_master() {
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    b.config["process"]["terminal"] = json!(true);
    b.sh("tty; echo hello-from-console; sleep 100").save();
    let sock = b.dir.join("console.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let id = unique("cons");
    let mut create = rt
        .cmd(&[
            "create",
            "--console-socket",
            sock.to_str().unwrap(),
            "--bundle",
            b.path(),
            &id,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let master = recv_fd(&l);
    let mut err = String::new();
    let code = wait_child(&mut create, T);
    create
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(code, 0, "create: {err}");
    rt.run(&["start", &id]).ok();
    let out = read_fd_until(&master, "hello-from-console", T);
    assert!(
        out.contains("/dev/pts/0") && out.contains("hello-from-console"),
        "{out:?}"
    );
    rt.run(&["delete", "-f", &id]).ok();
    assert_nothing_left(&rt, &b, &id);
}

#[test]
fn kill_accepts_signal_names_and_numbers() {
    let rt = Runtime::rsrun();
    let script = "trap 'exit 43' TERM; echo ready; while :; do sleep 0.05; done";
    for (sig, code) in [("KILL", 137), ("9", 137), ("SIGTERM", 43), ("term", 43)] {
        let mut b = Bundle::new();
        b.sh(script).save();
        let id = unique("kill");
        let (mut child, _out) = rt.spawn_run_ready(&b, &id);
        rt.run(&["kill", &id, sig]).ok();
        assert_eq!(wait_child(&mut child, T), code, "kill {sig}");
        assert_nothing_left(&rt, &b, &id);
    }
}

#[test]
fn kill_all_signals_every_process() {
    let rt = Runtime::rsrun();
    let (b, id, _) = started(&rt, "sleep 100 & sleep 100 & wait");
    let mut pids = Vec::new();
    assert!(
        wait_until(T, || {
            pids = serde_json::from_str(rt.run(&["ps", "-f", "json", &id]).ok()).unwrap();
            pids.len() == 3
        }),
        "want sh and two sleeps: {pids:?}"
    );
    // Init (sh, pid 1 of its namespace) ignores TERM, so only --all ends it.
    rt.run(&["kill", &id, "TERM"]).ok();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(rt.status(&id), "running");
    rt.run(&["kill", "--all", &id, "TERM"]).ok();
    rt.wait_status(&id, "stopped");
    assert!(
        wait_until(T, || pids.iter().all(|p| !alive(*p))),
        "{pids:?} survived"
    );
    rt.run(&["delete", &id]).ok();
    assert_nothing_left(&rt, &b, &id);
}

#[test]
fn kill_with_invalid_signal_fails() {
    let rt = Runtime::rsrun();
    let (_b, id, pid) = started(&rt, "sleep 100");
    for bad in ["NOPE", "999", "SIGFOO", "0x9"] {
        let r = rt.run(&["kill", &id, bad]);
        assert_ne!(r.code, 0, "kill {bad}: {r:?}");
        assert_eq!(r.stderr.trim().lines().count(), 1, "one-line error: {r:?}");
    }
    assert!(alive(pid));
    assert_eq!(rt.status(&id), "running");
}

#[test]
fn ps_table_and_json_list_only_the_container() {
    let rt = Runtime::rsrun();
    let (_b, id, pid) = started(&rt, "sleep 100 & exec sleep 101");
    let mut json_pids: Vec<i32> = Vec::new();
    assert!(
        wait_until(T, || {
            json_pids =
                serde_json::from_str(rt.run(&["ps", "--format", "json", &id]).ok()).unwrap();
            json_pids.len() == 2
        }),
        "{json_pids:?}"
    );
    assert!(json_pids.contains(&pid));
    let table = rt.run(&["ps", &id]).ok().to_string();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let col = header.iter().position(|h| *h == "PID").expect("PID column");
    let mut table_pids: Vec<i32> = lines
        .map(|l| l.split_whitespace().nth(col).unwrap().parse().unwrap())
        .collect();
    table_pids.sort();
    json_pids.sort();
    assert_eq!(table_pids, json_pids, "{table}");
    assert!(table.contains("sleep 101"), "{table}");
}

/// `exec ARGS...` in the foreground.
fn exec(rt: &Runtime, args: &[&str]) -> Run {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    rt.run(&all)
}

#[test]
fn exec_env_cwd_and_user() {
    let rt = Runtime::rsrun();
    let (_b, id, _) = started(&rt, "sleep 100");
    let out = exec(
        &rt,
        &[
            "--env",
            "FOO=bar baz",
            "--cwd",
            "/tmp",
            &id,
            "sh",
            "-c",
            "echo $FOO; pwd",
        ],
    );
    assert_eq!(out.ok(), "bar baz\n/tmp\n");
    let out = exec(&rt, &["--user", "1000:1000", &id, "id"]);
    assert_eq!(out.ok().trim(), "uid=1000(rs) gid=1000(rs)");
    let out = exec(&rt, &["--user", "1000", &id, "sh", "-c", "id -u; id -g"]);
    assert_eq!(out.ok(), "1000\n0\n", "gid defaults to 0");
}

#[test]
fn exec_cap_and_no_new_privs() {
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.sh("sleep 100").save();
    let id = unique("caps");
    rt.run_detached(&["run", "-d", "--bundle", b.path(), &id])
        .ok();

    let plain = exec(&rt, &[&id, "cat", "/proc/self/status"])
        .ok()
        .to_string();
    let eff = u64::from_str_radix(status_field(&plain, "CapEff"), 16).unwrap();
    assert_eq!(eff & (1 << 21), 0, "no CAP_SYS_ADMIN by default");
    assert_eq!(status_field(&plain, "NoNewPrivs"), "0");

    let out = exec(
        &rt,
        &[
            "--cap",
            "CAP_SYS_ADMIN",
            "--no-new-privs",
            &id,
            "cat",
            "/proc/self/status",
        ],
    );
    let out = out.ok();
    let eff = u64::from_str_radix(status_field(out, "CapEff"), 16).unwrap();
    assert_ne!(eff & (1 << 21), 0, "CAP_SYS_ADMIN in CapEff: {eff:x}");
    let bnd = u64::from_str_radix(status_field(out, "CapBnd"), 16).unwrap();
    assert_ne!(bnd & (1 << 21), 0, "CAP_SYS_ADMIN in CapBnd: {bnd:x}");
    assert_eq!(
        status_field(out, "CapInh"),
        "0000000000000000",
        "never inheritable (CVE-2022-29162)"
    );
    assert_eq!(status_field(out, "NoNewPrivs"), "1");
}

#[test]
fn exec_detached_with_pid_file() {
    let rt = Runtime::rsrun();
    let (b, id, _) = started(&rt, "sleep 100");
    let pf = b.dir.join("exec.pid");
    rt.run_detached(&[
        "exec",
        "-d",
        "--pid-file",
        pf.to_str().unwrap(),
        &id,
        "sleep",
        "77",
    ])
    .ok();
    let pid: i32 = std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));
    let argv = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(argv, "sleep\x0077\x00");
    let ps: Vec<i32> = serde_json::from_str(rt.run(&["ps", "-f", "json", &id]).ok()).unwrap();
    assert!(
        ps.contains(&pid),
        "exec'd process in the container cgroup: {ps:?}"
    );
    rt.run(&["delete", "-f", &id]).ok();
    assert!(
        wait_until(T, || !alive(pid)),
        "exec'd process survived delete -f"
    );
}

#[test]
fn exec_process_json_file() {
    let rt = Runtime::rsrun();
    let (b, id, _) = started(&rt, "sleep 100");
    let process = json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 1000},
        "args": ["sh", "-c", "echo $WHO; pwd; id -u; exit 5"],
        "env": ["PATH=/bin", "WHO=from-process-json"],
        "cwd": "/tmp"
    });
    let pf = b.dir.join("process.json");
    std::fs::write(&pf, process.to_string()).unwrap();
    let r = exec(&rt, &["--process", pf.to_str().unwrap(), &id]);
    assert_eq!(r.code, 5, "{r:?}");
    assert_eq!(r.stdout, "from-process-json\n/tmp\n1000\n");
}

#[test]
fn exec_with_tty_on_a_pty() {
    let rt = Runtime::rsrun();
    let (_b, id, _) = started(&rt, "sleep 100");
    let mut p = PtyChild::spawn(rt.cmd(&["exec", "-t", &id, "sh"]));
    p.write("tty; exit 4\n");
    let out = p.read_until("/dev/pts/", T);
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert_eq!(p.wait(T), 4, "{out:?}");
}

#[test]
fn exec_exit_code_and_stopped_container() {
    let rt = Runtime::rsrun();
    let (_b, id, pid) = started(&rt, "sleep 100");
    assert_eq!(exec(&rt, &[&id, "sh", "-c", "exit 9"]).code, 9);
    assert_eq!(exec(&rt, &[&id, "sh", "-c", "kill -9 $$"]).code, 137);
    rt.run(&["kill", &id, "KILL"]).ok();
    assert!(wait_until(T, || !alive(pid)));
    let err = exec(&rt, &[&id, "true"]).err().to_string();
    assert!(err.contains("stopped"), "{err}");
}

/// Runs `args` twice at once; returns (exit code, stderr) of each.
fn race(rt: &Runtime, args: &[&str]) -> Vec<(i32, String)> {
    let cs: Vec<Child> = (0..2)
        .map(|_| {
            rt.cmd(args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    cs.into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            (
                o.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .collect()
}

fn created(rt: &Runtime) -> (Bundle, String) {
    let mut b = Bundle::new();
    b.sh("sleep 100").save();
    let id = unique("race");
    rt.run_detached(&["create", "--bundle", b.path(), &id]).ok();
    (b, id)
}

#[test]
fn racing_start_and_delete_are_serialized() {
    let rt = Runtime::rsrun();
    for _ in 0..3 {
        let (b, id) = created(&rt);
        let starts = race(&rt, &["start", &id]);
        assert_eq!(
            starts.iter().filter(|(c, _)| *c == 0).count(),
            1,
            "exactly one start wins: {starts:?}"
        );
        assert!(
            starts.iter().all(|(c, e)| *c <= 1 && !e.contains("panick")),
            "{starts:?}"
        );
        assert_eq!(rt.status(&id), "running");

        let deletes = race(&rt, &["delete", "-f", &id]);
        assert!(deletes.iter().any(|(c, _)| *c == 0), "{deletes:?}");
        assert!(
            deletes
                .iter()
                .all(|(c, e)| *c <= 1 && !e.contains("panick")),
            "{deletes:?}"
        );
        assert_nothing_left(&rt, &b, &id);
    }
}

#[test]
fn racing_delete_loser_says_does_not_exist() {
    let rt = Runtime::rsrun();
    for _ in 0..5 {
        let (b, id) = created(&rt);
        let deletes = race(&rt, &["delete", "-f", &id]);
        for (c, e) in &deletes {
            assert!(
                *c == 0 || e.contains("does not exist"),
                "loser must say NotFound: {deletes:?}"
            );
        }
        assert_nothing_left(&rt, &b, &id);
    }
}
