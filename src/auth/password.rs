//! Passwords: the policy a new one must pass, and argon2id with the crate's default
//! parameters (m=19 MiB, t=2, p=1, the OWASP minimum), hashed and checked on the
//! blocking pool because each takes tens of milliseconds of CPU.
//!
//! The policy (ASVS 2.1) is [`Policy`], the one place every way of setting a password
//! asks (the API, the HTML forms, `switchboard user add|passwd`, the first admin):
//! - at least `--password-min-chars` characters (12 by default), at most 1024;
//! - not guessable: the zxcvbn estimator (Dropbox's, ported) must rate it at least
//!   [`MIN_SCORE`] ("safely unguessable", over 10^8 guesses). Its dictionaries are the
//!   most common passwords of the big breach corpora plus common words and names, so
//!   `password`, `12345678` and `Tr0ub4dor&3`-style variations of them fail;
//! - not built from the account's own name or email: they are given to the estimator
//!   as extra dictionary words, so `alice.smith2026` fails for Alice Smith.
//!
//! [`Policy::problems`] lists every reason at once and [`Policy::rules`] describes the
//! policy, so a form can show them while the user types.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::Serialize;
use zxcvbn::Score;
use zxcvbn::feedback::Warning;
use zxcvbn::matching::patterns::MatchPattern;

use crate::error::{ApiError, FieldErrors};

/// The default shortest password (ASVS 2.1.1), `--password-min-chars`.
pub const DEFAULT_MIN_CHARS: usize = 12;
/// argon2 takes any length, but an unbounded one is a free CPU sink for attackers.
pub const MAX_CHARS: usize = 1024;
/// The lowest zxcvbn score accepted: 3 of 0-4, more than 10^8 guesses.
pub const MIN_SCORE: Score = Score::Three;
/// Parts of a name or email shorter than this are not worth a dictionary entry.
const MIN_ACCOUNT_WORD_CHARS: usize = 3;

/// What a new password must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub min_chars: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            min_chars: DEFAULT_MIN_CHARS,
        }
    }
}

/// The policy in a form a page can show (and check lengths with) before submitting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Rules {
    pub min_chars: usize,
    pub max_chars: usize,
    /// The zxcvbn score (0-4) a password must reach.
    pub min_score: u8,
    pub refuses_common_passwords: bool,
    pub refuses_account_words: bool,
}

/// The account a password is for: its words may not make up the password.
#[derive(Clone, Copy, Debug, Default)]
pub struct Account<'a> {
    pub name: &'a str,
    pub email: &'a str,
}

impl Account<'_> {
    /// The name and email, whole and in parts (`Alice Smith <alice.smith@corp.example>`
    /// gives `alice smith`, `alice`, `smith`, `alice.smith@corp.example`,
    /// `alice.smith`, `corp`, ...).
    fn words(&self) -> Vec<String> {
        let mut words = Vec::new();
        for whole in [self.name, self.email] {
            let whole = whole.trim().to_lowercase();
            words.extend(
                whole
                    .split(|c: char| !c.is_alphanumeric())
                    .map(str::to_owned),
            );
            if let Some((local, _)) = whole.split_once('@') {
                words.push(local.to_owned());
            }
            words.push(whole);
        }
        words.retain(|w| w.chars().count() >= MIN_ACCOUNT_WORD_CHARS);
        words.sort();
        words.dedup();
        words
    }
}

impl Policy {
    pub fn new(min_chars: usize) -> Self {
        Self { min_chars }
    }

    pub fn rules(&self) -> Rules {
        Rules {
            min_chars: self.min_chars,
            max_chars: MAX_CHARS,
            min_score: MIN_SCORE.into(),
            refuses_common_passwords: true,
            refuses_account_words: true,
        }
    }

