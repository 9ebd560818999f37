//! `/api/search`: which users match a needle and in what order. A person typing a
//! name expects the exact name first, then names starting with it, then names with a
//! word starting with it, then emails starting with it, then anything containing it
//! ([`rank`]). The store answers one plain, indexed query per kind of match, each
//! bounded by the limit ([`Tier`]); this module asks them best kind first, stops as
//! soon as the better kinds fill the limit, and ranks what they found.
//!
//! When one kind has more matches than the limit, the page holds the first `limit`
//! its index gives (name prefixes in name order, email prefixes in email order, word
//! and substring matches oldest first), ordered by name: finding the `limit` first by
//! name among all of them would read them all.

use std::collections::HashSet;

use super::model::{User, email_key, match_key};
use crate::store::{Store, StoreResult, UserPage};

/// What was typed, keyed both ways: `name` by [`match_key`] (case and accents folded),
/// matched against names and, anywhere, emails; `email` by [`email_key`] (case only),
/// the key emails are stored by, for the email-prefix match, so that an address
/// typed as it is written (`jose@bücher.de`) is found.
#[derive(Clone, Debug)]
pub struct Needle {
    pub name: String,
    pub email: String,
}

impl Needle {
    /// Both keys of `typed`.
    pub fn of(typed: &str) -> Self {
        Self {
            name: match_key(typed),
            email: email_key(typed),
        }
    }
}

/// The candidate queries, best kind of match first. Each finds every user of its own
/// rank (and maybe some better ones) up to the limit, so once the tiers asked so far
/// found `limit` users, no later tier can find a better one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Names starting with the needle, in key order: the exact name is first.
    NamePrefix,
    /// Names with a later word starting with it: names containing `" " + needle`
    /// (match keys have plain spaces between words, and emails have none).
    WordPrefix,
    /// Emails starting with it (as typed, case folded), in key order.
    EmailPrefix,
    /// Names or emails containing it, oldest first.
    Anywhere,
}

impl Tier {
    pub const ALL: [Tier; 4] = [
        Tier::NamePrefix,
        Tier::WordPrefix,
        Tier::EmailPrefix,
        Tier::Anywhere,
    ];

    /// Up to `limit` users of this tier for `needle`.
    pub async fn candidates(
        self,
        store: &dyn Store,
        needle: &Needle,
        limit: i64,
    ) -> StoreResult<Vec<User>> {
        let containing = |text: String| UserPage {
            search: Some(text),
            after_id: 0,
            limit,
        };
        match self {
            Tier::NamePrefix => store.users_by_name_prefix(&needle.name, limit).await,
            Tier::WordPrefix => {
                let word = format!(" {}", needle.name);
                store.list_users(&containing(word)).await
            }
            Tier::EmailPrefix => store.users_by_email_prefix(&needle.email, limit).await,
            Tier::Anywhere => store.list_users(&containing(needle.name.clone())).await,
        }
    }
}

/// Up to `limit` users matching `needle`, best first.
pub async fn search_users(
    store: &dyn Store,
    needle: &Needle,
    limit: i64,
) -> StoreResult<Vec<User>> {
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    for tier in Tier::ALL {
        if found.len() as i64 >= limit {
            break;
        }
        for user in tier.candidates(store, needle, limit).await? {
            if seen.insert(user.id) {
                found.push(user);
            }
        }
    }
    Ok(rank_users(found, needle, limit as usize))
}

/// How well `user` matches `needle`; lower is better. Names are compared by their
/// match key, emails by their email key, as the store does; a word starts after a
/// space, as in [`Tier::WordPrefix`] (so `zed mar` is a word prefix of "Ann Zed
/// Marlow").
fn rank(user: &User, needle: &Needle) -> u8 {
    let name = match_key(&user.name);
    let email = email_key(&user.email);
    let n = needle.name.as_str();
    if name == n {
        0
    } else if name.starts_with(n) {
        1
    } else if name.contains(&format!(" {n}")) {
        2
    } else if email.starts_with(&needle.email) {
        3
    } else if name.contains(n) {
        4
    } else {
        5
    }
}

/// Orders `candidates` best first (ties by name key, then id) and keeps `limit`.
pub fn rank_users(mut candidates: Vec<User>, needle: &Needle, limit: usize) -> Vec<User> {
    candidates.sort_by_cached_key(|u| (rank(u, needle), match_key(&u.name), u.id));
    candidates.truncate(limit);
    candidates
}

