//! The journal (docs/spec.md §6b): every change to the state is appended here, in the order the
//! actors make them, and a success reply waits until its change is on disk. Snapshots are
//! written from a replica the journal keeps, so they stop nothing. Storage, above the domain
//! and wire: it takes records and states and gives them back; it knows nothing of the engine.
//!
//! # How changes are recorded
//!
//! The actor that makes a change appends its record inside its handler, before it sends
//! follow-ups or replies (the engine appends admin creations itself, before any actor can see
//! them). Appending takes the next sequence number and queues the
//! record in one short critical section, so sequence order is append order: an actor that
//! applies X then Y appends X first, and a follow-up sent after an append is appended after
//! it. Replaying in sequence order therefore respects every happens-before chain that runs
//! through messages — the release of a cancelled order's stock always comes before the
//! reservation that took that stock next.
//!
//! One writer thread drains the queue, writes the records, fsyncs once for all of them and
//! publishes the highest durable sequence (group commit: whatever arrives during an fsync goes
//! in the next one). Actors never wait for the disk. An actor that answers a client hands its
//! reply to the journal instead of sending it (`release_after`, through `Recorder::reply`),
//! with the last sequence appended at that moment, after its own record and its follow-ups;
//! the writer sends it right after the batch that makes that sequence durable. Durability is a
//! prefix, so that covers every change the reply depended on, and a refusal waits the same
//! way (it may rest on another actor's change). No task waits and wakes for it: the reply goes
//! from the writer thread to the client's connection task. Admin creations, which the engine
//! records itself, await the same release (`Engine::durable`).
//! `journal.fsync`: `always` publishes after the fsync; `interval` and `off` publish after the
//! write (a killed process loses nothing, the OS has the bytes; a power cut loses at most
//! `journal.fsync_interval`, or what the OS had not flushed, of acknowledged changes).
//!
//! # Cross-actor operations
//!
//! Owners are the truth: a buyer's user actor owns its orders, so `OrderPlaced`, `OrderPaid`,
//! `OrderCancelled` and `OrderExpired` decide what happened to an order. A payment is one
//! record (debit, coupon use, PAID; replay also adds the sale to the statistics and queues the
//! order for the data platform), and so is a coupon issue (the unit and the user's coupon).
//! Only stock is recorded where it moves, by its product: `ReservedFor` (which also counts
//! the buyer's units against a purchase limit) before the order is placed, `Committed` / `Released` after the buyer paid / expired / cancelled (or after a
//! placement failed on another product). A crash can cut those apart; recovery then finishes
//! them (`EngineState::unfinished`): stock reserved for an order no buyer has is released (the
//! placement never finished, its client never got a reply, and the reservation was visible
//! only as briefly lower stock), stock of a PAID order is committed, of an EXPIRED or
//! CANCELLED one released. The fix-ups are appended as records before the server serves, so a
//! second crash replays them in their place. Nothing a client was told can be undone: its
//! reply waited for the owner's record.
//!
//! # Snapshots without a pause, at the cost of what changed
//!
//! A checkpointer thread holds a replica of the state and applies each batch once it is
//! durable, marking the entities each record changes. A flush (the periodic snapshot) and a
//! snapshot file are requests queued like records: the writer fsyncs what came before them
//! first, and the checkpointer, having applied everything before them, writes the marked
//! entities into the entity store (`src/store.rs`) at its journal position (the last record
//! applied) — or, for a file, audits and writes the whole replica, then flushes the store to
//! the same position. No actor is read and nothing waits for it; batches queue up meanwhile and
//! are applied after. The replica can end mid-operation; recovery replays what follows it.
//!
//! # Files, in `snapshot.dir`
//!
//! Segments `journal-<first sequence, 20 digits>.log` of `journal.segment_bytes` each (a batch
//! that does not fit starts the next one). A segment is preallocated: zeros, written and
//! fsynced in the background before it is needed, then given its header, fsynced, renamed to
//! its name and the directory fsynced — so the fsync after each batch flushes data, not a
//! growing file size. The zeros after the last record are the end of the journal.
//!
//! ```text
//! segment header, 32 bytes
//! offset  size  field
//!      0     8  magic "CMRCJRNL"
//!      8     4  format version, u32 little-endian (1)
//!     12     4  reserved, zero
//!     16     8  sequence of the first record, u64 LE (also in the file name)
//!     24     4  CRC-32 of bytes 0..24, u32 LE
//!     28     4  reserved, zero
//!
//! then records, back to back:
//!      0     4  payload length n, u32 LE (at most 16 MiB)
//!      4     4  CRC-32 of bytes 8..16+n (sequence and payload), u32 LE
//!      8     8  sequence, u64 LE: one more than the record before it
//!     16     n  payload: `Record`, bincode 2 standard encoding (`src/codec.rs`)
//! ```
//!
//! A segment is deleted once the entity store's position is at or past its last record: a
//! start begins at the store. A flush that fails deletes nothing; what it would have written
//! stays marked for the next one.
//!
//! # Crash points and what recovery does
//!
//! | the crash hits | on disk | recovery |
//! |---|---|---|
//! | mid-write of a batch | a torn tail in the last segment | cut at the last whole record, logged; none of the torn records was acknowledged |
//! | (no crash) | zeros after the last record | the end of the journal |
//! | a flipped byte, good records after it | damage | start refused, with file and offset; `--ignore-unreadable-snapshots` keeps what comes before it and sets the rest aside (`.corrupt`) |
//! | during a multi-product placement | some `ReservedFor`, no `OrderPlaced` | those reservations are released |
//! | between `OrderPaid` and a product's `Committed` | PAID order holding stock | committed |
//! | between `OrderExpired`/`OrderCancelled` and `Released` | ended order holding stock | released |
//! | between `CouponIssued` and the user's copy | one record | replayed whole |
//! | between `OrderPaid` and the data platform's ack | no `Delivered` | redelivered (at least once) |
//! | during a snapshot file | a `.tmp` file | removed; the previous snapshot and the journal are intact |
//! | during a store flush | a torn fjall batch | fjall drops it on open: the store is the previous flush, the journal still has every record after it |
//! | after a flush, before deleting segments | segments the store includes | skipped on replay (at or below the store's position), deleted after the next flush |
//! | during rotation | a `.tmp` spare, or a last segment with no record | removed; records go on in a new segment |
//! | during segment deletion | some old segments left | deleted after the next flush |
//!
//! Ids never repeat: a user, product, option or coupon id is in its creation record, and order
//! ids are handed out from blocks of 1024 recorded (`OrderIdsTaken`) before any id of the
//! block is used, so recovery resumes above every id anyone may have seen — a crash only skips
//! the rest of a block.
//!
//! # Failures
//!
//! A failed write or fsync is logged and counted, and the batch is written again in the same
//! place and fsynced, with backoff, until it succeeds; nothing in it is acknowledged before. A
//! snapshot file or a flush that cannot be written (or a file that fails its audit) is logged
//! and counted at every attempt; the journal keeps everything since the last good flush.

