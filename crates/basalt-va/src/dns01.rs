//! dns-01 validation (RFC 8555 §8.4).
