//! The storage authority: the only process with a database connection
