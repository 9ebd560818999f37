//! Search and pagination on a directory big enough for the indexes to matter (10,000
//! synthetic users): every answer equals a naive scan, and walking every page of the
//! keyset pagination visits each user exactly once. Timing is the benchmark's job,
//! but which index PostgreSQL reads for a search is checked here, with EXPLAIN.

use std::collections::BTreeSet;

use switchboard::directory::model::{email_key, match_key};
use switchboard::store::Backend;
use switchboard::store::postgres as pg;

use crate::helpers::{
    TestApp, ids, json_with_status, postgres_available, spawn_app, spawn_app_with, walk_pages,
};

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
                    || email_key(u["email"].as_str().unwrap()).contains(&needle)
            })
            .map(|u| u["id"].as_i64().unwrap())
            .collect()
    };
    // Prefixes, infixes, non-ASCII in both cases, an email part, two-character needles
    // (SQLite's bigram index: letters, non-ASCII in capitals, punctuation, a digit),
    // one character (no index), and needles that match nobody.
    for needle in [
        "ali",
        "ZOË",
        "élo",
        "ström",
        "son",
        "rossi.12",
        "@example",
        "ia",
        "xq",
        "müller",
        "ÉL",
        ".1",
        "öm",
        "ø",
        "q",
        "elo",
        "angst",
        "ANGSTRÖM",
        "muller",
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

    // Autocomplete: in key order, the first name (oldest user) of each of the first
    // distinct keys that start with the prefix ("Élodie" and "Elodie" are one key).
    for prefix in ["al", "Zo", "élodie d", "elodie d", "Ni", "qq"] {
        let mut names: Vec<String> = everyone
            .iter()
            .map(|u| u["name"].as_str().unwrap().to_owned())
            .filter(|n| match_key(n).starts_with(&match_key(prefix)))
            .collect();
        names.sort_by_key(|n| match_key(n));
        names.dedup_by_key(|n| match_key(n));
        names.truncate(5);
        let query = serde_urlencoded::to_string([("q", prefix)]).unwrap();
        let got = json_with_status(app.get(&format!("/api/autocomplete?{query}")).await, 200).await;
        let got: Vec<String> = serde_json::from_value(got).unwrap();
        assert_eq!(got, names, "autocomplete {prefix:?}");
    }
}

crate::on_both_backends!(search_and_pages_match_a_naive_scan);

/// The plan PostgreSQL makes for the statement the store runs to search for `needle`
/// (first page of 50), as EXPLAIN's lines joined.
async fn pg_search_plan(pool: &sqlx::PgPool, needle: &str) -> String {
    let (sql, first) = switchboard::store::postgres::search_page(needle);
    let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
        .bind(first)
        .bind(0_i64)
        .bind(50_i64)
        .fetch_all(pool)
        .await
        .unwrap();
    lines.join("\n")
}

