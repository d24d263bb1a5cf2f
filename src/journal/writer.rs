//! The writer thread: drains the queue, writes each batch to the current segment, fsyncs once
//! for the whole batch (group commit), publishes the durable sequence, and hands the batch to
//! the checkpointer. Failed writes are retried until they succeed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use super::checkpoint::ToCheckpoint;
use super::segment::{self, FRAME_HEADER_LEN};
use super::{Faults, FileOperation, FsyncPolicy, JournalOptions, Record, Shared};
use crate::snapshot::sync_dir;

const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The segment being appended to.
pub struct Segment {
    file: File,
    path: PathBuf,
    /// Bytes written and accepted so far; a failed write is cut back to this.
    length: u64,
    /// Whether bytes were written since the last fsync.
    unsynced: bool,
    faults: Option<Faults>,
}

impl Segment {
    /// A new segment whose first record will be `first_sequence`: its header goes to a
    /// temporary file, which is fsynced and renamed, then the directory is fsynced, so a
    /// segment file always starts with a whole header.
    pub fn create(
        options: &JournalOptions,
        first_sequence: u64,
        faults: Option<Faults>,
    ) -> std::io::Result<Segment> {
        let dir = options.dir.clone();
        std::fs::create_dir_all(&dir)?;
        let name = segment::file_name(first_sequence);
        let temporary = dir.join(format!(".{name}.tmp"));
        let path = dir.join(&name);
        let mut file = File::create(&temporary)?;
        file.write_all(&segment::header(first_sequence))?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, &path)?;
        sync_dir(&dir).map_err(|error| std::io::Error::other(error.to_string()))?;
        let file = OpenOptions::new().append(true).open(&path)?;
        Ok(Segment {
            file,
            path,
            length: segment::HEADER_LEN as u64,
            unsynced: false,
            faults,
        })
    }

    fn fault(&self, operation: FileOperation) -> std::io::Result<()> {
        match &self.faults {
            Some(faults) => faults(operation),
            None => Ok(()),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.fault(FileOperation::Write)?;
        self.file.write_all(bytes)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.fault(FileOperation::Sync)?;
        self.file.sync_data()?;
        self.unsynced = false;
        Ok(())
    }

    /// Cuts off whatever a failed write left after the last accepted byte.
    fn cut_back(&mut self) -> std::io::Result<()> {
        self.file.set_len(self.length)
    }
}

/// Retries `operation` with backoff until it succeeds, logging and counting each failure.
fn retrying<T>(
    shared: &Shared,
    what: &str,
    mut operation: impl FnMut() -> std::io::Result<T>,
) -> T {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match operation() {
            Ok(value) => return value,
            Err(error) => {
                shared.stats.write_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%error, ?backoff, "journal {what} failed; nothing after the last durable record is acknowledged; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// What one turn of the loop took from the queue.
struct Drained {
    records: Vec<(u64, Record)>,
    snapshots: Vec<super::SnapshotRequest>,
    closing: bool,
}

/// Waits for work: records, snapshot requests, closing — or, with `interval`, the next fsync.
fn drain(
    shared: &Shared,
    options: &JournalOptions,
    segment: &mut Segment,
    last_sync: &mut Instant,
) -> Drained {
    let mut queue = shared.queue.lock().expect("not poisoned");
    loop {
        if !queue.records.is_empty() || !queue.snapshots.is_empty() || queue.closing {
            return Drained {
                records: std::mem::take(&mut queue.records),
                snapshots: std::mem::take(&mut queue.snapshots),
                closing: queue.closing,
            };
        }
        if options.fsync == FsyncPolicy::Interval && segment.unsynced {
            let due = last_sync.checked_add(options.fsync_interval);
            let wait = due.map_or(Duration::ZERO, |due| {
                due.saturating_duration_since(Instant::now())
            });
            if wait.is_zero() {
                drop(queue);
                retrying(shared, "fsync", || segment.sync());
                *last_sync = Instant::now();
                queue = shared.queue.lock().expect("not poisoned");
                continue;
            }
            queue = shared
                .wake
                .wait_timeout(queue, wait)
                .expect("not poisoned")
                .0;
        } else {
            queue = shared.wake.wait(queue).expect("not poisoned");
        }
    }
}

pub fn run(
    shared: Arc<Shared>,
    options: JournalOptions,
    mut segment: Segment,
    to_checkpoint: Sender<ToCheckpoint>,
) {
    let mut buffer = Vec::new();
    let mut last_sync = Instant::now();
    loop {
        let drained = drain(&shared, &options, &mut segment, &mut last_sync);
        if let Some(&(last, _)) = drained.records.last() {
            if segment.length >= options.segment_bytes {
                let first = drained.records[0].0;
                retrying(&shared, "segment sync", || segment.sync());
                let faults = segment.faults.clone();
                segment = retrying(&shared, "segment rotation", || {
                    Segment::create(&options, first, faults.clone())
                });
                tracing::info!(path = %segment.path.display(), "journal segment started");
            }
            buffer.clear();
            for (sequence, record) in &drained.records {
                segment::encode_frame(*sequence, record, &mut buffer)
                    .expect("every record encodes within the size limit");
            }
            write_batch(&shared, &options, &mut segment, &buffer, &mut last_sync);
            let stats = &shared.stats;
            stats
                .records
                .fetch_add(drained.records.len() as u64, Ordering::Relaxed);
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats
                .bytes
                .fetch_add(buffer.len() as u64, Ordering::Relaxed);
            shared.durable.send_replace(last);
            let _ = to_checkpoint.send(ToCheckpoint::Batch(drained.records));
        }
        if !drained.snapshots.is_empty() && segment.unsynced {
            // A snapshot never includes a record the journal could still lose (with
            // `interval` or `off`), so an older snapshot always replays to the present.
            retrying(&shared, "fsync", || segment.sync());
            last_sync = Instant::now();
        }
        for request in drained.snapshots {
            let _ = to_checkpoint.send(ToCheckpoint::Snapshot(request));
        }
        if drained.closing {
            if segment.unsynced {
                retrying(&shared, "fsync", || segment.sync());
            }
            let _ = to_checkpoint.send(ToCheckpoint::Stop);
            return;
        }
    }
}

/// Writes one batch and, with `always`, fsyncs it; on any failure cuts the segment back to its
/// last accepted length and writes the whole batch again.
fn write_batch(
    shared: &Shared,
    options: &JournalOptions,
    segment: &mut Segment,
    bytes: &[u8],
    last_sync: &mut Instant,
) {
    debug_assert!(bytes.len() >= FRAME_HEADER_LEN);
    let sync_now = match options.fsync {
        FsyncPolicy::Always => true,
        FsyncPolicy::Interval => last_sync.elapsed() >= options.fsync_interval,
        FsyncPolicy::Off => false,
    };
    let mut failed = false;
    retrying(shared, "write", || {
        if failed {
            segment.cut_back()?;
        }
        failed = true;
        segment.write(bytes)?;
        segment.unsynced = true;
        if sync_now {
            segment.sync()?;
            shared.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    if sync_now {
        *last_sync = Instant::now();
    }
    segment.length += bytes.len() as u64;
}
