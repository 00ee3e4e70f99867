//! `rsrun events`: runc's event stream for one container, one JSON object per line,
//! `{"type":"stats","id":ID,"data":{...}}` with runc's `types.Stats` field names. With
//! `--stats`, one sample; otherwise a sample every `--interval` until the container stops.
//!
//! A figure the host does not provide is left out of the JSON (a Go decoder reads it as
//! runc's zero). Where v1 and v2 differ, v2 figures are shaped as runc shapes them: swap is
//! memory+swap, and an unlimited pids limit is omitted (runc's 0).

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use runtime_core::cgroups::{self, Layout, MemoryEntry, Stats, UNLIMITED};
use runtime_core::container;
use runtime_core::state::Root;
use serde_json::{json, Map, Value};

/// One event of the stream. runc also reports `oom` events (from the memory controller's
/// OOM notification): such a source would be a variant here and a second thing
/// [`Stream::next`] waits on besides the interval.
enum Event {
    Stats(Box<Stats>),
}

impl Event {
    /// runc's `types.Event`.
    fn to_json(&self, id: &str) -> Value {
        match self {
            Event::Stats(s) => json!({"type": "stats", "id": id, "data": stats_json(s)}),
        }
    }
}

/// The events of one container, in order.
struct Stream<'a> {
    root: &'a Root,
    id: &'a str,
    interval: Duration,
    next_sample: Instant,
}

impl Stream<'_> {
    /// Waits for the next event. None once the container has stopped (or is gone).
    fn next(&mut self) -> Option<Event> {
        loop {
            let now = Instant::now();
            if now < self.next_sample {
                std::thread::sleep(self.next_sample - now);
            }
            self.next_sample += self.interval;
            match container::stats(self.root, self.id) {
                Ok(s) => return Some(Event::Stats(Box::new(s))),
                Err(runtime_core::Error::NotFound(_) | runtime_core::Error::InvalidState(_)) => {
                    return None
                }
                // As runc: a failed sample is logged and the stream goes on.
                Err(e) => log::error!("{e}"),
            }
        }
    }
}

/// `events [--interval D] [--stats] ID`; returns the exit status.
pub fn events(root: &Root, interval: &str, once: bool, id: &str) -> Result<i32> {
    let interval = parse_duration(interval)?;
    // The first sample fails as runc does (missing or stopped container: exit 1).
    let first = Event::Stats(Box::new(container::stats(root, id)?));
    if !emit(&first, id) || once {
        return Ok(0);
    }
    let mut stream = Stream {
        root,
        id,
        interval,
        next_sample: Instant::now() + interval,
    };
    while let Some(ev) = stream.next() {
        if !emit(&ev, id) {
            break;
        }
    }
    Ok(0)
}

/// Writes one event line; false once stdout is gone (the reader left: stop streaming).
fn emit(ev: &Event, id: &str) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", ev.to_json(id)).is_ok() && out.flush().is_ok()
}

/// A Go duration as runc's `--interval` takes it: "5s", "250ms", "1m30s", "1.5h"; units
/// ns, us (µs), ms, s, m, h. Must be > 0.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || anyhow::anyhow!("invalid value {s:?} for flag --interval: parse error");
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * secs;
        rest = &rest[unit_len..];
    }
    let d = Duration::try_from_secs_f64(total).map_err(|_| bad())?;
    if d.is_zero() {
        bail!("duration interval must be greater than 0");
    }
    Ok(d)
}

/// A JSON object of the fields that are present.
fn obj<const N: usize>(fields: [(&str, Option<Value>); N]) -> Value {
    let m: Map<String, Value> = fields
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), v?)))
        .collect();
    Value::Object(m)
}

fn num(v: Option<u64>) -> Option<Value> {
    v.map(Value::from)
}

/// runc's `types.Stats`.
pub fn stats_json(s: &Stats) -> Value {
    let cpu = s.cpu.as_ref().map(|c| {
        let list = |v: &Vec<u64>| (!v.is_empty()).then(|| json!(v));
        obj([
            (
                "usage",
                Some(obj([
                    ("total", num(c.total)),
                    ("percpu", list(&c.per_cpu)),
                    ("percpu_kernel", list(&c.per_cpu_kernel)),
                    ("percpu_user", list(&c.per_cpu_user)),
                    ("kernel", num(c.kernel)),
                    ("user", num(c.user)),
                ])),
            ),
            (
                "throttling",
                c.throttling.map(|t| {
                    json!({"periods": t.periods, "throttledPeriods": t.throttled_periods,
                           "throttledTime": t.throttled_time})
                }),
            ),
        ])
    });
    let blkio = s.blkio.as_ref().map(|b| {
        let list = |v: &Vec<cgroups::BlkioEntry>| {
            let e: Vec<Value> = v
                .iter()
                .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
                .collect();
            (!e.is_empty()).then(|| Value::Array(e))
        };
        obj([
            ("ioServiceBytesRecursive", list(&b.io_service_bytes)),
            ("ioServicedRecursive", list(&b.io_serviced)),
        ])
    });
    let hugetlb: Map<String, Value> = s
        .hugetlb
        .iter()
        .map(|(size, h)| {
            let v = obj([
                ("usage", num(h.usage)),
                ("max", num(h.max)),
                ("failcnt", num(h.failcnt)),
            ]);
            (size.clone(), v)
        })
        .collect();
    let pids = s.pids.map(|p| {
        obj([
            ("current", num(p.current)),
            ("limit", num(p.limit.filter(|&l| l != UNLIMITED))),
        ])
    });
    obj([
        ("cpu", Some(cpu.unwrap_or_else(|| json!({})))),
        ("memory", Some(memory_json(s).unwrap_or_else(|| json!({})))),
        ("pids", Some(pids.unwrap_or_else(|| json!({})))),
        ("blkio", Some(blkio.unwrap_or_else(|| json!({})))),
        ("hugetlb", Some(Value::Object(hugetlb))),
    ])
}

