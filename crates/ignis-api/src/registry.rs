//! The deployed functions, from the store, with an in-memory index by name
//! and by route so that the invoke path never waits for SQLite.
//!
//! The registry also decides when code may be collected: a function version
//! that was replaced or deleted may still be in use (a call accepted before
//! the change holds its `Arc<Function>` while its sandbox cold-starts and
//! reads the code). Such versions are remembered by weak reference, and
//! their code is kept until the last holder lets go.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, Weak};

use ignis_core::Function;
use ignis_store::{Store, StoreError};

#[derive(Default)]
struct Index {
    by_name: HashMap<String, Arc<Function>>,
    by_route: HashMap<String, String>,
}

/// Functions by name and by route. Every write goes to the store first; the
/// index follows once the store has acknowledged it.
pub struct Registry {
    store: Arc<dyn Store>,
    index: RwLock<Index>,
    /// Versions replaced or deleted while calls may still hold them.
    retired: Mutex<Vec<Weak<Function>>>,
}

impl Registry {
    pub async fn load(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let mut index = Index::default();
        for f in store.list_functions().await? {
            if let Some(route) = &f.config.route {
                index.by_route.insert(route.clone(), f.name.clone());
            }
            index.by_name.insert(f.name.clone(), Arc::new(f));
        }
        Ok(Self {
            store,
            index: RwLock::new(index),
            retired: Mutex::default(),
        })
    }

    /// Removes code no function version refers to and no call in flight
    /// needs. Run after deletes and updates, and periodically (code a call
    /// held past its function's deletion goes once the call is done).
    pub async fn collect_garbage(&self) -> Result<usize, StoreError> {
        let keep: HashSet<String> = {
            let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
            retired.retain(|w| w.strong_count() > 0);
            let index = self.read();
            retired
                .iter()
                .filter_map(Weak::upgrade)
                .chain(index.by_name.values().cloned())
                .map(|f| f.code_sha256.clone())
                .collect()
        };
        let removed = self.store.collect_garbage(&keep).await?;
        if removed > 0 {
            tracing::debug!(removed, "collected unreferenced code archives");
        }
        Ok(removed)
    }

    fn retire(&self, old: &Arc<Function>) {
        self.retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(old));
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, name: &str) -> Option<Arc<Function>> {
        self.read().by_name.get(name).cloned()
    }

    pub fn list(&self) -> Vec<Arc<Function>> {
        let mut all: Vec<_> = self.read().by_name.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The function whose route is the longest prefix of `path` at a segment
    /// boundary, and the rest of the path.
    pub fn route(&self, path: &str) -> Option<(Arc<Function>, String)> {
        let index = self.read();
        let mut prefix = path.trim_end_matches('/');
        loop {
            if let Some(name) = index.by_route.get(prefix) {
                let f = index.by_name.get(name)?.clone();
                return Some((f, path[prefix.len()..].to_string()));
            }
            match prefix.rfind('/') {
                Some(0) | None => return None,
                Some(i) => prefix = &prefix[..i],
            }
        }
    }

    /// Records a function the store just wrote (created or updated).
    pub fn put(&self, f: Function) -> Arc<Function> {
        let f = Arc::new(f);
        let mut index = self.write();
        if let Some(old) = index.by_name.get(&f.name).cloned() {
            if old.version > f.version {
                // A newer write already landed.
                return old;
            }
            if let Some(route) = &old.config.route {
                index.by_route.remove(route);
            }
            self.retire(&old);
        }
        if let Some(route) = &f.config.route {
            index.by_route.insert(route.clone(), f.name.clone());
        }
        index.by_name.insert(f.name.clone(), f.clone());
        f
    }

    /// Forgets a deleted function; returns what it was.
    pub fn remove(&self, name: &str) -> Option<Arc<Function>> {
        let mut index = self.write();
        let old = index.by_name.remove(name)?;
        if let Some(route) = &old.config.route {
            if index.by_route.get(route).map(String::as_str) == Some(name) {
                index.by_route.remove(route);
            }
        }
        self.retire(&old);
        Some(old)
    }
}
