//! Basalt's gRPC contracts: code generated from `proto/` and the conversions
//! between its messages and basalt-core's domain types.
//!
//! The generated code is checked in under `src/gen/` (regenerated and compared by
//! `tests/codegen.rs`), so ordinary builds need neither `protoc` nor a build script.
//! Generated types travel no further than basalt-grpc and each service's gRPC
//! adapter: everything else speaks basalt-core.
#![warn(missing_docs)]

mod convert;

pub use convert::{
    from_timestamp, opt_from_timestamp, opt_reason, opt_serial, opt_timestamp, parse_field, reason,
    required, required_time, serial, timestamp, to_vec, try_vec,
};

#[allow(
    missing_docs,
    unreachable_pub,
    unused_qualifications,
    clippy::all,
    clippy::pedantic,
    clippy::use_self
)]
mod generated {
    pub mod basalt {
        pub mod types {
            include!("gen/basalt.types.rs");
        }
        pub mod sa {
            include!("gen/basalt.sa.rs");
        }
        pub mod ra {
            include!("gen/basalt.ra.rs");
        }
        pub mod va {
            include!("gen/basalt.va.rs");
        }
        pub mod ca {
            include!("gen/basalt.ca.rs");
        }
        pub mod nonce {
            include!("gen/basalt.nonce.rs");
        }
    }
}

pub use generated::basalt::ca;
pub use generated::basalt::nonce;
pub use generated::basalt::ra;
pub use generated::basalt::sa;
pub use generated::basalt::types;
pub use generated::basalt::va;
