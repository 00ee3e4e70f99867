//! `rsrun events`: the statistics of a running container (memory and pids
//! limits, memory held in /dev/shm, a busy loop's CPU time) checked against
//! the cgroup v1 files of this hybrid host read directly; the key paths
//! Debian's runc prints for the same container; the stream that ends when
//! the container stops; and runc's errors. The pure cgroup v2 equivalent runs
//! in a VM (cgroupv2.rs, integration/vm/stats_v2.sh).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use integration::*;
use serde_json::{json, Value};

const CG: &str = "/sys/fs/cgroup";
const MEM_LIMIT: u64 = 64 << 20;
const PIDS_LIMIT: u64 = 20;
/// What the container writes to its /dev/shm (tmpfs: charged to its memory cgroup).
const SHM_MIB: u64 = 16;

/// A busy loop (CPU time), 16 MiB in /dev/shm (memory), then "ready" and sleep.
fn script() -> String {
    format!(
        "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; \
         dd if=/dev/zero of=/dev/shm/fill bs=1M count={SHM_MIB} 2>/dev/null; \
         echo ready; exec sleep 1000"
    )
}

/// A started container of `rt` with the memory and pids limits, past "ready".
fn started(rt: &Runtime) -> (Bundle, String) {
    let mut b = Bundle::new();
    b.config["linux"]["resources"]["memory"] = json!({ "limit": MEM_LIMIT });
    b.config["linux"]["resources"]["pids"] = json!({ "limit": PIDS_LIMIT });
    b.sh(&script()).save();
    let id = unique("stats");
    create_logged(rt, &b, &id);
    rt.run(&["start", &id]).ok();
    let log = b.dir.join(format!("{id}.log"));
    let ready = wait_until(Duration::from_secs(30), || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.contains("ready"))
    });
    assert!(
        ready,
        "{id} never got ready: {:?}",
        std::fs::read_to_string(&log)
    );
    (b, id)
}

fn dir(controller: &str, b: &Bundle) -> PathBuf {
    Path::new(CG)
        .join(controller)
        .join(b.cgroups_path().trim_start_matches('/'))
}

fn read_u64(p: PathBuf) -> u64 {
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    s.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {s:?}: {e}", p.display()))
}

/// The value of `key` in a flat keyed file such as memory.stat.
fn stat_key(p: PathBuf, key: &str) -> u64 {
    let s = std::fs::read_to_string(&p).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{key} not in {}", p.display()))
}

/// `events --stats ID`, parsed; asserts the envelope.
fn stats_event(rt: &Runtime, id: &str) -> Value {
    let out = rt.run(&["events", "--stats", id]).ok().to_string();
    assert_eq!(out.lines().count(), 1, "one JSON line: {out}");
    let v: Value = serde_json::from_str(&out).expect("events --stats prints JSON");
    assert_eq!(v["type"], "stats", "{v}");
    assert_eq!(v["id"], json!(id), "{v}");
    v
}

fn num(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no number at {path} in {v}"))
}

#[test]
fn events_stats_match_the_cgroup_files() {
    let rt = Runtime::rsrun();
    let (b, id) = started(&rt);
    let usage_before = read_u64(dir("cpuacct", &b).join("cpuacct.usage"));
    let v = stats_event(&rt, &id);
    let usage_after = read_u64(dir("cpuacct", &b).join("cpuacct.usage"));
    let d = &v["data"];
    let mem = dir("memory", &b);

    // Limits: what the spec asked for, as the files show them.
    let limit = num(d, "/memory/usage/limit");
    assert_eq!(limit, MEM_LIMIT);
    assert_eq!(limit, read_u64(mem.join("memory.limit_in_bytes")));
    assert_eq!(num(d, "/pids/limit"), PIDS_LIMIT);
    assert_eq!(
        read_u64(dir("pids", &b).join("pids.max")),
        PIDS_LIMIT,
        "pids.max"
    );

    // Memory: the 16 MiB in /dev/shm are shmem of memory.stat, in usage and its peak.
    let shmem = num(d, "/memory/raw/shmem");
    assert_eq!(shmem, stat_key(mem.join("memory.stat"), "shmem"));
    assert!(shmem >= SHM_MIB << 20, "shmem {shmem}");
    let usage = num(d, "/memory/usage/usage");
    assert!(usage >= SHM_MIB << 20, "usage {usage}");
    assert!(num(d, "/memory/usage/max") >= usage);
    assert_eq!(
        num(d, "/memory/usage/failcnt"),
        read_u64(mem.join("memory.failcnt"))
    );
    assert_eq!(
        num(d, "/memory/cache"),
        stat_key(mem.join("memory.stat"), "cache")
    );

    // Pids: only `sleep` is left.
    let current = num(d, "/pids/current");
    assert_eq!(current, read_u64(dir("pids", &b).join("pids.current")));
    assert!(current > 0);

    // CPU: the busy loop's time, read between two reads of cpuacct.usage.
    let total = num(d, "/cpu/usage/total");
    assert!(total > 0);
    assert!(
        (usage_before..=usage_after).contains(&total),
        "{usage_before} <= {total} <= {usage_after}"
    );
    let percpu = d["cpu"]["usage"]["percpu"].as_array().unwrap();
    let sum: u64 = percpu.iter().map(|c| c.as_u64().unwrap()).sum();
    assert_eq!(sum, total, "percpu adds up to total");
    assert!(num(d, "/cpu/usage/user") + num(d, "/cpu/usage/kernel") > 0);
    assert_eq!(num(d, "/cpu/throttling/periods"), 0, "no quota set");

    rt.run(&["delete", "-f", &id]).ok();
    assert_nothing_left(&rt, &b, &id);
}

