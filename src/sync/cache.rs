//! The cache file: the last document that was applied, and its `ETag`, so that a process starting
//! while the flag service is down still serves the last known flags.
//!
//! It is written only after the document was applied (a bad response never reaches it) and
//! atomically (temp file in the same directory, fsync, rename), so readers, crashes and full disks
//! leave either the old file or the new one. The file is itself a valid flag document in object
//! form, with the `ETag` under one extra top-level key, an `x-` extension field that loaders pass
//! over without a warning (docs/spec.md §1):
//! `{"x-ferroflag-cache": {"format": 1, "etag": "\"v1\"", "saved_at": 1700000000}, "flags": [...]}`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde_json::{Map, Value, json};

use crate::document::{self, Parsed};

pub(crate) const META_KEY: &str = "x-ferroflag-cache";
/// Where releases before format 2 kept the cache's facts; still read, so an upgrade keeps the cache.
const OLD_META_KEY: &str = "ferroflag_cache";
const FORMAT: u64 = 1;

#[derive(Debug)]
pub(crate) struct Cached {
    pub(crate) parsed: Parsed,
    pub(crate) etag: Option<String>,
}

/// The cached document, `Ok(None)` when there is no cache file, or why it cannot be used.
pub(crate) fn read(path: &Path, max_bytes: u64) -> Result<Option<Cached>, String> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open {}: {e}", path.display())),
    };
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > max_bytes {
        return Err(format!("{} is larger than {max_bytes} bytes", path.display()));
    }
    let mut value: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    let meta = value
        .as_object_mut()
        .and_then(|doc| doc.remove(META_KEY).or_else(|| doc.remove(OLD_META_KEY)));
    let etag = match meta.as_ref().map(|meta| meta.get("etag")) {
        Some(Some(Value::String(etag))) => Some(etag.clone()),
        _ => None,
    };
    let parsed = document::from_value(&value).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(Cached { parsed, etag }))
}

/// Saves `document` (already validated: it was just applied) with its `ETag`.
pub(crate) fn write(path: &Path, document: &[u8], etag: Option<&str>) -> io::Result<()> {
    let bytes = wrap(document, etag)?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
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

fn wrap(document: &[u8], etag: Option<&str>) -> io::Result<Vec<u8>> {
    let value: Value = serde_json::from_slice(document).map_err(io::Error::other)?;
    let saved_at = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let meta = json!({"format": FORMAT, "etag": etag, "saved_at": saved_at});
    let mut object = match value {
        Value::Object(object) => object,
        Value::Array(flags) => {
            let mut object = Map::new();
            object.insert("flags".into(), Value::Array(flags));
            object
        }
        _ => return Err(io::Error::other("the document is neither an array nor an object")),
    };
    object.insert(META_KEY.into(), meta);
    serde_json::to_vec(&Value::Object(object)).map_err(io::Error::other)
}

/// Unique per process and write, so that two clients sharing a cache path never share a temp file.
fn temp_name(path: &Path) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map_or_else(|| "cache".into(), |n| n.to_string_lossy());
    format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
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

    #[test]
    fn round_trips_both_document_forms_and_the_etag() {
        let dir = temp_dir("roundtrip");
        let path = dir.join("sub").join("flags.json");
        write(
            &path,
            br#"[{"key": "a", "enabled": true, "percentage": 12.50}]"#,
            Some("\"v1\""),
        )
        .unwrap();
        let cached = read(&path, 1 << 20).unwrap().unwrap();
        assert_eq!(cached.etag.as_deref(), Some("\"v1\""));
        assert_eq!(cached.parsed.document.flags[0].key, "a");
        assert!(cached.parsed.warnings.is_empty());
        // The cache file is itself a flag document, which loads without a warning.
        let reread = document::parse(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(reread.document.flags.len(), 1);
        assert!(reread.warnings.is_empty(), "{:?}", reread.warnings);

        write(
            &path,
            br#"{"flags": [{"key": "b", "enabled": false}], "extra": 1}"#,
            None,
        )
        .unwrap();
        let cached = read(&path, 1 << 20).unwrap().unwrap();
        assert_eq!((cached.etag, cached.parsed.document.flags[0].key.as_str()), (None, "b"));
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temp files left behind: {leftovers:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reports_missing_corrupt_and_oversized_files() {
        let dir = temp_dir("bad");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("flags.json");
        assert!(read(&path, 100).unwrap().is_none());
        fs::write(&path, b"{not json").unwrap();
        assert!(read(&path, 100).unwrap_err().contains("not valid JSON"));
        fs::write(&path, br#"[{"key": 1}]"#).unwrap();
        assert!(read(&path, 100).is_err());
        fs::write(&path, vec![b' '; 101]).unwrap();
        assert!(read(&path, 100).unwrap_err().contains("larger than"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = temp_dir("failed");
        let path = dir.join("flags.json");
        write(&path, br#"[{"key": "a", "enabled": true}]"#, Some("e1")).unwrap();
        assert!(write(&path, b"[not json", Some("e2")).is_err());
        assert_eq!(read(&path, 1 << 20).unwrap().unwrap().etag.as_deref(), Some("e1"));
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
