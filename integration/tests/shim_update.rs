//! Update through a real containerd into `containerd-shim-rs-v2`: the
//! request containerd's Tasks.Update makes (a task's new LinuxResources, as
//! JSON in an Any, as `ctr`/CRI marshal them) reaches the shim's Update RPC,
//! and the container's cgroup shows the new limits.
//!
//! Debian's ctr 1.6 has no `task update` command, so the test calls
//! containerd's own gRPC API (`containerd.services.tasks.v1.Tasks/Update`,
//! the call `ctr task update` of newer releases makes) with curl over HTTP/2
//! on containerd's socket; the protobuf request is encoded here by hand.

use std::path::Path;
use std::process::Command;

use integration::*;

/// The type URL containerd's typeurl gives runtime-spec's LinuxResources.
const RESOURCES_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

/// A length-delimited protobuf field.
fn field(number: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for mut v in [u64::from(number << 3 | 2), data.len() as u64] {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    out.extend_from_slice(data);
    out
}

/// Calls Tasks.Update for task `id` with `resources` (JSON); returns the
/// gRPC status code and message.
fn update_task(ctrd: &Ctrd, id: &str, resources: &str) -> (i32, String) {
    // UpdateTaskRequest { container_id = 1; Any resources = 2 }
    let any = [
        field(1, RESOURCES_TYPE.as_bytes()),
        field(2, resources.as_bytes()),
    ]
    .concat();
    let msg = [field(1, id.as_bytes()), field(2, &any)].concat();
    let mut frame = vec![0u8];
    frame.extend((msg.len() as u32).to_be_bytes());
    frame.extend(msg);
    let body = ctrd.dir.join(unique("update-req"));
    let headers = body.with_extension("headers");
    std::fs::write(&body, frame).unwrap();
    let out = Command::new("timeout")
        .args([
            "60",
            "curl",
            "-sS",
            "--http2-prior-knowledge",
            "--unix-socket",
        ])
        .arg(ctrd.address())
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .args(["-H", &format!("containerd-namespace: {}", ctrd.ns)])
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg("-D")
        .arg(&headers)
        .args(["-o", "/dev/null"])
        .arg("http://containerd/containerd.services.tasks.v1.Tasks/Update")
        .output()
        .unwrap();
    assert!(out.status.success(), "curl: {out:?}");
    let text = std::fs::read_to_string(&headers).unwrap();
    let _ = std::fs::remove_file(&body);
    let _ = std::fs::remove_file(&headers);
    let header = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let code = header("grpc-status:")
        .unwrap_or_else(|| panic!("no grpc-status in {text}"))
        .parse()
        .unwrap();
    (code, header("grpc-message:").unwrap_or_default())
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

#[test]
fn rs_shim_update_changes_the_cgroup() {
    let ctrd = Ctrd::start("rstest-shimupd");
    let b = Bundle::new();
    let r = ctrd.run(&["-d"], &b.rootfs(), "upd", &["sleep", "60"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", ctrd.log());
    ctrd.wait_status("upd", "RUNNING");
    let rel = ctrd.cgroup("upd");
    let file = |controller: &str, f: &str| {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(rel.trim_start_matches('/'))
            .join(f)
    };
    let (code, msg) = update_task(
        &ctrd,
        "upd",
        r#"{"memory":{"limit":67108864},"cpu":{"quota":20000,"period":100000},"pids":{"limit":9}}"#,
    );
    assert_eq!(code, 0, "{msg}\n{}", ctrd.log());
    assert_eq!(read(&file("memory", "memory.limit_in_bytes")), "67108864");
    assert_eq!(read(&file("cpu", "cpu.cfs_quota_us")), "20000");
    assert_eq!(read(&file("pids", "pids.max")), "9");
    // Only the fields given change.
    let (code, msg) = update_task(&ctrd, "upd", r#"{"pids":{"limit":12}}"#);
    assert_eq!(code, 0, "{msg}");
    assert_eq!(read(&file("memory", "memory.limit_in_bytes")), "67108864");
    assert_eq!(read(&file("pids", "pids.max")), "12");

    // A bad value: INVALID_ARGUMENT (3) naming the field, nothing changed.
    let (code, msg) = update_task(
        &ctrd,
        "upd",
        r#"{"memory":{"limit":33554432},"cpu":{"cpus":"x"}}"#,
    );
    assert_eq!(code, 3, "{msg}");
    assert!(msg.contains("cpu.cpus"), "{msg}");
    assert_eq!(read(&file("memory", "memory.limit_in_bytes")), "67108864");
    // An unknown task: NOT_FOUND (5).
    let (code, msg) = update_task(&ctrd, "nosuch", r#"{"pids":{"limit":3}}"#);
    assert_eq!(code, 5, "{msg}");
    assert_eq!(
        threads(ctrd.shims()[0]),
        1,
        "the server stays single-threaded"
    );

    ctrd.kill_and_remove("upd");
    ctrd.assert_gone("upd");
}
