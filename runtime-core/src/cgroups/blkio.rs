//! blkio (v1) / io (v2) controller: `linux.resources.blockIO`.
//!
//! v1 writes blkio.weight (or blkio.bfq.weight where the kernel has no CFQ, as runc does),
//! leaf weights and one "MAJ:MIN VALUE" line per device into the weight and throttle files.
//! v2 writes io.bfq.weight when BFQ is there, else io.weight with runc's linear conversion from
//! the blkio range 10..1000 to 1..10000; per-device throttles become one io.max line per device
//! ("MAJ:MIN rbps=.. wbps=.. riops=.. wiops=.."). A weight of 0 means unset, as in runc.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use super::{fs, Error, Result};

/// One planned write whose file name is only known at run time: (file, value).
pub(crate) type Line = (String, String);

const FIELD: &str = "linux.resources.blockIO";
const WEIGHT_RANGE: std::ops::RangeInclusive<u16> = 10..=1000;

/// Checks every value without touching a cgroup.
pub(crate) fn check(b: &LinuxBlockIo) -> Result<()> {
    check_weight(&format!("{FIELD}.weight"), b.weight())?;
    check_weight(&format!("{FIELD}.leafWeight"), b.leaf_weight())?;
    for (i, wd) in b.weight_device().iter().flatten().enumerate() {
        let field = format!("{FIELD}.weightDevice[{i}]");
        check_device(&field, wd.major(), wd.minor())?;
        check_weight(&format!("{field}.weight"), wd.weight())?;
        check_weight(&format!("{field}.leafWeight"), wd.leaf_weight())?;
    }
    for (name, list) in throttles(b) {
        for (i, td) in list.iter().enumerate() {
            check_device(&format!("{FIELD}.{name}[{i}]"), td.major(), td.minor())?;
        }
    }
    Ok(())
}

fn check_weight(field: &str, w: Option<u16>) -> Result<()> {
    match w {
        Some(w) if w != 0 && !WEIGHT_RANGE.contains(&w) => Err(Error::InvalidValue {
            field: field.into(),
            reason: format!("{w} is out of range 10-1000"),
        }),
        _ => Ok(()),
    }
}

/// Linux device numbers: 12-bit major, 20-bit minor.
fn check_device(field: &str, major: i64, minor: i64) -> Result<()> {
    if !(0..1 << 12).contains(&major) || !(0..1 << 20).contains(&minor) {
        return Err(Error::InvalidValue {
            field: field.into(),
            reason: format!("{major}:{minor} is not a device number"),
        });
    }
    Ok(())
}

