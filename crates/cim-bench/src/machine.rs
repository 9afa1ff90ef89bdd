//! The machine a run happened on, and this process's memory.

use std::path::Path;

use serde::Serialize;

/// What `docs/benchmarks.md` records about the machine of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    /// Device, file system and mount point holding the servers' stores.
    pub store_disk: String,
    pub nats_server: String,
    pub profile: &'static str,
    pub started_at: String,
    /// `/proc/loadavg` (1, 5, 15 min) when the run started.
    pub load_at_start: String,
}

impl Machine {
    /// Reads what the system says; `nats_server` is the server's version.
    pub fn probe(nats_server: String) -> Self {
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name").map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned()))
            .unwrap_or_default();
        let memory_kib = read("/proc/meminfo").lines().find_map(|l| field_kib(l, "MemTotal:")).unwrap_or(0);
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            memory_gib: memory_kib as f64 / (1024.0 * 1024.0),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            store_disk: mount_of(&std::env::temp_dir()),
            nats_server,
            profile: if cfg!(debug_assertions) { "debug" } else { "release" },
            started_at: now(),
            load_at_start: load_average(),
        }
    }

    /// One line for the top of the text output.
    pub fn render(&self) -> String {
        format!(
            "machine: {} ({} cores, {:.1} GiB), kernel {}, store on {}, nats-server {}, {} build, {} UTC, load {}",
            self.cpu,
            self.cores,
            self.memory_gib,
            self.kernel,
            self.store_disk,
            self.nats_server,
            self.profile,
            self.started_at,
            self.load_at_start
        )
    }
}

/// The current time, RFC 3339 in UTC.
pub fn now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// A `/proc/self/status` field in KiB (`VmRSS`, `VmHWM`, …).
pub fn status_kib(field: &str) -> Option<u64> {
    let key = format!("{field}:");
    read("/proc/self/status").lines().find_map(|l| field_kib(l, &key))
}

fn field_kib(line: &str, key: &str) -> Option<u64> {
    line.strip_prefix(key)?.split_whitespace().next()?.parse().ok()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `device fstype mountpoint` of the mount holding `path`.
fn mount_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    read("/proc/self/mounts")
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (device, mount, fstype) = (parts.next()?, parts.next()?, parts.next()?);
            path.starts_with(mount).then(|| (mount.len(), format!("{device} {fstype} {mount}")))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, text)| text)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_machine() {
        assert!(status_kib("VmRSS").is_some_and(|kib| kib > 0));
        assert!(status_kib("VmHWM").is_some());
        let machine = Machine::probe("v0".into());
        assert!(machine.cores >= 1);
        assert!(machine.render().contains("nats-server v0"));
    }
}
