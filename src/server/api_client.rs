//! The Go client of the application's API, generated from the release's schema as upstream's
//! `make gen-client-go` does (goauthentik/client-go's configuration: openapi-generator's `go`
//! generator, then `go fmt`), and built in place of the module go.sum pins through a `replace`
//! (upstream: `go mod edit -replace goauthentik.io/api/v3=./gen-go-api`).
//!
//! akpkg keeps only the generated package (the `.go` files at the output's root; the docs,
//! tests and scripts the generator also writes are not part of the build) and writes the
//! module's go.mod itself: the module path and the main module's `go` line, no requirements
//! (the package's imports resolve through the main module's, which go.sum pins). The source's
//! go.mod is not changed: the build reads a copy with the `replace` (`-modfile`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::ServerError;
use crate::contained::{Contained, Existing, FileMode};
use crate::identity::{GoModulePath, RelativePath, Sha256};
use crate::lock::{LockedGoApiClient, LockedJar};

/// The recipe's `[server.api-client]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GoApiClientRecipe {
    /// The generator's jar (Maven Central), pinned by sha256.
    pub generator: LockedJar,
    /// Its arguments; akpkg adds `-i SCHEMA -o DIRECTORY` itself.
    pub arguments: Vec<String>,
    /// The OpenAPI schema in the source (`schema.yml`).
    pub schema: RelativePath,
    /// Where in the source the generated module goes, the `replace` target (`gen-go-api`).
    pub output: RelativePath,
    /// The module it replaces (`goauthentik.io/api/v3`).
    pub module: GoModulePath,
}

/// The generator's options akpkg sets itself (`-i`, `-o` and their long names, without their
/// dashes): a recipe that names them would read or write elsewhere.
const OWN_OPTIONS: &[&str] = &["i", "input-spec", "o", "output"];

impl GoApiClientRecipe {
    /// What the generated code depends on besides the generator and the schema.
    pub fn configuration_sha256(&self) -> Sha256 {
        let text = format!(
            "{}\0{}\0{}\0{}",
            self.arguments.join("\0"),
            self.schema.as_str(),
            self.output.as_str(),
            self.module.as_str()
        );
        Sha256::of_bytes(text.as_bytes())
    }

    fn check(&self) -> Result<(), ServerError> {
        match self.arguments.iter().find(|argument| {
            let option = argument.split('=').next().unwrap_or_default();
            option.starts_with('-') && OWN_OPTIONS.contains(&option.trim_start_matches('-'))
        }) {
            Some(argument) => Err(ServerError::Recipe {
                field: "api-client.arguments",
                value: argument.clone(),
                why: "akpkg gives the generator its input and output itself (from `schema` and `output`)",
            }),
            None => Ok(()),
        }
    }

    /// The lock's record of this client for the source at `source`.
    pub fn locked(&self, source: &Path) -> Result<LockedGoApiClient, ServerError> {
        self.check()?;
        Ok(LockedGoApiClient {
            module: self.module.clone(),
            generator: self.generator.clone(),
            configuration_sha256: self.configuration_sha256(),
            schema: self.schema.clone(),
            schema_blob: schema_blob(source, &self.schema)?,
        })
    }
}

/// `--go-api-client`: generate the client (as upstream builds from source) or take the
/// module go.sum pins from a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GoApiClientChoice {
    #[default]
    Generate,
    Locked,
}

/// A client to generate: the recipe's, the lock's record, and what runs the generator.
#[derive(Debug, Clone)]
pub struct ClientGeneration<'a> {
    pub recipe: &'a GoApiClientRecipe,
    pub locked: &'a LockedGoApiClient,
    /// The checked jar (in the artifact cache).
    pub jar: PathBuf,
    pub java: PathBuf,
}

impl<'a> ClientGeneration<'a> {
    /// The generation of `recipe` as `locked` records it: the jar where the artifact cache
    /// keeps it (fetched by the caller), and java, checked.
    pub fn new(
        recipe: &'a GoApiClientRecipe,
        locked: &'a LockedGoApiClient,
        cache: &crate::cache::Cache,
    ) -> Result<Self, ServerError> {
        Ok(ClientGeneration {
            recipe,
            locked,
            jar: crate::fetch::ArtifactCache::new(cache).path(&locked.generator.sha256),
            java: super::find_java()?,
        })
    }

    /// The source's schema must be the one locked, and the recipe's settings the locked ones.
    pub fn check(&self, source: &Path) -> Result<(), ServerError> {
        self.recipe.check()?;
        let stale = |what: &str, locked: &str, actual: &str| ServerError::ApiClientChanged {
            what: what.to_string(),
            locked: locked.to_string(),
            actual: actual.to_string(),
        };
        let configuration = self.recipe.configuration_sha256();
        if configuration != self.locked.configuration_sha256 {
            return Err(stale(
                "the recipe's [server.api-client]",
                self.locked.configuration_sha256.as_str(),
                configuration.as_str(),
            ));
        }
        if self.recipe.generator.sha256 != self.locked.generator.sha256 {
            return Err(stale(
                "the generator's jar",
                self.locked.generator.sha256.as_str(),
                self.recipe.generator.sha256.as_str(),
            ));
        }
        let blob = schema_blob(source, &self.recipe.schema)?;
        if blob != self.locked.schema_blob {
            return Err(stale(
                &format!("{} (its git blob)", self.recipe.schema.as_str()),
                &self.locked.schema_blob,
                &blob,
            ));
        }
        Ok(())
    }

