//! What the tests of `containerd-shim-rs-v2` under a private containerd
//! share: the shim binary, `ctr run` with it, and the places a task can
//! leave something behind (server process, socket file, cgroup, engine
//! state, containerd bundle and its mounts).
//!
//! Every container gets a cgroup under /rstest/ (`ctr run --cgroup`). On
//! drop, tasks and containers left over after a failed assertion are
//! removed through containerd, shims still left are stopped by pid (before
//! containerd goes), and the namespace's engine root is removed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::{cgroup_exists, repo_root, unique, wait_until, Containerd, Run, CGROUP_PARENT};

/// containerd's default socket directory, where `start` binds servers.
pub const SOCKET_DIR: &str = "/run/containerd/s";
/// The shim's default engine root (`<root>/<namespace>/<id>`).
pub const ENGINE_ROOT: &str = "/run/containerd/rs";

/// Absolute path of the shim binary under test ($SHIM_RS, else the debug
/// build, which must exist).
pub fn shim_bin() -> PathBuf {
    let bin = std::env::var_os("SHIM_RS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_root().join("target"));
            target.join("debug/containerd-shim-rs-v2")
        });
    assert!(
        bin.exists(),
        "{} missing: cargo build -p containerd-shim-rs-v2",
        bin.display()
    );
    std::fs::canonicalize(bin).unwrap()
}

/// Number of threads of `pid`.
pub fn threads(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// Number of open fds of `pid`.
pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// One line of `ctr task ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRow {
    pub id: String,
    pub pid: i32,
    pub status: String,
}

/// A private containerd with its own namespace, plus what the shim tests
/// check of our shim.
pub struct Ctrd(pub Containerd);

impl std::ops::Deref for Ctrd {
    type Target = Containerd;
    fn deref(&self) -> &Containerd {
        &self.0
    }
}

impl std::ops::DerefMut for Ctrd {
    fn deref_mut(&mut self) -> &mut Containerd {
        &mut self.0
    }
}

impl Ctrd {
    /// A fresh containerd in a fresh namespace `<prefix>-<pid>-<n>`.
    pub fn start(prefix: &str) -> Ctrd {
        Ctrd(Containerd::start(&unique(prefix)))
    }

    /// `ctr run` with our shim, a busybox rootfs dir and a cgroup under
    /// /rstest.
    pub fn run(&self, flags: &[&str], rootfs: &Path, id: &str, argv: &[&str]) -> Run {
        let rootfs = rootfs.to_str().unwrap();
        let mut with = flags.to_vec();
        with.push("--rootfs");
        self.run_from(&with, rootfs, id, argv)
    }

    /// `ctr run` of an imported image: containerd prepares a snapshot and
    /// the shim mounts it onto `<bundle>/rootfs`.
    pub fn run_image(&self, flags: &[&str], image: &str, id: &str, argv: &[&str]) -> Run {
        self.run_from(flags, image, id, argv)
    }

    fn run_from(&self, flags: &[&str], source: &str, id: &str, argv: &[&str]) -> Run {
        let bin = shim_bin();
        let cgroup = self.cgroup(id);
        let mut args = vec!["run", "--runtime", bin.to_str().unwrap()];
        args.extend(["--cgroup", &cgroup]);
        args.extend(flags);
        args.extend([source, id]);
        args.extend(argv);
        self.ctr(&args)
    }

    /// Imports `rootfs` as a one-layer image (docker-archive tar) and
    /// returns its reference.
    pub fn import_image(&self, rootfs: &Path) -> String {
        let dir = self.dir.join("image");
        std::fs::create_dir_all(&dir).unwrap();
        let sh = |script: &str| {
            let o = Command::new("sh")
                .args(["-ec", script, "sh"])
                .arg(&dir)
                .arg(rootfs)
                .output()
                .unwrap();
            assert!(o.status.success(), "{script}: {o:?}");
            String::from_utf8(o.stdout).unwrap()
        };
        sh("tar -C \"$2\" -cf \"$1/layer.tar\" .");
        let layer = std::fs::read(dir.join("layer.tar")).unwrap();
        let diff_id = hex(&Sha256::digest(&layer));
        let reference = "docker.io/rstest/busybox:latest";
        let config = format!(
            r#"{{"architecture":"{}","os":"linux","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":["sha256:{diff_id}"]}}}}"#,
            go_arch()
        );
        std::fs::write(dir.join("config.json"), config).unwrap();
        let manifest = format!(
            r#"[{{"Config":"config.json","RepoTags":["{reference}"],"Layers":["layer.tar"]}}]"#
        );
        std::fs::write(dir.join("manifest.json"), manifest).unwrap();
        sh("cd \"$1\" && tar -cf image.tar manifest.json config.json layer.tar");
        let tar = dir.join("image.tar");
        let r = self.ctr(&["image", "import", tar.to_str().unwrap()]);
        assert_eq!(r.code, 0, "import: {r:?}");
        let _ = std::fs::remove_dir_all(&dir);
        reference.to_string()
    }

    /// The cgroup `run` gives container `id`.
    pub fn cgroup(&self, id: &str) -> String {
        format!("{CGROUP_PARENT}/{}-{id}", self.ns)
    }

