//! Deterministic synthetic users for `switchboard seed --users N`: user `i` is always
//! the same person, so benchmarks and demos are repeatable and seeding twice adds
//! nobody (the email is unique).

use super::model::{NewUser, Role};
use crate::store::{Store, StoreResult};

const FIRST: &[&str] = &[
    "Alice",
    "Bob",
    "Charlie",
    "Diana",
    "Edward",
    "Fatima",
    "George",
    "Hana",
    "Ivan",
    "Julia",
    "Kenji",
    "Laura",
    "Mohamed",
    "Nina",
    "Oscar",
    "Priya",
    "Quentin",
    "Rosa",
    "Samuel",
    "Tara",
    "Umar",
    "Valeria",
    "William",
    "Xiu",
    "Yusuf",
    "Zoë",
    "Amélie",
    "Björn",
    "Chloé",
    "Dmitri",
    "Élodie",
    "François",
    "Gökhan",
    "Håkon",
    "Inès",
    "Jürgen",
    "Katarzyna",
    "Łukasz",
    "Mónica",
    "Noémie",
    "Øyvind",
    "Pál",
    "René",
    "Søren",
    "Tomás",
    "Ülle",
    "Vít",
    "Wojciech",
    "Ximena",
    "Yannick",
];

const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Müller",
    "Schröder",
    "Østergaard",
    "Ångström",
    "Nakamura",
    "Kowalski",
    "Novák",
    "Dubois",
    "Rossi",
    "Papadopoulos",
];

/// Users per round trip to the store: big enough to amortise, small enough to keep
/// memory flat when seeding millions.
const BATCH: u64 = 50_000;

/// Synthetic user number `i` (0-based): the first and last names cycle at different
/// rates, so names repeat (as real names do) while emails stay unique.
pub fn user(i: u64) -> NewUser {
    let first = FIRST[(i % FIRST.len() as u64) as usize];
    let last = LAST[((i / FIRST.len() as u64) % LAST.len() as u64) as usize];
    let ascii = |s: &str| {
        s.chars()
            .filter(char::is_ascii_alphabetic)
            .collect::<String>()
            .to_lowercase()
    };
    NewUser {
        name: format!("{first} {last}"),
        email: format!("{}.{}.{i}@example.test", ascii(first), ascii(last)),
        role: Role::Member,
        password_hash: None,
    }
}

/// Adds synthetic users `0..count`, skipping those already present; returns how many
/// were added.
pub async fn seed(store: &dyn Store, count: u64) -> StoreResult<u64> {
    let mut added = 0;
    let mut start = 0;
    while start < count {
        let end = (start + BATCH).min(count);
        let batch: Vec<NewUser> = (start..end).map(user).collect();
        added += store.insert_users_bulk(&batch).await?;
        start = end;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_deterministic_and_emails_unique() {
        assert_eq!(user(7).email, user(7).email);
        let emails: std::collections::HashSet<_> = (0..10_000).map(|i| user(i).email).collect();
        assert_eq!(emails.len(), 10_000);
        assert_eq!(user(0).name, "Alice Smith");
    }
}
