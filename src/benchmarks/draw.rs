//! Deterministic randomness and number formatting for the task generators.
//!
//! Every task draws from its own ChaCha8 stream, keyed by
//! `SHA-256("veyra-bench/1" ‖ family ‖ 0x00 ‖ difficulty ‖ 0x00 ‖ seed (u64 LE) ‖ index (u64 LE))`:
//! task `i` is the same whatever the count, and the same on every machine. The integers and
//! floats drawn here use only `next_u64` of the stream (not `rand`'s distributions, whose
//! algorithms may change between versions), so the tasks are a function of the seed and this
//! file alone. Numbers reach prompts through [`fixed`], which rounds half away from zero on the
//! decimal digits, never through `{}` of an `f64`.

use rand::rngs::ChaCha8Rng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use crate::config::{Difficulty, FamilyId};

/// A task's own random stream.
#[derive(Debug)]
pub struct Draw {
    rng: ChaCha8Rng,
}

impl Draw {
    /// The stream of task `index` of `family` at `difficulty` for `seed`.
    pub fn for_task(family: FamilyId, difficulty: Difficulty, seed: u64, index: u64) -> Self {
        let mut h = Sha256::new();
        h.update(b"veyra-bench/1");
        h.update(family.name().as_bytes());
        h.update([0]);
        h.update(difficulty.name().as_bytes());
        h.update([0]);
        h.update(seed.to_le_bytes());
        h.update(index.to_le_bytes());
        let key: [u8; 32] = h.finalize().into();
        Draw {
            rng: ChaCha8Rng::from_seed(key),
        }
    }

    /// A uniform integer in `0..n` (0 when `n` is 0), by rejection so there is no bias.
    pub fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        // The largest multiple of n that fits; draws at or above it are rejected.
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.rng.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// A uniform integer in `lo..=hi` (`lo` when `hi < lo`).
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = hi.abs_diff(lo).saturating_add(1);
        lo.wrapping_add_unsigned(self.below(span))
    }

    /// A uniform index into a collection of `len` items (0 when empty).
    pub fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(len as u64)).unwrap_or(0)
    }

    /// One item of a non-empty slice (`None` when empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        items.get(self.index(items.len()))
    }

    /// A uniform float in `[0, 1)` from the top 53 bits of one draw.
    pub fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform float in `[lo, hi)`.
    pub fn float(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }

    /// `k` distinct indices of `0..n`, in drawn order (all of them when `k >= n`).
    pub fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        self.shuffle(&mut all);
        all.truncate(k.min(n));
        all
    }
}

/// `value` with exactly `decimals` digits after the point, rounded half away from zero on the
/// decimal representation. Stable across platforms: the digits come from an integer.
pub fn fixed(value: f64, decimals: u32) -> String {
    if !value.is_finite() {
        return "0".to_string();
    }
    let scale = 10f64.powi(decimals as i32);
    let scaled = (value.abs() * scale).round();
    // Values in prompts are far below 2^63; clamp anyway rather than wrap.
    let units = if scaled >= 9.0e18 {
        9_000_000_000_000_000_000u64
    } else {
        scaled as u64
    };
    let sign = if value < 0.0 && units > 0 { "-" } else { "" };
    let divisor = 10u64.pow(decimals);
    let whole = units / divisor;
    if decimals == 0 {
        return format!("{sign}{whole}");
    }
    let frac = units % divisor;
    format!("{sign}{whole}.{frac:0width$}", width = decimals as usize)
}

/// [`fixed`] with thousands separators in the whole part (`1,234.5`), for long numbers.
pub fn grouped(value: f64, decimals: u32) -> String {
    let text = fixed(value, decimals);
    let (sign, rest) = match text.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", text.as_str()),
    };
    let (whole, frac) = match rest.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (rest, None),
    };
    let mut out = String::with_capacity(text.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = {
            let mut d = Draw::for_task(FamilyId::Cplc, Difficulty::Easy, 7, 0);
            (0..8).map(|_| d.below(1000)).collect()
        };
        let b: Vec<u64> = {
            let mut d = Draw::for_task(FamilyId::Cplc, Difficulty::Easy, 7, 0);
            (0..8).map(|_| d.below(1000)).collect()
        };
        let c: Vec<u64> = {
            let mut d = Draw::for_task(FamilyId::Cplc, Difficulty::Easy, 8, 0);
            (0..8).map(|_| d.below(1000)).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn ranges_hold() {
        let mut d = Draw::for_task(FamilyId::Msga, Difficulty::Hard, 1, 2);
        for _ in 0..1000 {
            let v = d.int(-3, 3);
            assert!((-3..=3).contains(&v));
            let f = d.float(2.0, 5.0);
            assert!((2.0..5.0).contains(&f));
        }
        assert_eq!(d.int(5, 5), 5);
        assert_eq!(d.below(0), 0);
        assert!(d.pick::<u8>(&[]).is_none());
        let s = d.sample(10, 4);
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn fixed_formats_exactly() {
        assert_eq!(fixed(0.125, 2), "0.13");
        assert_eq!(fixed(2.5, 0), "3");
        assert_eq!(fixed(-2.5, 0), "-3");
        assert_eq!(fixed(-0.0001, 2), "0.00");
        assert_eq!(fixed(12.3456, 3), "12.346");
        assert_eq!(fixed(7.0, 1), "7.0");
        assert_eq!(fixed(f64::NAN, 2), "0");
        assert_eq!(grouped(1234567.891, 1), "1,234,567.9");
        assert_eq!(grouped(-999.0, 0), "-999");
        assert_eq!(grouped(1000.0, 0), "1,000");
    }
}
