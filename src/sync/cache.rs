//! The cache file: the last document that was applied, and its `ETag`, so that a process starting
//! while the flag service is slow or down serves the last known flags at once.
//!
//! It is written only after the document was applied (a bad response never reaches it) and
//! atomically (temp file in the same directory, fsync, rename), so readers, crashes and full disks
//! leave either the old file or the new one. A writer killed mid-write leaves its temp file
//! (`.{name}.{pid}.{nonce}.tmp`); the next start removes those of dead processes and old ones.
//!
//! The file is the document's own bytes, untouched, with one extra top-level key spliced in, an
//! `x-` extension field that loaders pass over without a warning (docs/spec.md §1), so it is itself
//! a valid flag document and only a bounded number of bytes larger than what was received:
//! `{"flags": [...], "x-ferroflag-cache": {"format": 1, "etag": "\"v1\"", "document_id": "…",
//! "source": "…", "url": "https://<redacted>@h/api/flags", "saved_at": 1700000000}}`.
//! `source` is a hash of the full URL: a cache written for another URL is not served.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::http::is_valid_etag;
use crate::document::{self, Parsed};
use crate::error::quote;

pub(crate) const META_KEY: &str = "x-ferroflag-cache";
/// Where releases before format 2 kept the cache's facts; still read, so an upgrade keeps the cache.
const OLD_META_KEY: &str = "ferroflag_cache";
const FORMAT: u64 = 1;
/// What the cache file may hold beyond the document itself: the metadata, whose largest part is an
/// `ETag` of at most 1 KiB (JSON-escaped) and the redacted URL.
pub(crate) const META_ALLOWANCE: u64 = 64 * 1024;
/// A temp file older than this is a leftover, whoever wrote it: a write takes milliseconds.
const STALE_TEMP_AGE: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub(crate) struct Cached {
    pub(crate) parsed: Parsed,
    pub(crate) etag: Option<String>,
    pub(crate) document_id: String,
}

/// Where the cache belongs, written into it and checked when it is read.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// A hash of the full URL (see `SyncConfig::url_id`).
    pub(crate) url_id: String,
    /// For people reading the file or the warning: the URL with its secrets redacted.
    pub(crate) redacted_url: String,
}

/// Opens a file for reading without blocking (a FIFO at the path would otherwise wait for a
/// writer for ever) and refuses anything but a regular file.
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// The cached document, `Ok(None)` when there is no cache file, or why it cannot be used.
/// `max_body_bytes` is the client's limit on a response: the file may exceed it by the metadata.
pub(crate) fn read(path: &Path, max_body_bytes: u64, origin: &Origin) -> Result<Option<Cached>, String> {
    let shown = path.display();
    let file = match open_regular(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open {shown}: {e}")),
    };
    let max_bytes = max_body_bytes.saturating_add(META_ALLOWANCE);
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.len() as u64 > max_bytes {
        return Err(format!("{shown} is larger than {max_bytes} bytes"));
    }
    let mut value: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{shown} is not valid JSON: {e}"))?;
    let meta = value
        .as_object_mut()
        .and_then(|doc| doc.remove(META_KEY).or_else(|| doc.remove(OLD_META_KEY)));
    let field = |name: &str| match meta.as_ref().and_then(|meta| meta.get(name)) {
        Some(Value::String(text)) => Some(text.clone()),
        _ => None,
    };
    if field("source").is_some_and(|url_id| url_id != origin.url_id) {
        let url = field("url").unwrap_or_default();
        return Err(format!(
            "{shown} was written for another URL ({}), not {}",
            quote(&url),
            origin.redacted_url
        ));
    }
    let etag = field("etag").filter(|etag| is_valid_etag(etag));
    let parsed = document::from_value(&value).map_err(|e| format!("{shown}: {e}"))?;
    let document_id = field("document_id")
        .filter(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| super::config::document_id(&bytes));
    Ok(Some(Cached {
        parsed,
        etag,
        document_id,
    }))
}

/// What is written with a document.
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    pub(crate) document: &'a [u8],
    pub(crate) etag: Option<&'a str>,
    pub(crate) document_id: &'a str,
    pub(crate) origin: &'a Origin,
}

