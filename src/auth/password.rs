//! Password hashing with argon2id, always off the async threads.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest password we accept (OWASP ASVS 2.1.1 asks for at least 12).
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest password we accept; hashing megabytes would be a cheap DoS.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// argon2id cost settings. The default is OWASP's recommendation
/// (19 MiB, 2 passes, 1 lane); tests use a far cheaper one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl Default for HashCost {
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            passes: Params::DEFAULT_T_COST,
            lanes: Params::DEFAULT_P_COST,
        }
    }
}

impl HashCost {
    /// The cheapest settings argon2 allows; for tests only.
    pub const fn cheapest() -> Self {
        Self {
            memory_kib: 8,
            passes: 1,
            lanes: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_PASSWORD_LEN} characters long")]
    TooShort,
    #[error("the password must be at most {MAX_PASSWORD_LEN} characters long")]
    TooLong,
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Checks the length rules a new password must meet.
pub fn check_new_password(password: &str) -> Result<(), PasswordError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(PasswordError::TooShort);
    }
    if chars > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// Hashes and verifies passwords at a fixed cost.
#[derive(Debug, Clone)]
pub struct Passwords {
    cost: HashCost,
    /// A hash of a random password, verified against when the user is
    /// unknown so that "no such user" takes as long as "wrong password".
    dummy_hash: String,
}

impl Passwords {
    /// Blocking (it hashes once): call at start-up.
    pub fn new(cost: HashCost) -> Result<Self, PasswordError> {
        let mut passwords = Self {
            cost,
            dummy_hash: String::new(),
        };
        let filler = crate::secret::random_token();
        passwords.dummy_hash = passwords.hash_blocking(&filler)?;
        Ok(passwords)
    }

    fn argon2(&self) -> Result<Argon2<'static>, PasswordError> {
        let params = Params::new(
            self.cost.memory_kib,
            self.cost.passes,
            self.cost.lanes,
            None,
        )
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Hashes `password` into a PHC string. Blocking.
    pub fn hash_blocking(&self, password: &str) -> Result<String, PasswordError> {
        let hash = self
            .argon2()?
            .hash_password(password.as_bytes())
            .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        Ok(hash.to_string())
    }

    /// Hashes on a blocking thread.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let passwords = self.clone();
        tokio::task::spawn_blocking(move || passwords.hash_blocking(&password))
            .await
            .map_err(|e| PasswordError::Hashing(e.to_string()))?
    }

    /// Verifies `password` against `stored` (or against the dummy hash when
    /// there is no stored hash), on a blocking thread. Always does the same
    /// amount of work.
    pub async fn verify(&self, password: String, stored: Option<String>) -> bool {
        let passwords = self.clone();
        tokio::task::spawn_blocking(move || {
            let known = stored.is_some();
            let phc = stored.unwrap_or_else(|| passwords.dummy_hash.clone());
            let matches = passwords.verify_blocking(&password, &phc);
            known && matches
        })
        .await
        .unwrap_or(false)
    }

    fn verify_blocking(&self, password: &str, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        // The parameters come from the stored hash, so old hashes keep
        // verifying after the cost is raised.
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_per_call() {
        let passwords = Passwords::new(HashCost::cheapest()).expect("hasher");
        let a = passwords
            .hash_blocking("correct horse battery")
            .expect("hash");
        let b = passwords
            .hash_blocking("correct horse battery")
            .expect("hash");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(a.starts_with("$argon2id$"));
        assert!(passwords.verify_blocking("correct horse battery", &a));
        assert!(!passwords.verify_blocking("correct horse batterz", &a));
        assert!(!passwords.verify_blocking("correct horse battery", "not a hash"));
    }

    #[test]
    fn length_rules() {
        assert!(matches!(
            check_new_password("short"),
            Err(PasswordError::TooShort)
        ));
        assert!(check_new_password("twelve chars").is_ok());
        assert!(matches!(
            check_new_password(&"x".repeat(MAX_PASSWORD_LEN + 1)),
            Err(PasswordError::TooLong)
        ));
    }
}
