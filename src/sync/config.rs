//! What a sync client is told, and how the secrets in it are kept out of every text it produces.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ureq::http::{HeaderName, HeaderValue, Uri};

use super::SyncError;

pub const DEFAULT_PATH: &str = "/api/flags";
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(300);
/// The backoff cap until the first success (never below `interval`, never above `backoff_cap`).
pub const DEFAULT_COLD_START_CAP: Duration = Duration::from_secs(5);
pub const USER_AGENT: &str = concat!("ferroflag/", env!("CARGO_PKG_VERSION"));
/// What stands in for a secret in any text this module produces.
pub const REDACTED: &str = "<redacted>";

/// Where and how a [`SyncClient`](super::SyncClient) fetches. The URL and headers are private so
/// that they are validated once and can only be shown redacted; the rest are plain settings,
/// checked when the client is built.
#[derive(Clone)]
pub struct SyncConfig {
    url: String,
    headers: Vec<Header>,
    /// Time between polls while all is well.
    pub interval: Duration,
    /// Budget for one whole request, from name resolution to the last byte of the body.
    pub timeout: Duration,
    /// Budget for name resolution and for the TCP connect each; never more than `timeout`. These
    /// are the only phases that [`SyncClient::stop`](super::SyncClient::stop) cannot cut short.
    pub connect_timeout: Duration,
    /// The longest wait between attempts while failing, and the wait after a 401/403. Raised to
    /// `interval` if lower.
    pub backoff_cap: Duration,
    /// The longest wait between attempts until the first success: a process that starts during an
    /// outage retries briskly. Kept between `interval` and `backoff_cap`; 401/403 and `Retry-After`
    /// still wait as long as they ask.
    pub cold_start_cap: Duration,
    /// A larger response body (after decompression) fails the poll while it is being read.
    pub max_body_bytes: u64,
    /// The last good document and its `ETag`, served at start-up (before the first request)
    /// until the service answers.
    pub cache_path: Option<PathBuf>,
    /// PEM certificates that replace the bundled Mozilla roots for HTTPS verification.
    pub ca_bundle: Option<PathBuf>,
}

impl SyncConfig {
    /// `path` is appended to `api_url` with exactly one `/` between them; an empty `path` means
    /// `api_url` is already the full URL of the document (a static file on a CDN, say).
    pub fn new(api_url: &str, path: &str) -> Result<Self, SyncError> {
        let api_url = api_url.trim();
        let url = if path.is_empty() {
            api_url.to_owned()
        } else {
            if api_url.contains(['?', '#']) {
                return Err(SyncError::InvalidUrl {
                    url: redact_url(api_url),
                    reason: "a base URL with a query or fragment cannot take a path; pass the full URL and path=\"\""
                        .into(),
                });
            }
            format!("{}/{}", api_url.trim_end_matches('/'), path.trim_start_matches('/'))
        };
        validate_url(&url)?;
        Ok(Self {
            url,
            headers: Vec::new(),
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            backoff_cap: DEFAULT_BACKOFF_CAP,
            cold_start_cap: DEFAULT_COLD_START_CAP,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            cache_path: None,
            ca_bundle: None,
        })
    }

