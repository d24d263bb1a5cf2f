//! Snapshots (SPEC section 6): the whole engine state, consistent, written crash-safely and
//! restored on start.
//!
//! **Consistency.** A snapshot starts from `Engine::read_state`, which closes the admission
//! gate (`src/gate.rs`): in-flight commands drain, new ones (expiry hints included) wait, every
//! actor is read, the gate reopens. Encoding and disk I/O happen after the gate has reopened,
//! so requests pause only for the read. The state is audited before it is written and again
//! right after it is read back, so a file never holds — and a restart never trusts — a state
//! that breaks an invariant.
//!
//! **File format**, one file per snapshot, `snapshot-<sequence, 20 digits>.bin`:
//!
//! ```text
//! offset  size  field
//!      0     8  magic "CMRCSNAP"
//!      8     4  format version, u32 little-endian (1)
//!     12     4  reserved, zero
//!     16     8  sequence, u64 LE (also in the file name; increases by one per snapshot)
//!     24     8  body length in bytes, u64 LE
//!     32     4  CRC-32 of the body, u32 LE
//!     36     4  CRC-32 of bytes 0..36 (the header), u32 LE
//!     40     …  body: `model::SnapshotV1`, bincode 2 standard encoding (`codec.rs`)
//! ```
//!
//! **Crash safety.** Written to `.snapshot-<sequence>.tmp`, fsynced, renamed over the final
//! name, then the directory is fsynced; the newest `snapshot.keep` files are kept. A crash at
//! any point leaves the previous snapshot untouched. On start the newest file that passes every
//! check (header, checksums, decoding, invariants) wins; each one skipped is logged with its
//! path and reason. Files but none readable: the engine refuses to start unless told to.
//!
//! **Sequence.** Snapshot N+1 follows N. A write-ahead journal would record commands after
//! snapshot N under that number and replay them onto it.

mod codec;
pub mod model;

use std::path::{Path, PathBuf};
use std::time::Instant;

use thiserror::Error;
use tokio::sync::Mutex;

use crate::audit::audit;
use crate::clock::Timestamp;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::state::EngineState;
use model::SnapshotV1;

pub const MAGIC: [u8; 8] = *b"CMRCSNAP";
pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: usize = 40;
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
    #[error("the state could not be read: {0}")]
    Engine(#[from] EngineError),
}

/// What `POST /admin/snapshot` reports.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotInfo {
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
    pub taken_at: Timestamp,
    pub state: EngineState,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Header + body of a snapshot file. Audits the state first: an inconsistent state is a bug
/// to report, never something to persist.
pub fn encode_file(
    sequence: u64,
    taken_at: Timestamp,
    state: &EngineState,
) -> Result<Vec<u8>, SnapshotError> {
    let report = audit(state, taken_at);
    if !report.ok {
        return Err(SnapshotError::Inconsistent(report.failures()));
    }
    let body = codec::encode(&SnapshotV1::from_state(sequence, taken_at, state))
        .map_err(SnapshotError::Encode)?;
    let mut file = Vec::with_capacity(HEADER_LEN + body.len());
    file.extend_from_slice(&MAGIC);
    file.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    file.extend_from_slice(&0u32.to_le_bytes());
    file.extend_from_slice(&sequence.to_le_bytes());
    file.extend_from_slice(&(body.len() as u64).to_le_bytes());
    file.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    let header_crc = crc32fast::hash(&file[..36]);
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

/// Checks and decodes a whole snapshot file; the error says what is wrong with it.
pub fn decode_file(bytes: &[u8]) -> Result<Loaded, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    if bytes.len() < HEADER_LEN {
        return Err(format!(
            "truncated: {} bytes, shorter than the {HEADER_LEN}-byte header",
            bytes.len()
        ));
    }
    if bytes[..8] != MAGIC {
        return Err("wrong magic: not a commerce-engine snapshot".into());
    }
    if crc32fast::hash(&bytes[..36]) != le_u32(bytes, 36) {
        return Err("header checksum mismatch".into());
    }
    let version = le_u32(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, but this build reads version {FORMAT_VERSION}"
        ));
    }
    let body = &bytes[HEADER_LEN..];
    let declared = le_u64(bytes, 24);
    if declared != body.len() as u64 {
        return Err(format!(
            "truncated or padded: the header declares {declared} body bytes, the file has {}",
            body.len()
        ));
    }
    if crc32fast::hash(body) != le_u32(bytes, 32) {
        return Err("body checksum mismatch".into());
    }
    let snapshot = codec::decode(body).map_err(|error| format!("undecodable body: {error}"))?;
    let (sequence, taken_at) = (snapshot.sequence, Timestamp(snapshot.taken_at));
    if sequence != le_u64(bytes, 16) {
        return Err("the body's sequence differs from the header's".into());
    }
    let state = snapshot.into_state();
    // The audit runs as of the moment the snapshot was taken: orders that were PENDING then
    // are fine, even if their deadline has passed since (they expire at once on start).
    let report = audit(&state, taken_at);
    if !report.ok {
        return Err(format!(
            "the state breaks invariants: {}",
            report.failures()
        ));
    }
    Ok(Loaded {
        path: PathBuf::new(),
        sequence,
        taken_at,
        state,
    })
}

