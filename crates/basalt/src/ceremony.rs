//! `basalt ceremony root|intermediate|cross-sign|crl-signer|ocsp-signer --config FILE`: one key
//! ceremony (see [`basalt_ca::ceremony`]), run offline by an operator or by
//! `basalt dev` to make its issuing hierarchy.

use std::path::PathBuf;

use anyhow::Context;
use basalt_ca::ceremony::Ceremony;
use basalt_ca::ceremony::CeremonyKind;

/// Flags of `basalt ceremony`.
#[derive(Debug, clap::Args)]
pub(crate) struct CeremonyArgs {
    /// Which ceremony.
    #[arg(value_enum)]
    kind: Kind,
    /// The ceremony's TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

/// The ceremonies, as the command line names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    /// A new key and a self-signed root CA certificate.
    Root,
    /// A subordinate CA for TLS issuance, signed by a parent CA.
    Intermediate,
    /// An existing CA certificate issued again by another parent.
    CrossSign,
    /// A certificate for a key that signs CRLs on a CA's behalf.
    CrlSigner,
    /// A delegated OCSP responder certificate for a key that signs OCSP responses
    /// on an issuing CA's behalf (RFC 6960 §4.2.2.2).
    OcspSigner,
}

impl From<Kind> for CeremonyKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::CrlSigner => Self::CrlSigner,
            Kind::CrossSign => Self::CrossSign,
            Kind::Intermediate => Self::Intermediate,
            Kind::OcspSigner => Self::OcspSigner,
            Kind::Root => Self::Root,
        }
    }
}

/// Runs the ceremony and prints its summary.
pub(crate) fn run(args: CeremonyArgs) -> anyhow::Result<()> {
    let kind = CeremonyKind::from(args.kind);
    let ceremony = Ceremony::load(kind, &args.config)?;
    let summary = ceremony
        .run()
        .with_context(|| format!("the {kind} ceremony of {}", args.config.display()))?;
    println!("{summary}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        ceremony: CeremonyArgs,
    }

    #[test]
    fn every_ceremony_is_named_as_the_library_names_it() {
        for kind in CeremonyKind::ALL {
            let cli = Cli::try_parse_from(["ceremony", kind.name(), "--config", "c.toml"])
                .unwrap_or_else(|err| panic!("{kind}: {err}"));
            assert_eq!(CeremonyKind::from(cli.ceremony.kind), kind);
            assert_eq!(cli.ceremony.config, PathBuf::from("c.toml"));
        }
        let err = Cli::try_parse_from(["ceremony", "subordinate", "--config", "c.toml"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cross-sign"), "{err}");
        assert!(Cli::try_parse_from(["ceremony", "root"]).is_err());
    }
}
