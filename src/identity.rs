//! Typed identities checked at the boundary: every value that later becomes part of a path
//! (a sha256 naming a cache entry, a file name in a bundle, a git commit naming a checkout) is
//! parsed into one of these where it is read, so a bad value is an error that names its file
//! and field before anything touches the disk, and no stage has to check it again.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a value is not a valid identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not {expected}")]
pub struct IdentityError {
    /// The offending value, shortened and with control characters escaped.
    pub value: String,
    pub expected: &'static str,
}

impl IdentityError {
    fn new(value: &str, expected: &'static str) -> IdentityError {
        let shown: String = value.chars().take(80).collect();
        IdentityError {
            value: shown.escape_debug().to_string(),
            expected,
        }
    }
}

/// `count` lowercase hexadecimal digits.
fn is_lower_hex(text: &str, count: usize) -> bool {
    text.len() == count
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

macro_rules! string_identity {
    ($(#[$doc:meta])* $name:ident, $check:expr, $expected:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdentityError;
            fn try_from(value: String) -> Result<Self, IdentityError> {
                let check: fn(&str) -> bool = $check;
                if check(&value) {
                    Ok($name(value))
                } else {
                    Err(IdentityError::new(&value, $expected))
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdentityError;
            fn from_str(value: &str) -> Result<Self, IdentityError> {
                $name::try_from(value.to_string())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<std::path::Path> for $name {
            fn as_ref(&self) -> &std::path::Path {
                std::path::Path::new(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }
    };
}

string_identity!(
    /// A sha256 digest: 64 lowercase hexadecimal digits. It names cache entries.
    Sha256,
    |text| is_lower_hex(text, 64),
    "a sha256 digest (64 lowercase hexadecimal digits)"
);

string_identity!(
    /// A git commit id: 40 lowercase hexadecimal digits. It names checkouts and bundle archives.
    GitCommit,
    |text| is_lower_hex(text, 40),
    "a git commit id (40 lowercase hexadecimal digits)"
);

string_identity!(
    /// A git tree id: 40 lowercase hexadecimal digits.
    TreeId,
    |text| is_lower_hex(text, 40),
    "a git tree id (40 lowercase hexadecimal digits)"
);

string_identity!(
    /// A file name: one non-empty path component, not `.` or `..`, without `/`, `\`, NUL or
    /// other control characters. It names files in bundles and `--find-links` directories.
    FileName,
    is_file_name,
    "a file name (one path component, without `/`, `\\`, `..` or control characters)"
);

string_identity!(
    /// A relative path inside a tree, as a recipe names one (`web/icons`, `lifecycle`):
    /// `/`-separated file names, none empty, `.` or `..`, not absolute. Parsed when the recipe is
    /// read, so no later join can climb out of the tree or the prefix.
    RelativePath,
    is_relative_path,
    "a relative path (`/`-separated names, without `..`, `.`, empty names or a leading `/`)"
);

string_identity!(
    /// A Go module path (`github.com/gorilla/mux`): `/`-separated elements of letters, digits
    /// and `-._~+`, none empty, none starting with a dot. It names directories of the module
    /// proxy tree.
    GoModulePath,
    is_go_module_path,
    "a Go module path (`/`-separated elements of letters, digits and `-._~+`)"
);

string_identity!(
    /// A Go module version (`v1.8.1`, `v0.0.0-20230210204819-062eb4c674ab`,
    /// `v2.0.0+incompatible`): `v` then letters, digits and `.+-`. It names proxy files.
    GoModuleVersion,
    is_go_module_version,
    "a Go module version (`v` then letters, digits and `.+-`)"
);

string_identity!(
    /// A go.sum hash: `h1:` and the base64 of a sha256 over the module's files (Go's
    /// `dirhash.Hash1`).
    GoSumHash,
    is_go_sum_hash,
    "a go.sum hash (`h1:` and 44 base64 characters)"
);

fn is_go_module_path(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 512
        && text.split('/').all(|element| {
            !element.is_empty()
                && !element.starts_with('.')
                && element.bytes().all(|byte| {
                    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+')
                })
        })
}

fn is_go_module_version(text: &str) -> bool {
    text.len() <= 256
        && text.starts_with('v')
        && !text.contains("..")
        && text[1..]
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'+' | b'-'))
        && text.len() > 1
}

fn is_go_sum_hash(text: &str) -> bool {
    use base64::Engine;
    text.strip_prefix("h1:").is_some_and(|encoded| {
        encoded.len() == 44
            && base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .is_ok_and(|bytes| bytes.len() == 32)
    })
}

impl GoSumHash {
    /// The hash of a sha256 digest, as go.sum writes it.
    pub fn from_digest(digest: &[u8; 32]) -> GoSumHash {
        use base64::Engine;
        GoSumHash(format!(
            "h1:{}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        ))
    }
}

impl GoModulePath {
    /// The path as the module proxy protocol spells it: each capital letter as `!` and the
    /// lowercase letter, so that case-insensitive file systems keep modules apart.
    pub fn escaped(&self) -> String {
        escape_capitals(&self.0)
    }
}

impl GoModuleVersion {
    /// The version as the module proxy protocol spells it (see [`GoModulePath::escaped`]).
    pub fn escaped(&self) -> String {
        escape_capitals(&self.0)
    }
}

fn escape_capitals(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if character.is_ascii_uppercase() {
            escaped.push('!');
            escaped.push(character.to_ascii_lowercase());
        } else {
            escaped.push(character);
        }
    }
    escaped
}

/// A package-lock `integrity` for sha512 (`sha512-<base64>`), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmIntegrity {
    digest: [u8; 64],
}

impl NpmIntegrity {
    /// Parse `sha512-<base64 of 64 bytes>`; other algorithms are refused (npm's lock gives
    /// sha512 for every registry tarball).
    pub fn parse(text: &str) -> Option<NpmIntegrity> {
        use base64::Engine;
        let encoded = text.trim().strip_prefix("sha512-")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        Some(NpmIntegrity {
            digest: bytes.try_into().ok()?,
        })
    }

    /// The integrity of some bytes.
    pub fn of_bytes(bytes: &[u8]) -> NpmIntegrity {
        NpmIntegrity {
            digest: <sha2::Sha512 as sha2::Digest>::digest(bytes).into(),
        }
    }

    /// The integrity of a stream's bytes, read in chunks.
    pub fn of_reader(mut reader: impl std::io::Read) -> std::io::Result<NpmIntegrity> {
        use sha2::Digest;
        let mut hasher = sha2::Sha512::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = reader.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        Ok(NpmIntegrity {
            digest: hasher.finalize().into(),
        })
    }

    /// The digest in lowercase hexadecimal (how npm's cache names content).
    pub fn hex(&self) -> String {
        self.digest
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

impl std::fmt::Display for NpmIntegrity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "sha512-{}", {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(self.digest)
        })
    }
}

impl serde::Serialize for NpmIntegrity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for NpmIntegrity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        NpmIntegrity::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not a sha512 integrity (`sha512-` and the base64 of 64 bytes)"
            ))
        })
    }
}

