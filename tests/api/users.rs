//! The user directory API: every endpoint, the *compat* shapes, pagination,
//! validation, uniqueness under a race, and hostile input.

use std::collections::BTreeSet;

use serde_json::json;
use switchboard::directory::synthetic;
use switchboard::store::Backend;

use crate::helpers::{
    TestApp, assert_envelope, ids, json_with_status, spawn_app, spawn_app_with, walk_pages,
};
use crate::on_both_backends;

async fn seed(app: &TestApp, count: u64) {
    synthetic::seed(app.state.store.as_ref(), count)
        .await
        .unwrap();
}

async fn the_list_is_a_json_array_of_users(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_user("Alice", "alice@example.com").await;
    let body = json_with_status(app.get("/api/users").await, 200).await;
    assert_eq!(
        body,
        json!([app.admin, created]),
        "the first admin, then the new user"
    );
    let user = &body[1];
    for field in ["id", "name", "email", "role", "created_at", "updated_at"] {
        assert!(!user[field].is_null(), "{field} missing in {user}");
    }
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
}

async fn a_fresh_server_shows_the_three_demo_users(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.database.demo_users = true).await;
    let body = json_with_status(app.get("/api/users").await, 200).await;
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Alice", "Bob", "Charlie", "Admin"]);
}

async fn pagination_walks_every_user_once(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app, 250).await;
    let response = app.get("/api/users?limit=7").await;
    assert_eq!(
        response.headers()["x-total-count"],
        "251",
        "250 and the admin"
    );
    // The count is kept by the store as users come and go (no count(*) per request).
    let extra = app.create_user("Counted", "counted@example.com").await;
    let total = |r: reqwest::Response| r.headers()["x-total-count"].to_str().unwrap().to_owned();
    assert_eq!(total(app.get("/api/users?limit=1").await), "252");
    json_with_status(
        app.delete(&format!("/api/users/{}", extra["id"])).await,
        200,
    )
    .await;
    assert_eq!(total(app.get("/api/users?limit=1").await), "251");
    let ids = ids(&walk_pages(&app, "/api/users?limit=7").await);
    let unique: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), 251, "every user exactly once");
    assert_eq!(unique.len(), 251, "no user twice");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order");
}

async fn pagination_with_a_search_walks_every_match_once(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app, 600).await;
    // Every user whose name or email contains "smith", found the slow way.
    let expected: BTreeSet<i64> = walk_pages(&app, "/api/users?limit=500")
        .await
        .into_iter()
        .filter(|u| {
            format!("{} {}", u["name"], u["email"])
                .to_lowercase()
                .contains("smith")
        })
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert!(expected.len() > 10, "the sample has matches");
    let ids = ids(&walk_pages(&app, "/api/users?search=SMITH&limit=5").await);
    assert_eq!(ids.len(), expected.len(), "no duplicates");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);
}

async fn limits_are_capped_and_bad_cursors_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app, 520).await;
    let body = json_with_status(app.get("/api/users?limit=100000").await, 200).await;
    assert_eq!(body.as_array().unwrap().len(), 500);
    let body = json_with_status(app.get("/api/users").await, 200).await;
    assert_eq!(body.as_array().unwrap().len(), 50, "default page size");
    assert_envelope(
        &json_with_status(app.get("/api/users?limit=0").await, 400).await,
        "invalid_query",
    );
    assert_envelope(
        &json_with_status(app.get("/api/users?limit=ten").await, 400).await,
        "invalid_query",
    );
    assert_envelope(
        &json_with_status(app.get("/api/users?cursor=bogus").await, 400).await,
        "invalid_cursor",
    );
}

async fn search_is_case_insensitive_across_unicode(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("ÄNNE Müller", "anne@example.com").await;
    app.create_user("Bob", "BOB@Example.com").await;
    for (query, expected) in [
        ("änne", "ÄNNE Müller"),
        ("MÜL", "ÄNNE Müller"),
        ("bob@ex", "Bob"),
        ("nn", "ÄNNE Müller"),
    ] {
        let body =
            json_with_status(app.get(&format!("/api/users?search={query}")).await, 200).await;
        let names: Vec<&str> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, [expected], "search {query:?}");
    }
    let body = json_with_status(app.get("/api/users?search=zzz").await, 200).await;
    assert_eq!(body, json!([]));
}

