//! The seeder's randomness: a splitmix64 PRNG with independent streams per tenant and run,
//! and the small value helpers every generator uses.

use super::*;

/// Stream labels, so that tenant names, tenant profiles and runs draw from independent streams.
pub(super) const STREAM_TENANT_NAMES: u64 = 1;
pub(super) const STREAM_TENANT: u64 = 2;
pub(super) const STREAM_RUN: u64 = 3;

/// splitmix64 (Steele, Lea & Flood 2014): tiny, fast, and good enough for plausible data.
#[derive(Clone, Debug)]
pub(super) struct Prng {
    pub(super) state: u64,
}

/// The splitmix64 output function, also used to mix seeds with stream labels.
pub(super) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a string: turns a tenant id into stream material.
pub(super) fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

impl Prng {
    pub(super) fn new(seed: u64) -> Self {
        Prng { state: seed }
    }

    /// An independent stream for `seed` and a path of labels.
    pub(super) fn derive(seed: u64, path: &[u64]) -> Self {
        let state = path.iter().fold(mix(seed), |s, part| {
            mix(s ^ mix(part.wrapping_add(0x9E37_79B9_7F4A_7C15)))
        });
        Prng::new(state)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// Uniform in `0..n` (0 when n is 0), by multiply-high (no modulo bias to speak of).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub(super) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// Uniform in `[0, 1)`.
    pub(super) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(super) fn range_f64(&mut self, lo: f64, hi: f64) -> f64 {
        lo + self.unit() * (hi - lo)
    }

    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// `chars` lower-case hex digits.
    pub(super) fn hex(&mut self, chars: usize) -> String {
        let mut out = String::with_capacity(chars + 16);
        while out.len() < chars {
            out.push_str(&format!("{:016x}", self.next_u64()));
        }
        out.truncate(chars);
        out
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub(super) fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut ticket = self.below(total);
        for (item, weight) in items {
            if ticket < u64::from(*weight) {
                return *item;
            }
            ticket -= u64::from(*weight);
        }
        items[items.len() - 1].0
    }
}

pub(super) fn ts(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// Rounds to one decimal, so telemetry values read like instrument output.
pub(super) fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}