    /// The full URL, credentials included: for making requests, never for showing.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL with userinfo and query string replaced by `<redacted>`.
    #[must_use]
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// Adds a header sent with every poll. Its value is treated as a secret from here on.
    pub fn add_header(&mut self, name: &str, value: &str) -> Result<(), SyncError> {
        let header_name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| SyncError::InvalidHeader {
            name: name.into(),
            reason: "not a valid header name".into(),
        })?;
        if header_name == ureq::http::header::IF_NONE_MATCH {
            return Err(SyncError::InvalidHeader {
                name: name.into(),
                reason: "the client sends If-None-Match itself, from the last ETag".into(),
            });
        }
        let mut header_value = HeaderValue::from_str(value).map_err(|_| SyncError::InvalidHeader {
            name: name.into(),
            reason: "the value holds characters not allowed in a header".into(),
        })?;
        // Keeps the value out of the http crate's own Debug output as well.
        header_value.set_sensitive(true);
        self.headers.push(Header {
            shown: name.trim().to_owned(),
            name: header_name,
            value: header_value,
        });
        Ok(())
    }

    /// Builder form of [`add_header`](Self::add_header).
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, SyncError> {
        self.add_header(name, value)?;
        Ok(self)
    }

    /// Header names, in the order added; the values are not shown.
    #[must_use]
    pub fn header_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.headers.iter().map(|header| header.shown.as_str())
    }

    pub(crate) fn headers(&self) -> &[Header] {
        &self.headers
    }

    pub(crate) fn validate(&self) -> Result<(), SyncError> {
        let positive = [
            ("interval", self.interval),
            ("timeout", self.timeout),
            ("connect_timeout", self.connect_timeout),
        ];
        for (name, value) in positive {
            if value.is_zero() {
                return Err(SyncError::InvalidConfig(format!("{name} must be greater than zero")));
            }
        }
        if self.max_body_bytes == 0 {
            return Err(SyncError::InvalidConfig(
                "max_body_bytes must be greater than zero".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn effective_connect_timeout(&self) -> Duration {
        self.connect_timeout.min(self.timeout)
    }

    pub(crate) fn effective_cap(&self) -> Duration {
        self.backoff_cap.max(self.interval)
    }

    /// Names the URL in the cache file without showing it: a hash of the whole URL, credentials
    /// included (another token may mean another environment), never the URL itself.
    pub(crate) fn url_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(b"ferroflag cache source\0");
        hasher.update(self.url.as_bytes());
        hex(&hasher.finalize()[..8])
    }

    pub(crate) fn redactor(&self) -> Redactor {
        let mut secrets: Vec<String> = self
            .headers
            .iter()
            .map(|header| String::from_utf8_lossy(header.value.as_bytes()).into_owned())
            .collect();
        let (userinfo, query) = url_secrets(&self.url);
        if let Some(userinfo) = userinfo {
            secrets.extend(userinfo.split(':').map(str::to_owned));
            secrets.push(userinfo.to_owned());
        }
        secrets.extend(query.map(str::to_owned));
        Redactor::new(&self.url, secrets)
    }
}

#[derive(Clone)]
pub(crate) struct Header {
    /// The name as the caller spelled it (`HeaderName` lowercases), for showing.
    shown: String,
    pub(crate) name: HeaderName,
    pub(crate) value: HeaderValue,
}

impl fmt::Debug for SyncConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|header| format!("{}: {REDACTED}", header.shown))
            .collect();
        f.debug_struct("SyncConfig")
            .field("url", &self.redacted_url())
            .field("headers", &headers)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("backoff_cap", &self.backoff_cap)
            .field("cold_start_cap", &self.cold_start_cap)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("cache_path", &self.cache_path)
            .field("ca_bundle", &self.ca_bundle)
            .finish()
    }
}

fn validate_url(url: &str) -> Result<(), SyncError> {
    let invalid = |reason: &str| SyncError::InvalidUrl {
        url: redact_url(url),
        reason: reason.into(),
    };
    // `http://user:pa/ss@host/` parses as host `user` with the password in the path: the request
    // would go to the wrong host. An `@` anywhere before the query is refused unless it ends the
    // userinfo, which is then the part before the first `/`.
    let (_, userinfo, _) = split_userinfo(url);
    if userinfo.is_some_and(|userinfo| userinfo.contains(['/', '@'])) {
        return Err(invalid(
            "the credentials or the path hold an unencoded '/' or '@'; percent-encode them (%2F, %40)",
        ));
    }
    let uri: Uri = url.parse().map_err(|_| invalid("not a valid URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(invalid("the scheme must be http or https")),
    }
    match uri.host() {
        Some(host) if !host.is_empty() => Ok(()),
        _ => Err(invalid("the URL has no host")),
    }
}

/// Lowercase hex digits of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The document id of a body: the first 8 bytes of its SHA-256, in hex.
pub(crate) fn document_id(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes)[..8])
}

/// Splits a URL after its scheme into userinfo (everything before the *last* `@` ahead of the
/// query, so that a password holding an unencoded `/` is still taken whole) and the rest.
fn split_userinfo(url: &str) -> (&str, Option<&str>, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let (scheme, rest) = url.split_at(after_scheme);
    let before_query = rest.find(['?', '#']).unwrap_or(rest.len());
    match rest[..before_query].rfind('@') {
        Some(at) => (scheme, Some(&rest[..at]), &rest[at + 1..]),
        None => (scheme, None, rest),
    }
}

/// The userinfo and the query string of a URL, the parts that can carry credentials.
fn url_secrets(url: &str) -> (Option<&str>, Option<&str>) {
    let (_, userinfo, rest) = split_userinfo(url);
    let query = rest.find('?').map(|q| {
        let query = &rest[q + 1..];
        &query[..query.find('#').unwrap_or(query.len())]
    });
    (userinfo.filter(|s| !s.is_empty()), query.filter(|s| !s.is_empty()))
}

