//! The user directory's data: what a user is, what may be written to one, and the
//! rules a write must pass. Validation works on the raw JSON object so that a missing
//! field, a wrong type and a bad value all come back as a 422 naming the field,
//! instead of serde's first-error-wins 400.

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use validator::ValidateEmail;

use crate::error::{ApiError, FieldErrors};

pub const NAME_MAX_CHARS: usize = 100;
/// RFC 5321's limit on a forward path, the longest address that can be delivered.
pub const EMAIL_MAX_CHARS: usize = 254;

/// A directory entry as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    #[serde(serialize_with = "crate::timefmt::serialize")]
    pub created_at: OffsetDateTime,
    #[serde(serialize_with = "crate::timefmt::serialize")]
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    #[default]
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

impl TryFrom<String> for Role {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

/// A user's preferences (`GET`/`PATCH /api/users/{id}/settings`, and in the profile).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Settings {
    /// `system` (follow the browser), `light` or `dark`.
    pub theme: String,
    /// *compat* (the tutorial's single switch): true when any kind is on. Writing it
    /// turns both kinds on or off.
    pub notifications: bool,
    /// Notify me when someone `@mentions` me.
    pub notify_mentions: bool,
    /// Notify me when an admin changes my account.
    pub notify_admin_changes: bool,
}

impl Settings {
    pub fn new(theme: String, notify_mentions: bool, notify_admin_changes: bool) -> Self {
        Self {
            theme,
            notifications: notify_mentions || notify_admin_changes,
            notify_mentions,
            notify_admin_changes,
        }
    }
}

impl Settings {
    /// Whether a notification of this kind (its event's `type`) reaches the user.
    pub fn wants(&self, kind: &str) -> bool {
        match kind {
            "mention" => self.notify_mentions,
            "account_changed" => self.notify_admin_changes,
            _ => true,
        }
    }
}

pub const THEMES: [&str; 3] = ["system", "light", "dark"];

/// A validated change of settings: `None` leaves the field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettingsChanges {
    pub theme: Option<String>,
    pub notify_mentions: Option<bool>,
    pub notify_admin_changes: Option<bool>,
}

/// The body of `PATCH /api/users/{id}/settings`: every field optional, unknown
/// fields refused (a misspelt setting must not look saved).
pub fn settings_from_json(body: &Map<String, Value>) -> Result<SettingsChanges, ApiError> {
    let mut errors = FieldErrors::new();
    let mut changes = SettingsChanges::default();
    let flag = |field: &str, errors: &mut FieldErrors| match body.get(field) {
        None => None,
        Some(Value::Bool(on)) => Some(*on),
        Some(_) => {
            errors.insert(field.into(), "must be true or false".into());
            None
        }
    };
    if let Some(theme) = optional(body, "theme", &mut errors) {
        if THEMES.contains(&theme) {
            changes.theme = Some(theme.to_owned());
        } else {
            errors.insert("theme".into(), "must be system, light or dark".into());
        }
    }
    if let Some(all) = flag("notifications", &mut errors) {
        changes.notify_mentions = Some(all);
        changes.notify_admin_changes = Some(all);
    }
    // The kinds named one by one win over the compat switch given beside them.
    if let Some(on) = flag("notify_mentions", &mut errors) {
        changes.notify_mentions = Some(on);
    }
    if let Some(on) = flag("notify_admin_changes", &mut errors) {
        changes.notify_admin_changes = Some(on);
    }
    for field in body.keys() {
        if !matches!(
            field.as_str(),
            "theme" | "notifications" | "notify_mentions" | "notify_admin_changes"
        ) {
            errors.insert(field.clone(), "is not a setting".into());
        }
    }
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(ApiError::invalid(errors))
    }
}

/// `GET /api/users/{id}/profile` (*compat*: nested user, settings, stats).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Profile {
    pub user: ProfileUser,
    pub settings: Settings,
    pub stats: Stats,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ProfileUser {
    pub id: i64,
    pub name: String,
    pub email: String,
}

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// Messages the user has sent to public rooms.
    pub posts: i64,
    /// Switchboard has no follow graph: these stay 0, kept for the shape's sake.
    pub followers: i64,
    pub following: i64,
}

