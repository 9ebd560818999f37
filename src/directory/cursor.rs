//! The directory list's page cursor: opaque to clients. Inside, the position of the
//! last row seen in the list's order ([`super::order`]), base64url'd so nobody builds
//! one by hand and we stay free to change what is inside:
//!
//! - `u{id}`: the default order (date added, ascending), as cursors always were;
//! - `{tag}{id}:{key}`: the other orders, `tag` naming the order (`c`/`C` date
//!   added, `n`/`N` name, `e`/`E` email; capitals descending) so a cursor is refused
//!   by a list in another order rather than read as a position in it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::order::{ListOrder, Position, Sort};
use crate::error::ApiError;

fn tag(order: ListOrder) -> char {
    let tag = match order.sort {
        Sort::Created => 'c',
        Sort::Name => 'n',
        Sort::Email => 'e',
    };
    if order.descending {
        tag.to_ascii_uppercase()
    } else {
        tag
    }
}

/// The cursor of the page after the one ending at `last` in `order`.
pub fn encode(order: ListOrder, last: &Position) -> String {
    let text = if order.is_default() {
        format!("u{}", last.id)
    } else {
        format!(
            "{}{}:{}",
            tag(order),
            last.id,
            last.key.as_deref().unwrap_or("")
        )
    };
    URL_SAFE_NO_PAD.encode(text)
}

/// The position a cursor of a list in `order` carries, or a 400 for a cursor this
/// server did not give out for that order.
pub fn decode(order: ListOrder, cursor: &str) -> Result<Position, ApiError> {
    let text = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    text.and_then(|text| {
        if order.is_default() {
            let id = text.strip_prefix('u')?.parse().ok()?;
            return Some(Position { id, key: None });
        }
        let rest = text.strip_prefix(tag(order))?;
        let (id, key) = rest.split_once(':')?;
        let id = id.parse().ok()?;
        let key = match order.sort {
            Sort::Created => None,
            Sort::Name | Sort::Email => Some(key.to_owned()),
        };
        Some(Position { id, key })
    })
    .ok_or_else(|| {
        ApiError::bad_request(
            "invalid_cursor",
            "The cursor is not one this server gave out",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(sort: Sort, descending: bool) -> ListOrder {
        ListOrder { sort, descending }
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let default = ListOrder::default();
        for id in [0, 42, i64::MAX] {
            let at = Position { id, key: None };
            assert_eq!(decode(default, &encode(default, &at)).unwrap(), at);
        }
        // The default order's cursors are those given out before there were others.
        assert_eq!(encode(default, &Position { id: 42, key: None }), "dTQy");
        for bad in [
            "",
            "42",
            "!!",
            &URL_SAFE_NO_PAD.encode("x42"),
            &URL_SAFE_NO_PAD.encode("u"),
        ] {
            let error = decode(default, bad).expect_err(bad);
            assert_eq!(error.code(), "invalid_cursor");
        }
    }

    #[test]
    fn each_order_reads_only_its_own_cursors() {
        let name = order(Sort::Name, false);
        let at = Position {
            id: 7,
            key: Some("ann: o'hara".into()),
        };
        assert_eq!(decode(name, &encode(name, &at)).unwrap(), at);
        let newest = order(Sort::Created, true);
        let at_id = Position { id: 9, key: None };
        assert_eq!(decode(newest, &encode(newest, &at_id)).unwrap(), at_id);
        for other in [
            ListOrder::default(),
            order(Sort::Name, true),
            order(Sort::Email, false),
        ] {
            let error = decode(other, &encode(name, &at)).unwrap_err();
            assert_eq!(error.code(), "invalid_cursor");
        }
        let error = decode(name, &encode(ListOrder::default(), &at_id)).unwrap_err();
        assert_eq!(error.code(), "invalid_cursor");
    }
}
