//! Variable-length integers, zigzag deltas and length-prefixed strings.
//!
//! Every integer in a session file body is an unsigned LEB128 varint: seven
//! bits a byte, least significant group first, high bit set on every byte
//! but the last. A `u64` takes 1 to 10 bytes. Signed deltas are zigzag-mapped
//! first (`0, -1, 1, -2, …` → `0, 1, 2, 3, …`) so that small negative steps
//! stay one byte.

/// Appends `v` as an unsigned LEB128 varint.
#[inline]
pub(crate) fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.u64(v);
}

/// Appends a signed value, zigzag-mapped, as a varint.
#[inline]
pub(crate) fn put_i64(buf: &mut Vec<u8>, v: i64) {
    buf.i64(v);
}

/// Where an encoder writes: a growing buffer, or an [`Out`].
pub(crate) trait Sink {
    fn byte(&mut self, b: u8);

    /// `v` as an unsigned LEB128 varint.
    #[inline(always)]
    fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    /// `v` zigzag-mapped, as a varint.
    #[inline(always)]
    fn i64(&mut self, v: i64) {
        self.u64(zigzag(v));
    }
}

impl Sink for Vec<u8> {
    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.push(b);
    }
}

/// Bytes written into room set aside at the end of a buffer: no capacity
/// check or length update per byte, only the slice's bounds. The room
/// must hold the record written (the longest event record, a
/// reallocation, is a tag and eight varints: at most 76 bytes).
pub(crate) struct Out<'a> {
    pub(crate) room: &'a mut [u8],
    pub(crate) n: usize,
}

impl Sink for Out<'_> {
    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.room[self.n] = b;
        self.n += 1;
    }
}

/// Appends a length-prefixed UTF-8 string.
pub(crate) fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_u64(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Why a byte sequence could not be decoded. The reader turns it into an
/// [`Error`](crate::Error) that carries the file offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The buffer ended in the middle of a value.
    Short(&'static str),
    /// A value is present but impossible.
    Invalid(String),
}

/// A forward-only reader over a decoded buffer.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The whole buffer.
    #[inline(always)]
    pub(crate) fn buf(&self) -> &'a [u8] {
        self.buf
    }

    /// Bytes consumed so far.
    #[inline(always)]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Moves to `pos` (at most the buffer's length).
    #[inline(always)]
    pub(crate) fn set_position(&mut self, pos: usize) {
        debug_assert!(pos <= self.buf.len());
        self.pos = pos;
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Short(what))?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        // Fast path: one byte, the common case for deltas and small ids.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.u8(what)?;
            if shift == 63 && b > 1 {
                return Err(DecodeError::Invalid(format!("{what}: varint overflows 64 bits")));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(DecodeError::Invalid(format!("{what}: varint longer than 10 bytes")));
            }
        }
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let v = self.u64(what)?;
        u32::try_from(v)
            .map_err(|_| DecodeError::Invalid(format!("{what}: {v} does not fit 32 bits")))
    }

    #[inline]
    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(unzigzag(self.u64(what)?))
    }

    /// A length prefix for `count` items of at least one byte each: it may not
    /// claim more items than bytes remain, so a lying length cannot make the
    /// reader allocate.
    pub(crate) fn count(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let n = self.u64(what)?;
        if n > self.remaining() as u64 {
            return Err(DecodeError::Invalid(format!(
                "{what}: claims {n} items but only {} bytes remain",
                self.remaining()
            )));
        }
        Ok(n as usize)
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Short(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A length-prefixed string. Bytes that are not UTF-8 are replaced with
    /// U+FFFD rather than rejected: a name is worth showing even when a
    /// crafted or damaged file mangled it.
    pub(crate) fn str(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let n = self.count(what)?;
        let bytes = self.bytes(n, what)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    pub(crate) fn f64(&mut self, what: &'static str) -> Result<f64, DecodeError> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }
}

pub(crate) fn put_f64(buf: &mut Vec<u8>, v: f64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0, 1, 127, 128, 255, 16_383, 16_384, u64::from(u32::MAX), u64::MAX - 1, u64::MAX]
        {
            let mut buf = Vec::new();
            put_u64(&mut buf, v);
            assert!(buf.len() <= 10);
            let mut c = Cursor::new(&buf);
            assert_eq!(c.u64("v").unwrap(), v);
            assert!(c.is_empty());
        }
    }

    #[test]
    fn out_writes_what_a_buffer_gets() {
        let (mut buf, mut room) = (Vec::new(), [0u8; 96]);
        let mut out = Out { room: &mut room, n: 0 };
        for v in [0, 1, 127, 128, 16_384, u64::from(u32::MAX), u64::MAX] {
            put_u64(&mut buf, v);
            out.u64(v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            put_i64(&mut buf, v);
            out.i64(v);
        }
        let n = out.n;
        assert_eq!(&room[..n], &buf[..]);
    }

    #[test]
    fn zigzag_keeps_small_magnitudes_small() {
        for v in [0i64, -1, 1, -2, 2, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn overlong_varints_are_rejected() {
        let buf = [0xffu8; 11];
        assert!(matches!(Cursor::new(&buf).u64("v"), Err(DecodeError::Invalid(_))));
        let buf = [0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(matches!(Cursor::new(&buf).u64("v"), Err(DecodeError::Invalid(_))));
        assert!(matches!(Cursor::new(&[0x80]).u64("v"), Err(DecodeError::Short(_))));
    }

    #[test]
    fn a_count_cannot_exceed_the_bytes_left() {
        let mut buf = Vec::new();
        put_u64(&mut buf, 1 << 40);
        assert!(matches!(Cursor::new(&buf).count("n"), Err(DecodeError::Invalid(_))));
    }
}
