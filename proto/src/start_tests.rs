//! Fixtures for `start` stdin classification. Each message appears both
//! encoded by our prost structs and hand-assembled from wire bytes, so an
//! encoder bug cannot hide in a round trip.

use std::path::PathBuf;

use prost::Message;

use super::*;
use crate::messages::{Extension, LogLevel, RuncOptions, RuntimeConfigOptions, RUNC_OPTIONS_TYPE};

/// Hand-assembles one length-delimited field: key byte, one-byte length,
/// payload. Keys: field N with wire type 2 is `N << 3 | 2` (1 → 0x0a,
/// 2 → 0x12, 4 → 0x22, 5 → 0x2a, 6 → 0x32, 7 → 0x3a, 8 → 0x42, 9 → 0x4a).
fn ld(key: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 0x80, "one-byte length only");
    let mut out = vec![key, payload.len() as u8];
    out.extend_from_slice(payload);
    out
}

/// runc Options { root (7) = "/run/rs", systemd_cgroup (9) = true }, in
/// Go's field order.
fn runc_options_wire() -> Vec<u8> {
    let mut v = ld(0x3a, b"/run/rs");
    v.extend_from_slice(&[0x48, 0x01]);
    v
}

fn expected_runc() -> RuntimeOptions {
    RuntimeOptions {
        systemd_cgroup: true,
        root: Some(PathBuf::from("/run/rs")),
        ..Default::default()
    }
}

/// What containerd 2.3 `pkg/shim/util.go` writes for a CRI pod in k8s.io
/// with `--log-level debug` and runc options configured: fields in number
/// order, zero values omitted, the options `Any` (bare typeurl name)
/// wrapped in an `Extension`.
fn containerd_bootstrap_wire() -> Vec<u8> {
    let any = [
        ld(0x0a, RUNC_OPTIONS_TYPE.as_bytes()),
        ld(0x12, &runc_options_wire()),
    ]
    .concat();
    let extension = ld(0x0a, &any);
    let log_level_debug = [
        0x18, 0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ];
    [
        ld(0x0a, b"c0ffee"),
        ld(0x12, b"k8s.io"),
        log_level_debug.to_vec(),
        ld(0x22, b"2.3.4"),
        ld(0x2a, b"/run/containerd/containerd.sock.ttrpc"),
        ld(0x32, b"/run/containerd/containerd.sock"),
        ld(0x3a, b"/usr/bin/containerd"),
        ld(0x42, &extension),
        ld(0x4a, b"/run/containerd/s"),
    ]
    .concat()
}

#[test]
fn empty_stdin() {
    assert_eq!(parse_start_stdin(&[]).unwrap(), StartInput::Empty);
    assert_eq!(StartInput::Empty.runtime_options().unwrap(), None);
}

#[test]
fn bare_any_runc_options_encoded() {
    let opts = RuncOptions {
        systemd_cgroup: true,
        root: "/run/rs".into(),
        ..Default::default()
    };
    let prefixed = prost_types::Any::from_msg(&opts).unwrap();
    assert_eq!(
        prefixed.type_url,
        "type.googleapis.com/containerd.runc.v1.Options"
    );
    let bare = prost_types::Any {
        type_url: RUNC_OPTIONS_TYPE.into(),
        value: opts.encode_to_vec(),
    };
    for any in [prefixed, bare] {
        let got = parse_start_stdin(&any.encode_to_vec()).unwrap();
        assert_eq!(got, StartInput::Options(expected_runc()));
    }
}

#[test]
fn bare_any_runc_options_hand_assembled() {
    let bytes = [
        ld(0x0a, RUNC_OPTIONS_TYPE.as_bytes()),
        ld(0x12, &runc_options_wire()),
    ]
    .concat();
    assert_eq!(
        parse_start_stdin(&bytes).unwrap(),
        StartInput::Options(expected_runc())
    );
}

#[test]
fn bare_any_with_all_default_options_has_no_value_field() {
    // An all-zero RuncOptions encodes to nothing, so the Any has field 1 only.
    let bytes = ld(0x0a, RUNC_OPTIONS_TYPE.as_bytes());
    assert_eq!(
        parse_start_stdin(&bytes).unwrap(),
        StartInput::Options(RuntimeOptions::default())
    );
}