/// Every key path runc's `events --stats` prints in the sections we report
/// is in ours too (runc leaves zeros out, so runc's set is the smaller).
#[test]
fn events_stats_key_paths_cover_runcs() {
    fn paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
        if let Value::Object(m) = v {
            for (k, x) in m {
                let p = format!("{prefix}/{k}");
                // Raw memory.stat keys and huge page sizes are data, not schema.
                if !prefix.ends_with("/raw") && !prefix.ends_with("/hugetlb") {
                    paths(x, &p, out);
                }
                out.push(p);
            }
        }
    }
    let mut got = Vec::new();
    for rt in [Runtime::runc(), Runtime::rsrun()] {
        let (b, id) = started(&rt);
        let v = stats_event(&rt, &id);
        let mut p = Vec::new();
        for section in ["cpu", "memory", "pids", "blkio", "hugetlb"] {
            assert!(v["data"].get(section).is_some(), "{section} in {v}");
            paths(&v["data"][section], &format!("/{section}"), &mut p);
        }
        got.push(p);
        rt.run(&["delete", "-f", &id]).ok();
        drop(b);
    }
    let missing: Vec<&String> = got[0].iter().filter(|p| !got[1].contains(p)).collect();
    assert!(
        missing.is_empty(),
        "runc prints, rsrun does not: {missing:?}"
    );
}

#[test]
fn events_streams_until_the_container_stops() {
    let rt = Runtime::rsrun();
    let (b, id) = started(&rt);
    let mut child = rt
        .cmd(&["events", "--interval", "200ms", &id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out: std::os::fd::OwnedFd = child.stdout.take().unwrap().into();
    let seen = read_fd_until(&out, "\n{", Duration::from_secs(10));
    let first: Value = serde_json::from_str(seen.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["type"].as_str(), first["id"].as_str()),
        (Some("stats"), Some(id.as_str()))
    );
    assert!(num(&first["data"], "/pids/current") > 0);
    rt.run(&["kill", &id, "KILL"]).ok();
    let code = wait_child(&mut child, Duration::from_secs(10));
    assert_eq!(code, 0, "events ends with the container");
    rt.run(&["delete", &id]).ok();
    assert_nothing_left(&rt, &b, &id);
}

#[test]
fn events_errors_like_runc() {
    let rt = Runtime::rsrun();
    let r = rt.run(&["events", "--stats", "nosuch"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("nosuch does not exist"), "{r:?}");

    let mut b = Bundle::new();
    b.sh("exit 0").save();
    let id = unique("stopped");
    create_logged(&rt, &b, &id);
    rt.run(&["start", &id]).ok();
    rt.wait_status(&id, "stopped");
    for args in [&["events", "--stats", &id][..], &["events", &id][..]] {
        let r = rt.run(args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(
            r.stderr
                .contains(&format!("container with id {id} is not running")),
            "{r:?}"
        );
        assert!(r.stdout.is_empty(), "{r:?}");
    }
    for (interval, msg) in [("0s", "greater than 0"), ("5parsecs", "--interval")] {
        let r = rt.run(&["events", "--interval", interval, &id]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains(msg), "{interval}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "one-line error: {r:?}");
    }
    rt.run(&["delete", &id]).ok();
    assert_nothing_left(&rt, &b, &id);
}

/// An OOM kill inside the container (a child outgrowing the memory limit;
/// init lives on) is streamed as runc's `{"type":"oom","id":ID}` well
/// before the next stats sample is due.
#[test]
fn events_reports_oom_kills() {
    let rt = Runtime::rsrun();
    let mut b = Bundle::new();
    b.config["linux"]["resources"]["memory"] = json!({ "limit": 32 << 20 });
    b.sh("echo ready; sleep 1; dd if=/dev/zero of=/dev/null bs=256M count=1; exec sleep 1000")
        .save();
    let id = unique("oom");
    create_logged(&rt, &b, &id);
    let mut child = rt
        .cmd(&["events", "--interval", "60s", &id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out: std::os::fd::OwnedFd = child.stdout.take().unwrap().into();
    rt.run(&["start", &id]).ok();
    let seen = read_fd_until(&out, "\"oom\"", Duration::from_secs(20));
    let oom = seen
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "oom");
    assert_eq!(
        oom,
        Some(json!({"type": "oom", "id": id})),
        "stream so far: {seen:?}"
    );
    assert_eq!(
        rt.status(&id),
        "running",
        "init survived its child's OOM kill"
    );
    rt.run(&["kill", &id, "KILL"]).ok();
    let code = wait_child(&mut child, Duration::from_secs(10));
    assert_eq!(code, 0, "events ends with the container");
    rt.run(&["delete", &id]).ok();
    assert_nothing_left(&rt, &b, &id);
}
