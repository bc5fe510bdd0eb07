//! The one error type of the core. It knows nothing of Python; `bindings::errors` maps it.

use std::fmt;

/// What a located problem sits in: a flag or a segment of the document (docs/spec.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    Flag,
    Segment,
}

impl ItemKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flag => "flag",
            Self::Segment => "segment",
        }
    }

    /// The document field that lists items of this kind.
    #[must_use]
    pub fn list(self) -> &'static str {
        match self {
            Self::Flag => "flags",
            Self::Segment => "segments",
        }
    }
}

/// Where in a flag document a problem sits: the flag or segment (by index and, when it has one,
/// key) and a JSON path inside it such as `rules[0].conditions[1].operator`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub kind: ItemKind,
    /// Index of the item in its list, when the problem is inside a flag or segment.
    pub index: Option<usize>,
    /// The item's key, when it has a string key.
    pub key: Option<String>,
    /// Path inside the item (or the document, when `index` and `key` are `None`); empty for the whole thing.
    pub path: String,
}

impl Location {
    #[must_use]
    pub fn document(path: impl Into<String>) -> Self {
        Self {
            kind: ItemKind::Flag,
            index: None,
            key: None,
            path: path.into(),
        }
    }

    #[must_use]
    pub fn item(kind: ItemKind, index: usize, key: Option<&str>, path: impl Into<String>) -> Self {
        Self {
            kind,
            index: Some(index),
            key: key.map(str::to_owned),
            path: path.into(),
        }
    }

    /// The key of the flag this is about (not of a segment).
    #[must_use]
    pub fn flag(&self) -> Option<&str> {
        match self.kind {
            ItemKind::Flag => self.key.as_deref(),
            ItemKind::Segment => None,
        }
    }

    /// The full JSON path from the document root, e.g. `flags[3].rules[0].priority`.
    #[must_use]
    pub fn json_path(&self) -> String {
        match (self.index, self.path.is_empty()) {
            (None, _) => self.path.clone(),
            (Some(i), true) => format!("{}[{i}]", self.kind.list()),
            (Some(i), false) => format!("{}[{i}].{}", self.kind.list(), self.path),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.key, self.index) {
            (Some(key), _) => write!(f, "{} {}", self.kind.as_str(), quote(key))?,
            (None, Some(i)) => write!(f, "{} at index {i}", self.kind.as_str())?,
            (None, None) => {
                return if self.path.is_empty() {
                    f.write_str("document")
                } else {
                    f.write_str(&self.path)
                };
            }
        }
        if !self.path.is_empty() {
            write!(f, ", field {}", quote(&self.path))?;
        }
        Ok(())
    }
}

/// The longest text of a document quoted whole in an error or warning; longer ones are cut.
const MAX_QUOTED_CHARS: usize = 80;

/// Quotes text from a document for a message, bounded: a 15 MB key must not make a 15 MB error.
#[must_use]
pub fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
    }
}

/// A message cut to at most `max_chars` characters, saying how long it was when cut.
#[must_use]
pub fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
    }
}

#[derive(Debug)]
pub enum FerroflagError {
    /// The document is rejected whole (docs/spec.md §6); the previous snapshot stays in place.
    Config {
        location: Location,
        message: String,
        /// A field of the wrong JSON type, as opposed to a value out of its range.
        wrong_type: bool,
    },
    /// Reading a flag file failed.
    Io { path: String, source: std::io::Error },
}

pub type Result<T, E = FerroflagError> = std::result::Result<T, E>;

impl FerroflagError {
    pub(crate) fn config(location: Location, message: impl Into<String>) -> Self {
        Self::Config {
            location,
            message: message.into(),
            wrong_type: false,
        }
    }

    pub(crate) fn wrong_type(location: Location, message: impl Into<String>) -> Self {
        Self::Config {
            location,
            message: message.into(),
            wrong_type: true,
        }
    }
}

impl fmt::Display for FerroflagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config { location, message, .. } => write!(f, "invalid flag document: {location}: {message}"),
            Self::Io { path, source } => write!(f, "cannot read flag file {}: {source}", quote(path)),
        }
    }
}

impl std::error::Error for FerroflagError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Config { .. } => None,
        }
    }
}

/// A problem inside an otherwise valid document: it loads, and the problem is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub location: Location,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_is_bounded() {
        let long = "k".repeat(15_000_000);
        let text = quote(&long);
        assert!(text.len() < 120, "{}", text.len());
        assert!(text.ends_with("(15000000 bytes)"));
        assert_eq!(quote("checkout"), "\"checkout\"");
    }
}
