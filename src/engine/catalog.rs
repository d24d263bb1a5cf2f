//! The catalog's use cases: product listing and lookup, the popular ranking (docs/spec.md §1,
//! cases 3 and 8), and the admin operations that add users, products, stock and coupons.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use super::Engine;
use crate::clock::Timestamp;
use crate::domain::coupon::CouponState;
use crate::domain::product::{MAX_STOCK, OptionStock, ProductState};
use crate::domain::user::UserState;
use crate::error::EngineError;
use crate::kernel::actors::product::ProductMessage;
use crate::kernel::actors::sales::SalesMessage;
use crate::kernel::directory::ProductEntry;
use crate::model::{
    CouponView, Discount, MAX_EXACT_INTEGER, OptionId, ProductId, ProductView, UserId, Won,
};
use crate::wire::Record;
use crate::wire::snapshot::{CouponV1, ProductV2};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProductSort {
    #[default]
    Id,
    PriceAscending,
    PriceDescending,
}

/// A validated `GET /products` query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductQuery {
    pub category: Option<String>,
    pub option: Option<String>,
    pub min_price: Option<Won>,
    pub max_price: Option<Won>,
    pub in_stock: Option<bool>,
    pub sort: ProductSort,
    /// 1-based.
    pub page: usize,
    pub size: usize,
}