mod checkpoint;
pub mod recovery;
pub mod segment;
mod writer;

pub use crate::wire::Record;
pub use recovery::{RecoveryError, recover};

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::clock::Timestamp;
pub use crate::config::FsyncPolicy;
use crate::config::Settings;
use crate::domain::state::EngineState;
use crate::metrics::Metrics;
use crate::snapshot::{SnapshotError, SnapshotInfo};
use crate::store::{Changed, EntityStore, Flushed};

/// How the journal writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalOptions {
    pub dir: PathBuf,
    pub fsync: FsyncPolicy,
    pub fsync_interval: Duration,
    pub segment_bytes: u64,
    /// How many snapshot files to keep.
    pub keep: usize,
}

impl JournalOptions {
    /// Where and how the journal (and the snapshots it writes) go.
    pub fn from_settings(settings: &Settings) -> JournalOptions {
        JournalOptions {
            dir: settings.snapshot.dir.clone(),
            fsync: settings.journal.fsync,
            fsync_interval: settings.journal.fsync_interval,
            segment_bytes: settings.journal.segment_bytes,
            keep: settings.snapshot.keep,
        }
    }
}

/// A file operation the writer is about to do; a test double can fail it (`Faults`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileOperation {
    Write,
    Sync,
}

/// Called before every write and fsync of a segment; an `Err` is that operation's failure.
pub type Faults = Arc<dyn Fn(FileOperation) -> std::io::Result<()> + Send + Sync>;

/// Counters of the journal's work and failures.
#[derive(Debug, Default)]
pub struct Stats {
    pub records: AtomicU64,
    pub batches: AtomicU64,
    pub bytes: AtomicU64,
    pub fsyncs: AtomicU64,
    pub write_failures: AtomicU64,
    pub snapshot_failures: AtomicU64,
}

