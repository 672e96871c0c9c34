//! Random sequences of store operations against an in-memory model: the store must agree with
//! the model after every step, and still agree after being closed and reopened.

use std::collections::BTreeMap;
use std::path::Path;

use filegate_core::{
    body_from_bytes, read_to_vec, Kind, Precondition, SledOptions, SledStore, Storage, StoreError,
    VPath, WriteMode,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Write(String, Mode, Vec<u8>),
    Mkdir(String),
    Rmdir(String),
    Delete(String),
    Rename(String, String, bool),
    Read(String, u64, Option<u64>),
    List(String),
    Reopen,
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Replace,
    Append,
    At(u64),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Dir,
    File(Vec<u8>),
}

/// What the store should do: paths map to nodes; the root is implicit.
#[derive(Default, Debug)]
struct Model {
    nodes: BTreeMap<String, Node>,
}

/// Error kinds compared between store and model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum E {
    NotFound,
    AlreadyExists,
    NotADirectory,
    IsADirectory,
    NotEmpty,
    Conflict,
    OffsetPastEnd,
    NotPermitted,
    Other,
}

fn kind_of(e: &StoreError) -> E {
    match e {
        StoreError::NotFound => E::NotFound,
        StoreError::AlreadyExists => E::AlreadyExists,
        StoreError::NotADirectory => E::NotADirectory,
        StoreError::IsADirectory => E::IsADirectory,
        StoreError::NotEmpty => E::NotEmpty,
        StoreError::Conflict => E::Conflict,
        StoreError::OffsetPastEnd { .. } => E::OffsetPastEnd,
        StoreError::NotPermitted => E::NotPermitted,
        _ => E::Other,
    }
}

impl Model {
    /// Checks that every ancestor of `path` is a directory.
    fn parent_ok(&self, path: &VPath) -> Result<(), E> {
        let mut at = VPath::root();
        let segs: Vec<&str> = path.segments().collect();
        for seg in segs.iter().take(segs.len().saturating_sub(1)) {
            at = at.child(seg).map_err(|_| E::Other)?;
            match self.nodes.get(at.as_str()) {
                None => return Err(E::NotFound),
                Some(Node::File(_)) => return Err(E::NotADirectory),
                Some(Node::Dir) => {}
            }
        }
        Ok(())
    }

    fn get(&self, path: &VPath) -> Option<&Node> {
        if path.is_root() {
            Some(&Node::Dir)
        } else {
            self.nodes.get(path.as_str())
        }
    }

    fn has_children(&self, path: &VPath) -> bool {
        let prefix = format!("{}/", path.as_str());
        self.nodes.keys().any(|k| k.starts_with(&prefix))
    }

    fn write(&mut self, path: &VPath, mode: Mode, data: &[u8]) -> Result<(), E> {
        if path.is_root() {
            return Err(E::IsADirectory);
        }
        self.parent_ok(path)?;
        let current = match self.nodes.get(path.as_str()) {
            Some(Node::Dir) => return Err(E::IsADirectory),
            Some(Node::File(d)) => Some(d.clone()),
            None => None,
        };
        let new = match (mode, current) {
            (Mode::Replace, _) => data.to_vec(),
            (Mode::Append, c) => [c.unwrap_or_default(), data.to_vec()].concat(),
            (Mode::At(n), Some(c)) if n as usize <= c.len() => {
                [c[..n as usize].to_vec(), data.to_vec()].concat()
            }
            (Mode::At(0), None) => data.to_vec(),
            (Mode::At(_), _) => return Err(E::OffsetPastEnd),
        };
        self.nodes.insert(path.to_string(), Node::File(new));
        Ok(())
    }

    fn mkdir(&mut self, path: &VPath) -> Result<(), E> {
        if path.is_root() {
            return Err(E::AlreadyExists);
        }
        self.parent_ok(path)?;
        if self.nodes.contains_key(path.as_str()) {
            return Err(E::AlreadyExists);
        }
        self.nodes.insert(path.to_string(), Node::Dir);
        Ok(())
    }

    fn rmdir(&mut self, path: &VPath) -> Result<(), E> {
        if path.is_root() {
            return Err(E::NotPermitted);
        }
        self.parent_ok(path)?;
        match self.nodes.get(path.as_str()) {
            None => Err(E::NotFound),
            Some(Node::File(_)) => Err(E::NotADirectory),
            Some(Node::Dir) if self.has_children(path) => Err(E::NotEmpty),
            Some(Node::Dir) => {
                self.nodes.remove(path.as_str());
                Ok(())
            }
        }
    }

