//! The engine's notion of time: milliseconds on a monotonic clock, read
//! once per batch by the caller and passed down, so tests inject it.

/// A point in time, in milliseconds since an arbitrary epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// This instant plus `secs` seconds.
    pub fn plus_secs(self, secs: u32) -> Millis {
        Millis(self.0.saturating_add(u64::from(secs) * 1000))
    }

    /// This instant plus `ms` milliseconds.
    pub fn plus_ms(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self` (0 if `earlier` is later).
    pub fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Read the process's monotonic clock.
    pub fn now() -> Millis {
        use std::sync::OnceLock;
        use std::time::Instant;
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        let epoch = *EPOCH.get_or_init(Instant::now);
        // u64 milliseconds cover 584 million years of uptime.
        Millis(u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX))
    }
}
