//! A Go module's pins: go.mod's `go` and `toolchain` lines and every line of go.sum, read into
//! akpkg's lock (`[go]`) so that fetching and bundling need the lock alone.
//!
//! go.sum holds two lines per module version the build may read: `PATH VERSION h1:…` pins the
//! module's files (its zip), `PATH VERSION/go.mod h1:…` its go.mod alone. Modules that only take
//! part in version selection have the second line only.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Location, LockError};
use crate::identity::{GoModulePath, GoModuleVersion, GoSumHash, Sha256};

/// The Go part of akpkg's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LockedGo {
    /// go.mod's `go` line: the oldest Go toolchain that builds the module.
    pub go: String,
    /// go.mod's `toolchain` line, when it has one (the toolchain upstream prefers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toolchain: Option<String>,
    /// The go.sum these pins were read from, by content: a source whose go.sum differs is
    /// refused before anything is built.
    pub go_sum_sha256: Sha256,
    pub modules: Vec<LockedGoModule>,
    /// The API client the build generates in place of a module go.sum pins (then none of that
    /// module's go.sum lines are pinned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_client: Option<LockedGoApiClient>,
}

/// `[go.api-client]`: what the generated Go API client is made from (the recipe's
/// `[server.api-client]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LockedGoApiClient {
    /// The module it replaces.
    pub module: GoModulePath,
    pub generator: super::LockedJar,
    /// The recipe's arguments, schema, output and module, by digest.
    pub configuration_sha256: Sha256,
    pub schema: crate::identity::RelativePath,
    /// The schema's git blob id.
    pub schema_blob: String,
}

impl LockedGo {
    /// Leave out every go.sum pin of `module`: the build generates it instead of downloading
    /// it, so no proxy is asked for it.
    pub fn drop_module(&mut self, module: &GoModulePath) {
        self.modules.retain(|pinned| &pinned.path != module);
    }
}

/// One module version of go.sum.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LockedGoModule {
    pub path: GoModulePath,
    pub version: GoModuleVersion,
    /// The hash of the module's files, when the build reads them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip: Option<GoSumHash>,
    /// The hash of its go.mod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub go_mod: Option<GoSumHash>,
}

/// Read `DIRECTORY/go.mod` and `DIRECTORY/go.sum`, or `None` when the directory has no Go
/// module.
pub fn read_go_module(directory: &Path) -> Result<Option<LockedGo>, LockError> {
    let go_mod = directory.join("go.mod");
    let go_sum = directory.join("go.sum");
    if !go_mod.is_file() {
        return Ok(None);
    }
    let read = |path: &Path| {
        fs_err::read_to_string(path).map_err(|source| LockError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let (go, toolchain) = parse_go_mod(&go_mod, &read(&go_mod)?)?;
    let go_sum_text = read(&go_sum)?;
    Ok(Some(LockedGo {
        go,
        toolchain,
        go_sum_sha256: Sha256::of_bytes(go_sum_text.as_bytes()),
        modules: parse_go_sum(&go_sum, &go_sum_text)?,
        api_client: None,
    }))
}

/// go.mod's `go` and `toolchain` directives.
pub fn parse_go_mod(path: &Path, text: &str) -> Result<(String, Option<String>), LockError> {
    let mut go = None;
    let mut toolchain = None;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or_default().trim();
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["go", version] => go = Some(version.to_string()),
            ["toolchain", name] => toolchain = Some(name.to_string()),
            _ => {}
        }
    }
    let go = go.ok_or_else(|| LockError::Invalid {
        location: Location::at_line(path, 1, 1),
        message: "go.mod has no `go` line, so the Go version it needs is unknown".to_string(),
    })?;
    Ok((go, toolchain))
}