/// The throttle lists by OCI name, with v1 file and v2 io.max key.
fn throttles(b: &LinuxBlockIo) -> [(&'static str, &[LinuxThrottleDevice]); 4] {
    fn l(v: &Option<Vec<LinuxThrottleDevice>>) -> &[LinuxThrottleDevice] {
        v.as_deref().unwrap_or(&[])
    }
    [
        ("throttleReadBpsDevice", l(b.throttle_read_bps_device())),
        ("throttleWriteBpsDevice", l(b.throttle_write_bps_device())),
        ("throttleReadIOPSDevice", l(b.throttle_read_iops_device())),
        ("throttleWriteIOPSDevice", l(b.throttle_write_iops_device())),
    ]
}

const V1_THROTTLE: [&str; 4] = [
    "blkio.throttle.read_bps_device",
    "blkio.throttle.write_bps_device",
    "blkio.throttle.read_iops_device",
    "blkio.throttle.write_iops_device",
];
const V2_KEYS: [&str; 4] = ["rbps", "wbps", "riops", "wiops"];

fn set(w: Option<u16>) -> Option<u16> {
    w.filter(|w| *w != 0)
}

pub(crate) fn apply_v1(b: &LinuxBlockIo, dir: &Path) -> Result<()> {
    write_lines(dir, &plan_v1(b, dir.join("blkio.weight").exists()))
}

/// `cfq`: whether blkio.weight exists; without it the BFQ files take the weights.
pub(crate) fn plan_v1(b: &LinuxBlockIo, cfq: bool) -> Vec<Line> {
    let (weight, weight_device) = match cfq {
        true => ("blkio.weight", "blkio.weight_device"),
        false => ("blkio.bfq.weight", "blkio.bfq.weight_device"),
    };
    let mut out: Vec<Line> = Vec::new();
    let mut push = |f: &str, v: String| out.push((f.to_string(), v));
    if let Some(w) = set(b.weight()) {
        push(weight, w.to_string());
    }
    if let Some(w) = set(b.leaf_weight()) {
        push("blkio.leaf_weight", w.to_string());
    }
    for wd in b.weight_device().iter().flatten() {
        let dev = format!("{}:{}", wd.major(), wd.minor());
        if let Some(w) = set(wd.weight()) {
            push(weight_device, format!("{dev} {w}"));
        }
        if let Some(w) = set(wd.leaf_weight()) {
            push("blkio.leaf_weight_device", format!("{dev} {w}"));
        }
    }
    for ((_, list), file) in throttles(b).into_iter().zip(V1_THROTTLE) {
        for td in list {
            push(file, format!("{}:{} {}", td.major(), td.minor(), td.rate()));
        }
    }
    out
}

/// What the v2 directory offers: io.bfq.weight's content when present.
pub(crate) fn apply_v2(b: &LinuxBlockIo, dir: &Path) -> Result<()> {
    let bfq = fs::read(dir, "io.bfq.weight").ok();
    write_lines(dir, &plan_v2(b, bfq.as_deref()))
}

/// runc's blkio → io.weight conversion: [10, 1000] linearly onto [1, 10000].
pub(crate) fn io_weight(blkio: u16) -> u64 {
    1 + (u64::from(blkio) - 10) * 9999 / 990
}

/// `bfq`: the content of io.bfq.weight, None when BFQ is not available. Kernels since 5.4 list
/// per-device weights there ("default 100\n8:0 200"); older ones hold a bare number and take
/// no per-device weights.
pub(crate) fn plan_v2(b: &LinuxBlockIo, bfq: Option<&str>) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::new();
    if let Some(w) = set(b.weight()) {
        match bfq {
            Some(_) => out.push(("io.bfq.weight".into(), w.to_string())),
            None => out.push(("io.weight".into(), io_weight(w).to_string())),
        }
    }
    if set(b.leaf_weight()).is_some() {
        log::warn!("{FIELD}.leafWeight has no cgroup v2 equivalent; ignored");
    }
    let per_device = bfq.is_some_and(|s| s.trim().parse::<u64>().is_err());
    for wd in b.weight_device().iter().flatten() {
        match (set(wd.weight()), per_device) {
            (Some(w), true) => out.push((
                "io.bfq.weight".into(),
                format!("{}:{} {w}", wd.major(), wd.minor()),
            )),
            (Some(_), false) => log::warn!(
                "{FIELD}.weightDevice {}:{} ignored: needs BFQ per-device weights (Linux 5.4)",
                wd.major(),
                wd.minor()
            ),
            (None, _) => {}
        }
    }
    // One io.max line per device with every limit given for it, in first-seen device order.
    let mut devices: Vec<((i64, i64), Vec<String>)> = Vec::new();
    for ((_, list), key) in throttles(b).into_iter().zip(V2_KEYS) {
        for td in list {
            let dev = (td.major(), td.minor());
            let kv = format!("{key}={}", td.rate());
            match devices.iter_mut().find(|(d, _)| *d == dev) {
                Some((_, kvs)) => kvs.push(kv),
                None => devices.push((dev, vec![kv])),
            }
        }
    }
    for ((maj, min), kvs) in devices {
        out.push(("io.max".into(), format!("{maj}:{min} {}", kvs.join(" "))));
    }
    out
}

