//! Function code packaging.
//!
//! Code arrives as inline files or as a zip upload; both are normalized into
//! one deterministic zip (sorted entries, fixed timestamps and permissions,
//! deflate), so that the same code always has the same sha256 and is stored
//! once. Archives are untrusted input: paths that escape the code directory,
//! symlinks, zip bombs and oversized uploads are rejected here.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// Default bound on a code archive, as uploaded and as normalized: 50 MiB.
pub const DEFAULT_MAX_ARCHIVE_BYTES: u64 = 50 * 1024 * 1024;
/// Bound on the unpacked size of an archive (zip bomb guard): 250 MiB, as AWS Lambda.
pub const MAX_UNPACKED_BYTES: u64 = 250 * 1024 * 1024;
/// Bound on the number of files in an archive.
pub const MAX_FILES: usize = 10_000;
const MAX_PATH_LEN: usize = 512;
/// Longest file or directory name the sandbox's file system takes (Linux
/// `NAME_MAX`): a longer one would pass here and fail every cold start.
const MAX_SEGMENT_LEN: usize = 255;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PackageError {
    #[error("code archive is {size} bytes, the limit is {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("code unpacks to more than {limit} bytes")]
    UnpackedTooLarge { limit: u64 },
    #[error("code archive has more than {MAX_FILES} files")]
    TooManyFiles,
    #[error("code archive is not a valid zip file: {0}")]
    Malformed(String),
    #[error(
        "unsafe path {0:?} in code archive: paths must be relative and stay inside the archive"
    )]
    UnsafePath(String),
    #[error("code archive entry {0:?} is a symbolic link; links are not allowed")]
    Symlink(String),
    #[error("code archive lists {0:?} twice")]
    Duplicate(String),
    #[error("code archive has {0:?} both as a file and as a directory")]
    PathConflict(String),
    #[error(
        "code archive entry {0:?} is a device, a pipe or a socket; only files and directories are allowed"
    )]
    SpecialFile(String),
    #[error("code archive entry name {0:?} is not valid UTF-8")]
    InvalidName(String),
    #[error("code archive holds no files")]
    Empty,
}

impl PackageError {
    /// Whether the error is about size (HTTP 413) rather than content (400).
    pub fn is_size_limit(&self) -> bool {
        matches!(
            self,
            PackageError::TooLarge { .. } | PackageError::UnpackedTooLarge { .. }
        )
    }
}

/// A normalized code archive.
#[derive(Debug, Clone)]
pub struct Archive {
    pub bytes: Vec<u8>,
    /// Hex sha256 of `bytes`: the archive's content address.
    pub sha256: String,
    /// Every file path in the archive.
    pub files: BTreeSet<String>,
    /// Hex sha256 of the zip as uploaded, when it came as a zip (the
    /// normalized archive is another file).
    pub source_sha256: Option<String>,
}

impl Archive {
    pub fn contains(&self, path: &str) -> bool {
        self.files.contains(path)
    }
}

/// Hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Normalizes inline source files (path to UTF-8 content).
pub fn from_files(files: &BTreeMap<String, String>, limit: u64) -> Result<Archive, PackageError> {
    let mut entries = BTreeMap::new();
    let mut total = 0u64;
    for (path, content) in files {
        let path = clean_path(path)?;
        total += content.len() as u64;
        if total > limit {
            return Err(PackageError::TooLarge { size: total, limit });
        }
        if entries
            .insert(path.clone(), content.as_bytes().to_vec())
            .is_some()
        {
            return Err(PackageError::Duplicate(path));
        }
    }
    build(entries, limit)
}

/// Normalizes an uploaded zip archive.
pub fn from_zip(bytes: &[u8], limit: u64) -> Result<Archive, PackageError> {
    let mut archive = build(unpack(bytes, limit)?, limit)?;
    archive.source_sha256 = Some(sha256_hex(bytes));
    Ok(archive)
}

