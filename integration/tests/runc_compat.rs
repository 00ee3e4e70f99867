//! rsrun against Debian's runc 1.1.5 as the reference: the same command on
//! the same kind of bundle must give the same bytes, keys, statuses and exit
//! codes. Each runtime gets its own root and bundle (so its own cgroup).

use std::time::Duration;

use integration::*;
use serde_json::Value;

const T: Duration = Duration::from_secs(10);

/// Both runtimes, reference first.
fn both() -> [Runtime; 2] {
    [Runtime::runc(), Runtime::rsrun()]
}

/// A scratch directory removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let d = std::env::temp_dir().join(unique("rstest-scratch"));
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spec_bytes(rt: &Runtime, rootless: bool) -> Vec<u8> {
    let dir = Scratch::new();
    let mut args = vec!["spec", "--bundle", dir.0.to_str().unwrap()];
    if rootless {
        args.push("--rootless");
    }
    rt.run(&args).ok();
    std::fs::read(dir.0.join("config.json")).unwrap()
}

#[test]
fn spec_is_byte_identical() {
    let [runc, rs] = both();
    for rootless in [false, true] {
        let (want, got) = (spec_bytes(&runc, rootless), spec_bytes(&rs, rootless));
        assert!(
            want == got,
            "spec (rootless={rootless}) differs:\n--- runc\n{}\n--- rsrun\n{}",
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(&got)
        );
    }
}

#[test]
fn spec_refuses_to_overwrite_like_runc() {
    let [runc, rs] = both();
    let dir = Scratch::new();
    std::fs::write(dir.0.join("config.json"), "keep").unwrap();
    let args = ["spec", "--bundle", dir.0.to_str().unwrap()];
    let (a, b) = (runc.run(&args), rs.run(&args));
    assert_eq!((a.code, b.code), (1, 1), "runc {a:?} rsrun {b:?}");
    assert!(b.stderr.contains("exists"), "{b:?}");
    assert_eq!(
        std::fs::read_to_string(dir.0.join("config.json")).unwrap(),
        "keep"
    );
}

/// (sorted keys, status) of `state` for one step.
fn snapshot(rt: &Runtime, id: &str) -> (Vec<String>, String) {
    let v = rt.state(id);
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    let status = v["status"].as_str().unwrap().to_string();
    let pid = v["pid"].as_i64().unwrap();
    assert_eq!(
        status == "stopped",
        pid == 0,
        "{}: pid {pid} with status {status}",
        rt.bin.display()
    );
    (keys, status)
}

