//! The ACME objects a client reads and writes (RFC 8555 §7.1), as serde types.
//! Members this client does not use are ignored, so servers may add their own.

use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;
use serde::Serialize;

use crate::error::Error;
use crate::error::Problem;

/// The directory (RFC 8555 §7.1.1): the URLs of the server's resources.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// Where to get a fresh nonce.
    pub new_nonce: String,
    /// Where to create an account.
    pub new_account: String,
    /// Where to create an order.
    pub new_order: String,
    /// Where to revoke a certificate.
    pub revoke_cert: String,
    /// Where to change an account's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_change: Option<String>,
    /// Where to pre-authorize an identifier, if the server allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_authz: Option<String>,
    /// Where to ask for renewal information (RFC 9773), if the server offers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_info: Option<String>,
    /// The directory's `meta` object, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
}

/// An identifier an order asks a certificate for (RFC 8555 §7.1.3, RFC 8738).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    /// `dns` or `ip`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The DNS name or the textual IP address.
    pub value: String,
}

impl Identifier {
    /// A DNS name.
    pub fn dns(name: impl Into<String>) -> Self {
        Self {
            kind: "dns".to_owned(),
            value: name.into(),
        }
    }

    /// An IP address (RFC 8738).
    pub fn ip(address: IpAddr) -> Self {
        Self {
            kind: "ip".to_owned(),
            value: address.to_string(),
        }
    }
}

/// Implements `Display` for a status enum from its serde names.
macro_rules! status_display {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The name RFC 8555 gives this status.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// The state of an order (RFC 8555 §7.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Some authorization is not valid yet.
    Pending,
    /// Every authorization is valid: the order may be finalized.
    Ready,
    /// The certificate is being issued.
    Processing,
    /// The certificate was issued.
    Valid,
    /// The order failed or expired.
    Invalid,
}

status_display!(OrderStatus {
    Pending => "pending",
    Ready => "ready",
    Processing => "processing",
    Valid => "valid",
    Invalid => "invalid",
});

/// The state of an authorization (RFC 8555 §7.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizationStatus {
    /// No challenge has succeeded yet.
    Pending,
    /// A challenge succeeded.
    Valid,
    /// A challenge failed.
    Invalid,
    /// The client deactivated it.
    Deactivated,
    /// It expired.
    Expired,
    /// The server revoked it.
    Revoked,
}

status_display!(AuthorizationStatus {
    Pending => "pending",
    Valid => "valid",
    Invalid => "invalid",
    Deactivated => "deactivated",
    Expired => "expired",
    Revoked => "revoked",
});

/// The state of a challenge (RFC 8555 §7.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChallengeStatus {
    /// Not yet asked for.
    Pending,
    /// The server is validating it.
    Processing,
    /// Validation succeeded.
    Valid,
    /// Validation failed.
    Invalid,
}

status_display!(ChallengeStatus {
    Pending => "pending",
    Processing => "processing",
    Valid => "valid",
    Invalid => "invalid",
});

/// An order (RFC 8555 §7.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// The order's URL (its `Location`); not part of the object, filled in by
    /// the client.
    #[serde(skip)]
    pub url: String,
    /// Its state.
    pub status: OrderStatus,
    /// When it expires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// What the certificate is for.
    pub identifiers: Vec<Identifier>,
    /// One authorization URL per identifier the client must prove control of.
    pub authorizations: Vec<String>,
    /// Where to send the CSR.
    pub finalize: String,
    /// Where to download the certificate, once the order is `valid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// Why the order is `invalid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// An authorization (RFC 8555 §7.1.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    /// The authorization's URL; filled in by the client.
    #[serde(skip)]
    pub url: String,
    /// The identifier it is for.
    pub identifier: Identifier,
    /// Its state.
    pub status: AuthorizationStatus,
    /// When it expires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// The ways the client may prove control.
    pub challenges: Vec<Challenge>,
    /// Whether it is for a wildcard name (`identifier` then holds the base name).
    #[serde(default)]
    pub wildcard: bool,
}

impl Authorization {
    /// The challenge of type `kind` (e.g. `http-01`), if offered.
    pub fn challenge(&self, kind: &str) -> Option<&Challenge> {
        self.challenges
            .iter()
            .find(|challenge| challenge.kind == kind)
    }

    /// The error of the first failed challenge, which tells why an `invalid`
    /// authorization failed.
    pub fn failure(&self) -> Option<&Problem> {
        self.challenges
            .iter()
            .find_map(|challenge| challenge.error.as_ref())
    }

