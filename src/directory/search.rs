//! Ranking for `/api/search`: the store finds candidates, this orders them the way a
//! person typing a name expects (the exact name, then names starting with it, then a
//! word starting with it, then emails, then anything containing it).

use super::model::{User, match_key};

/// Lower is better.
fn rank(user: &User, needle: &str) -> u8 {
    let name = match_key(&user.name);
    let email = match_key(&user.email);
    if name == needle {
        0
    } else if name.starts_with(needle) {
        1
    } else if name.split_whitespace().any(|word| word.starts_with(needle)) {
        2
    } else if email.starts_with(needle) {
        3
    } else if name.contains(needle) {
        4
    } else {
        5
    }
}

/// Orders `candidates` best first (ties by name, then id) and keeps `limit`.
pub fn rank_users(mut candidates: Vec<User>, needle: &str, limit: usize) -> Vec<User> {
    candidates.sort_by_cached_key(|u| (rank(u, needle), match_key(&u.name), u.id));
    candidates.truncate(limit);
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::Role;

    fn user(id: i64, name: &str, email: &str) -> User {
        let ts = crate::timefmt::now();
        User {
            id,
            name: name.into(),
            email: email.into(),
            role: Role::Member,
            created_at: ts,
            updated_at: ts,
        }
    }

    #[test]
    fn exact_then_prefix_then_word_then_email_then_substring() {
        let users = vec![
            user(1, "Malice Cooper", "m@x.io"),
            user(2, "Bob Alison", "b@x.io"),
            user(3, "Zed", "alice@x.io"),
            user(4, "Alice Smith", "as@x.io"),
            user(5, "Alice", "a@x.io"),
        ];
        let ranked = |needle| -> Vec<i64> {
            rank_users(users.clone(), needle, 10)
                .iter()
                .map(|u| u.id)
                .collect()
        };
        assert_eq!(ranked("ali"), vec![5, 4, 2, 3, 1]);
        assert_eq!(ranked("alice smith")[0], 4, "the exact name comes first");
    }
}
