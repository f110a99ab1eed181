//! Twilio's request signature (`X-Twilio-Signature`): base64 of the
//! HMAC-SHA1, keyed with the account's auth token, of the full URL Twilio
//! requested followed by every POST parameter, sorted by name, each name
//! immediately followed by its value. A GET signs the URL alone.

use base64::Engine;
use ring::hmac;

/// What is signed: the URL, then each parameter's name and value, sorted.
fn signed_data(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = String::from(url);
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    data
}

fn key(auth_token: &str) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes())
}

/// The signature Twilio sends for a request to `url` with `params`.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let tag = hmac::sign(&key(auth_token), signed_data(url, params).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// True when `given` is the signature of this request (ring compares in
/// constant time). An empty token never verifies.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], given: &str) -> bool {
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(given.trim()) else {
        return false;
    };
    !auth_token.is_empty()
        && hmac::verify(&key(auth_token), signed_data(url, params).as_bytes(), &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of Twilio's security documentation (auth token
    /// `12345`, its URL and POST parameters, signature
    /// `0/KCTR6DLpKmkAf8muzZqo1nDgQ=`).
    #[test]
    fn matches_twilios_documented_example() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(sign("12345", url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(verify(
            "12345",
            url,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!verify(
            "12346",
            url,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
    }
}
