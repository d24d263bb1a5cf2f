//! Recovery: the entity store, or the newest good snapshot file when it is newer than the
//! store, then every journal record after that position, in order; a torn tail is cut off,
//! damage before the end stops the start. What a crash left unfinished is returned as records
//! for the caller to append before serving (see `mod.rs`).

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::Record;
use super::segment::{self, Stop};
use crate::clock::Timestamp;
use crate::domain::state::EngineState;
use crate::snapshot::{self, SnapshotError};
use crate::store::{Changed, EntityStore};

#[derive(Debug, Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("journal I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the journal is damaged in {path} at byte {offset}: {reason}. Refusing to start; \
         --ignore-unreadable-snapshots keeps the records before it and sets the rest aside"
    )]
    Corrupt {
        path: PathBuf,
        offset: usize,
        reason: String,
    },
    #[error("the starting state could not be built: {0}")]
    Seed(String),
    #[error("the recovered state breaks invariants: {0}")]
    Inconsistent(String),
    #[error(
        "{0}. Refusing to start; --ignore-unreadable-snapshots starts from the newest snapshot \
         file instead (what the journal no longer holds after it is lost)"
    )]
    Store(String),
}

/// What recovery rebuilt.
#[derive(Debug)]
pub struct Recovered {
    pub state: EngineState,
    /// The last journal record in `state`.
    pub position: u64,
    /// The sequence the next record gets.
    pub next_sequence: u64,
    /// The sequence the next snapshot gets.
    pub next_snapshot: u64,
    /// Whether a snapshot or the store was found (without one the state came from `seed` and
    /// the journal).
    pub from_snapshot: bool,
    /// Records that finish what a crash left half done; not yet applied to `state`.
    pub unfinished: Vec<Record>,
    /// What in `state` differs from the entity store.
    pub changed: Changed,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecoveryError + '_ {
    move |source| RecoveryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Rebuilds the state in `dir`. `seed` gives the state to start from when there is no
/// snapshot. `ignore_damage` is the override flag of docs/spec.md §6: unreadable snapshots are
/// skipped for the seed, and damaged journal records are set aside with everything after them.
pub fn recover(
    dir: &Path,
    ignore_damage: bool,
    seed: impl FnOnce() -> Result<EngineState, String>,
) -> Result<Recovered, RecoveryError> {
    snapshot::remove_stale_temporaries(dir)?;
    let files = snapshot::list(dir)?;
    let next_snapshot = files.first().map_or(1, |(sequence, _, _)| sequence + 1);
    let newest_file = files.iter().map(|(_, position, _)| *position).max();
    let opened = EntityStore::open(dir).and_then(|store| Ok((store.position()?, store)));
    let (stored, store) = match opened {
        Ok(opened) => opened,
        Err(error) if ignore_damage => {
            tracing::error!(%error, "ENTITY STORE UNREADABLE: setting it aside and starting from the snapshot files, as asked");
            set_store_aside(dir)?;
            (None, EntityStore::open(dir).map_err(RecoveryError::Store)?)
        }
        Err(error) => return Err(RecoveryError::Store(error)),
    };
    // The store follows every snapshot file, so it is the newer one unless it is missing, or a
    // crash (or a failed flush) came between a file and the flush after it. A newer file that
    // cannot be read leaves the store, not an older file: the journal after older files is gone.
    let newer_file = match stored {
        Some(stored) if newest_file.is_some_and(|file| file > stored) => {
            snapshot::read_newest(dir, true)?.filter(|loaded| loaded.position > stored)
        }
        Some(_) => None,
        None => snapshot::read_newest(dir, ignore_damage)?,
    };
    let from_store = stored.is_some() && newer_file.is_none();
    let from_snapshot = from_store || newer_file.is_some();
    let (mut state, mut position, taken_at, mut changed) = if from_store {
        let stored = store.load().map_err(RecoveryError::Store)?;
        let stored = stored.expect("the store has a position, so it was flushed");
        tracing::info!(position = stored.position, "starting from the entity store");
        let (state, position, taken_at) = (stored.state, stored.position, stored.taken_at);
        (state, position, taken_at, Changed::default())
    } else {
        let (state, position, taken_at) = match newer_file {
            Some(loaded) => (loaded.state, loaded.position, loaded.taken_at),
            None => (seed().map_err(RecoveryError::Seed)?, 0, Timestamp(0)),
        };
        // The store has none of it, or an older state: the first flush writes everything
        // (and removes what the store has beyond it).
        (state, position, taken_at, Changed::everything())
    };
    let last = replay(dir, ignore_damage, &mut state, &mut position, &mut changed)?;
    let unfinished = state.unfinished();
    if !unfinished.is_empty() {
        tracing::warn!(
            count = unfinished.len(),
            "finishing what the crash left half done (stock of unplaced, paid or ended orders)"
        );
    }
    // Audited as it will be served, with the unfinished finished; `check` copies only the
    // products for that, not the whole state.
    snapshot::check(&mut state, taken_at).map_err(RecoveryError::Inconsistent)?;
    tracing::info!(position, "recovered");
    Ok(Recovered {
        state,
        position,
        next_sequence: last.max(position) + 1,
        next_snapshot,
        from_snapshot,
        unfinished,
        changed,
    })
}

/// Applies every record after `position` from the segments in `dir`; returns the last
/// sequence found on disk.
fn replay(
    dir: &Path,
    ignore_damage: bool,
    state: &mut EngineState,
    position: &mut u64,
    changed: &mut Changed,
) -> Result<u64, RecoveryError> {
    let segments = segment::list(dir).map_err(io(dir))?;
    let count = segments.len();
    let mut last_seen = 0;
    let mut applied = 0u64;
    for (index, listed) in segments.iter().enumerate() {
        let (first, path) = (&listed.first, &listed.path);
        let is_last = index + 1 == count;
        if let Some(reason) = &listed.unreadable {
            if is_last {
                tracing::warn!(path = %path.display(), %reason, "removing a journal segment with no whole header (a crash during rotation)");
                std::fs::remove_file(path).map_err(io(path))?;
                break;
            }
            damaged(path, 0, reason.clone(), ignore_damage, &segments[index..])?;
            break;
        }
        let expected = last_seen.max(*position) + 1;
        if *first > expected {
            let reason = format!("records {expected} to {} are missing", first - 1);
            damaged(path, 0, reason, ignore_damage, &segments[index..])?;
            break;
        }
        let bytes = std::fs::read(path).map_err(io(path))?;
        let scanned = segment::scan(&bytes, *first);
        for (sequence, record) in scanned.records {
            last_seen = sequence;
            if sequence <= *position {
                continue;
            }
            changed.mark(&record);
            if let Err(reason) = state.apply(record) {
                let reason = format!("record {sequence} does not apply: {reason}");
                return Err(RecoveryError::Corrupt {
                    path: path.clone(),
                    offset: 0,
                    reason,
                });
            }
            *position = sequence;
            applied += 1;
        }
        match scanned.stop {
            None => {}
            Some(Stop::Torn { offset }) if is_last => {
                tracing::warn!(path = %path.display(), offset, cut = bytes.len() - offset, "cutting off a torn journal tail (a crash mid-write; none of it was acknowledged)");
                cut(path, offset as u64)?;
            }
            Some(Stop::Torn { offset }) => {
                let reason = "a torn record before the last segment".to_string();
                damaged(path, offset, reason, ignore_damage, &segments[index..])?;
                break;
            }
            Some(Stop::Corrupt { offset, reason }) => {
                damaged(path, offset, reason, ignore_damage, &segments[index..])?;
                break;
            }
        }
        if is_last && scanned.valid_len <= segment::HEADER_LEN {
            // No record in it: the new segment will take its name.
            std::fs::remove_file(path).map_err(io(path))?;
        }
    }
    tracing::info!(applied, "journal replayed");
    Ok(last_seen)
}

/// Renames the store directory to `store.corrupt` (replacing an earlier one), so a new store
/// starts in its place.
fn set_store_aside(dir: &Path) -> Result<(), RecoveryError> {
    let path = dir.join(crate::store::DIR_NAME);
    let aside = path.with_extension("corrupt");
    if aside.exists() {
        std::fs::remove_dir_all(&aside).map_err(io(&aside))?;
    }
    std::fs::rename(&path, &aside).map_err(io(&path))
}

fn cut(path: &Path, length: u64) -> Result<(), RecoveryError> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io(path))?;
    file.set_len(length)
        .and_then(|_| file.sync_all())
        .map_err(io(path))
}

/// Damage: an error, or with the override, the damaged segment is copied aside and cut at
/// the damage, and every later segment is set aside (renamed `.corrupt`), loudly.
fn damaged(
    path: &Path,
    offset: usize,
    reason: String,
    ignore_damage: bool,
    from_here: &[segment::Listed],
) -> Result<(), RecoveryError> {
    if !ignore_damage {
        return Err(RecoveryError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason,
        });
    }
    tracing::error!(path = %path.display(), offset, %reason, "JOURNAL DAMAGED: keeping the records before it, setting the rest aside as asked");
    let aside = |path: &Path| path.with_extension("log.corrupt");
    std::fs::copy(path, aside(path)).map_err(io(path))?;
    if offset >= segment::HEADER_LEN {
        cut(path, offset as u64)?;
    } else {
        std::fs::remove_file(path).map_err(io(path))?;
    }
    for later in &from_here[1..] {
        let later = &later.path;
        std::fs::rename(later, aside(later)).map_err(io(later))?;
    }
    Ok(())
}
