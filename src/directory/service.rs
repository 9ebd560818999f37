//! The directory's operations, one place for each rule, whoever asks (the JSON API,
//! the HTML forms, the account page, the CLI):
//!
//! - [`Directory`] does the writes on a store: who may change what, the password
//!   policy, hashing, and the store call. The last-admin rule is the store's, checked
//!   inside the write's own transaction (see `is_last_admin` in each backend), so two
//!   admins demoting or deleting each other at the same moment cannot both succeed;
//!   here it becomes a 409.
//! - [`create_user`], [`update_user`] and [`delete_user`] are those writes for a
//!   running server: they also tell the hub (the `directory` room's event, the end of
//!   realtime connections authorized by a role or credential that changed, the
//!   notification to a user an admin changed).
//! - [`list_page`], [`suggest_names`] and [`search`] are the reads: ordering and
//!   filtering by [`super::order`], paging by [`super::cursor`], ranking by
//!   [`super::search`].

use super::cursor;
use super::events::{Change, event_of};
use super::input::Password;
use super::model::{NewUser, Role, User, UserChanges, email_key, match_key};
use super::order::{ListOrder, Position};
use super::search::{Needle, search_users};
use crate::AppState;
use crate::auth::{Credential, Identity, password};
use crate::error::ApiError;
use crate::hub::message::{Author, Message};
use crate::hub::{EndReason, Ending, Revoked};
use crate::store::{EndedCredentials, NewPassword, SortedPage, Store, UserPage};

/// Autocomplete stays quiet below this many characters: one letter matches too much
/// to help anyone.
const MIN_SUGGEST_CHARS: usize = 2;

/// The directory's writes on `store`, judged by `policy`.
#[derive(Clone, Copy)]
pub struct Directory<'a> {
    pub store: &'a dyn Store,
    pub policy: &'a password::Policy,
}

/// What an update did, for the caller to announce.
#[derive(Debug)]
pub struct Updated {
    pub user: User,
    /// The `directory` room's event, when a field others see changed.
    pub event: Option<Message>,
    /// The role changed: connections authorized with the old one must end.
    pub role_changed: bool,
    /// A password was set: the sessions and tokens that ended with the old one.
    pub ended: Option<EndedCredentials>,
}

impl<'a> Directory<'a> {
    pub fn of(state: &'a AppState) -> Self {
        Self {
            store: &*state.store,
            policy: &state.auth.password_policy,
        }
    }

    /// The hash of `clear` if it passes the policy for an account named `name` with
    /// email `email`, or a 422 on `password`.
    async fn hash(&self, clear: Password, name: &str, email: &str) -> Result<String, ApiError> {
        let account = password::Account { name, email };
        self.policy
            .check_field(clear.expose(), account, "password")?;
        password::hash(clear.into_inner())
            .await
            .map_err(ApiError::internal)
    }

    /// Inserts `user` (with `password`, if given), made by `by`: the user and the
    /// `directory` event. Whether `by` may is the caller's to check (an admin, or the
    /// operator at the CLI).
    pub async fn create(
        &self,
        by: Author,
        mut user: NewUser,
        password: Option<Password>,
    ) -> Result<(User, Message), ApiError> {
        if let Some(clear) = password {
            user.password_hash = Some(self.hash(clear, &user.name, &user.email).await?);
        }
        Ok(self
            .store
            .insert_user(&user, event_of(Change::Created, by))
            .await?)
    }

    /// Applies `changes` (and `password`) to user `id` for `by`. Members may change
    /// their own name and email; roles and passwords are set by admins (members change
    /// their own password through `/api/auth/password`, which asks for the current
    /// one). Demoting the last admin is a 409.
    pub async fn update(
        &self,
        by: &Identity,
        id: i64,
        changes: UserChanges,
        password: Option<Password>,
    ) -> Result<Updated, ApiError> {
        by.require_self_or_admin(id)?;
        if changes.role.is_some() || password.is_some() {
            by.require_admin()?;
        }
        let current = self
            .store
            .get_user(id)
            .await?
            .ok_or_else(|| ApiError::not_found("User"))?;
        let new_password = match password {
            // Judged against the name and email the account will have.
            Some(clear) => Some(NewPassword {
                hash: self
                    .hash(
                        clear,
                        changes.name.as_deref().unwrap_or(&current.name),
                        changes.email.as_deref().unwrap_or(&current.email),
                    )
                    .await?,
                // An admin resetting their own password with a token keeps that token.
                keep_token: match by.credential {
                    Credential::Token { id: token } if by.id() == id => Some(token),
                    _ => None,
                },
            }),
            None => None,
        };
        if changes.is_empty() && new_password.is_none() {
            return Ok(Updated {
                user: current,
                event: None,
                role_changed: false,
                ended: None,
            });
        }
        // One transaction: the changes, the password, the end of the old credentials,
        // and the last-admin rule.
        let update = self
            .store
            .update_user(
                id,
                &changes,
                new_password.as_ref(),
                event_of(Change::Updated, Author::of(&by.user)),
            )
            .await?
            .ok_or_else(|| ApiError::not_found("User"))?;
        Ok(Updated {
            role_changed: update.user.role != current.role,
            user: update.user,
            event: update.event,
            ended: update.ended,
        })
    }

