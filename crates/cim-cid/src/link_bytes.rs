//! The one canonical-form rule the strict decoder leaves to us: the bytes of
//! a link hold exactly one CID.
//!
//! `serde_ipld_dagcbor` 0.7 refuses every other non-canonical form (unsorted
//! or duplicate map keys, non-minimal heads, indefinite lengths, tags other
//! than 42, floats that are not finite 64-bit or are negative zero, bytes
//! after the value), but it reads a link with `Cid::read_bytes`, which stops
//! where the CID ends. [`check_links`] walks the bytes once more — without
//! recursion or allocation — and refuses a link with anything after its CID.

use cid::Cid;

/// CBOR major types.
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;

/// Checks that every tag-42 byte string in one CBOR item is a `0x00` prefix
/// followed by exactly one CID. Meant for bytes the strict decoder accepted;
/// anything else malformed is refused too, never read out of bounds.
pub(crate) fn check_links(bytes: &[u8]) -> Result<(), String> {
    let mut rest = bytes;
    // Items still to walk; each needs at least one byte, so it never exceeds
    // what is left unless the input is truncated.
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let (major, argument) = take_head(&mut rest)?;
        match major {
            MAJOR_BYTES | MAJOR_TEXT => {
                take(&mut rest, argument)?;
            }
            MAJOR_ARRAY => pending = add_items(pending, argument, rest)?,
            MAJOR_MAP => pending = add_items(pending, argument.saturating_mul(2), rest)?,
            MAJOR_TAG => {
                let (content_major, len) = take_head(&mut rest)?;
                if content_major != MAJOR_BYTES {
                    return Err("a link (tag 42) must hold a byte string".to_owned());
                }
                check_link(take(&mut rest, len)?)?;
            }
            // Integers and simple values: the head was the whole item.
            _ => {}
        }
    }
    Ok(())
}

fn check_link(content: &[u8]) -> Result<(), String> {
    let Some((0, mut cid_bytes)) = content.split_first().map(|(&prefix, cid)| (prefix, cid)) else {
        return Err("a link's bytes must start with the 0x00 multibase prefix".to_owned());
    };
    let cid = Cid::read_bytes(&mut cid_bytes).map_err(|e| format!("a link does not hold a CID: {e}"))?;
    if !cid_bytes.is_empty() {
        return Err(format!("the link to {cid} has {} bytes after its CID", cid_bytes.len()));
    }
    Ok(())
}

/// Reads one CBOR head: its major type and argument (for floats, their bits).
fn take_head(rest: &mut &[u8]) -> Result<(u8, u64), String> {
    let [initial, ..] = **rest else { return Err("the bytes end inside a value".to_owned()) };
    *rest = &rest[1..];
    let (major, info) = (initial >> 5, initial & 0x1f);
    let width = match info {
        0..=23 => return Ok((major, u64::from(info))),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => return Err(format!("CBOR head 0x{initial:02x} is not allowed in DAG-CBOR")),
    };
    let argument = take(rest, width)?.iter().fold(0u64, |value, &byte| (value << 8) | u64::from(byte));
    Ok((major, argument))
}

fn take<'a>(rest: &mut &'a [u8], len: u64) -> Result<&'a [u8], String> {
    let len = usize::try_from(len).ok().filter(|&len| len <= rest.len()).ok_or("the bytes end inside a value")?;
    let (taken, after) = rest.split_at(len);
    *rest = after;
    Ok(taken)
}

fn add_items(pending: u64, items: u64, rest: &[u8]) -> Result<u64, String> {
    pending
        .checked_add(items)
        .filter(|&total| total <= rest.len() as u64)
        .ok_or_else(|| "a container claims more items than the bytes hold".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(cid_bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![0xd8, 42, 0x58, (cid_bytes.len() + 1) as u8, 0];
        out.extend_from_slice(cid_bytes);
        out
    }

    fn a_cid() -> Cid {
        crate::dag_cbor_cid(b"\xa0")
    }

    #[test]
    fn links_anywhere_are_checked() {
        let exact = link(&a_cid().to_bytes());
        let padded = link(&[a_cid().to_bytes(), vec![0xee]].concat());
        // Top level, inside an array, as a map value after other items.
        for wrap in [
            |l: &[u8]| l.to_vec(),
            |l: &[u8]| [&[0x82, 0x01][..], l].concat(),
            |l: &[u8]| [&[0xa2, 0x61, b'a', 0x63, b'x', b'y', b'z', 0x61, b'b'][..], l].concat(),
        ] {
            assert_eq!(check_links(&wrap(&exact)), Ok(()));
            let error = check_links(&wrap(&padded)).unwrap_err();
            assert!(error.contains("1 bytes after its CID"), "{error}");
        }
    }

    #[test]
    fn hostile_heads_and_lengths_are_refused_not_followed() {
        for bytes in [
            &[][..],
            &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0x9f, 0xff],
            &[0xd8, 42, 0x61, b'x'],
            &[0xd8, 42, 0x42, 0x01, 0x71],
        ] {
            assert!(check_links(bytes).is_err(), "{bytes:02x?}");
        }
    }
}
