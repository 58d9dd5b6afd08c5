//! What a failing scenario reports besides its error: the last processes it ran (exit
//! code, stdout, stderr) and the tails of the host logs of its machines.

use crate::lock::lock;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// Notes kept per scenario; older ones are dropped first.
const KEEP: usize = 8;
/// Characters kept of one note (the end, where the error usually is).
const NOTE_CHARS: usize = 4000;

tokio::task_local! {
    static NOTES: Arc<Mutex<Vec<String>>>;
}

/// Records `note` for the scenario running on this task (nothing outside a scenario).
pub fn record(note: String) {
    let note = match note.char_indices().rev().nth(NOTE_CHARS) {
        Some((cut, _)) => format!("…{}", &note[cut..]),
        None => note,
    };
    let _ = NOTES.try_with(|notes| {
        let mut notes = lock(notes);
        if notes.len() == KEEP {
            notes.remove(0);
        }
        notes.push(note);
    });
}

/// Runs `scenario`; a failure carries the notes recorded while it ran.
pub async fn collect(scenario: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let notes = Arc::new(Mutex::new(Vec::new()));
    let result = NOTES.scope(notes.clone(), scenario).await;
    result.map_err(|e| {
        let notes = std::mem::take(&mut *lock(&notes));
        if notes.is_empty() {
            e
        } else {
            anyhow::anyhow!(
                "{e:#}\n--- what its processes printed (latest last) ---\n{}",
                notes.join("\n--\n")
            )
        }
    })
}
