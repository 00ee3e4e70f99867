//! `rsrun pause` / `rsrun resume` on this (hybrid, v1 freezer) host: a
//! counter loop inside the container stops advancing while paused and
//! advances again after resume (read from the host through
//! /proc/<pid>/root/tmp/c, a tmpfs of the container); `state` and `list`
//! say "paused" as runc does; a paused container can be killed and
//! force-deleted leaving nothing; wrong states fail with runc's one-line
//! messages and exit code 1 (runc is run beside us as the reference).

use std::path::PathBuf;
use std::time::Duration;

use integration::counter::{self, assert_advances, raw_counter, read_counter};
use integration::*;
use serde_json::json;

const T: Duration = Duration::from_secs(10);

/// A bundle running the counter loop with a tmpfs on /tmp (the root is
/// read-only in the default spec).
fn counter_bundle() -> Bundle {
    let mut b = Bundle::new();
    b.sh(counter::SCRIPT);
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                     "options": ["nosuid", "nodev", "mode=1777"]}),
    );
    b.save();
    b
}

/// `run -d` of `b` as a fresh id; returns the id and init's pid.
fn run_detached(rt: &Runtime, b: &Bundle) -> (String, i32) {
    let id = unique("fz");
    rt.run_detached(&["run", "-d", "--bundle", b.path(), &id])
        .ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    (id, pid)
}

/// The freezer.state of the bundle's cgroup on this host.
fn freezer_state(b: &Bundle) -> String {
    let rel = b.cgroups_path();
    let path = PathBuf::from("/sys/fs/cgroup/freezer").join(rel.trim_start_matches('/'));
    std::fs::read_to_string(path.join("freezer.state"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The STATUS column of `list` for `id`.
fn listed_status(rt: &Runtime, id: &str) -> String {
    let out = rt.run(&["list"]).ok().to_string();
    let row = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .unwrap_or_else(|| panic!("{id} not listed: {out}"));
    row.split_whitespace().nth(2).unwrap().to_string()
}

#[test]
fn pause_stops_the_counter_and_resume_restarts_it() {
    let rt = Runtime::rsrun();
    let b = counter_bundle();
    let (id, pid) = run_detached(&rt, &b);
    let first = read_counter(pid);
    assert_advances(pid, first);
    assert_eq!(freezer_state(&b), "THAWED");

    let r = rt.run(&["pause", &id]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
    assert_eq!(rt.status(&id), "paused");
    assert_eq!(listed_status(&rt, &id), "paused");
    let json = rt.run(&["list", "--format", "json"]).ok().to_string();
    assert!(json.contains(r#""status":"paused""#), "{json}");
    assert_eq!(
        rt.state(&id)["pid"],
        json!(pid),
        "a paused init keeps its pid"
    );
    assert_eq!(freezer_state(&b), "FROZEN");
    // Frozen: the file stays put over half a second.
    let frozen = raw_counter(pid);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(raw_counter(pid), frozen, "counter moved while paused");
    let frozen_at = frozen.trim().parse().unwrap_or(0);

    // runc's checks: no second pause, no exec (runc exits 255 there).
    let again = rt.run(&["pause", &id]);
    assert_eq!(again.code, 1, "{again:?}");
    assert_eq!(again.stderr, "rsrun: container not running\n");
    let exec = rt.run(&["exec", &id, "true"]);
    assert_eq!(exec.code, 255, "{exec:?}");
    assert!(exec.stderr.contains("paused"), "{exec:?}");
    assert_eq!(raw_counter(pid), frozen, "counter moved while paused");

    let r = rt.run(&["resume", &id]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
    assert_eq!(rt.status(&id), "running");
    assert_eq!(freezer_state(&b), "THAWED");
    assert_advances(pid, frozen_at);
    let again = rt.run(&["resume", &id]);
    assert_eq!(again.code, 1, "{again:?}");
    assert_eq!(again.stderr, "rsrun: container not paused\n");

    rt.run(&["delete", "-f", &id]).ok();
    assert_nothing_left(&rt, &b, &id);
}

/// SIGKILL of a paused container kills it at once (the v1 freezer holds
/// even SIGKILL until thawed: kill thaws after sending it), and a plain
/// `delete` then removes everything.
#[test]
fn kill_of_a_paused_container_then_delete() {
    let rt = Runtime::rsrun();
    let b = counter_bundle();
    let (id, pid) = run_detached(&rt, &b);
    rt.run(&["pause", &id]).ok();
    assert_eq!(rt.status(&id), "paused");
    rt.run(&["kill", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped");
    assert!(wait_until(T, || !alive(pid)), "init {pid} outlived SIGKILL");
    rt.run(&["delete", &id]).ok();
    assert_nothing_left(&rt, &b, &id);
}

#[test]
fn delete_force_of_a_paused_container_leaves_nothing() {
    let rt = Runtime::rsrun();
    let b = counter_bundle();
    let (id, pid) = run_detached(&rt, &b);
    rt.run(&["pause", &id]).ok();
    assert_eq!(freezer_state(&b), "FROZEN");
    // Not without -f, as runc.
    let r = rt.run(&["delete", &id]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("paused"), "{r:?}");
    let r = rt.run(&["delete", "-f", &id]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:?}");
    assert!(
        wait_until(T, || !alive(pid)),
        "init {pid} outlived delete -f"
    );
    assert_nothing_left(&rt, &b, &id);
}

/// As runc: a created container can be paused (and resumes to created,
/// then starts normally).
#[test]
fn pause_of_a_created_container_as_runc() {
    let rt = Runtime::rsrun();
    let b = counter_bundle();
    let id = unique("fzc");
    create_logged(&rt, &b, &id);
    rt.run(&["pause", &id]).ok();
    assert_eq!(rt.status(&id), "paused");
    rt.run(&["resume", &id]).ok();
    assert_eq!(rt.status(&id), "created");
    rt.run(&["start", &id]).ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    assert_advances(pid, 0);
    rt.run(&["delete", "-f", &id]).ok();
    assert_nothing_left(&rt, &b, &id);
}

/// pause/resume in the wrong state: one line on stderr, exit 1, the same
/// codes as runc, and nothing changed or left behind.
#[test]
fn pause_and_resume_in_wrong_states_fail_like_runc() {
    for rt in [Runtime::rsrun(), Runtime::runc()] {
        let runc = rt.bin == std::path::Path::new("runc");
        let b = Bundle::new(); // `true`: stopped right after run -d
        b.save();
        let (id, _) = run_detached(&rt, &b);
        rt.wait_status(&id, "stopped");
        let r = rt.run(&["pause", &id]);
        assert_eq!(r.code, 1, "{:?} pause stopped: {r:?}", rt.bin);
        assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
        assert!(r.stderr.contains("container not running"), "{r:?}");
        let r = rt.run(&["resume", &id]);
        assert_eq!(r.code, 1, "{:?} resume stopped: {r:?}", rt.bin);
        assert!(r.stderr.contains("container not paused"), "{r:?}");
        assert_eq!(rt.status(&id), "stopped");
        let r = rt.run(&["pause", "no-such-container"]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains("does not exist"), "{r:?}");
        let r = rt.run(&["resume", "no-such-container"]);
        assert_eq!(r.code, 1, "{r:?}");
        if !runc {
            assert_eq!(
                r.stderr,
                "rsrun: container no-such-container does not exist\n"
            );
            assert_eq!(
                rt.run(&["pause", &id]).stderr,
                "rsrun: container not running\n"
            );
        }
        rt.run(&["delete", &id]).ok();
        assert_nothing_left(&rt, &b, &id);
    }
}
