//! Locking a std `Mutex` even after a holder panicked: every critical section here
//! leaves its data whole, so the data stays usable and one panic does not spread.

use std::sync::{Mutex, MutexGuard};

/// The guard of `mutex`, poisoned or not.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
