//! Bad input: every refusal is one line on stderr with a non-zero exit that
//! says what is wrong, and leaves nothing behind (state dir, cgroup,
//! process, host mount).

use std::time::Duration;

use integration::*;
use serde_json::json;

/// `create` (or `run`) of `b` must fail with stderr containing every
/// `needle`, as one line, and leave nothing behind. Returns stderr.
fn refused(rt: &Runtime, b: &Bundle, verb: &str, needles: &[&str]) -> String {
    let id = unique("bad");
    let r = rt.run_detached(&[verb, "--bundle", b.path(), &id]);
    let err = r.err().to_string();
    for n in needles {
        assert!(err.contains(n), "{verb}: stderr lacks {n:?}: {err:?}");
    }
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{verb}: one-line error: {err:?}"
    );
    assert!(
        rt.ids().is_empty(),
        "{verb}: container listed after failure"
    );
    assert_nothing_left(rt, b, &id);
    err
}

fn both(rt: &Runtime, b: &Bundle, needles: &[&str]) {
    refused(rt, b, "create", needles);
    refused(rt, b, "run", needles);
}

#[test]
fn malformed_config_json() {
    let rt = Runtime::rsrun();
    let b = Bundle::new();
    std::fs::write(
        b.dir.join("config.json"),
        "{\"ociVersion\": \"1.0.2\", not json",
    )
    .unwrap();
    both(&rt, &b, &["config.json"]);
}

#[test]
fn wrong_typed_field_is_named() {
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    b.config["process"]["args"] = json!("sh -c true");
    b.save();
    both(&rt, &b, &["process.args"]);
}

#[test]
fn missing_rootfs_dir() {
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    b.config["root"]["path"] = json!("no-such-rootfs");
    b.save();
    both(&rt, &b, &["root.path", "no-such-rootfs"]);
}

#[test]
fn unknown_namespace_type_is_named_by_index() {
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.push(json!({"type": "bogus"}));
    let n = ns.len() - 1;
    b.save();
    both(&rt, &b, &[&format!("linux.namespaces[{n}].type")]);
}

