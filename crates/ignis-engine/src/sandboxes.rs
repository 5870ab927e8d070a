//! One lifecycle record per sandbox, whoever holds it (a run task, an idle
//! list, a stem pool): what it is for, how much memory it reserved, its
//! state, and its handle once booted.

use std::collections::HashMap;
use std::sync::Arc;

use ignis_core::{BackendKind, FunctionId};
use ignis_sandbox::SandboxHandle;

use crate::state::{Lifecycle, SandboxState};
use crate::stems::StemKey;

/// A sandbox's id (`sb-...`), chosen by the engine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SandboxId(String);

impl SandboxId {
    pub fn new() -> Self {
        Self(crate::new_id("sb"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for SandboxId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<&str> for SandboxId {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl std::fmt::Display for SandboxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who a sandbox is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A stem cell of a key: any function of that runtime, backend and
    /// memory size may take it.
    Stem(StemKey),
    /// Booting, initialized with, or serving one version of a function.
    Function { id: FunctionId, version: u64 },
}

impl Owner {
    pub fn function(&self) -> Option<&FunctionId> {
        match self {
            Owner::Function { id, .. } => Some(id),
            Owner::Stem(_) => None,
        }
    }
}

pub(crate) struct SandboxRecord {
    pub owner: Owner,
    pub backend: BackendKind,
    pub memory_mb: u64,
    pub life: Lifecycle,
    /// `None` while it boots.
    pub handle: Option<Arc<dyn SandboxHandle>>,
    pub created: tokio::time::Instant,
    /// Calls handed to it.
    pub calls: u64,
}

/// The records of every live sandbox.
#[derive(Default)]
pub(crate) struct Sandboxes {
    records: HashMap<SandboxId, SandboxRecord>,
}

impl Sandboxes {
    /// Books a sandbox about to boot (its memory already reserved).
    pub fn booting(&mut self, owner: Owner, backend: BackendKind, memory_mb: u64) -> SandboxId {
        let id = SandboxId::new();
        self.records.insert(
            id.clone(),
            SandboxRecord {
                owner,
                backend,
                memory_mb,
                life: Lifecycle::new(id.as_str()),
                handle: None,
                created: tokio::time::Instant::now(),
                calls: 0,
            },
        );
        id
    }

    /// It booted: records its handle. False when it is not booked any more
    /// (forgotten while booting: the server is stopping).
    pub fn booted(&mut self, id: &SandboxId, handle: Arc<dyn SandboxHandle>) -> bool {
        let Some(r) = self.records.get_mut(id) else {
            return false;
        };
        r.handle = Some(handle);
        r.life.go(SandboxState::Stem);
        true
    }

    pub fn go(&mut self, id: &SandboxId, to: SandboxState) {
        if let Some(r) = self.records.get_mut(id) {
            r.life.go(to);
        }
    }

    /// Counts `n` calls handed to it.
    pub fn served(&mut self, id: &SandboxId, n: usize) {
        if let Some(r) = self.records.get_mut(id) {
            r.calls += n as u64;
        }
    }

    pub fn set_owner(&mut self, id: &SandboxId, owner: Owner) {
        if let Some(r) = self.records.get_mut(id) {
            r.owner = owner;
        }
    }

    /// Drops the record; returns it (its memory is the caller's to release).
    pub fn forget(&mut self, id: &SandboxId) -> Option<SandboxRecord> {
        let mut r = self.records.remove(id)?;
        r.life.go(SandboxState::Dead);
        Some(r)
    }

    pub fn state(&self, id: &SandboxId) -> Option<SandboxState> {
        self.records.get(id).map(|r| r.life.state())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&SandboxId, &SandboxRecord)> {
        self.records.iter()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}
