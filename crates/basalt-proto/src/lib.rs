//! Generated gRPC code for Basalt's services and its conversions to domain types
