//! Shared helpers for the root integration tests: a private state root per
//! test, busybox bundles, running `rsrun` (and Debian's `runc` where runc is
//! the reference), and guards that delete every container a test made.
//!
//! Every container a test creates uses a cgroup under `/rstest/` and a state
//! root under `/run/rstest/`, so `integration/leakcheck.sh` can prove at the
//! end of the run that nothing was left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

mod containerd;
pub mod counter;
mod pty;
pub use pty::{read_fd_until, PtyChild};
mod shim;
pub use containerd::{config as containerd_config, Containerd, Setup as ContainerdSetup};
pub use shim::{fd_count, shim_bin, threads, Ctrd, TaskRow, ENGINE_ROOT, SOCKET_DIR};

/// Where test state roots live (checked by leakcheck.sh).
pub const STATE_PARENT: &str = "/run/rstest";
/// Cgroup parent of every test container (checked by leakcheck.sh).
pub const CGROUP_PARENT: &str = "/rstest";

/// Path of the rsrun binary under test ($RSRUN, else target/debug/rsrun).
pub fn rsrun_bin() -> PathBuf {
    if let Ok(p) = std::env::var("RSRUN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    target.join("debug/rsrun")
}

/// Repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A unique id for this process and call: `<prefix>-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Fails the test unless running as root (these tests are root-only by design).
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "integration tests must run as root (make test does)"
    );
}

/// Captured result of a command.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts exit 0 and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "command failed: stdout={:?} stderr={:?}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts a non-zero exit and returns stderr.
    pub fn err(&self) -> &str {
        assert_ne!(
            self.code, 0,
            "command unexpectedly succeeded: stdout={:?}",
            self.stdout
        );
        &self.stderr
    }
}

/// A private state root for one test; deletes (-f) every container in it on drop.
pub struct Runtime {
    pub bin: PathBuf,
    pub root: PathBuf,
}

impl Runtime {
    /// rsrun with a fresh root.
    pub fn rsrun() -> Runtime {
        require_root();
        Runtime::with_bin(rsrun_bin())
    }

    /// Debian's runc with a fresh root (the reference implementation).
    pub fn runc() -> Runtime {
        require_root();
        Runtime::with_bin(PathBuf::from("runc"))
    }

    /// A runtime binary at `bin` with a fresh state root.
    pub fn with_bin(bin: PathBuf) -> Runtime {
        let root = Path::new(STATE_PARENT).join(unique("root"));
        std::fs::create_dir_all(&root).unwrap();
        Runtime { bin, root }
    }

