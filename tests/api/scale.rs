//! Search and pagination on a directory big enough for the indexes to matter (10,000
//! synthetic users): every answer equals a naive scan, and walking every page of the
//! keyset pagination visits each user exactly once. Timing is the benchmark's job.

use std::collections::BTreeSet;

use switchboard::directory::model::match_key;
use switchboard::store::Backend;

use crate::helpers::{ids, json_with_status, spawn_app_with, walk_pages};

const USERS: u64 = 10_000;

async fn search_and_pages_match_a_naive_scan(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate.enabled = false).await;
    let added = switchboard::directory::synthetic::seed(app.state.store.as_ref(), USERS)
        .await
        .unwrap();
    assert_eq!(added, USERS);

    // Deep pages: the whole directory, page by page, once each, in id order.
    let everyone = walk_pages(&app, "/api/users?limit=500").await;
    let all_ids = ids(&everyone);
    assert_eq!(
        all_ids.len() as u64,
        USERS + 1,
        "the synthetic users and the admin"
    );
    assert!(
        all_ids.windows(2).all(|w| w[0] < w[1]),
        "ascending, no repeats"
    );
    let total: u64 = app.get("/api/users?limit=1").await.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(total, USERS + 1);

    let naive = |needle: &str| -> Vec<i64> {
        let needle = match_key(needle);
        everyone
            .iter()
            .filter(|u| {
                match_key(u["name"].as_str().unwrap()).contains(&needle)
                    || match_key(u["email"].as_str().unwrap()).contains(&needle)
            })
            .map(|u| u["id"].as_i64().unwrap())
            .collect()
    };
    // Prefixes, infixes, non-ASCII in both cases, an email part, two-character needles
    // (SQLite's bigram index: letters, non-ASCII in capitals, punctuation, a digit),
    // one character (no index), and needles that match nobody.
    for needle in [
        "ali", "ZOË", "élo", "ström", "son", "rossi.12", "@example", "ia", "xq", "müller", "ÉL",
        ".1", "öm", "ø", "q",
    ] {
        let expected = naive(needle);
        let query = serde_urlencoded::to_string([("search", needle)]).unwrap();
        let listed = ids(&walk_pages(&app, &format!("/api/users?limit=200&{query}")).await);
        assert_eq!(listed, expected, "list search for {needle:?}");

        // Ranked search answers at most 100: every match when there are fewer, and
        // otherwise 100 real matches led by the names that start with the needle.
        let query = serde_urlencoded::to_string([("q", needle)]).unwrap();
        let ranked = json_with_status(
            app.get(&format!("/api/search?{query}&limit=100")).await,
            200,
        )
        .await;
        let ranked = ranked.as_array().unwrap();
        let ranked_ids: BTreeSet<i64> = ids(ranked).into_iter().collect();
        let key = match_key(needle);
        let name_prefix: BTreeSet<i64> = everyone
            .iter()
            .filter(|u| match_key(u["name"].as_str().unwrap()).starts_with(&key))
            .map(|u| u["id"].as_i64().unwrap())
            .collect();
        if expected.len() <= 100 {
            assert_eq!(
                ranked_ids,
                expected.iter().copied().collect(),
                "/api/search {needle:?}"
            );
        } else {
            assert_eq!(
                ranked_ids.len(),
                100,
                "/api/search {needle:?} fills its limit"
            );
            assert!(
                ranked_ids
                    .iter()
                    .all(|id| expected.binary_search(id).is_ok())
            );
        }
        let leading: BTreeSet<i64> = ids(&ranked[..name_prefix.len().min(100)])
            .into_iter()
            .collect();
        assert!(
            leading.iter().all(|id| name_prefix.contains(id)),
            "/api/search {needle:?}: names starting with it come first"
        );
    }

    // Autocomplete: the first distinct names, in order, that start with the prefix.
    for prefix in ["al", "Zo", "élodie d", "Ni", "qq"] {
        let mut names: Vec<String> = everyone
            .iter()
            .map(|u| u["name"].as_str().unwrap().to_owned())
            .filter(|n| match_key(n).starts_with(&match_key(prefix)))
            .collect();
        names.sort_by_key(|n| match_key(n));
        names.dedup();
        names.truncate(5);
        let query = serde_urlencoded::to_string([("q", prefix)]).unwrap();
        let got = json_with_status(app.get(&format!("/api/autocomplete?{query}")).await, 200).await;
        let got: Vec<String> = serde_json::from_value(got).unwrap();
        assert_eq!(got, names, "autocomplete {prefix:?}");
    }
}

crate::on_both_backends!(search_and_pages_match_a_naive_scan);
