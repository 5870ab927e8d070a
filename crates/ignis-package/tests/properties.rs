//! Property tests of the archive normalizer: the fuzz target's properties
//! (`check::archive`), on bytes proptest makes up, mutated zips and
//! generated file trees.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod check;

use std::collections::BTreeMap;
use std::io::{Cursor, Write};

use proptest::prelude::*;
use zip::write::SimpleFileOptions;
use zip::ZipWriter;

fn zip_of(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in files {
        w.start_file(name.as_str(), SimpleFileOptions::default())
            .unwrap();
        w.write_all(content).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Names with the characters that matter: separators of both kinds, dots,
/// a colon, a NUL, non-ASCII.
fn name() -> impl Strategy<Value = String> {
    "(\\./)?[a-c./\\\\:\0é]{1,12}".prop_filter("a directory entry", |n| !n.ends_with('/'))
}

proptest! {
    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        check::archive(&data);
    }

    #[test]
    fn generated_trees(files in proptest::collection::btree_map(name(), proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let zip = zip_of(&files);
        check::archive(&zip);
        // Accepted exactly when every name is safe, none is listed twice
        // after `./` is dropped, and none is under another.
        let clean: Vec<&str> = files.keys().map(|n| n.strip_prefix("./").unwrap_or(n)).collect();
        let mut distinct = clean.clone();
        distinct.sort();
        distinct.dedup();
        let conflict = clean.iter().any(|p| p.match_indices('/').any(|(i, _)| clean.contains(&&p[..i])));
        let ok = !files.is_empty()
            && clean.iter().all(|p| check::is_safe(p))
            && distinct.len() == clean.len()
            && !conflict;
        prop_assert_eq!(ignis_package::from_zip(&zip, check::LIMIT).is_ok(), ok, "{:?}", files);
    }

    #[test]
    fn mutated_zips(
        files in proptest::collection::btree_map("[a-z]{1,6}(/[a-z]{1,6})?", proptest::collection::vec(any::<u8>(), 0..64), 1..5),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut zip = zip_of(&files);
        for (at, byte) in flips {
            let i = at.index(zip.len());
            zip[i] = byte;
        }
        check::archive(&zip);
    }
}
