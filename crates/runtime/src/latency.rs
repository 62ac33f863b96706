//! Latency samples kept in memory for `GET /berth/stats`: the last [`MAX_SAMPLES`] values,
//! exact percentiles on read. Recording is a mutex push (no allocation once full).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// Samples kept per recorder.
pub const MAX_SAMPLES: usize = 100_000;

#[derive(Debug, Default)]
pub struct LatencyRecorder {
    samples: Mutex<VecDeque<u32>>,
}

/// Percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_us: u32,
    pub p90_us: u32,
    pub p99_us: u32,
    pub max_us: u32,
}

impl LatencyRecorder {
    pub fn record(&self, d: Duration) {
        let us = u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if s.len() == MAX_SAMPLES {
            s.pop_front();
        }
        s.push_back(us);
    }

    /// Forgets every sample (a benchmark run starts from zero).
    pub fn clear(&self) {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub fn percentiles(&self) -> Option<Percentiles> {
        let mut v: Vec<u32> = self
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Some(Percentiles {
            count: v.len(),
            p50_us: at(0.5),
            p90_us: at(0.9),
            p99_us: at(0.99),
            max_us: *v.last().unwrap_or(&0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_exact_and_bounded() {
        let r = LatencyRecorder::default();
        assert_eq!(r.percentiles(), None);
        for us in 1..=100 {
            r.record(Duration::from_micros(us));
        }
        let p = r.percentiles().unwrap();
        assert_eq!(
            (p.count, p.p50_us, p.p90_us, p.p99_us, p.max_us),
            (100, 51, 90, 99, 100)
        );
        for _ in 0..MAX_SAMPLES {
            r.record(Duration::from_micros(7));
        }
        let p = r.percentiles().unwrap();
        assert_eq!((p.count, p.max_us), (MAX_SAMPLES, 7));
        r.clear();
        assert_eq!(r.percentiles(), None);
    }
}
