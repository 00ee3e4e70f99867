//! rsrun as a drop-in for runc under containerd's own Go shim
//! (`containerd-shim-runc-v2`), driven with `ctr --runc-binary`: the exact
//! command lines, log format, console socket, pid files and exec process
//! files containerd uses. A private containerd (own root, state, sockets)
//! is started for the test and stopped after it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration::*;

/// A private containerd; killed (by pid) and its dirs removed on drop.
struct Containerd {
    dir: PathBuf,
    child: Child,
}

impl Containerd {
    fn start() -> Containerd {
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
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd is installed (make test installs it)");
        let c = Containerd { dir, child };
        let up = wait_until(Duration::from_secs(20), || c.ctr(&["version"]).code == 0);
        assert!(up, "containerd did not come up: {}", c.log());
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.dir.join("c.sock"))
            .args(["--namespace", "rstest"])
            .args(args);
        c.stdin(Stdio::null());
        c
    }

    fn ctr(&self, args: &[&str]) -> Run {
        let o = self.cmd(args).output().unwrap();
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// `ctr run` flags that select rsrun with a private runc root.
    fn run_args<'a>(&'a self, bin: &'a str, root: &'a str) -> Vec<&'a str> {
        vec!["run", "--runc-binary", bin, "--runc-root", root]
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in self.ctr(&["task", "ls", "-q"]).stdout.lines() {
            let _ = self.ctr(&["task", "kill", "-s", "KILL", id]);
            let _ = self.ctr(&["task", "rm", "-f", id]);
        }
        for id in self.ctr(&["container", "ls", "-q"]).stdout.lines() {
            let _ = self.ctr(&["container", "rm", id]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rootfs() -> (Bundle, String) {
    let b = Bundle::new();
    let r = b.rootfs().to_str().unwrap().to_string();
    (b, r)
}

#[test]
fn go_shim_runs_execs_and_kills_through_rsrun() {
    let (rt, ctrd) = (Runtime::rsrun(), Containerd::start());
    let (bin, root) = (
        rsrun_bin().display().to_string(),
        rt.root.display().to_string(),
    );
    let (_b, rootfs) = rootfs();
    // The Go shim joins the runc root with the containerd namespace.
    let rt = Runtime {
        bin: rsrun_bin(),
        root: rt.root.join("rstest"),
    };

    let mut run = ctrd.run_args(&bin, &root);
    run.extend([
        "--rm",
        "--rootfs",
        &rootfs,
        "fg",
        "sh",
        "-c",
        "echo hello; exit 3",
    ]);
    let r = ctrd.ctr(&run);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (3, "hello\n"),
        "{r:?}\n{}",
        ctrd.log()
    );

    let mut run = ctrd.run_args(&bin, &root);
    run.extend(["-d", "--rootfs", &rootfs, "bg", "sleep", "60"]);
    ctrd.ctr(&run).ok();
    assert!(
        rt.ids().contains(&"bg".to_string()),
        "rsrun state root holds the task"
    );
    let r = ctrd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "bg",
        "sh",
        "-c",
        "echo in-exec; exit 4",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (4, "in-exec\n"), "{r:?}");
    let ps = ctrd.ctr(&["task", "ps", "bg"]);
    let pid = rt.state("bg")["pid"].as_i64().unwrap().to_string();
    assert!(ps.ok().contains(&pid), "{ps:?}");
    ctrd.ctr(&["task", "kill", "-s", "KILL", "bg"]).ok();
    assert!(wait_until(Duration::from_secs(10), || ctrd
        .ctr(&["task", "ls"])
        .stdout
        .contains("STOPPED")));
    ctrd.ctr(&["task", "rm", "bg"]).ok();
    ctrd.ctr(&["container", "rm", "bg"]).ok();
    assert!(rt.ids().is_empty(), "task rm deletes the rsrun container");
    assert!(!cgroup_exists("/rstest/bg"), "cgroup removed");
}

#[test]
fn go_shim_terminal_and_seccomp_through_rsrun() {
    let (rt, ctrd) = (Runtime::rsrun(), Containerd::start());
    let (bin, root) = (
        rsrun_bin().display().to_string(),
        rt.root.display().to_string(),
    );
    let (_b, rootfs) = rootfs();
    let mut run = ctrd.run_args(&bin, &root);
    run.extend([
        "--rm",
        "--seccomp",
        "--rootfs",
        &rootfs,
        "sc",
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status",
    ]);
    assert_eq!(
        ctrd.ctr(&run).ok().split_whitespace().collect::<Vec<_>>(),
        ["Seccomp:", "2"]
    );

    let mut run = ctrd.run_args(&bin, &root);
    run.extend(["--rm", "-t", "--rootfs", &rootfs, "tty", "sh"]);
    let mut pty = PtyChild::spawn(ctrd.cmd(&run));
    pty.read_until("# ", Duration::from_secs(20));
    pty.write("tty; exit 5\n");
    let out = pty.read_until("/dev/pts/0", Duration::from_secs(10));
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert_eq!(pty.wait(Duration::from_secs(20)), 5);
}