impl Default for ProductQuery {
    fn default() -> Self {
        ProductQuery {
            category: None,
            option: None,
            min_price: None,
            max_price: None,
            in_stock: None,
            sort: ProductSort::Id,
            page: 1,
            size: 20,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductPage {
    pub items: Vec<ProductView>,
    pub page: usize,
    pub size: usize,
    /// How many products match, over all pages.
    pub total: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PopularItem {
    pub rank: usize,
    pub product_id: ProductId,
    pub name: String,
    pub sold_quantity: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewProduct {
    pub name: String,
    pub category: String,
    pub price: Won,
    pub options: Vec<NewProductOption>,
    /// Units one user may hold in PENDING and PAID orders; `None`: no limit.
    pub purchase_limit: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewProductOption {
    pub name: String,
    pub stock: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCoupon {
    pub name: String,
    pub discount: Discount,
    pub quantity: u64,
    pub expires_at: Option<Timestamp>,
}

fn invalid(message: impl Into<String>) -> EngineError {
    EngineError::InvalidRequest(message.into())
}

/// Names shown to buyers hold no control characters (a NUL, a newline) and fit in 200
/// characters.
fn check_text(field: &str, text: &str) -> Result<(), EngineError> {
    if text.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    if text.chars().count() > 200 {
        return Err(invalid(format!("{field} must be at most 200 characters")));
    }
    Ok(())
}

impl Engine {
    /// Lists products. Stock comes from the boards the product actors publish, so a listing
    /// sends no messages; it may be a moment behind a reservation in flight.
    pub fn products(&self, query: &ProductQuery) -> ProductPage {
        let mut matching: Vec<_> = self
            .directory()
            .products()
            .into_iter()
            .filter(|p| {
                query
                    .category
                    .as_ref()
                    .is_none_or(|category| &p.category == category)
            })
            .filter(|p| {
                query
                    .option
                    .as_ref()
                    .is_none_or(|name| p.has_option_named(name))
            })
            .filter(|p| query.min_price.is_none_or(|min| p.price >= min))
            .filter(|p| query.max_price.is_none_or(|max| p.price <= max))
            .filter(|p| query.in_stock.is_none_or(|wanted| p.in_stock() == wanted))
            .collect();
        match query.sort {
            ProductSort::Id => {}
            ProductSort::PriceAscending => matching.sort_by_key(|p| (p.price, p.id)),
            ProductSort::PriceDescending => {
                matching.sort_by_key(|p| (std::cmp::Reverse(p.price), p.id))
            }
        }
        let total = matching.len();
        let skip = (query.page - 1).saturating_mul(query.size);
        let items = matching
            .iter()
            .skip(skip)
            .take(query.size)
            .map(|p| p.view())
            .collect();
        ProductPage {
            items,
            page: query.page,
            size: query.size,
            total,
        }
    }

    pub fn product(&self, product_id: ProductId) -> Result<ProductView, EngineError> {
        let product = self.directory().product(product_id);
        product
            .map(|p| p.view())
            .ok_or(EngineError::ProductNotFound(product_id))
    }

    /// The best sellers over the last `days` UTC days (today included), from the sales actor.
    pub async fn popular(&self, days: u64, limit: usize) -> Result<Vec<PopularItem>, EngineError> {
        let today = self.clock().now().day();
        let ranking = self
            .ask_actor(&self.links().sales, |reply| SalesMessage::Popular {
                today,
                days,
                limit,
                reply,
            })
            .await?;
        let items = ranking
            .into_iter()
            .enumerate()
            .map(|(index, ranked)| PopularItem {
                rank: index + 1,
                product_id: ranked.product_id,
                name: self
                    .directory()
                    .product(ranked.product_id)
                    .map(|p| p.name.to_string())
                    .unwrap_or_default(),
                sold_quantity: ranked.sold_quantity,
            })
            .collect();
        Ok(items)
    }

    /// Creates a user with `balance` points; the next free id when `user_id` is absent.
    pub async fn create_user(
        &self,
        user_id: Option<UserId>,
        balance: Won,
    ) -> Result<(UserId, Won), EngineError> {
        let max_balance = self.links().limits.max_balance;
        if balance > max_balance {
            return Err(EngineError::InvalidAmount(format!(
                "balance must be at most {max_balance}"
            )));
        }
        let _one_at_a_time = self.inner.creation.lock().await;
        let id = match user_id {
            Some(0) => return Err(invalid("user_id must be a positive integer")),
            Some(id) if id > MAX_EXACT_INTEGER => {
                return Err(invalid(format!(
                    "user_id must be at most {MAX_EXACT_INTEGER}"
                )));
            }
            Some(id) => {
                self.inner
                    .ids
                    .user
                    .fetch_max(id.saturating_add(1), Ordering::SeqCst);
                id
            }
            None => self.free_user_id()?,
        };
        if self.directory().has_user(id) {
            return Err(EngineError::UserExists(id));
        }
        self.links().recorder.record(|| Record::UserCreated {
            user_id: id,
            balance,
        });
        self.add_user(&UserState::new(id, balance))?;
        self.once_durable(Ok((id, balance))).await
    }

    /// The next id no user has (ids given explicitly may have taken some). The counter stops
    /// at `MAX_EXACT_INTEGER + 1` instead of wrapping.
    fn free_user_id(&self) -> Result<UserId, EngineError> {
        let counter = &self.inner.ids.user;
        loop {
            let taken = counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |id| {
                (id <= MAX_EXACT_INTEGER).then_some(id + 1)
            });
            let Ok(id) = taken else {
                return Err(invalid("no user id is left to assign"));
            };
            if !self.directory().has_user(id) {
                return Ok(id);
            }
        }
    }

    pub async fn create_product(&self, new: NewProduct) -> Result<ProductView, EngineError> {
        if new.name.trim().is_empty() || new.category.trim().is_empty() {
            return Err(invalid("name and category must not be empty"));
        }
        if new.options.is_empty() {
            return Err(invalid("a product needs at least one option"));
        }
        let names: BTreeSet<_> = new
            .options
            .iter()
            .map(|option| option.name.trim())
            .collect();
        if names.len() != new.options.len() || names.contains("") {
            return Err(invalid("option names must be non-empty and distinct"));
        }
        check_text("name", &new.name)?;
        check_text("category", &new.category)?;
        for option in &new.options {
            check_text("option name", &option.name)?;
        }
        if new.price > MAX_EXACT_INTEGER {
            return Err(invalid(format!(
                "price must be at most {MAX_EXACT_INTEGER}"
            )));
        }
        if new
            .purchase_limit
            .is_some_and(|limit| limit == 0 || limit > MAX_EXACT_INTEGER)
        {
            return Err(invalid(format!(
                "purchase_limit must be 1 to {MAX_EXACT_INTEGER} (leave it out for no limit)"
            )));
        }
        if let Some(option) = new.options.iter().find(|o| o.stock > MAX_STOCK) {
            return Err(invalid(format!(
                "option `{}`: stock must be at most {MAX_STOCK}",
                option.name
            )));
        }
        let _one_at_a_time = self.inner.creation.lock().await;
        let ids = &self.inner.ids;
        let options = new
            .options
            .into_iter()
            .map(|option| OptionStock {
                id: ids.option.fetch_add(1, Ordering::SeqCst),
                name: option.name,
                initial: option.stock,
                restocked: 0,
                available: option.stock,
                reserved: 0,
                sold: 0,
            })
            .collect();
        let state = ProductState {
            id: ids.product.fetch_add(1, Ordering::SeqCst),
            name: new.name.into(),
            category: new.category,
            price: new.price,
            options,
            purchase_limit: new.purchase_limit,
            reservations: Default::default(),
            bought: Default::default(),
        };
        self.links().recorder.record(|| Record::ProductCreatedV2 {
            product: ProductV2::from_state(&state),
        });
        let entry = ProductEntry::new(state);
        let view = entry.view();
        self.directory().insert_products(vec![entry]);
        self.once_durable(Ok(view)).await
    }

    pub async fn restock(
        &self,
        product_id: ProductId,
        option_id: OptionId,
        quantity: u64,
    ) -> Result<ProductView, EngineError> {
        if quantity == 0 {
            return Err(invalid("quantity must be a positive integer"));
        }
        let product = self
            .directory()
            .product(product_id)
            .ok_or(EngineError::ProductNotFound(product_id))?;
        let restocked = self
            .ask_product(product_id, |reply| ProductMessage::Restock {
                option_id,
                quantity,
                reply,
            })
            .await?;
        let restocked = restocked.map(|()| product.view());
        self.once_durable(restocked.map_err(EngineError::from))
            .await
    }

    pub async fn create_coupon(&self, new: NewCoupon) -> Result<CouponView, EngineError> {
        if new.name.trim().is_empty() {
            return Err(invalid("name must not be empty"));
        }
        check_text("name", &new.name)?;
        if !new.discount.is_valid() {
            return Err(invalid("discount percent must be 1 to 100"));
        }
        if new.discount == (Discount::Fixed { amount: 0 }) {
            return Err(invalid("discount amount must be positive"));
        }
        if new.expires_at.is_some_and(|at| at <= self.clock().now()) {
            return Err(invalid("expires_at must be in the future"));
        }
        let max_quantity = self.links().limits.max_coupon_quantity;
        if new.quantity == 0 || new.quantity > max_quantity {
            return Err(invalid(format!(
                "quantity must be a positive integer of at most {max_quantity}"
            )));
        }
        if matches!(new.discount, Discount::Fixed { amount } if amount > MAX_EXACT_INTEGER) {
            return Err(invalid(format!(
                "discount amount must be at most {MAX_EXACT_INTEGER}"
            )));
        }
        let _one_at_a_time = self.inner.creation.lock().await;
        let id = self.inner.ids.coupon.fetch_add(1, Ordering::SeqCst);
        let state = CouponState::new(id, new.name, new.discount, new.quantity, new.expires_at);
        let view = state.view();
        self.links().recorder.record(|| Record::CouponCreated {
            coupon: CouponV1::from_state(&state),
        });
        self.directory().insert_coupon(state);
        self.once_durable(Ok(view)).await
    }
}