async fn a_user_is_created_read_updated_and_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .post_json(
            "/api/users",
            &json!({"name": "  Dana ", "email": "dana@example.com"}),
        )
        .await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created = json_with_status(response, 201).await;
    assert_eq!(created["name"], "Dana", "trimmed");
    assert_eq!(location, format!("/api/users/{}", created["id"]));

    let read = json_with_status(app.get(&location).await, 200).await;
    assert_eq!(read, created);

    let patched = json_with_status(
        app.patch_json(&location, &json!({"name": "Dana S."})).await,
        200,
    )
    .await;
    assert_eq!(patched["name"], "Dana S.");
    assert_eq!(
        patched["email"], "dana@example.com",
        "PATCH leaves other fields"
    );
    let put = json_with_status(
        app.put_json(&location, &json!({"email": "dana@x.io"}))
            .await,
        200,
    )
    .await;
    assert_eq!(put["name"], "Dana S.", "PUT is partial too, as in the seed");
    assert_eq!(put["email"], "dana@x.io");

    let deleted = json_with_status(app.delete(&location).await, 200).await;
    assert_eq!(deleted, json!({"message": "User deleted successfully"}));
    assert_envelope(
        &json_with_status(app.get(&location).await, 404).await,
        "not_found",
    );
    assert_envelope(
        &json_with_status(app.delete(&location).await, 404).await,
        "not_found",
    );
    assert_envelope(
        &json_with_status(app.patch_json(&location, &json!({"name": "x"})).await, 404).await,
        "not_found",
    );
}

async fn ids_are_never_reused_after_a_delete(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.create_user("A", "a@example.com").await;
    app.delete(&format!("/api/users/{}", first["id"])).await;
    let second = app.create_user("B", "b@example.com").await;
    assert!(second["id"].as_i64() > first["id"].as_i64());
}

async fn the_profile_nests_user_settings_and_stats(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.create_user("Erin", "erin@example.com").await;
    let body = json_with_status(
        app.get(&format!("/api/users/{}/profile", user["id"])).await,
        200,
    )
    .await;
    assert_eq!(
        body,
        json!({
            "user": {"id": user["id"], "name": "Erin", "email": "erin@example.com"},
            "settings": {"theme": "system", "notifications": true, "notify_mentions": true, "notify_admin_changes": true},
            "stats": {"posts": 0, "followers": 0, "following": 0}
        })
    );
    assert_envelope(
        &json_with_status(app.get("/api/users/999/profile").await, 404).await,
        "not_found",
    );
}