    /// The server socket `start` computes for grouping key `key` (the task
    /// id when no grouping annotation is set).
    pub fn socket(&self, key: &str) -> PathBuf {
        let hashed = format!("{}/{}/{key}", self.address().display(), self.ns);
        Path::new(SOCKET_DIR).join(hex(&Sha256::digest(hashed.as_bytes())))
    }

    /// The engine's state dir of container `id`.
    pub fn engine_state(&self, id: &str) -> PathBuf {
        Path::new(ENGINE_ROOT).join(&self.ns).join(id)
    }

    /// containerd's bundle dir of task `id`.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.dir
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.ns)
            .join(id)
    }

    /// `ctr task ls`, parsed.
    pub fn tasks(&self) -> Vec<TaskRow> {
        let ls = self.ctr(&["task", "ls"]);
        ls.ok()
            .lines()
            .skip(1)
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                Some(TaskRow {
                    id: w.first()?.to_string(),
                    pid: w.get(1)?.parse().ok()?,
                    status: w.get(2)?.to_string(),
                })
            })
            .collect()
    }

    /// The `ctr task ls` row of `id`.
    pub fn task(&self, id: &str) -> Option<TaskRow> {
        self.tasks().into_iter().find(|t| t.id == id)
    }

    /// Waits up to 10 s for task `id` to show `status`; panics otherwise.
    pub fn wait_status(&self, id: &str, status: &str) {
        let mut last = None;
        let ok = wait_until(Duration::from_secs(10), || {
            last = self.task(id);
            last.as_ref().is_some_and(|t| t.status == status)
        });
        assert!(ok, "task {id}: {last:?}, want {status}\n{}", self.log());
    }

    /// Pids of live (non-zombie) shim processes of this namespace.
    pub fn shims(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let argv = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let words: Vec<&[u8]> = argv.split(|b| *b == 0).collect();
            let is_shim = words
                .first()
                .is_some_and(|w| w.ends_with(b"containerd-shim-rs-v2"));
            let ours = words.contains(&self.ns.as_bytes());
            let zombie = std::fs::read_to_string(e.path().join("stat"))
                .map(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
                .unwrap_or(true);
            if is_shim && ours && !zombie {
                out.push(pid);
            }
        }
        out
    }

    /// Asserts that no shim of the namespace is left (waiting up to 10 s).
    pub fn assert_no_shims(&self) {
        assert!(
            wait_until(Duration::from_secs(10), || self.shims().is_empty()),
            "shim servers left: {:?}\n{}",
            self.shims(),
            self.log()
        );
    }

    /// Asserts that task `id` left nothing: no server, socket, cgroup,
    /// engine state, or mount under its containerd bundle.
    pub fn assert_gone(&self, id: &str) {
        self.assert_no_shims();
        self.assert_task_gone(id);
    }

    /// [`Ctrd::assert_gone`] without the server check (the server may be
    /// shared with other, still running, tasks).
    pub fn assert_task_gone(&self, id: &str) {
        let sock = self.socket(id);
        assert!(!sock.exists(), "socket {} left", sock.display());
        assert!(!cgroup_exists(&self.cgroup(id)), "cgroup of {id} left");
        let state = self.engine_state(id);
        assert!(!state.exists(), "engine state {} left", state.display());
        let bundle = self.bundle(id);
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let needle = format!(" {}", bundle.display());
        assert!(
            !mi.contains(&needle),
            "mount under {} left",
            bundle.display()
        );
    }

    /// Starts `ctr events` writing into a file of the containerd dir;
    /// returns the child (kill it by pid when done) and the file.
    pub fn record_events(&self) -> (std::process::Child, PathBuf) {
        let path = self.dir.join("events.txt");
        let child = self
            .cmd(&["events"])
            .stdout(std::fs::File::create(&path).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ctr events");
        (child, path)
    }

    /// Kills task `id` with SIGKILL, waits for STOPPED, removes task and
    /// container.
    pub fn kill_and_remove(&self, id: &str) {
        let r = self.ctr(&["task", "kill", "-s", "KILL", id]);
        assert_eq!(r.code, 0, "kill {id}: {r:?}");
        self.wait_status(id, "STOPPED");
        self.ctr(&["task", "rm", id]).ok();
        self.ctr(&["container", "rm", id]).ok();
    }
}

impl Drop for Ctrd {
    fn drop(&mut self) {
        // Through containerd first: the shims exit and remove their sockets.
        self.0.remove_all();
        // Shims still alive after a failed assertion: SIGTERM makes a server
        // remove its socket; SIGKILL whatever ignores it.
        let signal = |sig| {
            for pid in self.shims() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
            }
        };
        signal(nix::sys::signal::Signal::SIGTERM);
        if !wait_until(Duration::from_secs(3), || self.shims().is_empty()) {
            signal(nix::sys::signal::Signal::SIGKILL);
        }
        // The engine root of this namespace (its containers are gone).
        let _ = std::fs::remove_dir(Path::new(ENGINE_ROOT).join(&self.ns));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// GOARCH of this machine, for the image config.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
