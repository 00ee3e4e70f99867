//! OCI hooks through `rsrun`: every hook point runs with its own args, env
//! and timeout and the container state on stdin, in the order the runtime
//! spec gives; failing hooks fail create (leaving nothing) but not delete.

use std::path::{Path, PathBuf};
use std::time::Duration;

use integration::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);

/// Appends "NAME ARGV1 STATUS PID" for the state JSON on stdin to $LOG.
/// Runs under the host's /bin/sh or the rootfs's busybox sh alike.
const HOOK: &str = r#"#!/bin/sh
state=$(cat)
[ -n "$DELAY" ] && sleep "$DELAY"
status=$(echo "$state" | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')
pid=$(echo "$state" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
echo "$HOOK $1 $status $pid" >> "$LOG"
"#;

fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A bundle whose hook script exists on the host (`<bundle>/hook.sh`) and in
/// the rootfs (`/hook.sh`), with `<bundle>/log` bind-mounted at `/log`.
struct HookBundle {
    b: Bundle,
    log: PathBuf,
}

impl HookBundle {
    fn new(script: &str) -> HookBundle {
        let mut b = Bundle::new();
        write_exec(&b.dir.join("hook.sh"), HOOK);
        write_exec(&b.rootfs().join("hook.sh"), HOOK);
        let logdir = b.dir.join("log");
        std::fs::create_dir(&logdir).unwrap();
        let m = json!({"destination": "/log", "type": "bind", "source": logdir, "options": ["rbind", "rw"]});
        b.config["mounts"].as_array_mut().unwrap().push(m);
        b.sh(script);
        HookBundle {
            log: logdir.join("hooks.log"),
            b,
        }
    }

    /// A hook at `point` running the logging script; `in_container` hooks
    /// (startContainer) use the rootfs copy and the /log mount.
    fn hook(&self, point: &str, in_container: bool, extra_env: &[&str]) -> Value {
        let (path, log) = if in_container {
            ("/hook.sh".to_string(), "/log/hooks.log".to_string())
        } else {
            (
                self.b.dir.join("hook.sh").display().to_string(),
                self.log.display().to_string(),
            )
        };
        let mut env = vec![
            format!("HOOK={point}"),
            format!("LOG={log}"),
            "PATH=/usr/bin:/bin".into(),
        ];
        env.extend(extra_env.iter().map(|s| s.to_string()));
        json!({"path": path, "args": ["hook.sh", format!("arg-{point}")], "env": env, "timeout": 5})
    }

    fn set(&mut self, point: &str, hooks: Vec<Value>) -> &mut Self {
        if self.b.config["hooks"].is_null() {
            self.b.config["hooks"] = json!({});
        }
        self.b.config["hooks"][point] = json!(hooks);
        self
    }

    /// The log as (name, argv1, status, pid) rows.
    fn lines(&self) -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|l| l.split(' ').map(str::to_string).collect())
            .collect()
    }

    fn names(&self) -> Vec<String> {
        self.lines().into_iter().map(|l| l[0].clone()).collect()
    }
}

const ALL: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

fn all_hooks(script: &str) -> HookBundle {
    let mut h = HookBundle::new(script);
    for p in ALL {
        let hook = h.hook(p, p == "startContainer", &[]);
        h.set(p, vec![hook]);
    }
    h.b.save();
    h
}

fn pos(names: &[String], n: &str) -> usize {
    names
        .iter()
        .position(|x| x == n)
        .unwrap_or_else(|| panic!("{n} hook did not run: {names:?}"))
}

#[test]
fn every_hook_point_runs_in_order_with_args_env_and_state() {
    let rt = Runtime::rsrun();
    let h = all_hooks("sleep 100");
    let id = unique("hooks");
    rt.run_detached(&["create", "--bundle", h.b.path(), &id])
        .ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap().to_string();
    assert_eq!(
        h.names(),
        ["prestart", "createRuntime", "createContainer"],
        "after create"
    );

    rt.run(&["start", &id]).ok();
    assert!(wait_until(T, || h.names().len() == 5), "{:?}", h.names());
    rt.run(&["delete", "-f", &id]).ok();
    let names = h.names();
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(pos(&names, "prestart") < pos(&names, "createContainer"));
    assert!(pos(&names, "createRuntime") < pos(&names, "createContainer"));
    assert!(pos(&names, "createContainer") < pos(&names, "startContainer"));
    assert!(pos(&names, "createContainer") < pos(&names, "poststart"));
    assert_eq!(names[5], "poststop");

    for l in h.lines() {
        let (name, arg, status) = (&l[0], &l[1], &l[2]);
        assert_eq!(arg, &format!("arg-{name}"), "argv[1] of {name}");
        let want = match name.as_str() {
            "prestart" | "createRuntime" | "createContainer" => "creating",
            "poststart" => "running",
            "poststop" => "stopped",
            _ => continue,
        };
        assert_eq!(status, want, "status seen by {name}");
        if name != "poststop" {
            assert_eq!(l[3], pid, "{name} sees the init pid as the host sees it");
        }
    }
    assert_nothing_left(&rt, &h.b, &id);
}