/// Every module version of go.sum, its two hashes joined, in go.sum's order.
pub fn parse_go_sum(path: &Path, text: &str) -> Result<Vec<LockedGoModule>, LockError> {
    let mut modules: BTreeMap<(GoModulePath, GoModuleVersion), LockedGoModule> = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let invalid = |column: usize, message: String| LockError::Invalid {
            location: Location::at_line(path, index + 1, column),
            message,
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [module, version, hash] = fields.as_slice() else {
            return Err(invalid(
                1,
                format!("expected `MODULE VERSION HASH`, found `{line}`"),
            ));
        };
        let module: GoModulePath = module
            .parse()
            .map_err(|error| invalid(1, format!("{error}")))?;
        let (version, is_go_mod) = match version.strip_suffix("/go.mod") {
            Some(version) => (version, true),
            None => (*version, false),
        };
        let version: GoModuleVersion = version
            .parse()
            .map_err(|error| invalid(module.len() + 2, format!("{error}")))?;
        let hash: GoSumHash = hash
            .parse()
            .map_err(|error| invalid(line.len() - hash.len() + 1, format!("{error}")))?;
        let entry = modules
            .entry((module.clone(), version.clone()))
            .or_insert_with(|| LockedGoModule {
                path: module,
                version,
                zip: None,
                go_mod: None,
            });
        let slot = if is_go_mod {
            &mut entry.go_mod
        } else {
            &mut entry.zip
        };
        if slot.as_ref().is_some_and(|existing| *existing != hash) {
            return Err(invalid(
                1,
                "a second, different hash for the same module version".to_string(),
            ));
        }
        *slot = Some(hash);
    }
    Ok(modules.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GO_SUM: &str = "github.com/Azure/go-ntlmssp v0.0.0-20221128193559-754e69321358 h1:mFRzDkZVAjdal+s7s0MwaRv9igoPqLRdzOLzw/8Xvq8=
github.com/Azure/go-ntlmssp v0.0.0-20221128193559-754e69321358/go.mod h1:chxPXzSsl7ZWRAuOIE23GDNzjWuZquvFlgA8xmpunjU=
github.com/davecgh/go-spew v1.1.0/go.mod h1:J7Y8YcW2NihsgmVo/mv3lAwl/skON4iLHjSsI+c5H38=
";

    #[test]
    fn go_sum_lines_join_into_one_pin_per_module_version() {
        let modules = parse_go_sum(Path::new("go.sum"), GO_SUM).unwrap();
        insta::assert_json_snapshot!(modules, @r#"
        [
          {
            "path": "github.com/Azure/go-ntlmssp",
            "version": "v0.0.0-20221128193559-754e69321358",
            "zip": "h1:mFRzDkZVAjdal+s7s0MwaRv9igoPqLRdzOLzw/8Xvq8=",
            "go-mod": "h1:chxPXzSsl7ZWRAuOIE23GDNzjWuZquvFlgA8xmpunjU="
          },
          {
            "path": "github.com/davecgh/go-spew",
            "version": "v1.1.0",
            "go-mod": "h1:J7Y8YcW2NihsgmVo/mv3lAwl/skON4iLHjSsI+c5H38="
          }
        ]
        "#);
    }

    #[test]
    fn bad_go_sum_lines_name_the_line_and_what_is_wrong() {
        let messages: Vec<String> = [
            "github.com/x/y v1.0.0\n",
            "ok.example/a v1.0.0 h1:mFRzDkZVAjdal+s7s0MwaRv9igoPqLRdzOLzw/8Xvq8=\n../../etc v1.0.0 h1:mFRzDkZVAjdal+s7s0MwaRv9igoPqLRdzOLzw/8Xvq8=\n",
            "github.com/x/y v1.0.0/../../z h1:mFRzDkZVAjdal+s7s0MwaRv9igoPqLRdzOLzw/8Xvq8=\n",
            "github.com/x/y v1.0.0 md5:abc\n",
            "github.com/x/y v1.0.0 h1:mFRzDkZVAjdal+s7s0MwaRv9igoPqLRdzOLzw/8Xvq8=\ngithub.com/x/y v1.0.0 h1:chxPXzSsl7ZWRAuOIE23GDNzjWuZquvFlgA8xmpunjU=\n",
        ]
        .iter()
        .map(|text| {
            parse_go_sum(Path::new("go.sum"), text)
                .unwrap_err()
                .to_string()
        })
        .collect();
        insta::assert_snapshot!(messages.join("\n"), @r#"
            go.sum:1:1: expected `MODULE VERSION HASH`, found `github.com/x/y v1.0.0`
            go.sum:2:1: `../../etc` is not a Go module path (`/`-separated elements of letters, digits and `-._~+`)
            go.sum:1:16: `v1.0.0/../../z` is not a Go module version (`v` then letters, digits and `.+-`)
            go.sum:1:23: `md5:abc` is not a go.sum hash (`h1:` and 44 base64 characters)
            go.sum:2:1: a second, different hash for the same module version
        "#);
    }

    #[test]
    fn a_generated_module_is_dropped_with_every_pin_of_it_and_nothing_else() {
        let hash = "h1:mFRzDkZVAjdal+s7s0MwaRv9igoPqLRdzOLzw/8Xvq8=";
        let go_sum = format!(
            "example.com/missing v1.0.0 {hash}\ngoauthentik.io/api/v3 v3.2026020.17 {hash}\ngoauthentik.io/api/v3 v3.2026020.17/go.mod {hash}\ngoauthentik.io/api/v3 v3.2026010.1/go.mod {hash}\ngoauthentik.io/api/v3/extra v3.0.0 {hash}\n"
        );
        let mut go = LockedGo {
            go: "1.25".to_string(),
            toolchain: None,
            go_sum_sha256: "0".repeat(64).parse().unwrap(),
            modules: parse_go_sum(Path::new("go.sum"), &go_sum).unwrap(),
            api_client: None,
        };
        go.drop_module(&"goauthentik.io/api/v3".parse().unwrap());
        let left: Vec<String> = go
            .modules
            .iter()
            .map(|module| format!("{}@{}", module.path, module.version))
            .collect();
        assert_eq!(
            left,
            [
                "example.com/missing@v1.0.0",
                "goauthentik.io/api/v3/extra@v3.0.0"
            ]
        );
    }

    #[test]
    fn go_mod_gives_the_go_and_toolchain_lines() {
        let text = "module goauthentik.io\n\ngo 1.25.5 // the minimum\n\ntoolchain go1.25.6\n\nrequire (\n\tgithub.com/x/go v1.0.0\n)\n";
        assert_eq!(
            parse_go_mod(Path::new("go.mod"), text).unwrap(),
            ("1.25.5".to_string(), Some("go1.25.6".to_string()))
        );
        let error = parse_go_mod(Path::new("go.mod"), "module x\n").unwrap_err();
        insta::assert_snapshot!(error.to_string(), @"go.mod:1:1: go.mod has no `go` line, so the Go version it needs is unknown");
    }
}
