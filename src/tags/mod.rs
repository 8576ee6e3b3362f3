//! Wheel compatibility tags: parsing wheel file names, and ranking wheels for a target.
//!
//! The target's tags are generated in the order `packaging.tags.sys_tags()` yields them for
//! CPython on Linux, most specific first; a wheel's rank is the position of its best tag.

mod platform;
mod wheel_filename;

use std::collections::HashMap;
use std::fmt;

pub use platform::{Platform, PlatformError};
pub use wheel_filename::{WheelFilename, WheelFilenameError};

/// One `python-abi-platform` triple.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    pub python: String,
    pub abi: String,
    pub platform: String,
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.python, self.abi, self.platform)
    }
}

/// The tags a target interpreter accepts, in priority order (index 0 is best).
#[derive(Debug, Clone)]
pub struct TargetTags {
    ordered: Vec<Tag>,
    rank_of: HashMap<Tag, usize>,
}

impl TargetTags {
    /// CPython `major.minor` on `platform`: `cpXY-cpXY`, `cpXY-abi3`, `cpXY-none`, then abi3
    /// of older minors down to cp32, then `pyXY-none` for the platform, then `-any`.
    pub fn cpython(major: u8, minor: u8, free_threaded: bool, platform: &Platform) -> TargetTags {
        let platforms = platform.tags();
        let interpreter = format!("cp{major}{minor}");
        let own_abi = if free_threaded {
            format!("{interpreter}t")
        } else {
            interpreter.clone()
        };
        // abi3 is the stable ABI of the GIL build only (PEP 703).
        let abi3 = !free_threaded && (major, minor) >= (3, 2);
        let mut ordered = Vec::new();
        let mut push_all = |python: &str, abi: &str, platforms: &[String]| {
            for platform in platforms {
                ordered.push(Tag {
                    python: python.to_string(),
                    abi: abi.to_string(),
                    platform: platform.clone(),
                });
            }
        };
        push_all(&interpreter, &own_abi, &platforms);
        if abi3 {
            push_all(&interpreter, "abi3", &platforms);
        }
        push_all(&interpreter, "none", &platforms);
        if abi3 {
            for older in (2..minor).rev() {
                push_all(&format!("cp{major}{older}"), "abi3", &platforms);
            }
        }
        let python_range = python_range(major, minor);
        for python in &python_range {
            push_all(python, "none", &platforms);
        }
        let any = ["any".to_string()];
        push_all(&interpreter, "none", &any);
        for python in &python_range {
            push_all(python, "none", &any);
        }
        TargetTags::from_ordered(ordered)
    }

    fn from_ordered(ordered: Vec<Tag>) -> TargetTags {
        let mut rank_of = HashMap::with_capacity(ordered.len());
        for (rank, tag) in ordered.iter().enumerate() {
            // Keep the first (best) rank if a tag were ever generated twice.
            rank_of.entry(tag.clone()).or_insert(rank);
        }
        TargetTags { ordered, rank_of }
    }

    /// All tags, best first.
    pub fn ordered(&self) -> &[Tag] {
        &self.ordered
    }

    /// The rank of a wheel's best tag, or `None` when no tag of the wheel fits the target.
    pub fn rank(&self, wheel: &WheelFilename) -> Option<usize> {
        let mut best: Option<usize> = None;
        for python in &wheel.python_tags {
            for abi in &wheel.abi_tags {
                for platform in &wheel.platform_tags {
                    let tag = Tag {
                        python: python.clone(),
                        abi: abi.clone(),
                        platform: platform.clone(),
                    };
                    if let Some(&rank) = self.rank_of.get(&tag) {
                        best = Some(best.map_or(rank, |current| current.min(rank)));
                    }
                }
            }
        }
        best
    }
}