    /// Every reason `password` is refused for `account`, as phrases that follow the
    /// field's name ("must be at least 12 characters"); empty when it is acceptable.
    pub fn problems(&self, password: &str, account: Account<'_>) -> Vec<String> {
        let chars = password.chars().count();
        let mut problems = Vec::new();
        if chars < self.min_chars {
            problems.push(format!("must be at least {} characters", self.min_chars));
        }
        if chars > MAX_CHARS {
            // Not worth estimating (zxcvbn would read the first 100 characters).
            problems.push(format!("must be at most {MAX_CHARS} characters"));
            return problems;
        }
        let words = account.words();
        let inputs: Vec<&str> = words.iter().map(String::as_str).collect();
        let estimate = zxcvbn::zxcvbn(password, &inputs);
        // zxcvbn prices a password of several parts at 10^4 guesses per extra part
        // at least, so `CarlaDiaz2026` passes for Carla Diaz: her own words are worth
        // nothing to someone guessing at her account, so what is left without them
        // must pass on its own.
        let rest_is_weak = without_account_words(password, &words)
            .is_some_and(|rest| zxcvbn::zxcvbn(rest.trim(), &inputs).score() < MIN_SCORE);
        if estimate.score() >= MIN_SCORE && !rest_is_weak {
            return problems;
        }
        let from_account = rest_is_weak
            || estimate
                .sequence()
                .iter()
                .any(|part| is_account_word(part, &words));
        let warning = estimate.feedback().and_then(|f| f.warning());
        problems.push(match warning {
            _ if from_account => "must not be built from your name or email address".to_owned(),
            Some(
                Warning::ThisIsATop10Password
                | Warning::ThisIsATop100Password
                | Warning::ThisIsACommonPassword,
            ) => "is one of the most common passwords (it is in lists of breached passwords)"
                .to_owned(),
            Some(Warning::ThisIsSimilarToACommonlyUsedPassword) => {
                "is too close to a common password (lists of breached passwords have it)".to_owned()
            }
            Some(warning) => format!(
                "is too easy to guess: {} Add more words that do not belong together",
                warning.to_string().to_lowercase()
            ),
            None => "is too easy to guess: add more words that do not belong together".to_owned(),
        });
        problems
    }

    /// The first reason `password` is refused, if any.
    pub fn check(&self, password: &str, account: Account<'_>) -> Result<(), String> {
        match self.problems(password, account).into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// [`Self::check`] as a 422 on `field`.
    pub fn check_field(
        &self,
        password: &str,
        account: Account<'_>,
        field: &str,
    ) -> Result<(), ApiError> {
        self.check(password, account).map_err(|problem| {
            let mut fields = FieldErrors::new();
            fields.insert(field.to_owned(), problem);
            ApiError::invalid(fields)
        })
    }

    /// A random password that passes this policy (generated ones always do; the loop
    /// is there so that is checked rather than assumed).
    pub fn generate(&self, account: Account<'_>) -> String {
        loop {
            let candidate = random_password();
            if self.check(&candidate, account).is_ok() {
                return candidate;
            }
        }
    }
}

/// `password` in lower case with every account word (forwards or backwards) taken
/// out, or `None` when it contains none.
fn without_account_words(password: &str, words: &[String]) -> Option<String> {
    let mut rest = password.to_lowercase();
    let mut forms: Vec<String> = words
        .iter()
        .flat_map(|w| [w.clone(), w.chars().rev().collect()])
        .collect();
    // Longest first, so `alice.smith` goes before `alice` would leave `.smith`.
    forms.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
    let mut found = false;
    for form in forms {
        if rest.contains(&form) {
            rest = rest.replace(&form, " ");
            found = true;
        }
    }
    found.then_some(rest)
}

/// Whether a part of a password is one of the account's words (zxcvbn found it in
/// their dictionary, maybe reversed, with l33t substitutions or repeated).
fn is_account_word(part: &zxcvbn::Match, words: &[String]) -> bool {
    match &part.pattern {
        MatchPattern::Dictionary(word) => words.contains(&word.matched_word),
        MatchPattern::Repeat(repeat) => repeat
            .base_matches
            .iter()
            .any(|base| is_account_word(base, words)),
        _ => false,
    }
}

/// The PHC string of a fresh argon2id hash.
pub async fn hash(password: String) -> anyhow::Result<String> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await?
}

/// Whether `password` matches `hash`. A malformed stored hash counts as no match.
pub async fn verify(password: String, hash: String) -> anyhow::Result<bool> {
    let span = tracing::Span::current();
    Ok(tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await?)
}

