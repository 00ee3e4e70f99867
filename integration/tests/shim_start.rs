//! `containerd-shim-rs-v2 start` and `delete` run the way containerd runs
//! them (cwd = bundle, Go-style flags, empty stdin), compared with Debian's
//! `containerd-shim-runc-v2` where the Go shim is the reference.
//!
//! The server our `start` spawns idles on its listening socket until
//! SIGTERM when nothing talks to it; that is enough to observe sharing. Every
//! test uses its own namespace (`rstest-shim-<pid>-<n>`), so the socket
//! addresses collide with nothing real; every server is stopped by pid and
//! every socket file removed, also when an assertion fails.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use integration::*;

const GRPC_ADDRESS: &str = "/run/containerd/containerd.sock";

/// A bundle dir (just config.json) plus everything started from it;
/// cleanup on drop: servers by pid, socket files, the dir.
struct ShimBundle {
    dir: PathBuf,
    sockets: Vec<PathBuf>,
}

impl ShimBundle {
    fn new(annotations: serde_json::Value) -> ShimBundle {
        require_root();
        let dir = std::env::temp_dir().join(unique("rstest-bundle-shim"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = serde_json::json!({ "ociVersion": "1.0.2", "annotations": annotations });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        ShimBundle {
            dir,
            sockets: Vec::new(),
        }
    }

    /// Runs `<bin> -namespace NS -address A -publish-binary P -id ID start`
    /// in the bundle, as containerd does; records the socket for cleanup.
    fn start(&mut self, bin: &Path, ns: &str, id: &str) -> String {
        let out = self.shim(bin, &["-namespace", ns], id, "start");
        assert!(
            out.status.success(),
            "{} start failed: {}{}",
            bin.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // stdout+stderr together are the reply: stderr must stay empty.
        assert!(out.stderr.is_empty(), "start wrote to stderr: {out:?}");
        let address = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let path = PathBuf::from(address.strip_prefix("unix://").expect("unix:// address"));
        if !self.sockets.contains(&path) {
            self.sockets.push(path);
        }
        address
    }

    fn shim(&self, bin: &Path, ns: &[&str], id: &str, action: &str) -> Output {
        Command::new(bin)
            .args(ns)
            .args(["-address", GRPC_ADDRESS])
            .args(["-publish-binary", "/usr/bin/containerd"])
            .args(["-id", id])
            .arg(action)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Stops every process whose cwd is this bundle (the servers `start`
    /// spawned) and removes the sockets.
    fn stop_servers(&mut self) {
        for pid in pids_with_cwd(&self.dir) {
            stop(pid);
        }
        for s in self.sockets.drain(..) {
            let _ = std::fs::remove_file(s);
        }
    }
}

impl Drop for ShimBundle {
    fn drop(&mut self) {
        self.stop_servers();
        // A failed unmount test must not leave (or recurse into) mounts.
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| Path::new(p).starts_with(&self.dir))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Processes (other than this test) whose working directory is `dir`.
fn pids_with_cwd(dir: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c == dir))
        .collect()
}

/// SIGTERM, then SIGKILL after 5 s; returns once the pid is gone (or a
/// zombie: servers are reparented away from us).
fn stop(pid: i32) {
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('Z'))
            })
            .unwrap_or(true)
    };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    );
    if !wait_until(Duration::from_secs(5), gone) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        assert!(
            wait_until(Duration::from_secs(5), gone),
            "pid {pid} survived SIGKILL"
        );
    }
}

/// Our servers for namespace `ns`: processes of our binary with `-namespace ns`.
fn our_servers(ns: &str) -> Vec<i32> {
    let want = ["-namespace", ns].join("\0");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let argv = String::from_utf8_lossy(&argv);
            argv.contains("containerd-shim-rs-v2") && argv.contains(&want)
        })
        .collect()
}

fn hex_of(address: &str) -> &str {
    address.rsplit('/').next().unwrap()
}

#[test]
fn start_prints_the_same_address_as_the_go_shim() {
    let go = Path::new("/usr/bin/containerd-shim-runc-v2");
    assert!(go.exists(), "Debian's containerd is installed (make deps)");
    let ours = shim_bin();
    for annotations in [
        serde_json::json!({}),
        serde_json::json!({ "io.kubernetes.cri.sandbox-id": "pod-a" }),
        serde_json::json!({
            "io.kubernetes.cri.sandbox-id": "pod-a",
            "io.containerd.runc.v2.group": "group-b",
        }),
    ] {
        let ns = unique("rstest-shim");
        let mut b = ShimBundle::new(annotations.clone());
        // One at a time: the Go shim's socket (its server exits without a
        // `log` FIFO, leaving it stale) must be gone before ours binds.
        let go_addr = b.start(go, &ns, "ctr1");
        b.stop_servers();
        let our_addr = b.start(&ours, &ns, "ctr1");
        assert_eq!(our_addr, go_addr, "annotations {annotations}");
        assert!(
            our_addr.starts_with("unix:///run/containerd/s/"),
            "{our_addr}"
        );
    }
}

