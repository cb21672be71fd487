//! The protobuf wire format: varints, fixed-width values, length-delimited
//! bytes. Every read is bounds-checked; nothing here allocates.

use super::ProtobufError;

pub(super) const VARINT: u8 = 0;
pub(super) const FIXED64: u8 = 1;
pub(super) const LEN: u8 = 2;
pub(super) const START_GROUP: u8 = 3;
pub(super) const END_GROUP: u8 = 4;
pub(super) const FIXED32: u8 = 5;

/// One field's value as read off the wire.
#[derive(Debug, Clone, Copy)]
pub(super) enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
    /// A (deprecated) group, already skipped.
    Group,
}

impl WireValue<'_> {
    pub(super) fn wire_type(&self) -> u8 {
        match self {
            WireValue::Varint(_) => VARINT,
            WireValue::Fixed64(_) => FIXED64,
            WireValue::Len(_) => LEN,
            WireValue::Fixed32(_) => FIXED32,
            WireValue::Group => START_GROUP,
        }
    }
}

/// Reads the fields of one message. `message` names it in errors.
pub(super) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    message: &'static str,
}

impl<'a> Reader<'a> {
    pub(super) fn new(data: &'a [u8], message: &'static str) -> Self {
        Reader {
            data,
            pos: 0,
            message,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn truncated(&self) -> ProtobufError {
        ProtobufError::Truncated {
            message: self.message,
        }
    }

    fn byte(&mut self) -> Result<u8, ProtobufError> {
        let b = *self.data.get(self.pos).ok_or_else(|| self.truncated())?;
        self.pos += 1;
        Ok(b)
    }

    pub(super) fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value: u64 = 0;
        // At most ten bytes; bits past 64 are dropped, as Go's decoder does.
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::VarintOverflow {
            message: self.message,
        })
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], ProtobufError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| self.truncated())?;
        let slice = self
            .data
            .get(self.pos..end)
            .ok_or_else(|| self.truncated())?;
        self.pos = end;
        Ok(slice)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ProtobufError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// A length-delimited value's bytes. The length is checked against what
    /// is left before anything is taken.
    pub(super) fn len_delimited(&mut self) -> Result<&'a [u8], ProtobufError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| self.truncated())?;
        self.take(len)
    }

    pub(super) fn fixed32(&mut self) -> Result<u32, ProtobufError> {
        Ok(u32::from_le_bytes(self.fixed::<4>()?))
    }

    pub(super) fn fixed64(&mut self) -> Result<u64, ProtobufError> {
        Ok(u64::from_le_bytes(self.fixed::<8>()?))
    }

    /// The next field: its number and value; `None` at the end.
    pub(super) fn next_field(&mut self) -> Result<Option<(u64, WireValue<'a>)>, ProtobufError> {
        if self.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        let wire_type = (key & 7) as u8;
        if number == 0 {
            return Err(ProtobufError::IllegalFieldNumber {
                message: self.message,
            });
        }
        let value = match wire_type {
            VARINT => WireValue::Varint(self.varint()?),
            FIXED64 => WireValue::Fixed64(self.fixed64()?),
            LEN => WireValue::Len(self.len_delimited()?),
            FIXED32 => WireValue::Fixed32(self.fixed32()?),
            START_GROUP => {
                self.skip_group()?;
                WireValue::Group
            }
            _ => {
                return Err(ProtobufError::IllegalWireType {
                    message: self.message,
                    wire_type,
                })
            }
        };
        Ok(Some((number, value)))
    }

    /// Skip to the end of a group whose start was just read. Iterative, so
    /// nested groups cannot exhaust the stack.
    fn skip_group(&mut self) -> Result<(), ProtobufError> {
        let mut depth: usize = 1;
        while depth > 0 {
            let key = self.varint()?;
            match (key & 7) as u8 {
                VARINT => {
                    self.varint()?;
                }
                FIXED64 => {
                    self.fixed64()?;
                }
                LEN => {
                    self.len_delimited()?;
                }
                FIXED32 => {
                    self.fixed32()?;
                }
                START_GROUP => depth += 1,
                END_GROUP => depth -= 1,
                wire_type => {
                    return Err(ProtobufError::IllegalWireType {
                        message: self.message,
                        wire_type,
                    })
                }
            }
        }
        Ok(())
    }
}

/// Writes protobuf. Only used by the encoder.
#[derive(Default)]
pub(super) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub(super) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub(super) fn key(&mut self, number: u32, wire_type: u8) {
        self.varint((u64::from(number) << 3) | u64::from(wire_type));
    }

    pub(super) fn bytes(&mut self, number: u32, data: &[u8]) {
        self.key(number, LEN);
        self.varint(data.len() as u64);
        self.buf.extend_from_slice(data);
    }
}
