//! Journal segment files: their header, the framing of each record, and reading a segment
//! back with the torn-tail rule. Byte layouts are in `mod.rs`.

use std::path::{Path, PathBuf};

use super::Record;
use crate::codec;

pub const MAGIC: [u8; 8] = *b"CMRCJRNL";
pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: usize = 32;
/// length (4) + CRC (4) + sequence (8).
pub const FRAME_HEADER_LEN: usize = 16;
/// No record comes near this; a larger length is damage, not data.
pub const MAX_RECORD_BYTES: usize = 16 << 20;
const FILE_PREFIX: &str = "journal-";
const FILE_SUFFIX: &str = ".log";

pub fn file_name(first_sequence: u64) -> String {
    format!("{FILE_PREFIX}{first_sequence:020}{FILE_SUFFIX}")
}

pub fn header(first_sequence: u64) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&first_sequence.to_le_bytes());
    let crc = crc32fast::hash(&header[..24]);
    header[24..28].copy_from_slice(&crc.to_le_bytes());
    header
}

/// The first sequence a segment header declares, or why it is not a header.
pub fn decode_header(bytes: &[u8]) -> Result<u64, String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!("{} bytes, shorter than the header", bytes.len()));
    }
    if bytes[..8] != MAGIC {
        return Err("wrong magic: not a commerce-engine journal segment".into());
    }
    if crc32fast::hash(&bytes[..24]) != u32_at(bytes, 24) {
        return Err("header checksum mismatch".into());
    }
    let version = u32_at(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, but this build reads version {FORMAT_VERSION}"
        ));
    }
    Ok(u64_at(bytes, 16))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Appends one framed record to `buffer`.
