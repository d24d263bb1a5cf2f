//! The seed catalog (`seed.path`, docs/spec.md §3): users, products with options, and coupons
//! loaded when no snapshot exists. Parsed and validated into an `EngineState` the engine
//! starts from, so a broken seed is a start-up error naming the offending entry.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use crate::clock::Timestamp;
use crate::config::Limits;
use crate::domain::coupon::CouponState;
use crate::domain::product::{OptionStock, ProductState};
use crate::domain::state::EngineState;
use crate::domain::user::UserState;
use crate::model::{CouponId, Discount, OptionId, ProductId, Won};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub users: SeedUsers,
    #[serde(default)]
    pub products: Vec<SeedProduct>,
    #[serde(default)]
    pub coupons: Vec<SeedCoupon>,
}

/// Users 1..=count, each starting with `initial_balance` points.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUsers {
    pub count: u64,
    #[serde(default)]
    pub initial_balance: Won,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedProduct {
    pub id: ProductId,
    pub name: String,
    pub category: String,
    pub price: Won,
    pub options: Vec<SeedOption>,
    /// Units one user may hold in PENDING and PAID orders; absent: no limit.
    #[serde(default)]
    pub purchase_limit: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedOption {
    pub id: OptionId,
    pub name: String,
    pub stock: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCoupon {
    pub id: CouponId,
    pub name: String,
    pub discount: Discount,
    pub quantity: u64,
    /// RFC 3339, as a string: `expires_at = "2027-12-31T23:59:59Z"`.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

impl Seed {
    pub fn load(path: &Path) -> Result<Seed, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read seed {}: {error}", path.display()))?;
        toml::from_str(&text).map_err(|error| format!("invalid seed {}: {error}", path.display()))
    }

    /// Validates the catalog and turns it into the state the engine starts from.
    pub fn into_state(self, limits: &Limits) -> Result<EngineState, String> {
        self.validate(limits)?;
        let users = (1..=self.users.count)
            .map(|id| (id, UserState::new(id, self.users.initial_balance)))
            .collect();
        let products = self
            .products
            .into_iter()
            .map(|product| (product.id, product.into_state()))
            .collect();
        let coupons = self
            .coupons
            .into_iter()
            .map(|c| {
                let coupon = CouponState::new(c.id, c.name, c.discount, c.quantity, c.expires_at);
                (c.id, coupon)
            })
            .collect();
        let mut state = EngineState {
            users,
            products,
            coupons,
            ..EngineState::default()
        };
        state.fit_counters();
        Ok(state)
    }

    fn validate(&self, limits: &Limits) -> Result<(), String> {
        if self.users.initial_balance > limits.max_balance {
            return Err("seed: users.initial_balance is over limits.max_balance".into());
        }
        let (mut products, mut options, mut coupons) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for product in &self.products {
            let id = product.id;
            if id == 0 || !products.insert(id) {
                return Err(format!("seed: product id {id} is zero or repeated"));
            }
            if product.name.trim().is_empty() || product.options.is_empty() {
                return Err(format!(
                    "seed: product {id} needs a name and at least one option"
                ));
            }
            if product.purchase_limit == Some(0) {
                return Err(format!("seed: product {id} has a purchase_limit of 0"));
            }
            for option in &product.options {
                if option.id == 0 || !options.insert(option.id) {
                    return Err(format!("seed: option id {} is zero or repeated", option.id));
                }
            }
        }
        for coupon in &self.coupons {
            if coupon.id == 0 || !coupons.insert(coupon.id) {
                return Err(format!("seed: coupon id {} is zero or repeated", coupon.id));
            }
            if !coupon.discount.is_valid() {
                return Err(format!(
                    "seed: coupon {} has a PERCENT outside 1..=100",
                    coupon.id
                ));
            }
        }
        Ok(())
    }
}

impl SeedProduct {
    fn into_state(self) -> ProductState {
        let options = self
            .options
            .into_iter()
            .map(|option| OptionStock {
                id: option.id,
                name: option.name,
                initial: option.stock,
                restocked: 0,
                available: option.stock,
                reserved: 0,
                sold: 0,
            })
            .collect();
        ProductState {
            id: self.id,
            name: self.name.into(),
            category: self.category,
            price: self.price,
            options,
            purchase_limit: self.purchase_limit,
            reservations: Default::default(),
            bought: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_demo_seed_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/seed.toml");
        let state = Seed::load(&path)
            .unwrap()
            .into_state(&Limits::default())
            .unwrap();
        assert_eq!(state.users.len(), 1000);
        assert!(state.products.values().any(|p| p.options.len() > 1));
        let categories: BTreeSet<_> = state.products.values().map(|p| &p.category).collect();
        assert!(categories.len() >= 3);
        assert!(
            state
                .coupons
                .values()
                .any(|c| matches!(c.discount, Discount::Fixed { .. }))
        );
        assert!(
            state
                .coupons
                .values()
                .any(|c| matches!(c.discount, Discount::Percent { .. }))
        );
        assert_eq!(state.ids.next_user_id, 1001);
    }

    #[test]
    fn repeated_option_ids_are_rejected() {
        let seed: Seed = toml::from_str(
            r#"
            [[products]]
            id = 1
            name = "a"
            category = "c"
            price = 1
            options = [{ id = 1, name = "x", stock = 1 }]
            [[products]]
            id = 2
            name = "b"
            category = "c"
            price = 1
            options = [{ id = 1, name = "y", stock = 1 }]
            "#,
        )
        .unwrap();
        let error = seed.into_state(&Limits::default()).unwrap_err();
        assert!(error.contains("option id 1"), "{error}");
    }
}