pub fn file_name(sequence: u64) -> String {
    format!("{FILE_PREFIX}{sequence:020}{FILE_SUFFIX}")
}

/// Snapshot files in `dir`, newest (highest sequence) first. Other files are ignored.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SnapshotError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io_error(dir)(error)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_error(dir))?.path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        let sequence = name
            .strip_prefix(FILE_PREFIX)
            .and_then(|rest| rest.strip_suffix(FILE_SUFFIX));
        if let Some(sequence) = sequence.and_then(|digits| digits.parse::<u64>().ok()) {
            files.push((sequence, path));
        }
    }
    files.sort_unstable_by_key(|(sequence, _)| std::cmp::Reverse(*sequence));
    Ok(files)
}

/// The newest snapshot in `dir` that passes every check, or `None` if there are no snapshot
/// files. Every file skipped is logged with its path and reason; if there are files and none
/// is readable, that is an error unless `ignore_unreadable`.
pub fn read_newest(dir: &Path, ignore_unreadable: bool) -> Result<Option<Loaded>, SnapshotError> {
    let files = list(dir)?;
    for (_, path) in &files {
        let checked = std::fs::read(path)
            .map_err(|error| error.to_string())
            .and_then(|bytes| decode_file(&bytes));
        match checked {
            Ok(mut loaded) => {
                tracing::info!(path = %path.display(), sequence = loaded.sequence, "snapshot loaded");
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
            tracing::warn!(dir = %dir.display(), "no snapshot is readable; starting from the seed as asked");
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
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(dir))?;
    Ok(target)
}

/// Deletes all but the newest `keep` snapshot files.
pub fn prune(dir: &Path, keep: usize) -> Result<(), SnapshotError> {
    for (_, path) in list(dir)?.into_iter().skip(keep) {
        std::fs::remove_file(&path).map_err(io_error(&path))?;
    }
    Ok(())
}

/// Where an engine writes its snapshots, and the sequence of the next one. One snapshot is
/// written at a time (periodic, admin and shutdown snapshots queue on the mutex).
#[derive(Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    keep: usize,
    next_sequence: Mutex<u64>,
}

impl SnapshotStore {
    pub fn new(dir: PathBuf, keep: usize, next_sequence: u64) -> SnapshotStore {
        SnapshotStore {
            dir,
            keep,
            next_sequence: Mutex::new(next_sequence),
        }
    }

    /// Reads a consistent state from `engine` and writes it as the next snapshot.
    pub async fn take(&self, engine: &Engine) -> Result<SnapshotInfo, SnapshotError> {
        let mut sequence = self.next_sequence.lock().await;
        let started = Instant::now();
        let (state, taken_at) = engine.read_state_with_time().await?;
        let paused_ms = started.elapsed().as_millis();
        let entities = state.entity_count();
        let (dir, keep, this) = (self.dir.clone(), self.keep, *sequence);
        let (path, bytes) = tokio::task::spawn_blocking(move || {
            let bytes = encode_file(this, taken_at, &state)?;
            let path = write_atomically(&dir, this, &bytes)?;
            // The snapshot is durable now; failing to delete old ones must not undo that.
            if let Err(error) = prune(&dir, keep) {
                tracing::warn!(%error, "old snapshots could not be pruned");
            }
            Ok::<_, SnapshotError>((path, bytes.len() as u64))
        })
        .await
        .map_err(|error| SnapshotError::Encode(format!("the writer task failed: {error}")))??;
        *sequence += 1;
        let took_ms = started.elapsed().as_millis() as u64;
        tracing::info!(path = %path.display(), sequence = this, bytes, entities, took_ms, paused_ms, "snapshot written");
        Ok(SnapshotInfo {
            path,
            sequence: this,
            bytes,
            entities,
            took_ms,
        })
    }
}

#[cfg(test)]
mod tests;
