//! Recipient addresses: E.164 phone numbers, email addresses, Telegram chats.

use std::fmt;
use std::str::FromStr;

use phonenumber::country;

/// A phone number validated and normalised to E.164 (`+393330000001`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a number as written by a person. Numbers without a `+` prefix
    /// are read in `default_region` (ISO 3166 code such as `IT`).
    pub fn parse(raw: &str, default_region: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("empty phone number".into());
        }
        let region = country::Id::from_str(default_region)
            .map_err(|_| format!("unknown default region `{default_region}`"))?;
        let parsed = phonenumber::parse(Some(region), trimmed)
            .map_err(|e| format!("`{trimmed}` is not a phone number ({e})"))?;
        if !phonenumber::is_valid(&parsed) {
            return Err(format!(
                "`{trimmed}` is not a valid phone number for its country"
            ));
        }
        Ok(Self(
            parsed.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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
    fn italian_mobile_without_prefix_is_normalised_to_e164() {
        let n = PhoneNumber::parse("333 000 0001", "IT").unwrap();
        assert_eq!(n.as_str(), "+393330000001");
    }

    #[test]
    fn international_prefix_wins_over_default_region() {
        let n = PhoneNumber::parse("+39 333 000 0003", "FR").unwrap();
        assert_eq!(n.as_str(), "+393330000003");
        let n = PhoneNumber::parse("0039 333 000 0002", "IT").unwrap();
        assert_eq!(n.as_str(), "+393330000002");
    }

    #[test]
    fn malformed_numbers_are_rejected() {
        assert!(PhoneNumber::parse("333", "IT").is_err());
        assert!(PhoneNumber::parse("not a number", "IT").is_err());
        assert!(PhoneNumber::parse("", "IT").is_err());
        assert!(PhoneNumber::parse("+39 333 000 0001 99999", "IT").is_err());
    }

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
