//! The outbox transport (SPEC §8.5): instead of contacting a service, append
//! the exact message as one JSON line to `<outbox_dir>/<channel>.jsonl`.
//! The line's byte offset is the provider id.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::json;

use super::{Accepted, BuildError, Channel, DeliveryError, Message, SendFuture};
use crate::domain::ChannelId;

pub struct Outbox {
    channel: ChannelId,
    path: PathBuf,
    /// Opened at the first message, so `--dry-run` creates nothing.
    file: Mutex<Option<File>>,
    rate: Option<f64>,
    email_headers: Option<super::email::HeaderConfig>,
}

impl Outbox {
    pub fn open(dir: &Path, channel: ChannelId, rate: Option<f64>) -> Result<Self, BuildError> {
        if dir.exists() && !dir.is_dir() {
            return Err(BuildError(format!(
                "outbox directory {} is not a directory",
                dir.display()
            )));
        }
        Ok(Self {
            channel,
            path: dir.join(format!("{channel}.jsonl")),
            file: Mutex::new(None),
            rate,
            email_headers: None,
        })
    }

    /// The header settings of `[channels.email]`, for the email outbox.
    pub fn with_email_headers(mut self, headers: super::email::HeaderConfig) -> Self {
        self.email_headers = Some(headers);
        self
    }

    fn line(&self, m: &Message<'_>) -> serde_json::Value {
        let mut line = json!({
            "alert_id": m.alert.id,
            "delivery_id": m.delivery.id,
            "channel": self.channel.as_str(),
            "to": m.delivery.address,
            "language": m.delivery.language,
            "status": m.alert.status.as_str(),
            "msg_type": m.alert.msg_type.as_str(),
            "text": m.content.text,
        });
        if let Some(subject) = &m.content.subject {
            line["subject"] = json!(subject);
        }
        if self.channel == ChannelId::Email {
            if let Some(h) = &self.email_headers {
                line["headers"] = json!(super::email::headers_for(m, h));
            }
            if let Some(html) = &m.content.html {
                line["html"] = json!(html);
            }
        }
        if self.channel == ChannelId::Sms {
            let a = crate::template::gsm::analyze(&m.content.text);
            line["encoding"] = json!(a.encoding.as_str());
            line["segments"] = json!(a.segments);
        }
        line
    }
}

/// Whether the file is empty or its last byte ends a line.
fn ends_with_newline(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut f = File::open(path)?;
    if f.metadata()?.len() == 0 {
        return Ok(true);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

impl Channel for Outbox {
    fn id(&self) -> ChannelId {
        self.channel
    }

    fn describe(&self) -> String {
        format!("outbox → {}", self.path.display())
    }

    fn is_outbox(&self) -> bool {
        true
    }

    fn concurrency(&self) -> usize {
        64
    }

    fn rate_per_second(&self) -> Option<f64> {
        self.rate
    }

    fn send<'a>(&'a self, message: &'a Message<'a>) -> SendFuture<'a> {
        let mut bytes = self.line(message).to_string().into_bytes();
        bytes.push(b'\n');
        let result = (|| {
            let io_err = |e: std::io::Error| {
                DeliveryError::transient(format!("outbox {}: {e}", self.path.display()))
            };
            let mut guard = self
                .file
                .lock()
                .map_err(|_| DeliveryError::transient("outbox lock poisoned"))?;
            if guard.is_none() {
                // No world access (SPEC §13): the lines hold phone
                // numbers, addresses and chat ids.
                if let Some(dir) = self.path.parent() {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o770)
                        .create(dir)
                        .map_err(io_err)?;
                }
                let mut file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o660)
                    .open(&self.path)
                    .map_err(io_err)?;
                // A process killed in the middle of a write can leave half
                // a line (the kernel stops a write between pages for a
                // fatal signal): end it, so it never runs into the next
                // message. Its delivery stayed `sending`: resume sends it
                // again on a line of its own.
                if !ends_with_newline(&self.path).map_err(io_err)? {
                    file.write_all(b"\n").map_err(io_err)?;
                }
                *guard = Some(file);
            }
            let Some(file) = guard.as_mut() else {
                return Err(DeliveryError::transient("outbox file not open"));
            };
            let offset = file.seek(SeekFrom::End(0)).map_err(|e| {
                DeliveryError::transient(format!("outbox {}: {e}", self.path.display()))
            })?;
            // One write of the whole line.
            file.write_all(&bytes).map_err(|e| {
                DeliveryError::transient(format!("outbox {}: {e}", self.path.display()))
            })?;
            Ok(Accepted {
                provider_id: Some(format!(
                    "{}@{offset}",
                    self.path
                        .file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default()
                )),
                delivered: false,
            })
        })();
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_torn_by_a_kill_is_ended_before_the_next_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sms.jsonl");
        std::fs::write(&path, "{\"complete\":1}\n{\"to\":\"+3933").expect("torn file");
        assert!(!ends_with_newline(&path).expect("read"));
        std::fs::write(dir.path().join("email.jsonl"), "{\"complete\":1}\n").expect("whole file");
        assert!(ends_with_newline(&dir.path().join("email.jsonl")).expect("read"));
        std::fs::write(dir.path().join("empty.jsonl"), "").expect("empty");
        assert!(ends_with_newline(&dir.path().join("empty.jsonl")).expect("read"));
    }
}
