//! Passwords: argon2id with the crate's default parameters (m=19 MiB, t=2, p=1, the
//! OWASP minimum), hashed and checked on the blocking pool because each takes tens of
//! milliseconds of CPU.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::error::{ApiError, FieldErrors};

pub const MIN_CHARS: usize = 8;
/// argon2 takes any length, but an unbounded one is a free CPU sink for attackers.
pub const MAX_CHARS: usize = 1024;

/// `Ok(())` when `password` is acceptable as a new password, else why not (for a 422
/// on `field`).
pub fn check_policy(password: &str, field: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    let problem = if chars < MIN_CHARS {
        format!("must be at least {MIN_CHARS} characters")
    } else if chars > MAX_CHARS {
        format!("must be at most {MAX_CHARS} characters")
    } else {
        return Ok(());
    };
    let mut fields = FieldErrors::new();
    fields.insert(field.to_owned(), problem);
    Err(ApiError::invalid(fields))
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
        assert!(check_policy("1234567", "password").is_err());
        assert!(check_policy("12345678", "password").is_ok());
        assert!(check_policy(&"x".repeat(1025), "password").is_err());
    }
}