fn is_relative_path(text: &str) -> bool {
    text.len() <= 4096 && text.split('/').all(is_file_name)
}

fn is_file_name(text: &str) -> bool {
    !text.is_empty()
        && text != "."
        && text != ".."
        && text.len() <= 255
        && !text
            .chars()
            .any(|character| character == '/' || character == '\\' || character.is_control())
}

impl Sha256 {
    /// The digest of bytes already hashed.
    pub fn from_digest(digest: &[u8; 32]) -> Sha256 {
        Sha256(crate::digest::hex(digest))
    }

    /// The sha256 of a file's contents.
    pub fn of_file(path: &std::path::Path) -> std::io::Result<Sha256> {
        let (digest, _) = crate::digest::sha256_reader(fs_err::File::open(path)?)?;
        Ok(Sha256::from_digest(&digest))
    }

    /// [`Sha256::of_file`] of a regular file only, its link not followed
    /// ([`crate::path_io::open_regular`]): for files below a directory akpkg did not write.
    pub fn of_regular_file(path: &std::path::Path) -> std::io::Result<Sha256> {
        let (digest, _) = crate::digest::sha256_reader(crate::path_io::open_regular(path)?)?;
        Ok(Sha256::from_digest(&digest))
    }

    /// The sha256 of some bytes.
    pub fn of_bytes(bytes: &[u8]) -> Sha256 {
        Sha256(crate::digest::sha256_hex(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_below_their_tree() {
        for good in ["lifecycle", "web/icons", "a/b.c/d", "gen-ts-api"] {
            assert!(good.parse::<RelativePath>().is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc",
            "../x",
            "a/../../x",
            "a/./b",
            ".",
            "a//b",
            "a/",
            "a\\b",
        ] {
            let error = bad.parse::<RelativePath>().unwrap_err();
            assert!(
                error.to_string().contains("a relative path"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn go_module_identities_refuse_paths_that_escape_and_escape_capitals() {
        let path: GoModulePath = "github.com/Azure/go-ntlmssp".parse().unwrap();
        assert_eq!(path.escaped(), "github.com/!azure/go-ntlmssp");
        for hostile in [
            "../etc",
            "github.com//x",
            "a/./b",
            "a/.hidden",
            "a\\b",
            "",
            "a b",
        ] {
            assert!(hostile.parse::<GoModulePath>().is_err(), "{hostile}");
        }
        let version: GoModuleVersion = "v0.0.0-20221128193559-754e69321358".parse().unwrap();
        assert_eq!(version.escaped(), version.as_str());
        assert_eq!(
            "v1.0.0-RC1".parse::<GoModuleVersion>().unwrap().escaped(),
            "v1.0.0-!r!c1"
        );
        for hostile in ["1.0.0", "v", "v1/../x", "v1..2", "v1.0.0/x"] {
            assert!(hostile.parse::<GoModuleVersion>().is_err(), "{hostile}");
        }
        assert!(
            "h1:FDkbCAYAGeOvTzd8uPhw9V8BjDZMubaxCHz1fM2FaNY="
                .parse::<GoSumHash>()
                .is_ok()
        );
        for hostile in [
            "h1:short=",
            "h2:FDkbCAYAGeOvTzd8uPhw9V8BjDZMubaxCHz1fM2FaNY=",
            "FDkb",
        ] {
            assert!(hostile.parse::<GoSumHash>().is_err(), "{hostile}");
        }
    }

    #[test]
    fn sha256_must_be_64_lowercase_hex_digits() {
        let good = "ab".repeat(32);
        assert_eq!(good.parse::<Sha256>().unwrap().as_str(), good);
        for bad in [
            "",
            "../../etc/passwd",
            &"AB".repeat(32),
            &"ab".repeat(31),
            &format!("{}/x", "ab".repeat(31)),
        ] {
            assert!(bad.parse::<Sha256>().is_err(), "{bad}");
        }
        insta::assert_snapshot!(
            "../x".parse::<Sha256>().unwrap_err().to_string(),
            @"`../x` is not a sha256 digest (64 lowercase hexadecimal digits)"
        );
    }

    #[test]
    fn file_names_are_one_component() {
        for good in ["a-1.0-py3-none-any.whl", "x.tar.gz", "..a"] {
            assert!(good.parse::<FileName>().is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a\\b", "a\0b", "a\nb", "/x"] {
            assert!(bad.parse::<FileName>().is_err(), "{bad:?}");
        }
        insta::assert_snapshot!(
            "a\nb/..".parse::<FileName>().unwrap_err().to_string(),
            @r"`a\nb/..` is not a file name (one path component, without `/`, `\`, `..` or control characters)"
        );
    }

    #[test]
    fn commits_and_trees_are_40_hex_digits() {
        assert!(
            "0123456789abcdef0123456789abcdef01234567"
                .parse::<GitCommit>()
                .is_ok()
        );
        assert!("../../x".parse::<GitCommit>().is_err());
        assert!(
            "0123456789ABCDEF0123456789abcdef01234567"
                .parse::<TreeId>()
                .is_err()
        );
    }

    #[test]
    fn identities_deserialize_only_when_valid() {
        #[derive(Deserialize)]
        struct Row {
            #[allow(dead_code)]
            sha256: Sha256,
        }
        let error = toml::from_str::<Row>("sha256 = \"../../x\"\n")
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(error.contains("line 1"), "{error}");
        assert!(error.contains("not a sha256 digest"), "{error}");
    }
}
