//! CA keys in a PKCS#11 token, through the `cryptoki` crate.
//!
//! A module is loaded and initialised once per process and shared by every key in
//! it (PKCS#11 allows one `C_Initialize` per module and process). Each key holds its
//! own logged-in session, behind a mutex because a session must not be used by two
//! threads at once.
//!
//! ECDSA keys sign a digest computed here with `CKM_ECDSA`, which every token has,
//! rather than the hash-and-sign mechanisms, which some lack; the token's raw `r||s`
//! is re-encoded as the DER ECDSA-Sig-Value X.509 wants. RSA keys sign with
//! `CKM_SHA256_RSA_PKCS`.
//!
//! A session can die under a running CA: the token is removed or reset, the HSM
//! restarts, another session logs the application out. When signing fails that way,
//! the key opens a new session, logs in again, finds its key by label, checks that
//! it is still the same key pair, and signs once more; if that fails too, the error
//! says so, and the next signature tries again from scratch.

use std::fs;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Mutex;

use basalt_core::Error;
use cryptoki::context::CInitializeArgs;
use cryptoki::context::CInitializeFlags;
use cryptoki::context::Pkcs11;
use cryptoki::error::Error as CryptokiError;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::object::AttributeType;
use cryptoki::object::KeyType;
use cryptoki::object::ObjectClass;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use cryptoki::types::Ulong;
use der::Decode;
use der::asn1::OctetStringRef;
use rcgen::SignatureAlgorithm;
use ring::digest;

use crate::key::KeyAlgorithm;
use crate::key::Pkcs11Config;

/// `CKA_EC_PARAMS` of a NIST P-256 key: the DER namedCurve OID 1.2.840.10045.3.1.7.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// `CKA_EC_PARAMS` of a NIST P-384 key: the DER namedCurve OID 1.3.132.0.34.
const P384_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// The smallest RSA modulus, in bits, a CA key in a token may have.
const MIN_RSA_BITS: usize = 2048;

/// The public exponent of the RSA keys made here, 65537, big-endian.
const RSA_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];

/// The modules loaded so far, each initialised, by the path they were loaded from.
static CONTEXTS: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());

// `CaKey` is shared across tokio tasks.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Pkcs11Key>();
};

/// A private key object in a PKCS#11 token and its public key.
pub(crate) struct Pkcs11Key {
    config: Pkcs11Config,
    pin: AuthPin,
    /// Keeps the module loaded and initialised as long as the key lives.
    context: Pkcs11,
    kind: KeyKind,
    public_key_bits: Vec<u8>,
    alg: &'static SignatureAlgorithm,
    /// The logged-in session and the private key's handle in it; `None` after the
    /// session was lost and could not be opened again.
    live: Mutex<Option<Live>>,
}

/// A session logged in as the user, and the private key's handle in it.
struct Live {
    session: Session,
    private_key: ObjectHandle,
}

/// The key types a token key may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    EcdsaP256,
    EcdsaP384,
    Rsa,
}

impl KeyKind {
    fn signature_algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            Self::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Self::Rsa => &rcgen::PKCS_RSA_SHA256,
        }
    }

    /// The length of one coordinate of a point on the curve, and of `r` and `s`.
    fn field_len(self) -> Option<usize> {
        match self {
            Self::EcdsaP256 => Some(32),
            Self::EcdsaP384 => Some(48),
            Self::Rsa => None,
        }
    }

    fn of(alg: KeyAlgorithm) -> Self {
        match alg {
            KeyAlgorithm::EcdsaP256 => Self::EcdsaP256,
            KeyAlgorithm::EcdsaP384 => Self::EcdsaP384,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => Self::Rsa,
        }
    }
}

/// A public key read from the token.
struct PublicKey {
    kind: KeyKind,
    /// The content of the subjectPublicKey BIT STRING.
    bits: Vec<u8>,
}