/// `scheme://<redacted>@host/path?<redacted>`: fine to log, to show in status, to put in errors.
#[must_use]
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, userinfo, rest) = split_userinfo(url);
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    if userinfo.is_some() {
        out.push_str(REDACTED);
        out.push('@');
    }
    let tail = &rest[..rest.find('#').unwrap_or(rest.len())];
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            if !query.is_empty() {
                out.push('?');
                out.push_str(REDACTED);
            }
        }
        None => out.push_str(tail),
    }
    out
}

/// Scrubs secrets out of texts that come from elsewhere (error messages of the HTTP stack),
/// which might echo the URL or, in some future version, a header.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    url: String,
    redacted_url: String,
    /// Longest first, so that a secret containing another is replaced whole.
    secrets: Vec<String>,
}

impl Redactor {
    /// Secrets shorter than this are not scrubbed: replacing every "1" would mangle "HTTP 401",
    /// and a secret that short protects nothing anyway.
    const MIN_SECRET_LEN: usize = 4;

    pub(crate) fn new(url: &str, secrets: Vec<String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.len() >= Self::MIN_SECRET_LEN)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self {
            url: url.to_owned(),
            redacted_url: redact_url(url),
            secrets,
        }
    }

    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut text = if self.url.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.url, &self.redacted_url)
        };
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        text
    }

    pub(crate) fn redacted_url(&self) -> &str {
        &self.redacted_url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_base_and_path_with_one_slash() {
        let join = |base: &str, path: &str| SyncConfig::new(base, path).unwrap().url().to_owned();
        assert_eq!(join("http://h:1", "/api/flags"), "http://h:1/api/flags");
        assert_eq!(join("http://h:1/", "/api/flags"), "http://h:1/api/flags");
        assert_eq!(join("http://h:1/base/", "api/flags"), "http://h:1/base/api/flags");
        assert_eq!(join("https://cdn/f.json?sig=x", ""), "https://cdn/f.json?sig=x");
    }

    #[test]
    fn rejects_bad_urls_without_echoing_credentials() {
        for url in ["ftp://h/x", "not a url", "http:///nohost", "http://u:hunter2@h/x?y"] {
            let result = SyncConfig::new(url, "/p");
            let error = result.expect_err(url).to_string();
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn redacts_userinfo_and_query() {
        assert_eq!(
            redact_url("https://u:p@h:8/x?token=t#f"),
            "https://<redacted>@h:8/x?<redacted>"
        );
        assert_eq!(redact_url("http://h/x"), "http://h/x");
        assert_eq!(redact_url("http://h?"), "http://h");
        assert_eq!(redact_url("http://u:p/w@s@h/x"), "http://<redacted>@h/x");
    }

    #[test]
    fn a_password_with_a_slash_is_refused_and_never_shown() {
        for url in [
            "http://user:123/abcsecret@127.0.0.1:9/api",
            "http://u:x@y/abcsecret@h/p",
        ] {
            let error = SyncConfig::new(url, "").expect_err(url).to_string();
            assert!(
                !error.contains("abcsecret") && error.contains("percent-encode"),
                "{error}"
            );
        }
        assert!(SyncConfig::new("http://user:a%2Fb@h/x", "").is_ok());
    }

    #[test]
    fn debug_never_shows_header_values() {
        let config = SyncConfig::new("http://u:pa55word@h", "/api/flags?key=querysecret")
            .unwrap()
            .with_header("Authorization", "Bearer tok-123456")
            .unwrap();
        let text = format!("{config:?}");
        assert!(text.contains("Authorization: <redacted>"), "{text}");
        for secret in ["tok-123456", "pa55word", "querysecret"] {
            assert!(!text.contains(secret), "{text}");
        }
    }

    #[test]
    fn header_validation_does_not_echo_the_value() {
        let mut config = SyncConfig::new("http://h", "").unwrap();
        let error = config.add_header("X-Key", "bad\nsecretvalue").unwrap_err().to_string();
        assert!(!error.contains("secretvalue") && error.contains("X-Key"), "{error}");
        assert!(config.add_header("bad name", "v").is_err());
        assert!(config.add_header("If-None-Match", "v").is_err());
    }

    #[test]
    fn redactor_scrubs_url_and_secrets() {
        let config = SyncConfig::new("http://user:pa55word@h:1", "/f?sig=abcdef")
            .unwrap()
            .with_header("X-Api-Key", "key-0987654")
            .unwrap();
        let redactor = config.redactor();
        let text = redactor.scrub("GET http://user:pa55word@h:1/f?sig=abcdef failed; key-0987654; pa55word; HTTP 401");
        assert_eq!(
            text,
            "GET http://<redacted>@h:1/f?<redacted> failed; <redacted>; <redacted>; HTTP 401"
        );
    }
}
