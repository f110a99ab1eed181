//! Phone numbers, judged as libphonenumber judges them (SPEC §12).
//!
//! Parsing, validation and the number type come from `rlibphonenumber`, a
//! port of Google's libphonenumber with its metadata. The `phonenumber` crate
//! used before strips a leading `39` from Italian numbers written nationally
//! whenever the whole number fails a length check, so the 390–393 mobile
//! ranges became invalid `+3931…` numbers or, worse, valid but wrong `+390…`
//! ones; and it could not tell a fixed line from a mobile when the number has
//! Italy's leading zero. `tests/phone_oracle.rs` compares this module with
//! Debian's python3-phonenumbers over the whole Italian numbering plan.

use std::fmt;
use std::str::FromStr;

use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneNumberFormat, PhoneNumberType, Region};

/// What a number can receive: only a mobile gets an SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PhoneKind {
    /// A mobile, or a number that may be either (`FIXED_LINE_OR_MOBILE`, as
    /// in North America): it may receive an SMS.
    Mobile,
    /// A fixed line: calls only, never an SMS.
    Landline,
    /// Toll-free, premium, shared cost, VoIP, personal numbers and the like.
    Other,
}

impl PhoneKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mobile => "mobile",
            Self::Landline => "landline",
            Self::Other => "other",
        }
    }
}

/// A region for reading numbers written without an international prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneRegion(Region);

impl PhoneRegion {
    /// An ISO 3166 code that libphonenumber has metadata for (`IT`, `FR`…).
    pub fn parse(code: &str) -> Result<Self, String> {
        let unknown = || format!("unknown phone region `{code}` (an ISO 3166 code such as IT)");
        let region = Region::from_str(code.trim()).map_err(|_| unknown())?;
        if PHONE_NUMBER_UTIL
            .get_supported_regions()
            .any(|r| r == region)
        {
            Ok(Self(region))
        } else {
            Err(unknown())
        }
    }
}

/// A phone number validated and normalised to E.164 (`+393330000001`),
/// with its type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber {
    e164: String,
    kind: PhoneKind,
}

impl PhoneNumber {
    /// Parses a number as written by a person. Numbers without `+` or the
    /// region's international prefix (`00` in Italy) are read in `region`.
    pub fn parse(raw: &str, region: PhoneRegion) -> Result<Self, String> {
        let trimmed = raw.trim_matches(|c: char| c.is_whitespace());
        if trimmed.is_empty() {
            return Err("empty phone number".into());
        }
        let parsed = PHONE_NUMBER_UTIL
            .parse(trimmed, Some(region.0))
            .map_err(|e| format!("`{trimmed}` is not a phone number ({e})"))?;
        if !parsed.is_valid() {
            return Err(format!(
                "`{trimmed}` is not a valid phone number (wrong length or no such range)"
            ));
        }
        let kind = match parsed.get_type() {
            PhoneNumberType::Mobile | PhoneNumberType::FixedLineOrMobile => PhoneKind::Mobile,
            PhoneNumberType::FixedLine => PhoneKind::Landline,
            _ => PhoneKind::Other,
        };
        Ok(Self {
            e164: parsed.format_as(PhoneNumberFormat::E164).into_owned(),
            kind,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.e164
    }

    pub fn kind(&self) -> PhoneKind {
        self.kind
    }

    /// Whether an SMS can reach it.
    pub fn is_mobile(&self) -> bool {
        self.kind == PhoneKind::Mobile
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

/// Serialised as its E.164 string, as before it had a type.
impl serde::Serialize for PhoneNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.e164)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it() -> PhoneRegion {
        PhoneRegion::parse("IT").unwrap()
    }

    #[test]
    fn italian_mobile_without_prefix_is_normalised_to_e164() {
        let n = PhoneNumber::parse("333 000 0001", it()).unwrap();
        assert_eq!(n.as_str(), "+393330000001");
        assert_eq!(n.kind(), PhoneKind::Mobile);
    }

    #[test]
    fn mobiles_whose_first_digits_are_the_country_code_keep_them() {
        // The 390-393 ranges: the old crate took the 39 for the country code.
        for (raw, e164) in [
            ("393 1234567", "+393931234567"),
            ("3931234567", "+393931234567"),
            ("391 2312312", "+393912312312"),
            // The old crate made this the fixed line +3901234567: an SMS
            // to nobody, or to somebody else.
            ("390 1234567", "+393901234567"),
            ("+39 393 1234567", "+393931234567"),
        ] {
            let n = PhoneNumber::parse(raw, it()).unwrap();
            assert_eq!(n.as_str(), e164, "{raw}");
            assert_eq!(n.kind(), PhoneKind::Mobile, "{raw}");
        }
    }

    #[test]
    fn international_prefix_wins_over_default_region() {
        let fr = PhoneRegion::parse("FR").unwrap();
        let n = PhoneNumber::parse("+39 333 000 0003", fr).unwrap();
        assert_eq!(n.as_str(), "+393330000003");
        let n = PhoneNumber::parse("0039 333 000 0002", it()).unwrap();
        assert_eq!(n.as_str(), "+393330000002");
    }

    #[test]
    fn landlines_keep_the_leading_zero_and_are_typed() {
        for raw in [
            "0571 123456",
            "0571/123456",
            "(055) 1234567",
            "+39 055 1234567",
        ] {
            let n = PhoneNumber::parse(raw, it()).unwrap();
            assert!(n.as_str().starts_with("+390"), "{raw}: {n}");
            assert_eq!(n.kind(), PhoneKind::Landline, "{raw}");
            assert!(!n.is_mobile());
        }
        assert_eq!(
            PhoneNumber::parse("800 123456", it()).unwrap().kind(),
            PhoneKind::Other
        );
    }

    #[test]
    fn malformed_numbers_are_rejected() {
        assert!(PhoneNumber::parse("333", it()).is_err());
        assert!(PhoneNumber::parse("not a number", it()).is_err());
        assert!(PhoneNumber::parse("", it()).is_err());
        assert!(PhoneNumber::parse("+39 333 000 0001 99999", it()).is_err());
    }

    #[test]
    fn unknown_regions_are_refused() {
        assert!(PhoneRegion::parse("XX").is_err());
        assert!(PhoneRegion::parse("Italia").is_err());
        assert!(PhoneRegion::parse("it").is_ok());
    }
}
