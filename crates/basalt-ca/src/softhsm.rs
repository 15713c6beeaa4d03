//! SoftHSM2, the software token `basalt dev` and the tests keep CA keys in.
//!
//! SoftHSM reads its configuration file from the `SOFTHSM2_CONF` environment
//! variable when the module is initialised, so a process that opens keys in a token
//! made here must be started with `SOFTHSM2_CONF` set to the path [`write_config`]
//! returns. Nothing here changes the current process's environment.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::process::Stdio;

use basalt_core::Error;

/// The environment variable that overrides where the SoftHSM2 module is.
pub const MODULE_ENV: &str = "BASALT_SOFTHSM_MODULE";

/// The environment variable SoftHSM2 reads its configuration file's path from.
pub const CONF_ENV: &str = "SOFTHSM2_CONF";

/// Where distributions install the SoftHSM2 PKCS#11 module, most likely first.
const MODULE_CANDIDATES: [&str; 4] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// The SoftHSM2 PKCS#11 module: the path in `BASALT_SOFTHSM_MODULE` when that is
/// set (whether or not the file exists, so that a wrong path is reported when the
/// module is loaded), else the first of the usual install locations that exists.
/// `None` when SoftHSM2 is not installed (`apt-get install softhsm2`).
pub fn module_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(MODULE_ENV).filter(|path| !path.is_empty()) {
        return Some(PathBuf::from(path));
    }
    MODULE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

/// Writes a SoftHSM2 configuration whose tokens live under `dir`: creates
/// `dir/tokens` (mode 0700) and `dir/softhsm2.conf` (replacing an earlier one), and
/// returns the absolute path of the configuration file. Processes that use these
/// tokens need `SOFTHSM2_CONF=<that path>` in their environment.
pub fn write_config(dir: &Path) -> Result<PathBuf, Error> {
    let tokens = dir.join("tokens");
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(&tokens).map_err(|err| {
        Error::internal(format!(
            "cannot create the SoftHSM2 token directory {}: {err}",
            tokens.display()
        ))
    })?;
    #[cfg(unix)]
    {
        // The directory may have existed with a wider mode; tokens hold keys.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&tokens, fs::Permissions::from_mode(0o700)).map_err(|err| {
            Error::internal(format!("cannot restrict {}: {err}", tokens.display()))
        })?;
    }
    let tokens = fs::canonicalize(&tokens)
        .map_err(|err| Error::internal(format!("cannot resolve {}: {err}", tokens.display())))?;
    let tokendir = tokens
        .to_str()
        .filter(|path| !path.contains(['\n', '\r']))
        .ok_or_else(|| {
            Error::internal(format!(
                "the SoftHSM2 token directory {} cannot be written in a configuration file: \
                 use a path of UTF-8 text on one line",
                tokens.display()
            ))
        })?;
    let conf = dir.join("softhsm2.conf");
    let contents = format!(
        "# SoftHSM2 configuration for basalt; use it with {CONF_ENV}={}\n\
         directories.tokendir = {tokendir}\n\
         objectstore.backend = file\n\
         log.level = ERROR\n",
        conf.display()
    );
    fs::write(&conf, contents)
        .map_err(|err| Error::internal(format!("cannot write {}: {err}", conf.display())))?;
    fs::canonicalize(&conf)
        .map_err(|err| Error::internal(format!("cannot resolve {}: {err}", conf.display())))
}

/// Initialises a token labelled `label` in the first free slot of the SoftHSM2
/// configuration `conf`, with the security officer PIN `so_pin` and the user PIN
/// `user_pin`, by running `softhsm2-util`. The PINs pass on its command line, where
/// other local users can see them: this is for labs and tests, not for keys that
/// matter.
pub fn init_token(conf: &Path, label: &str, so_pin: &str, user_pin: &str) -> Result<(), Error> {
    let output = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", label])
        .args(["--so-pin", so_pin, "--pin", user_pin])
        .env(CONF_ENV, conf)
        // Without a PIN it would prompt for one; with no input it fails instead.
        .stdin(Stdio::null())
        .output()
        .map_err(|err| {
            if err.kind() == ErrorKind::NotFound {
                Error::internal(
                    "softhsm2-util is not installed: install Debian's softhsm2 package \
                     (apt-get install softhsm2)",
                )
            } else {
                Error::internal(format!("cannot run softhsm2-util: {err}"))
            }
        })?;
    if output.status.success() {
        return Ok(());
    }
    let mut message = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if message.is_empty() {
        message = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    }
    Err(Error::internal(format!(
        "softhsm2-util could not initialise the token {label:?} ({}): {message}",
        output.status
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_its_token_directory() {
        let dir = std::env::temp_dir().join(format!(
            "basalt-softhsm-conf-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let conf = write_config(&dir).unwrap();
        assert!(conf.is_absolute(), "{}", conf.display());
        let text = fs::read_to_string(&conf).unwrap();
        let tokens = fs::canonicalize(dir.join("tokens")).unwrap();
        assert!(
            text.contains(&format!("directories.tokendir = {}\n", tokens.display())),
            "{text}"
        );
        assert!(text.contains("objectstore.backend = file\n"), "{text}");
        assert!(text.contains("log.level = ERROR\n"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&tokens).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        // Writing it again (a second `basalt dev` run) is fine.
        assert_eq!(write_config(&dir).unwrap(), conf);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn init_token_reports_softhsm_errors() {
        let dir = std::env::temp_dir().join(format!(
            "basalt-softhsm-init-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let conf = write_config(&dir).unwrap();
        // SoftHSM2 refuses PINs shorter than four characters.
        let err = init_token(&conf, "short-pin", "1", "2").unwrap_err();
        assert!(
            err.detail
                .contains("softhsm2-util could not initialise the token \"short-pin\""),
            "{err}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
