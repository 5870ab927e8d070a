//! Hostile archives: every case must end in a typed [`PackageError`] (a 400,
//! or a 413 when `is_size_limit`), never in a panic, a file written, or an
//! archive that would fail at the sandbox's cold start.
//!
//! Most zips here are made by hand ([`hand_zip`]), since the zip crate's
//! writer refuses to produce them (duplicate names, devices, raw names).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Cursor, Write};

use ignis_package::{
    from_files, from_zip, unpack, zip_dir, PackageError, ZipDirError, DEFAULT_MAX_ARCHIVE_BYTES,
    MAX_FILES, MAX_UNPACKED_BYTES,
};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

const LIMIT: u64 = DEFAULT_MAX_ARCHIVE_BYTES;
const UTF8_FLAG: u16 = 1 << 11;

/// One entry of a hand-made zip, stored (not compressed).
#[derive(Clone, Copy)]
struct Raw<'a> {
    name: &'a [u8],
    flags: u16,
    /// Unix mode with type bits, or `None` for an entry made on DOS with no
    /// attributes.
    mode: Option<u32>,
    data: &'a [u8],
}

impl<'a> Raw<'a> {
    fn file(name: &'a str, data: &'a [u8]) -> Self {
        Self {
            name: name.as_bytes(),
            flags: 0,
            mode: Some(0o100644),
            data,
        }
    }

    fn mode(self, mode: u32) -> Self {
        Self {
            mode: Some(mode),
            ..self
        }
    }
}

/// A zip as APPNOTE lays it out: local headers and data, the central
/// directory, the end record. Nothing is checked, which is the point.
fn hand_zip(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let crc = crc32fast::hash(e.data);
        let len = e.data.len() as u32;
        let name_len = e.name.len() as u16;
        out.extend(0x04034b50u32.to_le_bytes());
        out.extend(20u16.to_le_bytes()); // version needed
        out.extend(e.flags.to_le_bytes());
        out.extend(0u16.to_le_bytes()); // stored
        out.extend(0u16.to_le_bytes()); // time
        out.extend(0x21u16.to_le_bytes()); // date: 1980-01-01
        out.extend(crc.to_le_bytes());
        out.extend(len.to_le_bytes());
        out.extend(len.to_le_bytes());
        out.extend(name_len.to_le_bytes());
        out.extend(0u16.to_le_bytes()); // extra
        out.extend(e.name);
        out.extend(e.data);

        let (made_by, external) = match e.mode {
            Some(mode) => ((3u16 << 8) | 20, mode << 16),
            None => (20, 0),
        };
        central.extend(0x02014b50u32.to_le_bytes());
        central.extend(made_by.to_le_bytes());
        central.extend(20u16.to_le_bytes());
        central.extend(e.flags.to_le_bytes());
        central.extend(0u16.to_le_bytes());
        central.extend(0u16.to_le_bytes());
        central.extend(0x21u16.to_le_bytes());
        central.extend(crc.to_le_bytes());
        central.extend(len.to_le_bytes());
        central.extend(len.to_le_bytes());
        central.extend(name_len.to_le_bytes());
        central.extend([0u8; 8]); // extra, comment, disk, internal attributes
        central.extend(external.to_le_bytes());
        central.extend(offset.to_le_bytes());
        central.extend(e.name);
    }
    let cd_offset = out.len() as u32;
    let cd_len = central.len() as u32;
    out.extend(central);
    out.extend(0x06054b50u32.to_le_bytes());
    out.extend([0u8; 4]); // disk numbers
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend(cd_len.to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes()); // comment
    out
}

fn one(name: &str) -> Vec<u8> {
    hand_zip(&[Raw::file(name, b"x = 1\n")])
}

/// Both entry points give the same error, and it is not about size.
fn refused(zip: &[u8]) -> PackageError {
    let err = from_zip(zip, LIMIT).unwrap_err();
    assert_eq!(unpack(zip, LIMIT).unwrap_err(), err);
    err
}

#[test]
fn zip_slip_with_slashes_and_backslashes() {
    for name in [
        "../evil.py",
        "a/../../evil.py",
        "./../evil.py",
        "a/..",
        "..\\..\\evil.py",
        "a\\..\\..\\x",
        "a\\b.py",
    ] {
        let err = refused(&one(name));
        assert_eq!(err, PackageError::UnsafePath(name.into()), "{name}");
        assert!(!err.is_size_limit());
    }
    // A directory entry that escapes is refused too, though it holds nothing.
    let err = refused(&hand_zip(&[
        Raw::file("../up/", b"").mode(0o040755),
        Raw::file("main.py", b""),
    ]));
    assert!(matches!(err, PackageError::UnsafePath(_)), "{err:?}");
}

