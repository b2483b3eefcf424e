//! What the kernel says of a process: CPU time used, and memory figures of `/proc/<pid>/status`.

/// CPU time (user and system) this process has used, µs; 0 where `/proc` does not say.
pub(super) fn cpu_time_us() -> u64 {
    // Fields 14 and 15 of /proc/self/stat, after the command name in parentheses, in the
    // kernel's USER_HZ ticks (100 a second on Linux whatever the kernel's own tick).
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime: fields 14 and 15 of the line, 11 and 12 counted from the state (field 3).
    (tick(11) + tick(12)) * 10_000
}

/// A kB figure of a process's `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`); 0 where there is none.
pub(super) fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
