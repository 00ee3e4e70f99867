//! The engine's `stdio` option, driven in-process the way the shim will:
//! init and an exec'd process get the caller's pipes as stdin/stdout/stderr.
//! `harness = false`: the engine forks, so this runs single-threaded.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use integration::{unique, Bundle, STATE_PARENT};
use runtime_core::container::{self, CreateOptions, ExecOptions};
use runtime_core::state::Root;

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe().expect("pipe")
}

fn read_all(fd: OwnedFd) -> String {
    let mut s = String::new();
    std::fs::File::from(fd).read_to_string(&mut s).unwrap();
    s
}

/// Init reads stdin and writes stdout/stderr through the given fds.
fn init_uses_given_stdio(root: &Root) {
    let mut b = Bundle::new();
    b.sh("read line; echo \"got $line\"; echo oops >&2").save();
    let id = unique("stdio");
    let ((in_r, in_w), (out_r, out_w), (err_r, err_w)) = (pipe(), pipe(), pipe());
    let opts = CreateOptions {
        id: id.clone(),
        bundle: b.dir.clone(),
        stdio: Some([in_r, out_w, err_w]),
        ..Default::default()
    };
    container::create(root, opts).expect("create");
    container::start(root, &id).expect("start");
    std::fs::File::from(in_w).write_all(b"hello\n").unwrap();
    assert_eq!(read_all(out_r), "got hello\n");
    assert_eq!(read_all(err_r), "oops\n");
    wait_stopped(root, &id);
    container::delete(root, &id, true).expect("delete");
}

/// An exec'd process gets its own pipes.
fn exec_uses_given_stdio(root: &Root) {
    let mut b = Bundle::new();
    b.sh("sleep 30").save();
    let id = unique("stdiox");
    let (null_r, _keep) = pipe();
    let (out_r, out_w) = pipe();
    let (e1, e2) = (out_w.try_clone().unwrap(), out_w.try_clone().unwrap());
    let opts = CreateOptions {
        id: id.clone(),
        bundle: b.dir.clone(),
        stdio: Some([null_r, e1, e2]),
        ..Default::default()
    };
    container::create(root, opts).expect("create");
    container::start(root, &id).expect("start");
    let spec =
        runtime_core::spec::parse(&std::fs::read(b.dir.join("config.json")).unwrap()).unwrap();
    let mut p = spec.process().clone().unwrap();
    p.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "echo from-exec".into(),
    ]));
    let (x_out_r, x_out_w) = pipe();
    let (xin, xerr) = (nix::unistd::pipe().unwrap().0, x_out_w.try_clone().unwrap());
    let opts = ExecOptions {
        process: p,
        console_socket: None,
        pid_file: None,
        preserve_fds: 0,
        stdio: Some([xin, x_out_w, xerr]),
    };
    let pid = container::exec(root, &id, opts).expect("exec");
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    assert_eq!(read_all(x_out_r), "from-exec\n");
    container::delete(root, &id, true).expect("delete");
    drop(out_w);
    assert_eq!(read_all(out_r), "", "init wrote nothing");
}

fn wait_stopped(root: &Root, id: &str) {
    for _ in 0..500 {
        if container::state(root, id).unwrap()["status"] == "stopped" {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{id} never stopped");
}

type Case = (&'static str, fn(&Root));

fn main() {
    integration::require_root();
    let dir = std::path::Path::new(STATE_PARENT).join(unique("engine"));
    let root = Root::new(&dir);
    let tests: [Case; 2] = [
        ("init_uses_given_stdio", init_uses_given_stdio),
        ("exec_uses_given_stdio", exec_uses_given_stdio),
    ];
    for (name, t) in tests {
        t(&root);
        println!("test {name} ... ok");
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "\ntest result: ok. {} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out",
        tests.len()
    );
}
