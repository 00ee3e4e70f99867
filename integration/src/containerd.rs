//! A private containerd for tests (own root, state, sockets in a temp dir,
//! CRI off unless asked for) and `ctr` bound to it and to one namespace.
//! On drop its tasks and containers are removed, leftover rs shims of the
//! namespace are killed by pid, containerd is killed by pid and its dir
//! removed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{require_root, unique, wait_until, Run};

/// Where our shim keeps its engine state by default (one dir per namespace).
const RS_ROOT: &str = "/run/containerd/rs";

pub struct Containerd {
    pub dir: PathBuf,
    pub ns: String,
    child: Child,
}

/// What a private containerd gets besides its own dirs and sockets.
#[derive(Debug, Default)]
pub struct Setup {
    /// Config files named in `imports = [...]`.
    pub imports: Vec<PathBuf>,
    /// Directories put in front of containerd's PATH, where it looks up
    /// `containerd-shim-<name>-<version>` for a runtime named by type.
    pub path: Vec<PathBuf>,
    /// Leave the CRI plugin enabled (it is off by default: tests drive
    /// containerd with ctr only).
    pub cri: bool,
}

/// A containerd config (version 2) with its root, state and sockets under
/// `dir`.
pub fn config(dir: &Path, setup: &Setup) -> String {
    let d = dir.display();
    let mut c = String::from("version = 2\n");
    if !setup.imports.is_empty() {
        let list: Vec<String> = setup
            .imports
            .iter()
            .map(|p| format!("{:?}", p.display().to_string()))
            .collect();
        c += &format!("imports = [{}]\n", list.join(", "));
    }
    c += &format!("root = \"{d}/root\"\nstate = \"{d}/state\"\n");
    if !setup.cri {
        c += "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n";
    }
    c +=
        &format!("[grpc]\n  address = \"{d}/c.sock\"\n[ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n");
    c
}

impl Containerd {
    /// Starts containerd and waits until `ctr version` answers.
    pub fn start(ns: &str) -> Containerd {
        Containerd::start_with(ns, &Setup::default())
    }

    /// [`Containerd::start`] with imports, PATH entries or CRI.
    pub fn start_with(ns: &str, setup: &Setup) -> Containerd {
        require_root();
        let dir = std::env::temp_dir().join(unique("rstest-ctrd"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), config(&dir, setup)).unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let mut path: Vec<PathBuf> = setup.path.clone();
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .env(
                "PATH",
                std::env::join_paths(path).expect("no ':' in PATH dirs"),
            )
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd is installed (make test installs it)");
        let c = Containerd {
            dir,
            ns: ns.to_string(),
            child,
        };
        let up = wait_until(Duration::from_secs(20), || c.ctr(&["version"]).code == 0);
        assert!(up, "containerd did not come up: {}", c.log());
        c
    }

    /// containerd's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// containerd's gRPC socket.
    pub fn address(&self) -> PathBuf {
        self.dir.join("c.sock")
    }

    /// A `ctr` command for our address and namespace (no timeout: for
    /// callers that drive it themselves, e.g. on a pty).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.address())
            .args(["--namespace", &self.ns])
            .args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs `ctr` to completion; a hang is a failure (exit 124), not a
    /// stuck test run.
    pub fn ctr(&self, args: &[&str]) -> Run {
        let mut c = Command::new("timeout");
        c.args(["60", "ctr"]).arg("--address").arg(self.address());
        c.args(["--namespace", &self.ns])
            .args(args)
            .stdin(Stdio::null());
        let o = c.output().unwrap();
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// The server socket our shim's `start` computes for task `id` (no
    /// grouping annotation: the id groups).
    pub fn shim_socket(&self, id: &str) -> PathBuf {
        let key = format!("{}/{}/{id}", self.address().display(), self.ns);
        let out = Command::new("sh")
            .args(["-c", "printf %s \"$1\" | sha256sum", "sh", &key])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let hex = text.split_whitespace().next().unwrap().to_string();
        PathBuf::from("/run/containerd/s").join(hex)
    }

    /// Pids of live (non-zombie) `containerd-shim-rs-v2` processes of this
    /// namespace.
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
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // rs shims a failed test left, first: nobody else would stop them,
        // and a wedged one would make each ctr call below time out.
        // containerd then cleans their tasks up with the shim's `delete`.
        for pid in self.shims() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for id in self.ctr(&["task", "ls", "-q"]).stdout.lines() {
            let _ = self.ctr(&["task", "kill", "-s", "KILL", id]);
            let _ = self.ctr(&["task", "rm", "-f", id]);
        }
        for id in self.ctr(&["container", "ls", "-q"]).stdout.lines() {
            let _ = self.ctr(&["container", "rm", id]);
        }
        // The engine root of this namespace (its containers are gone).
        let _ = std::fs::remove_dir(Path::new(RS_ROOT).join(&self.ns));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
