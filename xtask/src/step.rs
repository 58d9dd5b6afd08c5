//! A timed step of a long command: `==> name` before, `==> name ok (12.3s)` after, and
//! the step's name on its error.

use std::time::Instant;

use anyhow::Context;

/// Runs `f` as the step `name`.
pub fn step<T>(name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let started = Instant::now();
    eprintln!("==> {name}");
    let value = f().with_context(|| format!("{name} failed"))?;
    eprintln!("==> {name} ok ({:.1}s)", started.elapsed().as_secs_f64());
    Ok(value)
}