impl Profile {
    pub fn new(user: &User, settings: Settings, posts: i64) -> Self {
        Self {
            user: ProfileUser {
                id: user.id,
                name: user.name.clone(),
                email: user.email.clone(),
            },
            settings,
            stats: Stats {
                posts,
                ..Stats::default()
            },
        }
    }
}

/// A validated user about to be inserted.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub name: String,
    pub email: String,
    pub role: Role,
    /// An argon2 PHC string, never a password.
    pub password_hash: Option<String>,
}

/// A validated partial update: `None` leaves the field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Option<Role>,
}

impl UserChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.email.is_none() && self.role.is_none()
    }
}

/// The key a name or email is matched and made unique by. Done here, not in SQL,
/// because SQLite's `lower()` folds ASCII only (`ÄÖÜ` stays upper case) while
/// PostgreSQL folds all of Unicode: one Rust function gives both the same answer.
pub fn match_key(text: &str) -> String {
    text.to_lowercase()
}

/// A password given in a request body, still in clear: hashed by the handler.
pub type GivenPassword = Option<String>;

/// The body of `POST /api/users`: `name` and `email` are required; `role` and
/// `password` are optional (and only an admin may create users at all).
pub fn new_user_from_json(body: &Map<String, Value>) -> Result<(NewUser, GivenPassword), ApiError> {
    let mut errors = FieldErrors::new();
    let name = required(body, "name", &mut errors).and_then(|v| check_name(v, &mut errors));
    let email = required(body, "email", &mut errors).and_then(|v| check_email(v, &mut errors));
    let role = optional(body, "role", &mut errors).and_then(|v| check_role(v, &mut errors));
    let password = optional(body, "password", &mut errors).map(str::to_owned);
    match (name, email) {
        (Some(name), Some(email)) if errors.is_empty() => Ok((
            NewUser {
                name,
                email,
                role: role.unwrap_or_default(),
                password_hash: None,
            },
            password,
        )),
        _ => Err(ApiError::invalid(errors)),
    }
}

/// The body of `PUT`/`PATCH /api/users/{id}`: every field optional.
pub fn changes_from_json(
    body: &Map<String, Value>,
) -> Result<(UserChanges, GivenPassword), ApiError> {
    let mut errors = FieldErrors::new();
    let name = optional(body, "name", &mut errors).and_then(|v| check_name(v, &mut errors));
    let email = optional(body, "email", &mut errors).and_then(|v| check_email(v, &mut errors));
    let role = optional(body, "role", &mut errors).and_then(|v| check_role(v, &mut errors));
    let password = optional(body, "password", &mut errors).map(str::to_owned);
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    Ok((UserChanges { name, email, role }, password))
}

fn check_role(raw: &str, errors: &mut FieldErrors) -> Option<Role> {
    let role = Role::try_from(raw.to_owned()).ok();
    if role.is_none() {
        errors.insert("role".into(), "must be admin or member".into());
    }
    role
}

/// The string value of a required field; records why not otherwise.
fn required<'a>(
    body: &'a Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Option<&'a str> {
    match body.get(field) {
        None | Some(Value::Null) => {
            errors.insert(field.into(), "is required".into());
            None
        }
        Some(value) => string(value, field, errors),
    }
}

/// The string value of an optional field (absent = unchanged); `null` is refused
/// because none of these fields can be cleared.
fn optional<'a>(
    body: &'a Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Option<&'a str> {
    match body.get(field) {
        None => None,
        Some(Value::Null) => {
            errors.insert(field.into(), "cannot be null".into());
            None
        }
        Some(value) => string(value, field, errors),
    }
}

fn string<'a>(value: &'a Value, field: &str, errors: &mut FieldErrors) -> Option<&'a str> {
    let text = value.as_str();
    if text.is_none() {
        errors.insert(field.into(), "must be a string".into());
    }
    text
}

