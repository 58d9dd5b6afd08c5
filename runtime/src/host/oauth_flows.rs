//! Pending `tether auth login --via-host` flows. They live in the host service because it
//! is the process that receives `oauth.callback` from the relay (contract section 5).

use std::collections::HashMap;
use std::sync::Mutex;

use super::control::api::FlowStatus;
use crate::sync::lock;

/// How long a flow waits for its callback.
pub const FLOW_TTL_MS: i64 = 5 * 60 * 1000;

/// One pending flow.
#[derive(Debug, Clone)]
pub struct Flow {
    /// The PKCE verifier for the code exchange.
    pub verifier: crate::auth::secret::Secret,
    /// The redirect URI the authorize request named (the relay's callback).
    pub redirect_uri: String,
    /// When it expires, unix ms.
    pub deadline_ms: i64,
    /// Where it stands.
    pub status: FlowStatus,
    /// True once a callback was accepted; later callbacks for the same state are refused.
    pub claimed: bool,
}

/// The flows of this host service, by `state`.
#[derive(Debug)]
pub struct PendingFlows {
    map: Mutex<HashMap<String, Flow>>,
    ttl_ms: i64,
}

impl Default for PendingFlows {
    fn default() -> Self {
        Self::with_ttl(FLOW_TTL_MS)
    }
}

impl PendingFlows {
    /// Flows that expire `ttl_ms` after they start.
    pub fn with_ttl(ttl_ms: i64) -> Self {
        PendingFlows {
            map: Mutex::new(HashMap::new()),
            ttl_ms,
        }
    }

    /// How long a flow lives.
    pub fn ttl_ms(&self) -> i64 {
        self.ttl_ms
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Flow>) -> T) -> T {
        f(&mut lock(&self.map))
    }

    /// Adds a flow, sweeping every expired one first.
    pub fn insert(&self, state: String, verifier: String, redirect_uri: String, now_ms: i64) {
        self.with(|map| {
            map.retain(|_, flow| flow.deadline_ms > now_ms);
            map.insert(
                state,
                Flow {
                    verifier: crate::auth::secret::Secret::new(verifier),
                    redirect_uri,
                    deadline_ms: now_ms + self.ttl_ms,
                    status: FlowStatus::Pending,
                    claimed: false,
                },
            );
        });
    }

    /// Where the flow `state` stands; `None` for a state this process never issued (or swept).
    pub fn status(&self, state: &str, now_ms: i64) -> Option<FlowStatus> {
        self.with(|map| {
            map.get(state).map(|flow| match &flow.status {
                FlowStatus::Pending if flow.deadline_ms <= now_ms => FlowStatus::Expired,
                status => status.clone(),
            })
        })
    }

    /// Claims a pending flow for its callback: its verifier and redirect URI, or why not.
    pub fn claim(&self, state: &str, now_ms: i64) -> Result<(String, String), String> {
        self.with(|map| {
            let Some(flow) = map.get_mut(state) else {
                return Err("no pending login with this state".to_string());
            };
            if flow.deadline_ms <= now_ms {
                flow.status = FlowStatus::Expired;
                return Err("the login expired".into());
            }
            if flow.claimed {
                return Err("this login was already completed".into());
            }
            flow.claimed = true;
            Ok((
                flow.verifier.expose().to_string(),
                flow.redirect_uri.clone(),
            ))
        })
    }

    /// Records how a claimed flow ended.
    pub fn finish(&self, state: &str, status: FlowStatus) {
        self.with(|map| {
            if let Some(flow) = map.get_mut(state) {
                flow.status = status;
            }
        });
    }

    /// How many flows are held (expired ones included until the next insert).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.with(|map| map.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_expires_after_five_minutes() {
        let flows = PendingFlows::default();
        flows.insert("s".into(), "v".into(), "r".into(), 0);
        assert_eq!(
            flows.status("s", FLOW_TTL_MS - 1),
            Some(FlowStatus::Pending)
        );
        assert_eq!(flows.status("s", FLOW_TTL_MS), Some(FlowStatus::Expired));
        assert!(flows.claim("s", FLOW_TTL_MS + 1).is_err());
    }

    #[test]
    fn expired_flows_are_swept_on_insert() {
        let flows = PendingFlows::default();
        flows.insert("old".into(), "v".into(), "r".into(), 0);
        flows.insert("new".into(), "v".into(), "r".into(), FLOW_TTL_MS + 1);
        assert_eq!(flows.len(), 1);
        assert_eq!(flows.status("old", FLOW_TTL_MS + 1), None);
    }

    #[test]
    fn only_the_first_callback_counts() {
        let flows = PendingFlows::default();
        flows.insert("s".into(), "verifier".into(), "redirect".into(), 0);
        assert_eq!(
            flows.claim("s", 1),
            Ok(("verifier".into(), "redirect".into()))
        );
        assert!(flows.claim("s", 2).is_err());
        flows.finish("s", FlowStatus::Complete);
        assert_eq!(flows.status("s", 3), Some(FlowStatus::Complete));
    }
}