    /// [`Error::Failed`] for this authorization (at `url`), which reached a
    /// state other than the `pending` or `valid` a flow can go on from.
    pub fn failed(&self, url: &str) -> Error {
        Error::Failed {
            object: "authorization",
            url: url.to_owned(),
            status: self.status.to_string(),
            problem: self.failure().cloned().map(Box::new),
        }
    }
}

impl Order {
    /// [`Error::Failed`] for this order (at `url`), which became `invalid`.
    pub fn failed(self, url: &str) -> Error {
        Error::Failed {
            object: "order",
            url: url.to_owned(),
            status: self.status.to_string(),
            problem: self.error.map(Box::new),
        }
    }
}

/// A challenge (RFC 8555 §7.1.5, §8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Its type, e.g. `http-01`, `dns-01`, `tls-alpn-01`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where to tell the server it may validate.
    pub url: String,
    /// Its state.
    pub status: ChallengeStatus,
    /// The token of the http-01, dns-01 and tls-alpn-01 challenges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// When it was validated (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated: Option<String>,
    /// Why validation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_8555_examples_parse() {
        // RFC 8555 §7.1.1, §7.1.3 and §7.1.4, with members this client ignores.
        let directory: Directory = serde_json::from_str(
            r#"{
                "newNonce": "https://example.com/acme/new-nonce",
                "newAccount": "https://example.com/acme/new-account",
                "newOrder": "https://example.com/acme/new-order",
                "newAuthz": "https://example.com/acme/new-authz",
                "revokeCert": "https://example.com/acme/revoke-cert",
                "keyChange": "https://example.com/acme/key-change",
                "meta": { "termsOfService": "https://example.com/acme/terms/2017-5-30" }
            }"#,
        )
        .unwrap();
        assert_eq!(directory.new_order, "https://example.com/acme/new-order");
        assert_eq!(directory.renewal_info, None);

        let order: Order = serde_json::from_str(
            r#"{
                "status": "valid",
                "expires": "2016-01-20T14:09:07.99Z",
                "identifiers": [
                    { "type": "dns", "value": "www.example.org" },
                    { "type": "dns", "value": "example.org" }
                ],
                "notBefore": "2016-01-01T00:00:00Z",
                "authorizations": [
                    "https://example.com/acme/authz/PAniVnsZcis",
                    "https://example.com/acme/authz/r4HqLzrSrpI"
                ],
                "finalize": "https://example.com/acme/order/TOlocE8rfgo/finalize",
                "certificate": "https://example.com/acme/cert/mAt3xBGaobw"
            }"#,
        )
        .unwrap();
        assert_eq!(order.status, OrderStatus::Valid);
        assert_eq!(order.authorizations.len(), 2);
        assert_eq!(order.url, "");

        let authz: Authorization = serde_json::from_str(
            r#"{
                "status": "invalid",
                "expires": "2015-03-01T14:09:07.99Z",
                "identifier": { "type": "dns", "value": "www.example.org" },
                "challenges": [
                    {
                        "url": "https://example.com/acme/chall/prV_B7yEyA4",
                        "type": "http-01",
                        "status": "invalid",
                        "token": "DGyRejmCefe7v4NfDGDKfA",
                        "error": { "type": "urn:ietf:params:acme:error:connection" }
                    },
                    {
                        "url": "https://example.com/acme/chall/Rg5dV14Gh1Q",
                        "type": "dns-01",
                        "status": "pending",
                        "token": "DGyRejmCefe7v4NfDGDKfA"
                    }
                ]
            }"#,
        )
        .unwrap();
        assert_eq!(authz.status, AuthorizationStatus::Invalid);
        assert!(!authz.wildcard);
        assert_eq!(
            authz.challenge("dns-01").unwrap().url,
            "https://example.com/acme/chall/Rg5dV14Gh1Q"
        );
        assert_eq!(authz.challenge("tls-alpn-01"), None);
        assert_eq!(
            authz.failure().unwrap().kind,
            "urn:ietf:params:acme:error:connection"
        );
    }

    #[test]
    fn an_unknown_status_is_refused() {
        let err = serde_json::from_str::<OrderStatus>(r#""done""#).unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
        assert_eq!(OrderStatus::Processing.to_string(), "processing");
        assert_eq!(AuthorizationStatus::Deactivated.as_str(), "deactivated");
    }

    #[test]
    fn identifiers_serialize_as_rfc_8555_objects() {
        assert_eq!(
            serde_json::to_value(Identifier::ip("192.0.2.1".parse().unwrap())).unwrap(),
            serde_json::json!({ "type": "ip", "value": "192.0.2.1" })
        );
    }
}
