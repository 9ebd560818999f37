//! What a request may ask of the directory, parsed once for every way in (the JSON
//! API, the HTML forms, the CLI): the raw fields as they arrived ([`UserInput`],
//! [`SettingsInput`]) and the typed, validated values made from them
//! ([`NewUser::parse`], [`UserChanges::parse`], [`SettingsChanges::parse`]).
//!
//! A field is kept raw ([`Field`]) until parsing so that a missing field, a `null`, a
//! wrong type and a bad value are all reported together, each as a field error of the
//! one 422 envelope ([`Invalid`] becomes [`ApiError::Validation`]), instead of serde's
//! first-error-wins 400. The rules for each value (name, email, role, theme) are
//! [`super::model`]'s.

use std::fmt;

use serde_json::{Map, Value};

use super::model::{NewUser, Role, SettingsChanges, THEMES, UserChanges, check_email, check_name};
use crate::error::{ApiError, FieldErrors};

/// One field of a request, before it is judged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Field<T> {
    /// Not given: required fields say so, optional ones stay unchanged.
    #[default]
    Absent,
    /// An explicit `null`: none of the directory's fields can be cleared.
    Null,
    /// Given, of the wrong JSON type.
    WrongType,
    Given(T),
}

impl<T> From<Option<T>> for Field<T> {
    /// A form field: present or not (a form has no `null` and only strings).
    fn from(value: Option<T>) -> Self {
        value.map_or(Field::Absent, Field::Given)
    }
}

impl Field<String> {
    /// The string at `body[key]`.
    pub fn text(body: &Map<String, Value>, key: &str) -> Self {
        match body.get(key) {
            None => Field::Absent,
            Some(Value::Null) => Field::Null,
            Some(Value::String(text)) => Field::Given(text.clone()),
            Some(_) => Field::WrongType,
        }
    }
}

impl Field<bool> {
    /// The boolean at `body[key]`.
    pub fn flag(body: &Map<String, Value>, key: &str) -> Self {
        match body.get(key) {
            None => Field::Absent,
            Some(Value::Bool(on)) => Field::Given(*on),
            // `null` is no flag either: said the same way as any other wrong value.
            Some(_) => Field::WrongType,
        }
    }
}

impl<T> Field<T> {
    /// The value of an optional field (absent: `None`); records why not otherwise.
    fn optional(&self, name: &str, wrong_type: &str, errors: &mut FieldErrors) -> Option<&T> {
        match self {
            Field::Absent => None,
            Field::Null => {
                errors.insert(name.into(), "cannot be null".into());
                None
            }
            Field::WrongType => {
                errors.insert(name.into(), wrong_type.into());
                None
            }
            Field::Given(value) => Some(value),
        }
    }

    /// The value of a required field; records why not otherwise.
    fn required(&self, name: &str, wrong_type: &str, errors: &mut FieldErrors) -> Option<&T> {
        match self {
            Field::Absent | Field::Null => {
                errors.insert(name.into(), "is required".into());
                None
            }
            other => other.optional(name, wrong_type, errors),
        }
    }
}

const NOT_A_STRING: &str = "must be a string";

/// Input that failed its rules: what is wrong, field by field. A 422 in the API's
/// envelope, a message beside each field on a page, a line on the CLI's console.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Invalid(pub FieldErrors);

impl From<Invalid> for ApiError {
    fn from(Invalid(fields): Invalid) -> Self {
        ApiError::invalid(fields)
    }
}

