//! `rsrun update` on a running container of this hybrid (cgroup v1) host:
//! runc's flags and `--resources -`, read back from the host's control
//! files; merging (a later update keeps what it does not name); invalid
//! values and values the kernel refuses change nothing; a lowered pids limit
//! stops a fork loop. The cgroup v2 equivalent runs in the VM (cgroupv2.rs,
//! integration/vm/update_v2.sh); through containerd: shim_update.rs.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use integration::*;
use serde_json::json;

/// A detached `sleep 600` container with a 256 MiB memory limit; returns its id.
fn sleeper(rt: &Runtime, b: &mut Bundle) -> String {
    b.config["process"]["args"] = json!(["sleep", "600"]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 268435456});
    b.config["linux"]["resources"]["pids"] = json!({"limit": 100});
    b.save();
    let id = unique("upd");
    rt.run_detached(&["run", "-d", "--bundle", b.path(), &id])
        .ok();
    id
}

/// A control file of the container's cgroup in v1 hierarchy `controller`.
fn cg(b: &Bundle, controller: &str, file: &str) -> String {
    let p = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(b.cgroups_path().trim_start_matches('/'))
        .join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// The control files the tests change, in one comparable value.
fn limits(b: &Bundle) -> Vec<String> {
    [
        ("memory", "memory.limit_in_bytes"),
        ("memory", "memory.soft_limit_in_bytes"),
        ("cpu", "cpu.shares"),
        ("cpu", "cpu.cfs_quota_us"),
        ("cpuset", "cpuset.cpus"),
        ("pids", "pids.max"),
    ]
    .iter()
    .map(|(c, f)| cg(b, c, f))
    .collect()
}

/// `rsrun update` with `stdin` written to its standard input.
fn update_stdin(rt: &Runtime, args: &[&str], stdin: &str) -> Run {
    let mut child = rt
        .cmd(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The resources saved in the container's state dir.
fn saved(rt: &Runtime, id: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(rt.root.join(id).join("config.json")).unwrap();
    let spec: serde_json::Value = serde_json::from_str(&text).unwrap();
    spec["linux"]["resources"].clone()
}

#[test]
fn update_flags_change_the_live_cgroup_and_merge() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let id = sleeper(&rt, &mut b);
    rt.run(&[
        "update",
        "--memory",
        "64m",
        "--cpu-quota",
        "20000",
        "--pids-limit",
        "7",
        &id,
    ])
    .ok();
    assert_eq!(cg(&b, "memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(cg(&b, "cpu", "cpu.cfs_quota_us"), "20000");
    assert_eq!(cg(&b, "pids", "pids.max"), "7");
    // A later update changes only what it names, in the cgroup and in what
    // is saved for the next one.
    rt.run(&["update", "--pids-limit", "9", "--cpu-share", "256", &id])
        .ok();
    assert_eq!(cg(&b, "memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(cg(&b, "cpu", "cpu.cfs_quota_us"), "20000");
    assert_eq!(cg(&b, "cpu", "cpu.shares"), "256");
    assert_eq!(cg(&b, "pids", "pids.max"), "9");
    let s = saved(&rt, &id);
    assert_eq!(s["memory"]["limit"], 67108864, "{s}");
    assert_eq!(s["cpu"]["quota"], 20000, "{s}");
    assert_eq!(s["cpu"]["shares"], 256, "{s}");
    assert_eq!(s["pids"]["limit"], 9, "{s}");
    assert_eq!(rt.status(&id), "running");
    // Unlimited again: -1 for memory (and so memory+swap) and pids.
    rt.run(&["update", "--memory", "-1", "--pids-limit", "-1", &id])
        .ok();
    assert_eq!(cg(&b, "pids", "pids.max"), "max");
    let unlimited: u64 = cg(&b, "memory", "memory.limit_in_bytes").parse().unwrap();
    assert!(unlimited > 1 << 60, "{unlimited}");
}

#[test]
fn update_resources_from_stdin_and_file() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let id = sleeper(&rt, &mut b);
    let r = update_stdin(
        &rt,
        &["update", "--resources", "-", &id],
        r#"{"memory":{"limit":33554432,"reservation":16777216,"swap":67108864},
            "cpu":{"shares":300,"cpus":"0"},"pids":{"limit":11}}"#,
    );
    r.ok();
    assert_eq!(
        limits(&b),
        ["33554432", "16777216", "300", "-1", "0", "11"],
        "{r:?}"
    );
    assert_eq!(cg(&b, "memory", "memory.memsw.limit_in_bytes"), "67108864");
    // Raising memory and memory+swap together: memsw must go first.
    let file = b.dir.join("resources.json");
    std::fs::write(&file, r#"{"memory":{"limit":134217728,"swap":268435456}}"#).unwrap();
    // With --resources the other flags are ignored (as in runc).
    rt.run(&[
        "update",
        "-r",
        file.to_str().unwrap(),
        "--pids-limit",
        "3",
        &id,
    ])
    .ok();
    assert_eq!(cg(&b, "memory", "memory.limit_in_bytes"), "134217728");
    assert_eq!(cg(&b, "memory", "memory.memsw.limit_in_bytes"), "268435456");
    assert_eq!(cg(&b, "pids", "pids.max"), "11");
}

#[test]
fn update_bad_input_changes_nothing() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let id = sleeper(&rt, &mut b);
    let before = limits(&b);
    let cases: [(&[&str], &str); 6] = [
        (&["--memory", "32m", "--cpuset-cpus", "x"], "cpu.cpus"),
        (&["--cpu-share", "-5"], "cpu-share"),
        (&["--memory", "12q"], "invalid value for memory"),
        (&["--memory", "32m", "--memory-swap", "16m"], "memory.swap"),
        // Well-formed but refused by the kernel after memory was written:
        // the memory limit is put back.
        (&["--memory", "32m", "--cpuset-cpus", "4000"], "cpuset.cpus"),
        (&["--l3-cache-schema", "L3:0=f"], "Intel RDT/CAT"),
    ];
    for (flags, needle) in cases {
        let mut args = vec!["update"];
        args.extend(flags);
        args.push(&id);
        let r = rt.run(&args);
        assert_eq!(r.code, 1, "{flags:?}: {r:?}");
        assert!(r.stderr.contains(needle), "{flags:?}: {r:?}");
        assert_eq!(r.stderr.trim().lines().count(), 1, "one line: {r:?}");
        assert_eq!(limits(&b), before, "{flags:?} changed the cgroup");
    }
    let r = update_stdin(
        &rt,
        &["update", "--resources", "-", &id],
        r#"{"memory":{"limit":-5},"pids":{"limit":3}}"#,
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("memory.limit"), "{r:?}");
    let r = update_stdin(
        &rt,
        &["update", "--resources", "-", &id],
        r#"{"cpu":{"shares":-5}}"#,
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("cpu.shares"), "{r:?}");
    assert_eq!(limits(&b), before);
    assert_eq!(saved(&rt, &id)["pids"]["limit"], 100);
    assert_eq!(rt.status(&id), "running");
}

#[test]
fn update_unknown_or_stopped_container_fails() {
    let rt = Runtime::rsrun();
    let r = rt.run(&["update", "--memory", "64m", "nosuch"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("does not exist"), "{r:?}");
    let b = Bundle::new();
    b.save();
    let id = unique("updstop");
    rt.run_detached(&["run", "-d", "--bundle", b.path(), &id])
        .ok();
    rt.wait_status(&id, "stopped");
    let r = rt.run(&["update", "--memory", "64m", &id]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("container not running"), "{r:?}");
}

#[test]
fn update_memory_below_usage_is_refused_and_explained() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let id = sleeper(&rt, &mut b);
    // 40 MiB of tmpfs is charged to the container and, without swap, cannot
    // be reclaimed.
    rt.run(&[
        "exec",
        &id,
        "dd",
        "if=/dev/zero",
        "of=/dev/shm/fill",
        "bs=1M",
        "count=40",
    ])
    .ok();
    let has_swap = std::fs::read_to_string("/proc/swaps")
        .unwrap()
        .lines()
        .count()
        > 1;
    let r = rt.run(&["update", "--memory", "8m", &id]);
    if has_swap {
        eprintln!("host has swap: the kernel may swap the tmpfs out instead ({r:?})");
        return;
    }
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("memory.limit") && r.stderr.contains("current memory use"),
        "{r:?}"
    );
    assert_eq!(cg(&b, "memory", "memory.limit_in_bytes"), "268435456");
    assert_eq!(saved(&rt, &id)["memory"]["limit"], 268435456);
}

/// Forks ten background sleeps, then says "done".
const FORK_LOOP: &str = "for i in $(seq 10); do sleep 600 >/dev/null 2>&1 & done; echo done";

#[test]
fn lowered_pids_limit_stops_a_fork_loop() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let id = sleeper(&rt, &mut b);
    rt.run(&["update", "--pids-limit", "5", &id]).ok();
    // init + this shell + 3 sleeps = 5: the 4th sleep cannot be forked,
    // and busybox sh gives up (exit 2).
    let r = rt.run(&["exec", &id, "sh", "-c", FORK_LOOP]);
    assert!(r.stderr.contains("can't fork"), "{r:?}");
    assert_eq!((r.code, r.stdout.as_str()), (2, ""), "{r:?}");
    let procs = cg(&b, "pids", "cgroup.procs");
    assert_eq!(procs.lines().count(), 4, "init and 3 sleeps: {procs}");
    assert_ne!(cg(&b, "pids", "pids.events"), "max 0", "the limit was hit");
    // Raising it lets the same loop run to the end.
    rt.run(&["update", "--pids-limit", "50", &id]).ok();
    let r = rt.run(&["exec", &id, "sh", "-c", FORK_LOOP]);
    assert_eq!((r.stdout.trim(), r.stderr.as_str()), ("done", ""), "{r:?}");
    assert_eq!(cg(&b, "pids", "cgroup.procs").lines().count(), 14);
}
