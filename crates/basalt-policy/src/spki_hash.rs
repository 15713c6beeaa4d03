//! How the blocked-keys list names a key: the SHA-256 of its DER SubjectPublicKeyInfo,
//! whether the key comes from a CSR or from an account's JWK.
//!
//! A JWK is first turned into the SubjectPublicKeyInfo a certificate for that key would
//! carry ([`crate::jwk_spki`]), so that a key blocked from a certificate is also
//! refused as an account key, and the reverse.

use basalt_core::SpkiHash;
use ring::digest;

/// The name of a key on the blocked-keys list.
pub fn spki_sha256(spki_der: &[u8]) -> SpkiHash {
    let hash = digest::digest(&digest::SHA256, spki_der);
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(hash.as_ref());
    SpkiHash::new(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_sha256_of_the_der() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            spki_sha256(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
