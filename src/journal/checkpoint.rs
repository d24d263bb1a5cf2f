//! The checkpointer thread: keeps a replica of the state by applying every durable batch, and
//! flushes what changed into the entity store, writes snapshot files of it (and answers reads
//! of it) on request, then deletes the journal segments the store includes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use super::{JournalOptions, Record, Request, Shared, Start, segment};
use crate::clock::Timestamp;
use crate::domain::state::EngineState;
use crate::snapshot::{self, SnapshotError, SnapshotInfo};
use crate::store::{Changed, EntityStore, Flushed};

/// The niceness of the thread that writes a snapshot: on a busy machine it gets about a tenth
/// of a core against the request path's threads (Linux CFS weights 110 vs 1024).
const SNAPSHOT_NICENESS: libc::c_int = 10;

/// Lowers the calling thread's scheduling priority to `SNAPSHOT_NICENESS` (Linux: niceness
/// is per thread). Best effort: a failure only costs latency, so it is logged, not fatal.
fn lower_priority() {
    // SAFETY: plain syscalls on the calling thread, no memory passed.
    let lowered = unsafe {
        let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, thread, SNAPSHOT_NICENESS)
    };
    if lowered != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not lower the snapshot thread's priority");
    }
}

/// How long the checkpointer lets batches gather after each wake-up.
const GATHER: std::time::Duration = std::time::Duration::from_millis(2);

/// What the writer hands over, in journal order.
pub enum ToCheckpoint {
    /// Durable records, to apply.
    Batch(Vec<(u64, Record)>),
    /// Answer a request (a snapshot, a read) from everything applied so far.
    Request(Request),
    Stop,
}

pub struct Checkpointer {
    dir: PathBuf,
    keep: usize,
    state: EngineState,
    /// The last record applied.
    position: u64,
    next_snapshot: u64,
    /// Set when a record did not apply: the replica no longer matches the journal, so no
    /// snapshot is written from it (the journal keeps everything instead).
    diverged: Option<String>,
    store: EntityStore,
    /// What differs between the replica and the store: the next flush writes it.
    changed: Changed,
    shared: Arc<Shared>,
}

impl Checkpointer {
    /// A checkpointer with no replica yet: `run` waits for it first.
    pub fn new(
        options: &JournalOptions,
        start: &Start,
        store: EntityStore,
        shared: Arc<Shared>,
    ) -> Checkpointer {
        Checkpointer {
            dir: options.dir.clone(),
            keep: options.keep,
            state: EngineState::default(),
            position: start.position,
            next_snapshot: start.next_snapshot,
            diverged: None,
            store,
            changed: Changed::everything(),
            shared,
        }
    }

    /// Takes the replica (the recovered state, the last record in it, and what in it the store
    /// does not have yet), then applies what the writer hands over. Without a replica (the
    /// journal was dropped first) it stops.
    pub fn run(
        mut self,
        replica: Receiver<(EngineState, u64, Changed)>,
        batches: Receiver<ToCheckpoint>,
    ) {
        let Ok((state, position, changed)) = replica.recv() else {
            return;
        };
        (self.state, self.position, self.changed) = (state, position, changed);
        while let Ok(message) = batches.recv() {
            if !self.handle(message) {
                return;
            }
            // Let batches gather before the next wake-up: under load the writer hands over
            // thousands a second, and waking for each cost more than applying it.
            std::thread::sleep(GATHER);
            while let Ok(message) = batches.try_recv() {
                if !self.handle(message) {
                    return;
                }
            }
        }
    }

    /// Handles one message; false once told to stop.
    fn handle(&mut self, message: ToCheckpoint) -> bool {
        {
            match message {
                ToCheckpoint::Batch(records) => self.apply(records),
                ToCheckpoint::Request(Request::Snapshot { taken_at, reply }) => {
                    let result = self.snapshot(taken_at);
                    if let Err(error) = &result {
                        self.shared
                            .stats
                            .snapshot_failures
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::error!(%error, "snapshot failed; the journal keeps every record since the last good one");
                    }
                    let _ = reply.send(result);
                }
                ToCheckpoint::Request(Request::Flush { taken_at, reply }) => {
                    let _ = reply.send(self.flush(taken_at));
                }
                ToCheckpoint::Request(Request::Read(read)) => match &self.diverged {
                    None => read(Ok(&self.state)),
                    Some(reason) => read(Err(format!(
                        "the replica stopped matching the journal at {reason}"
                    ))),
                },
                ToCheckpoint::Stop => return false,
            }
        }
        true
    }

    fn apply(&mut self, records: Vec<(u64, Record)>) {
        // Records up to the replica's position are in it already (fix-ups recovery applied
        // before handing the state over).
        let applied = self.position;
        for (sequence, record) in records.into_iter().filter(|(s, _)| *s > applied) {
            self.changed.mark(&record);
            if self.diverged.is_none()
                && let Err(error) = self.state.apply(record)
            {
                tracing::error!(sequence, %error, "a journal record does not apply to the replica; snapshots stop, the journal keeps everything");
                self.diverged = Some(format!("record {sequence}: {error}"));
            }
            self.position = sequence;
        }
    }

