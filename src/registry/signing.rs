//! Signatures on the remote cache's build outputs, as Nix's binary caches sign store paths.
//!
//! An artifact is pinned by the lock's sha256, so any registry may serve it. A build output (a
//! built wheel, the Go server, the web UI) is not: its bytes are whatever the builder made, and
//! every digest in its manifest comes from the registry. So a builder signs each build output
//! it pushes, and a consumer takes one only when a key it trusts signed it.
//!
//! - Keys are ed25519, written as Nix writes them: a public key `NAME:BASE64(32 bytes)`, a
//!   secret key `NAME:BASE64(seed ‖ public key, 64 bytes)` (`akpkg cache keygen`).
//! - What is signed ([`statement`]): a versioned text naming the entry's artifact type, its key
//!   and each layer's title, media type, size and digest, one a line. The blobs are then checked
//!   against those digests, so a signature covers every byte that is used.
//! - The signature sits in the manifest's annotations as `NAME:BASE64(64 bytes)`.
//!
//! The ed25519 implementation is `ring`'s, already in the build for TLS: a well-kept,
//! audited library, so signing adds no crate.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use super::RegistryError;
use crate::identity::Sha256;

/// The annotation that holds an entry's signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.akpkg.signature";

/// A key that may sign build outputs: `NAME:BASE64(public key)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub name: String,
    bytes: [u8; 32],
}

/// A builder's secret key.
pub struct SecretKey {
    name: String,
    pair: Ed25519KeyPair,
    seed: [u8; 32],
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "SecretKey({}, public {})",
            self.name,
            self.public()
        )
    }
}

/// One layer of an entry, as its signature covers it.
pub struct SignedLayer<'a> {
    pub title: &'a str,
    pub media_type: &'a str,
    pub size: u64,
    pub digest: &'a Sha256,
}

fn key_error(what: &str, reason: impl Into<String>) -> RegistryError {
    RegistryError::Key {
        what: what.to_string(),
        reason: reason.into(),
    }
}

/// `NAME:BASE64` with a name of letters, digits and `.-_`, and the decoded bytes.
fn split_key(text: &str, what: &str) -> Result<(String, Vec<u8>), RegistryError> {
    let (name, encoded) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| key_error(what, "expected NAME:BASE64"))?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
    {
        return Err(key_error(
            what,
            "the name is letters, digits, '.', '-' and '_'",
        ));
    }
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|error| key_error(what, format!("not base64: {error}")))?;
    Ok((name.to_string(), bytes))
}

impl PublicKey {
    /// Parse `NAME:BASE64` of a 32-byte ed25519 public key; `what` names where it came from.
    pub fn parse(text: &str, what: &str) -> Result<PublicKey, RegistryError> {
        let (name, bytes) = split_key(text, what)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| key_error(what, "an ed25519 public key is 32 bytes"))?;
        Ok(PublicKey { name, bytes })
    }

    /// Whether `signature` (`NAME:BASE64`) is this key's over `message`.
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.bytes)
            .verify(message, signature)
            .is_ok()
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}:{}", self.name, STANDARD.encode(self.bytes))
    }
}

impl SecretKey {
    /// A new key pair named `name`, from the system's random source.
    pub fn generate(name: &str) -> Result<SecretKey, RegistryError> {
        let mut seed = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
            .map_err(|_| key_error(name, "the system's random source failed"))?;
        let mut public = [0u8; 32];
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| key_error(name, "not a valid ed25519 seed"))?;
        public.copy_from_slice(pair.public_key().as_ref());
        let text = format!("{name}:{}", STANDARD.encode([seed, public].concat()));
        SecretKey::parse(&text, name)
    }

    /// Parse `NAME:BASE64(seed ‖ public key)`; `what` names the file it came from.
    pub fn parse(text: &str, what: &str) -> Result<SecretKey, RegistryError> {
        let (name, bytes) = split_key(text, what)?;
        if bytes.len() != 64 {
            return Err(key_error(what, "an ed25519 secret key is 64 bytes"));
        }
        let pair = Ed25519KeyPair::from_seed_and_public_key(&bytes[..32], &bytes[32..])
            .map_err(|_| key_error(what, "its public half does not belong to its seed"))?;
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&bytes[..32]);
        Ok(SecretKey { name, pair, seed })
    }

    pub fn public(&self) -> PublicKey {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey {
            name: self.name.clone(),
            bytes,
        }
    }

    /// The secret key file's text.
    pub fn to_text(&self) -> String {
        let public = self.public().bytes;
        format!(
            "{}:{}\n",
            self.name,
            STANDARD.encode([self.seed, public].concat())
        )
    }

    /// The annotation value that signs `message`: `NAME:BASE64(signature)`.
    pub fn sign(&self, message: &[u8]) -> String {
        let signature = self.pair.sign(message);
        format!("{}:{}", self.name, STANDARD.encode(signature.as_ref()))
    }
}

