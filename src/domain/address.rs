//! Recipient addresses: email addresses and Telegram chats (phone numbers
//! are in `phone.rs`).

use std::fmt;

/// A syntactically valid email address (RFC 5321 as lettre checks it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        let address: lettre::Address = trimmed
            .parse()
            .map_err(|e| format!("`{trimmed}` is not an email address ({e})"))?;
        if !address.domain().contains('.') && address.domain() != "localhost" {
            return Err(format!("`{trimmed}` has no domain name after @"));
        }
        // Lower-cased whole: domains are case-insensitive, and so in
        // practice are mailboxes; this keeps one delivery per mailbox when
        // two lists spell it differently.
        Ok(Self(address.to_string().to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Telegram chat: a numeric id (users, groups) or a public `@channel`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ChatId(String);

impl ChatId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        let valid = match trimmed.strip_prefix('@') {
            Some(name) => {
                name.len() >= 4 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            }
            None => trimmed.parse::<i64>().is_ok_and(|id| id != 0),
        };
        if valid {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(format!(
                "`{trimmed}` is not a Telegram chat id (a number, or @channelname)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_domain_is_lowercased_and_bad_addresses_rejected() {
        let e = EmailAddress::parse(" Mario.Rossi@Example.ORG ").unwrap();
        assert_eq!(e.as_str(), "mario.rossi@example.org");
        assert!(EmailAddress::parse("mario.rossi@").is_err());
        assert!(EmailAddress::parse("mario rossi@example.org").is_err());
        assert!(EmailAddress::parse("mario@example").is_err());
    }

    #[test]
    fn chat_ids_are_numbers_or_channel_names() {
        assert!(ChatId::parse("100000001").is_ok());
        assert!(ChatId::parse("-1001234567890").is_ok());
        assert!(ChatId::parse("@allerta_montelupo").is_ok());
        assert!(ChatId::parse("abc").is_err());
        assert!(ChatId::parse("0").is_err());
    }
}
