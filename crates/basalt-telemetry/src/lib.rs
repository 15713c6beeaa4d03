//! Logging and audit events for Basalt's services
