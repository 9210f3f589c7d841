//! xorshift64*, seeded: a test's random choices, or a bench's tree, are
//! the same every run, so a failure can be replayed. The benches build
//! this file too (`#[path]`).

/// The generator's state; seed it with any non-zero value.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// `base` plus up to `spread` random bytes.
    pub fn sized(&mut self, base: usize, spread: u64) -> Vec<u8> {
        let n = base + self.below(spread) as usize;
        self.bytes(n)
    }
}
