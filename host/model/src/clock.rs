//! Where time comes from. Deadlines, leases, back-off, polls and signing
//! read an injected [`Clock`]: the product runs on [`SystemClock`], tests
//! drive a [`ManualClock`] instead of sleeping.

use crate::Timestamp;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch, now.
    fn now_ms(&self) -> Timestamp;
}

/// A clock every component of one process shares.
pub type SharedClock = Arc<dyn Clock>;

/// The machine's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Timestamp {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as Timestamp)
            .unwrap_or(0)
    }
}

/// The wall clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock for tests: frozen (it moves only when told), or following the
/// wall clock plus the jumps the test makes (for a system left running,
/// whose leases a test expires at once instead of waiting them out).
#[derive(Debug)]
pub struct ManualClock {
    /// The time shown while frozen, or the offset from the wall clock.
    at: AtomicI64,
    frozen: bool,
}

impl ManualClock {
    /// A clock frozen at `at`.
    pub fn new(at: Timestamp) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            at: AtomicI64::new(at),
            frozen: true,
        })
    }

    /// A clock frozen at the wall clock's time now.
    pub fn starting_now() -> Arc<ManualClock> {
        ManualClock::new(SystemClock.now_ms())
    }

    /// A clock that follows the wall clock, plus whatever
    /// [`ManualClock::advance`] adds.
    pub fn following_wall() -> Arc<ManualClock> {
        Arc::new(ManualClock {
            at: AtomicI64::new(0),
            frozen: false,
        })
    }

    /// Move the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.at.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Timestamp {
        let at = self.at.load(Ordering::SeqCst);
        if self.frozen {
            at
        } else {
            SystemClock.now_ms() + at
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(250);
        assert_eq!(c.now_ms(), 1_250);
        let wall = SystemClock.now_ms();
        assert!(wall > 1_700_000_000_000);
        let w = ManualClock::following_wall();
        w.advance(3_600_000);
        let ahead = w.now_ms() - wall;
        assert!((3_600_000..3_660_000).contains(&ahead), "{ahead}");
    }
}