/// Random text for generated passwords and throwaway hashes: 18 bytes of entropy in
/// 24 URL-safe characters.
pub fn random_password() -> String {
    super::random_token(18)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: Account<'static> = Account {
        name: "Alice Smith",
        email: "alice.smith@corp.example",
    };

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hash = hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify("correct horse".into(), hash.clone()).await.unwrap());
        assert!(!verify("wrong horse".into(), hash).await.unwrap());
        assert!(!verify("x".into(), "not a hash".into()).await.unwrap());
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        let policy = Policy::default();
        let eleven = "vX9#kq2!Lm4";
        assert_eq!(
            policy.check(eleven, ALICE).unwrap_err(),
            "must be at least 12 characters"
        );
        assert!(policy.check("vX9#kq2!Lm4z", ALICE).is_ok());
        assert_eq!(
            policy.check(&"x".repeat(1025), ALICE).unwrap_err(),
            "must be at most 1024 characters"
        );
        // The minimum is the configured one.
        assert!(Policy::new(10).check("vX9#kq2!Lm", ALICE).is_ok());
        assert!(Policy::new(16).check("vX9#kq2!Lm4z", ALICE).is_err());
    }

    #[test]
    fn common_and_breached_passwords_are_refused_whatever_their_length() {
        let policy = Policy::new(8);
        for common in [
            "password",
            "12345678",
            "qwertyuiop",
            "iloveyou",
            "Password123!",
            "P@ssw0rd",
            "passwordpassword",
            "1234567890123",
            "aaaaaaaaaaaaaaaa",
            "abcdefghijklmnop",
            "qwertyuiopasdfgh",
        ] {
            let problem = policy.check(common, ALICE).unwrap_err();
            assert!(
                problem.contains("common") || problem.contains("guess"),
                "{common:?}: {problem}"
            );
        }
        let problem = policy.check("password", ALICE).unwrap_err();
        assert!(problem.contains("breached"), "{problem}");
    }

    #[test]
    fn passwords_built_from_the_account_are_refused() {
        let policy = Policy::default();
        for own in [
            "alice.smith@corp.example",
            "Alice.Smith2026",
            "AliceSmith2026!",
            "smith-alice-1990",
            "alicesmithalicesmith",
            "htims.ecila!!",
            "CorpAlice2026",
        ] {
            assert_eq!(
                policy.check(own, ALICE).unwrap_err(),
                "must not be built from your name or email address",
                "{own:?}"
            );
        }
        // The account's words are what refuses it: for somebody else it passes.
        let bob = Account {
            name: "Bob Jones",
            email: "bob@example.com",
        };
        assert_eq!(policy.check("AliceSmith2026!", bob), Ok(()));
        // Her words beside enough of something else are fine.
        assert_eq!(
            policy.check("alice likes tangerine otter violin", ALICE),
            Ok(())
        );
    }

    #[test]
    fn strong_passwords_pass() {
        let policy = Policy::default();
        for strong in [
            "correct horse battery staple",
            "tangerine otter violin 42",
            "vX9#kq2!Lm4z",
            "Gl4ss-Pebble-Orbit-Tundra",
        ] {
            assert_eq!(policy.check(strong, ALICE), Ok(()), "{strong:?}");
        }
    }

    #[test]
    fn every_problem_is_listed_for_forms() {
        let problems = Policy::default().problems("alice.smith", ALICE);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("at least 12"));
        assert!(problems[1].contains("name or email"));
        let rules = Policy::default().rules();
        assert_eq!((rules.min_chars, rules.min_score), (12, 3));
    }

    #[test]
    fn generated_passwords_pass_the_policy() {
        let policy = Policy::default();
        for _ in 0..20 {
            let generated = policy.generate(ALICE);
            assert_eq!(policy.check(&generated, ALICE), Ok(()));
        }
    }

    #[test]
    fn refusals_are_a_422_on_the_field() {
        let refused = Policy::new(8)
            .check_field("iloveyou", ALICE, "new_password")
            .unwrap_err();
        let envelope = refused.envelope();
        assert_eq!(envelope.code, "validation_failed");
        let problem = &envelope.fields.unwrap()["new_password"];
        assert!(problem.contains("common"), "{problem}");
    }
}
