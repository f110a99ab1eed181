//! Console passwords: argon2id PHC strings (RustCrypto `argon2`, its
//! default parameters — the OWASP minimum, m=19 MiB, t=2, p=1).

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// Hashes a password with a fresh random salt.
pub fn hash(password: &str) -> Result<String, String> {
    let salt: [u8; 16] = rand::random();
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches the stored PHC string.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A config value must be an argon2id PHC string (not a password in clear,
/// not another algorithm).
pub fn check_hash(phc: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(phc).map_err(|e| {
        format!("not an argon2id hash ({e}): make one with `allerta console passwd NAME`")
    })?;
    if parsed.algorithm.as_str() != "argon2id" || parsed.hash.is_none() || parsed.salt.is_none() {
        return Err(format!(
            "`{}` is not an argon2id hash: make one with `allerta console passwd NAME`",
            parsed.algorithm.as_str()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash("una frase lunga").unwrap();
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        check_hash(&h).unwrap();
        assert!(verify("una frase lunga", &h));
        assert!(!verify("una frase lungA", &h));
        assert!(!verify("una frase lunga", "not a hash"));
    }
}
