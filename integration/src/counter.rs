//! A counter loop for freezer tests: the container runs [`SCRIPT`], which
//! rewrites /tmp/c as fast as it can; the host reads it through
//! /proc/<init pid>/root.

use std::time::Duration;

use crate::wait_until;

/// The container's shell loop.
pub const SCRIPT: &str = "i=0; while true; do i=$((i+1)); echo $i > /tmp/c; done";

const T: Duration = Duration::from_secs(10);

/// The counter, read from the host (None while the file is being rewritten).
pub fn counter(pid: i32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/root/tmp/c"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The counter file as it is: a freeze can land between the truncation
/// and the write of `echo`, leaving it empty while paused.
pub fn raw_counter(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/root/tmp/c")).expect("counter file")
}

/// The counter once it reads back cleanly (waits up to 10 s).
pub fn read_counter(pid: i32) -> u64 {
    let mut v = None;
    assert!(
        wait_until(T, || {
            v = counter(pid);
            v.is_some()
        }),
        "counter of {pid} unreadable"
    );
    v.unwrap()
}

/// Waits until the counter passes `above`; panics after 10 s.
pub fn assert_advances(pid: i32, above: u64) {
    let mut last = None;
    let moved = wait_until(T, || {
        last = counter(pid);
        last.is_some_and(|v| v > above)
    });
    assert!(moved, "counter stuck at {last:?} (was {above})");
}