    /// Deletes user `id`, never the last admin (a 409): the `directory` event. Whether
    /// `by` may is the caller's to check.
    pub async fn delete(&self, by: Author, id: i64) -> Result<Message, ApiError> {
        self.store
            .delete_user(id, event_of(Change::Deleted, by))
            .await?
            .ok_or_else(|| ApiError::not_found("User"))
    }
}

/// Creates a user for `identity` (the caller has checked that an admin asks); open
/// pages see the new entry through the hub's `directory` room.
pub async fn create_user(
    state: &AppState,
    identity: &Identity,
    user: NewUser,
    password: Option<Password>,
) -> Result<User, ApiError> {
    let (user, event) = Directory::of(state)
        .create(Author::of(&identity.user), user, password)
        .await?;
    state.hub.publish(event).await;
    Ok(user)
}

/// [`Directory::update`] on a running server, and what follows from it.
pub async fn update_user(
    state: &AppState,
    identity: &Identity,
    id: i64,
    changes: UserChanges,
    password: Option<Password>,
) -> Result<User, ApiError> {
    let password_set = password.is_some();
    let updated = Directory::of(state)
        .update(identity, id, changes, password)
        .await?;
    // Anything changed at all (a no-op update tells nobody).
    let changed = updated.event.is_some() || password_set;
    if let Some(event) = updated.event {
        state.hub.publish(event).await;
    }
    if updated.role_changed {
        // Realtime connections were authorized with the old role: they end, and
        // reconnect with the new one.
        state
            .hub
            .end_credential(Ending {
                revoked: Revoked::User { user_id: id },
                reason: EndReason::RoleChanged,
            })
            .await;
    }
    if let Some(ended) = &updated.ended {
        crate::auth::credentials_ended(state, ended, "password set by an admin").await;
    }
    if identity.id() != id && changed {
        tell_about_admin_change(state, identity, &updated.user, password_set).await;
    }
    Ok(updated.user)
}

/// A notification to a user whose account an admin changed. Logged, not returned,
/// when it fails: the change itself is done.
async fn tell_about_admin_change(state: &AppState, admin: &Identity, user: &User, password: bool) {
    let admin = Author::of(&admin.user);
    let text = if password {
        format!("{} changed your account and set a new password", admin.name)
    } else {
        format!("{} changed your account", admin.name)
    };
    let event = serde_json::json!({ "type": "account_changed", "user": user });
    if let Err(error) = state.hub.notify(user.id, &admin, text, event).await {
        tracing::warn!(%error, "storing an account-change notification failed");
    }
}

/// Deletes user `id` for `identity` (the caller has checked that an admin asks):
/// their realtime connections end, open pages drop the entry.
pub async fn delete_user(state: &AppState, identity: &Identity, id: i64) -> Result<(), ApiError> {
    let event = Directory::of(state)
        .delete(Author::of(&identity.user), id)
        .await?;
    state
        .hub
        .end_credential(Ending {
            revoked: Revoked::User { user_id: id },
            reason: EndReason::AccountDeleted,
        })
        .await;
    state.hub.publish(event).await;
    Ok(())
}

/// A needle with a control character in it is a 400: no name or email holds one, and
/// a NUL cannot even reach the indexes (FTS5 reads it as the end of its query string,
/// PostgreSQL refuses it in text), which made it a 500.
fn check_needle(text: &str, parameter: &str) -> Result<(), ApiError> {
    if text.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("{parameter} must not contain control characters"),
        ));
    }
    Ok(())
}

/// The match key of a search needle, trimmed; `None` when nothing is left.
fn search_key(text: Option<&str>, parameter: &str) -> Result<Option<String>, ApiError> {
    let Some(text) = text.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    check_needle(text, parameter)?;
    // Nothing may be left once folded (a lone accent): no needle, like an empty one.
    let key = match_key(text).trim().to_owned();
    Ok((!key.is_empty()).then_some(key))
}

