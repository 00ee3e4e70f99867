//! What `deploy/` promises, against Debian's containerd:
//!
//! - `deploy/containerd/rs.toml`, imported into a containerd config, gives
//!   the CRI plugin a runtime `rs` of type `io.containerd.rs.v2` and keeps
//!   its default `runc` runtime (`containerd config dump`; containerd 1.6
//!   replaces the whole CRI table with an import's, so the fragment has to
//!   restate runc). The tests run containerd with CRI off, so the CRI table
//!   itself is not exercised beyond parsing.
//! - `ctr run --runtime io.containerd.rs.v2`: containerd, with the fragment
//!   imported and the debug shim's directory first on its PATH, resolves the
//!   name to `containerd-shim-rs-v2` there and runs the task; without that
//!   directory it finds no shim.
//!
//! Each test has its own containerd and namespace (`rstest-deploy-<pid>-<n>`),
//! and its containers' cgroups live under /rstest/. After each task: no
//! shim of that namespace, no shim socket, no cgroup.

use std::path::{Path, PathBuf};
use std::process::Command;

use integration::*;

fn fragment() -> PathBuf {
    repo_root().join("deploy/containerd/rs.toml")
}

/// A temp dir named like the harness's, so leakcheck.sh notices a leftover.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let d = std::env::temp_dir().join(unique("rstest-ctrd"));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The value at `path` in a TOML table.
fn lookup<'a>(t: &'a toml::Table, path: &[&str]) -> Option<&'a toml::Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(t.get(*first)?, |v, k| v.as_table()?.get(*k))
}

fn str_at<'a>(t: &'a toml::Table, path: &[&str]) -> Option<&'a str> {
    lookup(t, path).and_then(|v| v.as_str())
}

#[test]
fn fragment_defines_the_rs_runtime_and_keeps_runc() {
    require_root();
    let dir = TempDir::new();
    // CRI on: `config dump` leaves disabled plugins out. Dumping starts
    // nothing.
    let setup = ContainerdSetup {
        imports: vec![fragment()],
        cri: true,
        ..Default::default()
    };
    let config = dir.0.join("config.toml");
    std::fs::write(&config, containerd_config(&dir.0, &setup)).unwrap();
    let out = Command::new("containerd")
        .arg("--config")
        .arg(&config)
        .args(["config", "dump"])
        .output()
        .expect("containerd is installed (make test installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "config dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));

    let imports: Vec<&str> = lookup(&dump, &["imports"])
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let frag = fragment().display().to_string();
    assert!(imports.contains(&frag.as_str()), "imports: {imports:?}");

    let cri = ["plugins", "io.containerd.grpc.v1.cri", "containerd"];
    let at = |tail: &[&str]| str_at(&dump, &[&cri[..], tail].concat());
    assert_eq!(
        at(&["runtimes", "rs", "runtime_type"]),
        Some("io.containerd.rs.v2"),
        "{text}"
    );
    assert_eq!(
        at(&["runtimes", "rs", "options", "Root"]),
        Some("/run/containerd/rs"),
        "{text}"
    );
    // Without runc, CRI refuses to load: default_runtime_name is "runc".
    assert_eq!(at(&["default_runtime_name"]), Some("runc"), "{text}");
    assert_eq!(
        at(&["runtimes", "runc", "runtime_type"]),
        Some("io.containerd.runc.v2"),
        "{text}"
    );
}

/// A containerd with the fragment imported and, if `shim_dir` is given,
/// that directory first on its PATH.
fn containerd(shim_dir: Option<&Path>) -> Ctrd {
    Ctrd(Containerd::start_with(
        &unique("rstest-deploy"),
        &ContainerdSetup {
            imports: vec![fragment()],
            path: shim_dir.into_iter().map(Path::to_path_buf).collect(),
            cri: false,
        },
    ))
}

fn run(ctrd: &Ctrd, flags: &[&str], rootfs: &Path, id: &str, argv: &[&str]) -> Run {
    let cgroup = ctrd.cgroup(id);
    let mut args = vec!["run", "--runtime", "io.containerd.rs.v2"];
    args.extend(["--cgroup", &cgroup]);
    args.extend(flags);
    args.extend(["--rootfs", rootfs.to_str().unwrap(), id]);
    args.extend(argv);
    ctrd.ctr(&args)
}

#[test]
fn ctr_runs_io_containerd_rs_v2_by_name() {
    let shim = shim_bin();
    let ctrd = containerd(shim.parent());
    let b = Bundle::new();

    let r = run(
        &ctrd,
        &["--rm"],
        &b.rootfs(),
        "hello",
        &["sh", "-c", "echo hello from rs"],
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "hello from rs\n"),
        "{r:?}\n{}",
        ctrd.log()
    );
    ctrd.assert_gone("hello");

    // The shim containerd started is the one on its PATH (the server is the
    // same binary: `start` forks it).
    let r = run(&ctrd, &["-d"], &b.rootfs(), "bg", &["sleep", "60"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", ctrd.log());
    let shims = ctrd.shims();
    assert_eq!(shims.len(), 1, "one shim: {shims:?}");
    let exe = std::fs::read_link(format!("/proc/{}/exe", shims[0])).unwrap();
    assert_eq!(exe, shim);
    ctrd.ctr(&["task", "kill", "-s", "KILL", "bg"]).ok();
    ctrd.wait_status("bg", "STOPPED");
    ctrd.ctr(&["task", "rm", "bg"]).ok();
    ctrd.ctr(&["container", "rm", "bg"]).ok();
    ctrd.assert_gone("bg");
}

/// The PATH entry is what makes the name work: without it (and with no
/// shim installed on our PATH) containerd finds no binary.
#[test]
fn without_the_shim_on_its_path_containerd_finds_none() {
    let installed = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .find(|d| d.join("containerd-shim-rs-v2").exists());
    if let Some(d) = installed {
        eprintln!(
            "skipped: containerd-shim-rs-v2 is installed in {}",
            d.display()
        );
        return;
    }
    let ctrd = containerd(None);
    let b = Bundle::new();
    let r = run(&ctrd, &["--rm"], &b.rootfs(), "none", &["true"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("containerd-shim-rs-v2"), "{r:?}");
    assert!(!cgroup_exists(&ctrd.cgroup("none")));
}