fn memory_json(s: &Stats) -> Option<Value> {
    let m = s.memory.as_ref()?;
    let entry = |e: Option<MemoryEntry>| {
        e.map(|e| {
            obj([
                ("limit", num(e.limit)),
                ("usage", num(e.usage)),
                ("max", num(e.max)),
                ("failcnt", num(e.failcnt)),
            ])
        })
    };
    // runc reports v2 swap as v1's memory+swap, without a peak.
    let swap = match (s.layout, m.swap, m.usage) {
        (Layout::V2, Some(sw), Some(mem)) => Some(MemoryEntry {
            usage: sw.usage.zip(mem.usage).map(|(a, b)| a.saturating_add(b)),
            max: None,
            limit: match (sw.limit, mem.limit) {
                (Some(UNLIMITED), _) | (_, Some(UNLIMITED)) => Some(UNLIMITED),
                (a, b) => a.zip(b).map(|(a, b)| a.saturating_add(b)),
            },
            failcnt: sw.failcnt,
        }),
        (_, sw, _) => sw,
    };
    Some(obj([
        ("cache", num(m.cache)),
        ("usage", entry(m.usage)),
        ("swap", entry(swap)),
        ("kernel", entry(m.kernel)),
        ("kernelTCP", entry(m.kernel_tcp)),
        ("raw", (!m.stat.is_empty()).then(|| json!(m.stat))),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime_core::cgroups::{CpuStats, MemoryStats, PidsStats};

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("5s").unwrap(), ms(5000));
        assert_eq!(parse_duration("250ms").unwrap(), ms(250));
        assert_eq!(parse_duration("1m30s").unwrap(), ms(90_000));
        assert_eq!(parse_duration("1.5s").unwrap(), ms(1500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        for bad in ["", "5", "s", "5x", "-1s", "1..2s", "5 s"] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.contains("--interval"), "{bad:?}: {e}");
        }
        let e = parse_duration("0s").unwrap_err().to_string();
        assert!(e.contains("greater than 0"), "{e}");
    }

    fn sample(layout: Layout) -> Stats {
        let mut stat = std::collections::BTreeMap::new();
        stat.insert("anon".to_string(), 4096u64);
        Stats {
            layout,
            cpu: Some(CpuStats {
                total: Some(5000),
                user: Some(3000),
                kernel: Some(2000),
                ..Default::default()
            }),
            memory: Some(MemoryStats {
                cache: Some(0),
                usage: Some(MemoryEntry {
                    usage: Some(8192),
                    max: None,
                    limit: Some(65536),
                    failcnt: Some(0),
                }),
                swap: Some(MemoryEntry {
                    usage: Some(100),
                    max: Some(200),
                    limit: Some(1000),
                    failcnt: None,
                }),
                stat,
                ..Default::default()
            }),
            pids: Some(PidsStats {
                current: Some(2),
                limit: Some(UNLIMITED),
            }),
            blkio: None,
            hugetlb: Default::default(),
        }
    }

    #[test]
    fn runc_field_names() {
        let v = Event::Stats(Box::new(sample(Layout::V1))).to_json("c1");
        assert_eq!(v["type"], "stats");
        assert_eq!(v["id"], "c1");
        let d = &v["data"];
        assert_eq!(d["cpu"]["usage"]["total"], 5000);
        assert_eq!(d["cpu"]["usage"]["kernel"], 2000);
        assert_eq!(d["cpu"]["usage"]["user"], 3000);
        assert!(d["cpu"]["usage"].get("percpu").is_none(), "{d}");
        assert!(d["cpu"].get("throttling").is_none());
        assert_eq!(d["memory"]["usage"]["usage"], 8192);
        assert_eq!(d["memory"]["usage"]["limit"], 65536);
        assert!(d["memory"]["usage"].get("max").is_none(), "absent peak");
        assert_eq!(d["memory"]["swap"]["usage"], 100, "v1 memsw as read");
        assert_eq!(d["memory"]["raw"]["anon"], 4096);
        assert_eq!(
            d["pids"],
            json!({"current": 2}),
            "unlimited: runc's 0, omitted"
        );
        assert_eq!(d["blkio"], json!({}));
        assert_eq!(d["hugetlb"], json!({}));
    }

    #[test]
    fn v2_swap_is_memory_plus_swap() {
        let v = stats_json(&sample(Layout::V2));
        assert_eq!(v["memory"]["swap"], json!({"limit": 66536, "usage": 8292}));
        let mut s = sample(Layout::V2);
        s.memory.as_mut().unwrap().swap.as_mut().unwrap().limit = Some(UNLIMITED);
        let v = stats_json(&s);
        assert_eq!(v["memory"]["swap"]["limit"], UNLIMITED);
    }
}
