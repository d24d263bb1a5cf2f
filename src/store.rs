//! The entity store: each user, product and coupon under its own key, at a known journal
//! position, so a snapshot writes what changed since the last one instead of the whole state.
//! Storage, like the journal, snapshots and the archive (above the domain and wire): it takes
//! records and states and gives them back; it knows nothing of actors.
//!
//! **Layout**, fjall in `snapshot.dir/store` (the engine's embedded store, as for the archive):
//! keyspaces `users`, `products` and `coupons`, id (u64 big-endian) -> the entity as a
//! snapshot body holds it (`UserV2`, `ProductV2`, `CouponV1`, bincode); keyspace `meta`, key
//! `state` -> `StoreMetaV1`: the journal position and everything that is not an entity (id
//! counters, sales statistics, undelivered data-platform records, the archived count).
//!
//! **Writing** (`flush`): one fjall batch with every entity marked changed (`Changed`, from the
//! records applied since the last flush) and the meta, committed and synced
//! (`PersistMode::SyncAll`) before `flush` returns. A batch is atomic in fjall, so the store is
//! always one whole flush: the state at one journal position. Only durable state goes in (the
//! caller flushes a state made of durable records), so the store is never ahead of the
//! journal.
//!
//! **Crash points.** Mid-batch: fjall's own journal drops the torn batch on open; the store is
//! the previous flush, whose records the journal still has. After the sync: the new flush.
//! Nothing else is written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::clock::Timestamp;
use crate::codec;
use crate::domain::state::EngineState;
use crate::model::{CouponId, ProductId, UserId};
use crate::wire::Record;
use crate::wire::snapshot::{CouponV1, ProductV2, SnapshotV3, StoreMetaV1, UserV2};

/// The directory under `snapshot.dir` the store lives in.
pub const DIR_NAME: &str = "store";
const META_KEY: &[u8] = b"state";

/// The entities a flush must write: those the records applied since the last flush touched.
#[derive(Debug, Default)]
pub struct Changed {
    users: BTreeSet<UserId>,
    products: BTreeSet<ProductId>,
    coupons: BTreeSet<CouponId>,
    /// Every entity (the store is new, or behind the state the engine started from).
    everything: bool,
}

impl Changed {
    /// Every entity of the state.
    pub fn everything() -> Changed {
        Changed {
            everything: true,
            ..Changed::default()
        }
    }

    /// Marks the entities `record` changes (what is not an entity is in every flush).
    pub fn mark(&mut self, record: &Record) {
        if self.everything {
            return;
        }
        match record {
            Record::UserCreated { user_id, .. }
            | Record::Charged { user_id, .. }
            | Record::OrderPlaced { user_id, .. }
            | Record::OrderPaid { user_id, .. }
            | Record::OrderCancelled { user_id, .. }
            | Record::OrderExpired { user_id, .. }
            | Record::OrdersArchived { user_id, .. } => {
                self.users.insert(*user_id);
            }
            Record::ProductCreated { product } => {
                self.products.insert(product.id);
            }
            Record::ProductCreatedV2 { product } => {
                self.products.insert(product.id);
            }
            Record::Reserved { product_id, .. }
            | Record::ReservedFor { product_id, .. }
            | Record::Committed { product_id, .. }
            | Record::Released { product_id, .. }
            | Record::Restocked { product_id, .. } => {
                self.products.insert(*product_id);
            }
            Record::CouponCreated { coupon } => {
                self.coupons.insert(coupon.id);
            }
            Record::CouponIssued {
                coupon_id, user_id, ..
            } => {
                self.coupons.insert(*coupon_id);
                self.users.insert(*user_id);
            }
            Record::Delivered { .. } | Record::OrderIdsTaken { .. } => {}
        }
    }

    /// How many entities are marked (`None`: every one).
    pub fn count(&self) -> Option<usize> {
        let count = self.users.len() + self.products.len() + self.coupons.len();
        (!self.everything).then_some(count)
    }
}

/// What a flush wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flushed {
    pub entities: usize,
    pub bytes: u64,
}

/// What the store holds: the state after every journal record up to `position`.
#[derive(Debug)]
pub struct Stored {
    pub state: EngineState,
    pub position: u64,
    /// When the flush that wrote it was asked for.
    pub taken_at: Timestamp,
}

/// The entity store of one state directory.
pub struct EntityStore {
    db: fjall::Database,
    users: fjall::Keyspace,
    products: fjall::Keyspace,
    coupons: fjall::Keyspace,
    meta: fjall::Keyspace,
    path: PathBuf,
}

impl std::fmt::Debug for EntityStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EntityStore({})", self.path.display())
    }
}

fn failed(what: &str, path: &Path) -> impl Fn(fjall::Error) -> String {
    let path = path.display().to_string();
    let what = what.to_string();
    move |error| format!("entity store {path}: {what}: {error}")
}

impl EntityStore {
    /// Opens (or creates) the store in `state_dir`/store.
    pub fn open(state_dir: &Path) -> Result<EntityStore, String> {
        let path = state_dir.join(DIR_NAME);
        let db = fjall::Database::builder(&path)
            .open()
            .map_err(failed("cannot open", &path))?;
        let keyspace = |name: &str| {
            db.keyspace(name, fjall::KeyspaceCreateOptions::default)
                .map_err(failed("cannot open a keyspace", &path))
        };
        Ok(EntityStore {
            users: keyspace("users")?,
            products: keyspace("products")?,
            coupons: keyspace("coupons")?,
            meta: keyspace("meta")?,
            db,
            path,
        })
    }

