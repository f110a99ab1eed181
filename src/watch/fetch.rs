//! Reading a source: `https://` and `http://` with the rustls reqwest
//! client, `file://` from disk. Transient failures (connection errors,
//! timeouts, 5xx, 429) are retried with a short, bounded backoff.

use std::time::Duration;

use super::config::Source;

/// A bulletin is ≈ 5.5 MB; anything far larger is not one.
const MAX_BYTES: usize = 64 * 1024 * 1024;
/// Attempts per poll; the next poll tries again anyway.
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct FetchError {
    pub message: String,
    transient: bool,
}

impl FetchError {
    fn transient(message: String) -> Self {
        Self {
            message,
            transient: true,
        }
    }

    fn permanent(message: String) -> Self {
        Self {
            message,
            transient: false,
        }
    }
}

pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!("allerta/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// The source's bytes, after at most `ATTEMPTS` tries.
pub async fn fetch(http: &reqwest::Client, source: &Source) -> Result<Vec<u8>, String> {
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match fetch_once(http, source).await {
            Ok(bytes) => return Ok(bytes),
            Err(e) if e.transient && attempt < ATTEMPTS => {
                tracing::info!(source = %source.name, attempt, error = %e.message, "retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            Err(e) => {
                return Err(if attempt > 1 {
                    format!("{} (after {attempt} attempts)", e.message)
                } else {
                    e.message
                });
            }
        }
    }
}

async fn fetch_once(http: &reqwest::Client, source: &Source) -> Result<Vec<u8>, FetchError> {
    if source.url.scheme() == "file" {
        let path = source
            .url
            .to_file_path()
            .map_err(|()| FetchError::permanent(format!("{} is not a local path", source.url)))?;
        return match tokio::fs::read(&path).await {
            Ok(bytes) if bytes.len() > MAX_BYTES => Err(FetchError::permanent(format!(
                "{}: larger than {MAX_BYTES} bytes",
                path.display()
            ))),
            Ok(bytes) => Ok(bytes),
            Err(e) => Err(FetchError::transient(format!("{}: {e}", path.display()))),
        };
    }
    let response = http
        .get(source.url.clone())
        .timeout(source.timeout)
        .send()
        .await
        .map_err(|e| FetchError::transient(describe(&e, source)))?;
    let status = response.status();
    if !status.is_success() {
        let message = format!("{} answered HTTP {status}", source.url);
        let retry = status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT;
        return Err(if retry {
            FetchError::transient(message)
        } else {
            FetchError::permanent(message)
        });
    }
    let mut response = response;
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::transient(describe(&e, source)))?
    {
        if body.len() + chunk.len() > MAX_BYTES {
            return Err(FetchError::permanent(format!(
                "{}: larger than {MAX_BYTES} bytes",
                source.url
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn describe(e: &reqwest::Error, source: &Source) -> String {
    if e.is_timeout() {
        format!(
            "{}: no answer within {}",
            source.url,
            humantime::format_duration(source.timeout)
        )
    } else if e.is_connect() {
        format!("{}: cannot connect", source.url)
    } else {
        format!("{}: {e}", source.url)
    }
}