/// Where the journal starts: the last sequence the recovered state includes, and the numbers
/// to continue from. The state itself comes later, through `Replica`.
pub struct Start {
    pub position: u64,
    pub next_sequence: u64,
    pub next_snapshot: u64,
}

/// What the checkpointer is asked, answered once everything appended before it is applied.
enum Request {
    /// Write a snapshot file of the replica, then flush the store.
    Snapshot {
        taken_at: Timestamp,
        reply: oneshot::Sender<Result<SnapshotInfo, SnapshotError>>,
    },
    /// Flush what changed into the entity store (the periodic snapshot).
    Flush {
        taken_at: Timestamp,
        reply: oneshot::Sender<Result<Flushed, SnapshotError>>,
    },
    /// Read the replica (`Journal::read_replica`); `Err` says why it cannot be trusted.
    Read(ReplicaRead),
}

/// A read of the replica, given the replica or why it cannot be trusted.
type ReplicaRead = Box<dyn FnOnce(Result<&EngineState, String>) + Send>;

impl Request {
    /// Whether it writes state to disk: then every record it includes must be on disk first.
    fn writes(&self) -> bool {
        matches!(self, Request::Snapshot { .. } | Request::Flush { .. })
    }
}

/// A reply held until the journal is durable at `after` (`Journal::release_after`).
struct Waiter {
    after: u64,
    release: Box<dyn FnOnce() + Send>,
}

#[derive(Default)]
struct Queue {
    next_sequence: u64,
    records: Vec<(u64, Record)>,
    requests: Vec<Request>,
    closing: bool,
    /// The last sequence on disk (per `journal.fsync`), as far as held replies go: written
    /// under this lock together with taking the waiters it releases, so a waiter is either
    /// released at once or taken by the writer, never left behind.
    durable: u64,
    waiters: Vec<Waiter>,
}

impl Queue {
    /// Marks everything up to `durable` on disk and takes the replies that waited for it.
    fn made_durable(&mut self, durable: u64) -> Vec<Waiter> {
        self.durable = durable;
        self.waiters
            .extract_if(.., |waiter| waiter.after <= durable)
            .collect()
    }
}

/// Sends each held reply (on the writer thread, after the batch they waited for).
fn release(waiters: Vec<Waiter>) {
    for waiter in waiters {
        (waiter.release)();
    }
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    appended: AtomicU64,
    stats: Stats,
    /// fsync timings and snapshot sizes go here (the running totals stay in `stats`).
    metrics: Arc<Metrics>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// Where the recovered state goes once the engine has started from it: the checkpointer's
/// replica, which snapshots are written from.
pub struct Replica(std::sync::mpsc::Sender<(EngineState, u64, Changed)>);

impl Replica {
    /// Hands over the state, which includes every record up to `position` (recovery's fix-ups
    /// too), and what in it differs from the entity store; the checkpointer skips those
    /// records when they come through the journal.
    pub fn start(self, state: EngineState, position: u64, changed: Changed) {
        if self.0.send((state, position, changed)).is_err() {
            tracing::error!("the journal's checkpointer has stopped: no snapshot will be written");
        }
    }
}

/// The handle actors and the engine append through. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Journal")
            .field("appended", &self.appended())
            .finish()
    }
}