pub fn check_name(raw: &str, errors: &mut FieldErrors) -> Option<String> {
    let name = raw.trim();
    let problem = if name.is_empty() {
        Some("is required".to_owned())
    } else if name.chars().count() > NAME_MAX_CHARS {
        Some(format!("must be at most {NAME_MAX_CHARS} characters"))
    } else {
        name_characters_problem(name)
    };
    match problem {
        Some(problem) => {
            errors.insert("name".into(), problem);
            None
        }
        None => Some(name.to_owned()),
    }
}

/// The one rule for the characters of anything shown as someone's name (directory
/// names and emails, Socket.IO nicknames, token names): why `name` cannot be one, or
/// `None`. Refused:
/// - control characters;
/// - bidirectional controls (U+202A-202E, U+2066-2069, U+200E, U+200F, U+061C): an
///   override inside a name reverses what follows it (`Eve\u{202E}gnp.exe`);
/// - characters that draw nothing: format characters (Unicode category Cf: U+200B
///   zero width space, U+2060, U+FEFF, soft hyphen, ...), line and paragraph
///   separators, and the Hangul fillers, which pad a name or make two look the same.
///
/// Kept, because real text needs them: ZWJ (U+200D, which joins emoji sequences
/// such as man ZWJ woman ZWJ girl, one "family" glyph) and ZWNJ (U+200C, Persian and
/// Indic scripts) between two visible characters, and the tag characters that follow
/// U+1F3F4 in the flags of England, Scotland and Wales.
pub fn name_characters_problem(name: &str) -> Option<String> {
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).map(|b| chars[b]);
        let after = chars.get(i + 1).copied();
        if c.is_control() {
            return Some("must not contain control characters".to_owned());
        }
        if is_bidi_control(c) {
            return Some(format!(
                "must not contain bidirectional control characters (U+{:04X})",
                u32::from(c)
            ));
        }
        if is_invisible(c, before, after) {
            return Some(format!(
                "must not contain invisible characters (U+{:04X})",
                u32::from(c)
            ));
        }
    }
    None
}

fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

fn is_invisible(c: char, before: Option<char>, after: Option<char>) -> bool {
    match c {
        '\u{200C}' | '\u{200D}' => !(is_visible(before) && is_visible(after)),
        '\u{E0020}'..='\u{E007F}' => {
            !matches!(before, Some('\u{1F3F4}' | '\u{E0020}'..='\u{E007F}'))
        }
        '\u{3164}' | '\u{FFA0}' | '\u{115F}' | '\u{1160}' => true,
        _ => matches!(
            c.general_category(),
            GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        ),
    }
}

fn is_visible(c: Option<char>) -> bool {
    c.is_some_and(|c| {
        !c.is_whitespace() && !c.is_control() && c.general_category() != GeneralCategory::Format
    })
}