impl Pkcs11Key {
    /// Opens the token labelled `config.token_label`, logs in as the user with the
    /// PIN in `config.pin_file`, and finds the key pair labelled `config.key_label`.
    pub(crate) fn open(config: &Pkcs11Config) -> Result<Self, Error> {
        let pin = AuthPin::from(read_pin(&config.pin_file)?);
        let context = context(&config.module)?;
        let session = connect(&context, config, &pin, false)?;
        let (private_key, public) = locate(&session, config)?;
        tracing::info!(
            token = %config.token_label,
            key = %config.key_label,
            algorithm = ?public.kind,
            "opened a PKCS#11 key"
        );
        Ok(Self {
            config: config.clone(),
            pin,
            context,
            kind: public.kind,
            public_key_bits: public.bits,
            alg: public.kind.signature_algorithm(),
            live: Mutex::new(Some(Live {
                session,
                private_key,
            })),
        })
    }

    /// Generates a key pair of type `alg` labelled `config.key_label` in the token;
    /// refuses if an object with that label exists.
    pub(crate) fn generate(config: &Pkcs11Config, alg: KeyAlgorithm) -> Result<Self, Error> {
        let pin = AuthPin::from(read_pin(&config.pin_file)?);
        let context = context(&config.module)?;
        {
            let session = connect(&context, config, &pin, true)?;
            let label = Attribute::Label(config.key_label.as_bytes().to_vec());
            let existing = session
                .find_objects(std::slice::from_ref(&label))
                .map_err(|err| failure(config, "cannot search", &err))?;
            if !existing.is_empty() {
                return Err(Error::internal(format!(
                    "PKCS#11 token {:?} already holds {} object(s) labelled {:?}: \
                     a key is never replaced; pick another key_label",
                    config.token_label,
                    existing.len(),
                    config.key_label
                )));
            }
            let id = Attribute::Id(rand::random::<[u8; 16]>().to_vec());
            let mut public_template = vec![
                Attribute::Token(true),
                Attribute::Verify(true),
                Attribute::Encrypt(false),
                Attribute::Wrap(false),
                label.clone(),
                id.clone(),
            ];
            let private_template = [
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Decrypt(false),
                Attribute::Unwrap(false),
                Attribute::Derive(false),
                label,
                id,
            ];
            let mechanism = match alg {
                KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => {
                    let params = if alg == KeyAlgorithm::EcdsaP256 {
                        P256_PARAMS
                    } else {
                        P384_PARAMS
                    };
                    public_template.push(Attribute::EcParams(params.to_vec()));
                    Mechanism::EccKeyPairGen
                }
                KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                    let bits = alg.rsa_bits().unwrap_or(MIN_RSA_BITS);
                    let bits = Ulong::try_from(bits)
                        .map_err(|err| failure(config, "cannot size the key", &err))?;
                    public_template.push(Attribute::ModulusBits(bits));
                    public_template.push(Attribute::PublicExponent(RSA_EXPONENT.to_vec()));
                    Mechanism::RsaPkcsKeyPairGen
                }
            };
            session
                .generate_key_pair(&mechanism, &public_template, &private_template)
                .map_err(|err| failure(config, &format!("cannot generate an {alg} key"), &err))?;
            tracing::info!(
                token = %config.token_label,
                key = %config.key_label,
                algorithm = %alg,
                "generated a PKCS#11 key"
            );
        }
        let key = Self::open(config)?;
        if key.kind != KeyKind::of(alg) {
            return Err(Error::internal(format!(
                "PKCS#11 token {:?} made a {:?} key labelled {:?} when asked for {alg}",
                config.token_label, key.kind, config.key_label
            )));
        }
        Ok(key)
    }

    /// The public key as rcgen's `PublicKeyData::der_bytes` gives it: the content of
    /// the subjectPublicKey BIT STRING (an uncompressed EC point, or a PKCS#1
    /// RSAPublicKey).
    pub(crate) fn public_key_bits(&self) -> &[u8] {
        &self.public_key_bits
    }

    /// The signature algorithm of what this key signs.
    pub(crate) fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }

    /// Signs `msg` as X.509 wants it: a DER ECDSA-Sig-Value, or a PKCS#1 v1.5
    /// signature.
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        let (mechanism, data) = match self.kind {
            KeyKind::EcdsaP256 => (Mechanism::Ecdsa, digest::digest(&digest::SHA256, msg)),
            KeyKind::EcdsaP384 => (Mechanism::Ecdsa, digest::digest(&digest::SHA384, msg)),
            KeyKind::Rsa => return self.sign_raw(&Mechanism::Sha256RsaPkcs, msg),
        };
        let raw = self.sign_raw(&mechanism, data.as_ref())?;
        if Some(raw.len()) != self.kind.field_len().map(|len| 2 * len) {
            return Err(Error::internal(format!(
                "PKCS#11 key {:?} in token {:?} returned a {}-byte ECDSA signature for {:?}",
                self.config.key_label,
                self.config.token_label,
                raw.len(),
                self.kind
            )));
        }
        ecdsa_signature_der(&raw)
    }

    /// Runs `C_Sign`, opening the session again once if it was lost.
    fn sign_raw(&self, mechanism: &Mechanism<'_>, data: &[u8]) -> Result<Vec<u8>, Error> {
        let mut live = self.live.lock().map_err(|_| {
            Error::internal(format!(
                "the session lock of PKCS#11 key {:?} in token {:?} is poisoned",
                self.config.key_label, self.config.token_label
            ))
        })?;
        let mut reopened = false;
        loop {
            let current = match live.take() {
                Some(current) => current,
                None => {
                    reopened = true;
                    self.reopen()?
                }
            };
            match current.session.sign(mechanism, current.private_key, data) {
                Ok(signature) => {
                    *live = Some(current);
                    return Ok(signature);
                }
                Err(err) if session_lost(&err) => {
                    // Close the dead session before opening another, so that a
                    // recycled handle is never closed by mistake.
                    drop(current);
                    if reopened {
                        return Err(failure(
                            &self.config,
                            "cannot sign, even in a newly opened session",
                            &err,
                        ));
                    }
                    tracing::warn!(
                        token = %self.config.token_label,
                        key = %self.config.key_label,
                        error = %describe(&err),
                        "PKCS#11 session lost; opening a new one"
                    );
                }
                Err(err) => {
                    *live = Some(current);
                    return Err(failure(&self.config, "cannot sign", &err));
                }
            }
        }
    }

    /// A new logged-in session, with the key found again by label and checked to be
    /// the key pair opened first.
    fn reopen(&self) -> Result<Live, Error> {
        let session = connect(&self.context, &self.config, &self.pin, false)?;
        let (private_key, public) = locate(&session, &self.config)?;
        if public.kind != self.kind || public.bits != self.public_key_bits {
            return Err(Error::internal(format!(
                "the key labelled {:?} in PKCS#11 token {:?} is no longer the key pair opened \
                 at start: refusing to sign with it",
                self.config.key_label, self.config.token_label
            )));
        }
        tracing::info!(
            token = %self.config.token_label,
            key = %self.config.key_label,
            "PKCS#11 session opened again"
        );
        Ok(Live {
            session,
            private_key,
        })
    }
}

