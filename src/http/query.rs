//! Query strings of `GET /products` and `GET /products/popular`, validated to the letter of
//! docs/spec.md §2: an unknown or repeated parameter, an empty value or one that does not
//! parse is `INVALID_QUERY`, never silently ignored.

use std::collections::BTreeMap;
use std::str::FromStr;

use super::error::ApiError;
use crate::engine::{ProductQuery, ProductSort};

const MAX_PAGE_SIZE: usize = 100;
const MAX_POPULAR_DAYS: u64 = 30;
const MAX_POPULAR_LIMIT: usize = 100;

/// The parameters of one query string, each given once, none empty, all in `allowed`.
struct Params(BTreeMap<String, String>);

impl Params {
    fn parse(raw: &str, allowed: &[&str]) -> Result<Params, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).map_err(|error| {
            ApiError::invalid_query(format!("unreadable query string: {error}"))
        })?;
        let mut params = BTreeMap::new();
        for (name, value) in pairs {
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::invalid_query(format!(
                    "unknown parameter `{name}`; known: {}",
                    allowed.join(", ")
                )));
            }
            if value.is_empty() {
                return Err(ApiError::invalid_query(format!("`{name}` is empty")));
            }
            if params.insert(name.clone(), value).is_some() {
                return Err(ApiError::invalid_query(format!("`{name}` is given twice")));
            }
        }
        Ok(Params(params))
    }

    fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    /// A number parameter; `None` when absent, an error when it does not parse.
    fn number<T: FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.0
            .get(name)
            .map(|value| {
                value.parse().map_err(|_| {
                    ApiError::invalid_query(format!(
                        "`{name}` must be a non-negative integer, got `{value}`"
                    ))
                })
            })
            .transpose()
    }

    fn number_in<T: FromStr + PartialOrd + Copy + std::fmt::Display>(
        &self,
        name: &str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ApiError> {
        let value = self.number(name)?.unwrap_or(default);
        if !range.contains(&value) {
            return Err(ApiError::invalid_query(format!(
                "`{name}` must be {} to {}, got {value}",
                range.start(),
                range.end()
            )));
        }
        Ok(value)
    }
}

pub fn product_query(raw: &str) -> Result<ProductQuery, ApiError> {
    let allowed = [
        "category",
        "option",
        "min_price",
        "max_price",
        "in_stock",
        "sort",
        "page",
        "size",
    ];
    let params = Params::parse(raw, &allowed)?;
    let in_stock = match params.text("in_stock").as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::invalid_query(format!(
                "`in_stock` must be true or false, got `{other}`"
            )));
        }
    };
    let sort = match params.text("sort").as_deref() {
        None | Some("id") => ProductSort::Id,
        Some("price_asc") => ProductSort::PriceAscending,
        Some("price_desc") => ProductSort::PriceDescending,
        Some(other) => {
            return Err(ApiError::invalid_query(format!(
                "`sort` must be id, price_asc or price_desc, got `{other}`"
            )));
        }
    };
    let query = ProductQuery {
        category: params.text("category"),
        option: params.text("option"),
        min_price: params.number("min_price")?,
        max_price: params.number("max_price")?,
        in_stock,
        sort,
        page: params.number_in("page", 1, 1..=usize::MAX)?,
        size: params.number_in("size", 20, 1..=MAX_PAGE_SIZE)?,
    };
    if let (Some(min), Some(max)) = (query.min_price, query.max_price)
        && min > max
    {
        return Err(ApiError::invalid_query(format!(
            "min_price {min} is over max_price {max}"
        )));
    }
    Ok(query)
}

/// `(days, limit)` of the popular ranking.
/// `GET /users/{id}/orders?limit=20&before=ORDER_ID`: `limit` 1..=100 (default 20) and an
/// optional positive `before`.
pub fn orders_query(raw: &str) -> Result<(usize, Option<u64>), ApiError> {
    let params = Params::parse(raw, &["limit", "before"])?;
    let limit = params.number_in("limit", 20, 1..=MAX_PAGE_SIZE)?;
    let before = params.number::<u64>("before")?;
    if before == Some(0) {
        return Err(ApiError::invalid_query(
            "`before` must be a positive order id",
        ));
    }
    Ok((limit, before))
}

pub fn popular_query(raw: &str) -> Result<(u64, usize), ApiError> {
    let params = Params::parse(raw, &["days", "limit"])?;
    let days = params.number_in("days", 3, 1..=MAX_POPULAR_DAYS)?;
    let limit = params.number_in("limit", 5, 1..=MAX_POPULAR_LIMIT)?;
    Ok((days, limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::Code;

    #[test]
    fn an_empty_query_gives_the_defaults() {
        assert_eq!(product_query("").unwrap(), ProductQuery::default());
        assert_eq!(popular_query("").unwrap(), (3, 5));
    }

    #[test]
    fn every_filter_is_read() {
        let query = product_query(
            "category=food&option=Spicy&min_price=100&max_price=30000&in_stock=true&sort=price_desc&page=2&size=5",
        )
        .unwrap();
        assert_eq!(query.category.as_deref(), Some("food"));
        assert_eq!(query.option.as_deref(), Some("Spicy"));
        assert_eq!(
            (query.min_price, query.max_price),
            (Some(100), Some(30_000))
        );
        assert_eq!(query.in_stock, Some(true));
        assert_eq!(query.sort, ProductSort::PriceDescending);
        assert_eq!((query.page, query.size), (2, 5));
    }

    #[test]
    fn bad_queries_are_rejected() {
        for raw in [
            "colour=red",
            "category=",
            "min_price=-1",
            "min_price=1.5",
            "max_price=abc",
            "in_stock=yes",
            "page=0",
            "size=0",
            "size=101",
            "min_price=10&max_price=9",
            "sort=name",
            "page=1&page=2",
        ] {
            let error = product_query(raw).unwrap_err();
            assert_eq!(error.code, Code::InvalidQuery, "{raw}");
        }
        for raw in [
            "days=0",
            "days=31",
            "limit=0",
            "limit=101",
            "top=3",
            "days=x",
        ] {
            assert_eq!(
                popular_query(raw).unwrap_err().code,
                Code::InvalidQuery,
                "{raw}"
            );
        }
    }

    #[test]
    fn values_are_url_decoded() {
        let query = product_query("option=Red%20switch").unwrap();
        assert_eq!(query.option.as_deref(), Some("Red switch"));
    }
}