/// Writes each line with its own write(2): the kernel takes one device per write.
pub(crate) fn write_lines(dir: &Path, lines: &[Line]) -> Result<()> {
    lines.iter().try_for_each(|(f, v)| fs::write(dir, f, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blkio(json: serde_json::Value) -> LinuxBlockIo {
        serde_json::from_value(json).unwrap()
    }

    fn lines(v: &[(&str, &str)]) -> Vec<Line> {
        v.iter()
            .map(|(f, l)| (f.to_string(), l.to_string()))
            .collect()
    }

    fn full() -> LinuxBlockIo {
        blkio(serde_json::json!({
            "weight": 500, "leafWeight": 300,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 200, "leafWeight": 100}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 50}]
        }))
    }

    #[test]
    fn v1_plan_cfq_and_bfq() {
        let want = [
            ("blkio.weight", "500"),
            ("blkio.leaf_weight", "300"),
            ("blkio.weight_device", "8:0 200"),
            ("blkio.leaf_weight_device", "8:0 100"),
            ("blkio.throttle.read_bps_device", "8:0 1048576"),
            ("blkio.throttle.write_bps_device", "8:0 2097152"),
            ("blkio.throttle.read_iops_device", "8:16 100"),
            ("blkio.throttle.write_iops_device", "8:0 50"),
        ];
        assert_eq!(plan_v1(&full(), true), lines(&want));
        let bfq = plan_v1(&full(), false);
        assert_eq!(bfq[0], lines(&[("blkio.bfq.weight", "500")])[0]);
        assert_eq!(bfq[2], lines(&[("blkio.bfq.weight_device", "8:0 200")])[0]);
    }

    #[test]
    fn v1_apply_picks_weight_file() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for f in ["blkio.bfq.weight", "blkio.throttle.read_bps_device"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        let b = blkio(serde_json::json!({"weight": 20,
            "throttleReadBpsDevice": [{"major": 7, "minor": 1, "rate": 4096}]}));
        apply_v1(&b, d).unwrap();
        assert_eq!(fs::read(d, "blkio.bfq.weight").unwrap(), "20");
        assert_eq!(
            fs::read(d, "blkio.throttle.read_bps_device").unwrap(),
            "7:1 4096"
        );
        std::fs::write(d.join("blkio.weight"), "").unwrap();
        apply_v1(&b, d).unwrap();
        assert_eq!(fs::read(d, "blkio.weight").unwrap(), "20");
    }

    #[test]
    fn weight_conversion() {
        assert_eq!(io_weight(10), 1);
        assert_eq!(io_weight(500), 4950);
        assert_eq!(io_weight(1000), 10000);
        assert_eq!(io_weight(100), 910);
    }

    #[test]
    fn v2_plan_io_weight_and_io_max() {
        let want = [
            ("io.weight", "4950"),
            ("io.max", "8:0 rbps=1048576 wbps=2097152 wiops=50"),
            ("io.max", "8:16 riops=100"),
        ];
        assert_eq!(plan_v2(&full(), None), lines(&want));
        let old_bfq = plan_v2(&full(), Some("100"));
        assert_eq!(old_bfq[0], lines(&[("io.bfq.weight", "500")])[0]);
        assert_eq!(old_bfq.len(), 3, "no per-device weight on old BFQ");
        let new_bfq = plan_v2(&full(), Some("default 100\n"));
        assert_eq!(new_bfq[1], lines(&[("io.bfq.weight", "8:0 200")])[0]);
    }

    #[test]
    fn v2_apply_on_fake_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for f in ["io.weight", "io.max"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        let b = blkio(serde_json::json!({"weight": 1000,
            "throttleWriteIOPSDevice": [{"major": 253, "minor": 2, "rate": 7}]}));
        apply_v2(&b, d).unwrap();
        assert_eq!(fs::read(d, "io.weight").unwrap(), "10000");
        assert_eq!(fs::read(d, "io.max").unwrap(), "253:2 wiops=7");
    }

    #[test]
    fn zero_weight_is_unset() {
        let b = blkio(serde_json::json!({"weight": 0}));
        check(&b).unwrap();
        assert!(plan_v1(&b, true).is_empty() && plan_v2(&b, None).is_empty());
    }

    #[test]
    fn bad_values_name_the_field() {
        let cases = [
            (
                serde_json::json!({"weight": 5}),
                "blockIO.weight: 5 is out of range 10-1000",
            ),
            (
                serde_json::json!({"leafWeight": 1001}),
                "blockIO.leafWeight: 1001",
            ),
            (
                serde_json::json!({"weightDevice": [{"major": 8, "minor": 0, "weight": 2000}]}),
                "blockIO.weightDevice[0].weight: 2000",
            ),
            (
                serde_json::json!({"throttleReadBpsDevice": [{"major": -1, "minor": 0, "rate": 1}]}),
                "blockIO.throttleReadBpsDevice[0]: -1:0 is not a device number",
            ),
            (
                serde_json::json!({"throttleWriteIOPSDevice": [{"major": 8, "minor": 1048576, "rate": 1}]}),
                "blockIO.throttleWriteIOPSDevice[0]",
            ),
        ];
        for (json, want) in cases {
            let err = check(&blkio(json)).unwrap_err().to_string();
            assert!(err.contains(want), "{err} lacks {want}");
        }
    }
}
