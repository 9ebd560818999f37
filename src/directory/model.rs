//! The user directory's data: what a user is, what may be written to one, and the
//! rule for each value a write carries (a name, an email, a role). Reading those
//! values out of a request is [`super::input`]'s.

use serde::Serialize;
use time::OffsetDateTime;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use validator::ValidateEmail;

use crate::error::FieldErrors;

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

/// The key names and search needles are matched by (`name_key`, search, autocomplete,
/// mentions): case and accents folded, so `bjorn`, `Björn` and `BJÖRN` are one key.
/// Done here, not in SQL, because SQLite's `lower()` folds ASCII only while
/// PostgreSQL folds all of Unicode and has no accent folding without an extension:
/// one Rust function gives both backends the same answer.
///
/// Lower case, then compatibility decomposition (NFKD: `ﬁ` is `fi`, full-width `Ａ` is
/// `a`), then the combining diacritical marks (U+0300-036F, the accents of Latin,
/// Greek and Cyrillic letters) dropped, then recomposed (NFC, so Hangul and other
/// scripts keep their letters). A few letters that carry their stroke in the letter
/// itself fold by hand (`ø` to `o`, `ł` to `l`, `đ` to `d`, `ß` to `ss`, ...), and any
/// whitespace becomes a plain space, so a word starts after `' '` in SQL as in Rust.
///
/// Not used for uniqueness: emails are unique by [`email_key`], which folds case only
/// (`jose@bücher.de` and `jose@bucher.de` are two addresses).
pub fn match_key(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for c in text.to_lowercase().nfkd() {
        match c {
            '\u{300}'..='\u{36f}' => {}
            'ø' => folded.push('o'),
            'ł' => folded.push('l'),
            'đ' => folded.push('d'),
            'ħ' => folded.push('h'),
            'ı' => folded.push('i'),
            'ŧ' => folded.push('t'),
            'ß' => folded.push_str("ss"),
            'æ' => folded.push_str("ae"),
            'œ' => folded.push_str("oe"),
            'þ' => folded.push_str("th"),
            c if c.is_whitespace() => folded.push(' '),
            c => folded.push(c),
        }
    }
    folded.nfc().collect()
}

/// The key an email is unique by and found by at login: case folded, nothing else.
/// Emails are matched by search through this key too (their local part is ASCII, see
/// [`check_email`]; an accented domain is another domain).
pub fn email_key(email: &str) -> String {
    email.to_lowercase()
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

    #[test]
    fn names_are_counted_in_characters_not_bytes() {
        let hundred = "é".repeat(100);
        assert!(check_name(&hundred, &mut FieldErrors::new()).is_some());
        let mut errors = FieldErrors::new();
        assert!(check_name(&"é".repeat(101), &mut errors).is_none());
        assert_eq!(errors["name"], "must be at most 100 characters");
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
    fn match_keys_fold_case_and_accents_of_all_of_unicode() {
        assert_eq!(match_key("ÄÖÜ Zoë"), "aou zoe");
        assert_eq!(match_key("Björn"), match_key("bjorn"));
        assert_eq!(match_key("ÅSA"), match_key("åsa"));
        assert_eq!(match_key("Bjørn Łukasz Straße"), "bjorn lukasz strasse");
        // Decomposed input (NFD, as macOS writes names) folds the same as composed.
        assert_eq!(match_key("Jose\u{301}"), "jose");
        assert_eq!(match_key("Ｂｊöｒｎ\u{a0}ﬁn"), "bjorn fin");
        // Other scripts keep their letters (Hangul recomposes; Cyrillic accents fold
        // as Latin ones do).
        assert_eq!(match_key("한국"), "한국");
        assert_eq!(match_key("Ёлка"), "елка");
        assert_eq!(match_key("नमस्ते"), "नमस्ते");
    }

    #[test]
    fn email_keys_fold_case_only() {
        assert_eq!(email_key("José@Bücher.DE"), "josé@bücher.de");
        assert_ne!(email_key("jose@bücher.de"), email_key("jose@bucher.de"));
    }
}
