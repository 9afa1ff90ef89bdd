//! What a workload reports: rows of measurements, checks against targets,
//! printed as a table and serialised as JSON. Repeated runs are combined
//! field by field into medians.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::stats::{Latencies, median};

/// One measured operation: the store's or the raw JetStream baseline's.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What ran, e.g. `raw publish` or `store append (direct)`.
    pub label: String,
    /// Operations completed (events, messages, objects, hashes).
    pub ops: u64,
    /// Payload bytes moved.
    pub bytes: u64,
    /// Wall-clock seconds.
    pub secs: f64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Payload MiB per second.
    pub mib_per_sec: f64,
    /// Median operation latency, µs.
    pub p50_us: Option<f64>,
    /// 99th-percentile operation latency, µs.
    pub p99_us: Option<f64>,
    /// Workload-specific numbers (rates, memory, batch sizes).
    pub extra: BTreeMap<String, f64>,
}

impl Row {
    /// A row from a count, bytes, elapsed time and optional latencies.
    pub fn new(
        label: impl Into<String>,
        ops: u64,
        bytes: u64,
        elapsed: Duration,
        latencies: Option<&mut Latencies>,
    ) -> Self {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let (p50_us, p99_us) = match latencies {
            Some(l) => (l.quantile_us(0.50), l.quantile_us(0.99)),
            None => (None, None),
        };
        Self {
            label: label.into(),
            ops,
            bytes,
            secs,
            ops_per_sec: ops as f64 / secs,
            mib_per_sec: bytes as f64 / secs / (1024.0 * 1024.0),
            p50_us,
            p99_us,
            extra: BTreeMap::new(),
        }
    }

    /// Adds a workload-specific number.
    pub fn with(mut self, key: &str, value: f64) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }
}

/// A ratio or absolute number held against the target.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What is compared, e.g. `throughput store/raw`.
    pub name: String,
    /// The measured value.
    pub value: f64,
    /// The target.
    pub target: f64,
    /// `true`: the value must be at least the target; `false`: at most.
    pub at_least: bool,
    /// Whether the target is met.
    pub met: bool,
}

impl Check {
    /// The value must reach at least `target`.
    pub fn at_least(name: impl Into<String>, value: f64, target: f64) -> Self {
        Self { name: name.into(), value, target, at_least: true, met: value >= target }
    }

    /// The value must stay at or below `target`.
    pub fn at_most(name: impl Into<String>, value: f64, target: f64) -> Self {
        Self { name: name.into(), value, target, at_least: false, met: value <= target }
    }

    fn recompute(&mut self) {
        self.met = if self.at_least { self.value >= self.target } else { self.value <= self.target };
    }
}

/// Everything one workload measured in one run.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadReport {
    /// The workload's number: 1–7 of issue 6, 8 the Pipeline Engine (issue 14).
    pub id: u8,
    /// The workload's command-line name.
    pub workload: &'static str,
    /// One line saying what ran, with its sizes.
    pub title: String,
    /// The sizes and settings used.
    pub params: serde_json::Value,
    /// The measurements.
    pub rows: Vec<Row>,
    /// Ratios and numbers against the targets.
    pub checks: Vec<Check>,
    /// Anything else worth reading beside the numbers.
    pub notes: Vec<String>,
}

impl WorkloadReport {
    /// An empty report for workload `id`.
    pub fn new(id: u8, workload: &'static str, title: String, params: serde_json::Value) -> Self {
        Self { id, workload, title, params, rows: Vec::new(), checks: Vec::new(), notes: Vec::new() }
    }

