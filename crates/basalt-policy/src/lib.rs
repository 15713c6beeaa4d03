//! Identifier and CSR policy: pure decisions with no I/O
