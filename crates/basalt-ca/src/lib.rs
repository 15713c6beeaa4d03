//! The certificate authority: the only holder of issuer keys
