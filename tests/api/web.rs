//! The browser UI's server side: the directory page and its form posts (with
//! JavaScript off this is the whole UI), escaping, roles, errors as HTML pages, and
//! the embedded static files.

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};
use serde_json::{Value, json};
use switchboard::directory::synthetic;
use switchboard::store::Backend;

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_envelope, install_crypto, json_with_status,
    spawn_app,
};
use crate::on_both_backends;

const HOSTILE: &str = "<img src=x onerror=alert(1)>";
const HOSTILE_ESCAPED: &str = "&#60;img src=x onerror=alert(1)&#62;";

/// Posts a form as a browser does (the test client sends our `Origin`).
async fn post_form(
    client: &reqwest::Client,
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    client
        .post(app.url(path))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(fields).unwrap())
        .send()
        .await
        .expect("request sent")
}

/// The HTML of a page, with its status and type checked.
async fn html(response: reqwest::Response, status: u16) -> String {
    let actual = response.status().as_u16();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {body}");
    assert!(
        content_type.starts_with("text/html"),
        "{content_type}: {body}"
    );
    body
}

fn location(response: &reqwest::Response) -> &str {
    response.headers().get(LOCATION).unwrap().to_str().unwrap()
}

async fn anonymous_visitors_are_sent_to_the_login_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let anonymous = app.anonymous();
    for (path, next) in [
        ("/", "%2F"),
        ("/?search=al", "%2F%3Fsearch%3Dal"),
        ("/users/1/edit", "%2Fusers%2F1%2Fedit"),
        ("/chat", "%2Fchat"),
        ("/chat?room=dev", "%2Fchat%3Froom%3Ddev"),
    ] {
        let response = anonymous.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&response), format!("/login?next={next}"), "{path}");
    }
    let response = post_form(
        &anonymous,
        &app,
        "/users",
        &[("name", "X"), ("email", "x@example.com")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/login"));
    let users = json_with_status(app.get("/api/users").await, 200).await;
    assert_eq!(
        users.as_array().unwrap().len(),
        1,
        "only the admin: {users}"
    );
}

async fn hostile_names_are_escaped_on_every_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.create_user(HOSTILE, "xss@example.com").await;
    let id = user["id"].as_i64().unwrap();
    for path in [
        "/".to_owned(),
        format!("/?search={}", urlencode(HOSTILE)),
        format!("/users/{id}/edit"),
    ] {
        let body = html(app.get(&path).await, 200).await;
        assert!(
            body.contains(HOSTILE_ESCAPED),
            "{path}: the name is not shown escaped:\n{body}"
        );
        assert!(!body.contains("<img"), "{path}: markup from data:\n{body}");
    }
    // Re-rendered forms escape what was typed, too.
    let response = post_form(
        &app.client,
        &app,
        "/users",
        &[("name", HOSTILE), ("email", "\"><script>")],
    )
    .await;
    let body = html(response, 422).await;
    assert!(body.contains(HOSTILE_ESCAPED));
    assert!(
        !body.contains("\"><script>"),
        "an attribute was closed: {body}"
    );
    assert!(
        body.contains("value=\"&#34;&#62;&#60;script&#62;\""),
        "{body}"
    );
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("q", text)]).unwrap()[2..].to_owned()
}

