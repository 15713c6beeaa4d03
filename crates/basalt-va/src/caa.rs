//! CAA checking (RFC 8659, with the RFC 8657 parameters).
