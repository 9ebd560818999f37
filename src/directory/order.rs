//! The order and filter of the directory list (`?sort=&order=&role=`): what each
//! means, read once from a request with a 400 for anything else, and the keyset
//! position of a row in that order (which [`super::cursor`] carries between pages).
//!
//! Every order is total, so that keyset pages visit each user once: names tie, so a
//! name order goes on by id; emails are unique (by their folded form); ids are given
//! out in creation order, so "date added" is the id order (`created_at` can tie in a
//! bulk load, and the primary key needs no index of its own).
//! Names and emails sort by their folded keys (`name_key`, `email_key`), in code
//! point order on both backends (PostgreSQL's `COLLATE "C"`), so both agree and an
//! index serves every order (migration 0011).

use super::model::{Role, User, match_key};
use crate::error::ApiError;

/// What the list is sorted by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    /// Date added: the id order.
    #[default]
    Created,
    Name,
    Email,
}

impl Sort {
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Created => "created",
            Sort::Name => "name",
            Sort::Email => "email",
        }
    }
}

/// A sort and its direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListOrder {
    pub sort: Sort,
    pub descending: bool,
}

impl ListOrder {
    /// `sort` (`created`, `name`, `email`; default `created`) and `order` (`asc`,
    /// `desc`; default `asc`), blank meaning the default; anything else is a 400.
    pub fn parse(sort: Option<&str>, order: Option<&str>) -> Result<Self, ApiError> {
        let sort = match sort.map(str::trim).unwrap_or("") {
            "" | "created" => Sort::Created,
            "name" => Sort::Name,
            "email" => Sort::Email,
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    "sort must be one of: name, email, created",
                ));
            }
        };
        let descending = match order.map(str::trim).unwrap_or("") {
            "" | "asc" => false,
            "desc" => true,
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    "order must be asc or desc",
                ));
            }
        };
        Ok(Self { sort, descending })
    }

    pub fn is_default(self) -> bool {
        self == Self::default()
    }

    pub fn direction(self) -> &'static str {
        if self.descending { "desc" } else { "asc" }
    }
}

/// `role=admin|member` (blank: everyone); anything else is a 400.
pub fn parse_role(role: Option<&str>) -> Result<Option<Role>, ApiError> {
    match role.map(str::trim).unwrap_or("") {
        "" => Ok(None),
        "admin" => Ok(Some(Role::Admin)),
        "member" => Ok(Some(Role::Member)),
        _ => Err(ApiError::bad_request(
            "invalid_query",
            "role must be admin or member",
        )),
    }
}

/// Where a row stands in an order: its id, and for the name and email orders its
/// folded key (the `name_key` / `email_key` the store sorts by, which is
/// `match_key` of the value as written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub id: i64,
    pub key: Option<String>,
}

impl Position {
    pub fn of(user: &User, sort: Sort) -> Self {
        let key = match sort {
            Sort::Created => None,
            Sort::Name => Some(match_key(&user.name)),
            Sort::Email => Some(match_key(&user.email)),
        };
        Self { id: user.id, key }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_and_roles_parse_or_are_refused() {
        assert_eq!(ListOrder::parse(None, None).unwrap(), ListOrder::default());
        assert_eq!(
            ListOrder::parse(Some("name"), Some("desc")).unwrap(),
            ListOrder {
                sort: Sort::Name,
                descending: true
            }
        );
        assert_eq!(
            ListOrder::parse(Some(""), Some(" ")).unwrap(),
            ListOrder::default()
        );
        for (sort, order) in [(Some("Name"), None), (Some("id"), None), (None, Some("up"))] {
            let error = ListOrder::parse(sort, order).unwrap_err();
            assert_eq!(error.code(), "invalid_query");
        }
        assert_eq!(parse_role(Some("admin")).unwrap(), Some(Role::Admin));
        assert_eq!(parse_role(Some("")).unwrap(), None);
        assert_eq!(
            parse_role(Some("owner")).unwrap_err().code(),
            "invalid_query"
        );
    }
}