/// One page of the directory as the list shows it: the users, and the cursor of the
/// next page (`None` on the last page). Shared by the JSON list and the HTML page, so
/// both page the same way.
pub struct ListPage {
    pub users: Vec<User>,
    pub next_cursor: Option<String>,
    /// The number of users, given only for the whole list, unsearched and of every
    /// role (it is cheap there).
    pub total: Option<i64>,
}

/// What a list asks for: a search, or an order and a role filter (a search is read
/// in its own order and over everyone: see [`list_page`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct ListQuery<'a> {
    pub search: Option<&'a str>,
    pub order: ListOrder,
    pub role: Option<Role>,
    pub cursor: Option<&'a str>,
    pub limit: i64,
}

/// Reads one page: `search` (trimmed, case-insensitive) in id order, or the whole
/// list in `order`, of one `role` or everyone; after `cursor`, `limit` rows. A
/// search with an order or a role other than the default is a 400: substring
/// matches come from indexes that give them in id order, and sorting them all for
/// each page would not stay indexed at a million users.
pub async fn list_page(store: &dyn Store, query: ListQuery<'_>) -> Result<ListPage, ApiError> {
    let ListQuery {
        search,
        order,
        role,
        cursor,
        limit,
    } = query;
    let search = search_key(search, "search")?;
    if search.is_some() && (!order.is_default() || role.is_some()) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "search cannot be combined with sort, order or role: search results come in the order users were added",
        ));
    }
    // A blank cursor (`?cursor=`) is the first page, as a blank search is no search.
    let after = cursor
        .filter(|c| !c.trim().is_empty())
        .map(|c| cursor::decode(order, c))
        .transpose()?;
    // One extra row says whether a next page exists, so the last page has no link.
    let mut users = match &search {
        Some(needle) => {
            store
                .list_users(&UserPage {
                    search: Some(needle.clone()),
                    after_id: after.map_or(0, |at| at.id),
                    limit: limit + 1,
                })
                .await?
        }
        None => {
            store
                .list_sorted(&SortedPage {
                    order,
                    role,
                    after,
                    limit: limit + 1,
                })
                .await?
        }
    };
    let more = users.len() as i64 > limit;
    users.truncate(limit as usize);
    let next_cursor = match (more, users.last()) {
        (true, Some(last)) => Some(cursor::encode(order, &Position::of(last, order.sort))),
        _ => None,
    };
    let total = match (&search, role) {
        (None, None) => Some(store.count_users().await?),
        _ => None,
    };
    Ok(ListPage {
        users,
        next_cursor,
        total,
    })
}

/// Up to `limit` names starting with what was `typed` (`q`); none below two
/// characters.
pub async fn suggest_names(
    store: &dyn Store,
    typed: &str,
    limit: i64,
) -> Result<Vec<String>, ApiError> {
    let typed = typed.trim_start();
    check_needle(typed, "q")?;
    let prefix = match_key(typed);
    if prefix.chars().count() < MIN_SUGGEST_CHARS {
        return Ok(Vec::new());
    }
    Ok(store.autocomplete_names(&prefix, limit).await?)
}

/// Up to `limit` users whose name or email contains `q`, best matches first.
pub async fn search(store: &dyn Store, q: Option<&str>, limit: i64) -> Result<Vec<User>, ApiError> {
    let Some(needle) = search_key(q, "q")? else {
        return Ok(Vec::new());
    };
    let needle = Needle {
        // As typed, case folded: how an email is keyed (see `Needle`).
        email: email_key(q.unwrap_or_default().trim()),
        name: needle,
    };
    Ok(search_users(store, &needle, limit).await?)
}

#[cfg(test)]
mod tests {
    //! The rules on a real (SQLite) store, without HTTP or a hub. The same races over
    //! HTTP, on both backends, are in tests/api/accounts.rs.
    use std::sync::Arc;

    use super::*;
    use crate::directory::model::Role;
    use crate::store::Lifecycle;
    use crate::store::sqlite::SqliteStore;

    struct Fixture {
        store: Arc<dyn Store>,
        policy: password::Policy,
        _dir: tempfile::TempDir,
    }

