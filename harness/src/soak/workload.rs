//! The soak's terminals: printers of numbered lines, typists whose numbered lines `cat`
//! echoes, idle shells, and one terminal opened and closed every few seconds. Each reader
//! checks, as bytes arrive, that every line comes exactly once and in order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

use crate::lock::lock;
use crate::relay::terminal::Terminal;
use crate::relay::{Relay, TerminalEvent};

/// 100 numbered lines, then 50 ms: about 1 MiB a minute per printer.
const PRINTER: &str =
    "i=1; while :; do echo P$i; [ $((i % 100)) = 0 ] && sleep 0.05; i=$((i+1)); done";
/// Typed lines come back from `cat` (no tty echo, so each line once).
const TYPIST: &str = "stty -echo; echo ready; cat";

/// What the readers found, shared with the soak.
#[derive(Debug, Default)]
pub struct Tally {
    /// Broken invariants, with where.
    pub violations: Vec<String>,
    /// Printed lines received, all printers.
    pub printed: u64,
    /// Typed lines echoed, all typists.
    pub echoed: u64,
    /// Typed lines sent.
    pub typed: u64,
    /// Terminals opened and closed by the churn.
    pub churned: u64,
}

/// The running workload.
pub struct Workload {
    /// What the readers found.
    pub tally: Arc<Mutex<Tally>>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    idle: Vec<Terminal>,
}

/// Checks numbered lines `<prefix><n>` as bytes arrive.
struct LineCheck {
    name: String,
    prefix: char,
    next: u64,
    partial: Vec<u8>,
}

impl LineCheck {
    fn new(name: String, prefix: char) -> Self {
        LineCheck {
            name,
            prefix,
            next: 1,
            partial: Vec::new(),
        }
    }

    /// Feeds bytes; returns complete lines checked, or the first wrong one.
    fn feed(&mut self, bytes: &[u8]) -> Result<u64, String> {
        self.partial.extend_from_slice(bytes);
        let mut lines = 0;
        while let Some(end) = self.partial.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = self.partial.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&line[..end]).into_owned();
            if text == "ready" {
                continue;
            }
            let want = format!("{}{}", self.prefix, self.next);
            if text != want {
                return Err(format!(
                    "{}: got line {text:?} where {want:?} was due (lost or repeated output)",
                    self.name
                ));
            }
            self.next += 1;
            lines += 1;
        }
        Ok(lines)
    }
}

impl Workload {
    /// Opens the 20 terminals and starts typing and churning.
    pub async fn start(relay: Arc<Relay>, host: &str, seed: u64) -> anyhow::Result<Workload> {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        for i in 0..5 {
            let terminal = relay.open_terminal("org_a", host, Some(PRINTER)).await?;
            let check = LineCheck::new(format!("printer {i}"), 'P');
            tasks.push(tokio::spawn(read(
                terminal,
                check,
                tally.clone(),
                stopped.clone(),
                false,
            )));
        }
        for i in 0..10 {
            let mut terminal = relay.open_terminal("org_a", host, Some(TYPIST)).await?;
            terminal
                .read_until("ready\r\n", Duration::from_secs(10))
                .await
                .with_context(|| format!("typist {i} did not start"))?;
            let typist = terminal.typist();
            let check = LineCheck::new(format!("typist {i}"), 'T');
            tasks.push(tokio::spawn(read(
                terminal,
                check,
                tally.clone(),
                stopped.clone(),
                true,
            )));
            let mut rng = StdRng::seed_from_u64(seed ^ (i as u64 + 1));
            let (tally, mut stopped) = (tally.clone(), stopped.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 1u64;
                while !*stopped.borrow() {
                    if typist.send(format!("T{n}\n").as_bytes()).is_ok() {
                        n += 1;
                        lock(&tally).typed += 1;
                    }
                    let pause = Duration::from_millis(rng.random_range(150..450));
                    let _ = tokio::time::timeout(pause, stopped.changed()).await;
                }
            }));
        }
        let mut idle = Vec::new();
        for _ in 0..5 {
            idle.push(relay.open_terminal("org_a", host, Some("exec sh")).await?);
        }
        tasks.push(tokio::spawn(churn(
            relay,
            host.to_string(),
            seed,
            tally.clone(),
            stopped,
        )));
        Ok(Workload {
            tally,
            stop,
            tasks,
            idle,
        })
    }

    /// Stops typing and churning, lets the typed lines drain, and checks that every idle
    /// shell still answers.
    pub async fn finish(mut self) -> anyhow::Result<Arc<Mutex<Tally>>> {
        self.stop.send_replace(true);
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
        for (i, terminal) in self.idle.iter_mut().enumerate() {
            let alive = async {
                terminal.send(format!("echo alive-$(({i}+100))\n").as_bytes())?;
                terminal
                    .read_until(&format!("alive-{}", i + 100), Duration::from_secs(15))
                    .await
            };
            if let Err(e) = alive.await {
                lock(&self.tally)
                    .violations
                    .push(format!("idle shell {i} does not answer: {e:#}"));
            }
        }
        let tally = self.tally.clone();
        {
            let mut t = lock(&tally);
            if t.echoed != t.typed {
                let (echoed, typed) = (t.echoed, t.typed);
                t.violations
                    .push(format!("{typed} lines typed, {echoed} came back"));
            }
        }
        Ok(tally)
    }
}

