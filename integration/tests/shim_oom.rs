//! OOM kills through the shim: a container whose init outgrows its memory
//! limit is killed by the kernel; the shim publishes /tasks/oom for it
//! before its /tasks/exit (137), as containerd's runc shim does.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use integration::*;

#[test]
fn oom_kill_is_published_before_the_exit() {
    let ctrd = Ctrd::start("rstest-oom");
    let b = Bundle::new();
    let mut events = ctrd
        .cmd(&["events"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ctr events");
    let out = events.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Let `ctr events` subscribe before anything happens.
    std::thread::sleep(Duration::from_millis(300));
    // dd is init: it allocates a 256 MiB buffer under a 32 MiB limit.
    let r = ctrd.run(
        &["--rm", "--memory-limit", "33554432"],
        &b.rootfs(),
        "hog",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"],
    );
    assert_eq!(r.code, 137, "the hog was killed: {r:?}\n{}", ctrd.log());
    let mut topics = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline && !topics.contains(&"/tasks/delete".to_string()) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if line.contains("\"hog\"") {
                if let Some(t) = line.split_whitespace().find(|w| w.starts_with("/tasks/")) {
                    topics.push(t.to_string());
                }
            }
        }
    }
    let _ = events.kill();
    let _ = events.wait();
    let _ = reader.join();
    let pos = |t: &str| topics.iter().position(|x| x == t);
    let (oom, exit) = (pos("/tasks/oom"), pos("/tasks/exit"));
    assert!(oom.is_some(), "no /tasks/oom: {topics:?}");
    assert!(oom < exit, "/tasks/oom before /tasks/exit: {topics:?}");
    ctrd.assert_gone("hog");
}