pub fn encode_frame(sequence: u64, record: &Record, buffer: &mut Vec<u8>) -> Result<(), String> {
    let start = buffer.len();
    buffer.extend_from_slice(&[0u8; 8]);
    buffer.extend_from_slice(&sequence.to_le_bytes());
    codec::encode_into(record, buffer)?;
    let length = buffer.len() - start - FRAME_HEADER_LEN;
    if length > MAX_RECORD_BYTES {
        buffer.truncate(start);
        return Err(format!("a record of {length} bytes is over the limit"));
    }
    let crc = crc32fast::hash(&buffer[start + 8..]);
    buffer[start..start + 4].copy_from_slice(&(length as u32).to_le_bytes());
    buffer[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// One frame read at `offset`: its sequence, payload and total length, or `None` when the
/// bytes there are not a whole frame with a matching checksum.
fn frame_at(bytes: &[u8], offset: usize) -> Option<(u64, &[u8], usize)> {
    let rest = bytes.get(offset..)?;
    if rest.len() < FRAME_HEADER_LEN {
        return None;
    }
    let length = u32_at(rest, 0) as usize;
    if length > MAX_RECORD_BYTES || rest.len() < FRAME_HEADER_LEN + length {
        return None;
    }
    let framed = &rest[8..FRAME_HEADER_LEN + length];
    if crc32fast::hash(framed) != u32_at(rest, 4) {
        return None;
    }
    Some((
        u64_at(rest, 8),
        &rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + length],
        FRAME_HEADER_LEN + length,
    ))
}

/// A segment read back.
#[derive(Debug)]
pub struct Scanned {
    pub records: Vec<(u64, Record)>,
    /// The end of the last whole record: everything after it is a torn tail.
    pub valid_len: usize,
    /// Where reading stopped early: a torn tail (`Torn`) or damage (`Corrupt`).
    pub stop: Option<Stop>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// Bytes after the last whole record that are not a record, with no record after them: a
    /// write a crash cut short. Cut off and logged.
    Torn { offset: usize },
    /// A bad record with good records after it, or a record out of sequence: real damage.
    Corrupt { offset: usize, reason: String },
}

/// Reads every record of a segment whose records start at `first_sequence`. Zeros after the
/// last record are the unused, preallocated rest of the segment.
///
/// Any other frame that fails its checks is a torn tail when no whole frame can be found anywhere
/// after it (a crash mid-write leaves only garbage or zeros behind the last good record); if
/// one can, the bad frame is damage in the middle of the journal. The search only runs on the
/// failure path and stops at the first frame found, which follows within one record of the
/// damage.
pub fn scan(bytes: &[u8], first_sequence: u64) -> Scanned {
    let mut records = Vec::new();
    let mut offset = HEADER_LEN;
    let mut expected = first_sequence;
    let stop = loop {
        if offset >= bytes.len() {
            break None;
        }
        let Some((sequence, payload, length)) = frame_at(bytes, offset) else {
            if bytes[offset..].iter().all(|&byte| byte == 0) {
                break None; // the preallocated rest of the segment
            }
            let damaged = (offset + 1..bytes.len()).any(|at| frame_at(bytes, at).is_some());
            break Some(match damaged {
                true => Stop::Corrupt {
                    offset,
                    reason: "checksum mismatch, with whole records after it".into(),
                },
                false => Stop::Torn { offset },
            });
        };
        if sequence != expected {
            break Some(Stop::Corrupt {
                offset,
                reason: format!("sequence {sequence} where {expected} was expected"),
            });
        }
        match codec::decode::<Record>(payload) {
            Ok(record) => records.push((sequence, record)),
            Err(error) => {
                break Some(Stop::Corrupt {
                    offset,
                    reason: format!("undecodable record {sequence}: {error}"),
                });
            }
        }
        offset += length;
        expected += 1;
    };
    Scanned {
        records,
        valid_len: offset.min(bytes.len()),
        stop,
    }
}

/// A segment file found in the directory.
#[derive(Clone, Debug)]
pub struct Listed {
    /// The first sequence its header declares (its name's, when the header is unreadable).
    pub first: u64,
    pub path: PathBuf,
    /// Why its header cannot be read, if it cannot.
    pub unreadable: Option<String>,
}

/// Segment files in `dir`, oldest first. One whose name disagrees with its header is reported
/// and ordered by the header.
pub fn list(dir: &Path) -> std::io::Result<Vec<Listed>> {
    let mut segments = Vec::new();
    for (named, path) in crate::snapshot::numbered_files(dir, FILE_PREFIX, FILE_SUFFIX)? {
        let mut head = Vec::with_capacity(HEADER_LEN);
        {
            use std::io::Read;
            std::fs::File::open(&path)?
                .take(HEADER_LEN as u64)
                .read_to_end(&mut head)?;
        }
        match decode_header(&head) {
            Ok(first) => {
                if first != named {
                    tracing::warn!(path = %path.display(), header = first, "the journal segment's name and header disagree on its first sequence; the header's is used");
                }
                segments.push(Listed {
                    first,
                    path,
                    unreadable: None,
                });
            }
            Err(reason) => segments.push(Listed {
                first: named,
                path,
                unreadable: Some(reason),
            }),
        }
    }
    segments.sort_by_key(|segment| segment.first);
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(records: &[Record], first: u64) -> Vec<u8> {
        let mut bytes = header(first).to_vec();
        for (index, record) in records.iter().enumerate() {
            encode_frame(first + index as u64, record, &mut bytes).unwrap();
        }
        bytes
    }

    fn charges(count: u64) -> Vec<Record> {
        (1..=count)
            .map(|amount| Record::Charged { user_id: 7, amount })
            .collect()
    }

    #[test]
    fn a_segment_round_trips() {
        let bytes = segment(&charges(3), 41);
        assert_eq!(decode_header(&bytes), Ok(41));
        let scanned = scan(&bytes, 41);
        assert_eq!(scanned.stop, None);
        assert_eq!(scanned.valid_len, bytes.len());
        let sequences: Vec<_> = scanned.records.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(sequences, [41, 42, 43]);
        assert_eq!(
            scanned.records[2].1,
            Record::Charged {
                user_id: 7,
                amount: 3
            }
        );
    }

    #[test]
    fn a_cut_anywhere_in_the_tail_keeps_exactly_the_whole_records() {
        let records = charges(4);
        let whole = segment(&records, 1);
        let ends: Vec<usize> = (0..=records.len())
            .map(|count| segment(&records[..count], 1).len())
            .collect();
        for cut in HEADER_LEN..whole.len() {
            let scanned = scan(&whole[..cut], 1);
            let kept = ends.iter().rposition(|&end| end <= cut).unwrap();
            assert_eq!(scanned.records.len(), kept, "cut at {cut}");
            assert_eq!(scanned.valid_len, ends[kept], "cut at {cut}");
            let torn = cut != ends[kept];
            assert_eq!(scanned.stop.is_some(), torn, "cut at {cut}");
            if torn {
                assert_eq!(scanned.stop, Some(Stop::Torn { offset: ends[kept] }));
            }
        }
    }

    #[test]
    fn zeros_after_the_last_record_are_the_end_and_a_torn_frame_in_them_is_torn() {
        let mut bytes = segment(&charges(2), 1);
        let end = bytes.len();
        bytes.extend_from_slice(&[0u8; 300]);
        let scanned = scan(&bytes, 1);
        assert_eq!(scanned.records.len(), 2);
        assert_eq!((scanned.stop, scanned.valid_len), (None, end));
        let third = segment(&charges(3), 1);
        bytes[end..end + 10].copy_from_slice(&third[end..end + 10]);
        let scanned = scan(&bytes, 1);
        assert_eq!(scanned.stop, Some(Stop::Torn { offset: end }));
    }

    #[test]
    fn a_flipped_byte_before_good_records_is_corruption() {
        let records = charges(5);
        let bytes = segment(&records, 1);
        let second = segment(&records[..1], 1).len();
        for at in second..segment(&records[..2], 1).len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            let scanned = scan(&damaged, 1);
            assert_eq!(scanned.records.len(), 1, "flip at {at}");
            assert!(
                matches!(scanned.stop, Some(Stop::Corrupt { offset, .. }) if offset == second),
                "flip at {at}: {:?}",
                scanned.stop
            );
        }
    }

    #[test]
    fn bad_headers_are_named() {
        let good = header(5);
        let mut magic = good;
        magic[0] = b'X';
        let mut sequence = good;
        sequence[16] ^= 1;
        assert!(decode_header(&good[..10]).unwrap_err().contains("shorter"));
        assert!(decode_header(&magic).unwrap_err().contains("magic"));
        assert!(decode_header(&sequence).unwrap_err().contains("checksum"));
    }
}