/// The PIN in `path`, without surrounding whitespace.
fn read_pin(path: &Path) -> Result<String, Error> {
    let text = fs::read_to_string(path).map_err(|err| {
        Error::internal(format!(
            "cannot read the PKCS#11 PIN file {}: {err}",
            path.display()
        ))
    })?;
    let pin = text.trim();
    if pin.is_empty() {
        return Err(Error::internal(format!(
            "the PKCS#11 PIN file {} is empty",
            path.display()
        )));
    }
    Ok(pin.to_owned())
}

/// The module at `path`, loaded and initialised once per process.
fn context(path: &Path) -> Result<Pkcs11, Error> {
    let mut contexts = CONTEXTS
        .lock()
        .map_err(|_| Error::internal("the PKCS#11 module table lock is poisoned"))?;
    if let Some((_, context)) = contexts.iter().find(|(loaded, _)| loaded == path) {
        return Ok(context.clone());
    }
    let context = Pkcs11::new(path).map_err(|err| {
        Error::internal(format!(
            "cannot load the PKCS#11 module {}: {}",
            path.display(),
            describe(&err)
        ))
    })?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // The same library loaded through another path is already initialised.
        Ok(()) | Err(CryptokiError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(err) => {
            return Err(Error::internal(format!(
                "cannot initialise the PKCS#11 module {}: {}",
                path.display(),
                describe(&err)
            )));
        }
    }
    contexts.push((path.to_path_buf(), context.clone()));
    Ok(context)
}