    fn delete(&mut self, path: &VPath) -> Result<(), E> {
        if path.is_root() {
            return Err(E::IsADirectory);
        }
        self.parent_ok(path)?;
        match self.nodes.get(path.as_str()) {
            None => Err(E::NotFound),
            Some(Node::Dir) => Err(E::IsADirectory),
            Some(Node::File(_)) => {
                self.nodes.remove(path.as_str());
                Ok(())
            }
        }
    }

    fn rename(&mut self, from: &VPath, to: &VPath, overwrite: bool) -> Result<(), E> {
        if from.is_root() || to.is_root() {
            return Err(E::NotPermitted);
        }
        if to != from && to.starts_with(from) {
            return Err(E::Conflict);
        }
        self.parent_ok(from)?;
        let moving = self.nodes.get(from.as_str()).cloned().ok_or(E::NotFound)?;
        if from == to {
            return Ok(());
        }
        self.parent_ok(to)?;
        if let Some(existing) = self.nodes.get(to.as_str()) {
            if !overwrite {
                return Err(E::AlreadyExists);
            }
            match (&moving, existing) {
                (Node::File(_), Node::Dir) => return Err(E::IsADirectory),
                (Node::Dir, Node::File(_)) => return Err(E::NotADirectory),
                (Node::Dir, Node::Dir) if self.has_children(to) => return Err(E::NotEmpty),
                _ => {}
            }
        }
        let prefix = format!("{}/", from.as_str());
        let moved: Vec<(String, Node)> = self
            .nodes
            .iter()
            .filter(|(k, _)| k.as_str() == from.as_str() || k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, _) in &moved {
            self.nodes.remove(k);
        }
        for (k, v) in moved {
            let rest = &k[from.as_str().len()..];
            self.nodes.insert(format!("{}{rest}", to.as_str()), v);
        }
        Ok(())
    }

    fn read(&self, path: &VPath, off: u64, len: Option<u64>) -> Result<Vec<u8>, E> {
        if path.is_root() {
            return Err(E::IsADirectory);
        }
        self.parent_ok(path)?;
        match self.nodes.get(path.as_str()) {
            None => Err(E::NotFound),
            Some(Node::Dir) => Err(E::IsADirectory),
            Some(Node::File(d)) => {
                let off = off as usize;
                if off > d.len() {
                    return Err(E::OffsetPastEnd);
                }
                let end = len.map_or(d.len(), |l| (off + l as usize).min(d.len()));
                Ok(d[off..end].to_vec())
            }
        }
    }

    fn list(&self, path: &VPath) -> Result<Vec<(String, Kind, u64)>, E> {
        if !path.is_root() {
            self.parent_ok(path)?;
        }
        match self.get(path) {
            None => Err(E::NotFound),
            Some(Node::File(_)) => Err(E::NotADirectory),
            Some(Node::Dir) => {
                let base = if path.is_root() {
                    String::new()
                } else {
                    path.to_string()
                };
                let prefix = format!("{base}/");
                Ok(self
                    .nodes
                    .iter()
                    .filter_map(|(k, v)| {
                        let rest = k.strip_prefix(&prefix)?;
                        if rest.contains('/') {
                            return None;
                        }
                        Some(match v {
                            Node::Dir => (rest.to_owned(), Kind::Dir, 0),
                            Node::File(d) => (rest.to_owned(), Kind::File, d.len() as u64),
                        })
                    })
                    .collect())
            }
        }
    }
}

fn path_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 0..=3)
        .prop_map(|segs| format!("/{}", segs.join("/")))
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let data = prop::collection::vec(any::<u8>(), 0..64);
    let mode = prop_oneof![
        Just(Mode::Replace),
        Just(Mode::Append),
        (0u64..40).prop_map(Mode::At),
    ];
    prop_oneof![
        4 => (path_strategy(), mode, data).prop_map(|(p, m, d)| Op::Write(p, m, d)),
        3 => path_strategy().prop_map(Op::Mkdir),
        1 => path_strategy().prop_map(Op::Rmdir),
        1 => path_strategy().prop_map(Op::Delete),
        2 => (path_strategy(), path_strategy(), any::<bool>()).prop_map(|(a, b, o)| Op::Rename(a, b, o)),
        2 => (path_strategy(), 0u64..40, prop::option::of(0u64..40)).prop_map(|(p, o, l)| Op::Read(p, o, l)),
        1 => path_strategy().prop_map(Op::List),
        1 => Just(Op::Reopen),
    ]
}

fn open(dir: &Path) -> SledStore {
    SledStore::open(dir, &SledOptions::default())
        .unwrap_or_else(|e| panic!("open: {e}"))
        .0
}

