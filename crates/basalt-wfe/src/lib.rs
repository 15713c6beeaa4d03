//! The ACME web front end (RFC 8555) over HTTPS
