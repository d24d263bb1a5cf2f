//! Snapshot files (docs/spec.md §6): the whole engine state, written crash-safely and read back
//! on start when the entity store (`src/store.rs`, the periodic snapshot) is missing or older. Storage, above the domain and wire: this module takes a state and returns one; it knows nothing
//! of the engine or its actors.
//!
//! **What a snapshot holds.** The state as the journal describes it after every record up to
//! its *journal position* (see `src/journal/mod.rs`): the journal's checkpointer keeps that
//! state by replaying records and writes it out while requests keep flowing. It is a prefix of
//! the journal, so it may end in the middle of an operation (stock reserved for an order whose
//! placement had not finished); recovery replays the records after the position and then
//! finishes what is unfinished (`EngineState::unfinished`). `check` audits exactly that
//! finished state: before a file is written and right after one is read, so a file never holds
//! — and a restart never trusts — a state that breaks an invariant.
//!
//! **File format**, one file per snapshot, `snapshot-<sequence, 20 digits>.bin`:
//!
//! ```text
//! offset  size  field
//!      0     8  magic "CMRCSNAP"
//!      8     4  format version, u32 little-endian (3; versions 1 and 2 are still read)
//!     12     4  reserved, zero
//!     16     8  sequence, u64 LE (also in the file name; increases by one per snapshot)
//!     24     8  journal position, u64 LE: the last journal record the state includes
//!     32     8  body length in bytes, u64 LE
//!     40     4  CRC-32 of the body, u32 LE
//!     44     4  CRC-32 of bytes 0..44 (the header), u32 LE
//!     48     …  body: `model::SnapshotV3`, bincode 2 standard encoding (`src/codec.rs`)
//! ```
//!
//! Version 2 has the same header and a `model::SnapshotV1` body (products without purchase
//! limits). Version 1 (written before the journal existed) has a 40-byte header without the
//! journal position (bytes 24..40 hold length, body CRC and header CRC), its position is 0,
//! and a `SnapshotV1` body.
//!
//! **Crash safety.** Written to `.snapshot-<sequence>.tmp`, fsynced, renamed over the final
//! name, then the directory is fsynced; the newest `snapshot.keep` files are kept. A crash at
//! any point leaves the previous snapshot untouched, and stale `.tmp` files are removed on
//! start. On start the newest file that passes every check (header, checksums, decoding,
//! invariants) wins; each one skipped is logged with its path and reason. Files but none
//! readable: the engine refuses to start unless told to. Files are ordered by the sequence in
//! their header; a name that disagrees with it is reported.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::audit::audit;
use crate::clock::Timestamp;
use crate::codec;
use crate::domain::state::EngineState;
use crate::wire::snapshot::{SnapshotV1, SnapshotV3};

pub const MAGIC: [u8; 8] = *b"CMRCSNAP";
pub const FORMAT_VERSION: u32 = 3;
pub const HEADER_LEN: usize = 48;
/// The header of a version-1 file.
const V1_HEADER_LEN: usize = 40;
const FILE_PREFIX: &str = "snapshot-";
const FILE_SUFFIX: &str = ".bin";

#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error(
        "none of the {count} snapshot files in {dir} is readable (see the errors above); refusing to start \
         over them. Move them away, or pass --ignore-unreadable-snapshots to start from the seed"
    )]
    NoneReadable { dir: PathBuf, count: usize },
    #[error("snapshot I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the state to snapshot fails its audit, so it was not written: {0}")]
    Inconsistent(String),
    #[error("the snapshot could not be encoded: {0}")]
    Encode(String),
    #[error("no snapshot was taken: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Store(String),
}

/// What `POST /admin/snapshot` reports.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SnapshotInfo {
    #[schema(value_type = String)]
    pub path: PathBuf,
    pub sequence: u64,
    pub bytes: u64,
    pub entities: usize,
    pub took_ms: u64,
}

/// A snapshot read back from disk.
#[derive(Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub sequence: u64,
    /// The last journal record the state includes (0 before any).
    pub position: u64,
    pub taken_at: Timestamp,
    pub state: EngineState,
}

/// What a snapshot file's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub sequence: u64,
    pub position: u64,
    body_length: u64,
    body_crc: u32,
    length: usize,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Audits `state` as recovery would leave it if the journal ended here: with what a crash
/// left unfinished finished. Only products change, so only they are copied.
pub fn check(state: &mut EngineState, at: Timestamp) -> Result<(), String> {
    let fixes = state.unfinished();
    let report = if fixes.is_empty() {
        audit(state, at)
    } else {
        let products = state.products.clone();
        for fix in fixes {
            state.apply(fix)?;
        }
        let report = audit(state, at);
        state.products = products;
        report
    };
    match report.ok {
        true => Ok(()),
        false => Err(report.failures()),
    }
}