#[test]
fn start_twice_in_one_group_shares_one_server() {
    let ours = shim_bin();
    let ns = unique("rstest-shim");
    let group = serde_json::json!({ "io.containerd.runc.v2.group": "g1" });
    let mut first = ShimBundle::new(group.clone());
    let mut second = ShimBundle::new(group);

    let a1 = first.start(&ours, &ns, "ctr-a");
    let servers = our_servers(&ns);
    assert_eq!(
        servers.len(),
        1,
        "one server after the first start: {servers:?}"
    );

    let a2 = second.start(&ours, &ns, "ctr-b");
    assert_eq!(a1, a2, "same group, same address");
    assert_eq!(
        our_servers(&ns),
        servers,
        "the second start spawned nothing"
    );
    // The server lives in the first bundle; both bundles got their options.
    assert_eq!(pids_with_cwd(&first.dir), servers);
    assert!(pids_with_cwd(&second.dir).is_empty());
    // containerd 1.6/1.7 reconnect after a restart through <bundle>/address.
    for b in [&first, &second] {
        assert!(b.dir.join("rs-options.json").exists());
        let address = std::fs::read_to_string(b.dir.join("address")).unwrap_or_default();
        assert_eq!(address, a1, "{}/address", b.dir.display());
    }

    // A different id without the group gets its own server.
    let mut other = ShimBundle::new(serde_json::json!({}));
    let a3 = other.start(&ours, &ns, "ctr-c");
    assert_ne!(a3, a1);
    assert_eq!(our_servers(&ns).len(), 2);

    // The server removes its socket on SIGTERM.
    first.stop_servers();
    other.stop_servers();
    assert!(our_servers(&ns).is_empty());
}

#[test]
fn start_binds_a_0600_file_socket_and_no_abstract_one() {
    let ours = shim_bin();
    let ns = unique("rstest-shim");
    let mut b = ShimBundle::new(serde_json::json!({}));
    let address = b.start(&ours, &ns, "ctr1");
    let path = Path::new(address.strip_prefix("unix://").unwrap());

    let meta = std::fs::metadata(path).unwrap();
    assert!(meta.file_type().is_socket(), "{}", path.display());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let table = std::fs::read_to_string("/proc/net/unix").unwrap();
    let hex = hex_of(&address);
    let ours_lines: Vec<&str> = table.lines().filter(|l| l.contains(hex)).collect();
    assert!(
        ours_lines
            .iter()
            .any(|l| l.ends_with(&path.display().to_string())),
        "listening socket not in /proc/net/unix: {ours_lines:?}"
    );
    assert!(
        ours_lines.iter().all(|l| !l.contains(" @")),
        "abstract socket: {ours_lines:?}"
    );

    // The server: own process group, socket on fd 3, stdio on /dev/null,
    // one point more OOM-killable than us.
    let servers = our_servers(&ns);
    assert_eq!(servers.len(), 1);
    let pid = servers[0];
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    assert_eq!(fields[2], pid.to_string(), "pgid is the server's own pid");
    let fd3 = std::fs::read_link(format!("/proc/{pid}/fd/3")).unwrap();
    assert!(fd3.to_string_lossy().starts_with("socket:"), "{fd3:?}");
    for fd in 0..3 {
        let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(target, Path::new("/dev/null"), "fd {fd}");
    }
    let score = |p: &str| -> i32 {
        std::fs::read_to_string(format!("/proc/{p}/oom_score_adj"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(score(&pid.to_string()), (score("self") + 1).min(1000));

    b.stop_servers();
    assert!(!path.exists(), "socket file left after stop");
}

/// Minimal protobuf reader for `DeleteResponse{1: pid, 2: exit_status,
/// 3: exited_at{1: seconds}}` (varints and one nested message).
fn decode_delete_response(bytes: &[u8]) -> (u64, u64, u64) {
    fn varint(b: &[u8], i: &mut usize) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = b[*i];
            *i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        v
    }
    fn fields(b: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
        let (mut i, mut out) = (0, Vec::new());
        while i < b.len() {
            let key = varint(b, &mut i);
            match key & 7 {
                0 => out.push((key >> 3, varint(b, &mut i), Vec::new())),
                2 => {
                    let len = varint(b, &mut i) as usize;
                    out.push((key >> 3, 0, b[i..i + len].to_vec()));
                    i += len;
                }
                t => panic!("unexpected wire type {t} in {b:?}"),
            }
        }
        out
    }
    let (mut pid, mut status, mut seconds) = (0, 0, 0);
    for (field, value, nested) in fields(bytes) {
        match field {
            1 => pid = value,
            2 => status = value,
            3 => {
                for (f, v, _) in fields(&nested) {
                    if f == 1 {
                        seconds = v;
                    }
                }
            }
            f => panic!("unexpected field {f}"),
        }
    }
    (pid, status, seconds)
}

#[test]
fn delete_without_a_container_reports_137() {
    let ours = shim_bin();
    let ns = unique("rstest-shim");
    let b = ShimBundle::new(serde_json::json!({}));
    std::fs::create_dir(b.dir.join("rootfs")).unwrap();
    let bundle = b.dir.to_str().unwrap();

    for (init_pid, want_pid) in [(None, 0), (Some("4242\n"), 4242)] {
        if let Some(p) = init_pid {
            std::fs::write(b.dir.join("init.pid"), p).unwrap();
        }
        let out = b.shim(
            &ours,
            &["-namespace", &ns, "-bundle", bundle],
            "ctr1",
            "delete",
        );
        assert!(out.status.success(), "delete failed: {out:?}");
        let (pid, status, seconds) = decode_delete_response(&out.stdout);
        assert_eq!(pid, want_pid);
        assert_eq!(status, 137);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(now.abs_diff(seconds) < 60, "exited_at {seconds}, now {now}");
    }
    // The engine had nothing to delete: nothing appeared in its root.
    assert!(!Path::new("/run/containerd/rs").join(&ns).exists());
}

#[test]
fn delete_unmounts_the_rootfs() {
    let ours = shim_bin();
    let ns = unique("rstest-shim");
    let b = ShimBundle::new(serde_json::json!({}));
    let rootfs = b.dir.join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    let mounted = |p: &Path| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(p.to_str().unwrap()))
    };
    let tmpfs = |p: &Path| {
        nix::mount::mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap()
    };
    tmpfs(&rootfs);
    std::fs::create_dir(rootfs.join("proc")).unwrap();
    tmpfs(&rootfs.join("proc"));
    assert!(mounted(&rootfs));

    let out = b.shim(
        &ours,
        &["-namespace", &ns, "-bundle", b.dir.to_str().unwrap()],
        "ctr1",
        "delete",
    );
    assert!(out.status.success(), "{out:?}");
    assert!(!mounted(&rootfs.join("proc")));
    assert!(!mounted(&rootfs));
}

