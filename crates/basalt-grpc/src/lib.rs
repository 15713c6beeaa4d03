//! gRPC over mutual TLS 1.3 for Basalt's services: allow-lists, error transport, health, typed clients