#[test]
fn start_container_hook_sees_created() {
    let rt = Runtime::rsrun();
    let h = all_hooks("sleep 100");
    let id = unique("hooks");
    rt.run_detached(&["create", "--bundle", h.b.path(), &id])
        .ok();
    rt.run(&["start", &id]).ok();
    assert!(wait_until(T, || h
        .names()
        .contains(&"startContainer".to_string())));
    let l = h
        .lines()
        .into_iter()
        .find(|l| l[0] == "startContainer")
        .unwrap();
    assert_eq!(l[2], "created", "{l:?}");
}

#[test]
fn poststart_waits_for_start_container_hooks() {
    let rt = Runtime::rsrun();
    let mut h = HookBundle::new("sleep 100");
    let slow = h.hook("startContainer", true, &["DELAY=0.5"]);
    let post = h.hook("poststart", false, &[]);
    h.set("startContainer", vec![slow])
        .set("poststart", vec![post]);
    h.b.save();
    let id = unique("hooks");
    rt.run_detached(&["create", "--bundle", h.b.path(), &id])
        .ok();
    rt.run(&["start", &id]).ok();
    // OCI: poststart runs after the user process is executed, which is after
    // startContainer, and before `start` returns.
    assert_eq!(h.names(), ["startContainer", "poststart"]);
}

#[test]
fn hooks_run_in_list_order_with_their_own_env() {
    let rt = Runtime::rsrun();
    let mut h = HookBundle::new("true");
    let mut a = h.hook("first", false, &[]);
    let mut b = h.hook("second", false, &[]);
    a["args"] = json!(["hook.sh", "one"]);
    b["args"] = json!(["hook.sh", "two"]);
    h.set("createRuntime", vec![a, b]);
    h.b.save();
    let id = unique("hooks");
    rt.run_bundle(&h.b, &id).ok();
    let got: Vec<String> = h
        .lines()
        .iter()
        .map(|l| format!("{} {}", l[0], l[1]))
        .collect();
    assert_eq!(got, ["first one", "second two"]);
}

/// A hook that exits 3 at `point`.
fn failing(point: &str) -> (HookBundle, String) {
    let mut h = HookBundle::new("sleep 100");
    let bad = h.b.dir.join("fail.sh");
    write_exec(
        &bad,
        &format!(
            "#!/bin/sh\necho {point}-failed x x x >> {}\nexit 3\n",
            h.log.display()
        ),
    );
    let ok = h.hook("prestart", false, &[]);
    let path = bad.display().to_string();
    h.set(point, vec![json!({"path": path, "args": ["fail.sh"]})]);
    if point != "prestart" {
        h.set("prestart", vec![ok]);
    }
    h.b.save();
    (h, path)
}

#[test]
fn failing_create_hooks_fail_create_and_leave_nothing() {
    let rt = Runtime::rsrun();
    for point in ["prestart", "createRuntime", "createContainer"] {
        let (h, path) = failing(point);
        let id = unique("badhook");
        let r = rt.run_detached(&["create", "--bundle", h.b.path(), &id]);
        let err = r.err();
        assert!(
            err.contains(&path) && err.contains("exit status 3"),
            "{point}: {err}"
        );
        assert_nothing_left(&rt, &h.b, &id);
    }
}

#[test]
fn failing_prestart_fails_run_and_leaves_nothing() {
    let rt = Runtime::rsrun();
    let (h, path) = failing("prestart");
    let id = unique("badhook");
    let r = rt.run_detached(&["run", "--bundle", h.b.path(), &id]);
    let err = r.err();
    assert!(
        err.contains(&path) && err.contains("exit status 3"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(rt.ids().is_empty());
    assert_nothing_left(&rt, &h.b, &id);
}

#[test]
fn hook_exceeding_timeout_fails_create() {
    let rt = Runtime::rsrun();
    let mut h = HookBundle::new("sleep 100");
    let mut slow = h.hook("prestart", false, &["DELAY=30"]);
    slow["timeout"] = json!(1);
    h.set("prestart", vec![slow]);
    h.b.save();
    let id = unique("slowhook");
    let t = std::time::Instant::now();
    let r = rt.run_detached(&["create", "--bundle", h.b.path(), &id]);
    let err = r.err();
    assert!(err.contains("timed out"), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "timeout not enforced: {:?}",
        t.elapsed()
    );
    assert!(h.lines().is_empty(), "the hook was killed before logging");
    assert_nothing_left(&rt, &h.b, &id);
}

#[test]
fn failing_poststop_does_not_fail_delete() {
    let rt = Runtime::rsrun();
    let (h, _) = failing("poststop");
    let id = unique("poststop");
    rt.run_detached(&["run", "-d", "--bundle", h.b.path(), &id])
        .ok();
    rt.run(&["kill", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped");
    rt.run(&["delete", &id]).ok();
    assert!(rt.ids().is_empty());
    assert_eq!(
        h.names().last().map(String::as_str),
        Some("poststop-failed"),
        "the poststop hook ran"
    );
    assert_nothing_left(&rt, &h.b, &id);
}