/// Header + body of a snapshot file of `state`, which includes journal records up to
/// `position`. The caller has `check`ed it.
pub fn encode_file(
    sequence: u64,
    position: u64,
    taken_at: Timestamp,
    state: &EngineState,
) -> Result<Vec<u8>, SnapshotError> {
    let body = codec::encode(&SnapshotV3::from_state(sequence, taken_at, state))
        .map_err(SnapshotError::Encode)?;
    let mut file = Vec::with_capacity(HEADER_LEN + body.len());
    file.extend_from_slice(&MAGIC);
    file.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    file.extend_from_slice(&0u32.to_le_bytes());
    file.extend_from_slice(&sequence.to_le_bytes());
    file.extend_from_slice(&position.to_le_bytes());
    file.extend_from_slice(&(body.len() as u64).to_le_bytes());
    file.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    let header_crc = crc32fast::hash(&file[..44]);
    file.extend_from_slice(&header_crc.to_le_bytes());
    file.extend_from_slice(&body);
    Ok(file)
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Checks and reads a header (version 1 or 2) from the start of a file.
pub fn decode_header(bytes: &[u8]) -> Result<Header, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    if bytes.len() < V1_HEADER_LEN {
        return Err(format!(
            "truncated: {} bytes, shorter than a header",
            bytes.len()
        ));
    }
    if bytes[..8] != MAGIC {
        return Err("wrong magic: not a commerce-engine snapshot".into());
    }
    let version = le_u32(bytes, 8);
    let (length, position, fields) = match version {
        1 => (V1_HEADER_LEN, 0, 24),
        2 | 3 if bytes.len() >= HEADER_LEN => (HEADER_LEN, le_u64(bytes, 24), 32),
        2 | 3 => return Err("truncated: shorter than its header".into()),
        _ => {
            return Err(format!(
                "format version {version}, but this build reads versions 1 to {FORMAT_VERSION}"
            ));
        }
    };
    if crc32fast::hash(&bytes[..length - 4]) != le_u32(bytes, length - 4) {
        return Err("header checksum mismatch".into());
    }
    Ok(Header {
        version,
        sequence: le_u64(bytes, 16),
        position,
        body_length: le_u64(bytes, fields),
        body_crc: le_u32(bytes, fields + 8),
        length,
    })
}

/// Checks and decodes a whole snapshot file; the error says what is wrong with it.
pub fn decode_file(bytes: &[u8]) -> Result<Loaded, String> {
    let header = decode_header(bytes)?;
    let body = &bytes[header.length..];
    if header.body_length != body.len() as u64 {
        return Err(format!(
            "truncated or padded: the header declares {} body bytes, the file has {}",
            header.body_length,
            body.len()
        ));
    }
    if crc32fast::hash(body) != header.body_crc {
        return Err("body checksum mismatch".into());
    }
    let undecodable = |error| format!("undecodable body: {error}");
    let snapshot: SnapshotV3 = match header.version {
        1 | 2 => codec::decode::<SnapshotV1>(body)
            .map_err(undecodable)?
            .into(),
        _ => codec::decode(body).map_err(undecodable)?,
    };
    let (sequence, taken_at) = (snapshot.sequence, Timestamp(snapshot.taken_at));
    if sequence != header.sequence {
        return Err("the body's sequence differs from the header's".into());
    }
    let mut state = snapshot.into_state();
    // As of the moment the snapshot was taken: orders that were PENDING then are fine, even if
    // their deadline has passed since (they expire at once on start).
    check(&mut state, taken_at)
        .map_err(|failures| format!("the state breaks invariants: {failures}"))?;
    Ok(Loaded {
        path: PathBuf::new(),
        sequence,
        position: header.position,
        taken_at,
        state,
    })
}

pub fn file_name(sequence: u64) -> String {
    format!("{FILE_PREFIX}{sequence:020}{FILE_SUFFIX}")
}

/// The header of the file at `path`, read without the body.
pub fn read_header(path: &Path) -> Result<Header, String> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(HEADER_LEN);
    std::fs::File::open(path)
        .and_then(|file| file.take(HEADER_LEN as u64).read_to_end(&mut bytes))
        .map_err(|error| error.to_string())?;
    decode_header(&bytes)
}