/// The files of a zip archive (path to content), with every check of
/// [`from_zip`]: what the console shows of a stored archive.
pub fn unpack(bytes: &[u8], limit: u64) -> Result<BTreeMap<String, Vec<u8>>, PackageError> {
    if bytes.len() as u64 > limit {
        return Err(PackageError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    let mut zip =
        ZipArchive::new(Cursor::new(bytes)).map_err(|e| PackageError::Malformed(e.to_string()))?;
    if zip.len() > MAX_FILES {
        return Err(PackageError::TooManyFiles);
    }
    if let Some(name) = dropped_duplicate(bytes, &mut zip)? {
        return Err(PackageError::Duplicate(name));
    }
    let mut entries = BTreeMap::new();
    let mut unpacked = 0u64;
    for i in 0..zip.len() {
        let mut file = zip
            .by_index(i)
            .map_err(|e| PackageError::Malformed(e.to_string()))?;
        let raw_name = entry_name(&file)?;
        let is_dir = match file.unix_mode().map(|m| m & S_IFMT) {
            Some(S_IFLNK) => return Err(PackageError::Symlink(raw_name)),
            Some(S_IFDIR) => true,
            // No type bits (some writers set only the permissions) is a file.
            None | Some(0) | Some(S_IFREG) => file.is_dir(),
            // Zip has no hard links; devices, fifos and sockets would come
            // out as regular files, which their author did not mean.
            Some(_) => return Err(PackageError::SpecialFile(raw_name)),
        };
        if is_dir {
            // Directories are implied by the files in them; still reject
            // a directory entry that would escape.
            clean_path(raw_name.trim_end_matches('/'))?;
            continue;
        }
        let path = clean_path(&raw_name)?;
        let mut content = Vec::with_capacity(file.size().min(1 << 20) as usize);
        // Bound the read by what is left of the unpacked budget, whatever
        // the header claims: the header of a zip bomb lies.
        let budget = MAX_UNPACKED_BYTES - unpacked;
        (&mut file)
            .take(budget + 1)
            .read_to_end(&mut content)
            .map_err(|e| PackageError::Malformed(format!("{raw_name}: {e}")))?;
        unpacked += content.len() as u64;
        if unpacked > MAX_UNPACKED_BYTES {
            return Err(PackageError::UnpackedTooLarge {
                limit: MAX_UNPACKED_BYTES,
            });
        }
        if entries.insert(path.clone(), content).is_some() {
            return Err(PackageError::Duplicate(path));
        }
    }
    Ok(entries)
}

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

/// An entry's name as its author wrote it. Without the UTF-8 flag the zip
/// crate reads the name as CP437, as the format says; but macOS and many
/// other tools write UTF-8 without the flag, so bytes that are valid UTF-8
/// are taken as UTF-8, the rest as CP437. Bytes flagged UTF-8 that are not
/// are refused rather than replaced by U+FFFD.
fn entry_name<R: Read>(file: &zip::read::ZipFile<'_, R>) -> Result<String, PackageError> {
    match std::str::from_utf8(file.name_raw()) {
        Ok(name) => Ok(name.to_string()),
        Err(_) if file.name().contains(char::REPLACEMENT_CHARACTER) => {
            Err(PackageError::InvalidName(file.name().to_string()))
        }
        Err(_) => Ok(file.name().to_string()),
    }
}

/// The name of a central directory record that the zip crate dropped: it
/// keeps one entry per name (the last), so an archive listing a name twice
/// would otherwise lose a file silently.
fn dropped_duplicate(
    bytes: &[u8],
    zip: &mut ZipArchive<Cursor<&[u8]>>,
) -> Result<Option<String>, PackageError> {
    let mut kept = BTreeSet::new();
    for i in 0..zip.len() {
        let file = zip
            .by_index_raw(i)
            .map_err(|e| PackageError::Malformed(e.to_string()))?;
        kept.insert(file.central_header_start());
    }
    let u16_at = |p: usize| {
        bytes
            .get(p..p + 2)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
    };
    // Walk the records as the format lays them out (46 fixed bytes, then
    // the name, the extra field and the comment).
    let mut p = usize::try_from(zip.central_directory_start()).unwrap_or(usize::MAX);
    while bytes.get(p..p.saturating_add(4)) == Some(b"PK\x01\x02") {
        let (Some(name_len), Some(extra_len), Some(comment_len)) =
            (u16_at(p + 28), u16_at(p + 30), u16_at(p + 32))
        else {
            break;
        };
        if !kept.contains(&(p as u64)) {
            let name = bytes.get(p + 46..p + 46 + name_len).unwrap_or_default();
            return Ok(Some(String::from_utf8_lossy(name).into_owned()));
        }
        p += 46 + name_len + extra_len + comment_len;
    }
    Ok(None)
}

/// Zips a directory for upload (the CLI's `--dir`). Follows no symlinks:
/// they are an error, as they would be on the server; so are devices,
/// fifos and sockets (reading a fifo would block), and names that are not
/// UTF-8.
pub fn zip_dir(dir: &Path, limit: u64) -> Result<Archive, ZipDirError> {
    let mut entries = BTreeMap::new();
    let mut total = 0u64;
    walk(dir, dir, &mut entries, &mut total, limit)?;
    Ok(build(entries, limit)?)
}

#[derive(Debug, thiserror::Error)]
pub enum ZipDirError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Package(#[from] PackageError),
}

fn walk(
    root: &Path,
    dir: &Path,
    entries: &mut BTreeMap<String, Vec<u8>>,
    total: &mut u64,
    limit: u64,
) -> Result<(), ZipDirError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ZipDirError::Io { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io(&path))?;
        // Joined with `/` by components, not by replacing `\`: on Unix a
        // backslash is part of a name, which the server refuses, as here.
        let rel_path = path.strip_prefix(root).unwrap_or(&path);
        let rel = rel_path
            .components()
            .map(|c| c.as_os_str().to_str())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| PackageError::InvalidName(rel_path.to_string_lossy().into()))?
            .join("/");
        if kind.is_symlink() {
            return Err(PackageError::Symlink(rel).into());
        } else if kind.is_dir() {
            // Skip what never belongs in a function: VCS data and caches.
            let skipped = [".git", "__pycache__", "node_modules/.cache"];
            if skipped
                .iter()
                .any(|s| rel == *s || rel.ends_with(&format!("/{s}")))
            {
                continue;
            }
            walk(root, &path, entries, total, limit)?;
        } else if !kind.is_file() {
            return Err(PackageError::SpecialFile(rel).into());
        } else {
            let content = std::fs::read(&path).map_err(io(&path))?;
            *total += content.len() as u64;
            if *total > limit {
                return Err(PackageError::TooLarge {
                    size: *total,
                    limit,
                }
                .into());
            }
            entries.insert(clean_path(&rel)?, content);
        }
    }
    Ok(())
}

