//! What the kernel says about this process: CPU time (`clock_gettime`) and resident memory
//! (`/proc/self/status`), the cross-check for the counting allocator's figures.

use std::time::Duration;

use rustix::time::{ClockId, clock_gettime};

fn clock(id: ClockId) -> Duration {
    let t = clock_gettime(id);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// CPU time used by every thread of the process (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn process_cpu() -> Duration {
    clock(ClockId::ProcessCPUTime)
}

/// CPU time used by the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu() -> Duration {
    clock(ClockId::ThreadCPUTime)
}

/// Resident memory now and its high-water mark, in bytes (`VmRSS` and `VmHWM` of
/// `/proc/self/status`); zeros where there is no such file.
pub fn rss() -> Rss {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    Rss {
        now: field("VmRSS:"),
        peak: field("VmHWM:"),
    }
}

/// Resets the resident high-water mark to the resident size now (writes `5` to
/// `/proc/self/clear_refs`, Linux 4.0 and later). Returns whether the kernel accepted it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Returns the heap's free memory to the kernel (glibc's `malloc_trim`), so that a resident
/// set reading taken next counts live memory rather than pages freed earlier and kept for
/// reuse. Does nothing where the C library is not glibc.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: `malloc_trim` takes no pointers and only releases memory glibc's allocator
        // holds free; every allocation of this process goes through that allocator.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// A reading of resident memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rss {
    /// Resident bytes now.
    pub now: usize,
    /// The most resident bytes since the start or the last [`reset_peak_rss`].
    pub peak: usize,
}