pub fn check_email(raw: &str, errors: &mut FieldErrors) -> Option<String> {
    let email = raw.trim();
    let problem = if email.is_empty() {
        Some("is required".to_owned())
    } else if email.chars().count() > EMAIL_MAX_CHARS {
        Some(format!("must be at most {EMAIL_MAX_CHARS} characters"))
    } else if name_characters_problem(email).is_some() || !email.validate_email() {
        Some("is not a valid email address".to_owned())
    } else {
        None
    };
    match problem {
        Some(problem) => {
            errors.insert("email".into(), problem);
            None
        }
        None => Some(email.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn fields(err: ApiError) -> FieldErrors {
        match err {
            ApiError::Validation { fields, .. } => fields,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_new_user_is_trimmed() {
        let (user, password) =
            new_user_from_json(&object(json!({"name": "  Zoë  ", "email": " z@x.io "}))).unwrap();
        assert_eq!(password, None);
        assert_eq!(user.name, "Zoë");
        assert_eq!(user.email, "z@x.io");
    }

    #[test]
    fn missing_fields_are_each_reported() {
        let errors = fields(new_user_from_json(&Map::new()).unwrap_err());
        assert_eq!(errors["name"], "is required");
        assert_eq!(errors["email"], "is required");
    }

    #[test]
    fn names_are_counted_in_characters_not_bytes() {
        let hundred = "é".repeat(100);
        assert!(check_name(&hundred, &mut FieldErrors::new()).is_some());
        let mut errors = FieldErrors::new();
        assert!(check_name(&"é".repeat(101), &mut errors).is_none());
        assert_eq!(errors["name"], "must be at most 100 characters");
    }

    #[test]
    fn control_characters_and_wrong_types_are_refused() {
        let errors = fields(
            new_user_from_json(&object(json!({"name": "a\u{0}b", "email": 5}))).unwrap_err(),
        );
        assert_eq!(errors["name"], "must not contain control characters");
        assert_eq!(errors["email"], "must be a string");
    }

    #[test]
    fn bidi_controls_and_invisible_characters_are_refused_in_names() {
        for (bad, problem) in [
            (
                "Eve\u{202E}gnp.exe",
                "bidirectional control characters (U+202E)",
            ),
            ("Eve\u{200F}", "bidirectional control characters (U+200F)"),
            (
                "a\u{2066}b\u{2069}",
                "bidirectional control characters (U+2066)",
            ),
            ("Ar\u{061C}ab", "bidirectional control characters (U+061C)"),
            ("Bob\u{200B}", "invisible characters (U+200B)"),
            ("Bob\u{2028}by", "invisible characters (U+2028)"),
            ("Bo\u{FEFF}b", "invisible characters (U+FEFF)"),
            ("Bo\u{00AD}b", "invisible characters (U+00AD)"),
            ("\u{3164}", "invisible characters (U+3164)"),
            ("Bob\u{200D}", "invisible characters (U+200D)"),
            ("\u{200C}Bob", "invisible characters (U+200C)"),
            ("a\u{200D}\u{200D}b", "invisible characters (U+200D)"),
            ("a\u{E0041}", "invisible characters (U+E0041)"),
        ] {
            let mut errors = FieldErrors::new();
            assert!(
                check_name(bad, &mut errors).is_none(),
                "{bad:?} was accepted"
            );
            assert_eq!(
                errors["name"],
                format!("must not contain {problem}"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_keep_what_scripts_and_emoji_need() {
        for good in [
            "👨\u{200D}👩\u{200D}👧 family",
            "می\u{200C}خواهم",
            "क्\u{200D}ष",
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F} Scot",
            "Zoë Ångström-O'Brien",
            "אבי כהן",
            "محمد",
            "❤\u{FE0F}",
        ] {
            let mut errors = FieldErrors::new();
            assert_eq!(
                check_name(good, &mut errors).as_deref(),
                Some(good),
                "{good:?}: {errors:?}"
            );
        }
    }

    #[test]
    fn emails_must_be_valid() {
        for bad in ["nope", "a@", "@b.c", "a b@c.d", "a@b@c"] {
            let mut errors = FieldErrors::new();
            assert!(
                check_email(bad, &mut errors).is_none(),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn changes_may_be_partial_but_not_null() {
        let (changes, _) = changes_from_json(&object(json!({"name": "Bo"}))).unwrap();
        assert_eq!(changes.name.as_deref(), Some("Bo"));
        assert!(changes.email.is_none());
        let errors = fields(changes_from_json(&object(json!({"email": null}))).unwrap_err());
        assert_eq!(errors["email"], "cannot be null");
    }

    #[test]
    fn roles_are_admin_or_member() {
        let (user, _) = new_user_from_json(&object(
            json!({"name": "A", "email": "a@x.io", "role": "admin"}),
        ))
        .unwrap();
        assert_eq!(user.role, Role::Admin);
        let errors = fields(
            new_user_from_json(&object(
                json!({"name": "A", "email": "a@x.io", "role": "root"}),
            ))
            .unwrap_err(),
        );
        assert_eq!(errors["role"], "must be admin or member");
    }

    #[test]
    fn match_keys_fold_all_of_unicode() {
        assert_eq!(match_key("ÄÖÜ Zoë"), "äöü zoë");
    }
}