    /// A command with `--root` set.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs to completion, capturing output.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("spawn runtime"))
    }

    /// Runs a command whose container may outlive it (`create`, `run -d`,
    /// `exec -d`): stdout and stderr go to temp files, since a pipe would
    /// stay open as long as the container holds it.
    pub fn run_detached(&self, args: &[&str]) -> Run {
        let base = std::env::temp_dir().join(unique("rstest-out"));
        let (out, err) = (base.with_extension("out"), base.with_extension("err"));
        let status = self
            .cmd(args)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .expect("spawn runtime");
        let read = |p: &Path| {
            let s = std::fs::read_to_string(p).unwrap_or_default();
            let _ = std::fs::remove_file(p);
            s
        };
        Run {
            code: status.code().unwrap_or(-1),
            stdout: read(&out),
            stderr: read(&err),
        }
    }

    /// `run --bundle B ID` in the foreground; returns the container's output.
    pub fn run_bundle(&self, b: &Bundle, id: &str) -> Run {
        self.run(&["run", "--bundle", b.dir.to_str().unwrap(), id])
    }

    /// `state ID` as JSON.
    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(self.run(&["state", id]).ok()).expect("state is JSON")
    }

    /// The status string of a container.
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Ids in this root.
    pub fn ids(&self) -> Vec<String> {
        self.run(&["list", "-q"])
            .ok()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.run(&["list", "-q"]).stdout.lines() {
            let _ = self.run(&["delete", "-f", id]);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A busybox bundle in a temp dir with a config.json we edit as JSON.
pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    /// A fresh bundle: busybox rootfs + `rsrun spec`, terminal off, args
    /// `["true"]`, cgroup under /rstest/<id-ish>.
    pub fn new() -> Bundle {
        require_root();
        let dir = std::env::temp_dir().join(unique("rstest-bundle"));
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new(repo_root().join("integration/rootfs.sh"))
            .arg(dir.join("rootfs"))
            .status()
            .unwrap();
        assert!(st.success(), "rootfs.sh failed");
        let spec = Command::new(rsrun_bin())
            .args(["spec", "--bundle"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(spec.success(), "rsrun spec failed");
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let mut config: Value = serde_json::from_str(&text).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["true"]);
        let cg = format!(
            "{CGROUP_PARENT}/{}",
            dir.file_name().unwrap().to_str().unwrap()
        );
        config["linux"]["cgroupsPath"] = json!(cg);
        Bundle { dir, config }
    }

    /// Sets process.args to `sh -c SCRIPT`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.config["process"]["args"] = json!(["sh", "-c", script]);
        self
    }

    /// Writes config.json.
    pub fn save(&self) -> &Self {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
        self
    }

    pub fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

impl Default for Bundle {
    fn default() -> Self {
        Bundle::new()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `script` in a fresh container of `b` (saving its config first) and
/// returns the output; asserts success.
pub fn run_in(rt: &Runtime, b: &mut Bundle, script: &str) -> String {
    b.sh(script).save();
    let id = unique("run");
    let r = rt.run_bundle(b, &id);
    r.ok().to_string()
}

/// Whether a process exists.
pub fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether any directory of the given cgroup path exists in any hierarchy.
pub fn cgroup_exists(cgroups_path: &str) -> bool {
    let rel = cgroups_path.trim_start_matches('/');
    std::fs::read_dir("/sys/fs/cgroup")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .any(|e| e.path().join(rel).exists())
        })
        .unwrap_or(false)
        || Path::new("/sys/fs/cgroup").join(rel).exists()
}

impl Bundle {
    /// The `linux.cgroupsPath` this bundle's containers get.
    pub fn cgroups_path(&self) -> String {
        self.config["linux"]["cgroupsPath"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Polls `f` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Pids of processes that belong to container `id`: in the cgroup
/// `cgroups_path` (any hierarchy), or with `id` as an argv word (an init
/// that has not exec'd yet still carries rsrun's argv).
pub fn container_pids(id: &str, cgroups_path: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let cg = format!(":{cgroups_path}\n");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let in_cg = std::fs::read_to_string(e.path().join("cgroup")).is_ok_and(|c| c.contains(&cg));
        let argv = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if in_cg || argv.split(|b| *b == 0).any(|w| w == id.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

/// Asserts that nothing of container `id` (from bundle `b`) exists: no state
/// dir under `rt`'s root, no cgroup, no process, no host mount of the bundle.
pub fn assert_nothing_left(rt: &Runtime, b: &Bundle, id: &str) {
    let dir = rt.root.join(id);
    assert!(!dir.exists(), "state dir {} left behind", dir.display());
    let cg = b.cgroups_path();
    assert!(!cgroup_exists(&cg), "cgroup {cg} left behind");
    // Processes may take a moment to be reaped by their (gone) parent.
    let gone = wait_until(std::time::Duration::from_secs(2), || {
        container_pids(id, &cg).is_empty()
    });
    assert!(
        gone,
        "processes of {id} left behind: {:?}",
        container_pids(id, &cg)
    );
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mi.contains(b.path()),
        "host mount of {} left behind:\n{mi}",
        b.path()
    );
}

/// Runs a container whose `linux.resources` are `resources` and asserts a
/// refusal naming each of `want`, with nothing left behind (state dir,
/// cgroup, processes, mounts).
pub fn assert_refused(resources: Value, want: &[&str]) {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    b.config["linux"]["resources"] = resources;
    let (id, r) = try_run_in(&rt, &mut b, "true");
    let err = r.err();
    for w in want {
        assert!(err.contains(w), "error must name {w:?}: {err}");
    }
    assert_nothing_left(&rt, &b, &id);
}

/// Like [`run_in`] without asserting success: runs `script` in a fresh
/// container of `b` and returns its id and the result.
pub fn try_run_in(rt: &Runtime, b: &mut Bundle, script: &str) -> (String, Run) {
    b.sh(script).save();
    let id = unique("try");
    let r = rt.run_bundle(b, &id);
    (id, r)
}

/// `create` (not start) from `b`'s saved config; the container's stdio goes
/// to `<bundle>/<id>.log`, so a detached init never holds our pipes open.
/// Panics with the log on failure.
pub fn create_logged(rt: &Runtime, b: &Bundle, id: &str) {
    let log = b.dir.join(format!("{id}.log"));
    let f = std::fs::File::create(&log).unwrap();
    let st = rt
        .cmd(&["create", "--bundle", b.path(), id])
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .status()
        .expect("spawn runtime");
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(st.success(), "create {id} failed: {log}");
}

/// One line of /proc/self/mountinfo, split into the fields tests look at.
#[derive(Debug, Clone)]
pub struct MountEntry {
    pub id: String,
    pub parent: String,
    pub mount_point: String,
    /// Per-mount options ("ro", "nosuid", ...).
    pub options: Vec<String>,
    /// Optional fields ("shared:N", "master:N", ...).
    pub propagation: Vec<String>,
    pub fstype: String,
    /// Per-superblock options ("size=4096k", "mode=710", ...).
    pub super_options: Vec<String>,
}

impl MountEntry {
    /// The topmost (last) mount at `mount_point` in mountinfo text; panics
    /// with the whole table when there is none.
    pub fn find(mountinfo: &str, mount_point: &str) -> MountEntry {
        let line = mountinfo
            .lines()
            .rfind(|l| l.split(' ').nth(4) == Some(mount_point))
            .unwrap_or_else(|| panic!("{mount_point} not in mountinfo:\n{mountinfo}"));
        let (left, right) = line.split_once(" - ").expect("mountinfo separator");
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        let words = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
        MountEntry {
            id: l[0].into(),
            parent: l[1].into(),
            mount_point: l[4].into(),
            options: words(l[5]),
            propagation: l[6..].iter().map(|s| s.to_string()).collect(),
            fstype: r[0].into(),
            super_options: r.get(2).map(|s| words(s)).unwrap_or_default(),
        }
    }

    pub fn has_option(&self, o: &str) -> bool {
        self.options.iter().any(|x| x == o)
    }

    pub fn has_super_option(&self, o: &str) -> bool {
        self.super_options.iter().any(|x| x == o)
    }
}

/// The value of `key:` in /proc/<pid>/status text (panics if missing).
pub fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}:");
    let line = status.lines().find(|l| l.starts_with(&prefix));
    line.unwrap_or_else(|| panic!("{key} missing in {status}"))[prefix.len()..].trim()
}

/// Waits up to `timeout` for `c` to exit; returns its exit code (-1 if
/// killed by a signal). Kills it and panics on timeout.
pub fn wait_child(c: &mut std::process::Child, timeout: std::time::Duration) -> i32 {
    let mut code = None;
    wait_until(timeout, || {
        code = c.try_wait().unwrap().map(|s| s.code().unwrap_or(-1));
        code.is_some()
    });
    code.unwrap_or_else(|| {
        let _ = c.kill();
        let _ = c.wait();
        panic!("child did not exit within {timeout:?}")
    })
}

impl Runtime {
    /// Spawns a foreground `run` of `b` as `id` with stdout piped, and waits
    /// up to 10 s for the container to print `ready`; returns the child and
    /// the read end of its stdout (keep it open while the container runs).
    pub fn spawn_run_ready(
        &self,
        b: &Bundle,
        id: &str,
    ) -> (std::process::Child, std::os::fd::OwnedFd) {
        let mut child = self
            .cmd(&["run", "--bundle", b.path(), id])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out: std::os::fd::OwnedFd = child.stdout.take().unwrap().into();
        let seen = read_fd_until(&out, "ready", std::time::Duration::from_secs(10));
        assert!(
            seen.contains("ready"),
            "container {id} never printed ready: {seen:?}"
        );
        (child, out)
    }

    /// Waits up to 10 s for container `id` to reach status `want`; panics otherwise.
    pub fn wait_status(&self, id: &str, want: &str) {
        let mut last = String::new();
        let ok = wait_until(std::time::Duration::from_secs(10), || {
            last = self.status(id);
            last == want
        });
        assert!(ok, "{id}: status {last:?}, want {want:?}");
    }
}