#[test]
fn duplicate_id_is_refused_and_keeps_the_first() {
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    b.sh("sleep 100").save();
    let id = unique("dup");
    rt.run_detached(&["create", "--bundle", b.path(), &id]).ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    let other = Bundle::new();
    other.save();
    for verb in ["create", "run"] {
        let r = rt.run_detached(&[verb, "--bundle", other.path(), &id]);
        let err = r.err();
        assert!(err.contains("already exists"), "{verb}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
        assert!(
            !cgroup_exists(&other.cgroups_path()),
            "{verb} made a cgroup"
        );
    }
    let st = rt.state(&id);
    assert_eq!(
        (st["status"].as_str(), st["pid"].as_i64()),
        (Some("created"), Some(pid as i64))
    );
    assert_eq!(
        st["bundle"],
        json!(b.path()),
        "the first container is untouched"
    );
    rt.run(&["start", &id]).ok();
    assert_eq!(rt.status(&id), "running");
}

#[test]
fn unknown_container_does_not_exist() {
    let rt = Runtime::rsrun();
    let id = unique("ghost");
    let cases: [(&[&str], i32); 7] = [
        (&["state", &id], 1),
        (&["start", &id], 1),
        (&["kill", &id, "KILL"], 1),
        (&["delete", &id], 1),
        // runc exits 255 when exec itself fails.
        (&["exec", &id, "true"], 255),
        (&["ps", &id], 1),
        (&["kill", "--all", &id, "KILL"], 1),
    ];
    for (args, code) in cases {
        let r = rt.run(args);
        assert_eq!(r.code, code, "{args:?}: {r:?}");
        assert!(r.stderr.contains("does not exist"), "{args:?}: {r:?}");
        assert_eq!(r.stderr.trim_end().lines().count(), 1, "{args:?}: {r:?}");
    }
    // As runc: `delete -f` of a container that does not exist succeeds quietly.
    let r = rt.run(&["delete", "-f", &id]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:?}");
    assert!(!rt.root.join(&id).exists());
}

#[test]
fn bad_signal_changes_nothing() {
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    b.sh("sleep 100").save();
    let id = unique("sig");
    rt.run_detached(&["run", "-d", "--bundle", b.path(), &id])
        .ok();
    for bad in ["SIGNOPE", "65", "KILLL"] {
        for all in [false, true] {
            let mut args = vec!["kill"];
            if all {
                args.push("--all");
            }
            args.extend([id.as_str(), bad]);
            let r = rt.run(&args);
            assert_ne!(r.code, 0, "{args:?}");
            assert!(r.stderr.contains(bad), "error names the signal: {r:?}");
        }
    }
    assert_eq!(rt.status(&id), "running");
}

#[test]
fn unknown_fs_type_names_the_mount_destination() {
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    let m = json!({"destination": "/mnt/wherever", "type": "nosuchfs", "source": "none"});
    b.config["mounts"].as_array_mut().unwrap().push(m);
    b.save();
    let err = refused(&rt, &b, "create", &["/mnt/wherever"]);
    assert!(
        !err.trim_end().ends_with("exit status 1"),
        "the cause comes from init: {err}"
    );
    refused(&rt, &b, "run", &["/mnt/wherever"]);
}

#[test]
fn missing_executable() {
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    b.config["process"]["args"] = json!(["no-such-binary", "x"]);
    b.save();
    both(&rt, &b, &["executable file not found", "no-such-binary"]);
    b.config["process"]["args"] = json!(["/bin/no-such-binary"]);
    b.save();
    refused(&rt, &b, "run", &["/bin/no-such-binary"]);
}

#[test]
fn cwd_through_proc_self_fd_cannot_escape() {
    // CVE-2024-21626: an fd leaked into init could make cwd a host directory.
    // After climbing `..` from cwd we must land on the container's own root.
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    let up = "../".repeat(40);
    b.sh(&format!("cd -P {up} && stat -c %d:%i . / && pwd -P"));
    for n in 3..=10 {
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        b.save();
        let id = unique("cwd");
        let r = rt.run_detached(&["run", "--bundle", b.path(), &id]);
        if r.code == 0 {
            let lines: Vec<&str> = r.stdout.lines().collect();
            assert_eq!(lines.len(), 3, "fd {n}: {r:?}");
            assert_eq!(
                lines[0], lines[1],
                "fd {n}: cwd escaped the container root: {r:?}"
            );
            assert_eq!(lines[2], "/", "fd {n}: {r:?}");
        } else {
            assert_eq!(r.stderr.trim_end().lines().count(), 1, "fd {n}: {r:?}");
        }
        assert_nothing_left(&rt, &b, &id);
    }
}

#[test]
fn proc_on_a_symlink_is_refused() {
    let rt = Runtime::rsrun();
    let b = Bundle::new();
    b.save();
    let proc_dir = b.rootfs().join("proc");
    std::fs::remove_dir(&proc_dir).unwrap();
    std::os::unix::fs::symlink("tmp", &proc_dir).unwrap();
    both(&rt, &b, &["must be mounted on ordinary directory"]);
    assert!(
        std::fs::read_dir(b.rootfs().join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "nothing mounted via the link"
    );
}

#[test]
fn terminal_without_console_socket_is_refused_by_create() {
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    b.config["process"]["terminal"] = json!(true);
    b.save();
    refused(&rt, &b, "create", &["console socket"]);
    let id = unique("tty");
    let r = rt.run_detached(&["run", "-d", "--bundle", b.path(), &id]);
    assert!(r.err().contains("console socket"), "{r:?}");
    assert_nothing_left(&rt, &b, &id);
}

#[test]
fn failed_creates_leave_the_root_reusable() {
    // After all kinds of failures, the same id still works.
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    let id = unique("reuse");
    b.config["process"]["args"] = json!(["no-such-binary"]);
    b.save();
    rt.run_detached(&["create", "--bundle", b.path(), &id])
        .err();
    b.sh("exit 0").save();
    let r = rt.run_bundle(&b, &id);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(wait_until(Duration::from_secs(2), || rt.ids().is_empty()));
}

/// An AppArmor profile the engine cannot apply is refused, never ignored
/// (this host has no AppArmor; runc refuses the same config).
#[test]
fn apparmor_profile_is_refused_not_ignored() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    b.config["process"]["apparmorProfile"] = serde_json::json!("docker-default");
    b.save();
    let id = unique("aa");
    let r = rt.run(&["run", "--bundle", b.path(), &id]);
    assert!(r.err().contains("apparmorProfile"), "{r:?}");
    assert_eq!(r.stderr.trim_end().lines().count(), 1, "{r:?}");
    assert_nothing_left(&rt, &b, &id);
    let r = Runtime::runc().run(&["run", "--bundle", b.path(), &unique("aa-runc")]);
    assert_ne!(r.code, 0, "runc refuses it too: {r:?}");
}