/// `<hierarchy>/rstest/<name>` in every cgroup hierarchy (v1/hybrid) or in
/// the unified one; cpuset v1 needs cpus/mems before it takes a process.
/// Removed on drop (after the server in it is stopped).
struct TestCgroup {
    dirs: Vec<PathBuf>,
}

impl TestCgroup {
    fn new(name: &str) -> TestCgroup {
        let root = Path::new("/sys/fs/cgroup");
        let hierarchies: Vec<PathBuf> = if root.join("cgroup.controllers").exists() {
            vec![root.to_path_buf()]
        } else {
            std::fs::read_dir(root)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join("cgroup.procs").exists())
                .filter(|p| !p.ends_with("unified"))
                .collect()
        };
        let mut dirs = Vec::new();
        for h in hierarchies {
            let parent = h.join(CGROUP_PARENT.trim_start_matches('/'));
            let leaf = parent.join(name);
            std::fs::create_dir_all(&leaf).unwrap();
            for dir in [&parent, &leaf] {
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    let (from, to) = (dir.parent().unwrap().join(file), dir.join(file));
                    let empty = std::fs::read_to_string(&to).is_ok_and(|v| v.trim().is_empty());
                    if empty {
                        std::fs::write(&to, std::fs::read_to_string(&from).unwrap()).unwrap();
                    }
                }
            }
            dirs.push(leaf);
        }
        TestCgroup { dirs }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// protobuf `Any{type_url: containerd.runc.v1.Options, value: Options{3: shim_cgroup}}`.
fn runc_options_any(shim_cgroup: &str) -> Vec<u8> {
    fn len_field(field: u8, bytes: &[u8]) -> Vec<u8> {
        assert!(bytes.len() < 128);
        let mut out = vec![field << 3 | 2, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }
    let options = len_field(3, shim_cgroup.as_bytes());
    let mut any = len_field(1, b"containerd.runc.v1.Options");
    any.extend(len_field(2, &options));
    any
}

#[test]
fn start_moves_the_server_into_shim_cgroup() {
    let ours = shim_bin();
    let ns = unique("rstest-shim");
    let name = unique("shimcg");
    // Declared first so it drops last: the server must be stopped before
    // its cgroup can be removed.
    let cg = TestCgroup::new(&name);
    let mut b = ShimBundle::new(serde_json::json!({}));
    let shim_cgroup = format!("{CGROUP_PARENT}/{name}");

    let mut child = Command::new(&ours)
        .args([
            "-namespace",
            &ns,
            "-address",
            GRPC_ADDRESS,
            "-id",
            "ctr1",
            "start",
        ])
        .current_dir(&b.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&runc_options_any(&shim_cgroup))
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let address = String::from_utf8_lossy(&out.stdout).to_string();
    if let Some(p) = address.strip_prefix("unix://") {
        b.sockets.push(PathBuf::from(p));
    }
    assert!(out.status.success(), "start failed: {out:?}");

    let servers = our_servers(&ns);
    assert_eq!(servers.len(), 1);
    let procs = |d: &PathBuf| std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
    for d in &cg.dirs {
        assert!(
            procs(d).lines().any(|l| l == servers[0].to_string()),
            "server {} not in {}",
            servers[0],
            d.display()
        );
    }
    let saved = std::fs::read_to_string(b.dir.join("rs-options.json")).unwrap();
    assert!(saved.contains(&shim_cgroup), "{saved}");
    b.stop_servers();
}
