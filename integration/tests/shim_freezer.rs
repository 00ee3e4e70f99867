//! Pause and Resume through containerd and `containerd-shim-rs-v2`:
//! `ctr task pause` freezes a counter loop (read from the host through
//! /proc/<pid>/root/tmp/c), `ctr task ls` says PAUSED then RUNNING,
//! subscribers see /tasks/paused and /tasks/resumed, wrong states are
//! refused, and a paused task can be killed and removed leaving nothing.

use std::time::Duration;

use integration::counter::{self, assert_advances, raw_counter, read_counter};
use integration::*;

const T: Duration = Duration::from_secs(10);

#[test]
fn ctr_pause_and_resume_a_task() {
    let ctrd = Ctrd::start("rstest-shimf");
    let b = Bundle::new();
    let (mut events, events_path) = ctrd.record_events();
    let id = "counter";
    let r = ctrd.run(&["-d"], &b.rootfs(), id, &["sh", "-c", counter::SCRIPT]);
    assert_eq!(r.code, 0, "{r:?}\n{}", ctrd.log());
    let pid = ctrd.task(id).expect("task listed").pid;
    let first = read_counter(pid);
    assert_advances(pid, first);

    let r = ctrd.ctr(&["task", "pause", id]);
    assert_eq!(r.code, 0, "{r:?}\n{}", ctrd.log());
    assert_eq!(ctrd.task(id).unwrap().status, "PAUSED");
    let frozen = raw_counter(pid);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(raw_counter(pid), frozen, "counter moved while paused");
    let frozen_at = frozen.trim().parse().unwrap_or(0);
    // Pausing twice is refused (the engine: container not running).
    let again = ctrd.ctr(&["task", "pause", id]);
    assert_ne!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("not running"), "{again:?}");
    assert_eq!(ctrd.task(id).unwrap().status, "PAUSED");

    let r = ctrd.ctr(&["task", "resume", id]);
    assert_eq!(r.code, 0, "{r:?}\n{}", ctrd.log());
    assert_eq!(ctrd.task(id).unwrap().status, "RUNNING");
    assert_advances(pid, frozen_at);
    let again = ctrd.ctr(&["task", "resume", id]);
    assert_ne!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("not paused"), "{again:?}");

    let topic_seen = |topic: &str| {
        std::fs::read_to_string(&events_path).is_ok_and(|e| {
            e.lines()
                .any(|l| l.contains(&ctrd.ns) && l.contains(topic) && l.contains(id))
        })
    };
    let seen = wait_until(T, || {
        topic_seen("/tasks/paused") && topic_seen("/tasks/resumed")
    });
    let _ = events.kill();
    let _ = events.wait();
    let log = std::fs::read_to_string(&events_path).unwrap_or_default();
    assert!(seen, "no /tasks/paused + /tasks/resumed: {log}");
    let paused_at = log.find("/tasks/paused").unwrap();
    let resumed_at = log.find("/tasks/resumed").unwrap();
    assert!(paused_at < resumed_at, "events out of order: {log}");

    let shims = ctrd.shims();
    assert_eq!(shims.len(), 1);
    assert_eq!(threads(shims[0]), 1, "the server stays single-threaded");
    ctrd.kill_and_remove(id);
    ctrd.assert_gone(id);
}

/// SIGKILL of a paused task: the task stops (the v1 freezer holds SIGKILL
/// until the engine thaws), and `task rm` leaves nothing. A task paused
/// twice over is removed with `task rm -f` too.
#[test]
fn paused_task_can_be_killed_and_removed() {
    let ctrd = Ctrd::start("rstest-shimf");
    let b = Bundle::new();
    for (id, force) in [("killed", false), ("forced", true)] {
        let r = ctrd.run(&["-d"], &b.rootfs(), id, &["sh", "-c", counter::SCRIPT]);
        assert_eq!(r.code, 0, "{r:?}\n{}", ctrd.log());
        let pid = ctrd.task(id).unwrap().pid;
        read_counter(pid);
        ctrd.ctr(&["task", "pause", id]).ok();
        ctrd.wait_status(id, "PAUSED");
        // A paused task is not removable without force.
        assert_ne!(ctrd.ctr(&["task", "rm", id]).code, 0);
        if force {
            let r = ctrd.ctr(&["task", "rm", "-f", id]);
            assert_eq!(r.code, 0, "{r:?}\n{}", ctrd.log());
            ctrd.ctr(&["container", "rm", id]).ok();
        } else {
            ctrd.kill_and_remove(id);
        }
        assert!(wait_until(T, || !alive(pid)), "{id}: init {pid} left");
        ctrd.assert_gone(id);
    }
}