async fn a_created_user_is_listed_after_the_redirect(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = post_form(
        &app.client,
        &app,
        "/users",
        &[
            ("name", "Dana"),
            ("email", "dana@example.com"),
            ("role", "member"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/?done=created");
    let page = app.get("/?done=created").await;
    assert_eq!(page.headers()[CACHE_CONTROL], "private, no-cache");
    let body = html(page, 200).await;
    assert!(body.contains("User added."), "{body}");
    assert!(body.contains(">Dana</td>"), "{body}");
    assert!(body.contains("dana@example.com"));
}

async fn invalid_input_comes_back_in_the_form_with_its_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = post_form(
        &app.client,
        &app,
        "/users",
        &[("name", "Nora"), ("email", "nope")],
    )
    .await;
    let body = html(response, 422).await;
    assert!(body.contains("is not a valid email address"), "{body}");
    assert!(
        body.contains(r#"value="Nora""#),
        "what was typed is kept: {body}"
    );
    assert!(body.contains(r#"aria-invalid="true""#));

    // A missing field and a taken email are named too (the latter with 409).
    let body = html(
        post_form(
            &app.client,
            &app,
            "/users",
            &[("email", "nora@example.com")],
        )
        .await,
        422,
    )
    .await;
    assert!(body.contains("is required"), "{body}");
    app.create_user("Nora", "nora@example.com").await;
    let body = html(
        post_form(
            &app.client,
            &app,
            "/users",
            &[("name", "Nora 2"), ("email", "NORA@example.com")],
        )
        .await,
        409,
    )
    .await;
    assert!(body.contains("is already taken"), "{body}");

    // The edit form the same way.
    let id = app.admin_id();
    let body = html(
        post_form(
            &app.client,
            &app,
            &format!("/users/{id}"),
            &[("name", ""), ("email", "admin@example.com")],
        )
        .await,
        422,
    )
    .await;
    assert!(body.contains("is required"), "{body}");
    assert!(body.contains(&format!(r#"action="/users/{id}""#)));
}

async fn edit_and_delete_work_through_forms(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.create_user("Eve", "eve@example.com").await;
    let id = user["id"].as_i64().unwrap();
    let response = post_form(
        &app.client,
        &app,
        &format!("/users/{id}"),
        &[
            ("name", "Eve Edited"),
            ("email", "eve@example.com"),
            ("role", "member"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/?done=updated");
    let stored = json_with_status(app.get(&format!("/api/users/{id}")).await, 200).await;
    assert_eq!(stored["name"], "Eve Edited");

    // Without a script, Delete first asks on a page of its own, which deletes nothing.
    let confirm = html(app.get(&format!("/users/{id}/delete")).await, 200).await;
    assert!(
        confirm.contains("Delete <bdi>Eve Edited</bdi>?"),
        "{confirm}"
    );
    assert!(confirm.contains(&format!("action=\"/users/{id}/delete\"")));
    json_with_status(app.get(&format!("/api/users/{id}")).await, 200).await;
    let response = post_form(&app.client, &app, &format!("/users/{id}/delete"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/?done=deleted");
    html(app.get(&format!("/users/{id}/delete")).await, 404).await;
    json_with_status(app.get(&format!("/api/users/{id}")).await, 404).await;

    // Failures are HTML pages with the API's statuses.
    let body = html(
        post_form(
            &app.client,
            &app,
            &format!("/users/{}/delete", app.admin_id()),
            &[],
        )
        .await,
        409,
    )
    .await;
    assert!(body.contains("only admin"), "{body}");
    html(
        post_form(&app.client, &app, &format!("/users/{id}/delete"), &[]).await,
        404,
    )
    .await;
    html(
        post_form(&app.client, &app, "/users/abc/delete", &[]).await,
        404,
    )
    .await;
    html(app.get("/users/999999/edit").await, 404).await;
    html(app.get("/?cursor=not-ours").await, 400).await;
}

async fn members_may_edit_only_themselves_and_never_create_or_delete(backend: Backend) {
    let app = spawn_app(backend).await;
    let (member, client) = app.member("Mia", "mia@example.com").await;
    let other = app.create_user("Olaf", "olaf@example.com").await;
    let (mid, oid) = (
        member["id"].as_i64().unwrap(),
        other["id"].as_i64().unwrap(),
    );

    let body = html(client.get(app.url("/")).send().await.unwrap(), 200).await;
    assert!(
        body.contains(&format!("/users/{mid}/edit")),
        "own edit link: {body}"
    );
    assert!(
        !body.contains(&format!("/users/{oid}/edit")),
        "no edit link for others"
    );
    assert!(!body.contains("/delete"), "members see no delete");
    assert!(!body.contains("create-form"), "members see no create form");

    html(
        post_form(
            &client,
            &app,
            "/users",
            &[("name", "X"), ("email", "x@example.com")],
        )
        .await,
        403,
    )
    .await;
    html(
        post_form(
            &client,
            &app,
            &format!("/users/{oid}"),
            &[("name", "Hacked")],
        )
        .await,
        403,
    )
    .await;
    html(
        post_form(&client, &app, &format!("/users/{oid}/delete"), &[]).await,
        403,
    )
    .await;
    html(
        client
            .get(app.url(&format!("/users/{oid}/delete")))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    html(
        client
            .get(app.url(&format!("/users/{oid}/edit")))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;

    // A role slipped into a member's own form is ignored, not obeyed.
    let response = post_form(
        &client,
        &app,
        &format!("/users/{mid}"),
        &[
            ("name", "Mia M"),
            ("email", "mia@example.com"),
            ("role", "admin"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let stored: Value = json_with_status(app.get(&format!("/api/users/{mid}")).await, 200).await;
    assert_eq!(stored["name"], "Mia M");
    assert_eq!(stored["role"], "member");
}

async fn the_page_links_to_the_next_keyset_page(backend: Backend) {
    let app = spawn_app(backend).await;
    synthetic::seed(app.state.store.as_ref(), 55).await.unwrap();
    let body = html(app.get("/").await, 200).await;
    assert_eq!(body.matches("<tr data-id=").count(), 50);
    assert!(body.contains("56 users"), "{body}");
    let start = body
        .find(r#"<a href="/?cursor="#)
        .expect("a next-page link")
        + 9;
    let href = &body[start..start + body[start..].find('"').unwrap()];
    let second = html(app.get(&href.replace("&amp;", "&")).await, 200).await;
    assert_eq!(second.matches("<tr data-id=").count(), 6);
    assert!(
        !second.contains("Next page"),
        "the last page has no next link"
    );
    assert!(second.contains("First page"));
}

async fn static_files_are_served_with_their_types_and_etags(backend: Backend) {
    let app = spawn_app(backend).await;
    let anonymous = app.anonymous();
    for (path, content_type) in [
        ("/static/app.css", "text/css; charset=utf-8"),
        ("/static/directory.js", "text/javascript; charset=utf-8"),
        ("/static/ajax.js", "text/javascript; charset=utf-8"),
    ] {
        let response = anonymous.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers[CONTENT_TYPE], content_type, "{path}");
        assert_eq!(headers[CACHE_CONTROL], "no-cache", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let etag = headers[ETAG].to_str().unwrap().to_owned();
        assert!(!response.text().await.unwrap().is_empty());
        let again = anonymous
            .get(app.url(path))
            .header(IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    let response = anonymous
        .get(app.url("/static/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = anonymous
        .get(app.url("/static/%2e%2e/Cargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// Every page's frame (base.html) carries the viewer's theme setting, as written
/// through the settings API, so the page never flashes in the other theme.
async fn pages_carry_the_viewers_theme(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = html(app.get("/").await, 200).await;
    assert!(
        body.contains(r#"<html lang="en" data-theme="system">"#),
        "{body}"
    );
    let id = app.admin_id();
    let settings = format!("/api/users/{id}/settings");
    let response = app.patch_json(&settings, &json!({"theme": "dark"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    for path in [
        "/".to_owned(),
        format!("/users/{id}/edit"),
        format!("/users/{id}/delete"),
        "/chat".to_owned(),
        "/account".to_owned(),
    ] {
        let body = html(app.get(&path).await, 200).await;
        assert!(
            body.contains(r#"<html lang="en" data-theme="dark">"#),
            "{path}: {body}"
        );
    }
}

/// A client with cookies but none of the headers browsers add (`Origin`,
/// `Sec-Fetch-Site`), like an old browser or a privacy extension that strips them.
fn headerless_client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn csrf_field(page: &str) -> String {
    let marker = r#"name="csrfmiddlewaretoken" value=""#;
    let start = page.find(marker).expect("a csrfmiddlewaretoken field") + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

async fn forms_without_origin_headers_pass_on_their_csrf_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = headerless_client();
    let response = post_form(
        &client,
        &app,
        "/login",
        &[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let token = csrf_field(&html(client.get(app.url("/")).send().await.unwrap(), 200).await);
    let user = [("name", "Fay"), ("email", "fay@example.com")];

    // Neither header nor field: refused, as before.
    let response = post_form(&client, &app, "/users", &user).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let with = |token: &str| {
        let mut fields = user.to_vec();
        fields.push(("csrfmiddlewaretoken", token));
        serde_urlencoded::to_string(fields).unwrap()
    };
    // A wrong token, or the right one from another site, is refused too.
    for (token, site) in [("forged.token", None), (token.as_str(), Some("cross-site"))] {
        let mut request = client
            .post(app.url("/users"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(with(token));
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{token} {site:?}");
    }
    let users = json_with_status(app.get("/api/users?search=fay").await, 200).await;
    assert_eq!(users, serde_json::json!([]));

    // The page's own token in the form's field passes, and the form's fields still arrive.
    let response = client
        .post(app.url("/users"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(with(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let users = json_with_status(app.get("/api/users?search=fay").await, 200).await;
    assert_eq!(users[0]["name"], "Fay");

    // Logging out is a form too.
    let response = post_form(&client, &app, "/logout", &[("csrfmiddlewaretoken", &token)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = client.get(app.url("/")).send().await.unwrap();
    assert!(location(&response).starts_with("/login"));
}

async fn browsers_get_html_error_pages_and_the_api_keeps_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let as_browser = |request: reqwest::RequestBuilder| {
        request
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
    };
    // Refused by the CSRF check, before any page handler runs.
    let response = as_browser(
        app.client
            .post(app.url("/users"))
            .header("sec-fetch-site", "cross-site")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("name=X&email=x%40example.com"),
    )
    .await
    .unwrap();
    let page = html(response, 403).await;
    assert!(page.contains("Cross-site request refused"), "{page}");
    // An unknown page.
    let page = html(
        as_browser(app.client.get(app.url("/no-such-page")))
            .await
            .unwrap(),
        404,
    )
    .await;
    assert!(page.contains("Not found"), "{page}");
    // The error page is base.html's frame (theme script, header, skip link), without
    // what needs a session: it is also shown to visitors who have none.
    for part in [
        r#"data-theme="system""#,
        "/static/theme.js",
        r#"class="topbar""#,
    ] {
        assert!(page.contains(part), "{part}: {page}");
    }
    for part in [r#"action="/logout""#, r#"id="bell""#, "/static/bell.js"] {
        assert!(!page.contains(part), "{part}: {page}");
    }
    // The API answers JSON whatever the Accept header says.
    let response = as_browser(app.client.get(app.url("/api/no-such-thing")))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_envelope(&response.json().await.unwrap(), "not_found");
}

/// The `data-position` the directory page was rendered with.
fn rendered_position(body: &str) -> i64 {
    let start = body.find("data-position=\"").expect("a data-position") + 15;
    body[start..start + body[start..].find('"').unwrap()]
        .parse()
        .unwrap()
}

async fn the_directory_page_carries_the_position_it_reflects(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = rendered_position(&html(app.get("/").await, 200).await);
    let listed = app.get("/api/users").await;
    let header: i64 = listed.headers()["switchboard-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(before, header, "the page and the API agree");
    app.create_user("Live Lena", "lena@example.com").await;
    let after = rendered_position(&html(app.get("/").await, 200).await);
    assert_eq!(after, before + 1, "one write, one event");
}

async fn the_chat_page_is_a_shell_for_the_room_asked_for(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = html(app.get("/chat").await, 200).await;
    assert!(body.contains(r#"data-room="general""#), "{body}");
    assert!(body.contains(r#"src="/static/chat.js""#), "{body}");
    assert!(
        body.contains(r#"<a href="/chat" aria-current="page">Chat</a>"#),
        "the nav marks the page: {body}"
    );
    assert!(body.contains(r#"<a href="/" >Directory</a>"#), "{body}");
    let body = html(app.get("/chat?room=dev.team-1").await, 200).await;
    assert!(body.contains(r#"data-room="dev.team-1""#), "{body}");
    assert!(body.contains("#dev.team-1"), "{body}");
    for bad in ["%3Cb%3E", "-dash", "a%20b"] {
        let body = html(app.get(&format!("/chat?room={bad}")).await, 400).await;
        assert!(body.contains("room name"), "{bad}: {body}");
    }
    let directory = html(app.get("/").await, 200).await;
    assert!(
        directory.contains(r#"<a href="/" aria-current="page">Directory</a>"#),
        "{directory}"
    );
}

on_both_backends!(
    the_directory_page_carries_the_position_it_reflects,
    the_chat_page_is_a_shell_for_the_room_asked_for,
    browsers_get_html_error_pages_and_the_api_keeps_json,
    forms_without_origin_headers_pass_on_their_csrf_field,
    pages_carry_the_viewers_theme,
    anonymous_visitors_are_sent_to_the_login_page,
    hostile_names_are_escaped_on_every_page,
    a_created_user_is_listed_after_the_redirect,
    invalid_input_comes_back_in_the_form_with_its_error,
    edit_and_delete_work_through_forms,
    members_may_edit_only_themselves_and_never_create_or_delete,
    the_page_links_to_the_next_keyset_page,
    static_files_are_served_with_their_types_and_etags,
);

/// `next` on the login page leads only to a path on this site: hostile values (a tab
/// or newline that browsers drop, `//host`, backslashes, their percent-encoded
/// forms) send the visitor to `/`, on GET and POST, and never give a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_next_leads_only_to_paths_on_this_site() {
    let app = spawn_app(Backend::Sqlite).await;
    const HOSTILE: [&str; 10] = [
        "/%09/evil.example/",
        "/%0A/evil.example/",
        "/%0D%0ASet-Cookie:%20x=y",
        "%09//evil.example/",
        "//evil.example/",
        "/%5Cevil.example/",
        "/%255C%255Cevil.example",
        "/%252F/evil.example",
        "https://evil.example/",
        "/%00",
    ];
    // Signed in: GET /login redirects at once.
    for next in HOSTILE {
        let response = app.get(&format!("/login?next={next}")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(location(&response), "/", "{next}");
    }
    for (next, to) in [
        ("%2Fchat%3Froom%3Ddev", "/chat?room=dev"),
        ("/chat%3Froom%3Dcaf%C3%A9", "/chat?room=caf%C3%A9"),
    ] {
        let response = app.get(&format!("/login?next={next}")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(location(&response), to);
    }

    // Anonymous: the form carries `/` instead of the hostile value.
    let anonymous = app.anonymous();
    for next in HOSTILE {
        let response = anonymous
            .get(app.url(&format!("/login?next={next}")))
            .send()
            .await
            .unwrap();
        let page = html(response, 200).await;
        assert!(page.contains(r#"name="next" value="/""#), "{next}: {page}");
        assert!(!page.contains("evil.example"), "{next}");
    }

    // POST /login: the right password with a hostile next lands on `/`, a 303 (once
    // a 500 carrying the new session's cookie); the wrong one renders the form again.
    for next in [
        "/\t/evil.example/",
        "/\n/evil.example/",
        "/\r\nx: y",
        "//evil.example",
    ] {
        let client = app.anonymous();
        let fields = [
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("next", next),
        ];
        let response = post_form(&client, &app, "/login", &fields).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(location(&response), "/", "{next:?}");
        let fields = [
            ("email", ADMIN_EMAIL),
            ("password", "wrong"),
            ("next", next),
        ];
        let response = post_form(&client, &app, "/login", &fields).await;
        assert!(
            !response
                .headers()
                .get_all("set-cookie")
                .iter()
                .any(|c| c.to_str().unwrap().starts_with("sb_session=")),
            "{next:?}"
        );
        let page = html(response, 401).await;
        assert!(!page.contains("evil.example"), "{next:?}");
    }
}
