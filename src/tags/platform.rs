//! Linux platform tags: manylinux (PEP 600, with the PEP 513/571/599 aliases), musllinux
//! (PEP 656) and plain `linux_<arch>`.

use std::fmt;
use std::str::FromStr;

/// Where wheels will run: the C library and its version, and the CPU architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Platform {
    /// glibc `major.minor`.
    Manylinux {
        major: u16,
        minor: u16,
        arch: String,
    },
    /// musl `major.minor`.
    Musllinux {
        major: u16,
        minor: u16,
        arch: String,
    },
    /// Neither is known: only `linux_<arch>` wheels fit.
    Linux { arch: String },
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid platform `{value}`: expected a Linux wheel platform tag such as manylinux_2_36_x86_64, manylinux2014_x86_64, musllinux_1_2_x86_64 or linux_x86_64"
)]
pub struct PlatformError {
    pub value: String,
}

/// PEP 600: "manylinux2014 … is an alias for manylinux_2_17", and likewise the older two.
const LEGACY_MANYLINUX: [(u16, &str); 3] = [
    (17, "manylinux2014"),
    (12, "manylinux2010"),
    (5, "manylinux1"),
];

impl Platform {
    pub fn arch(&self) -> &str {
        match self {
            Platform::Manylinux { arch, .. }
            | Platform::Musllinux { arch, .. }
            | Platform::Linux { arch } => arch,
        }
    }

    /// Every platform tag this platform accepts, best first, as `packaging.tags` orders them.
    pub fn tags(&self) -> Vec<String> {
        let mut tags = Vec::new();
        match self {
            Platform::Manylinux { major, minor, arch } => {
                // packaging: the oldest glibc considered is 2.5 on x86, 2.17 elsewhere.
                let oldest_minor = if matches!(arch.as_str(), "x86_64" | "i686") {
                    5
                } else {
                    17
                };
                // Only glibc 2.x exists; a newer major would also accept every 2.x.
                let mut levels: Vec<(u16, u16)> = Vec::new();
                if *major > 2 {
                    levels.extend((0..=*minor).rev().map(|m| (*major, m)));
                }
                let top_minor = if *major == 2 { *minor } else { 99 };
                levels.extend((oldest_minor..=top_minor).rev().map(|m| (2, m)));
                for (level_major, level_minor) in levels {
                    tags.push(format!("manylinux_{level_major}_{level_minor}_{arch}"));
                    if level_major == 2
                        && let Some((_, alias)) = LEGACY_MANYLINUX
                            .iter()
                            .find(|(alias_minor, _)| *alias_minor == level_minor)
                    {
                        tags.push(format!("{alias}_{arch}"));
                    }
                }
            }
            Platform::Musllinux { major, minor, arch } => {
                tags.extend(
                    (0..=*minor)
                        .rev()
                        .map(|m| format!("musllinux_{major}_{m}_{arch}")),
                );
            }
            Platform::Linux { .. } => {}
        }
        tags.push(format!("linux_{}", self.arch()));
        tags
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Platform::Manylinux { major, minor, arch } => {
                write!(f, "manylinux_{major}_{minor}_{arch}")
            }
            Platform::Musllinux { major, minor, arch } => {
                write!(f, "musllinux_{major}_{minor}_{arch}")
            }
            Platform::Linux { arch } => write!(f, "linux_{arch}"),
        }
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(value: &str) -> Result<Platform, PlatformError> {
        let error = || PlatformError {
            value: value.to_string(),
        };
        let valid_arch = |arch: &str| {
            !arch.is_empty() && arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        // `X_Y_ARCH` → (X, Y, ARCH)
        let versioned = |rest: &str| -> Option<(u16, u16, String)> {
            let mut parts = rest.splitn(3, '_');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            let arch = parts.next()?;
            valid_arch(arch).then(|| (major, minor, arch.to_string()))
        };
        if let Some(rest) = value.strip_prefix("manylinux_") {
            let (major, minor, arch) = versioned(rest).ok_or_else(error)?;
            return Ok(Platform::Manylinux { major, minor, arch });
        }
        if let Some(rest) = value.strip_prefix("musllinux_") {
            let (major, minor, arch) = versioned(rest).ok_or_else(error)?;
            return Ok(Platform::Musllinux { major, minor, arch });
        }
        for (minor, alias) in LEGACY_MANYLINUX {
            if let Some(arch) = value.strip_prefix(alias).and_then(|r| r.strip_prefix('_'))
                && valid_arch(arch)
            {
                return Ok(Platform::Manylinux {
                    major: 2,
                    minor,
                    arch: arch.to_string(),
                });
            }
        }
        if let Some(arch) = value.strip_prefix("linux_")
            && valid_arch(arch)
        {
            return Ok(Platform::Linux {
                arch: arch.to_string(),
            });
        }
        Err(error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        let parse = |text: &str| text.parse::<Platform>().map(|p| p.to_string());
        assert_eq!(
            parse("manylinux_2_36_x86_64").unwrap(),
            "manylinux_2_36_x86_64"
        );
        assert_eq!(
            parse("manylinux2014_aarch64").unwrap(),
            "manylinux_2_17_aarch64"
        );
        assert_eq!(parse("manylinux1_x86_64").unwrap(), "manylinux_2_5_x86_64");
        assert_eq!(
            parse("musllinux_1_2_x86_64").unwrap(),
            "musllinux_1_2_x86_64"
        );
        assert_eq!(parse("linux_x86_64").unwrap(), "linux_x86_64");
        insta::assert_snapshot!(parse("win_amd64").unwrap_err().to_string(), @"invalid platform `win_amd64`: expected a Linux wheel platform tag such as manylinux_2_36_x86_64, manylinux2014_x86_64, musllinux_1_2_x86_64 or linux_x86_64");
        assert!(parse("manylinux_2_x86_64").is_err());
    }

    #[test]
    fn manylinux_levels_descend_with_aliases() {
        let tags = "manylinux_2_18_x86_64".parse::<Platform>().unwrap().tags();
        assert_eq!(
            tags[..4],
            [
                "manylinux_2_18_x86_64",
                "manylinux_2_17_x86_64",
                "manylinux2014_x86_64",
                "manylinux_2_16_x86_64"
            ]
        );
        assert_eq!(
            tags[tags.len() - 3..],
            ["manylinux_2_5_x86_64", "manylinux1_x86_64", "linux_x86_64"]
        );
        let arm = "manylinux_2_28_aarch64".parse::<Platform>().unwrap().tags();
        assert_eq!(
            arm[arm.len() - 3..],
            [
                "manylinux_2_17_aarch64",
                "manylinux2014_aarch64",
                "linux_aarch64"
            ]
        );
    }

    #[test]
    fn musllinux_levels_descend_to_zero() {
        let tags = "musllinux_1_2_aarch64".parse::<Platform>().unwrap().tags();
        assert_eq!(
            tags,
            [
                "musllinux_1_2_aarch64",
                "musllinux_1_1_aarch64",
                "musllinux_1_0_aarch64",
                "linux_aarch64"
            ]
        );
    }
}
