//! One poll over HTTP with ureq, and the agent configuration every poll uses.

use std::fmt::Write;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

use ureq::Agent;
use ureq::config::Config;
use ureq::http::{StatusCode, header};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use super::SyncError;
use super::backoff::{Retry, parse_retry_after};
use super::config::{Redactor, SyncConfig, USER_AGENT};

/// A CA bundle is a few hundred kilobytes even with every public root in it.
const MAX_CA_BUNDLE_BYTES: u64 = 16 * 1024 * 1024;
/// An `ETag` longer than this is not one we echo back.
const MAX_ETAG_LEN: usize = 1024;

/// An entity tag as RFC 9110 §8.8.3 defines it: `"..."` or `W/"..."`, the inside visible ASCII
/// (or obs-text) without `"`, and at most [`MAX_ETAG_LEN`] bytes. Anything else, `*` above all, is
/// never sent back as `If-None-Match`.
pub(crate) fn is_valid_etag(etag: &str) -> bool {
    let opaque = etag.strip_prefix("W/").unwrap_or(etag).as_bytes();
    etag.len() <= MAX_ETAG_LEN
        && opaque.len() >= 2
        && opaque.first() == Some(&b'"')
        && opaque.last() == Some(&b'"')
        && opaque[1..opaque.len() - 1]
            .iter()
            .all(|&b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
}

#[derive(Debug)]
pub(crate) enum Fetched {
    Modified { body: Vec<u8>, etag: Option<String> },
    NotModified,
}

#[derive(Debug)]
pub(crate) struct FetchFailure {
    /// Redacted, fit for status and logs.
    pub(crate) message: String,
    pub(crate) retry: Retry,
    /// The HTTP status, when the server answered.
    pub(crate) status: Option<u16>,
}

impl FetchFailure {
    /// The status of a 401/403.
    pub(crate) fn auth_status(&self) -> Option<u16> {
        self.status.filter(|_| self.retry == Retry::Auth)
    }
}

/// The agent settings: every timeout set (ureq sets none by default), no redirects (a custom
/// credential header would follow one to any host), statuses returned rather than raised (to read
/// `ETag` and `Retry-After`), TLS always verified.
pub(crate) fn agent_config(config: &SyncConfig) -> Result<Config, SyncError> {
    let mut tls = TlsConfig::builder();
    if let Some(path) = &config.ca_bundle {
        tls = tls.root_certs(load_ca_bundle(path)?);
    }
    let connect = config.effective_connect_timeout();
    Ok(Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(USER_AGENT)
        .accept("application/json")
        .tls_config(tls.build())
        .timeout_global(Some(config.timeout))
        .timeout_resolve(Some(connect))
        .timeout_connect(Some(connect))
        .timeout_recv_response(Some(config.timeout))
        .timeout_recv_body(Some(config.timeout))
        .build())
}

fn load_ca_bundle(path: &Path) -> Result<RootCerts, SyncError> {
    let fail = |reason: String| SyncError::CaBundle {
        path: path.to_owned(),
        reason,
    };
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_CA_BUNDLE_BYTES).read_to_end(&mut pem))
        .map_err(|e| fail(e.to_string()))?;
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(fail(format!("not valid PEM: {e}"))),
        }
    }
    if certs.is_empty() {
        return Err(fail("holds no PEM certificate".into()));
    }
    Ok(RootCerts::from(certs))
}

/// One `GET`: the document when it changed, `NotModified` on a 304, or a failure saying how to
/// retry. Only a 200 counts as a document; every other status is a failure.
pub(crate) fn fetch(
    agent: &Agent,
    config: &SyncConfig,
    etag: Option<&str>,
    redactor: &Redactor,
) -> Result<Fetched, FetchFailure> {
    get(agent, config, etag, redactor).map_err(|mut failure| {
        failure.message = format!("GET {}: {}", redactor.redacted_url(), failure.message);
        failure
    })
}

fn get(agent: &Agent, config: &SyncConfig, etag: Option<&str>, redactor: &Redactor) -> Result<Fetched, FetchFailure> {
    let mut request = agent.get(config.url());
    for header in config.headers() {
        request = request.header(&header.name, &header.value);
    }
    if let Some(etag) = etag {
        request = request.header(header::IF_NONE_MATCH, etag);
    }
    let mut response = request.call().map_err(|e| transport_failure(&e, config, redactor))?;
    let status = response.status();
    match status {
        StatusCode::OK => {
            // An ETag that is not one (`*`, unquoted, control characters, huge) is dropped: echoed
            // back as `If-None-Match`, `*` matches everything and a bad one breaks every request.
            let etag = response
                .headers()
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .filter(|v| is_valid_etag(v))
                .map(str::to_owned);
            let body = response
                .body_mut()
                .with_config()
                .limit(config.max_body_bytes)
                .read_to_vec()
                .map_err(|e| transport_failure(&e, config, redactor))?;
            Ok(Fetched::Modified { body, etag })
        }
        // Only an answer to our `If-None-Match`: without one there is nothing it could confirm (a
        // misconfigured proxy), and taking it as success would leave the client empty for ever.
        StatusCode::NOT_MODIFIED if etag.is_some() => Ok(Fetched::NotModified),
        StatusCode::NOT_MODIFIED => Err(FetchFailure {
            message: "server answered HTTP 304 Not Modified to a request without If-None-Match".into(),
            retry: Retry::Normal,
            status: Some(304),
        }),
        _ => {
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            Err(status_failure(status, retry_after))
        }
    }
}

