//! Logging as runc does it: `--log FILE` with `--log-format text|json`
//! (containerd's shim reads the last JSON error line from log.json), and
//! fatal errors as one plain line on stderr.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

struct Logger {
    out: Mutex<Box<dyn Write + Send>>,
    json: bool,
    level: log::LevelFilter,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = match r.level() {
            log::Level::Error => "error",
            log::Level::Warn => "warning",
            log::Level::Info => "info",
            log::Level::Debug => "debug",
            log::Level::Trace => "trace",
        };
        let time = runtime_core::state::now_rfc3339();
        let msg = r.args().to_string();
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time={time:?} level={level} msg={msg:?}")
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
        }
    }

    fn flush(&self) {}
}

/// Installs the logger (stderr unless `--log`).
pub fn init(file: Option<&Path>, format: &str, debug: bool) {
    let out: Box<dyn Write + Send> = match file.and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    }) {
        Some(f) => Box::new(f),
        None => Box::new(std::io::stderr()),
    };
    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Warn
    };
    let logger = Logger {
        out: Mutex::new(out),
        json: format == "json",
        level,
    };
    if log::set_logger(Box::leak(Box::new(logger))).is_ok() {
        log::set_max_level(level);
    }
    LOG_TO_FILE.store(file.is_some(), std::sync::atomic::Ordering::Relaxed);
}

static LOG_TO_FILE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Reports a fatal error: into the log (if it is a file) and as one line on stderr.
pub fn fatal(e: &anyhow::Error) {
    // Engine errors already carry their cause in the text; add only causes
    // not yet said.
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !msg.contains(&text) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&text);
        }
    }
    if LOG_TO_FILE.load(std::sync::atomic::Ordering::Relaxed) {
        log::error!("{msg}");
    }
    eprintln!("rsrun: {msg}");
}