fn same<T: PartialEq + std::fmt::Debug>(
    what: &str,
    store: Result<T, StoreError>,
    model: Result<T, E>,
) -> Result<(), TestCaseError> {
    let store = store.map_err(|e| kind_of(&e));
    prop_assert_eq!(store, model, "{}", what);
    Ok(())
}

/// Compares every directory of the store with the model.
async fn compare_all(store: &SledStore, model: &Model) -> Result<(), TestCaseError> {
    let mut dirs = vec![VPath::root()];
    dirs.extend(
        model
            .nodes
            .iter()
            .filter(|(_, v)| **v == Node::Dir)
            .map(|(k, _)| VPath::parse(k).unwrap_or_else(|e| panic!("{e}"))),
    );
    for d in dirs {
        let listed = store.list(&d).await.map(|v| {
            v.into_iter()
                .map(|e| (e.name, e.kind, e.size))
                .collect::<Vec<_>>()
        });
        same(&format!("list {d}"), listed, model.list(&d))?;
    }
    for (k, v) in &model.nodes {
        if let Node::File(data) = v {
            let p = VPath::parse(k).unwrap_or_else(|e| panic!("{e}"));
            let h = store
                .read(&p, 0, None)
                .await
                .map_err(|e| TestCaseError::fail(format!("read {k}: {e}")))?;
            prop_assert_eq!(h.entry.digest, Some(*blake3::hash(data).as_bytes()));
            let got = read_to_vec(h.body)
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&got, data);
        }
    }
    let usage = store
        .usage()
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let files: Vec<&Vec<u8>> = model
        .nodes
        .values()
        .filter_map(|v| if let Node::File(d) = v { Some(d) } else { None })
        .collect();
    prop_assert_eq!(usage.files, files.len() as u64);
    prop_assert_eq!(
        usage.bytes,
        files.iter().map(|d| d.len() as u64).sum::<u64>()
    );
    prop_assert_eq!(usage.dirs, model.nodes.len() as u64 - files.len() as u64);
    Ok(())
}

async fn run_ops(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut store = Some(open(dir.path()));
    let mut model = Model::default();
    let vp = |s: &str| VPath::parse(s).unwrap_or_else(|e| panic!("{e}"));
    for op in ops {
        let s = store.as_ref().unwrap_or_else(|| panic!("store is open"));
        match &op {
            Op::Write(p, mode, data) => {
                let m = match mode {
                    Mode::Replace => WriteMode::Replace,
                    Mode::Append => WriteMode::Append,
                    Mode::At(n) => WriteMode::At(*n),
                };
                let r = s
                    .write(&vp(p), m, Precondition::None, body_from_bytes(data.clone()))
                    .await
                    .map(|_| ());
                same(&format!("{op:?}"), r, model.write(&vp(p), *mode, data))?;
            }
            Op::Mkdir(p) => same(
                &format!("{op:?}"),
                s.mkdir(&vp(p)).await.map(|_| ()),
                model.mkdir(&vp(p)),
            )?,
            Op::Rmdir(p) => same(
                &format!("{op:?}"),
                s.rmdir(&vp(p)).await,
                model.rmdir(&vp(p)),
            )?,
            Op::Delete(p) => same(
                &format!("{op:?}"),
                s.delete(&vp(p)).await,
                model.delete(&vp(p)),
            )?,
            Op::Rename(a, b, o) => same(
                &format!("{op:?}"),
                s.rename(&vp(a), &vp(b), *o).await.map(|_| ()),
                model.rename(&vp(a), &vp(b), *o),
            )?,
            Op::Read(p, off, len) => {
                let r = match s.read(&vp(p), *off, *len).await {
                    Ok(h) => read_to_vec(h.body).await.map_err(StoreError::Io),
                    Err(e) => Err(e),
                };
                same(&format!("{op:?}"), r, model.read(&vp(p), *off, *len))?;
            }
            Op::List(p) => {
                let r = s.list(&vp(p)).await.map(|v| {
                    v.into_iter()
                        .map(|e| (e.name, e.kind, e.size))
                        .collect::<Vec<_>>()
                });
                same(&format!("{op:?}"), r, model.list(&vp(p)))?;
            }
            Op::Reopen => {
                drop(store.take());
                let s = open(dir.path());
                compare_all(&s, &model).await?;
                store = Some(s);
            }
        }
    }
    let s = store.take().unwrap_or_else(|| panic!("store is open"));
    compare_all(&s, &model).await?;
    drop(s);
    let s = open(dir.path());
    compare_all(&s, &model).await
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn store_agrees_with_model(ops in prop::collection::vec(op_strategy(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        rt.block_on(run_ops(ops))?;
    }
}
