//! The writer thread: drains the queue, writes each batch to the current segment, fsyncs once
//! for the whole batch (group commit), publishes the durable sequence, and hands the batch to
//! the checkpointer. Failed writes are retried until they succeed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
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

/// The segment being written.
///
/// Segments are preallocated: a segment file is `journal.segment_bytes` of zeros, written and
/// fsynced before it receives its first record, so the fsync after each batch flushes data
/// only, not the file's growing size (on ext4 that halves an fsync here: BENCHMARKS.md). The
/// zeros after the last record read as the end of the journal. The next segment is prepared
/// in the background while the current one fills.
pub struct Segment {
    file: File,
    path: PathBuf,
    /// Where the next batch goes: the end of the records written so far.
    length: u64,
    /// Whether bytes were written since the last fsync.
    unsynced: bool,
    faults: Option<Faults>,
}

/// The zero-filled file that becomes the next segment, being prepared by its own thread.
pub struct Spare {
    path: PathBuf,
    prepared: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Spare {
    /// Starts preparing a spare of `options.segment_bytes` in `options.dir`.
    pub fn prepare(options: &JournalOptions) -> Spare {
        let path = options.dir.join(".journal-spare.tmp");
        let (target, bytes) = (path.clone(), options.segment_bytes);
        let prepared = std::thread::spawn(move || zero_filled(&target, bytes));
        Spare { path, prepared }
    }

    fn wait(self) -> std::io::Result<PathBuf> {
        self.prepared
            .join()
            .map_err(|_| std::io::Error::other("the spare segment's thread panicked"))??;
        Ok(self.path)
    }
}

/// Writes `bytes` zeros to a new file at `path` and fsyncs it.
fn zero_filled(path: &std::path::Path, bytes: u64) -> std::io::Result<()> {
    let mut file = File::create(path)?;
    let chunk = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let now = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..now])?;
        left -= now as u64;
    }
    file.sync_all()
}

impl Segment {
    /// A new segment whose first record will be `first_sequence`, made from `spare` (or from a
    /// file prepared now): the header is written into the zero-filled file, which is fsynced
    /// and renamed to its name, then the directory is fsynced. A segment file therefore always
    /// starts with a whole header and is never shorter than its preallocation.
    pub fn create(
        options: &JournalOptions,
        first_sequence: u64,
        spare: Option<Spare>,
        faults: Option<Faults>,
    ) -> std::io::Result<Segment> {
        let dir = &options.dir;
        std::fs::create_dir_all(dir)?;
        let spare = match spare {
            Some(spare) => spare,
            None => Spare::prepare(options),
        };
        let prepared = spare.wait()?;
        let file = OpenOptions::new().read(true).write(true).open(&prepared)?;
        file.write_all_at(&segment::header(first_sequence), 0)?;
        file.sync_all()?;
        let path = dir.join(segment::file_name(first_sequence));
        std::fs::rename(&prepared, &path)?;
        sync_dir(dir).map_err(|error| std::io::Error::other(error.to_string()))?;
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

    /// Writes `bytes` after the records; a retry after a failure writes them over the same
    /// place.
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.fault(FileOperation::Write)?;
        self.file.write_all_at(bytes, self.length)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.fault(FileOperation::Sync)?;
        self.file.sync_data()?;
        self.unsynced = false;
        Ok(())
    }

    /// Whether a batch of `bytes` belongs in a new segment: this one has records and the
    /// batch would not fit in what is left of it.
    fn is_full_for(&self, bytes: usize, options: &JournalOptions) -> bool {
        self.length > segment::HEADER_LEN as u64
            && self.length + bytes as u64 > options.segment_bytes
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
    requests: Vec<super::Request>,
    closing: bool,
}

/// Waits for work: records, requests for the checkpointer, closing — or, with `interval`, the next fsync.
fn drain(
    shared: &Shared,
    options: &JournalOptions,
    segment: &mut Segment,
    last_sync: &mut Instant,
) -> Drained {
    let mut queue = shared.queue.lock().expect("not poisoned");
    loop {
        if !queue.records.is_empty() || !queue.requests.is_empty() || queue.closing {
            return Drained {
                records: std::mem::take(&mut queue.records),
                requests: std::mem::take(&mut queue.requests),
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
    let mut spare = Some(Spare::prepare(&options));
    loop {
        let drained = drain(&shared, &options, &mut segment, &mut last_sync);
        if let Some(&(last, _)) = drained.records.last() {
            buffer.clear();
            for (sequence, record) in &drained.records {
                segment::encode_frame(*sequence, record, &mut buffer)
                    .expect("every record encodes within the size limit");
            }
            if segment.is_full_for(buffer.len(), &options) {
                let first = drained.records[0].0;
                retrying(&shared, "segment sync", || segment.sync());
                let faults = segment.faults.clone();
                segment = retrying(&shared, "segment rotation", || {
                    Segment::create(&options, first, spare.take(), faults.clone())
                });
                spare = Some(Spare::prepare(&options));
                tracing::info!(path = %segment.path.display(), "journal segment started");
            }
            let records = drained.records.len();
            write_batch(
                &shared,
                &options,
                &mut segment,
                &buffer,
                records,
                &mut last_sync,
            );
            let stats = &shared.stats;
            stats
                .records
                .fetch_add(drained.records.len() as u64, Ordering::Relaxed);
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats
                .bytes
                .fetch_add(buffer.len() as u64, Ordering::Relaxed);
            let released = shared
                .queue
                .lock()
                .expect("not poisoned")
                .made_durable(last);
            super::release(released);
            let _ = to_checkpoint.send(ToCheckpoint::Batch(drained.records));
        }
        let writes = drained.requests.iter().any(super::Request::writes);
        if writes && segment.unsynced {
            // A snapshot or a flush never includes a record the journal could still lose
            // (with `interval` or `off`): the store is never ahead of the journal.
            retrying(&shared, "fsync", || segment.sync());
            last_sync = Instant::now();
        }
        for request in drained.requests {
            let _ = to_checkpoint.send(ToCheckpoint::Request(request));
        }
        if drained.closing {
            if segment.unsynced {
                retrying(&shared, "fsync", || segment.sync());
            }
            if let Some(spare) = spare {
                // Not needed any more: a later start prepares its own.
                let _ = spare.wait().map(std::fs::remove_file);
            }
            let _ = to_checkpoint.send(ToCheckpoint::Stop);
            return;
        }
    }
}

/// Writes one batch and, with `always` (or when the interval is up), fsyncs it; on any failure
/// writes the whole batch again in the same place until it succeeds.
fn write_batch(
    shared: &Shared,
    options: &JournalOptions,
    segment: &mut Segment,
    bytes: &[u8],
    records: usize,
    last_sync: &mut Instant,
) {
    debug_assert!(bytes.len() >= FRAME_HEADER_LEN);
    let sync_now = match options.fsync {
        FsyncPolicy::Always => true,
        FsyncPolicy::Interval => last_sync.elapsed() >= options.fsync_interval,
        FsyncPolicy::Off => false,
    };
    let started = Instant::now();
    retrying(shared, "write", || {
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
        let metrics = &shared.metrics;
        metrics
            .journal_fsync_seconds
            .record(started.elapsed().as_secs_f64());
        metrics.journal_records_per_fsync.record(records as f64);
    }
    segment.length += bytes.len() as u64;
}
