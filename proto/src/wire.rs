//! A minimal protobuf wire scanner: lists the top-level field numbers of a
//! message without knowing its schema.
//!
//! prost skips unknown fields silently, so decoding alone cannot tell a bare
//! `Any` from a `BootstrapParams` (both decode from either). Which field
//! numbers are present can, so `start` classification looks at them first.

use crate::Error;

/// A field that occurred at the top level of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) number: u32,
    pub(crate) wire_type: u8,
}

pub(crate) const WIRE_VARINT: u8 = 0;
pub(crate) const WIRE_I64: u8 = 1;
pub(crate) const WIRE_LEN: u8 = 2;
pub(crate) const WIRE_I32: u8 = 5;

/// Every top-level field in `buf`, in wire order. Fails on truncation,
/// field number 0 and groups (no containerd message uses them), which is
/// what random bytes almost always hit.
pub(crate) fn top_level_fields(buf: &[u8]) -> Result<Vec<Field>, Error> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let key = read_varint(buf, &mut pos)?;
        let wire_type = (key & 7) as u8;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|n| (1..=MAX_FIELD_NUMBER).contains(n))
            .ok_or(Error::Malformed {
                offset: start,
                reason: "invalid field number",
            })?;
        let skip = match wire_type {
            WIRE_VARINT => {
                read_varint(buf, &mut pos)?;
                0
            }
            WIRE_I64 => 8,
            WIRE_LEN => {
                let len_at = pos;
                usize::try_from(read_varint(buf, &mut pos)?).map_err(|_| Error::Malformed {
                    offset: len_at,
                    reason: "length does not fit in memory",
                })?
            }
            WIRE_I32 => 4,
            _ => {
                return Err(Error::Malformed {
                    offset: start,
                    reason: "group or invalid wire type",
                })
            }
        };
        pos = pos
            .checked_add(skip)
            .filter(|end| *end <= buf.len())
            .ok_or(Error::Malformed {
                offset: start,
                reason: "field runs past the end of the input",
            })?;
        fields.push(Field { number, wire_type });
    }
    Ok(fields)
}

const MAX_FIELD_NUMBER: u32 = (1 << 29) - 1;

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, Error> {
    let start = *pos;
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = buf.get(*pos) else {
            return Err(Error::Malformed {
                offset: start,
                reason: "truncated varint",
            });
        };
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Error::Malformed {
        offset: start,
        reason: "varint longer than 10 bytes",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(buf: &[u8]) -> Vec<u32> {
        top_level_fields(buf)
            .unwrap()
            .iter()
            .map(|f| f.number)
            .collect()
    }

    #[test]
    fn lists_fields_of_every_wire_type() {
        let buf = [
            0x08, 0x96, 0x01, // 1: varint 150
            0x12, 0x02, b'h', b'i', // 2: len 2
            0x19, 0, 0, 0, 0, 0, 0, 0, 0, // 3: fixed64
            0x25, 0, 0, 0, 0, // 4: fixed32
            0x80, 0x01, 0x00, // 16: varint 0 (two-byte key)
        ];
        assert_eq!(numbers(&buf), [1, 2, 3, 4, 16]);
    }

    #[test]
    fn empty_input_has_no_fields() {
        assert!(numbers(&[]).is_empty());
    }

    #[test]
    fn rejects_truncated_length() {
        let err = top_level_fields(&[0x0a, 0x05, b'a']).unwrap_err();
        assert!(err.to_string().contains("past the end"), "{err}");
    }

    #[test]
    fn rejects_field_zero_and_groups() {
        assert!(top_level_fields(&[0x00, 0x01]).is_err());
        assert!(top_level_fields(&[0x0b]).is_err()); // field 1 start-group
        assert!(top_level_fields(&[0x0e]).is_err()); // wire type 6
    }

    #[test]
    fn rejects_overlong_varint() {
        let buf = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        let err = top_level_fields(&buf).unwrap_err();
        assert!(err.to_string().contains("varint"), "{err}");
    }
}
