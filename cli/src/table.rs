//! Text tables in runc's layout (Go's tabwriter with minwidth 12, padding 3).

use anyhow::{Context, Result};

/// Aligns tab-separated rows the way Go's tabwriter(12, 1, 3, ' ') does:
/// every column but the last is padded to max(12, widest cell + 3).
pub fn align(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            widths[i] = widths[i].max(c.chars().count() + 3).max(12);
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                out.push_str(&format!("{c:<w$}", w = widths[i]));
            } else {
                out.push_str(c);
            }
        }
        out.push('\n');
    }
    out
}

/// `rsrun list` table.
pub fn containers(all: &[serde_json::Value]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .map(String::from)
        .to_vec()];
    for c in all {
        let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
        rows.push(vec![
            s("id"),
            c["pid"].to_string(),
            s("status"),
            s("bundle"),
            s("created"),
            s("owner"),
        ]);
    }
    align(&rows)
}

/// `rsrun ps` table: the host's `ps` output (default `-ef`) filtered to the
/// container's pids, header kept.
pub fn ps(pids: &[i32], args: &[String]) -> Result<String> {
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        anyhow::bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("couldn't find PID field in ps output")?;
    let mut res = format!("{header}\n");
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            res.push_str(l);
            res.push('\n');
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_like_go_tabwriter() {
        let rows = vec![
            vec!["ID".to_string(), "PID".into(), "STATUS".into()],
            vec![
                "a-long-container-id".to_string(),
                "12".into(),
                "running".into(),
            ],
        ];
        let t = align(&rows);
        assert_eq!(
            t,
            "ID                    PID         STATUS\na-long-container-id   12          running\n"
        );
    }
}
