//! The `process_*` series of Go's process collector (CPU, memory, file descriptors, start
//! time), read from `/proc` at each scrape. Linux only.
//!
//! Written here rather than taken from the `prometheus` crate's `process` feature, which
//! reports CPU time in whole seconds (Go reports fractions, and `rate()` over a scrape
//! interval needs them) and pulls in a second major version of `rustix` through `procfs`.

use prometheus::core::{Collector, Desc};
use prometheus::proto::{MetricFamily, MetricType};

use super::collect::Family;

/// Clock ticks per second of the CPU times in `/proc/<pid>/stat`. The kernel exposes them in
/// `USER_HZ`, which is 100 on every architecture Linux runs Rust on; Go's procfs hardcodes it
/// for the same reason (asking `sysconf` would need libc).
const USER_HZ: f64 = 100.0;

const CPU: Family = Family {
    name: "process_cpu_seconds_total",
    help: "Total user and system CPU time spent in seconds.",
    kind: MetricType::COUNTER,
};
const OPEN_FDS: Family = Family {
    name: "process_open_fds",
    help: "Number of open file descriptors.",
    kind: MetricType::GAUGE,
};
const MAX_FDS: Family = Family {
    name: "process_max_fds",
    help: "Maximum number of open file descriptors.",
    kind: MetricType::GAUGE,
};
const VIRTUAL: Family = Family {
    name: "process_virtual_memory_bytes",
    help: "Virtual memory size in bytes.",
    kind: MetricType::GAUGE,
};
const VIRTUAL_MAX: Family = Family {
    name: "process_virtual_memory_max_bytes",
    help: "Maximum amount of virtual memory available in bytes.",
    kind: MetricType::GAUGE,
};
const RESIDENT: Family = Family {
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes.",
    kind: MetricType::GAUGE,
};
const START: Family = Family {
    name: "process_start_time_seconds",
    help: "Start time of the process since unix epoch in seconds.",
    kind: MetricType::GAUGE,
};

const FAMILIES: [Family; 7] = [
    CPU,
    OPEN_FDS,
    MAX_FDS,
    VIRTUAL,
    VIRTUAL_MAX,
    RESIDENT,
    START,
];

/// Reads this process's statistics at each scrape.
pub(crate) struct ProcessCollector {
    descs: Vec<Desc>,
}

impl ProcessCollector {
    pub(crate) fn new() -> Self {
        Self {
            descs: FAMILIES.iter().map(|f| f.desc(&[])).collect(),
        }
    }
}

/// What one scrape read; a value that could not be read is left out, as Go does.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    cpu_seconds: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
    virtual_bytes: Option<f64>,
    virtual_max_bytes: Option<f64>,
    resident_bytes: Option<f64>,
    start_time: Option<f64>,
}

/// The fields of `/proc/<pid>/stat` we need: CPU ticks, start time in ticks since boot, and
/// the virtual memory size in bytes.
fn parse_stat(stat: &str) -> Option<(f64, f64, f64)> {
    // The command name (field 2) is in parentheses and may itself contain spaces and
    // parentheses, so the fields are counted from the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (state); field N is at N - 3.
    let num = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let ticks = num(14)? + num(15)?;
    Some((ticks as f64, num(22)? as f64, num(23)? as f64))
}

/// A soft limit from `/proc/<pid>/limits` (`unlimited` as Go's procfs reads it: the largest
/// `u64`).
fn parse_limit(limits: &str, name: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with(name))?;
    let soft = line[name.len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(u64::MAX as f64);
    }
    soft.parse::<u64>().ok().map(|v| v as f64)
}

/// A `Name:   N kB` line of `/proc/<pid>/status`, in bytes.
fn parse_status_kb(status: &str, name: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    let kb = line[name.len()..]
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()?;
    Some((kb * 1024) as f64)
}

fn parse_boot_time(stat: &str) -> Option<f64> {
    let line = stat.lines().find(|l| l.starts_with("btime "))?;
    line["btime ".len()..]
        .trim()
        .parse::<u64>()
        .ok()
        .map(|v| v as f64)
}

fn read() -> Sample {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let mut sample = Sample::default();
    if let Some((ticks, start_ticks, vsize)) =
        read("/proc/self/stat").as_deref().and_then(parse_stat)
    {
        sample.cpu_seconds = Some(ticks / USER_HZ);
        sample.virtual_bytes = Some(vsize);
        sample.start_time = read("/proc/stat")
            .as_deref()
            .and_then(parse_boot_time)
            .map(|boot| boot + start_ticks / USER_HZ);
    }
    if let Some(limits) = read("/proc/self/limits") {
        sample.max_fds = parse_limit(&limits, "Max open files");
        sample.virtual_max_bytes = parse_limit(&limits, "Max address space");
    }
    sample.resident_bytes = read("/proc/self/status")
        .as_deref()
        .and_then(|s| parse_status_kb(s, "VmRSS:"));
    sample.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as f64);
    sample
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let s = read();
        [
            (CPU, s.cpu_seconds),
            (OPEN_FDS, s.open_fds),
            (MAX_FDS, s.max_fds),
            (VIRTUAL, s.virtual_bytes),
            (VIRTUAL_MAX, s.virtual_max_bytes),
            (RESIDENT, s.resident_bytes),
            (START, s.start_time),
        ]
        .into_iter()
        .filter_map(|(family, value)| Some(family.collect(&[], [(vec![], value?)])))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // A command name with a space and a parenthesis, as a process may name itself.
        let stat = "1234 (my (op) x) S 1 1234 1234 0 -1 4194560 500 0 0 0 \
                    250 50 0 0 20 0 9 0 4200 123456789 2048 18446744073709551615";
        assert_eq!(parse_stat(stat), Some((300.0, 4200.0, 123456789.0)));
    }

    #[test]
    fn limits_read_the_soft_value_and_unlimited() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n\
                      Max address space         unlimited            unlimited            bytes\n";
        assert_eq!(parse_limit(limits, "Max open files"), Some(1024.0));
        assert_eq!(
            parse_limit(limits, "Max address space"),
            Some(u64::MAX as f64)
        );
    }

    #[test]
    fn this_process_reports_every_series() {
        let families = ProcessCollector::new().collect();
        let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            FAMILIES.iter().map(|f| f.name).collect::<Vec<_>>(),
            "every value is readable on Linux"
        );
        let value = |name: &str| {
            let f = families.iter().find(|f| f.name() == name).unwrap();
            let m = &f.get_metric()[0];
            m.get_gauge().get_value().max(m.get_counter().get_value())
        };
        assert!(value("process_resident_memory_bytes") > 0.0);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_start_time_seconds") > 1.5e9);
    }
}