    fn snapshot(
        &mut self,
        taken_at: crate::clock::Timestamp,
    ) -> Result<SnapshotInfo, SnapshotError> {
        if let Some(reason) = &self.diverged {
            return Err(SnapshotError::Inconsistent(format!(
                "the replica stopped matching the journal at {reason}"
            )));
        }
        let started = Instant::now();
        let sequence = self.next_snapshot;
        let (state, position, dir) = (&mut self.state, self.position, &self.dir);
        // The heavy part (audit, encoding, writing) runs on a thread of lower scheduling
        // priority, so on a busy machine the request path keeps the CPU it needs; nothing
        // waits for the snapshot.
        let written = std::thread::scope(|scope| {
            let writer = scope.spawn(move || {
                lower_priority();
                snapshot::check(state, taken_at).map_err(SnapshotError::Inconsistent)?;
                let bytes = snapshot::encode_file(sequence, position, taken_at, state)?;
                let path = snapshot::write_atomically(dir, sequence, &bytes)?;
                Ok::<_, SnapshotError>((path, bytes.len()))
            });
            writer.join()
        });
        let (path, bytes) = written.map_err(|_| {
            SnapshotError::Unavailable("the snapshot writer thread panicked".into())
        })??;
        self.next_snapshot += 1;
        // The store follows to the same position. The file is on disk whatever the flush does:
        // a failed flush is logged and counted there, and the next one writes what it missed
        // (a start then takes the file, which is newer than the store).
        let _ = self.write_store(taken_at);
        // The snapshot is durable now; failing to delete old files must not undo that.
        if let Err(error) = snapshot::prune(&self.dir, self.keep) {
            tracing::warn!(%error, "old snapshots could not be pruned");
        }
        let took = started.elapsed();
        let took_ms = took.as_millis() as u64;
        self.shared.metrics.snapshot_written(took, bytes as u64);
        let entities = self.state.entity_count();
        tracing::info!(path = %path.display(), sequence, position = self.position, bytes, entities, took_ms, "snapshot written");
        Ok(SnapshotInfo {
            path,
            sequence,
            bytes: bytes as u64,
            entities,
            took_ms,
        })
    }

    /// The periodic snapshot: `write_store`, timed in the snapshot metrics.
    fn flush(&mut self, taken_at: Timestamp) -> Result<Flushed, SnapshotError> {
        let started = Instant::now();
        let flushed = self.write_store(taken_at)?;
        self.shared
            .metrics
            .snapshot_written(started.elapsed(), flushed.bytes);
        Ok(flushed)
    }

    /// Writes what changed since the last flush into the store, as the replica at its
    /// position, then deletes the journal segments no start needs any more. A failure is
    /// logged and counted; what changed stays marked for the next flush.
    fn write_store(&mut self, taken_at: Timestamp) -> Result<Flushed, SnapshotError> {
        if let Some(reason) = &self.diverged {
            return Err(SnapshotError::Inconsistent(format!(
                "the replica stopped matching the journal at {reason}"
            )));
        }
        let started = Instant::now();
        let (store, state, changed, position) =
            (&self.store, &self.state, &self.changed, self.position);
        // Like a snapshot file, on a thread of lower priority: the request path comes first.
        let flushed = std::thread::scope(|scope| {
            let writer = scope.spawn(move || {
                lower_priority();
                store.flush(state, changed, position, taken_at)
            });
            writer.join()
        })
        .map_err(|_| SnapshotError::Unavailable("the store writer thread panicked".into()))
        .and_then(|flushed| flushed.map_err(SnapshotError::Store));
        let flushed = match flushed {
            Ok(flushed) => flushed,
            Err(error) => {
                self.shared
                    .stats
                    .snapshot_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(%error, "the entity store could not be flushed; the journal keeps every record since its last flush");
                return Err(error);
            }
        };
        self.changed = Changed::default();
        if let Err(error) = self.delete_unneeded_segments() {
            tracing::warn!(%error, "old journal segments could not be deleted");
        }
        let took_ms = started.elapsed().as_millis() as u64;
        let Flushed { entities, bytes } = flushed;
        tracing::info!(position, entities, bytes, took_ms, "store flushed");
        Ok(flushed)
    }

    /// Deletes each segment whose last record the store already includes: a start begins at
    /// the store. The last segment (being written) is never deleted.
    fn delete_unneeded_segments(&self) -> Result<(), String> {
        let oldest = self.position;
        let segments = segment::list(&self.dir).map_err(|error| error.to_string())?;
        let mut deleted = false;
        for pair in segments.windows(2) {
            let (path, next_first) = (&pair[0].path, pair[1].first);
            if next_first.saturating_sub(1) <= oldest {
                std::fs::remove_file(path)
                    .map_err(|error| format!("{}: {error}", path.display()))?;
                deleted = true;
            }
        }
        if deleted {
            snapshot::sync_dir(&self.dir).map_err(|error| error.to_string())?;
        }
        Ok(())
    }
}
