//! A private containerd for tests (own root, state, sockets in a temp dir,
//! CRI off unless asked for) and `ctr` bound to it and to one namespace. It can be stopped
//! and started again on the same dir and config (a containerd restart). On
//! drop its tasks and containers are removed, containerd is killed by pid
//! and its dir removed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{require_root, unique, wait_until, Run};

pub struct Containerd {
    pub dir: PathBuf,
    pub ns: String,
    /// None while stopped.
    child: Option<Child>,
    /// containerd's PATH (Setup::path first).
    path: OsString,
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
        let mut path: Vec<PathBuf> = setup.path.clone();
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let mut c = Containerd {
            dir,
            ns: ns.to_string(),
            child: None,
            path: std::env::join_paths(path).expect("no ':' in PATH dirs"),
        };
        c.start_again();
        c
    }

    /// Starts containerd (again) with the same dir and config, its log
    /// appended to the previous one, and waits until `ctr version` answers.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "containerd is running");
        let up = self.spawn();
        assert!(up, "containerd did not come up: {}", self.log());
    }

    fn spawn(&mut self) -> bool {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("containerd.log"))
            .unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .env("PATH", &self.path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd is installed (make test installs it)");
        self.child = Some(child);
        wait_until(Duration::from_secs(20), || self.ctr(&["version"]).code == 0)
    }

    /// Stops containerd by pid: SIGTERM, then SIGKILL after 20 s. Its
    /// shims, root and state stay.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let exited = wait_until(Duration::from_secs(20), || {
            child.try_wait().ok().flatten().is_some()
        });
        if !exited {
            let _ = child.kill();
        }
        let _ = child.wait();
        assert!(exited, "containerd ignored SIGTERM for 20 s");
    }

    /// containerd's pid (None while stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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
}

impl Containerd {
    /// Kills and removes every task and container of the namespace (what a
    /// failed test left), starting containerd again if it was stopped.
    pub fn remove_all(&mut self) {
        if self.child.is_none() && !self.spawn() {
            eprintln!("containerd did not come up again for cleanup");
        }
        for id in self.ctr(&["task", "ls", "-q"]).stdout.lines() {
            let _ = self.ctr(&["task", "kill", "-s", "KILL", id]);
            let _ = self.ctr(&["task", "rm", "-f", id]);
        }
        for id in self.ctr(&["container", "ls", "-q"]).stdout.lines() {
            let _ = self.ctr(&["container", "rm", id]);
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.remove_all();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
