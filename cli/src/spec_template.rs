//! The config.json that `rsrun spec` writes: byte for byte what runc 1.1.5's
//! `runc spec` (and `runc spec --rootless`) writes, so scripts and golden
//! files made with one runtime work with the other.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Value};

/// Render the default spec. `rootless` is `Some((uid, gid))` of the calling
/// user for `spec --rootless`, which maps that single id to root in a new user
/// namespace; `None` gives the ordinary rootful template.
pub fn default_spec(rootless: Option<(u32, u32)>) -> String {
    let mut spec = rootful_template();
    if let Some((uid, gid)) = rootless {
        make_rootless(&mut spec, uid, gid);
    }
    let mut out = Vec::new();
    // runc uses Go's json.MarshalIndent(spec, "", "\t"): tab indent, no
    // trailing newline.
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    InRuncOrder(&spec)
        .serialize(&mut ser)
        .expect("serializing an in-memory Value cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

fn rootful_template() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runc",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// What an unprivileged caller cannot have: a deny-all devices cgroup rule,
/// a new network namespace (nothing could plumb it), a fresh sysfs (needs
/// the netns) and devpts `gid=5` (the host tty group is not mapped). The
/// caller's ids become root in a new user namespace instead.
fn make_rootless(spec: &mut Value, uid: u32, gid: u32) {
    let linux = spec["linux"].as_object_mut().expect("template has linux");
    linux.remove("resources");
    linux.insert(
        "uidMappings".into(),
        json!([{ "containerID": 0, "hostID": uid, "size": 1 }]),
    );
    linux.insert(
        "gidMappings".into(),
        json!([{ "containerID": 0, "hostID": gid, "size": 1 }]),
    );
    let namespaces = linux["namespaces"]
        .as_array_mut()
        .expect("template has namespaces");
    namespaces.retain(|ns| ns["type"] != "network");
    namespaces.push(json!({ "type": "user" }));

    for mount in spec["mounts"].as_array_mut().expect("template has mounts") {
        match mount["destination"].as_str() {
            Some("/dev/pts") => {
                let options = mount["options"].as_array_mut().expect("devpts has options");
                options.retain(|o| o != "gid=5");
            }
            Some("/sys") => {
                mount["type"] = json!("none");
                mount["source"] = json!("/sys");
                let options = mount["options"].as_array_mut().expect("sysfs has options");
                options.insert(0, json!("rbind"));
            }
            _ => {}
        }
    }
}

/// Every key the template uses, in the order runc writes them. serde_json's
/// `Map` sorts keys unless the `preserve_order` feature is on, so the order
/// lives here rather than in the `json!` literal. One list serves every
/// object because no two objects order a shared key differently (`type`
/// follows `destination` in mounts and precedes `hard` in rlimits).
#[rustfmt::skip]
const KEY_ORDER: &[&str] = &[
    "ociVersion", "process", "root", "hostname", "mounts", "linux",
    "terminal", "user", "args", "env", "cwd", "capabilities", "rlimits", "noNewPrivileges",
    "uid", "gid", "bounding", "effective", "permitted", "ambient",
    "path", "readonly",
    "destination", "type", "hard", "soft", "source", "options",
    "uidMappings", "gidMappings", "resources", "namespaces", "maskedPaths", "readonlyPaths",
    "containerID", "hostID", "size", "devices", "allow", "access",
];

/// Serializes a `Value` with object keys in `KEY_ORDER` (unknown keys last).
struct InRuncOrder<'a>(&'a Value);

impl Serialize for InRuncOrder<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by_key(|(key, _)| key_rank(key));
                let mut out = ser.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    out.serialize_entry(key, &InRuncOrder(value))?;
                }
                out.end()
            }
            Value::Array(items) => ser.collect_seq(items.iter().map(InRuncOrder)),
            leaf => leaf.serialize(ser),
        }
    }
}

