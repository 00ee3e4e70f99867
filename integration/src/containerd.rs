//! A private containerd for tests (own root, state, sockets in a temp dir,
//! CRI off) and `ctr` bound to it and to one namespace. It can be stopped
//! and started again on the same dir and config (a containerd restart). On
//! drop its tasks and containers are removed, containerd is killed by pid
//! and its dir removed.

use std::path::PathBuf;
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
}

impl Containerd {
    /// Starts containerd and waits until `ctr version` answers.
    pub fn start(ns: &str) -> Containerd {
        require_root();
        let dir = std::env::temp_dir().join(unique("rstest-ctrd"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/c.sock\"\n[ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n",
            d = dir.display()
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let mut c = Containerd {
            dir,
            ns: ns.to_string(),
            child: None,
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
