//! What the kernel says of a process: CPU time used, context switches, I/O calls, and memory
//! figures of `/proc/<pid>/status`. A figure `/proc` does not give reads as 0.

/// What a process has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Usage {
    /// CPU time, user and system, µs.
    pub cpu_us: u64,
    /// Context switches of all its threads, voluntary (it waited: a hand-off, a lock, I/O) and
    /// not (its time was up).
    pub context_switches: u64,
    /// System calls that read or wrote (`read`, `pread`, `recvmsg` … and their writing twins).
    pub io_calls: u64,
}

impl Usage {
    /// Of process `pid`, or of this process with `None`.
    pub(super) fn of(pid: Option<u32>) -> Usage {
        let dir = pid.map_or_else(|| "/proc/self".to_owned(), |p| format!("/proc/{p}"));
        Usage {
            cpu_us: cpu_time_us(&dir),
            context_switches: context_switches(&dir),
            io_calls: io_calls(&dir),
        }
    }

    /// What was used from `before` to this.
    pub(super) fn since(self, before: Usage) -> Usage {
        Usage {
            cpu_us: self.cpu_us.saturating_sub(before.cpu_us),
            context_switches: self
                .context_switches
                .saturating_sub(before.context_switches),
            io_calls: self.io_calls.saturating_sub(before.io_calls),
        }
    }
}

/// CPU time (user and system) of the process at `dir`, µs.
fn cpu_time_us(dir: &str) -> u64 {
    // Fields 14 and 15 of <dir>/stat, after the command name in parentheses, in the kernel's
    // USER_HZ ticks (100 a second on Linux whatever the kernel's own tick).
    let Ok(stat) = std::fs::read_to_string(format!("{dir}/stat")) else {
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

/// Context switches of every thread of the process at `dir` that is still alive (the kernel
/// keeps no total for a process; the threads that matter here live as long as it does).
fn context_switches(dir: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("{dir}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .map(|status| {
            field(&status, "voluntary_ctxt_switches:")
                + field(&status, "nonvoluntary_ctxt_switches:")
        })
        .sum()
}

/// `syscr` and `syscw` of the process at `dir`: its reading and writing system calls.
fn io_calls(dir: &str) -> u64 {
    std::fs::read_to_string(format!("{dir}/io"))
        .map(|io| field(&io, "syscr:") + field(&io, "syscw:"))
        .unwrap_or(0)
}

/// The number after `key` at the start of a line of `text`.
fn field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A kB figure of a process's `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`); 0 where there is none.
pub(super) fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| field(&s, key))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_seen_to_use_what_it_uses() {
        let before = Usage::of(None);
        // Read this process's figures until the kernel has counted a tick of CPU time: each look
        // reads three files, so at least one reading system call a look.
        let (mut now, mut looks) = (before, 0u64);
        while now.cpu_us == before.cpu_us {
            now = Usage::of(None);
            looks += 1;
        }
        let used = now.since(before);
        assert!(used.cpu_us >= 10_000, "{used:?}");
        assert!(used.io_calls >= looks, "{used:?} after {looks} looks");
        assert!(status_kib(std::process::id(), "VmRSS:") > 0);
    }
}
