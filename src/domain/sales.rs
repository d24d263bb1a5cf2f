//! The sales statistics (the seed's DailyOrderStats): quantity sold per UTC day and product,
//! and the popular-products ranking read from that aggregate.

use std::collections::BTreeMap;

use crate::model::{OrderPaid, ProductId};

/// Quantity sold, keyed by (UTC day number, product).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SalesState {
    pub daily: BTreeMap<(u64, ProductId), u64>,
}

/// One line of the ranking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ranked {
    pub product_id: ProductId,
    pub sold_quantity: u64,
}

impl SalesState {
    pub fn record(&mut self, day: u64, lines: &[(ProductId, u64)]) {
        for &(product_id, quantity) in lines {
            let sold = self.daily.entry((day, product_id)).or_default();
            *sold = sold.saturating_add(quantity);
        }
    }

    /// Adds a paid order's lines to the day it was paid.
    pub fn record_order(&mut self, paid: &OrderPaid) {
        self.record(paid.paid_at.day(), &sold_lines(paid));
    }

    /// The `limit` best sellers over the `days` days ending with `today`, most sold first,
    /// ties broken by the lower product id.
    pub fn popular(&self, today: u64, days: u64, limit: usize) -> Vec<Ranked> {
        let first_day = today.saturating_sub(days.saturating_sub(1));
        let mut totals: BTreeMap<ProductId, u64> = BTreeMap::new();
        for (&(_, product_id), &quantity) in self.daily.range((first_day, 0)..=(today, u64::MAX)) {
            *totals.entry(product_id).or_default() += quantity;
        }
        let mut ranking: Vec<Ranked> = totals
            .into_iter()
            .map(|(product_id, sold_quantity)| Ranked {
                product_id,
                sold_quantity,
            })
            .collect();
        ranking
            .sort_by(|a, b| (b.sold_quantity, a.product_id).cmp(&(a.sold_quantity, b.product_id)));
        ranking.truncate(limit);
        ranking
    }
}

/// (product, quantity) of each line of a paid order.
pub fn sold_lines(paid: &OrderPaid) -> Vec<(ProductId, u64)> {
    let lines = paid.items.iter();
    lines
        .map(|item| (item.product_id, u64::from(item.quantity)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_counts_only_the_window_and_breaks_ties_by_id() {
        let mut sales = SalesState::default();
        sales.record(10, &[(1, 5), (2, 3)]);
        sales.record(11, &[(2, 2), (3, 5)]);
        sales.record(12, &[(4, 1)]);
        sales.record(9, &[(9, 100)]);
        let ranking = sales.popular(12, 3, 10);
        let ids: Vec<_> = ranking
            .iter()
            .map(|r| (r.product_id, r.sold_quantity))
            .collect();
        assert_eq!(ids, vec![(1, 5), (2, 5), (3, 5), (4, 1)]);
        assert_eq!(sales.popular(12, 1, 10).len(), 1, "today only");
        assert_eq!(sales.popular(12, 3, 2).len(), 2, "limit applies");
        assert_eq!(sales.popular(12, 30, 1)[0].product_id, 9);
    }
}