/// On PostgreSQL a two-character needle reads the bigram index of migration 0007
/// (pg_trgm has no trigram in '%qz%', so it used to scan), a longer one still the
/// trigram indexes, and a pair that every user has walks the primary key: never a
/// sequential scan. 100,000 users made by the server (generate_series; with fewer,
/// pg_trgm's estimates make a sequential scan the cheaper plan for a trigram), then
/// ANALYZE, as autovacuum would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_searches_two_characters_through_an_index() {
    if !postgres_available("postgres_searches_two_characters_through_an_index") {
        return;
    }
    let app = spawn_app_with(Backend::Postgres, |c| c.rate.enabled = false).await;
    let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
    // Every 5,000th user is "Rare Qzwy N": 20 users hold the pair "qz".
    sqlx::query(
        "INSERT INTO users (name, email, name_key, email_key, role, created_at, updated_at)
         SELECT n, e, lower(n), lower(e), 'member', now(), now()
         FROM generate_series(1, 100000) AS i,
         LATERAL (SELECT CASE WHEN i % 5000 = 0 THEN 'Rare Qzwy ' ELSE 'Member ' END || i AS n,
                         'member' || i || '@example.test' AS e) AS u",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE users").execute(&pool).await.unwrap();

    for needle in ["qz", "zq", "y "] {
        let plan = pg_search_plan(&pool, needle).await;
        assert!(
            plan.contains("Bitmap Index Scan on users_bigrams"),
            "{needle:?} reads the bigram index:\n{plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{needle:?}:\n{plan}");
    }
    for needle in ["qzw", "rare qzwy 7"] {
        let plan = pg_search_plan(&pool, needle).await;
        assert!(
            plan.contains("Bitmap Index Scan on users_name_trgm"),
            "{needle:?} reads the trigram indexes:\n{plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{needle:?}:\n{plan}");
    }
    // "me" is in every user: the first page is in the first rows, in id order.
    let plan = pg_search_plan(&pool, "me").await;
    assert!(plan.contains("Index Scan using users_pkey"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");

    // /api/search's other candidate queries: the word prefix is a substring search
    // for " " + needle (trigram or bigram index), the name and email prefixes are
    // ranges of a B-tree in "C" order, already sorted.
    for (needle, index) in [(" qzw", "users_name_trgm"), (" q", "users_bigrams")] {
        let plan = pg_search_plan(&pool, needle).await;
        assert!(
            plan.contains(&format!("Bitmap Index Scan on {index}")),
            "{needle:?} reads {index}:\n{plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{needle:?}:\n{plan}");
    }
    for (sql, prefix, index) in [
        (pg::NAME_PREFIX, "rare qz", "users_name_key"),
        (pg::EMAIL_PREFIX, "member12", "users_email_prefix"),
    ] {
        let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
            .bind(prefix)
            .bind(format!("{prefix}\u{10FFFF}"))
            .bind(20_i64)
            .fetch_all(&pool)
            .await
            .unwrap();
        let plan = lines.join("\n");
        assert!(
            plan.contains(&format!("Index Scan using {index}")),
            "{prefix:?} reads {index}:\n{plan}"
        );
        assert!(
            !plan.contains("Seq Scan") && !plan.contains("Sort"),
            "{plan}"
        );
    }

    // And the answers through the API are those matches, in id order.
    let rare = walk_pages(&app, "/api/users?search=QZ&limit=7").await;
    let names: Vec<&str> = rare.iter().map(|u| u["name"].as_str().unwrap()).collect();
    let expected: Vec<String> = (1..=20)
        .map(|k| format!("Rare Qzwy {}", k * 5000))
        .collect();
    assert_eq!(names, expected);
    assert_eq!(
        walk_pages(&app, "/api/users?search=zq").await,
        Vec::<serde_json::Value>::new()
    );
}

/// The users both backends are given for the comparison below: capitals, non-ASCII,
/// LIKE's metacharacters and a backslash, in names and emails.
const MIXED: &[(&str, &str)] = &[
    ("Al Green", "al.green@example.com"),
    ("ALBERT Hall", "bert_hall@example.com"),
    ("Sally_O", "s_o@example.com"),
    ("100% Pure", "pct100@example.com"),
    ("50%_off", "half%off@example.com"),
    ("Back\\Slash", "bs@example.com"),
    ("Zoë ÅSA", "zoe@example.com"),
    ("Åland", "aaland@example.com"),
    ("Q_", "q__q@example.com"),
    ("Plain", "plain@example.org"),
];

/// Every needle's matches, page by page (two a page, so the cursor is used), as
/// emails.
async fn search_everything(app: &TestApp, needles: &[&str]) -> Vec<Vec<String>> {
    let mut answers = Vec::new();
    for needle in needles {
        let query = serde_urlencoded::to_string([("search", needle)]).unwrap();
        let users = walk_pages(app, &format!("/api/users?limit=2&{query}")).await;
        answers.push(
            users
                .iter()
                .map(|u| u["email"].as_str().unwrap().to_owned())
                .collect(),
        );
    }
    answers
}

/// Two-character needles (and their neighbours) give the same users in the same order
/// on SQLite (FTS5 bigram tokens) and PostgreSQL (bigram arrays), and both equal a
/// naive scan: case folded, `%`, `_` and `\` literal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_character_searches_agree_on_both_backends() {
    let needles = [
        "AL", "al", "Ål", "åS", "oë", "_o", "_", "__", "l_", "%", "0%", "%_", "%o", "\\S", "\\",
        "@e", ".c", "zz", "q", "100", "%of", "_hall",
    ];
    let mut backends = vec![Backend::Sqlite];
    if postgres_available("two_character_searches_agree_on_both_backends") {
        backends.push(Backend::Postgres);
    }
    let mut answers = Vec::new();
    for backend in backends {
        let app = spawn_app(backend).await;
        for (name, email) in MIXED {
            app.create_user(name, email).await;
        }
        let everyone = walk_pages(&app, "/api/users?limit=500").await;
        let got = search_everything(&app, &needles).await;
        for (needle, got) in needles.iter().zip(&got) {
            let key = match_key(needle);
            let naive: Vec<&str> = everyone
                .iter()
                .filter(|u| {
                    match_key(u["name"].as_str().unwrap()).contains(&key)
                        || email_key(u["email"].as_str().unwrap()).contains(&key)
                })
                .map(|u| u["email"].as_str().unwrap())
                .collect();
            assert_eq!(got, &naive, "{backend:?}: search {needle:?}");
        }
        answers.push(got);
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "SQLite and PostgreSQL differ"
    );
    assert!(
        answers[0].iter().filter(|a| !a.is_empty()).count() > 15,
        "the needles match"
    );
}