/// Validates an archive path and returns it in canonical form.
fn clean_path(raw: &str) -> Result<String, PackageError> {
    let unsafe_path = || PackageError::UnsafePath(raw.to_string());
    let path = raw.strip_prefix("./").unwrap_or(raw);
    if path.is_empty()
        || path.len() > MAX_PATH_LEN
        || path.starts_with('/')
        || path.contains('\\')
        || path.contains('\0')
        || path.contains(':')
    {
        return Err(unsafe_path());
    }
    for segment in path.split('/') {
        if segment.is_empty()
            || segment == "."
            || segment == ".."
            || segment.len() > MAX_SEGMENT_LEN
        {
            return Err(unsafe_path());
        }
    }
    Ok(path.to_string())
}

/// Writes the canonical zip: entries in path order, fixed timestamp,
/// mode 0644, deflate.
fn build(entries: BTreeMap<String, Vec<u8>>, limit: u64) -> Result<Archive, PackageError> {
    if entries.is_empty() {
        return Err(PackageError::Empty);
    }
    if entries.len() > MAX_FILES {
        return Err(PackageError::TooManyFiles);
    }
    // `a` and `a/b` cannot both be extracted: one of them would fail every
    // cold start, so the upload fails instead.
    for path in entries.keys() {
        for (i, _) in path.match_indices('/') {
            if entries.contains_key(&path[..i]) {
                return Err(PackageError::PathConflict(path[..i].to_string()));
            }
        }
    }
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644)
        .large_file(false);
    let zip_err = |e: zip::result::ZipError| PackageError::Malformed(e.to_string());
    for (path, content) in &entries {
        writer.start_file(path.as_str(), options).map_err(zip_err)?;
        writer
            .write_all(content)
            .map_err(|e| PackageError::Malformed(e.to_string()))?;
    }
    let bytes = writer.finish().map_err(zip_err)?.into_inner();
    if bytes.len() as u64 > limit {
        return Err(PackageError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(Archive {
        sha256: sha256_hex(&bytes),
        files: entries.into_keys().collect(),
        bytes,
        source_sha256: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in entries {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(content).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn inline_and_zip_normalize_to_the_same_archive() {
        let files: BTreeMap<_, _> = [
            (
                "main.py".to_string(),
                "def handler(e, c): return 1\n".to_string(),
            ),
            ("lib/util.py".to_string(), "X = 1\n".to_string()),
        ]
        .into();
        let a = from_files(&files, DEFAULT_MAX_ARCHIVE_BYTES).unwrap();
        let zip = raw_zip(&[
            ("./lib/util.py", b"X = 1\n"),
            ("main.py", b"def handler(e, c): return 1\n"),
        ]);
        let b = from_zip(&zip, DEFAULT_MAX_ARCHIVE_BYTES).unwrap();
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(a.bytes, b.bytes);
        assert!(a.contains("lib/util.py"));
    }

    #[test]
    fn rejects_traversal_and_absolute_paths() {
        for bad in [
            "../x.py",
            "a/../../x.py",
            "/etc/passwd",
            "a//b",
            "C:/x",
            "a\\..\\b",
        ] {
            let zip = raw_zip(&[(bad, b"x")]);
            let err = from_zip(&zip, DEFAULT_MAX_ARCHIVE_BYTES).unwrap_err();
            assert!(matches!(err, PackageError::UnsafePath(_)), "{bad}: {err:?}");
            let files: BTreeMap<_, _> = [(bad.to_string(), "x".to_string())].into();
            assert!(from_files(&files, DEFAULT_MAX_ARCHIVE_BYTES).is_err());
        }
    }

    #[test]
    fn rejects_symlinks() {
        let mut w = ZipWriter::new(Cursor::new(Vec::new()));
        w.add_symlink("link", "/etc/passwd", SimpleFileOptions::default())
            .unwrap();
        let zip = w.finish().unwrap().into_inner();
        assert!(matches!(
            from_zip(&zip, DEFAULT_MAX_ARCHIVE_BYTES),
            Err(PackageError::Symlink(_))
        ));
    }

    #[test]
    fn rejects_garbage_empty_and_oversized() {
        assert!(matches!(
            from_zip(b"not a zip", DEFAULT_MAX_ARCHIVE_BYTES),
            Err(PackageError::Malformed(_))
        ));
        assert_eq!(
            from_files(&BTreeMap::new(), DEFAULT_MAX_ARCHIVE_BYTES).unwrap_err(),
            PackageError::Empty
        );
        let files: BTreeMap<_, _> = [("a.py".to_string(), "x".repeat(2000))].into();
        let err = from_files(&files, 1000).unwrap_err();
        assert!(err.is_size_limit());
    }

    #[test]
    fn zip_bomb_is_bounded() {
        // 300 MiB of zeros compresses to well under a MiB.
        let mut w = ZipWriter::new(Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .large_file(true);
        w.start_file("zeros", opts).unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..300 {
            w.write_all(&chunk).unwrap();
        }
        let zip = w.finish().unwrap().into_inner();
        assert!(zip.len() < 2 << 20);
        assert_eq!(
            from_zip(&zip, DEFAULT_MAX_ARCHIVE_BYTES).unwrap_err(),
            PackageError::UnpackedTooLarge {
                limit: MAX_UNPACKED_BYTES
            }
        );
    }

    #[test]
    fn zips_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pkg")).unwrap();
        std::fs::write(dir.path().join("main.py"), "x").unwrap();
        std::fs::write(dir.path().join("pkg/m.py"), "y").unwrap();
        let a = zip_dir(dir.path(), DEFAULT_MAX_ARCHIVE_BYTES).unwrap();
        assert_eq!(
            a.files.iter().cloned().collect::<Vec<_>>(),
            vec!["main.py", "pkg/m.py"]
        );
    }
}