#[test]
fn bare_any_runtime_config_toml_encoded() {
    let opts = RuntimeConfigOptions {
        config_body: b"SystemdCgroup = true\nBinaryName = \"crun\"\n".to_vec(),
        ..Default::default()
    };
    let any = prost_types::Any::from_msg(&opts).unwrap();
    let StartInput::Options(got) = parse_start_stdin(&any.encode_to_vec()).unwrap() else {
        panic!("expected Options");
    };
    assert!(got.systemd_cgroup);
    assert_eq!(got.binary_name.as_deref(), Some("crun"));
}

#[test]
fn bare_any_runtime_config_toml_hand_assembled() {
    let body = b"SystemdCgroup = true\nBinaryName = \"crun\"\n";
    let bytes = [
        ld(0x0a, b"type.googleapis.com/runtimeoptions.v1.Options"),
        ld(0x12, &ld(0x1a, body)),
    ]
    .concat();
    let StartInput::Options(got) = parse_start_stdin(&bytes).unwrap() else {
        panic!("expected Options");
    };
    assert!(got.systemd_cgroup);
    assert_eq!(got.binary_name.as_deref(), Some("crun"));
}

#[test]
fn bootstrap_params_trap_hand_assembled() {
    let bytes = containerd_bootstrap_wire();

    // The trap is real: these bytes decode as an Any whose value is the
    // namespace, and that value is not runc Options.
    let naive = prost_types::Any::decode(bytes.as_slice()).unwrap();
    assert_eq!(naive.type_url, "c0ffee");
    assert_eq!(naive.value, b"k8s.io");
    assert!(RuncOptions::decode(naive.value.as_slice()).is_err());

    let StartInput::Bootstrap(params) = parse_start_stdin(&bytes).unwrap() else {
        panic!("expected Bootstrap");
    };
    assert_eq!(params.instance_id, "c0ffee");
    assert_eq!(params.namespace, "k8s.io");
    assert_eq!(params.log_level_nearest(), LogLevel::Debug);
    assert_eq!(params.containerd_version, "2.3.4");
    assert_eq!(
        params.containerd_ttrpc_address,
        "/run/containerd/containerd.sock.ttrpc"
    );
    assert_eq!(
        params.containerd_grpc_address,
        "/run/containerd/containerd.sock"
    );
    assert_eq!(params.containerd_binary, "/usr/bin/containerd");
    assert_eq!(params.socket_dir.as_deref(), Some("/run/containerd/s"));
    assert_eq!(params.runtime_options().unwrap(), Some(expected_runc()));
}

#[test]
fn bootstrap_params_encoded_matches_hand_assembled() {
    let params = BootstrapParams {
        instance_id: "c0ffee".into(),
        namespace: "k8s.io".into(),
        log_level: LogLevel::Debug as i32,
        containerd_version: "2.3.4".into(),
        containerd_ttrpc_address: "/run/containerd/containerd.sock.ttrpc".into(),
        containerd_grpc_address: "/run/containerd/containerd.sock".into(),
        containerd_binary: "/usr/bin/containerd".into(),
        extensions: vec![Extension {
            value: Some(prost_types::Any {
                type_url: RUNC_OPTIONS_TYPE.into(),
                value: RuncOptions {
                    root: "/run/rs".into(),
                    systemd_cgroup: true,
                    ..Default::default()
                }
                .encode_to_vec(),
            }),
        }],
        socket_dir: Some("/run/containerd/s".into()),
    };
    let bytes = params.encode_to_vec();
    assert_eq!(bytes, containerd_bootstrap_wire());
    assert_eq!(
        parse_start_stdin(&bytes).unwrap(),
        StartInput::Bootstrap(params)
    );
}

#[test]
fn bootstrap_with_runtime_config_among_other_extensions() {
    let foreign = prost_types::Any {
        type_url: "containerd.io/nri.v1.PluginConfig".into(),
        value: vec![0xff, 0xff], // never decoded
    };
    let ours = prost_types::Any::from_msg(&RuntimeConfigOptions {
        config_body: b"ShimCgroup = \"/rs-shims\"\n".to_vec(),
        ..Default::default()
    })
    .unwrap();
    let params = BootstrapParams {
        instance_id: "id".into(),
        namespace: "default".into(),
        containerd_version: "2.3.0".into(),
        extensions: vec![
            Extension { value: None },
            Extension {
                value: Some(foreign),
            },
            Extension { value: Some(ours) },
        ],
        ..Default::default()
    };
    let input = parse_start_stdin(&params.encode_to_vec()).unwrap();
    let opts = input.runtime_options().unwrap().unwrap();
    assert_eq!(opts.shim_cgroup.as_deref(), Some("/rs-shims"));
}

