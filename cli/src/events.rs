//! `rsrun events`: runc's event stream for one container, one JSON object per line,
//! `{"type":"stats","id":ID,"data":{...}}` with runc's `types.Stats` field names. With
//! `--stats`, one sample; otherwise a sample every `--interval` until the container stops.
//!
//! A figure the host does not provide is left out of the JSON (a Go decoder reads it as
//! runc's zero). Where v1 and v2 differ, v2 figures are shaped as runc shapes them: swap is
//! memory+swap, and an unlimited pids limit is omitted (runc's 0).

use std::io::Write as _;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use runtime_core::cgroups::oom::OomWatch;
use runtime_core::cgroups::{self, Layout, MemoryEntry, Stats, UNLIMITED};
use runtime_core::container;
use runtime_core::state::Root;
use serde_json::{json, Map, Value};

/// One event of the stream: a stats sample, or an OOM kill in the container's memory
/// cgroup (the engine's [`OomWatch`]: v1 eventfd, v2 `memory.events`).
enum Event {
    Stats(Box<Stats>),
    Oom,
}

impl Event {
    /// runc's `types.Event`.
    fn to_json(&self, id: &str) -> Value {
        match self {
            Event::Stats(s) => json!({"type": "stats", "id": id, "data": stats_json(s)}),
            // runc's Event with no data (`omitempty`).
            Event::Oom => json!({"type": "oom", "id": id}),
        }
    }
}

/// The events of one container, in order.
struct Stream<'a> {
    root: &'a Root,
    id: &'a str,
    interval: Duration,
    next_sample: Instant,
    oom: Option<OomWatch>,
    /// A pidfd of the container's init: readable once it exits, so the
    /// stream ends then rather than at the next sample.
    init: Option<OwnedFd>,
    /// Init has exited (its last OOM event already went out).
    stopped: bool,
}

/// Why [`Stream::wait`] returned.
enum Wake {
    Due,
    Oom,
    Stopped,
}

impl Stream<'_> {
    /// Waits for the next event. None once the container has stopped (or is gone).
    fn next(&mut self) -> Option<Event> {
        loop {
            match self.wait() {
                Wake::Oom => return Some(Event::Oom),
                Wake::Stopped => return None,
                Wake::Due => {}
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

impl Stream<'_> {
    /// Sleeps until the next sample is due, an OOM kill, or init's exit.
    fn wait(&mut self) -> Wake {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        loop {
            if self.stopped {
                return Wake::Stopped;
            }
            if let Some(w) = self.oom.as_mut() {
                if w.take() > 0 {
                    return Wake::Oom;
                }
            }
            let left = self.next_sample.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Wake::Due;
            }
            let ms = PollTimeout::try_from(left.as_millis().min(60_000) as i32)
                .unwrap_or(PollTimeout::MAX);
            let mut fds: Vec<PollFd> = self
                .init
                .iter()
                .map(|f| f.as_fd())
                .chain(self.oom.as_ref().map(|w| w.fd()))
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
                .collect();
            match poll(&mut fds, ms) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => std::thread::sleep(left),
            }
            let init_gone = self.init.is_some()
                && fds
                    .first()
                    .and_then(|f| f.revents())
                    .is_some_and(|r| r.contains(PollFlags::POLLIN));
            if init_gone {
                // Its OOM kill, if that is how it ended, still goes out.
                self.stopped = true;
                if self.oom.as_mut().is_some_and(|w| w.take() > 0) {
                    return Wake::Oom;
                }
                return Wake::Stopped;
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
    let oom = container::oom_watch(root, id).unwrap_or_else(|e| {
        log::warn!("no oom events for {id}: {e}");
        None
    });
    let init = container::state(root, id)
        .ok()
        .and_then(|s| s["pid"].as_i64())
        .and_then(|pid| pidfd_open(pid as i32));
    let mut stream = Stream {
        root,
        id,
        interval,
        next_sample: Instant::now() + interval,
        oom,
        init,
        stopped: false,
    };
    while let Some(ev) = stream.next() {
        if !emit(&ev, id) {
            break;
        }
    }
    Ok(0)
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open with a pid and no flags returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a fresh descriptor the kernel just gave us, owned only here.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
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
