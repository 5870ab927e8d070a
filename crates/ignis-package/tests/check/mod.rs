//! The archive normalizer's properties, as one function over arbitrary
//! bytes. Shared by the proptests (`tests/properties.rs`) and the fuzz
//! target (`fuzz/fuzz_targets/archive.rs`), so both check the same thing.

use ignis_package::{from_zip, unpack, PackageError, MAX_FILES, MAX_UNPACKED_BYTES};

/// The limit the properties run with: small, so that the size errors are
/// reached too.
pub const LIMIT: u64 = 1 << 20;

/// Whether a path is one the sandbox can extract under its code directory,
/// written apart from the normalizer's own check.
pub fn is_safe(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 512
        && !path.starts_with('/')
        && !path.contains(['\\', ':', '\0'])
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".." && s.len() <= 255)
}

/// No panic; `unpack` and `from_zip` agree; what is accepted is safe, and
/// the normalized archive normalizes to itself.
pub fn archive(data: &[u8]) {
    let unpacked = unpack(data, LIMIT);
    let normalized = from_zip(data, LIMIT);
    let files = match (&unpacked, &normalized) {
        (Ok(files), Ok(_)) => files,
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "unpack and from_zip refuse for different reasons");
            return;
        }
        // What `from_zip` adds to `unpack`: building the canonical zip.
        (Ok(files), Err(e)) => {
            assert!(
                matches!(
                    e,
                    PackageError::Empty
                        | PackageError::PathConflict(_)
                        | PackageError::TooLarge { .. }
                ),
                "from_zip refused what unpack took: {e:?}"
            );
            assert!(files.len() <= MAX_FILES);
            return;
        }
        (Err(e), Ok(_)) => panic!("from_zip took what unpack refused: {e:?}"),
    };
    let Ok(archive) = normalized else { return };
    assert!(files.len() <= MAX_FILES);
    let total: u64 = files.values().map(|c| c.len() as u64).sum();
    assert!(total <= MAX_UNPACKED_BYTES);
    assert!(archive.bytes.len() as u64 <= LIMIT);
    assert_eq!(
        archive.files.iter().collect::<Vec<_>>(),
        files.keys().collect::<Vec<_>>()
    );
    for path in &archive.files {
        assert!(is_safe(path), "unsafe path accepted: {path:?}");
        let prefix_is_a_file = path
            .match_indices('/')
            .any(|(i, _)| archive.files.contains(&path[..i]));
        assert!(!prefix_is_a_file, "{path:?} is under a file");
    }
    assert_eq!(archive.sha256, ignis_package::sha256_hex(&archive.bytes));
    let again = from_zip(&archive.bytes, LIMIT).expect("the normalized archive is refused");
    assert_eq!(
        again.sha256, archive.sha256,
        "normalizing is not idempotent"
    );
    assert_eq!(again.bytes, archive.bytes);
    let reread = unpack(&archive.bytes, LIMIT).expect("the normalized archive does not unpack");
    assert_eq!(&reread, files, "normalizing changed the content");
}
