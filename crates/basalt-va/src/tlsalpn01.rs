//! tls-alpn-01 validation (RFC 8737, and RFC 8738 for IP identifiers).
