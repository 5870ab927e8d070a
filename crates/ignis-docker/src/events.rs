//! The Engine's event stream, reduced to what ignis needs: which containers
//! died, with what exit code, and whether the kernel OOM-killed them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::query_parameters::EventsOptions;
use bollard::Docker;
use futures::StreamExt;
use tokio::sync::Notify;

#[derive(Debug, Default, Clone, Copy)]
pub struct Death {
    pub oom: bool,
    pub died: bool,
    pub exit_code: Option<i64>,
}

pub struct Events {
    deaths: Mutex<HashMap<String, Death>>,
    changed: Notify,
    /// Sandbox ids of containers that died, for the engine.
    pub died: tokio::sync::broadcast::Sender<String>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            deaths: Mutex::default(),
            changed: Notify::new(),
            died: tokio::sync::broadcast::channel(256).0,
        }
    }
}

impl Events {
    /// Starts following the event stream of containers labelled
    /// `io.ignis.instance=INSTANCE`; reconnects when the stream ends.
    pub fn watch(docker: Docker, instance: &str) -> Arc<Self> {
        let events = Arc::new(Self::default());
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "event".to_string(),
                vec!["oom".to_string(), "die".to_string()],
            ),
            (
                "label".to_string(),
                vec![format!("{}={instance}", crate::backend::LABEL_INSTANCE)],
            ),
        ]);
        let weak = Arc::downgrade(&events);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let options = EventsOptions {
                    filters: Some(filters.clone()),
                    ..Default::default()
                };
                let mut stream = docker.events(Some(options));
                while let Some(item) = stream.next().await {
                    let Some(events) = weak.upgrade() else { return };
                    match item {
                        Ok(msg) => {
                            backoff = Duration::from_millis(100);
                            let Some(actor) = msg.actor else { continue };
                            let Some(id) = actor.id else { continue };
                            let attrs = actor.attributes.unwrap_or_default();
                            let exit_code = attrs.get("exitCode").and_then(|c| c.parse().ok());
                            let action = msg.action.as_deref().unwrap_or("");
                            events.record(&id, action, exit_code);
                            if action == "die" {
                                if let Some(sandbox) = attrs.get(crate::backend::LABEL_SANDBOX) {
                                    let _ = events.died.send(sandbox.clone());
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "docker event stream failed");
                            break;
                        }
                    }
                }
                if weak.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
        events
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Death>> {
        self.deaths.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts keeping the events of container `id` (a sandbox being
    /// created); [`Events::forget`] stops. Events of containers not tracked
    /// (already forgotten) are not kept: the map never grows beyond the
    /// live containers.
    pub fn track(&self, id: &str) {
        self.lock().entry(id.to_string()).or_default();
    }

    fn record(&self, id: &str, action: &str, exit_code: Option<i64>) {
        {
            let mut deaths = self.lock();
            let Some(d) = deaths.get_mut(id) else {
                return;
            };
            match action {
                "oom" => d.oom = true,
                "die" => {
                    d.died = true;
                    d.exit_code = exit_code;
                }
                _ => return,
            }
        }
        tracing::debug!(container = %id, action, ?exit_code, "container event");
        self.changed.notify_waiters();
    }

    pub fn get(&self, id: &str) -> Option<Death> {
        self.lock().get(id).copied()
    }

    /// Waits until the container's `die` event arrived, at most `timeout`.
    pub async fn wait_died(&self, id: &str, timeout: Duration) -> Option<Death> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if let Some(d) = self.get(id).filter(|d| d.died) {
                return Some(d);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.get(id);
            }
        }
    }

    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `die` that arrives after the sandbox was forgotten (destroyed)
    /// used to re-insert it: 10k short-lived containers must leave nothing.
    #[test]
    fn the_map_stays_bounded_by_live_containers() {
        let events = Events::default();
        for i in 0..10_000 {
            let id = format!("c{i}");
            events.track(&id);
            events.record(&id, "oom", None);
            assert!(events.get(&id).is_some_and(|d| d.oom));
            events.forget(&id);
            events.record(&id, "die", Some(137));
        }
        assert!(events.lock().is_empty());
        events.track("live");
        events.record("live", "die", Some(3));
        let d = events.get("live").unwrap();
        assert!(d.died);
        assert_eq!(d.exit_code, Some(3));
    }
}