#[test]
fn bootstrap_without_options_extension() {
    // containerd sends BootstrapParams on every 2.3 start, options or not.
    let bytes = [
        ld(0x0a, b"id"),
        ld(0x12, b"default"),
        ld(0x22, b"2.3.0"),
        ld(0x3a, b"/usr/bin/containerd"),
    ]
    .concat();
    let input = parse_start_stdin(&bytes).unwrap();
    assert!(matches!(input, StartInput::Bootstrap(_)));
    assert_eq!(input.runtime_options().unwrap(), None);
}

#[test]
fn bootstrap_with_broken_options_still_parses() {
    let any = [ld(0x0a, RUNC_OPTIONS_TYPE.as_bytes()), ld(0x12, b"k8s.io")].concat();
    let bytes = [ld(0x12, b"default"), ld(0x42, &ld(0x0a, &any))].concat();
    let input = parse_start_stdin(&bytes).unwrap();
    let StartInput::Bootstrap(params) = &input else {
        panic!("expected Bootstrap");
    };
    assert_eq!(params.namespace, "default");
    let err = input.runtime_options().unwrap_err().to_string();
    assert!(err.contains("containerd.runc.v1.Options"), "{err}");
}

#[test]
fn bare_any_is_not_mistaken_for_bootstrap() {
    // The reverse trap: a bare Any whose value happens to be UTF-8 decodes
    // as BootstrapParams (instance_id = type_url), losing the options.
    let bytes = [
        ld(0x0a, RUNC_OPTIONS_TYPE.as_bytes()),
        ld(0x12, &ld(0x3a, b"/run/rs")),
    ]
    .concat();
    let as_params = BootstrapParams::decode(bytes.as_slice()).unwrap();
    assert_eq!(as_params.instance_id, RUNC_OPTIONS_TYPE);

    let StartInput::Options(got) = parse_start_stdin(&bytes).unwrap() else {
        panic!("expected Options");
    };
    assert_eq!(got.root, Some(PathBuf::from("/run/rs")));
}

#[test]
fn bare_any_of_unknown_type() {
    let bytes = [ld(0x0a, b"example.com/foo.v1.Config"), ld(0x12, b"x")].concat();
    let err = parse_start_stdin(&bytes).unwrap_err();
    assert!(matches!(err, Error::UnsupportedOptionsType { .. }), "{err}");
    assert!(err.to_string().contains("foo.v1.Config"), "{err}");
}

#[test]
fn garbage_bytes_give_a_clear_error() {
    for garbage in [
        &b"\xff\xff\xff"[..],
        b"hello world\n",
        b"unix:///run/containerd/s/abc",
        b"{\"version\":2}",
        b"\x0a\x10short",
    ] {
        let err = parse_start_stdin(garbage).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("not a protobuf message")
                || msg.contains("neither google.protobuf.Any nor BootstrapParams"),
            "{garbage:?}: {msg}"
        );
    }
}

#[test]
fn protobuf_of_another_shape_is_rejected() {
    // Field 1 as a varint: valid protobuf, but Any's field 1 is a string.
    let err = parse_start_stdin(&[0x08, 0x01]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnexpectedField {
                field: 1,
                wire_type: 0
            }
        ),
        "{err}"
    );
    // Only an unknown high field.
    let err = parse_start_stdin(&[0x50, 0x01]).unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedField { field: 10, .. }),
        "{err}"
    );
}

#[test]
fn bootstrap_with_mistyped_field_names_the_message() {
    // namespace (2) is a string, but log_level (3) arrives as LEN.
    let bytes = [ld(0x12, b"default"), ld(0x1a, b"x")].concat();
    let err = parse_start_stdin(&bytes).unwrap_err().to_string();
    assert!(err.contains("BootstrapParams"), "{err}");
}

#[test]
fn bootstrap_result_encoding() {
    let bytes = encode_bootstrap_result(3, "unix:///run/containerd/s/ab", ShimProtocol::Ttrpc);
    let want = [
        vec![0x08, 0x03],
        ld(0x12, b"unix:///run/containerd/s/ab"),
        ld(0x1a, b"ttrpc"),
    ]
    .concat();
    assert_eq!(bytes, want);
    let back = BootstrapResult::decode(bytes.as_slice()).unwrap();
    assert_eq!(back.version, 3);
    assert_eq!(back.protocol, "ttrpc");
    assert!(back.capabilities.is_empty() && back.metadata.is_empty());
    assert_eq!(ShimProtocol::Grpc.as_str(), "grpc");
}
