//! Deterministic random documents for the property tests.

use serde_json::{Map, Value};

/// xorshift64*: small, seedable, good enough to vary test documents.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A random subset of `items` in random order, without repeats.
    pub fn subset(&mut self, items: &[&str]) -> Vec<String> {
        let mut pool: Vec<&str> = items.to_vec();
        let mut out = Vec::new();
        while !pool.is_empty() && !self.one_in(3) {
            let i = self.below(pool.len());
            out.push(pool.remove(i).to_string());
        }
        out
    }

    /// A random scalar (never null).
    pub fn scalar(&mut self) -> Value {
        match self.below(4) {
            0 => Value::from(self.below(100) as i64),
            1 => Value::Bool(self.one_in(2)),
            2 => Value::from(self.pick(&["x", "y", "z", "nginx", ""]).to_string()),
            _ => Value::from(format!("s{}", self.below(10))),
        }
    }

    /// A random JSON value without nulls, at most `depth` levels deep.
    pub fn value(&mut self, depth: usize) -> Value {
        if depth == 0 {
            return self.scalar();
        }
        match self.below(5) {
            0 | 1 => self.scalar(),
            2 => Value::Array((0..self.below(4)).map(|_| self.value(depth - 1)).collect()),
            _ => Value::Object(self.object(depth - 1)),
        }
    }

    /// A random object without nulls.
    pub fn object(&mut self, depth: usize) -> Map<String, Value> {
        let keys = ["a", "b", "c", "d", "e"];
        let mut map = Map::new();
        for key in keys {
            if self.one_in(2) {
                map.insert(key.to_string(), self.value(depth));
            }
        }
        map
    }

    /// `value` with random edits: members added, removed, replaced or
    /// edited recursively.
    pub fn mutate(&mut self, value: &Value, depth: usize) -> Value {
        match value {
            Value::Object(map) if !self.one_in(8) => {
                let mut out = Map::new();
                for (k, v) in map {
                    match self.below(5) {
                        0 => {}
                        1 => {
                            out.insert(k.clone(), self.value(depth));
                        }
                        2 => {
                            out.insert(k.clone(), self.mutate(v, depth.saturating_sub(1)));
                        }
                        _ => {
                            out.insert(k.clone(), v.clone());
                        }
                    }
                }
                if self.one_in(3) {
                    out.insert(format!("n{}", self.below(3)), self.value(depth));
                }
                Value::Object(out)
            }
            _ if self.one_in(2) => value.clone(),
            _ => self.value(depth),
        }
    }
}
