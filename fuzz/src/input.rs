//! A cursor over fuzz input bytes, for the structured modes of the targets.
//!
//! Running out of bytes yields zeros and empty slices, never a failure, so
//! every input drives some path.

/// Reads fixed-size values and byte runs from the front of an input.
pub struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// One byte (0 once exhausted).
    pub fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((b, rest)) => {
                self.rest = rest;
                *b
            }
            None => 0,
        }
    }

    /// A little-endian `u64` from up to eight bytes.
    pub fn u64(&mut self) -> u64 {
        let mut buf = [0u8; 8];
        for slot in &mut buf {
            *slot = self.byte();
        }
        u64::from_le_bytes(buf)
    }

    /// An `i64` from up to eight bytes.
    pub fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.u64().to_le_bytes())
    }

    /// A `u128` from up to sixteen bytes.
    pub fn u128(&mut self) -> u128 {
        (u128::from(self.u64()) << 64) | u128::from(self.u64())
    }

    /// A run of bytes whose length is the next byte.
    pub fn bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte()).min(self.rest.len());
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        head
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
}