/// Reads one terminal until stopped (typists: and until every typed line came back).
async fn read(
    mut terminal: Terminal,
    mut check: LineCheck,
    tally: Arc<Mutex<Tally>>,
    stopped: watch::Receiver<bool>,
    typist: bool,
) {
    let mut quiet_since_stop = 0;
    loop {
        let event = terminal.next_event(Duration::from_millis(500)).await;
        match event {
            Some(TerminalEvent::Output(bytes)) => match check.feed(&bytes) {
                Ok(lines) => {
                    let mut t = lock(&tally);
                    if typist {
                        t.echoed += lines;
                    } else {
                        t.printed += lines;
                    }
                }
                Err(violation) => {
                    lock(&tally).violations.push(violation);
                    return;
                }
            },
            Some(TerminalEvent::Gap(from, to)) => {
                let name = check.name.clone();
                lock(&tally)
                    .violations
                    .push(format!("{name}: session.gap {from}..{to}"));
                return;
            }
            Some(TerminalEvent::Exit(code)) => {
                let name = check.name.clone();
                lock(&tally)
                    .violations
                    .push(format!("{name}: the terminal exited ({code:?})"));
                return;
            }
            Some(_) => {}
            None if *stopped.borrow() => {
                // Printers stop being read at once; typists once their lines are back.
                let done = !typist || {
                    let t = lock(&tally);
                    t.echoed >= t.typed
                };
                quiet_since_stop += 1;
                if done || quiet_since_stop > 40 {
                    return;
                }
            }
            None => {}
        }
        if *stopped.borrow() && !typist {
            return;
        }
    }
}

/// Opens a shell every 3–5 s, checks it answers, closes it.
async fn churn(
    relay: Arc<Relay>,
    host: String,
    seed: u64,
    tally: Arc<Mutex<Tally>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xC4);
    let mut n = 0u64;
    while !*stopped.borrow() {
        let pause = Duration::from_millis(rng.random_range(3000..5000));
        if tokio::time::timeout(pause, stopped.changed()).await.is_ok() {
            return;
        }
        n += 1;
        let Ok(mut terminal) =
            relay.request_terminal("org_a", &host, &format!("churn_{n}"), Some("exec sh"))
        else {
            // Not connected (a scheduled disruption): tried again, not counted as lost.
            continue;
        };
        let once = async {
            terminal.send(format!("echo churn-$(({n}*2))\n").as_bytes())?;
            terminal
                .read_until(&format!("churn-{}", n * 2), Duration::from_secs(20))
                .await
        };
        let answered = once.await;
        // Closed whatever happened: an open held up by a stall reaches the host later, and
        // a client that gave up must not leave its shell behind.
        let mut closed = terminal.close();
        for _ in 0..30 {
            if closed.is_ok() {
                break;
            }
            // Not connected just now: the close waits for the host to be back.
            tokio::time::sleep(Duration::from_secs(1)).await;
            closed = terminal.close();
        }
        match answered.and(closed) {
            Ok(_) => lock(&tally).churned += 1,
            // A churn that met a scheduled disruption is tried again, not counted as lost.
            Err(e) => tracing::info!("churn terminal {n}: {e:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_checked_across_chunks_and_a_repeat_is_caught() {
        let mut check = LineCheck::new("t".into(), 'P');
        assert_eq!(check.feed(b"P1\r\nP2\r"), Ok(1));
        assert_eq!(check.feed(b"\nP3\r\n"), Ok(2));
        assert!(check.feed(b"P3\r\n").is_err(), "a repeated line passed");
        let mut check = LineCheck::new("t".into(), 'P');
        assert!(check.feed(b"P1\r\nP3\r\n").is_err(), "a lost line passed");
    }
}