/// A session with the token `config.token_label`, logged in as the user.
fn connect(
    context: &Pkcs11,
    config: &Pkcs11Config,
    pin: &AuthPin,
    read_write: bool,
) -> Result<Session, Error> {
    let slot = find_slot(context, config)?;
    let session = if read_write {
        context.open_rw_session(slot)
    } else {
        context.open_ro_session(slot)
    }
    .map_err(|err| failure(config, "cannot open a session", &err))?;
    match session.login(UserType::User, Some(pin)) {
        // PKCS#11 logins are per application and token: another key's session
        // already logged this one in.
        Ok(()) | Err(CryptokiError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(CryptokiError::Pkcs11(RvError::PinIncorrect, _)) => Err(Error::internal(format!(
            "the PIN in {} is not the user PIN of PKCS#11 token {:?}",
            config.pin_file.display(),
            config.token_label
        ))),
        Err(CryptokiError::Pkcs11(RvError::PinLocked, _)) => Err(Error::internal(format!(
            "the user PIN of PKCS#11 token {:?} is locked",
            config.token_label
        ))),
        Err(err) => Err(failure(config, "cannot log in", &err)),
    }
}

/// The slot holding the one token labelled `config.token_label`.
fn find_slot(context: &Pkcs11, config: &Pkcs11Config) -> Result<Slot, Error> {
    let wanted = config.token_label.trim_end_matches(' ');
    let module = config.module.display();
    let slots = context.get_slots_with_token().map_err(|err| {
        Error::internal(format!(
            "cannot list the tokens of the PKCS#11 module {module}: {}",
            describe(&err)
        ))
    })?;
    let mut found = Vec::new();
    let mut others = Vec::new();
    for slot in slots {
        let info = context.get_token_info(slot).map_err(|err| {
            Error::internal(format!(
                "cannot read the token in slot {} of the PKCS#11 module {module}: {}",
                slot.id(),
                describe(&err)
            ))
        })?;
        // Labels are padded with spaces to 32 bytes.
        let label = info.label().trim_end_matches(' ');
        if label == wanted {
            found.push(slot);
        } else if !label.is_empty() {
            others.push(label.to_owned());
        }
    }
    match found.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(Error::internal(format!(
            "no PKCS#11 token labelled {:?} in the module {module} (tokens present: {others:?})",
            config.token_label
        ))),
        several => Err(Error::internal(format!(
            "{} PKCS#11 tokens are labelled {:?} in the module {module}: token labels must \
             be unique",
            several.len(),
            config.token_label
        ))),
    }
}

/// The private key labelled `config.key_label` and its public key.
fn locate(session: &Session, config: &Pkcs11Config) -> Result<(ObjectHandle, PublicKey), Error> {
    let label = Attribute::Label(config.key_label.as_bytes().to_vec());
    let find = |template: &[Attribute]| {
        session
            .find_objects(template)
            .map_err(|err| failure(config, "cannot search", &err))
    };
    let private_key =
        match find(&[Attribute::Class(ObjectClass::PRIVATE_KEY), label.clone()])?.as_slice() {
            [key] => *key,
            [] => {
                return Err(Error::internal(format!(
                    "no private key labelled {:?} in PKCS#11 token {:?}",
                    config.key_label, config.token_label
                )));
            }
            several => {
                return Err(Error::internal(format!(
                    "{} private keys are labelled {:?} in PKCS#11 token {:?}: key labels must be \
                 unique",
                    several.len(),
                    config.key_label,
                    config.token_label
                )));
            }
        };
    let mut private_type = None;
    let mut id = None;
    for attribute in attributes(
        session,
        config,
        private_key,
        &[AttributeType::KeyType, AttributeType::Id],
    )? {
        match attribute {
            Attribute::KeyType(key_type) => private_type = Some(key_type),
            Attribute::Id(value) if !value.is_empty() => id = Some(value),
            _ => {}
        }
    }
    let public_class = Attribute::Class(ObjectClass::PUBLIC_KEY);
    let mut publics = find(&[public_class.clone(), label.clone()])?;
    if let (true, Some(id)) = (publics.len() > 1, id) {
        // Several public keys share the label: the one with the private key's ID.
        publics = find(&[public_class, label, Attribute::Id(id)])?;
    }
    let public_key = match publics.as_slice() {
        [key] => *key,
        [] => {
            return Err(Error::internal(format!(
                "the private key {:?} in PKCS#11 token {:?} has no public key object with the \
                 same label",
                config.key_label, config.token_label
            )));
        }
        several => {
            return Err(Error::internal(format!(
                "{} public keys are labelled {:?} in PKCS#11 token {:?}, and the private key's \
                 CKA_ID does not tell them apart",
                several.len(),
                config.key_label,
                config.token_label
            )));
        }
    };
    let public = read_public_key(session, config, public_key)?;
    let public_type = match public.kind {
        KeyKind::EcdsaP256 | KeyKind::EcdsaP384 => KeyType::EC,
        KeyKind::Rsa => KeyType::RSA,
    };
    if private_type.is_some_and(|private_type| private_type != public_type) {
        return Err(Error::internal(format!(
            "the private and public keys labelled {:?} in PKCS#11 token {:?} are of different \
             types",
            config.key_label, config.token_label
        )));
    }
    Ok((private_key, public))
}

