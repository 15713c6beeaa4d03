//! Typed identifiers, so an order ID can never be passed where an account ID is meant.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde::Serialize;

use crate::Error;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                match s.parse::<i64>() {
                    Ok(id) if id > 0 => Ok(Self(id)),
                    _ => Err(Error::malformed(format!(
                        "{s:?} is not a valid {}",
                        stringify!($name)
                    ))),
                }
            }
        }
    };
}

id_type!(
    /// An ACME account, chosen at random by the SA.
    AccountId
);
id_type!(
    /// An ACME order, chosen at random by the SA.
    OrderId
);
id_type!(
    /// An ACME authorization, chosen at random by the SA.
    AuthzId
);

/// A certificate serial number: its big-endian bytes, shown as lowercase hex.
///
/// Serials are positive, so the first byte never has its high bit set.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Serial(Vec<u8>);

impl Serial {
    /// The serial made of these big-endian bytes (leading zero bytes are dropped).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        let bytes = &bytes[first..];
        if bytes.is_empty() || bytes.len() > 20 {
            return Err(Error::malformed("a serial number has 1 to 20 octets"));
        }
        Ok(Self(bytes.to_vec()))
    }

    /// The big-endian bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for Serial {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::malformed(format!("{s:?} is not a hex serial number"));
        if s.is_empty()
            || !s.len().is_multiple_of(2)
            || s.len() > 40
            || !s.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(invalid());
        }
        let bytes = (0..s.len())
            .step_by(2)
            .map(|i| {
                s.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(invalid)?;
        Self::from_bytes(&bytes)
    }
}

impl TryFrom<String> for Serial {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl From<Serial> for String {
    fn from(serial: Serial) -> Self {
        serial.to_string()
    }
}

/// The SHA-256 of a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7): how the blocked-keys
/// list names a key, shown as 64 lowercase hex digits.
///
/// The hash is of the SubjectPublicKeyInfo exactly as a certificate or CSR carries it,
/// so every service that hashes a key must hash the same DER encoding (for a JWK, the
/// encoding a certificate of that key would carry).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpkiHash([u8; 32]);

impl SpkiHash {
    /// The hash whose 32 bytes these are.
    pub fn new(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    /// The hash from a byte string, which must hold exactly 32 bytes
    /// ([`crate::ErrorKind::Malformed`] otherwise).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        <[u8; 32]>::try_from(bytes).map(Self).map_err(|_| {
            Error::malformed(format!(
                "a SubjectPublicKeyInfo SHA-256 has 32 bytes, not {}",
                bytes.len()
            ))
        })
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for SpkiHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SpkiHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpkiHash({self})")
    }
}

impl FromStr for SpkiHash {
    type Err = Error;

    /// 64 hex digits, in either case.
    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::malformed(format!("{s:?} is not a SHA-256 in hex (64 hex digits)"));
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let mut digest = [0u8; 32];
        for (i, byte) in digest.iter_mut().enumerate() {
            *byte = s
                .get(2 * i..2 * i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(invalid)?;
        }
        Ok(Self(digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_round_trips_through_hex() {
        let serial = Serial::from_bytes(&[0, 0x7f, 0x01, 0xab]).unwrap();
        assert_eq!(serial.to_string(), "7f01ab");
        assert_eq!("7f01ab".parse::<Serial>().unwrap(), serial);
        assert_eq!("007F01AB".parse::<Serial>().unwrap(), serial);
    }

    #[test]
    fn serial_rejects_garbage() {
        for bad in ["", "abc", "zz", &"00".repeat(21), "+1"] {
            assert!(bad.parse::<Serial>().is_err(), "{bad:?} was accepted");
        }
        assert!(Serial::from_bytes(&[0, 0]).is_err());
    }

    #[test]
    fn ids_must_be_positive() {
        assert_eq!("42".parse::<OrderId>().unwrap(), OrderId(42));
        assert!("0".parse::<OrderId>().is_err());
        assert!("-4".parse::<AccountId>().is_err());
        assert!("x".parse::<AuthzId>().is_err());
    }

    #[test]
    fn spki_hashes_round_trip_through_hex() {
        let hash = SpkiHash::new([0xab; 32]);
        assert_eq!(hash.to_string(), "ab".repeat(32));
        assert_eq!("AB".repeat(32).parse::<SpkiHash>().unwrap(), hash);
        assert_eq!(SpkiHash::from_slice(&[0xab; 32]).unwrap(), hash);
        assert_eq!(hash.as_bytes(), &[0xab; 32]);
        assert_eq!(format!("{hash:?}"), format!("SpkiHash({hash})"));
    }

    #[test]
    fn spki_hashes_reject_garbage() {
        for bad in [
            "",
            "ab",
            &"ab".repeat(31),
            &"ab".repeat(33),
            &"zz".repeat(32),
        ] {
            let err = bad.parse::<SpkiHash>().unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::Malformed, "{bad:?}");
        }
        // 64 bytes, but not 64 hex digits.
        assert!(format!("{}é", "a".repeat(62)).parse::<SpkiHash>().is_err());
        let err = SpkiHash::from_slice(&[0; 31]).unwrap_err();
        assert_eq!(
            err.detail,
            "a SubjectPublicKeyInfo SHA-256 has 32 bytes, not 31"
        );
    }
}