    impl Fixture {
        async fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("directory.db").display());
            let store = SqliteStore::connect(&url, 2).await.unwrap();
            store.migrate().await.unwrap();
            Self {
                store: Arc::new(store),
                policy: password::Policy::default(),
                _dir: dir,
            }
        }

        fn directory(&self) -> Directory<'_> {
            Directory {
                store: &*self.store,
                policy: &self.policy,
            }
        }

        async fn add(&self, name: &str, role: Role) -> Identity {
            let user = NewUser {
                name: name.into(),
                email: format!("{}@example.com", name.to_lowercase()),
                role,
                password_hash: None,
            };
            let (user, _) = self
                .directory()
                .create(Author::system(), user, None)
                .await
                .unwrap();
            Identity {
                user,
                credential: Credential::Session {
                    id_hash: "0".repeat(64),
                },
            }
        }

        async fn admins(&self) -> i64 {
            self.store.count_admins().await.unwrap()
        }
    }

    fn demote() -> UserChanges {
        UserChanges {
            role: Some(Role::Member),
            ..UserChanges::default()
        }
    }

    fn promote() -> UserChanges {
        UserChanges {
            role: Some(Role::Admin),
            ..UserChanges::default()
        }
    }

    fn is_last_admin_refusal(error: &ApiError) -> bool {
        matches!(error, ApiError::Conflict { message, .. } if message.contains("only admin"))
    }

    #[tokio::test]
    async fn the_last_admin_can_be_neither_demoted_nor_deleted() {
        let fixture = Fixture::new().await;
        let admin = fixture.add("Ada", Role::Admin).await;
        let directory = fixture.directory();
        let refused = directory
            .update(&admin, admin.id(), demote(), None)
            .await
            .unwrap_err();
        assert!(is_last_admin_refusal(&refused), "{refused:?}");
        let refused = directory
            .delete(Author::of(&admin.user), admin.id())
            .await
            .unwrap_err();
        assert!(is_last_admin_refusal(&refused), "{refused:?}");
        assert_eq!(fixture.admins().await, 1);
        // With a second admin, either may go.
        let other = fixture.add("Bea", Role::Admin).await;
        directory
            .update(&admin, other.id(), demote(), None)
            .await
            .unwrap();
        assert_eq!(fixture.admins().await, 1);
        directory
            .update(&admin, other.id(), promote(), None)
            .await
            .unwrap();
        directory
            .delete(Author::of(&admin.user), other.id())
            .await
            .unwrap();
        assert_eq!(fixture.admins().await, 1);
    }

    /// Each admin demotes the other at the same moment, authorized as an admin (as a
    /// request that passed its checks before the other's write landed would be): the
    /// store decides inside the write, so exactly one wins, every round.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_demotions_leave_an_admin() {
        let fixture = Fixture::new().await;
        let a = fixture.add("Ada", Role::Admin).await;
        let b = fixture.add("Bea", Role::Admin).await;
        for round in 0..20 {
            let directory = fixture.directory();
            let (first, second) = tokio::join!(
                directory.update(&a, b.id(), demote(), None),
                directory.update(&b, a.id(), demote(), None),
            );
            assert_eq!(fixture.admins().await, 1, "round {round}");
            let refusals = [&first, &second]
                .iter()
                .filter(|r| r.as_ref().is_err_and(is_last_admin_refusal))
                .count();
            assert_eq!(refusals, 1, "round {round}: {first:?} {second:?}");
            // The winner promotes the loser again for the next round.
            let (winner, loser) = if first.is_ok() { (&a, &b) } else { (&b, &a) };
            directory
                .update(winner, loser.id(), promote(), None)
                .await
                .unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_deletions_leave_an_admin() {
        let fixture = Fixture::new().await;
        let mut a = fixture.add("Admin0", Role::Admin).await;
        for round in 1..=10 {
            let b = fixture.add(&format!("Admin{round}"), Role::Admin).await;
            let directory = fixture.directory();
            let (first, second) = tokio::join!(
                directory.delete(Author::of(&a.user), b.id()),
                directory.delete(Author::of(&b.user), a.id()),
            );
            assert_eq!(fixture.admins().await, 1, "round {round}");
            assert!(
                first.is_ok() != second.is_ok(),
                "round {round}: {first:?} {second:?}"
            );
            let refused = first.as_ref().err().or(second.as_ref().err()).unwrap();
            assert!(is_last_admin_refusal(refused), "{refused:?}");
            if second.is_ok() {
                a = b;
            }
        }
    }

    #[tokio::test]
    async fn members_change_their_own_name_and_email_only() {
        let fixture = Fixture::new().await;
        let _admin = fixture.add("Ada", Role::Admin).await;
        let member = fixture.add("Max", Role::Member).await;
        let other = fixture.add("Nia", Role::Member).await;
        let directory = fixture.directory();
        let renamed = UserChanges {
            name: Some("Maximilian".into()),
            ..UserChanges::default()
        };
        let updated = directory
            .update(&member, member.id(), renamed.clone(), None)
            .await
            .unwrap();
        assert_eq!(updated.user.name, "Maximilian");
        assert!(updated.event.is_some() && !updated.role_changed);
        for (target, changes, password) in [
            (other.id(), renamed, None),
            (member.id(), promote(), None),
            (
                member.id(),
                UserChanges::default(),
                Some(Password::new("correct horse battery staple")),
            ),
        ] {
            let refused = directory
                .update(&member, target, changes, password)
                .await
                .unwrap_err();
            assert_eq!(refused.code(), "forbidden", "{refused:?}");
        }
        assert_eq!(
            fixture
                .store
                .get_user(member.id())
                .await
                .unwrap()
                .unwrap()
                .role,
            Role::Member
        );
    }

    #[tokio::test]
    async fn admins_set_passwords_that_pass_the_policy() {
        let fixture = Fixture::new().await;
        let admin = fixture.add("Ada", Role::Admin).await;
        let member = fixture.add("Max", Role::Member).await;
        let directory = fixture.directory();
        let weak = directory
            .update(
                &admin,
                member.id(),
                UserChanges::default(),
                Some(Password::new("max@example.com")),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&weak, ApiError::Validation { fields, .. } if fields.contains_key("password")),
            "{weak:?}"
        );
        let set = directory
            .update(
                &admin,
                member.id(),
                UserChanges::default(),
                Some(Password::new("correct horse battery staple")),
            )
            .await
            .unwrap();
        // A password alone is not a directory event, but it ends the old credentials.
        assert!(set.event.is_none());
        assert_eq!(set.ended.map(|ended| ended.user_id), Some(member.id()));
        let nothing = directory
            .update(&admin, 999_999, UserChanges::default(), None)
            .await
            .unwrap_err();
        assert_eq!(nothing.code(), "not_found");
    }

    #[tokio::test]
    async fn a_taken_email_is_a_conflict_on_the_email_field() {
        let fixture = Fixture::new().await;
        let admin = fixture.add("Ada", Role::Admin).await;
        let same = NewUser {
            name: "Other Ada".into(),
            // Emails are unique by their folded form.
            email: "ADA@example.com".into(),
            role: Role::Member,
            password_hash: None,
        };
        let taken = fixture
            .directory()
            .create(Author::of(&admin.user), same, None)
            .await
            .unwrap_err();
        assert!(
            matches!(&taken, ApiError::Conflict { fields, .. } if fields["email"] == "is already taken"),
            "{taken:?}"
        );
    }

    #[tokio::test]
    async fn pages_follow_their_cursor_and_refuse_foreign_ones() {
        let fixture = Fixture::new().await;
        for name in ["Ada", "Bea", "Cyd"] {
            fixture.add(name, Role::Member).await;
        }
        let store = &*fixture.store;
        let page = |search, cursor| ListQuery {
            search,
            cursor,
            limit: 2,
            ..ListQuery::default()
        };
        let first = list_page(store, page(None, None)).await.unwrap();
        assert_eq!(first.users.len(), 2);
        assert_eq!(first.total, Some(3));
        let second = list_page(store, page(None, first.next_cursor.as_deref()))
            .await
            .unwrap();
        assert_eq!(second.users.len(), 1);
        assert!(second.next_cursor.is_none());
        let foreign = list_page(store, page(None, Some("x"))).await.err().unwrap();
        assert_eq!(foreign.code(), "invalid_cursor");
        let search = list_page(store, page(Some("  BE "), None)).await.unwrap();
        assert_eq!(search.users.len(), 1);
        assert_eq!(search.total, None);
        let control = list_page(store, page(Some("a\u{0}"), None))
            .await
            .err()
            .unwrap();
        assert_eq!(control.code(), "invalid_query");
    }

    #[tokio::test]
    async fn suggestions_wait_for_two_characters() {
        let fixture = Fixture::new().await;
        fixture.add("Zoë", Role::Member).await;
        let store = &*fixture.store;
        assert!(suggest_names(store, " z", 5).await.unwrap().is_empty());
        assert_eq!(suggest_names(store, "ZO", 5).await.unwrap(), ["Zoë"]);
        assert_eq!(search(store, Some(" OË "), 5).await.unwrap().len(), 1);
        assert!(search(store, Some("   "), 5).await.unwrap().is_empty());
    }
}
