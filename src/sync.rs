//! The crate's one way to take a `std::sync::Mutex` (clippy's `disallowed-methods`
//! refuses `Mutex::lock` everywhere else, see clippy.toml).
//!
//! Every std lock here guards state that stays consistent across a panic (each change
//! is one insert, remove or assignment), so a poisoned lock is recovered rather than
//! turned into a second panic. That matters most in `Drop` impls such as the hub's
//! `Connection`: a panic there while another panic unwinds aborts the whole server.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, recovering it if a panic poisoned it.
#[allow(clippy::disallowed_methods)]
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_recovered_with_its_value() {
        let mutex = std::sync::Arc::new(Mutex::new(1));
        let held = mutex.clone();
        let _ = std::thread::spawn(move || {
            let mut value = lock(&held);
            *value = 2;
            panic!("while holding the lock");
        })
        .join();
        assert!(mutex.is_poisoned());
        assert_eq!(*lock(&mutex), 2);
    }
}