/// Drives create/start/kill/delete and records each step's state.
fn lifecycle(rt: &Runtime) -> Vec<(Vec<String>, String)> {
    let mut b = Bundle::new();
    b.sh("sleep 100").save();
    let id = unique("compat");
    let mut steps = Vec::new();
    rt.run_detached(&["create", "--bundle", b.path(), &id]).ok();
    steps.push(snapshot(rt, &id));
    rt.run(&["start", &id]).ok();
    steps.push(snapshot(rt, &id));
    rt.run(&["kill", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped");
    steps.push(snapshot(rt, &id));
    rt.run(&["delete", &id]).ok();
    assert!(rt.ids().is_empty());
    assert_nothing_left(rt, &b, &id);
    steps
}

#[test]
fn state_keys_and_status_transitions_match() {
    let [runc, rs] = both();
    let want = lifecycle(&runc);
    let got = lifecycle(&rs);
    let statuses: Vec<&str> = want.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(
        statuses,
        ["created", "running", "stopped"],
        "runc reference"
    );
    assert_eq!(got, want);
}

#[test]
fn list_matches_on_empty_root_and_header() {
    let [runc, rs] = both();
    assert_eq!(
        rs.run(&["list"]).ok(),
        runc.run(&["list"]).ok(),
        "empty table"
    );
    let (a, b) = (
        runc.run(&["list", "--format", "json"]),
        rs.run(&["list", "--format", "json"]),
    );
    assert_eq!(a.ok(), "null\n");
    assert_eq!(b.ok(), a.ok());
    assert_eq!(rs.run(&["list", "-q"]).ok(), runc.run(&["list", "-q"]).ok());

    // With one container: same header words and same json keys.
    let mut keys = Vec::new();
    let mut headers = Vec::new();
    for rt in [&runc, &rs] {
        let mut b = Bundle::new();
        b.sh("sleep 100").save();
        let id = unique("list");
        rt.run_detached(&["create", "--bundle", b.path(), &id]).ok();
        let table = rt.run(&["list"]).ok().to_string();
        headers.push(
            table
                .lines()
                .next()
                .unwrap()
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>(),
        );
        let v: Value = serde_json::from_str(rt.run(&["list", "--format", "json"]).ok()).unwrap();
        let mut k: Vec<String> = v[0].as_object().unwrap().keys().cloned().collect();
        k.sort();
        keys.push(k);
        assert_eq!(rt.run(&["list", "-q"]).ok(), format!("{id}\n"));
        rt.run(&["delete", "-f", &id]).ok();
        assert_nothing_left(rt, &b, &id);
    }
    assert_eq!(headers[1], headers[0]);
    assert_eq!(keys[1], keys[0], "list --format json keys");
}

fn run_code(rt: &Runtime, script: &str) -> i32 {
    let mut b = Bundle::new();
    b.sh(script).save();
    let id = unique("code");
    let r = rt.run_bundle(&b, &id);
    assert!(rt.ids().is_empty(), "{}: run left {id}", rt.bin.display());
    assert_nothing_left(rt, &b, &id);
    r.code
}

/// `run` in the foreground, SIGKILLing init from outside once it is up.
fn killed_run_code(rt: &Runtime) -> i32 {
    let mut b = Bundle::new();
    b.sh("echo ready; exec sleep 100").save();
    let id = unique("code");
    let (mut child, _out) = rt.spawn_run_ready(&b, &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    let code = wait_child(&mut child, T);
    assert_nothing_left(rt, &b, &id);
    code
}

#[test]
fn run_exit_codes_match() {
    let [runc, rs] = both();
    for (script, code) in [("true", 0), ("exit 7", 7), ("exit 255", 255)] {
        assert_eq!(run_code(&runc, script), code, "runc reference: {script}");
        assert_eq!(run_code(&rs, script), code, "rsrun: {script}");
    }
    assert_eq!(killed_run_code(&runc), 137, "runc reference");
    assert_eq!(killed_run_code(&rs), 137);
}

#[test]
fn error_exit_codes_match() {
    let [runc, rs] = both();
    let ghost = "no-such-container";
    let unknown: [&[&str]; 5] = [
        &["state", ghost],
        &["start", ghost],
        &["kill", ghost, "KILL"],
        &["delete", ghost],
        &["ps", ghost],
    ];
    for args in unknown {
        let (a, b) = (runc.run(args), rs.run(args));
        assert_eq!(a.code, 1, "runc reference {args:?}: {a:?}");
        assert_eq!(b.code, a.code, "{args:?}: {b:?}");
        assert!(
            a.stderr.contains("does not exist") && b.stderr.contains("does not exist"),
            "{a:?} {b:?}"
        );
    }

    // Misuse of a running container: same refusals.
    let mut bundles = Vec::new();
    for rt in [&runc, &rs] {
        let mut b = Bundle::new();
        b.sh("sleep 100").save();
        rt.run_detached(&["run", "-d", "--bundle", b.path(), "busy"])
            .ok();
        bundles.push(b);
    }
    let misuse: [&[&str]; 4] = [
        &["start", "busy"],
        &["delete", "busy"],
        &["kill", "busy", "NOPE"],
        &["run", "--bundle", "/nonexistent", "busy"],
    ];
    for args in misuse {
        let (a, b) = (runc.run(args), rs.run(args));
        assert_ne!(a.code, 0, "runc reference {args:?}");
        assert_eq!(b.code, a.code, "{args:?}: runc {a:?} rsrun {b:?}");
    }
    assert_eq!(runc.status("busy"), "running");
    assert_eq!(rs.status("busy"), "running");
    for (rt, b) in [&runc, &rs].into_iter().zip(&bundles) {
        rt.run(&["delete", "-f", "busy"]).ok();
        assert_nothing_left(rt, b, "busy");
    }
}

#[test]
fn exec_failure_exit_code_matches_runc() {
    let [runc, rs] = both();
    let (a, b) = (
        runc.run(&["exec", "ghost", "true"]),
        rs.run(&["exec", "ghost", "true"]),
    );
    assert_eq!(a.code, 255, "runc reference: {a:?}");
    assert!(b.stderr.contains("does not exist"), "{b:?}");
    assert_eq!(b.code, a.code, "{b:?}");
}

#[test]
fn features_lists_what_runc_lists_where_we_match() {
    let ours: serde_json::Value =
        serde_json::from_str(Runtime::rsrun().run(&["features"]).ok()).unwrap();
    let theirs: serde_json::Value =
        serde_json::from_str(Runtime::runc().run(&["features"]).ok()).unwrap();
    for key in ["ociVersionMin", "ociVersionMax", "hooks", "mountOptions"] {
        assert_eq!(ours[key], theirs[key], "{key}");
    }
    assert_eq!(
        ours["linux"]["capabilities"],
        theirs["linux"]["capabilities"]
    );
    assert_eq!(
        ours["linux"]["seccomp"]["operators"],
        theirs["linux"]["seccomp"]["operators"]
    );
    assert_eq!(ours["linux"]["cgroup"]["v1"], true);
    assert_eq!(ours["linux"]["cgroup"]["v2"], true);
}