/// Snapshot files in `dir`, newest (highest sequence) first, with the position each includes
/// (0 when its header is unreadable, so nothing it might need is ever deleted). A file is
/// ordered by the sequence in its header; a name that disagrees is reported. Other files are
/// ignored.
pub fn list(dir: &Path) -> Result<Vec<(u64, u64, PathBuf)>, SnapshotError> {
    let mut files = Vec::new();
    for (named, path) in numbered_files(dir, FILE_PREFIX, FILE_SUFFIX).map_err(io_error(dir))? {
        let (sequence, position) = match read_header(&path) {
            Ok(header) if header.sequence != named => {
                tracing::warn!(path = %path.display(), header = header.sequence, "the snapshot's name and header disagree on its sequence; the header's is used");
                (header.sequence, header.position)
            }
            Ok(header) => (header.sequence, header.position),
            Err(_) => (named, 0),
        };
        files.push((sequence, position, path));
    }
    files.sort_unstable_by_key(|(sequence, _, _)| std::cmp::Reverse(*sequence));
    Ok(files)
}

/// The files in `dir` named `<prefix><decimal number><suffix>`, with that number, in no
/// particular order; none if `dir` does not exist. Other files are ignored.
pub fn numbered_files(
    dir: &Path,
    prefix: &str,
    suffix: &str,
) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        let number = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .and_then(|digits| digits.parse::<u64>().ok());
        if let Some(number) = number {
            files.push((number, path));
        }
    }
    Ok(files)
}

/// The newest snapshot in `dir` that passes every check, or `None` if there are no snapshot
/// files. Every file skipped is logged with its path and reason; if there are files and none
/// is readable, that is an error unless `ignore_unreadable`.
pub fn read_newest(dir: &Path, ignore_unreadable: bool) -> Result<Option<Loaded>, SnapshotError> {
    let files = list(dir)?;
    for (_, _, path) in &files {
        let checked = std::fs::read(path)
            .map_err(|error| error.to_string())
            .and_then(|bytes| decode_file(&bytes));
        match checked {
            Ok(mut loaded) => {
                tracing::info!(path = %path.display(), sequence = loaded.sequence, position = loaded.position, "snapshot loaded");
                loaded.path = path.clone();
                return Ok(Some(loaded));
            }
            Err(reason) => {
                tracing::error!(path = %path.display(), %reason, "SKIPPING UNREADABLE SNAPSHOT")
            }
        }
    }
    if files.is_empty() || ignore_unreadable {
        if !files.is_empty() {
            tracing::warn!(dir = %dir.display(), "no snapshot is readable; starting without one as asked");
        }
        return Ok(None);
    }
    Err(SnapshotError::NoneReadable {
        dir: dir.to_path_buf(),
        count: files.len(),
    })
}

/// Writes `bytes` as snapshot `sequence`: temporary file, fsync, rename, directory fsync.
pub fn write_atomically(dir: &Path, sequence: u64, bytes: &[u8]) -> Result<PathBuf, SnapshotError> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let temporary = dir.join(format!(".{}.tmp", file_name(sequence)));
    let target = dir.join(file_name(sequence));
    let mut file = std::fs::File::create(&temporary).map_err(io_error(&temporary))?;
    file.write_all(bytes).map_err(io_error(&temporary))?;
    file.sync_all().map_err(io_error(&temporary))?;
    drop(file);
    std::fs::rename(&temporary, &target).map_err(io_error(&target))?;
    sync_dir(dir)?;
    Ok(target)
}

/// Makes renames, creations and deletions in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(dir))
}

/// Deletes all but the newest `keep` snapshot files.
pub fn prune(dir: &Path, keep: usize) -> Result<(), SnapshotError> {
    for (_, _, path) in list(dir)?.into_iter().skip(keep) {
        std::fs::remove_file(&path).map_err(io_error(&path))?;
    }
    Ok(())
}

/// Removes temporary files a crash left behind (a snapshot or journal file being written).
pub fn remove_stale_temporaries(dir: &Path) -> Result<(), SnapshotError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error(dir)(error)),
    };
    for entry in entries {
        let path = entry.map_err(io_error(dir))?.path();
        if path.extension().is_some_and(|extension| extension == "tmp") {
            tracing::warn!(path = %path.display(), "removing a stale temporary file");
            std::fs::remove_file(&path).map_err(io_error(&path))?;
        }
    }
    Ok(())
}

/// Creates `dir` if needed and proves it writable (a file created, fsynced and removed), so a
/// read-only directory stops the start instead of every later write.
pub fn check_writable(dir: &Path) -> Result<(), SnapshotError> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let probe = dir.join(".write-probe.tmp");
    let mut file = std::fs::File::create(&probe).map_err(io_error(&probe))?;
    file.write_all(b"probe")
        .and_then(|_| file.sync_all())
        .map_err(io_error(&probe))?;
    drop(file);
    std::fs::remove_file(&probe).map_err(io_error(&probe))
}

#[cfg(test)]
mod tests;
