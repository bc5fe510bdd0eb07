//! The one error type of the core. It knows nothing of Python; `bindings::errors` maps it.

use std::fmt;

/// Where in a flag document a problem sits: the flag (by index and, when it has one, key) and a
/// JSON path inside it such as `rules[0].conditions[1].operator`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Index of the flag in the document's flag list, when the problem is inside a flag.
    pub index: Option<usize>,
    /// The flag's key, when it has a string key.
    pub flag: Option<String>,
    /// Path inside the flag (or the document, when `index` is `None`); empty for the whole thing.
    pub path: String,
}

impl Location {
    #[must_use]
    pub fn document(path: impl Into<String>) -> Self {
        Self {
            index: None,
            flag: None,
            path: path.into(),
        }
    }

    /// The full JSON path from the document root, e.g. `flags[3].rules[0].priority`.
    #[must_use]
    pub fn json_path(&self) -> String {
        match (self.index, self.path.is_empty()) {
            (None, _) => self.path.clone(),
            (Some(i), true) => format!("flags[{i}]"),
            (Some(i), false) => format!("flags[{i}].{}", self.path),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.flag, self.index) {
            (Some(key), _) => write!(f, "flag {key:?}")?,
            (None, Some(i)) => write!(f, "flag at index {i}")?,
            (None, None) => {
                return if self.path.is_empty() {
                    f.write_str("document")
                } else {
                    f.write_str(&self.path)
                };
            }
        }
        if !self.path.is_empty() {
            write!(f, ", field {:?}", self.path)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub enum FerroflagError {
    /// The document is rejected whole (SPEC §5); the previous snapshot stays in place.
    Config { location: Location, message: String },
    /// Reading a flag file failed.
    Io { path: String, source: std::io::Error },
}

pub type Result<T, E = FerroflagError> = std::result::Result<T, E>;

impl FerroflagError {
    pub(crate) fn config(location: Location, message: impl Into<String>) -> Self {
        Self::Config {
            location,
            message: message.into(),
        }
    }
}

impl fmt::Display for FerroflagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config { location, message } => write!(f, "invalid flag document: {location}: {message}"),
            Self::Io { path, source } => write!(f, "cannot read flag file {path:?}: {source}"),
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