impl fmt::Display for Invalid {
    /// `email is not a valid email address; name is required`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (field, problem) in &self.0 {
            if !first {
                f.write_str("; ")?;
            }
            write!(f, "{field} {problem}")?;
            first = false;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

fn done<T>(value: Option<T>, errors: FieldErrors) -> Result<T, Invalid> {
    match value {
        Some(value) if errors.is_empty() => Ok(value),
        _ => Err(Invalid(errors)),
    }
}

/// A password given in clear, to be judged by the password policy and hashed by the
/// directory service. Its `Debug` does not show it, so it cannot reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(clear: impl Into<String>) -> Self {
        Self(clear.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The fields of a user write (create or update) as they arrived.
#[derive(Clone, Debug, Default)]
pub struct UserInput {
    pub name: Field<String>,
    pub email: Field<String>,
    pub role: Field<String>,
    pub password: Field<String>,
}

impl UserInput {
    /// From a JSON object (`POST /api/users`, `PUT`/`PATCH /api/users/{id}`). Other
    /// keys are ignored, as the seed's API did.
    pub fn from_json(body: &Map<String, Value>) -> Self {
        Self {
            name: Field::text(body, "name"),
            email: Field::text(body, "email"),
            role: Field::text(body, "role"),
            password: Field::text(body, "password"),
        }
    }

    fn password(&self, errors: &mut FieldErrors) -> Option<Password> {
        self.password
            .optional("password", NOT_A_STRING, errors)
            .map(|clear| Password::new(clear.as_str()))
    }
}

fn role(field: &Field<String>, errors: &mut FieldErrors) -> Option<Role> {
    let raw = field.optional("role", NOT_A_STRING, errors)?;
    let role = Role::try_from(raw.clone()).ok();
    if role.is_none() {
        errors.insert("role".into(), "must be admin or member".into());
    }
    role
}

impl NewUser {
    /// A user to create: `name` and `email` required (trimmed), `role` optional
    /// (member by default), and the password to set, if one is given. Every problem is
    /// reported, each under its field.
    pub fn parse(input: &UserInput) -> Result<(NewUser, Option<Password>), Invalid> {
        let mut errors = FieldErrors::new();
        let name = input
            .name
            .required("name", NOT_A_STRING, &mut errors)
            .and_then(|raw| check_name(raw, &mut errors));
        let email = input
            .email
            .required("email", NOT_A_STRING, &mut errors)
            .and_then(|raw| check_email(raw, &mut errors));
        let role = role(&input.role, &mut errors);
        let password = input.password(&mut errors);
        let user = name.zip(email).map(|(name, email)| NewUser {
            name,
            email,
            role: role.unwrap_or_default(),
            password_hash: None,
        });
        done(user.map(|user| (user, password)), errors)
    }
}

impl UserChanges {
    /// A partial update: every field optional, none may be `null`; and the password to
    /// set, if one is given.
    pub fn parse(input: &UserInput) -> Result<(UserChanges, Option<Password>), Invalid> {
        let mut errors = FieldErrors::new();
        let name = input
            .name
            .optional("name", NOT_A_STRING, &mut errors)
            .and_then(|raw| check_name(raw, &mut errors));
        let email = input
            .email
            .optional("email", NOT_A_STRING, &mut errors)
            .and_then(|raw| check_email(raw, &mut errors));
        let role = role(&input.role, &mut errors);
        let password = input.password(&mut errors);
        done(Some((UserChanges { name, email, role }, password)), errors)
    }
}

/// The fields of a change of settings as they arrived.
#[derive(Clone, Debug, Default)]
pub struct SettingsInput {
    pub theme: Field<String>,
    /// *compat*: both kinds at once.
    pub notifications: Field<bool>,
    pub notify_mentions: Field<bool>,
    pub notify_admin_changes: Field<bool>,
    /// Keys that are no setting: refused, so a misspelt setting does not look saved.
    pub unknown: Vec<String>,
}

impl SettingsInput {
    /// From the JSON object of `PATCH /api/users/{id}/settings`.
    pub fn from_json(body: &Map<String, Value>) -> Self {
        Self {
            theme: Field::text(body, "theme"),
            notifications: Field::flag(body, "notifications"),
            notify_mentions: Field::flag(body, "notify_mentions"),
            notify_admin_changes: Field::flag(body, "notify_admin_changes"),
            unknown: body
                .keys()
                .filter(|key| {
                    !matches!(
                        key.as_str(),
                        "theme" | "notifications" | "notify_mentions" | "notify_admin_changes"
                    )
                })
                .cloned()
                .collect(),
        }
    }
}

impl SettingsChanges {
    /// A change of settings: every field optional; the kinds named one by one win over
    /// the compat switch given beside them.
    pub fn parse(input: &SettingsInput) -> Result<SettingsChanges, Invalid> {
        const NOT_A_FLAG: &str = "must be true or false";
        let mut errors = FieldErrors::new();
        let mut changes = SettingsChanges::default();
        if let Some(theme) = input.theme.optional("theme", NOT_A_STRING, &mut errors) {
            if THEMES.contains(&theme.as_str()) {
                changes.theme = Some(theme.clone());
            } else {
                errors.insert("theme".into(), "must be system, light or dark".into());
            }
        }
        if let Some(&all) = input
            .notifications
            .optional("notifications", NOT_A_FLAG, &mut errors)
        {
            changes.notify_mentions = Some(all);
            changes.notify_admin_changes = Some(all);
        }
        if let Some(&on) =
            input
                .notify_mentions
                .optional("notify_mentions", NOT_A_FLAG, &mut errors)
        {
            changes.notify_mentions = Some(on);
        }
        if let Some(&on) =
            input
                .notify_admin_changes
                .optional("notify_admin_changes", NOT_A_FLAG, &mut errors)
        {
            changes.notify_admin_changes = Some(on);
        }
        for key in &input.unknown {
            errors.insert(key.clone(), "is not a setting".into());
        }
        done(Some(changes), errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json_input(value: Value) -> UserInput {
        UserInput::from_json(value.as_object().unwrap())
    }

    fn new_user(value: Value) -> Result<(NewUser, Option<Password>), Invalid> {
        NewUser::parse(&json_input(value))
    }

    fn changes(value: Value) -> Result<(UserChanges, Option<Password>), Invalid> {
        UserChanges::parse(&json_input(value))
    }

    fn settings(value: Value) -> Result<SettingsChanges, Invalid> {
        SettingsChanges::parse(&SettingsInput::from_json(value.as_object().unwrap()))
    }

    fn errors(result: Result<impl fmt::Debug, Invalid>) -> FieldErrors {
        result.expect_err("the input was accepted").0
    }

    #[test]
    fn a_new_user_is_trimmed_and_a_member_by_default() {
        let (user, password) = new_user(json!({"name": "  Zoë  ", "email": "\tz@x.io\n"})).unwrap();
        assert_eq!(password, None);
        assert_eq!((user.name.as_str(), user.email.as_str()), ("Zoë", "z@x.io"));
        assert_eq!(user.role, Role::Member);
        assert_eq!(user.password_hash, None);
    }

    #[test]
    fn missing_null_and_blank_required_fields_are_each_reported() {
        let all = errors(new_user(json!({})));
        assert_eq!(all["name"], "is required");
        assert_eq!(all["email"], "is required");
        assert_eq!(all.len(), 2);
        let blank = errors(new_user(json!({"name": " \u{3000}\t", "email": null})));
        assert_eq!(
            blank["name"], "is required",
            "unicode whitespace is trimmed too"
        );
        assert_eq!(blank["email"], "is required");
    }

    #[test]
    fn every_problem_is_reported_at_once_under_its_field() {
        let all = errors(new_user(json!({
            "name": "a\u{0}b", "email": 5, "role": "root", "password": ["x"]
        })));
        assert_eq!(all["name"], "must not contain control characters");
        assert_eq!(all["email"], "must be a string");
        assert_eq!(all["role"], "must be admin or member");
        assert_eq!(all["password"], "must be a string");
        // And as the API's envelope: a 422 whose message names the first field.
        let error = ApiError::from(Invalid(all));
        assert_eq!(error.code(), "validation_failed");
        assert_eq!(error.to_string(), "Email must be a string");
    }

    #[test]
    fn names_are_counted_in_characters_and_keep_what_scripts_need() {
        let at_limit = "é".repeat(100);
        let (user, _) = new_user(json!({"name": at_limit, "email": "e@x.io"})).unwrap();
        assert_eq!(user.name.chars().count(), 100);
        let over = errors(new_user(
            json!({"name": "é".repeat(101), "email": "e@x.io"}),
        ));
        assert_eq!(over["name"], "must be at most 100 characters");
        let family = "👨\u{200D}👩\u{200D}👧";
        let (user, _) = new_user(json!({"name": family, "email": "f@x.io"})).unwrap();
        assert_eq!(user.name, family);
        let bidi = errors(new_user(
            json!({"name": "Eve\u{202E}gnp.exe", "email": "e@x.io"}),
        ));
        assert_eq!(
            bidi["name"],
            "must not contain bidirectional control characters (U+202E)"
        );
    }

    #[test]
    fn emails_are_checked_after_trimming() {
        for bad in ["nope", "a@", "a b@c.d", "a@b\u{200B}.io"] {
            let all = errors(new_user(json!({"name": "A", "email": bad})));
            assert_eq!(all["email"], "is not a valid email address", "{bad:?}");
        }
        let long = format!("{}@x.io", "a".repeat(250));
        let all = errors(new_user(json!({"name": "A", "email": long})));
        assert_eq!(all["email"], "must be at most 254 characters");
    }

    #[test]
    fn a_password_and_a_role_may_be_given() {
        let (user, password) = new_user(json!({
            "name": "A", "email": "a@x.io", "role": "admin", "password": " spaces kept "
        }))
        .unwrap();
        assert_eq!(user.role, Role::Admin);
        assert_eq!(password.unwrap().expose(), " spaces kept ");
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let input = json_input(json!({"password": "hunter2 hunter2"}));
        let (_, password) = UserChanges::parse(&input).unwrap();
        let shown = format!("{password:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn changes_may_be_partial_but_not_null_and_ignore_other_keys() {
        let (partial, password) = changes(json!({"name": " Bo ", "id": 7})).unwrap();
        assert_eq!(partial.name.as_deref(), Some("Bo"));
        assert!(partial.email.is_none() && partial.role.is_none() && password.is_none());
        let (none, _) = changes(json!({})).unwrap();
        assert!(none.is_empty());
        let all = errors(changes(json!({"email": null, "name": "", "role": 1})));
        assert_eq!(all["email"], "cannot be null");
        assert_eq!(all["name"], "is required");
        assert_eq!(all["role"], "must be a string");
    }

    #[test]
    fn form_fields_parse_like_json_strings() {
        let form = UserInput {
            name: Some("  Ana ".to_owned()).into(),
            email: None.into(),
            role: Some("member".to_owned()).into(),
            password: Field::Absent,
        };
        let (parsed, _) = UserChanges::parse(&form).unwrap();
        assert_eq!(parsed.name.as_deref(), Some("Ana"));
        assert_eq!(parsed.email, None);
        assert_eq!(parsed.role, Some(Role::Member));
        let blank = UserInput {
            email: Some(String::new()).into(),
            ..form
        };
        assert_eq!(errors(NewUser::parse(&blank))["email"], "is required");
    }

    #[test]
    fn settings_name_each_wrong_field_and_refuse_unknown_ones() {
        let all = errors(settings(json!({
            "theme": "neon", "notify_mentions": "yes", "notifications": null, "colour": 1
        })));
        assert_eq!(all["theme"], "must be system, light or dark");
        assert_eq!(all["notify_mentions"], "must be true or false");
        assert_eq!(all["notifications"], "must be true or false");
        assert_eq!(all["colour"], "is not a setting");
        assert_eq!(
            errors(settings(json!({"theme": null})))["theme"],
            "cannot be null"
        );
    }

    #[test]
    fn named_notification_kinds_win_over_the_compat_switch() {
        let changes = settings(json!({"notifications": false, "notify_mentions": true})).unwrap();
        assert_eq!(changes.notify_mentions, Some(true));
        assert_eq!(changes.notify_admin_changes, Some(false));
        assert_eq!(settings(json!({})).unwrap(), SettingsChanges::default());
    }
}