    /// Writes the `changed` entities of `state` and everything that is not an entity, as the
    /// state after journal record `position`, in one batch; returns once it is on disk.
    pub fn flush(
        &self,
        state: &EngineState,
        changed: &Changed,
        position: u64,
        taken_at: Timestamp,
    ) -> Result<Flushed, String> {
        let mut batch = self.db.batch();
        let mut flushed = Flushed {
            entities: 0,
            bytes: 0,
        };
        let mut put = |keyspace: &fjall::Keyspace, id: u64, bytes: Option<Vec<u8>>| {
            flushed.entities += 1;
            match bytes {
                Some(bytes) => {
                    flushed.bytes += bytes.len() as u64;
                    batch.insert(keyspace, id.to_be_bytes(), bytes);
                }
                None => batch.remove(keyspace, id.to_be_bytes()),
            }
        };
        let encode = |value: Option<Result<Vec<u8>, String>>| value.transpose();
        if changed.everything {
            // Whatever the store holds beyond the state goes (it started from an older one).
            let gone = |keyspace: &fjall::Keyspace, kept: &dyn Fn(u64) -> bool| {
                let mut gone = Vec::new();
                for entry in keyspace.iter() {
                    let key = entry.key().map_err(failed("cannot read", &self.path))?;
                    let id = u64::from_be_bytes(key[..8].try_into().expect("8-byte keys"));
                    if !kept(id) {
                        gone.push(id);
                    }
                }
                Ok::<_, String>(gone)
            };
            for id in gone(&self.users, &|id| state.users.contains_key(&id))? {
                put(&self.users, id, None);
            }
            for id in gone(&self.products, &|id| state.products.contains_key(&id))? {
                put(&self.products, id, None);
            }
            for id in gone(&self.coupons, &|id| state.coupons.contains_key(&id))? {
                put(&self.coupons, id, None);
            }
            for (&id, user) in &state.users {
                put(
                    &self.users,
                    id,
                    Some(codec::encode(&UserV2::from_state(user))?),
                );
            }
            for (&id, product) in &state.products {
                put(
                    &self.products,
                    id,
                    Some(codec::encode(&ProductV2::from_state(product))?),
                );
            }
            for (&id, coupon) in &state.coupons {
                put(
                    &self.coupons,
                    id,
                    Some(codec::encode(&CouponV1::from_state(coupon))?),
                );
            }
        } else {
            for &id in &changed.users {
                let user = state.users.get(&id);
                put(
                    &self.users,
                    id,
                    encode(user.map(|u| codec::encode(&UserV2::from_state(u))))?,
                );
            }
            for &id in &changed.products {
                let product = state.products.get(&id);
                let bytes = product.map(|p| codec::encode(&ProductV2::from_state(p)));
                put(&self.products, id, encode(bytes)?);
            }
            for &id in &changed.coupons {
                let coupon = state.coupons.get(&id);
                let bytes = coupon.map(|c| codec::encode(&CouponV1::from_state(c)));
                put(&self.coupons, id, encode(bytes)?);
            }
        }
        let meta = StoreMetaV1 {
            position,
            rest: SnapshotV3::without_entities(0, taken_at, state),
        };
        let meta = codec::encode(&meta)?;
        flushed.bytes += meta.len() as u64;
        batch.insert(&self.meta, META_KEY, meta);
        batch.commit().map_err(failed("cannot write", &self.path))?;
        self.db
            .persist(fjall::PersistMode::SyncAll)
            .map_err(failed("cannot sync", &self.path))?;
        Ok(flushed)
    }

    /// The position of the last flush (`None`: nothing was ever flushed).
    pub fn position(&self) -> Result<Option<u64>, String> {
        Ok(self.meta()?.map(|meta| meta.position))
    }

    fn meta(&self) -> Result<Option<StoreMetaV1>, String> {
        let bytes = self
            .meta
            .get(META_KEY)
            .map_err(failed("cannot read", &self.path))?;
        bytes.map(|bytes| codec::decode(&bytes)).transpose()
    }

    /// The state of the last flush (`None`: nothing was ever flushed).
    pub fn load(&self) -> Result<Option<Stored>, String> {
        let Some(StoreMetaV1 { position, mut rest }) = self.meta()? else {
            return Ok(None);
        };
        rest.users = self.all(&self.users)?;
        rest.products = self.all(&self.products)?;
        rest.coupons = self.all(&self.coupons)?;
        let taken_at = Timestamp(rest.taken_at);
        Ok(Some(Stored {
            state: rest.into_state(),
            position,
            taken_at,
        }))
    }

    /// Every value of `keyspace`, decoded, in id order.
    fn all<T: serde::de::DeserializeOwned>(
        &self,
        keyspace: &fjall::Keyspace,
    ) -> Result<Vec<T>, String> {
        keyspace
            .iter()
            .map(|entry| {
                let bytes = entry.value().map_err(failed("cannot read", &self.path))?;
                codec::decode(&bytes)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
