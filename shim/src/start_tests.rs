//! Unit tests for `start`'s decisions (no sockets, no processes).

use super::*;
use prost::Message;
use rs_proto::{BootstrapParams, BootstrapResult, Extension, RuncOptions};

fn flags(ns: &str, id: &str, address: &str) -> Flags {
    Flags {
        namespace: ns.into(),
        id: id.into(),
        address: address.into(),
        ..Default::default()
    }
}

fn bundle(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    dir
}

fn runc_any(opts: &RuncOptions) -> rs_proto::Any {
    rs_proto::Any {
        type_url: "containerd.runc.v1.Options".into(),
        value: opts.encode_to_vec(),
    }
}

fn bootstrap(socket_dir: Option<&str>, opts: Option<&RuncOptions>) -> BootstrapParams {
    BootstrapParams {
        instance_id: "boot-id".into(),
        namespace: "boot-ns".into(),
        containerd_version: "2.3.0".into(),
        containerd_ttrpc_address: "/run/containerd/containerd.sock.ttrpc".into(),
        containerd_grpc_address: "/run/containerd/containerd.sock".into(),
        containerd_binary: "/usr/bin/containerd".into(),
        extensions: opts
            .map(|o| Extension {
                value: Some(runc_any(o)),
            })
            .into_iter()
            .collect(),
        socket_dir: socket_dir.map(String::from),
        ..Default::default()
    }
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn grouping_precedence() {
    let group = "io.containerd.runc.v2.group";
    let sandbox = "io.kubernetes.cri.sandbox-id";
    assert_eq!(grouping_key(&map(&[]), "id"), "id");
    assert_eq!(grouping_key(&map(&[("other", "x")]), "id"), "id");
    assert_eq!(grouping_key(&map(&[(sandbox, "pod")]), "id"), "pod");
    assert_eq!(grouping_key(&map(&[(group, "g")]), "id"), "g");
    assert_eq!(
        grouping_key(&map(&[(sandbox, "pod"), (group, "g")]), "id"),
        "g"
    );
    // Present but empty still wins, as Go's `if v, ok := m[k]; ok`.
    assert_eq!(
        grouping_key(&map(&[(group, ""), (sandbox, "pod")]), "id"),
        ""
    );
}

#[test]
fn annotations_from_config_json() {
    let b =
        bundle(r#"{"ociVersion":"1.0.2","annotations":{"io.kubernetes.cri.sandbox-id":"pod1"}}"#);
    let p = plan(&flags("k8s.io", "ctr1", "/c.sock"), b"", b.path()).unwrap();
    assert_eq!(
        p.address,
        socket::socket_address(socket::DEFAULT_SOCKET_DIR, "/c.sock", "k8s.io", "pod1")
    );
    // null annotations and none at all fall back to the id.
    for config in [r#"{"annotations":null}"#, "{}"] {
        let b = bundle(config);
        let p = plan(&flags("n", "ctr1", "/c.sock"), b"", b.path()).unwrap();
        assert_eq!(
            p.address,
            socket::socket_address(socket::DEFAULT_SOCKET_DIR, "/c.sock", "n", "ctr1")
        );
    }
}

#[test]
fn missing_or_bad_config_fails() {
    let dir = tempfile::tempdir().unwrap();
    let err = plan(&flags("n", "i", "/a"), b"", dir.path()).unwrap_err();
    assert!(err.to_string().contains("config.json"), "{err}");
    let b = bundle(r#"{"annotations":{"a":1}}"#);
    assert!(plan(&flags("n", "i", "/a"), b"", b.path()).is_err());
}

#[test]
fn namespace_and_id_are_required() {
    let b = bundle("{}");
    let err = plan(&flags("", "i", "/a"), b"", b.path()).unwrap_err();
    assert!(err.to_string().contains("namespace"), "{err}");
    let err = plan(&flags("n", "", "/a"), b"", b.path()).unwrap_err();
    assert!(err.to_string().contains("id"), "{err}");
}

#[test]
fn empty_stdin_is_legacy_bare_address() {
    let b = bundle("{}");
    let p = plan(
        &flags("default", "abc", "/run/containerd/containerd.sock"),
        b"",
        b.path(),
    )
    .unwrap();
    assert_eq!(p.input, StartInput::Empty);
    assert_eq!(p.options, RuntimeOptions::default());
    let out = response(&p.input, &p.address);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "unix:///run/containerd/s/8cb244a719603fe00870d5ce1d8e1f1db43a654cb993d107df1f1ae23ddffa59"
    );
}

#[test]
fn runc_options_any_is_legacy_with_options() {
    let b = bundle("{}");
    let opts = RuncOptions {
        shim_cgroup: "/pods/shim".into(),
        root: "/run/rs-root".into(),
        ..Default::default()
    };
    let stdin = runc_any(&opts).encode_to_vec();
    let p = plan(&flags("n", "i", "/a"), &stdin, b.path()).unwrap();
    assert!(matches!(p.input, StartInput::Options(_)));
    assert_eq!(p.options.shim_cgroup.as_deref(), Some("/pods/shim"));
    assert_eq!(p.options.root, Some(PathBuf::from("/run/rs-root")));
    assert_eq!(response(&p.input, &p.address), p.address.as_bytes());
}

#[test]
fn bootstrap_params_give_protobuf_v3_result_and_socket_dir() {
    let b = bundle("{}");
    let opts = RuncOptions {
        systemd_cgroup: true,
        ..Default::default()
    };
    let stdin = bootstrap(Some("/run/alt/s"), Some(&opts)).encode_to_vec();
    let p = plan(
        &flags("n", "i", "/run/containerd/containerd.sock"),
        &stdin,
        b.path(),
    )
    .unwrap();
    assert!(p.options.systemd_cgroup);
    assert!(p.address.starts_with("unix:///run/alt/s/"), "{}", p.address);
    let out = response(&p.input, &p.address);
    let got = BootstrapResult::decode(out.as_slice()).unwrap();
    assert_eq!(got.version, 3);
    assert_eq!(got.address, p.address);
    assert_eq!(got.protocol, "ttrpc");
}

#[test]
fn bootstrap_params_fill_missing_flags() {
    let b = bundle("{}");
    let stdin = bootstrap(None, None).encode_to_vec();
    let p = plan(&Flags::default(), &stdin, b.path()).unwrap();
    assert_eq!(p.namespace, "boot-ns");
    assert_eq!(p.id, "boot-id");
    assert_eq!(p.grpc_address, "/run/containerd/containerd.sock");
    assert_eq!(
        p.address,
        socket::socket_address(
            socket::DEFAULT_SOCKET_DIR,
            "/run/containerd/containerd.sock",
            "boot-ns",
            "boot-id"
        )
    );
    // Flags win over params when both are present.
    let p = plan_with(&flags("flag-ns", "flag-id", "/f.sock"), &stdin, b.path());
    assert_eq!(
        (p.namespace.as_str(), p.id.as_str()),
        ("flag-ns", "flag-id")
    );
}

fn plan_with(f: &Flags, stdin: &[u8], bundle: &Path) -> Plan {
    plan(f, stdin, bundle).unwrap()
}

#[test]
fn unknown_stdin_means_no_options() {
    // Not protobuf, an unknown message shape (field 15), an Any of a
    // foreign type.
    let foreign = rs_proto::Any {
        type_url: "type.googleapis.com/foo.Bar".into(),
        value: vec![1, 2, 3],
    }
    .encode_to_vec();
    for stdin in [&[0xff, 0xff, 0xff][..], &[0x78, 0x01][..], &foreign[..]] {
        assert_eq!(
            classify_stdin(stdin).unwrap(),
            StartInput::Empty,
            "{stdin:?}"
        );
    }
}

#[test]
fn broken_known_options_fail() {
    let bad = rs_proto::Any {
        type_url: "containerd.runc.v1.Options".into(),
        value: b"k8s.io".to_vec(),
    }
    .encode_to_vec();
    let err = classify_stdin(&bad).unwrap_err().to_string();
    assert!(err.contains("containerd.runc.v1.Options"), "{err}");
    // BootstrapParams-shaped (field 5) but mistyped: containerd ≥ 2.3 sent
    // something we cannot read, so the socket dir is unknown: fail.
    let err = classify_stdin(&[0x28, 0x01]).unwrap_err().to_string();
    assert!(err.contains("BootstrapParams"), "{err}");
}

#[test]
fn response_forms() {
    let addr = "unix:///run/containerd/s/x";
    assert_eq!(response(&StartInput::Empty, addr), addr.as_bytes());
    let out = response(&StartInput::Bootstrap(BootstrapParams::default()), addr);
    assert_eq!(
        BootstrapResult::decode(out.as_slice()).unwrap().version,
        TASK_API_VERSION
    );
}

#[test]
fn address_file_is_written_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    write_address(dir.path(), "unix:///run/containerd/s/a").unwrap();
    write_address(dir.path(), "unix:///run/containerd/s/b").unwrap();
    let got = std::fs::read_to_string(dir.path().join(ADDRESS_FILE)).unwrap();
    // Exactly the address, no newline: containerd dials the file's bytes.
    assert_eq!(got, "unix:///run/containerd/s/b");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![ADDRESS_FILE], "no temp file left");
}
