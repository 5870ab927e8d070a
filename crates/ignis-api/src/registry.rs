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

use ignis_core::{Alias, Function, FunctionId, Qualifier};
use ignis_store::{Store, StoreError};

#[derive(Default)]
struct Index {
    by_id: HashMap<FunctionId, Arc<Function>>,
    /// Routes are unique across namespaces.
    by_route: HashMap<String, FunctionId>,
    /// Published versions read so far (they never change).
    versions: HashMap<(FunctionId, u64), Arc<Function>>,
    /// Every alias.
    aliases: HashMap<(FunctionId, String), Alias>,
}

/// What a qualified name resolved to.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub function: Arc<Function>,
    /// The alias it came through, if any.
    pub alias: Option<String>,
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
        for (id, alias) in store.list_all_aliases().await? {
            index.aliases.insert((id, alias.name.clone()), alias);
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
                .chain(index.versions.values().cloned())
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

    /// The function version `qualifier` names: the latest, a published
    /// version, or what an alias routes to (`r` uniform in [0, 1) picks
    /// between an alias's versions).
    pub async fn resolve(
        &self,
        id: &FunctionId,
        qualifier: &Qualifier,
        r: f64,
    ) -> Result<Resolved, StoreError> {
        let latest = self
            .get(id)
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let (version, alias) = match qualifier {
            Qualifier::Latest => {
                return Ok(Resolved {
                    function: latest,
                    alias: None,
                })
            }
            Qualifier::Version(v) => (*v, None),
            Qualifier::Alias(name) => {
                let alias = self
                    .read()
                    .aliases
                    .get(&(id.clone(), name.clone()))
                    .cloned()
                    .ok_or_else(|| StoreError::AliasNotFound {
                        function: id.to_string(),
                        alias: name.clone(),
                    })?;
                (alias.pick(r), Some(name.clone()))
            }
        };
        Ok(Resolved {
            function: self.version(id, version).await?,
            alias,
        })
    }

    /// A published version (from memory once read).
    pub async fn version(
        &self,
        id: &FunctionId,
        version: u64,
    ) -> Result<Arc<Function>, StoreError> {
        if let Some(f) = self.read().versions.get(&(id.clone(), version)) {
            return Ok(f.clone());
        }
        let f = self.store.get_version(id, version).await?.ok_or_else(|| {
            StoreError::VersionNotFound {
                function: id.to_string(),
                version,
            }
        })?;
        if !f.published {
            return Err(StoreError::NotPublished {
                function: id.to_string(),
                version,
            });
        }
        let f = Arc::new(f);
        // A deleted function's versions are not remembered.
        let mut index = self.write();
        if index.by_id.contains_key(id) {
            index.versions.insert((id.clone(), version), f.clone());
        }
        Ok(f)
    }

    /// Forgets a deleted published version.
    pub fn remove_version(&self, id: &FunctionId, version: u64) -> Option<Arc<Function>> {
        let old = self.write().versions.remove(&(id.clone(), version))?;
        self.retire(&old);
        Some(old)
    }

    /// The aliases of a function, by name.
    pub fn aliases(&self, id: &FunctionId) -> Vec<Alias> {
        let mut v: Vec<Alias> = self
            .read()
            .aliases
            .iter()
            .filter(|((f, _), _)| f == id)
            .map(|(_, a)| a.clone())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn alias(&self, id: &FunctionId, name: &str) -> Option<Alias> {
        self.read()
            .aliases
            .get(&(id.clone(), name.to_string()))
            .cloned()
    }

    /// Records an alias the store just wrote.
    pub fn put_alias(&self, id: &FunctionId, alias: Alias) {
        self.write()
            .aliases
            .insert((id.clone(), alias.name.clone()), alias);
    }

    pub fn remove_alias(&self, id: &FunctionId, name: &str) {
        self.write().aliases.remove(&(id.clone(), name.to_string()));
    }

    /// Forgets a deleted function; returns what it was.
    pub fn remove(&self, id: &FunctionId) -> Option<Arc<Function>> {
        let mut index = self.write();
        index.aliases.retain(|(f, _), _| f != id);
        let versions: Vec<u64> = index
            .versions
            .keys()
            .filter(|(f, _)| f == id)
            .map(|(_, v)| *v)
            .collect();
        for v in versions {
            if let Some(old) = index.versions.remove(&(id.clone(), v)) {
                self.retire(&old);
            }
        }
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
