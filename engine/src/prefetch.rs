//! Cache hints: ask the CPU to start loading memory the packet path will
//! read soon. Hints only: they never fault and change no result, so any
//! pointer may be given; off x86-64 they do nothing.

/// Start loading the cache line at `ptr`.
#[inline(always)]
pub(crate) fn line<T>(ptr: *const T) {
    // SAFETY: SSE is part of the x86-64 baseline; a prefetch reads no
    // memory the program can observe and never faults, whatever `ptr`.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(ptr.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// Start loading the headers of the frame at `frame` (its first 58
/// bytes: Ethernet with a VLAN tag, IPv4 and TCP without options, or
/// IPv6 and UDP): one line, or two when they cross into the next.
#[inline(always)]
pub(crate) fn headers(frame: *const u8) {
    line(frame);
    if (frame as usize) & 63 > 64 - 58 {
        line(frame.wrapping_add(64));
    }
}