fn status_failure(status: StatusCode, retry_after: Option<Duration>) -> FetchFailure {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("");
    let mut message = format!("server answered HTTP {code} {reason}").trim_end().to_owned();
    let retry = match code {
        401 | 403 => Retry::Auth,
        429 | 503 => retry_after.map_or(Retry::Normal, Retry::After),
        _ => Retry::Normal,
    };
    if status.is_redirection() {
        message.push_str(" (redirects are not followed, so that credentials never go to another host)");
    }
    if let Retry::After(wait) = retry {
        let _ = write!(message, " (Retry-After {} s)", wait.as_secs());
    }
    FetchFailure {
        message,
        retry,
        status: Some(code),
    }
}

fn transport_failure(error: &ureq::Error, config: &SyncConfig, redactor: &Redactor) -> FetchFailure {
    let message = match error {
        ureq::Error::Timeout(ureq::Timeout::Resolve | ureq::Timeout::Connect) => format!(
            "request timed out ({error}; connect_timeout {:?})",
            config.effective_connect_timeout()
        ),
        ureq::Error::Timeout(_) => format!("request timed out ({error}; timeout {:?})", config.timeout),
        ureq::Error::BodyExceedsLimit(limit) => {
            format!("response body is larger than the limit of {limit} bytes (max_body_bytes)")
        }
        ureq::Error::Io(io) => format!("{} ({io})", io_summary(io.kind())),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::ConnectionFailed => "connection failed".to_owned(),
        _ => error.to_string(),
    };
    FetchFailure {
        message: redactor.scrub(&message),
        retry: Retry::Normal,
        status: None,
    }
}

fn io_summary(kind: std::io::ErrorKind) -> &'static str {
    use std::io::ErrorKind;
    match kind {
        ErrorKind::ConnectionRefused => "connection refused",
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => "connection reset",
        ErrorKind::UnexpectedEof => "connection closed before the whole response arrived",
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "request timed out",
        _ => "network error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_retries() {
        let secs = Duration::from_secs;
        assert_eq!(status_failure(StatusCode::UNAUTHORIZED, None).retry, Retry::Auth);
        assert_eq!(
            status_failure(StatusCode::FORBIDDEN, Some(secs(5))).auth_status(),
            Some(403)
        );
        assert_eq!(
            status_failure(StatusCode::TOO_MANY_REQUESTS, Some(secs(7))).retry,
            Retry::After(secs(7))
        );
        assert_eq!(
            status_failure(StatusCode::SERVICE_UNAVAILABLE, None).retry,
            Retry::Normal
        );
        assert_eq!(
            status_failure(StatusCode::INTERNAL_SERVER_ERROR, Some(secs(7))).retry,
            Retry::Normal
        );
        let redirect = status_failure(StatusCode::FOUND, None);
        assert!(
            redirect
                .message
                .starts_with("server answered HTTP 302 Found (redirects"),
            "{}",
            redirect.message
        );
        assert_eq!(redirect.auth_status(), None);
    }

    #[test]
    fn only_real_etags_are_kept() {
        for good in ["\"v1\"", "W/\"v1\"", "\"\"", "\"a-b.c_d~e\""] {
            assert!(is_valid_etag(good), "{good}");
        }
        let long = format!("\"{}\"", "a".repeat(MAX_ETAG_LEN));
        for bad in [
            "*",
            "",
            "v1",
            "\"",
            "W/v1",
            "\"a\"b\"",
            "\"a\r\nX: y\"",
            "\"a b\"",
            long.as_str(),
        ] {
            assert!(!is_valid_etag(bad), "{bad}");
        }
    }

    #[test]
    fn ca_bundle_errors() {
        let dir = std::env::temp_dir().join(format!("ferroflag-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let mut config = SyncConfig::new("https://h", "").unwrap();
        config.ca_bundle = Some(empty);
        assert!(matches!(agent_config(&config), Err(SyncError::CaBundle { .. })));
        config.ca_bundle = Some(dir.join("missing.pem"));
        assert!(matches!(agent_config(&config), Err(SyncError::CaBundle { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
