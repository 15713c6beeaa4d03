//! The validation authority: ACME challenge validation
