//! `/api/search` and the search of `/api/users` as a person uses them, on both
//! backends: every kind of match found and ranked best first however many weaker
//! ones come before it, accents folded both ways (also in directories stored before
//! keys folded them), and emails still unique by case only.

use serde_json::Value;
use switchboard::store::Backend;

use crate::helpers::{TestApp, json_with_status, spawn_app_with};
use crate::on_both_backends;

async fn app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |c| c.rate.enabled = false).await
}

fn names(users: &Value) -> Vec<&str> {
    users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect()
}

/// `/api/search` for `q` (and `extra` query parameters), as names.
async fn search(app: &TestApp, q: &str, extra: &str) -> Vec<String> {
    let query = serde_urlencoded::to_string([("q", q)]).unwrap();
    let body = json_with_status(app.get(&format!("/api/search?{query}{extra}")).await, 200).await;
    names(&body).into_iter().map(str::to_owned).collect()
}

/// `/api/users?search=` (one page), as names.
async fn list(app: &TestApp, needle: &str) -> Vec<String> {
    let query = serde_urlencoded::to_string([("search", needle)]).unwrap();
    let body = json_with_status(app.get(&format!("/api/users?{query}")).await, 200).await;
    names(&body).into_iter().map(str::to_owned).collect()
}

async fn suggest(app: &TestApp, q: &str) -> Vec<String> {
    let query = serde_urlencoded::to_string([("q", q)]).unwrap();
    let body = json_with_status(app.get(&format!("/api/autocomplete?{query}")).await, 200).await;
    serde_json::from_value(body).unwrap()
}

/// Issue 22's case: thirty "Umar" users come first in id order, so the first page
/// of substring matches holds nothing else. The word prefix (Zed Marlow) and the
/// email prefix (mar.q@) are still found, and each kind of match is in its place.
async fn every_kind_of_match_is_found_and_ranked(backend: Backend) {
    let app = app(backend).await;
    for i in 0..30 {
        app.create_user(&format!("Umar {i:02}"), &format!("umar{i}@example.com"))
            .await;
    }
    app.create_user("Q Person", "mar.q@example.com").await;
    app.create_user("Zed Marlow", "zed@example.com").await;
    app.create_user("Marta Lind", "ml@example.com").await;
    app.create_user("Mar", "m@example.com").await;

    assert_eq!(
        search(&app, "mar", "&limit=6").await,
        [
            "Mar",
            "Marta Lind",
            "Zed Marlow",
            "Q Person",
            "Umar 00",
            "Umar 01"
        ],
        "exact, name prefix, word prefix, email prefix, anywhere"
    );
    // The default limit (20): the four, then sixteen of the Umars.
    let found = search(&app, "MAR", "").await;
    assert_eq!(found.len(), 20);
    assert_eq!(found[..4], ["Mar", "Marta Lind", "Zed Marlow", "Q Person"]);
    assert!(found[4..].iter().all(|n| n.starts_with("Umar")));
    assert_eq!(search(&app, "mar", "&limit=2").await, ["Mar", "Marta Lind"]);
    assert_eq!(search(&app, "zed mar", "").await, ["Zed Marlow"]);
    // Above its maximum (100) the limit is lowered, as /api/users?limit= is.
    assert_eq!(search(&app, "umar", "&limit=1000").await.len(), 30);
}