#[cfg(test)]
mod tests {
    //! The ranking on plain values, and the merge on a real (SQLite) store: no HTTP.
    //! The same over HTTP on both backends is in tests/api/search.rs.
    use super::*;
    use crate::directory::model::{NewUser, Role};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Lifecycle, UserStore};

    fn user(id: i64, name: &str, email: &str) -> User {
        let ts = crate::timefmt::now();
        User {
            id,
            name: name.into(),
            email: email.into(),
            role: Role::Member,
            created_at: ts,
            updated_at: ts,
        }
    }

    fn ranked(users: &[User], needle: &str) -> Vec<i64> {
        rank_users(users.to_vec(), &Needle::of(needle), 10)
            .iter()
            .map(|u| u.id)
            .collect()
    }

    #[test]
    fn exact_then_prefix_then_word_then_email_then_substring() {
        let users = vec![
            user(1, "Malice Cooper", "m@x.io"),
            user(2, "Bob Alison", "b@x.io"),
            user(3, "Zed", "alice@x.io"),
            user(4, "Alice Smith", "as@x.io"),
            user(5, "Alice", "a@x.io"),
        ];
        assert_eq!(ranked(&users, "ali"), vec![5, 4, 2, 3, 1]);
        assert_eq!(
            ranked(&users, "alice smith")[0],
            4,
            "the exact name comes first"
        );
    }

    /// The case of issue 22: "Umar" contains `mar` but is the weakest match.
    #[test]
    fn mar_ranks_each_kind_of_match_in_its_place() {
        let users = vec![
            user(1, "Umar Khan", "umar@x.io"),
            user(2, "Q Person", "mar.q@x.io"),
            user(3, "Zed Marlow", "zed@x.io"),
            user(4, "Marta Lind", "ml@x.io"),
            user(5, "Mar", "m@x.io"),
            user(6, "Ann Zed Marlow", "azm@x.io"),
        ];
        // Two word prefixes: by name ("ann zed marlow" < "zed marlow").
        assert_eq!(ranked(&users, "mar"), vec![5, 4, 6, 3, 2, 1]);
        // Accents fold in names; an email prefix is the email as typed, case folded,
        // so "mär" is no prefix of mar.q@ (which only contains it, folded: last).
        assert_eq!(
            ranked(&users, "MÄR"),
            vec![5, 4, 6, 3, 1, 2],
            "accents fold"
        );
        assert_eq!(
            ranked(&users, "zed mar")[..2],
            [3, 6],
            "a phrase at a word start"
        );
        assert_eq!(rank(&users[5], &Needle::of("zed mar")), 2);
    }

    #[test]
    fn ties_go_by_name_key_then_id() {
        let users = vec![
            user(1, "Björn B", "1@x.io"),
            user(2, "Bjorn A", "2@x.io"),
            user(3, "Bjorn A", "3@x.io"),
        ];
        assert_eq!(ranked(&users, "bjorn"), vec![2, 3, 1]);
        assert_eq!(ranked(&users, "Björn"), vec![2, 3, 1]);
    }

    async fn store_with(users: &[(&str, &str)]) -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("search.db").display());
        let store = SqliteStore::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        let users: Vec<NewUser> = users
            .iter()
            .map(|(name, email)| NewUser {
                name: (*name).into(),
                email: (*email).into(),
                role: Role::Member,
                password_hash: None,
            })
            .collect();
        store.insert_users_bulk(&users).await.unwrap();
        (store, dir)
    }

    async fn names(store: &SqliteStore, q: &str, limit: i64) -> Vec<String> {
        search_users(store, &Needle::of(q), limit)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect()
    }

    /// Twenty "Umar" users come first in id order, so the first page of substring
    /// matches holds nothing else: the better kinds of match are still found, by
    /// their own queries, and lead.
    #[tokio::test]
    async fn every_kind_of_match_is_found_however_many_weaker_ones_come_first() {
        let mut users: Vec<(String, String)> = (0..20)
            .map(|i| (format!("Umar {i:02}"), format!("umar{i}@x.io")))
            .collect();
        for (name, email) in [
            ("Q Person", "mar.q@x.io"),
            ("Zed Marlow", "zed@x.io"),
            ("Marta Lind", "ml@x.io"),
            ("Mar", "m@x.io"),
        ] {
            users.push((name.into(), email.into()));
        }
        let users: Vec<(&str, &str)> = users
            .iter()
            .map(|(n, e)| (n.as_str(), e.as_str()))
            .collect();
        let (store, _dir) = store_with(&users).await;
        assert_eq!(
            names(&store, "mar", 6).await,
            [
                "Mar",
                "Marta Lind",
                "Zed Marlow",
                "Q Person",
                "Umar 00",
                "Umar 01"
            ]
        );
        assert_eq!(names(&store, "mar", 2).await, ["Mar", "Marta Lind"]);
        // Each tier alone, bounded by the limit.
        let ids = |users: Vec<User>| users.into_iter().map(|u| u.name).collect::<Vec<_>>();
        assert_eq!(
            ids(Tier::WordPrefix
                .candidates(&store, &Needle::of("mar"), 5)
                .await
                .unwrap()),
            ["Zed Marlow"]
        );
        assert_eq!(
            ids(Tier::EmailPrefix
                .candidates(&store, &Needle::of("mar"), 5)
                .await
                .unwrap()),
            ["Q Person"]
        );
        assert_eq!(
            Tier::Anywhere
                .candidates(&store, &Needle::of("mar"), 5)
                .await
                .unwrap()
                .len(),
            5
        );
    }

    /// Accents fold both ways, in names; emails are matched by their email key.
    #[tokio::test]
    async fn accents_fold_both_ways() {
        let (store, _dir) = store_with(&[
            ("Björn Ström", "bs@x.io"),
            ("Bjorn Strom", "bjorn@x.io"),
            ("åsa Lind", "al@x.io"),
            ("Zoë", "z@x.io"),
        ])
        .await;
        for q in ["bjorn", "Björn", "BJÖRN", "bjø"] {
            assert_eq!(
                names(&store, q, 10).await,
                ["Björn Ström", "Bjorn Strom"],
                "{q}: one key, so by id"
            );
        }
        assert_eq!(names(&store, "ÅSA", 10).await, ["åsa Lind"]);
        assert_eq!(names(&store, "asa", 10).await, ["åsa Lind"]);
        assert_eq!(names(&store, "zoe", 10).await, ["Zoë"]);
        assert_eq!(
            names(&store, "ström", 10).await,
            ["Björn Ström", "Bjorn Strom"]
        );
        assert_eq!(
            names(&store, "oe", 10).await,
            ["Zoë"],
            "two characters: bigrams"
        );
        assert_eq!(
            names(&store, "ö", 10).await.len(),
            4,
            "one character: a scan"
        );
    }
}