/// Read a secret key file (`--remote-cache-signing-key`).
pub fn read_secret_key(path: &Path) -> Result<SecretKey, RegistryError> {
    let text = read_key_file(path)?;
    SecretKey::parse(&text, &path.display().to_string())
}

/// Read a file of trusted public keys, one a line (`#` starts a comment).
pub fn read_public_keys(path: &Path) -> Result<Vec<PublicKey>, RegistryError> {
    let text = read_key_file(path)?;
    text.lines()
        .enumerate()
        .map(|(index, line)| (index, line.split('#').next().unwrap_or("").trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(index, line)| {
            PublicKey::parse(line, &format!("{} line {}", path.display(), index + 1))
        })
        .collect()
}

/// A key file's text: a regular file (not a FIFO or device, not through a link) of at most
/// 64 KiB.
fn read_key_file(path: &Path) -> Result<String, RegistryError> {
    let io = |error| RegistryError::io("reading the key file", path, error);
    // The user's own path may be a link (a secrets mount is made of them); what it leads to
    // must be a regular file.
    let file = std::fs::canonicalize(path)
        .and_then(|real| crate::path_io::open_regular(&real))
        .map_err(io)?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, 64 * 1024 + 1), &mut text)
        .map_err(io)?;
    if text.len() > 64 * 1024 {
        return Err(key_error(
            &path.display().to_string(),
            "a key file is at most 64 KiB",
        ));
    }
    Ok(text)
}

/// Write a new secret key file readable by its owner only; an existing file is never replaced.
pub fn write_secret_key(path: &Path, key: &SecretKey) -> Result<(), RegistryError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |error| RegistryError::io("writing the secret key to", path, error);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(key.to_text().as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// What a build output's signature covers.
pub fn statement(artifact_type: &str, key: &str, layers: &[SignedLayer<'_>]) -> Vec<u8> {
    let mut text = format!("akpkg remote cache entry v1\ntype {artifact_type}\nkey {key}\n");
    for layer in layers {
        text.push_str(&format!(
            "layer {} {} {} sha256:{}\n",
            layer.title,
            layer.media_type,
            layer.size,
            layer.digest.as_str()
        ));
    }
    text.into_bytes()
}

/// Why a pulled build output is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untrusted {
    /// No `--remote-cache-trusted-key` was given.
    NoTrustedKeys,
    Unsigned,
    /// Signed by a key of another name than every trusted one.
    UnknownSigner(String),
    /// A trusted key's name, but not its signature over this entry.
    BadSignature(String),
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Untrusted::NoTrustedKeys => write!(formatter, "no key is trusted for build outputs"),
            Untrusted::Unsigned => write!(formatter, "it is not signed"),
            Untrusted::UnknownSigner(name) => {
                write!(formatter, "it is signed by {name}, a key not trusted here")
            }
            Untrusted::BadSignature(name) => write!(
                formatter,
                "its signature is not {name}'s over this entry (edited or forged)"
            ),
        }
    }
}

