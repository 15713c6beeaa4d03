//! The OCSP responder: revocation status over HTTP