/// On PostgreSQL every order of the directory list, with and without a role filter
/// and a cursor, reads an index range (forwards or backwards) and never sorts or
/// scans the table: 100,000 users (1 in 100 an admin), ANALYZEd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sorted_pages_read_an_index() {
    use switchboard::directory::model::Role;
    use switchboard::directory::order::{ListOrder, Position, Sort};
    use switchboard::store::SortedPage;
    use switchboard::store::sql::{Bind, sorted_page};

    if !postgres_available("postgres_sorted_pages_read_an_index") {
        return;
    }
    let app = spawn_app_with(Backend::Postgres, |c| c.rate.enabled = false).await;
    let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
    sqlx::query(
        "INSERT INTO users (name, email, name_key, email_key, role, created_at, updated_at)
         SELECT n, e, lower(n), lower(e),
                CASE WHEN i % 100 = 0 THEN 'admin' ELSE 'member' END, now(), now()
         FROM generate_series(1, 100000) AS i,
         LATERAL (SELECT 'Member ' || (i % 977) AS n, 'member' || i || '@example.test' AS e) AS u",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE users").execute(&pool).await.unwrap();

    for sort in [Sort::Created, Sort::Name, Sort::Email] {
        for descending in [false, true] {
            for role in [None, Some(Role::Admin), Some(Role::Member)] {
                for after in [
                    None,
                    Some(Position {
                        id: 50_000,
                        key: Some("member 5".into()),
                    }),
                ] {
                    let page = SortedPage {
                        order: ListOrder { sort, descending },
                        role,
                        after,
                        limit: 51,
                    };
                    let (sql, binds) =
                        sorted_page(&page, switchboard::store::postgres::SORT_COLLATION);
                    let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
                        "EXPLAIN {sql}"
                    )));
                    for bind in binds {
                        query = match bind {
                            Bind::Int(n) => query.bind(n),
                            Bind::Text(text) => query.bind(text),
                        };
                    }
                    let plan = query.fetch_all(&pool).await.unwrap().join("\n");
                    assert!(
                        !plan.contains("Sort") && !plan.contains("Seq Scan"),
                        "{sql}:\n{plan}"
                    );
                    assert!(plan.contains("Index"), "{sql}:\n{plan}");
                }
            }
        }
    }
}
