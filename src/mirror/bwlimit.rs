//! The `-b` bandwidth limit on mirror-read's bulk output: at most `limit`
//! bytes per one-second window (protocol.md §9).

use std::io::{self, Write};
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

/// Time source, replaceable in tests.
pub trait Clock {
    fn now(&self) -> Instant;
    fn sleep(&mut self, d: Duration);
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

pub struct BwLimit<C: Clock = SystemClock> {
    /// Bytes per second; `None`: unlimited.
    limit: Option<NonZeroU64>,
    window_start: Instant,
    sent: u64,
    clock: C,
}

impl BwLimit<SystemClock> {
    pub fn new(limit: Option<NonZeroU64>) -> Self {
        BwLimit::with_clock(limit, SystemClock)
    }
}

impl<C: Clock> BwLimit<C> {
    pub fn with_clock(limit: Option<NonZeroU64>, clock: C) -> Self {
        let window_start = clock.now();
        BwLimit {
            limit,
            window_start,
            sent: 0,
            clock,
        }
    }

    /// Starts a new window (at every batch, as the original).
    pub fn reset(&mut self) {
        self.window_start = self.clock.now();
        self.sent = 0;
    }

    /// Writes all of `buf`, sleeping so no window carries more than the
    /// limit.
    pub fn write_all<W: Write + ?Sized>(&mut self, out: &mut W, mut buf: &[u8]) -> io::Result<()> {
        let Some(limit) = self.limit.map(NonZeroU64::get) else {
            return out.write_all(buf);
        };
        while !buf.is_empty() {
            let room = limit.saturating_sub(self.sent);
            let n = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
            if n > 0 {
                out.write_all(&buf[..n])?;
                buf = &buf[n..];
                self.sent += n as u64;
            }
            if self.sent >= limit {
                let elapsed = self
                    .clock
                    .now()
                    .saturating_duration_since(self.window_start);
                if elapsed < Duration::from_secs(1) {
                    self.clock.sleep(Duration::from_secs(1) - elapsed);
                }
                self.window_start = self.clock.now();
                self.sent -= limit;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeClock {
        t: Instant,
        slept: Vec<Duration>,
    }
    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            self.t
        }
        fn sleep(&mut self, d: Duration) {
            self.t += d;
            self.slept.push(d);
        }
    }

    #[test]
    fn paces_to_the_limit() {
        let clock = FakeClock {
            t: Instant::now(),
            slept: vec![],
        };
        let start = clock.t;
        let mut bw = BwLimit::with_clock(NonZeroU64::new(1000), clock);
        let mut out = Vec::new();
        bw.write_all(&mut out, &[1u8; 3500]).unwrap();
        assert_eq!(out.len(), 3500);
        // Three full windows, each padded to a second.
        assert_eq!(bw.clock.slept, vec![Duration::from_secs(1); 3]);
        assert_eq!(bw.clock.t - start, Duration::from_secs(3));
        assert_eq!(bw.sent, 500);
    }

    #[test]
    fn unlimited_never_sleeps() {
        let clock = FakeClock {
            t: Instant::now(),
            slept: vec![],
        };
        let mut bw = BwLimit::with_clock(None, clock);
        let mut out = Vec::new();
        bw.write_all(&mut out, &[0u8; 100_000]).unwrap();
        assert!(bw.clock.slept.is_empty());
    }
}
