//! A bounds-checked big-endian cursor. Every read that would run past the end
//! returns [`ProtocolError::Truncated`] naming the field and offset.

use crate::error::ProtocolError;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn bytes(
        &mut self,
        n: usize,
        field: &'static str,
    ) -> Result<&'a [u8], ProtocolError> {
        if self.remaining() < n {
            return Err(ProtocolError::Truncated {
                field,
                offset: self.pos,
                needed: n,
                had: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ProtocolError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn i16(&mut self, field: &'static str) -> Result<i16, ProtocolError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn i32(&mut self, field: &'static str) -> Result<i32, ProtocolError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn i64(&mut self, field: &'static str) -> Result<i64, ProtocolError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    /// Reads a length field and checks it is not negative.
    pub(crate) fn len_i32(&mut self, field: &'static str) -> Result<usize, ProtocolError> {
        let offset = self.pos;
        let len = self.i32(field)?;
        usize::try_from(len).map_err(|_| ProtocolError::InvalidLength {
            field,
            offset,
            length: len.into(),
        })
    }

    pub(crate) fn len_i16(&mut self, field: &'static str) -> Result<usize, ProtocolError> {
        let offset = self.pos;
        let len = self.i16(field)?;
        usize::try_from(len).map_err(|_| ProtocolError::InvalidLength {
            field,
            offset,
            length: len.into(),
        })
    }

    pub(crate) fn str(&mut self, n: usize, field: &'static str) -> Result<&'a str, ProtocolError> {
        let offset = self.pos;
        let bytes = self.bytes(n, field)?;
        std::str::from_utf8(bytes).map_err(|_| ProtocolError::InvalidUtf8 { field, offset })
    }
}