async fn validation_names_each_bad_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json_with_status(app.post_json("/api/users", &json!({})).await, 422).await;
    assert_envelope(&body, "validation_failed");
    assert_eq!(
        body["fields"],
        json!({"name": "is required", "email": "is required"})
    );

    let body = json_with_status(
        app.post_json(
            "/api/users",
            &json!({"name": "   ", "email": "not-an-email"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(body["fields"]["name"], "is required");
    assert_eq!(body["fields"]["email"], "is not a valid email address");

    let body = json_with_status(
        app.post_json("/api/users", &json!({"name": 7, "email": ["a@b.co"]}))
            .await,
        422,
    )
    .await;
    assert_eq!(
        body["fields"],
        json!({"name": "must be a string", "email": "must be a string"})
    );

    let user = app.create_user("Fay", "fay@example.com").await;
    let body = json_with_status(
        app.patch_json(
            &format!("/api/users/{}", user["id"]),
            &json!({"name": null}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(body["fields"]["name"], "cannot be null");
    let unchanged =
        json_with_status(app.get(&format!("/api/users/{}", user["id"])).await, 200).await;
    assert_eq!(unchanged, user, "a refused update changes nothing");
}

async fn emails_are_unique_case_insensitively(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("Gus", "gus@example.com").await;
    let body = json_with_status(
        app.post_json(
            "/api/users",
            &json!({"name": "G", "email": "GUS@Example.COM"}),
        )
        .await,
        409,
    )
    .await;
    assert_envelope(&body, "conflict");
    assert_eq!(body["fields"]["email"], "is already taken");

    let other = app.create_user("Hal", "hal@example.com").await;
    let body = json_with_status(
        app.patch_json(
            &format!("/api/users/{}", other["id"]),
            &json!({"email": "Gus@example.com"}),
        )
        .await,
        409,
    )
    .await;
    assert_envelope(&body, "conflict");
    // Non-ASCII case folding too (SQLite's own lower() would miss this one).
    // (Internationalised domains are valid; local parts are ASCII, as in browsers.)
    app.create_user("Öz", "oz@ÖZ-Straße.example").await;
    json_with_status(
        app.post_json(
            "/api/users",
            &json!({"name": "oz", "email": "OZ@öz-STRASSE.example"}),
        )
        .await,
        201,
    )
    .await;
    json_with_status(
        app.post_json(
            "/api/users",
            &json!({"name": "oz", "email": "OZ@öz-straße.EXAMPLE"}),
        )
        .await,
        409,
    )
    .await;
}

async fn racing_creates_with_one_email_give_one_201_and_409s(backend: Backend) {
    let app = spawn_app(backend).await;
    let attempts = (0..8).map(|i| {
        let client = app.client.clone();
        let url = app.url("/api/users");
        async move {
            client
                .post(url)
                .json(&json!({"name": format!("Racer {i}"), "email": "race@example.com"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let mut statuses = futures_util::future::join_all(attempts).await;
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    let body = json_with_status(app.get("/api/users?search=race@").await, 200).await;
    assert_eq!(body.as_array().unwrap().len(), 1);
}

async fn unicode_and_hostile_strings_are_stored_verbatim(backend: Backend) {
    let app = spawn_app(backend).await;
    let names = [
        "Zoë Ångström-Øster",
        "李小龍",
        "مريم",
        "👩‍💻 Dev",
        "Robert'); DROP TABLE users;--",
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "\" OR 1=1 --",
        "%_\\ like wildcards",
        "e\u{301}", // a combining accent
    ];
    for (i, name) in names.iter().enumerate() {
        let created = app
            .create_user(name, &format!("hostile{i}@example.com"))
            .await;
        let read =
            json_with_status(app.get(&format!("/api/users/{}", created["id"])).await, 200).await;
        assert_eq!(read["name"], *name);
    }
    let body = json_with_status(app.get("/api/users?search=hostile&limit=500").await, 200).await;
    assert_eq!(
        body.as_array().unwrap().len(),
        names.len(),
        "the table is still there"
    );
    // LIKE wildcards in a search are literal characters.
    let body = json_with_status(app.get("/api/users?search=%25_").await, 200).await;
    assert_eq!(body.as_array().unwrap().len(), 1, "{body}");
}

async fn hostile_strings_that_break_the_rules_get_422_never_500(backend: Backend) {
    let app = spawn_app(backend).await;
    let long = "x".repeat(101);
    let huge = "y".repeat(100_000);
    for (name, email) in [
        ("nul\u{0}byte", "a@example.com"),
        ("bell\u{7}", "b@example.com"),
        (long.as_str(), "c@example.com"),
        (huge.as_str(), "d@example.com"),
        ("Ok", "nul\u{0}@example.com"),
        ("Ok", "a@b@c"),
        ("Ok", huge.as_str()),
    ] {
        let body = json_with_status(
            app.post_json("/api/users", &json!({"name": name, "email": email}))
                .await,
            422,
        )
        .await;
        assert_envelope(&body, "validation_failed");
    }
    app.create_user(&"x".repeat(100), "max@example.com").await;
}

async fn autocomplete_suggests_up_to_five_distinct_names(backend: Backend) {
    let app = spawn_app(backend).await;
    for (i, name) in [
        "Alice", "Alicia", "Alina", "Albert", "Alfred", "Alvin", "Bob", "ÄLTER",
    ]
    .iter()
    .enumerate()
    {
        app.create_user(name, &format!("u{i}@example.com")).await;
    }
    app.create_user("Alice", "another.alice@example.com").await;
    let body = json_with_status(app.get("/api/autocomplete?q=al").await, 200).await;
    assert_eq!(
        body,
        json!(["Albert", "Alfred", "Alice", "Alicia", "Alina"])
    );
    let body = json_with_status(app.get("/api/autocomplete?q=ALI&limit=10").await, 200).await;
    assert_eq!(body, json!(["Alice", "Alicia", "Alina"]));
    // Accents fold as in search: "äl" is "al", and "alt" finds "ÄLTER".
    let body = json_with_status(app.get("/api/autocomplete?q=äl").await, 200).await;
    assert_eq!(
        body,
        json!(["Albert", "Alfred", "Alice", "Alicia", "Alina"])
    );
    let body = json_with_status(app.get("/api/autocomplete?q=alt").await, 200).await;
    assert_eq!(body, json!(["ÄLTER"]));
    for short in ["", "a", "%20a"] {
        let body =
            json_with_status(app.get(&format!("/api/autocomplete?q={short}")).await, 200).await;
        assert_eq!(body, json!([]), "q={short:?}");
    }
}

async fn search_ranks_the_best_matches_first(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("Malice", "m@example.com").await;
    app.create_user("Bob Alison", "b@example.com").await;
    app.create_user("Alice Smith", "as@example.com").await;
    app.create_user("Ali", "ali@example.com").await;
    let body = json_with_status(app.get("/api/search?q=ali").await, 200).await;
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ali", "Alice Smith", "Bob Alison", "Malice"]);
    assert_eq!(
        json_with_status(app.get("/api/search?q=").await, 200).await,
        json!([])
    );
}

async fn trailing_slashes_are_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.create_user("Ivy", "ivy@example.com").await;
    json_with_status(app.get("/api/users/").await, 200).await;
    let body = json_with_status(app.get(&format!("/api/users/{}/", user["id"])).await, 200).await;
    assert_eq!(body, user);
    json_with_status(
        app.post_json(
            "/api/users/",
            &json!({"name": "J", "email": "j@example.com"}),
        )
        .await,
        201,
    )
    .await;
}

/// Search sees every create, rename and delete as soon as it is answered, also when
/// many land in one group commit (they are sent at once) and when one user is
/// created and renamed in quick succession. On SQLite the trigram index must then
/// agree with the users table exactly, with nothing left waiting to be applied.
async fn search_follows_creates_renames_and_deletes_at_once(backend: Backend) {
    // 70 writes at once: more than the per-account write budget allows.
    let app = &spawn_app_with(backend, |c| c.rate.enabled = false).await;
    let create = |name: String, email: String| async move {
        app.create_user(&name, &email).await["id"].as_i64().unwrap()
    };
    let rename = |id: i64, name: String| async move {
        let path = format!("/api/users/{id}");
        let response = app.patch_json(&path, &json!({ "name": name })).await;
        assert_eq!(response.status(), 200, "renaming {id}");
    };
    let ids_of: Vec<i64> = futures_util::future::join_all(
        (0..30).map(|i| create(format!("Quokka {i}"), format!("q{i}@zoo.example"))),
    )
    .await;
    // 0..10 renamed, 10..20 deleted, 20..30 left alone; and 10 more created and
    // renamed straight away, all at once.
    let renames = (0..10).map(|i| rename(ids_of[i], format!("Wombat {i}")));
    let deletes = ids_of[10..20].iter().map(|id| async move {
        let response = app.delete(&format!("/api/users/{id}")).await;
        assert_eq!(response.status(), 200);
    });
    let churn = (0..10).map(|i| async move {
        let id = create(format!("Quokka late {i}"), format!("late{i}@zoo.example")).await;
        rename(id, format!("Wombat late {i}")).await;
        id
    });
    let (_, _, mut late) = futures_util::join!(
        futures_util::future::join_all(renames),
        futures_util::future::join_all(deletes),
        futures_util::future::join_all(churn),
    );
    late.sort();

    let found = |query: &'static str| async move {
        let mut got = ids(&walk_pages(app, &format!("/api/users?search={query}&limit=7")).await);
        got.sort();
        got
    };
    let mut quokkas: Vec<i64> = ids_of[20..30].to_vec();
    quokkas.sort();
    let mut wombats: Vec<i64> = ids_of[0..10].iter().chain(&late).copied().collect();
    wombats.sort();
    // On SQLite three letters and more go through the trigram index, two through the
    // bigram index.
    assert_eq!(found("quokka").await, quokkas);
    assert_eq!(found("qu").await, quokkas);
    assert_eq!(found("wombat").await, wombats);
    assert_eq!(found("wo").await, wombats);
    assert_eq!(found("late").await, late);
    assert_eq!(found("zoo.example").await.len(), 30, "emails are unchanged");

    if backend == Backend::Sqlite {
        let path = app.db.url.trim_start_matches("sqlite://");
        let conn = rusqlite::Connection::open(path).unwrap();
        let pending: i64 = conn
            .query_row("SELECT count(*) FROM users_fts_pending", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(pending, 0, "every change was applied before its commit");
        // rank = 1: compare the index with the users table, not only with itself.
        conn.execute(
            "INSERT INTO users_fts (users_fts, rank) VALUES ('integrity-check', 1)",
            [],
        )
        .expect("the trigram index agrees with the users table");
    }
}

on_both_backends!(
    the_list_is_a_json_array_of_users,
    a_fresh_server_shows_the_three_demo_users,
    pagination_walks_every_user_once,
    pagination_with_a_search_walks_every_match_once,
    limits_are_capped_and_bad_cursors_refused,
    search_is_case_insensitive_across_unicode,
    a_user_is_created_read_updated_and_deleted,
    ids_are_never_reused_after_a_delete,
    the_profile_nests_user_settings_and_stats,
    validation_names_each_bad_field,
    emails_are_unique_case_insensitively,
    racing_creates_with_one_email_give_one_201_and_409s,
    unicode_and_hostile_strings_are_stored_verbatim,
    hostile_strings_that_break_the_rules_get_422_never_500,
    autocomplete_suggests_up_to_five_distinct_names,
    search_ranks_the_best_matches_first,
    search_follows_creates_renames_and_deletes_at_once,
    trailing_slashes_are_accepted,
    sorted_and_filtered_lists_page_through_ties_once,
    bad_sorts_roles_and_mixed_cursors_are_400s,
);

/// Every order and role filter of `GET /api/users`, paged three at a time: each
/// user of the filter exactly once, in the order asked for, ties (one name, in
/// several spellings of case) broken by id; the `Link` keeps the order and role.
async fn sorted_and_filtered_lists_page_through_ties_once(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app, 40).await;
    for (i, name) in ["Ann", "ann", "ANN", "Ann", "Zed", "ann"]
        .iter()
        .enumerate()
    {
        app.create_user(name, &format!("ann{i}@example.com")).await;
    }
    for (name, email) in [
        ("Ann", "b-admin@example.com"),
        ("Yve", "a-admin@example.com"),
    ] {
        let body = json!({"name": name, "email": email, "role": "admin"});
        json_with_status(app.post_json("/api/users", &body).await, 201).await;
    }
    let everyone = walk_pages(&app, "/api/users?limit=500").await;
    let key = |user: &serde_json::Value, field: &str| {
        switchboard::directory::model::match_key(user[field].as_str().unwrap())
    };
    for role in [None, Some("admin"), Some("member")] {
        for sort in ["name", "email", "created"] {
            for order in ["asc", "desc"] {
                let mut expected: Vec<&serde_json::Value> = everyone
                    .iter()
                    .filter(|u| role.is_none_or(|r| u["role"] == r))
                    .collect();
                expected.sort_by_key(|u| {
                    let id = u["id"].as_i64().unwrap();
                    match sort {
                        "name" => (key(u, "name"), id),
                        "email" => (key(u, "email"), id),
                        _ => (String::new(), id),
                    }
                });
                if order == "desc" {
                    expected.reverse();
                }
                let mut path = format!("/api/users?limit=3&sort={sort}&order={order}");
                if let Some(role) = role {
                    path.push_str(&format!("&role={role}"));
                }
                let listed = walk_pages(&app, &path).await;
                assert_eq!(
                    ids(&listed),
                    expected
                        .iter()
                        .map(|u| u["id"].as_i64().unwrap())
                        .collect::<Vec<_>>(),
                    "{path}"
                );
                let unique: BTreeSet<i64> = ids(&listed).into_iter().collect();
                assert_eq!(unique.len(), listed.len(), "{path}: once each");
            }
        }
    }
    // The whole list has a total; one role's has none (it is not kept by a trigger).
    let response = app.get("/api/users?sort=name").await;
    assert_eq!(response.headers()["x-total-count"], "49");
    let response = app.get("/api/users?role=admin").await;
    assert!(response.headers().get("x-total-count").is_none());
    assert_eq!(
        json_with_status(response, 200)
            .await
            .as_array()
            .unwrap()
            .len(),
        3,
        "two and the first admin"
    );
}

async fn bad_sorts_roles_and_mixed_cursors_are_400s(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app, 10).await;
    for (query, code) in [
        ("sort=id", "invalid_query"),
        ("sort=NAME", "invalid_query"),
        ("sort=name&order=down", "invalid_query"),
        ("role=owner", "invalid_query"),
        ("role=Admin", "invalid_query"),
        ("search=an&sort=name", "invalid_query"),
        ("search=an&role=admin", "invalid_query"),
    ] {
        let body = json_with_status(app.get(&format!("/api/users?{query}")).await, 400).await;
        assert_envelope(&body, code);
    }
    // A cursor belongs to its order: another order refuses it rather than misread it.
    let response = app.get("/api/users?limit=2&sort=name").await;
    let link = response.headers()["link"].to_str().unwrap().to_owned();
    let cursor = link
        .split("cursor=")
        .nth(1)
        .unwrap()
        .split('>')
        .next()
        .unwrap();
    for other in ["sort=email", "sort=name&order=desc", "sort=created"] {
        let body = json_with_status(
            app.get(&format!("/api/users?{other}&cursor={cursor}"))
                .await,
            400,
        )
        .await;
        assert_envelope(&body, "invalid_cursor");
    }
    // Blank parameters are the defaults.
    json_with_status(app.get("/api/users?sort=&order=&role=").await, 200).await;
}
