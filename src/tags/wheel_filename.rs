//! Wheel file names (binary distribution format, "File name convention"):
//! `{distribution}-{version}(-{build tag})?-{python tag}-{abi tag}-{platform tag}.whl`,
//! where each tag may be a `.`-separated compressed set.

use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;
use pep508_rs::PackageName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelFilename {
    pub name: PackageName,
    pub version: Version,
    pub build_tag: Option<String>,
    pub python_tags: Vec<String>,
    pub abi_tags: Vec<String>,
    pub platform_tags: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("`{filename}` is not a valid wheel file name: {reason}")]
pub struct WheelFilenameError {
    pub filename: String,
    pub reason: String,
}

impl WheelFilename {
    /// The tag sets as written in the file name: `py2.py3-none-any`.
    pub fn tag_text(&self) -> String {
        format!(
            "{}-{}-{}",
            self.python_tags.join("."),
            self.abi_tags.join("."),
            self.platform_tags.join(".")
        )
    }
}

impl FromStr for WheelFilename {
    type Err = WheelFilenameError;

    fn from_str(filename: &str) -> Result<WheelFilename, WheelFilenameError> {
        let error = |reason: &str| WheelFilenameError {
            filename: filename.to_string(),
            reason: reason.to_string(),
        };
        let stem = filename
            .strip_suffix(".whl")
            .ok_or_else(|| error("it does not end in `.whl`"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build_tag, tags) = match parts[..] {
            [name, version, python, abi, platform] => {
                (name, version, None, [python, abi, platform])
            }
            [name, version, build, python, abi, platform] => {
                // "The build tag … Must start with a digit."
                if !build.starts_with(|c: char| c.is_ascii_digit()) {
                    return Err(error("its build tag does not start with a digit"));
                }
                (
                    name,
                    version,
                    Some(build.to_string()),
                    [python, abi, platform],
                )
            }
            _ => return Err(error("it has neither 5 nor 6 `-`-separated parts")),
        };
        let name = PackageName::new(name.to_string())
            .map_err(|e| error(&format!("invalid distribution name: {e}")))?;
        let version =
            Version::from_str(version).map_err(|e| error(&format!("invalid version: {e}")))?;
        let split = |tag: &str| -> Result<Vec<String>, WheelFilenameError> {
            if tag.is_empty() || tag.split('.').any(str::is_empty) {
                return Err(error("it has an empty tag"));
            }
            Ok(tag.split('.').map(str::to_string).collect())
        };
        Ok(WheelFilename {
            name,
            version,
            build_tag,
            python_tags: split(tags[0])?,
            abi_tags: split(tags[1])?,
            platform_tags: split(tags[2])?,
        })
    }
}

impl fmt::Display for WheelFilename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name.as_ref().replace('-', "_");
        match &self.build_tag {
            Some(build) => write!(f, "{name}-{}-{build}-{}.whl", self.version, self.tag_text()),
            None => write!(f, "{name}-{}-{}.whl", self.version, self.tag_text()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compressed_tag_sets_and_build_tags() {
        let wheel: WheelFilename =
            "aiohttp-3.13.3-cp313-cp313-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
                .parse()
                .unwrap();
        assert_eq!(wheel.name.as_ref(), "aiohttp");
        assert_eq!(wheel.version.to_string(), "3.13.3");
        assert_eq!(
            wheel.platform_tags,
            ["manylinux2014_x86_64", "manylinux_2_17_x86_64"]
        );

        let built: WheelFilename = "Django_Thing-1.0-2b-py2.py3-none-any.whl".parse().unwrap();
        assert_eq!(built.name.as_ref(), "django-thing");
        assert_eq!(built.build_tag.as_deref(), Some("2b"));
        assert_eq!(built.python_tags, ["py2", "py3"]);
        assert_eq!(
            built.to_string(),
            "django_thing-1.0-2b-py2.py3-none-any.whl"
        );
    }

    #[test]
    fn rejects_malformed_names() {
        let error = |name: &str| name.parse::<WheelFilename>().unwrap_err().to_string();
        insta::assert_snapshot!(error("x-1.0.tar.gz"), @"`x-1.0.tar.gz` is not a valid wheel file name: it does not end in `.whl`");
        insta::assert_snapshot!(error("x-1.0-any.whl"), @"`x-1.0-any.whl` is not a valid wheel file name: it has neither 5 nor 6 `-`-separated parts");
        insta::assert_snapshot!(error("x-1.0-b1-py3-none-any.whl"), @"`x-1.0-b1-py3-none-any.whl` is not a valid wheel file name: its build tag does not start with a digit");
        insta::assert_snapshot!(error("x-one-py3-none-any.whl"), @"`x-one-py3-none-any.whl` is not a valid wheel file name: invalid version: expected version to start with a number, but no leading ASCII digits were found");
        assert!(error("x-1-py3..py2-none-any.whl").contains("empty tag"));
    }
}
