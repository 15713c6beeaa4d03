//! The registration authority: account, order and authorization lifecycle, finalize, revocation