impl Journal {
    /// Starts the writer (a new segment from `start.next_sequence`) and the checkpointer. The
    /// checkpointer applies nothing until it is given its replica (`Replica::start`), so the
    /// engine can start from the recovered state before the state moves there: no copy.
    pub fn open(
        options: JournalOptions,
        start: Start,
        faults: Option<Faults>,
        metrics: Arc<Metrics>,
    ) -> Result<(Journal, Replica), SnapshotError> {
        let last = start.next_sequence - 1;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                next_sequence: start.next_sequence,
                durable: last,
                ..Queue::default()
            }),
            wake: Condvar::new(),
            appended: AtomicU64::new(last),
            stats: Stats::default(),
            metrics,
            threads: Mutex::new(Vec::new()),
        });
        let segment = writer::Segment::create(&options, start.next_sequence, None, faults)
            .map_err(|source| SnapshotError::Io {
                path: options.dir.clone(),
                source,
            })?;
        let store = EntityStore::open(&options.dir).map_err(SnapshotError::Store)?;
        let (to_checkpoint, batches) = std::sync::mpsc::channel();
        let (replica, replica_state) = std::sync::mpsc::channel();
        let checkpointer = checkpoint::Checkpointer::new(&options, &start, store, shared.clone());
        let checkpoint = std::thread::Builder::new()
            .name("journal-checkpoint".into())
            .spawn(move || checkpointer.run(replica_state, batches))
            .map_err(|source| SnapshotError::Io {
                path: options.dir.clone(),
                source,
            })?;
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer::run(writer_shared, options, segment, to_checkpoint))
            .map_err(|source| SnapshotError::Io {
                path: PathBuf::new(),
                source,
            })?;
        *shared.threads.lock().expect("not poisoned") = vec![writer, checkpoint];
        Ok((Journal { shared }, Replica(replica)))
    }

    /// Queues a record and returns its sequence number. Never waits for the disk.
    pub fn append(&self, record: Record) -> u64 {
        let mut queue = self
            .shared
            .queue
            .lock()
            .expect("the journal queue is never poisoned");
        let sequence = queue.next_sequence;
        queue.next_sequence += 1;
        let idle = queue.records.is_empty() && queue.requests.is_empty();
        queue.records.push((sequence, record));
        self.shared.appended.store(sequence, Ordering::Release);
        drop(queue);
        if idle {
            self.shared.wake.notify_one();
        }
        sequence
    }

    /// Runs `release` (which sends a reply) once every record up to `sequence` is on disk:
    /// at once if it is, else on the writer thread right after the batch that makes it so.
    /// This is how a reply waits for its change without a task waiting for it: the actor
    /// hands the reply over and goes on with its next message.
    pub fn release_after(&self, sequence: u64, release: impl FnOnce() + Send + 'static) {
        let mut queue = self.shared.queue.lock().expect("not poisoned");
        if sequence <= queue.durable {
            drop(queue);
            release();
            return;
        }
        queue.waiters.push(Waiter {
            after: sequence,
            release: Box::new(release),
        });
    }

    /// The last sequence appended.
    pub fn appended(&self) -> u64 {
        self.shared.appended.load(Ordering::Acquire)
    }

    /// Writes a snapshot file of the state after every record appended so far (and flushes
    /// the entity store to the same position).
    pub async fn snapshot(&self, taken_at: Timestamp) -> Result<SnapshotInfo, SnapshotError> {
        let (reply, answer) = oneshot::channel();
        self.ask(Request::Snapshot { taken_at, reply })?;
        answer
            .await
            .map_err(|_| SnapshotError::Unavailable("the journal stopped first".into()))?
    }

    /// Writes what changed since the last flush into the entity store, as the state after
    /// every record appended so far.
    pub async fn flush(&self, taken_at: Timestamp) -> Result<Flushed, SnapshotError> {
        let (reply, answer) = oneshot::channel();
        self.ask(Request::Flush { taken_at, reply })?;
        answer
            .await
            .map_err(|_| SnapshotError::Unavailable("the journal stopped first".into()))?
    }

    /// What `read` finds in the state the journal holds: the replica, once every record
    /// appended so far is applied to it (written, not necessarily fsynced). This is how a
    /// failed actor's entity is restored (`src/kernel/supervision.rs`).
    pub async fn read_replica<T: Send + 'static>(
        &self,
        read: impl FnOnce(&EngineState) -> T + Send + 'static,
    ) -> Result<T, SnapshotError> {
        let (reply, answer) = oneshot::channel();
        let read = move |replica: Result<&EngineState, String>| {
            let _ = reply.send(replica.map(read));
        };
        self.ask(Request::Read(Box::new(read)))?;
        let answered = answer
            .await
            .map_err(|_| SnapshotError::Unavailable("the journal stopped first".into()))?;
        answered.map_err(SnapshotError::Inconsistent)
    }

    /// Queues a request for the checkpointer behind every record appended so far.
    fn ask(&self, request: Request) -> Result<(), SnapshotError> {
        {
            let mut queue = self.shared.queue.lock().expect("not poisoned");
            if queue.closing {
                return Err(SnapshotError::Unavailable("the journal has stopped".into()));
            }
            queue.requests.push(request);
        }
        self.shared.wake.notify_one();
        Ok(())
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Writes and syncs everything appended, answers queued requests (snapshots, flushes,
    /// reads), and stops both threads.
    pub fn close(&self) {
        self.shared.queue.lock().expect("not poisoned").closing = true;
        self.shared.wake.notify_one();
        let threads = std::mem::take(&mut *self.shared.threads.lock().expect("not poisoned"));
        for thread in threads {
            let _ = thread.join();
        }
    }
}
