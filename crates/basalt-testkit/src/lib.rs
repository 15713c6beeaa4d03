//! Test support for Basalt: a test PKI and helpers