    /// The row labelled `label`.
    pub fn row(&self, label: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.label == label)
    }

    /// Renders the report as a text table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n== {}. {}: {}", self.id, self.workload, self.title);
        let _ = writeln!(
            out,
            "{:<58} {:>10} {:>8} {:>11} {:>9} {:>9} {:>9}",
            "", "ops", "secs", "ops/s", "MiB/s", "p50 µs", "p99 µs"
        );
        let us = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
        for row in &self.rows {
            let _ = writeln!(
                out,
                "{:<58} {:>10} {:>8.2} {:>11.0} {:>9.1} {:>9} {:>9}",
                row.label,
                row.ops,
                row.secs,
                row.ops_per_sec,
                row.mib_per_sec,
                us(row.p50_us),
                us(row.p99_us)
            );
            if !row.extra.is_empty() {
                let extra: Vec<String> = row.extra.iter().map(|(k, v)| format!("{k}={}", short(*v))).collect();
                let _ = writeln!(out, "{:<6}{}", "", extra.join("  "));
            }
        }
        for check in &self.checks {
            let op = if check.at_least { "≥" } else { "≤" };
            let verdict = if check.met { "met" } else { "MISSED" };
            let _ = writeln!(
                out,
                "  {:<50} {:>10} (target {op} {})  {verdict}",
                check.name,
                short(check.value),
                short(check.target)
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        out
    }
}

fn short(v: f64) -> String {
    if v.abs() >= 1000.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Combines repeated runs of one workload: every number becomes the median
/// over the runs (rows and checks are matched by position), and each check's
/// verdict is taken again on its median.
pub fn combine(runs: &[WorkloadReport]) -> WorkloadReport {
    let mut combined = runs[0].clone();
    if runs.len() == 1 {
        return combined;
    }
    let med = |f: &dyn Fn(&WorkloadReport) -> Option<f64>| {
        let mut values: Vec<f64> = runs.iter().filter_map(f).collect();
        (!values.is_empty()).then(|| median(&mut values))
    };
    for (i, row) in combined.rows.iter_mut().enumerate() {
        let get = |r: &WorkloadReport| r.rows.get(i).cloned();
        row.ops = med(&|r| get(r).map(|x| x.ops as f64)).unwrap_or(0.0) as u64;
        row.bytes = med(&|r| get(r).map(|x| x.bytes as f64)).unwrap_or(0.0) as u64;
        row.secs = med(&|r| get(r).map(|x| x.secs)).unwrap_or(f64::NAN);
        row.ops_per_sec = med(&|r| get(r).map(|x| x.ops_per_sec)).unwrap_or(f64::NAN);
        row.mib_per_sec = med(&|r| get(r).map(|x| x.mib_per_sec)).unwrap_or(f64::NAN);
        row.p50_us = med(&|r| get(r).and_then(|x| x.p50_us));
        row.p99_us = med(&|r| get(r).and_then(|x| x.p99_us));
        let keys: Vec<String> = row.extra.keys().cloned().collect();
        for key in keys {
            if let Some(v) = med(&|r| get(r).and_then(|x| x.extra.get(&key).copied())) {
                row.extra.insert(key, v);
            }
        }
    }
    for (i, check) in combined.checks.iter_mut().enumerate() {
        if let Some(v) = med(&|r| r.checks.get(i).map(|c| c.value)) {
            check.value = v;
        }
        check.recompute();
    }
    combined.notes.push(format!("medians of {} runs", runs.len()));
    combined
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(throughput: f64) -> WorkloadReport {
        let mut r = WorkloadReport::new(1, "append", "t".into(), serde_json::Value::Null);
        r.rows
            .push(Row::new("raw", 100, 1000, Duration::from_secs_f64(100.0 / throughput), None).with("x", throughput));
        r.checks.push(Check::at_least("ratio", throughput / 100.0, 0.8));
        r
    }

    #[test]
    fn combine_takes_medians_and_rejudges() {
        let combined = combine(&[report(50.0), report(90.0), report(100.0)]);
        assert!((combined.rows[0].ops_per_sec - 90.0).abs() < 1e-6);
        assert_eq!(combined.rows[0].extra["x"], 90.0);
        assert!((combined.checks[0].value - 0.9).abs() < 1e-9);
        assert!(combined.checks[0].met);
        assert!(combined.render().contains("met"));
    }
}