/// The trusted key whose signature `annotation` (`NAME:BASE64`) is over `message`.
pub fn signer<'a>(
    trusted: &'a [PublicKey],
    annotation: Option<&str>,
    message: &[u8],
) -> Result<&'a PublicKey, Untrusted> {
    if trusted.is_empty() {
        return Err(Untrusted::NoTrustedKeys);
    }
    let (name, encoded) = annotation
        .and_then(|text| text.split_once(':'))
        .ok_or(Untrusted::Unsigned)?;
    let candidates: Vec<&PublicKey> = trusted.iter().filter(|key| key.name == name).collect();
    if candidates.is_empty() {
        return Err(Untrusted::UnknownSigner(name.to_string()));
    }
    let signature = STANDARD
        .decode(encoded)
        .map_err(|_| Untrusted::BadSignature(name.to_string()))?;
    candidates
        .into_iter()
        .find(|key| key.verifies(message, &signature))
        .ok_or_else(|| Untrusted::BadSignature(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(digest: &Sha256) -> Vec<SignedLayer<'_>> {
        vec![SignedLayer {
            title: "demo-1.0-py3-none-any.whl",
            media_type: "application/octet-stream",
            size: 3,
            digest,
        }]
    }

    #[test]
    fn a_trusted_signature_is_accepted_and_any_edit_refused() {
        let secret = SecretKey::generate("builder-a").unwrap();
        let trusted = vec![secret.public()];
        let digest = Sha256::of_bytes(b"abc");
        let message = statement("t", "built-wheel-k", &layers(&digest));
        let signature = secret.sign(&message);
        assert_eq!(
            signer(&trusted, Some(&signature), &message).unwrap().name,
            "builder-a"
        );
        let other = Sha256::of_bytes(b"abd");
        let edited = statement("t", "built-wheel-k", &layers(&other));
        assert_eq!(
            signer(&trusted, Some(&signature), &edited),
            Err(Untrusted::BadSignature("builder-a".into()))
        );
        let moved = statement("t", "built-wheel-other", &layers(&digest));
        assert!(signer(&trusted, Some(&signature), &moved).is_err());
        assert_eq!(signer(&trusted, None, &message), Err(Untrusted::Unsigned));
        assert_eq!(
            signer(&[], Some(&signature), &message),
            Err(Untrusted::NoTrustedKeys)
        );
    }

    #[test]
    fn a_key_of_the_same_name_but_other_bytes_is_not_trusted() {
        let real = SecretKey::generate("builder").unwrap();
        let impostor = SecretKey::generate("builder").unwrap();
        let message = statement("t", "k", &[]);
        assert_eq!(
            signer(&[real.public()], Some(&impostor.sign(&message)), &message),
            Err(Untrusted::BadSignature("builder".into()))
        );
        let signed_by_other = SecretKey::generate("other").unwrap().sign(&message);
        assert_eq!(
            signer(&[real.public()], Some(&signed_by_other), &message),
            Err(Untrusted::UnknownSigner("other".into()))
        );
    }

    #[test]
    fn keys_round_trip_through_their_text_and_bad_text_is_named() {
        let secret = SecretKey::generate("ci.example-1").unwrap();
        let again = SecretKey::parse(&secret.to_text(), "key file").unwrap();
        assert_eq!(again.public(), secret.public());
        let public = PublicKey::parse(&secret.public().to_string(), "flag").unwrap();
        assert_eq!(public, secret.public());
        for (text, reason) in [
            ("nokey", "expected NAME:BASE64"),
            ("a b:AAAA", "the name is"),
            ("a:!!!", "not base64"),
            ("a:AAAA", "32 bytes"),
        ] {
            let error = PublicKey::parse(text, "--remote-cache-trusted-key").unwrap_err();
            assert!(error.to_string().contains(reason), "{error}");
            assert!(error.to_string().contains("--remote-cache-trusted-key"));
        }
        let mut bytes = STANDARD
            .decode(secret.to_text().trim().split_once(':').unwrap().1)
            .unwrap();
        bytes[40] ^= 1;
        let broken = format!("x:{}", STANDARD.encode(bytes));
        let error = SecretKey::parse(&broken, "key.sec").unwrap_err();
        assert!(error.to_string().contains("does not belong"), "{error}");
    }
}