/// `py313`, `py3`, `py312`, …, `py30`, as `packaging.tags._py_interpreter_range` yields them.
fn python_range(major: u8, minor: u8) -> Vec<String> {
    let mut range = vec![format!("py{major}{minor}"), format!("py{major}")];
    range.extend((0..minor).rev().map(|older| format!("py{major}{older}")));
    range
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp313_glibc() -> TargetTags {
        let platform: Platform = "manylinux_2_36_x86_64".parse().unwrap();
        TargetTags::cpython(3, 13, false, &platform)
    }

    fn rank(tags: &TargetTags, filename: &str) -> Option<usize> {
        tags.rank(&filename.parse().unwrap())
    }

    #[test]
    fn cpython_tag_order_matches_packaging() {
        let tags = cp313_glibc();
        let ordered: Vec<String> = tags.ordered().iter().map(ToString::to_string).collect();
        // 32 manylinux levels + 3 legacy aliases + linux = 36 platforms.
        assert_eq!(ordered.len(), 36 * (3 + 11 + 15) + 16);
        insta::assert_snapshot!(ordered[..6].join("\n"), @r"
        cp313-cp313-manylinux_2_36_x86_64
        cp313-cp313-manylinux_2_35_x86_64
        cp313-cp313-manylinux_2_34_x86_64
        cp313-cp313-manylinux_2_33_x86_64
        cp313-cp313-manylinux_2_32_x86_64
        cp313-cp313-manylinux_2_31_x86_64
        ");
        insta::assert_snapshot!(ordered[ordered.len() - 17..].join("\n"), @r"
        py30-none-linux_x86_64
        cp313-none-any
        py313-none-any
        py3-none-any
        py312-none-any
        py311-none-any
        py310-none-any
        py39-none-any
        py38-none-any
        py37-none-any
        py36-none-any
        py35-none-any
        py34-none-any
        py33-none-any
        py32-none-any
        py31-none-any
        py30-none-any
        ");
        assert!(ordered.contains(&"cp32-abi3-manylinux1_x86_64".to_string()));
        assert!(!ordered.contains(&"cp31-abi3-linux_x86_64".to_string()));
    }

    #[test]
    fn wheels_rank_by_their_best_tag() {
        let tags = cp313_glibc();
        let specific = rank(
            &tags,
            "aiohttp-3.13.3-cp313-cp313-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
        );
        let abi3 = rank(
            &tags,
            "cryptography-45.0.5-cp311-abi3-manylinux_2_34_x86_64.whl",
        );
        let pure = rank(&tags, "django-5.2.11-py3-none-any.whl");
        let legacy = rank(&tags, "x-1-py2.py3-none-any.whl");
        assert!(specific.unwrap() < abi3.unwrap());
        assert!(abi3.unwrap() < pure.unwrap());
        assert_eq!(pure, legacy);
        // manylinux_2_28 is the best of the three aliases in that file name.
        assert_eq!(
            tags.ordered()[specific.unwrap()].to_string(),
            "cp313-cp313-manylinux_2_28_x86_64"
        );
    }

    #[test]
    fn incompatible_wheels_have_no_rank() {
        let tags = cp313_glibc();
        for filename in [
            "x-1-cp313-cp313-win_amd64.whl",
            "x-1-cp313-cp313-macosx_11_0_arm64.whl",
            "x-1-cp313-cp313-musllinux_1_2_x86_64.whl",
            "x-1-cp313-cp313-manylinux_2_39_x86_64.whl",
            "x-1-cp313-cp313-manylinux_2_17_aarch64.whl",
            "x-1-cp312-cp312-manylinux_2_17_x86_64.whl",
            "x-1-cp313-cp313t-manylinux_2_17_x86_64.whl",
            "x-1-py2-none-any.whl",
        ] {
            assert_eq!(rank(&tags, filename), None, "{filename}");
        }
    }

    #[test]
    fn free_threaded_cpython_has_no_abi3() {
        let platform: Platform = "manylinux_2_17_x86_64".parse().unwrap();
        let tags = TargetTags::cpython(3, 13, true, &platform);
        assert!(rank(&tags, "x-1-cp313-cp313t-manylinux_2_17_x86_64.whl").is_some());
        assert_eq!(
            rank(&tags, "x-1-cp311-abi3-manylinux_2_17_x86_64.whl"),
            None
        );
        assert_eq!(
            rank(&tags, "x-1-cp313-cp313-manylinux_2_17_x86_64.whl"),
            None
        );
    }

    #[test]
    fn musl_targets_take_musllinux_wheels() {
        let platform: Platform = "musllinux_1_2_x86_64".parse().unwrap();
        let tags = TargetTags::cpython(3, 13, false, &platform);
        assert!(rank(&tags, "x-1-cp313-cp313-musllinux_1_1_x86_64.whl").is_some());
        assert_eq!(
            rank(&tags, "x-1-cp313-cp313-manylinux_2_17_x86_64.whl"),
            None
        );
    }
}