fn key_rank(key: &str) -> usize {
    KEY_ORDER
        .iter()
        .position(|k| *k == key)
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::{default_spec, key_rank, make_rootless, rootful_template, KEY_ORDER};
    use oci_spec::runtime::{LinuxNamespaceType, Spec};

    fn parse(text: &str) -> Spec {
        serde_json::from_str(text).expect("template parses as an OCI runtime Spec")
    }

    fn namespace_kinds(spec: &Spec) -> Vec<LinuxNamespaceType> {
        let linux = spec.linux().as_ref().unwrap();
        linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|ns| ns.typ())
            .collect()
    }

    #[test]
    fn output_is_tab_indented_json_without_trailing_newline() {
        for text in [default_spec(None), default_spec(Some((1000, 1000)))] {
            serde_json::from_str::<serde_json::Value>(&text).unwrap();
            assert!(text.starts_with("{\n\t\"ociVersion\": \"1.0.2-dev\",\n\t\"process\": {\n"));
            assert!(text.ends_with("\n\t}\n}"));
        }
    }

    fn keys_of<'a>(value: &'a serde_json::Value, keys: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::Object(map) => map.iter().for_each(|(k, v)| {
                keys.push(k);
                keys_of(v, keys);
            }),
            serde_json::Value::Array(items) => items.iter().for_each(|v| keys_of(v, keys)),
            _ => {}
        }
    }

    #[test]
    fn every_template_key_has_a_place_in_key_order() {
        let mut spec = rootful_template();
        let mut keys = Vec::new();
        keys_of(&spec, &mut keys);
        assert!(
            keys.iter().all(|k| key_rank(k) < KEY_ORDER.len()),
            "{keys:?}"
        );
        make_rootless(&mut spec, 1, 1);
        let mut keys = Vec::new();
        keys_of(&spec, &mut keys);
        assert!(
            keys.iter().all(|k| key_rank(k) < KEY_ORDER.len()),
            "{keys:?}"
        );
    }

    #[test]
    fn rootful_template_matches_runc_defaults() {
        let spec = parse(&default_spec(None));
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.args().as_ref().unwrap(), &["sh"]);
        assert_eq!(process.terminal(), Some(true));
        assert_eq!(
            spec.root().as_ref().unwrap().path().to_str(),
            Some("rootfs")
        );
        assert_eq!(spec.hostname().as_deref(), Some("runc"));
        let mounts = spec.mounts().as_ref().unwrap();
        assert_eq!(mounts.len(), 7);
        assert!(mounts[0].options().is_none(), "/proc has no options key");
        assert!(mounts[2]
            .options()
            .as_ref()
            .unwrap()
            .contains(&"gid=5".to_string()));
        assert_eq!(mounts[5].typ().as_deref(), Some("sysfs"));
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.uid_mappings().is_none());
        assert_eq!(
            linux
                .resources()
                .as_ref()
                .unwrap()
                .devices()
                .as_ref()
                .unwrap()
                .len(),
            1
        );
        use LinuxNamespaceType::*;
        assert_eq!(namespace_kinds(&spec), [Pid, Network, Ipc, Uts, Mount]);
        assert_eq!(linux.masked_paths().as_ref().unwrap().len(), 10);
    }

    #[test]
    fn rootless_template_maps_caller_and_drops_privileged_bits() {
        let text = default_spec(Some((1234, 2345)));
        let spec = parse(&text);
        let linux = spec.linux().as_ref().unwrap();
        let uid = &linux.uid_mappings().as_ref().unwrap()[0];
        let gid = &linux.gid_mappings().as_ref().unwrap()[0];
        assert_eq!(
            (uid.container_id(), uid.host_id(), uid.size()),
            (0, 1234, 1)
        );
        assert_eq!(
            (gid.container_id(), gid.host_id(), gid.size()),
            (0, 2345, 1)
        );
        assert!(linux.resources().is_none());
        use LinuxNamespaceType::*;
        assert_eq!(namespace_kinds(&spec), [Pid, Ipc, Uts, Mount, User]);
        let mounts = spec.mounts().as_ref().unwrap();
        assert!(!mounts[2]
            .options()
            .as_ref()
            .unwrap()
            .contains(&"gid=5".to_string()));
        assert_eq!(mounts[5].source().as_ref().unwrap().to_str(), Some("/sys"));
        assert_eq!(mounts[5].options().as_ref().unwrap()[0], "rbind");
        // Key order is part of the contract: mappings come before namespaces.
        assert!(text.find("\"uidMappings\"").unwrap() < text.find("\"namespaces\"").unwrap());
    }
}
