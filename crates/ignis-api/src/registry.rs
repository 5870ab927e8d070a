//! The deployed functions, from the store, with an in-memory index by id
//! (namespace and name) and by route so that the invoke path never waits
//! for SQLite.
//!
//! The registry also decides when code may be collected: a function version
//! that was replaced or deleted may still be in use (a call accepted before
//! the change holds its `Arc<Function>` while its sandbox cold-starts and
//! reads the code). Such versions are remembered by weak reference, and
//! their code is kept until the last holder lets go.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, Weak};

use ignis_core::{Function, FunctionId};
use ignis_store::{Store, StoreError};

#[derive(Default)]
struct Index {
    by_id: HashMap<FunctionId, Arc<Function>>,
    /// Routes are unique across namespaces.
    by_route: HashMap<String, FunctionId>,
}

/// Functions by id and by route. Every write goes to the store first; the
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
                index.by_route.insert(route.clone(), f.id());
            }
            index.by_id.insert(f.id(), Arc::new(f));
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
                .chain(index.by_id.values().cloned())
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

    pub fn get(&self, id: &FunctionId) -> Option<Arc<Function>> {
        self.read().by_id.get(id).cloned()
    }

    /// Every function, by namespace and name.
    pub fn list(&self) -> Vec<Arc<Function>> {
        let mut all: Vec<_> = self.read().by_id.values().cloned().collect();
        all.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        all
    }

    /// The functions of one namespace, by name.
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<Function>> {
        let mut all: Vec<_> = self
            .read()
            .by_id
            .values()
            .filter(|f| f.namespace == namespace)
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The function whose route is the longest prefix of `path` at a segment
    /// boundary, and the rest of the path.
    pub fn route(&self, path: &str) -> Option<(Arc<Function>, String)> {
        let index = self.read();
        let mut prefix = path.trim_end_matches('/');
        loop {
            if let Some(id) = index.by_route.get(prefix) {
                let f = index.by_id.get(id)?.clone();
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
        let id = f.id();
        let mut index = self.write();
        if let Some(old) = index.by_id.get(&id).cloned() {
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
            index.by_route.insert(route.clone(), id.clone());
        }
        index.by_id.insert(id, f.clone());
        f
    }

    /// Forgets a deleted function; returns what it was.
    pub fn remove(&self, id: &FunctionId) -> Option<Arc<Function>> {
        let mut index = self.write();
        let old = index.by_id.remove(id)?;
        if let Some(route) = &old.config.route {
            if index.by_route.get(route) == Some(id) {
                index.by_route.remove(route);
            }
        }
        self.retire(&old);
        Some(old)
    }
}
