//! A process's memory as the kernel counts it (Linux `/proc`), for the benchmarks' figures.

// MiB for the figures printed; no money is computed with floats here.
#![allow(clippy::float_arithmetic)]

/// Starts a process's peak resident memory afresh (Linux: `5` to `/proc/<pid>/clear_refs`).
pub fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("peak memory reset");
}

/// A process's peak resident memory (VmHWM), MiB.
pub fn peak_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// A process's resident memory now (VmRSS), MiB.
pub fn resident_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS:")
}

/// A kB figure of `/proc/<pid>/status`, MiB.
fn status_mib(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
