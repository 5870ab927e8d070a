//! The Engine's event stream, reduced to what ignis needs: which containers
//! died, with what exit code, and whether the kernel OOM-killed them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::query_parameters::{EventsOptions, ListContainersOptions};
use bollard::Docker;
use futures::StreamExt;
use tokio::sync::Notify;

#[derive(Debug, Default, Clone, Copy)]
pub struct Death {
    pub oom: bool,
    pub died: bool,
    pub exit_code: Option<i64>,
}

/// A live container's sandbox and what happened to it so far.
#[derive(Debug, Default, Clone)]
struct Tracked {
    sandbox: String,
    death: Death,
}

pub struct Events {
    /// By container id.
    deaths: Mutex<HashMap<String, Tracked>>,
    /// Whether the stream is up: while it is not, no event will come, and
    /// waiting for one only delays the caller.
    connected: AtomicBool,
    changed: Notify,
    /// Containers whose removal failed (the engine was down): removed when
    /// the engine answers again, so none outlives the engine's restart.
    orphans: Mutex<Vec<String>>,
    /// Sandbox ids of containers that died, for the engine.
    pub died: tokio::sync::broadcast::Sender<String>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            deaths: Mutex::default(),
            connected: AtomicBool::new(true),
            changed: Notify::new(),
            orphans: Mutex::default(),
            died: tokio::sync::broadcast::channel(256).0,
        }
    }
}

impl Events {
    /// Starts following the event stream of containers labelled
    /// `io.ignis.instance=INSTANCE`; reconnects when the stream ends, and
    /// then first reconciles with the containers the engine lists, since
    /// the deaths while it was down (the engine itself restarting, say,
    /// which kills every container) came as no event.
    pub fn watch(docker: Docker, instance: &str) -> Arc<Self> {
        let events = Arc::new(Self::default());
        let label = format!("{}={instance}", crate::backend::LABEL_INSTANCE);
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "event".to_string(),
                vec!["oom".to_string(), "die".to_string()],
            ),
            ("label".to_string(), vec![label.clone()]),
        ]);
        let weak = Arc::downgrade(&events);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            let mut first = true;
            loop {
                // After a break: reconciled before it counts as connected,
                // retried until the engine answers.
                if !first {
                    loop {
                        let Some(events) = weak.upgrade() else { return };
                        match events.reconcile(&docker, &label).await {
                            Ok(dead) => {
                                if dead > 0 {
                                    tracing::warn!(
                                        dead,
                                        "containers died while the Docker event stream was down"
                                    );
                                }
                                break;
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "the Docker engine still does not answer");
                                drop(events);
                                tokio::time::sleep(backoff).await;
                                backoff = (backoff * 2).min(Duration::from_secs(2));
                            }
                        }
                    }
                }
                first = false;
                if let Some(events) = weak.upgrade() {
                    events.connected.store(true, Ordering::SeqCst);
                }
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
                let Some(events) = weak.upgrade() else { return };
                events.connected.store(false, Ordering::SeqCst);
                drop(events);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
        events
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tracked>> {
        self.deaths.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether events arrive: false from the moment the stream broke until
    /// it is back and reconciled.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// Starts keeping the events of container `id` (sandbox `sandbox`,
    /// being created); [`Events::forget`] stops. Events of containers not
    /// tracked (already forgotten) are not kept: the map never grows beyond
    /// the live containers.
    pub fn track(&self, id: &str, sandbox: &str) {
        self.lock()
            .entry(id.to_string())
            .or_insert_with(|| Tracked {
                sandbox: sandbox.to_string(),
                death: Death::default(),
            });
    }

    /// Marks dead every tracked container the engine no longer has or has
    /// stopped (a created one not started yet is alive), and tells the
    /// engine's listeners; returns how many.
    async fn reconcile(
        &self,
        docker: &Docker,
        label: &str,
    ) -> Result<usize, bollard::errors::Error> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![label.to_string()],
            )])),
            ..Default::default()
        };
        let listed: HashMap<String, String> = docker
            .list_containers(Some(options))
            .await?
            .into_iter()
            .filter_map(|c| Some((c.id?, c.state.map(|s| s.to_string()).unwrap_or_default())))
            .collect();
        let dead = self.dead_among(&listed);
        for (id, sandbox) in &dead {
            self.record(id, "die", None);
            let _ = self.died.send(sandbox.clone());
        }
        let orphans = std::mem::take(&mut *self.orphans.lock().unwrap_or_else(|p| p.into_inner()));
        for name in orphans {
            if !crate::backend::remove_container(docker, &name).await {
                self.remove_later(name);
            }
        }
        Ok(dead.len())
    }

    /// Remembers a container whose removal failed, for the next reconcile.
    pub fn remove_later(&self, name: String) {
        self.orphans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name);
    }

    /// The tracked containers (id, sandbox) that `listed` (id → state)
    /// shows gone or stopped.
    fn dead_among(&self, listed: &HashMap<String, String>) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .filter(|(id, t)| {
                !t.death.died
                    && listed
                        .get(*id)
                        .is_none_or(|state| matches!(state.as_str(), "exited" | "dead"))
            })
            .map(|(id, t)| (id.clone(), t.sandbox.clone()))
            .collect()
    }

    fn record(&self, id: &str, action: &str, exit_code: Option<i64>) {
        {
            let mut deaths = self.lock();
            let Some(Tracked { death: d, .. }) = deaths.get_mut(id) else {
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
        self.lock().get(id).map(|t| t.death)
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
            events.track(&id, "sb");
            events.record(&id, "oom", None);
            assert!(events.get(&id).is_some_and(|d| d.oom));
            events.forget(&id);
            events.record(&id, "die", Some(137));
        }
        assert!(events.lock().is_empty());
        events.track("live", "sb-live");
        events.record("live", "die", Some(3));
        let d = events.get("live").unwrap();
        assert!(d.died);
        assert_eq!(d.exit_code, Some(3));
    }

    /// After the stream was down, the tracked containers the engine lists
    /// as stopped or no longer lists are dead; created and running ones
    /// are not, nor those already known dead.
    #[test]
    fn reconciling_finds_the_deaths_the_stream_missed() {
        let events = Events::default();
        for (id, sandbox) in [
            ("run", "a"),
            ("new", "b"),
            ("exited", "c"),
            ("gone", "d"),
            ("known", "e"),
        ] {
            events.track(id, sandbox);
        }
        events.record("known", "die", Some(1));
        let listed = HashMap::from(
            [
                ("run", "running"),
                ("new", "created"),
                ("exited", "exited"),
                ("known", "exited"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string())),
        );
        let mut dead = events.dead_among(&listed);
        dead.sort();
        assert_eq!(
            dead,
            vec![
                ("exited".to_string(), "c".to_string()),
                ("gone".to_string(), "d".to_string())
            ]
        );
    }
}