/// Saves the document (already validated: it was just applied) with its facts.
pub(crate) fn write(path: &Path, entry: &Entry<'_>) -> io::Result<()> {
    let bytes = wrap(entry)?;
    let dir = parent(path);
    fs::create_dir_all(&dir)?;
    let temp = dir.join(temp_name(path));
    let written = write_synced(&temp, &bytes).and_then(|()| fs::rename(&temp, path));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    // Makes the rename itself durable; some file systems refuse to open or sync a directory, and
    // the file is already complete either way.
    if let Ok(dir) = File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The document's bytes with the metadata spliced in as the last key of the top-level object (an
/// array document becomes `{"flags": [...], ...}`): the bytes of the document are kept as they
/// came, so the file is never larger than the document by more than the metadata.
fn wrap(entry: &Entry<'_>) -> io::Result<Vec<u8>> {
    let saved_at = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let meta = json!({
        "format": FORMAT,
        "etag": entry.etag,
        "document_id": entry.document_id,
        "source": entry.origin.url_id,
        "url": entry.origin.redacted_url,
        "saved_at": saved_at,
    });
    let meta = serde_json::to_vec(&meta).map_err(io::Error::other)?;
    let document = trim_json(entry.document);
    let mut out = Vec::with_capacity(document.len() + meta.len() + 40);
    match (document.first(), document.last()) {
        (Some(b'{'), Some(b'}')) => {
            let inside = &document[1..document.len() - 1];
            out.extend_from_slice(&document[..document.len() - 1]);
            if inside.iter().any(|b| !b.is_ascii_whitespace()) {
                out.push(b',');
            }
        }
        (Some(b'['), Some(b']')) => {
            out.extend_from_slice(b"{\"flags\":");
            out.extend_from_slice(document);
            out.push(b',');
        }
        _ => return Err(io::Error::other("the document is neither an array nor an object")),
    }
    out.push(b'"');
    out.extend_from_slice(META_KEY.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(&meta);
    out.push(b'}');
    Ok(out)
}

/// Without a leading UTF-8 byte order mark and surrounding JSON whitespace.
fn trim_json(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Unique per process and write, even across restarts that reuse a process id (pid 1 in every
/// container), so that no writer ever finds its temp name taken.
fn temp_name(path: &Path) -> String {
    use std::hash::{BuildHasher, Hasher};
    let nonce = std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!(".{}.{}.{nonce:016x}.tmp", file_name(path), std::process::id())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "cache".into(), |n| n.to_string_lossy().into_owned())
}

/// Removes the temp files that writers of this cache left when they were killed mid-write: those
/// of processes that are gone, and any old enough that no write can still be under way. Returns
/// how many were removed.
pub(crate) fn remove_stale_temps(path: &Path) -> usize {
    let prefix = format!(".{}.", file_name(path));
    let Ok(entries) = fs::read_dir(parent(path)) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let Some(pid) = rest
            .strip_suffix(".tmp")
            .and_then(|r| r.split_once('.'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let old = entry
            .metadata()
            .ok()
            .filter(fs::Metadata::is_file)
            .and_then(|meta| meta.modified().ok())
            .and_then(|at| at.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        if (old || !process_exists(pid)) && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Whether a process with this id runs; true when it cannot be told (then only age counts).
fn process_exists(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists() || !Path::new("/proc/self").exists()
    } else {
        true
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    // Flag rules can name users (emails in conditions): keep the file to its owner.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ferroflag-cache-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn origin() -> Origin {
        Origin {
            url_id: "00112233aabbccdd".into(),
            redacted_url: "http://h/api/flags".into(),
        }
    }

    fn entry<'a>(document: &'a [u8], etag: Option<&'a str>, origin: &'a Origin) -> Entry<'a> {
        Entry {
            document,
            etag,
            document_id: "0123456789abcdef",
            origin,
        }
    }

    #[test]
    fn round_trips_both_document_forms_and_the_etag() {
        let dir = temp_dir("roundtrip");
        let path = dir.join("sub").join("flags.json");
        let origin = origin();
        let doc = br#" [{"key": "a", "enabled": true, "percentage": 12.50}]
"#;
        write(&path, &entry(doc, Some("\"v1\""), &origin)).unwrap();
        let cached = read(&path, doc.len() as u64, &origin).unwrap().unwrap();
        assert_eq!(cached.etag.as_deref(), Some("\"v1\""));
        assert_eq!(cached.document_id, "0123456789abcdef");
        assert_eq!(cached.parsed.document.flags[0].key, "a");
        assert!(cached.parsed.warnings.is_empty());
        // The cache file is itself a flag document, which loads without a warning, and holds the
        // document's bytes as they came.
        let text = fs::read(&path).unwrap();
        assert!(text.windows(6).any(|w| w == b"12.50}"));
        let reread = document::parse(&text).unwrap();
        assert_eq!(reread.document.flags.len(), 1);
        assert!(reread.warnings.is_empty(), "{:?}", reread.warnings);

        for doc in [
            &br#"{"flags": [{"key": "b", "enabled": false}], "extra": 1}"#[..],
            b"{ \"flags\": [] }",
            b"\xef\xbb\xbf{\"flags\":[]}\n",
        ] {
            write(&path, &entry(doc, None, &origin)).unwrap();
            // An empty object gets no stray comma.
            write(&dir.join("empty.json"), &entry(b"{}", None, &origin)).unwrap();
            serde_json::from_slice::<Value>(&fs::read(dir.join("empty.json")).unwrap()).unwrap();
            let cached = read(&path, 1 << 20, &origin).unwrap().unwrap();
            assert_eq!(cached.etag, None);
        }
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert!(fs::read_dir(&dir).unwrap().count() == 2, "temp files left behind");
        assert_eq!(leftovers.len(), 1, "temp files left behind: {leftovers:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reports_missing_corrupt_oversized_and_foreign_files() {
        let dir = temp_dir("bad");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("flags.json");
        let origin = origin();
        assert!(read(&path, 100, &origin).unwrap().is_none());
        fs::write(&path, b"{not json").unwrap();
        assert!(read(&path, 100, &origin).unwrap_err().contains("not valid JSON"));
        fs::write(&path, br#"[{"key": 1}]"#).unwrap();
        assert!(read(&path, 100, &origin).is_err());
        fs::write(&path, vec![b' '; 101 + usize::try_from(META_ALLOWANCE).unwrap()]).unwrap();
        assert!(read(&path, 100, &origin).unwrap_err().contains("larger than"));
        write(&path, &entry(b"[]", None, &origin)).unwrap();
        let other = Origin {
            url_id: "ffffffffffffffff".into(),
            redacted_url: "http://other/".into(),
        };
        let error = read(&path, 100, &other).unwrap_err();
        assert!(error.contains("another URL (\"http://h/api/flags\")"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = temp_dir("failed");
        let path = dir.join("flags.json");
        let origin = origin();
        write(
            &path,
            &entry(br#"[{"key": "a", "enabled": true}]"#, Some("\"e1\""), &origin),
        )
        .unwrap();
        assert!(write(&path, &entry(b"not json", Some("\"e2\""), &origin)).is_err());
        assert_eq!(
            read(&path, 1 << 20, &origin).unwrap().unwrap().etag.as_deref(),
            Some("\"e1\"")
        );
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