/// The public key object `handle`, as rcgen wants it.
fn read_public_key(
    session: &Session,
    config: &Pkcs11Config,
    handle: ObjectHandle,
) -> Result<PublicKey, Error> {
    let named = |what: &str| {
        format!(
            "the public key {:?} in PKCS#11 token {:?} {what}",
            config.key_label, config.token_label
        )
    };
    let key_type = attributes(session, config, handle, &[AttributeType::KeyType])?
        .into_iter()
        .find_map(|attribute| match attribute {
            Attribute::KeyType(key_type) => Some(key_type),
            _ => None,
        })
        .ok_or_else(|| Error::internal(named("has no CKA_KEY_TYPE")))?;
    if key_type == KeyType::EC {
        let mut params = None;
        let mut point = None;
        for attribute in attributes(
            session,
            config,
            handle,
            &[AttributeType::EcParams, AttributeType::EcPoint],
        )? {
            match attribute {
                Attribute::EcParams(value) => params = Some(value),
                Attribute::EcPoint(value) => point = Some(value),
                _ => {}
            }
        }
        let params = params.ok_or_else(|| Error::internal(named("has no CKA_EC_PARAMS")))?;
        let kind = match params.as_slice() {
            P256_PARAMS => KeyKind::EcdsaP256,
            P384_PARAMS => KeyKind::EcdsaP384,
            _ => {
                return Err(Error::internal(named(&format!(
                    "is on a curve other than P-256 and P-384 (CKA_EC_PARAMS {})",
                    hex(&params)
                ))));
            }
        };
        let point = point.ok_or_else(|| Error::internal(named("has no CKA_EC_POINT")))?;
        let field_len = kind.field_len().unwrap_or_default();
        let bits = uncompressed_point(&point, field_len).ok_or_else(|| {
            Error::internal(named(&format!(
                "has a CKA_EC_POINT that is not an uncompressed {kind:?} point"
            )))
        })?;
        return Ok(PublicKey { kind, bits });
    }
    if key_type == KeyType::RSA {
        let mut modulus = None;
        let mut exponent = None;
        for attribute in attributes(
            session,
            config,
            handle,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )? {
            match attribute {
                Attribute::Modulus(value) => modulus = Some(value),
                Attribute::PublicExponent(value) => exponent = Some(value),
                _ => {}
            }
        }
        let modulus = modulus.ok_or_else(|| Error::internal(named("has no CKA_MODULUS")))?;
        let exponent =
            exponent.ok_or_else(|| Error::internal(named("has no CKA_PUBLIC_EXPONENT")))?;
        let bits = bit_len(&modulus);
        if bits < MIN_RSA_BITS {
            return Err(Error::internal(named(&format!(
                "is a {bits}-bit RSA key: CA keys need at least {MIN_RSA_BITS} bits"
            ))));
        }
        if bit_len(&exponent) < 2 {
            return Err(Error::internal(named("has an invalid public exponent")));
        }
        return Ok(PublicKey {
            kind: KeyKind::Rsa,
            bits: rsa_public_key_der(&modulus, &exponent),
        });
    }
    Err(Error::internal(named(&format!(
        "is a {key_type} key: CA keys in a token must be ECDSA (P-256 or P-384) or RSA"
    ))))
}