    /// Generate the module into `destination` (which must not exist), logging to `log`.
    pub fn generate(
        &self,
        source: &Path,
        destination: &Contained,
        toolchain: &super::Toolchain,
        go_line: &str,
        log: &Path,
    ) -> Result<usize, ServerError> {
        let scratch = crate::path_io::scratch_directory("akpkg-go-client-")?;
        let mut command = Command::new(&self.java);
        command
            .arg("-jar")
            .arg(&self.jar)
            .args(&self.recipe.arguments)
            .arg("-i")
            .arg(source.join(self.recipe.schema.as_str()))
            .arg("-o")
            .arg(scratch.path())
            .current_dir(scratch.path());
        let shown = format!(
            "openapi-generator {} ({})",
            self.recipe.generator.version,
            self.recipe.schema.as_str()
        );
        crate::runner::run_logged(command, &shown, log, true)?;
        let files = keep_package(scratch.path(), destination)?;
        destination.write(
            Path::new("go.mod"),
            format!("module {}\n\ngo {go_line}\n", self.recipe.module.as_str()).as_bytes(),
            FileMode::Regular,
            Existing::Refuse,
        )?;
        // client-go's `go fmt .`: the toolchain's gofmt over the package.
        let mut gofmt = Command::new(toolchain.gofmt());
        gofmt
            .args(["-l", "-w", "."])
            .current_dir(destination.root());
        crate::runner::run_logged(gofmt, "gofmt -l -w .", log, true)?;
        Ok(files)
    }
}

/// Copy the generated package (the `.go` files at the generator's output root) into
/// `destination`; how many there were.
fn keep_package(generated: &Path, destination: &Contained) -> Result<usize, ServerError> {
    let entries = fs_err::read_dir(generated).map_err(ServerError::io("cannot read", generated))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(ServerError::io("cannot read", generated))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let regular = entry.file_type().is_ok_and(|kind| kind.is_file());
        if regular && name.ends_with(".go") {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Err(ServerError::ApiClientEmpty {
            directory: generated.to_path_buf(),
        });
    }
    for name in &names {
        destination.place(
            &generated.join(name),
            Path::new(name),
            crate::contained::LinkMode::Copy,
        )?;
    }
    Ok(names.len())
}

/// The schema's git blob id in the source.
fn schema_blob(source: &Path, schema: &RelativePath) -> Result<String, ServerError> {
    let path = source.join(schema.as_str());
    crate::fetch::blob_id(&path).map_err(ServerError::io("cannot read", &path))
}

/// A copy of the source's go.mod and go.sum in `directory` with `module => target` added: the
/// build's `-modfile`, which leaves the source's go.mod as it is.
pub fn modfile(
    source: &Path,
    module: &GoModulePath,
    target: &str,
    directory: &Path,
) -> Result<PathBuf, ServerError> {
    let staged = Contained::open(directory)?;
    let go_mod = source.join("go.mod");
    let text = fs_err::read_to_string(&go_mod).map_err(ServerError::io("cannot read", &go_mod))?;
    let replaced = format!(
        "{}\nreplace {} => {target}\n",
        text.trim_end(),
        module.as_str()
    );
    staged.write(
        Path::new("go.mod"),
        replaced.as_bytes(),
        FileMode::Regular,
        Existing::Replace,
    )?;
    staged.place(
        &source.join("go.sum"),
        Path::new("go.sum"),
        crate::contained::LinkMode::Copy,
    )?;
    Ok(staged.path(Path::new("go.mod")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(arguments: &[&str]) -> GoApiClientRecipe {
        GoApiClientRecipe {
            generator: LockedJar {
                name: "org.openapitools:openapi-generator-cli".to_string(),
                version: "7.19.0".to_string(),
                url: "https://repo1.maven.org/x.jar".to_string(),
                sha256: Sha256::of_bytes(b"jar"),
            },
            arguments: arguments.iter().map(ToString::to_string).collect(),
            schema: "schema.yml".parse().unwrap(),
            output: "gen-go-api".parse().unwrap(),
            module: "example.com/api".parse().unwrap(),
        }
    }

    #[test]
    fn the_configuration_digest_follows_every_setting_and_own_arguments_are_refused() {
        let base = recipe(&["generate", "-g", "go"]);
        let mut other = base.clone();
        other.output = "elsewhere".parse().unwrap();
        assert_ne!(base.configuration_sha256(), other.configuration_sha256());
        assert_ne!(
            base.configuration_sha256(),
            recipe(&["generate", "-g", "go", "-p", "x=y"]).configuration_sha256()
        );
        let message = recipe(&["generate", "-o", "/tmp/x"])
            .check()
            .unwrap_err()
            .to_string();
        insta::assert_snapshot!(message, @"the recipe's [server] api-client.arguments `-o` is not valid: akpkg gives the generator its input and output itself (from `schema` and `output`)");
    }

    #[test]
    fn the_modfile_adds_the_replace_and_keeps_the_source() {
        let directory = tempfile::tempdir().unwrap();
        let source = directory.path().join("source");
        let build = directory.path().join("build");
        fs_err::create_dir_all(&source).unwrap();
        fs_err::create_dir_all(&build).unwrap();
        fs_err::write(source.join("go.mod"), "module example.com/app\n\ngo 1.22\n").unwrap();
        fs_err::write(source.join("go.sum"), "").unwrap();
        let module: GoModulePath = "example.com/api".parse().unwrap();
        let path = modfile(&source, &module, "./gen-go-api", &build).unwrap();
        insta::assert_snapshot!(fs_err::read_to_string(path).unwrap(), @r"
        module example.com/app

        go 1.22
        replace example.com/api => ./gen-go-api
        ");
        assert_eq!(
            fs_err::read_to_string(source.join("go.mod")).unwrap(),
            "module example.com/app\n\ngo 1.22\n"
        );
    }
}