#[test]
fn absolute_paths() {
    for name in [
        "/etc/x",
        "//x",
        "C:\\x",
        "C:/x",
        "c:x",
        "\\x",
        "\\\\server\\x",
    ] {
        assert_eq!(
            refused(&one(name)),
            PackageError::UnsafePath(name.into()),
            "{name}"
        );
    }
}

#[test]
fn nothing_is_written_even_where_a_path_points() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("evil.py");
    let absolute = target.to_str().unwrap().to_string();
    let climbing = format!("{}{absolute}", "../".repeat(32));
    for name in [&absolute, &climbing] {
        assert!(matches!(refused(&one(name)), PackageError::UnsafePath(_)));
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn symlinks_file_or_directory() {
    for name in ["link", "dir/"] {
        let zip = hand_zip(&[Raw::file(name, b"/etc/passwd").mode(0o120777)]);
        assert_eq!(refused(&zip), PackageError::Symlink(name.into()));
    }
}

/// Zip has no hard-link entry; what a Unix mode can say beside file,
/// directory and link is a device, a fifo or a socket. Decided: refused,
/// rather than turned into a regular file the author did not mean.
#[test]
fn devices_fifos_and_sockets_are_refused() {
    for (kind, mode) in [
        ("fifo", 0o010644),
        ("char device", 0o020644),
        ("block device", 0o060644),
        ("socket", 0o140644),
        ("unknown type", 0o170644),
    ] {
        let zip = hand_zip(&[Raw::file("dev", b"").mode(mode)]);
        assert_eq!(
            refused(&zip),
            PackageError::SpecialFile("dev".into()),
            "{kind}"
        );
    }
    // Permissions without type bits, or no attributes at all (a DOS
    // writer), are plain files.
    let zip = hand_zip(&[
        Raw::file("a.py", b"a").mode(0o644),
        Raw {
            mode: None,
            ..Raw::file("b.py", b"b")
        },
    ]);
    assert_eq!(unpack(&zip, LIMIT).unwrap().len(), 2);
    let mut dup = b"#!/bin/sh\nexit 0\n".to_vec();
    dup.extend(hand_zip(&[
        Raw::file("a.py", b"1"),
        Raw::file("a.py", b"2"),
    ]));
    assert_eq!(refused(&dup), PackageError::Duplicate("a.py".into()));
}

#[test]
fn zip_bomb_by_ratio_with_a_lying_header() {
    // 300 MiB of zeros whose headers claim 100 bytes.
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .large_file(false);
    w.start_file("zeros", opts).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..300 {
        w.write_all(&chunk).unwrap();
    }
    let mut zip = w.finish().unwrap().into_inner();
    let cd = u32::from_le_bytes(zip[zip.len() - 6..zip.len() - 2].try_into().unwrap()) as usize;
    zip[22..26].copy_from_slice(&100u32.to_le_bytes()); // local header
    zip[cd + 24..cd + 28].copy_from_slice(&100u32.to_le_bytes()); // central
                                                                  // The reader goes on past the claimed size: the unpacked budget stops it.
    assert_eq!(
        refused(&zip),
        PackageError::UnpackedTooLarge {
            limit: MAX_UNPACKED_BYTES
        }
    );
}

#[test]
fn zip_bomb_by_many_entries() {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..=MAX_FILES {
        w.start_file(format!("f{i}"), SimpleFileOptions::default())
            .unwrap();
    }
    let zip = w.finish().unwrap().into_inner();
    assert_eq!(refused(&zip), PackageError::TooManyFiles);
}

#[test]
fn zip_bomb_by_many_entries_that_share_their_data() {
    // Central directory records all pointing at one 1 MiB-of-zeros entry
    // (the "overlapping files" bomb): the budget counts every read.
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("z", SimpleFileOptions::default()).unwrap();
    w.write_all(&vec![0u8; 4 << 20]).unwrap();
    let single = w.finish().unwrap().into_inner();
    let cd = u32::from_le_bytes(
        single[single.len() - 6..single.len() - 2]
            .try_into()
            .unwrap(),
    ) as usize;
    let record = &single[cd..single.len() - 22];
    let name_at = 46;
    let mut zip = single[..cd].to_vec();
    let count = (MAX_UNPACKED_BYTES / (4 << 20)) as usize + 1;
    for i in 0..count {
        let mut r = record.to_vec();
        // A distinct name for each record, in place of `z`.
        let name = format!("{i:05}");
        r[28..30].copy_from_slice(&(name.len() as u16).to_le_bytes());
        r.splice(name_at..name_at + 1, name.bytes());
        zip.extend(r);
    }
    let cd_len = (zip.len() - cd) as u32;
    zip.extend(0x06054b50u32.to_le_bytes());
    zip.extend([0u8; 4]);
    zip.extend((count as u16).to_le_bytes());
    zip.extend((count as u16).to_le_bytes());
    zip.extend(cd_len.to_le_bytes());
    zip.extend((cd as u32).to_le_bytes());
    zip.extend(0u16.to_le_bytes());
    let err = refused(&zip);
    assert!(err.is_size_limit(), "{err:?}");
}

#[test]
fn a_nested_zip_is_a_file() {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("zeros", SimpleFileOptions::default()).unwrap();
    w.write_all(&vec![0u8; 8 << 20]).unwrap();
    let inner = w.finish().unwrap().into_inner();
    let outer = hand_zip(&[Raw::file("inner.zip", &inner)]);
    let files = unpack(&outer, LIMIT).unwrap();
    // Kept as its bytes, not unpacked: the 8 MiB inside never count.
    assert_eq!(files.keys().collect::<Vec<_>>(), ["inner.zip"]);
    assert_eq!(files["inner.zip"], inner);
    // Its own size counts towards the limits.
    let err = from_zip(&outer, outer.len() as u64 - 1).unwrap_err();
    assert!(err.is_size_limit(), "{err:?}");
}

#[test]
fn duplicate_entries_exact_and_after_normalization() {
    // The zip crate keeps one entry per name; the other must not vanish.
    let zip = hand_zip(&[Raw::file("a.py", b"1"), Raw::file("a.py", b"2")]);
    assert_eq!(refused(&zip), PackageError::Duplicate("a.py".into()));
    let zip = hand_zip(&[
        Raw::file("b.py", b""),
        Raw::file("a.py", b"1"),
        Raw::file("c.py", b""),
        Raw::file("a.py", b"2"),
    ]);
    assert_eq!(refused(&zip), PackageError::Duplicate("a.py".into()));
    let zip = hand_zip(&[Raw::file("a.py", b"1"), Raw::file("./a.py", b"2")]);
    assert_eq!(refused(&zip), PackageError::Duplicate("a.py".into()));
    // `a//b` is not read as `a/b`: it is refused outright.
    let zip = hand_zip(&[Raw::file("a/b", b"1"), Raw::file("a//b", b"2")]);
    assert_eq!(refused(&zip), PackageError::UnsafePath("a//b".into()));
    // A directory listed twice, or beside its files, is harmless.
    let zip = hand_zip(&[
        Raw::file("d/", b"").mode(0o040755),
        Raw::file("d//", b"").mode(0o040755),
        Raw::file("d/x.py", b""),
    ]);
    assert_eq!(unpack(&zip, LIMIT).unwrap().len(), 1);
}

/// Decided: names differing only in case are two files, as on the Linux
/// file systems sandboxes extract to.
#[test]
fn names_differing_in_case_are_distinct() {
    let zip = hand_zip(&[Raw::file("A.py", b"1"), Raw::file("a.py", b"2")]);
    assert_eq!(unpack(&zip, LIMIT).unwrap().len(), 2);
    let mut dup = b"#!/bin/sh\nexit 0\n".to_vec();
    dup.extend(hand_zip(&[
        Raw::file("a.py", b"1"),
        Raw::file("a.py", b"2"),
    ]));
    assert_eq!(refused(&dup), PackageError::Duplicate("a.py".into()));
}

#[test]
fn a_file_that_is_also_a_directory() {
    let zip = hand_zip(&[Raw::file("a", b"1"), Raw::file("a/b.py", b"2")]);
    assert_eq!(
        from_zip(&zip, LIMIT).unwrap_err(),
        PackageError::PathConflict("a".into())
    );
    let files: BTreeMap<_, _> = [
        ("lib".to_string(), String::new()),
        ("lib/x/y.py".to_string(), String::new()),
    ]
    .into();
    assert_eq!(
        from_files(&files, LIMIT).unwrap_err(),
        PackageError::PathConflict("lib".into())
    );
}

#[test]
fn names_that_are_not_utf8() {
    // CP437 without the UTF-8 flag: 0x82 is `é`.
    let cp437 = hand_zip(&[Raw {
        name: b"caf\x82.py",
        ..Raw::file("", b"")
    }]);
    assert!(from_zip(&cp437, LIMIT).unwrap().contains("café.py"));
    // UTF-8 without the flag (what macOS writes) stays UTF-8.
    let mac = hand_zip(&[Raw::file("café.py", b"")]);
    assert!(from_zip(&mac, LIMIT).unwrap().contains("café.py"));
    // Flagged UTF-8 but not: refused rather than renamed with U+FFFD.
    let bad = hand_zip(&[Raw {
        name: b"\xff\xfe.py",
        flags: UTF8_FLAG,
        ..Raw::file("", b"")
    }]);
    assert!(matches!(refused(&bad), PackageError::InvalidName(_)));
    // A NUL inside a name.
    assert!(matches!(
        refused(&one("a\0.py")),
        PackageError::UnsafePath(_)
    ));
}

#[test]
fn names_longer_than_the_file_system_takes() {
    let long = "x".repeat(256);
    assert_eq!(refused(&one(&long)), PackageError::UnsafePath(long.clone()));
    assert!(unpack(&one(&"x".repeat(255)), LIMIT).is_ok());
    let deep = ["d"; 300].join("/");
    assert!(matches!(refused(&one(&deep)), PackageError::UnsafePath(_)));
}

#[test]
fn empty_zero_byte_and_directory_only_archives() {
    assert!(matches!(refused(b""), PackageError::Malformed(_)));
    // Only the end record: a valid zip of nothing.
    assert_eq!(
        from_zip(&hand_zip(&[]), LIMIT).unwrap_err(),
        PackageError::Empty
    );
    let dirs = hand_zip(&[Raw::file("d/", b"").mode(0o040755)]);
    assert_eq!(from_zip(&dirs, LIMIT).unwrap_err(), PackageError::Empty);
}

#[test]
fn truncated_and_corrupted_archives() {
    let zip = hand_zip(&[Raw::file("a.py", b"print(1)\n"), Raw::file("b.py", b"2")]);
    for len in 0..zip.len() {
        let err = refused(&zip[..len]);
        assert!(matches!(err, PackageError::Malformed(_)), "{len}: {err:?}");
    }
    // One byte of data changed: the checksum no longer matches.
    let mut corrupt = zip.clone();
    let at = 30 + "a.py".len();
    corrupt[at] ^= 0xff;
    assert!(matches!(refused(&corrupt), PackageError::Malformed(_)));
}

#[test]
fn encrypted_entries() {
    let zip = hand_zip(&[Raw {
        flags: 1,
        ..Raw::file("a.py", b"x")
    }]);
    assert!(matches!(refused(&zip), PackageError::Malformed(_)));
}

#[test]
fn oversized_upload_is_a_size_error() {
    let zip = one("a.py");
    let err = from_zip(&zip, zip.len() as u64 - 1).unwrap_err();
    assert!(err.is_size_limit(), "{err:?}");
}

fn zip_dir_err(dir: &std::path::Path) -> PackageError {
    match zip_dir(dir, LIMIT) {
        Err(ZipDirError::Package(e)) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn zip_dir_refuses_links_and_special_files_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.py"), "x").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
    assert_eq!(
        zip_dir_err(dir.path()),
        PackageError::Symlink("link".into())
    );

    // A fifo would block the read forever.
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(dir.path().join("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        zip_dir_err(dir.path()),
        PackageError::SpecialFile("pipe".into())
    );

    let dir = tempfile::tempdir().unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
    assert_eq!(
        zip_dir_err(dir.path()),
        PackageError::SpecialFile("sock".into())
    );
}

#[test]
fn zip_dir_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.py"), "x").unwrap();
    // A backslash is part of a Unix name, not a separator to rewrite.
    std::fs::write(dir.path().join("a\\b.py"), "x").unwrap();
    assert_eq!(
        zip_dir_err(dir.path()),
        PackageError::UnsafePath("a\\b.py".into())
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.py"), "x").unwrap();
    let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"caf\xe9.py");
    std::fs::write(dir.path().join(name), "x").unwrap();
    assert!(matches!(
        zip_dir_err(dir.path()),
        PackageError::InvalidName(_)
    ));
}

#[test]
fn zip_dir_skips_vcs_data_and_caches() {
    let dir = tempfile::tempdir().unwrap();
    for sub in [
        ".git",
        "__pycache__",
        "node_modules/.cache",
        "pkg/__pycache__",
    ] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        std::fs::write(dir.path().join(sub).join("junk"), "x").unwrap();
    }
    std::fs::write(dir.path().join("node_modules/m.js"), "x").unwrap();
    std::fs::write(dir.path().join("main.py"), "x").unwrap();
    let a = zip_dir(dir.path(), LIMIT).unwrap();
    assert_eq!(
        a.files.iter().map(String::as_str).collect::<Vec<_>>(),
        ["main.py", "node_modules/m.js"]
    );
}

#[test]
fn a_zip_after_other_bytes_is_read_without_false_duplicates() {
    // A self-extracting archive: a stub before the zip, offsets unadjusted.
    let mut zip = b"#!/bin/sh\nexit 0\n".to_vec();
    zip.extend(hand_zip(&[
        Raw::file("a.py", b"1"),
        Raw::file("b.py", b"2"),
    ]));
    assert_eq!(unpack(&zip, LIMIT).unwrap().len(), 2);
    let mut dup = b"#!/bin/sh\nexit 0\n".to_vec();
    dup.extend(hand_zip(&[
        Raw::file("a.py", b"1"),
        Raw::file("a.py", b"2"),
    ]));
    assert_eq!(refused(&dup), PackageError::Duplicate("a.py".into()));
}