/// The attributes `types` of `object` that it has.
fn attributes(
    session: &Session,
    config: &Pkcs11Config,
    object: ObjectHandle,
    types: &[AttributeType],
) -> Result<Vec<Attribute>, Error> {
    session
        .get_attributes(object, types)
        .map_err(|err| failure(config, "cannot read the attributes of a key", &err))
}

/// The uncompressed point `0x04 || X || Y` in a `CKA_EC_POINT`, which PKCS#11 says
/// is a DER OCTET STRING wrapping it; some tokens give the bare point.
fn uncompressed_point(value: &[u8], field_len: usize) -> Option<Vec<u8>> {
    let point_len = 1 + 2 * field_len;
    let point = if value.len() == point_len {
        value
    } else {
        OctetStringRef::from_der(value).ok()?.as_bytes()
    };
    (point.len() == point_len && point.first() == Some(&0x04)).then(|| point.to_vec())
}

/// Whether `err` means the session or its login is gone, so that a new session may
/// succeed where this one failed.
fn session_lost(err: &CryptokiError) -> bool {
    matches!(
        err,
        CryptokiError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::UserNotLoggedIn
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid,
            _
        )
    )
}

/// An error about the key `config` names.
fn failure(config: &Pkcs11Config, what: &str, err: &CryptokiError) -> Error {
    Error::internal(format!(
        "PKCS#11 key {:?} in token {:?}: {what}: {}",
        config.key_label,
        config.token_label,
        describe(err)
    ))
}

/// A cryptoki error in the spec's words, e.g. `C_Login: CKR_PIN_INCORRECT`:
/// cryptoki's own messages for return values are paragraphs.
fn describe(err: &CryptokiError) -> String {
    let CryptokiError::Pkcs11(rv, function) = err else {
        return err.to_string();
    };
    let name = format!("{rv:?}");
    let code = if name.chars().all(|c| c.is_ascii_alphanumeric()) {
        let mut code = String::from("CKR");
        for c in name.chars() {
            if c.is_ascii_uppercase() {
                code.push('_');
            }
            code.push(c.to_ascii_uppercase());
        }
        code
    } else {
        rv.to_string()
    };
    format!("C_{function:?}: {code}")
}

/// A DER ECDSA-Sig-Value (RFC 3279 §2.2.3) from the `r || s` PKCS#11 signs as
/// (`r` and `s` of equal length).
fn ecdsa_signature_der(raw: &[u8]) -> Result<Vec<u8>, Error> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(Error::internal(format!(
            "a PKCS#11 ECDSA signature of {} bytes is not r || s",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    Ok(der_sequence(&[der_integer(r), der_integer(s)]))
}

/// A DER PKCS#1 RSAPublicKey (RFC 8017 §A.1.1) from the big-endian modulus and
/// public exponent.
fn rsa_public_key_der(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    der_sequence(&[der_integer(modulus), der_integer(exponent)])
}

/// A DER INTEGER holding the unsigned big-endian `value`: minimal, with a leading
/// zero byte when the high bit is set so that it stays positive.
fn der_integer(value: &[u8]) -> Vec<u8> {
    let start = value
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(value.len());
    let digits = &value[start..];
    let mut content = Vec::with_capacity(digits.len() + 1);
    if digits.first().is_none_or(|byte| byte & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(digits);
    der_tlv(0x02, &content)
}

/// A DER SEQUENCE of the already encoded `items`.
fn der_sequence(items: &[Vec<u8>]) -> Vec<u8> {
    der_tlv(0x30, &items.concat())
}

/// A DER tag, length and value.
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|byte| **byte == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// The number of significant bits in the big-endian `value`.
fn bit_len(value: &[u8]) -> usize {
    match value.iter().position(|byte| *byte != 0) {
        Some(start) => (value.len() - start) * 8 - value[start].leading_zeros() as usize,
        None => 0,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests;