/// `bjorn` finds Björn, `Björn` finds Bjorn, `ÅSA` finds åsa: in the ranked search, the
/// list's search and autocomplete alike.
async fn accents_fold_both_ways(backend: Backend) {
    let app = app(backend).await;
    app.create_user("Björn Ström", "bs@example.com").await;
    app.create_user("Bjorn Strom", "bjorn@example.com").await;
    app.create_user("åsa Lind", "al@example.com").await;
    app.create_user("Zoë Ålund", "z@example.com").await;

    for q in ["bjorn", "Björn", "BJÖRN", "bjö", "strom", "ström"] {
        assert_eq!(
            search(&app, q, "").await,
            ["Björn Ström", "Bjorn Strom"],
            "search {q:?}"
        );
        assert_eq!(
            list(&app, q).await,
            ["Björn Ström", "Bjorn Strom"],
            "list {q:?}"
        );
    }
    for q in ["ÅSA", "asa", "åsa"] {
        assert_eq!(search(&app, q, "").await, ["åsa Lind"], "search {q:?}");
        assert_eq!(list(&app, q).await, ["åsa Lind"], "list {q:?}");
    }
    // Two characters (bigram indexes) and one (a scan) fold too.
    assert_eq!(list(&app, "OE").await, ["Zoë Ålund"]);
    let a = list(&app, "å").await;
    assert!(a.contains(&"åsa Lind".to_owned()) && a.contains(&"Zoë Ålund".to_owned()));
    assert_eq!(search(&app, "al", "").await, ["Zoë Ålund", "åsa Lind"]);
    // Autocomplete folds the same way; one suggestion per key.
    assert_eq!(suggest(&app, "bjö").await, ["Björn Ström"]);
    assert_eq!(suggest(&app, "ÅS").await, ["åsa Lind"]);
    assert_eq!(suggest(&app, "zoe").await, ["Zoë Ålund"]);
}

/// Emails stay unique by case only: an accented domain is another address.
async fn emails_are_not_folded_for_uniqueness(backend: Backend) {
    let app = app(backend).await;
    app.create_user("Jose A", "jose@bücher.de").await;
    app.create_user("Jose B", "jose@bucher.de").await;
    let taken = app
        .post_json(
            "/api/users",
            &serde_json::json!({"name": "Jose C", "email": "JOSE@BÜCHER.DE"}),
        )
        .await;
    assert_eq!(taken.status(), 409);
    // Typed as written, an address is an email prefix (its email key): first. The
    // folded needle also finds the other one inside its email: after it.
    assert_eq!(search(&app, "jose@bü", "").await, ["Jose A", "Jose B"]);
    assert_eq!(search(&app, "JOSE@bucher", "").await, ["Jose B"]);
}

/// A directory stored before name keys folded accents (keys folded by case only,
/// as migrations up to 0009 left them) is keyed again once, at the next start.
async fn stored_names_are_keyed_again_after_the_migration(backend: Backend) {
    let app = app(backend).await;
    app.create_user("Björn Ström", "bs@example.com").await;
    app.create_user("Ada", "ada@example.com").await;
    // Back to the old keys, and the mark migration 0010 leaves.
    let old = "UPDATE users SET name_key = $1 WHERE name = $2";
    let mark = "INSERT INTO search_index_rebuild (name) VALUES ('name_key')";
    match backend {
        Backend::Sqlite => {
            let path = app.db.url.trim_start_matches("sqlite://");
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .unwrap();
            conn.execute(old, ["björn ström", "Björn Ström"]).unwrap();
            // The next write brings SQLite's search indexes along, as they were.
            app.create_user("Writer", "w@example.com").await;
            assert_eq!(list(&app, "strom").await, Vec::<String>::new());
            conn.execute(mark, []).unwrap();
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
            sqlx::query(old)
                .bind("björn ström")
                .bind("Björn Ström")
                .execute(&pool)
                .await
                .unwrap();
            assert_eq!(list(&app, "strom").await, Vec::<String>::new());
            sqlx::query(mark).execute(&pool).await.unwrap();
        }
    }
    assert_eq!(suggest(&app, "bjo").await, Vec::<String>::new(), "old keys");
    app.state.store.migrate().await.unwrap();
    assert_eq!(search(&app, "bjorn", "").await, ["Björn Ström"]);
    assert_eq!(list(&app, "strom").await, ["Björn Ström"]);
    assert_eq!(
        list(&app, "bj").await,
        ["Björn Ström"],
        "the bigram index too"
    );
    assert_eq!(suggest(&app, "bjo").await, ["Björn Ström"]);
}

on_both_backends!(
    every_kind_of_match_is_found_and_ranked,
    accents_fold_both_ways,
    emails_are_not_folded_for_uniqueness,
    stored_names_are_keyed_again_after_the_migration,
);
