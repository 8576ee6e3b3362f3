//! Step 10 of assemble: what the prefix is, written into it: `akpkg-manifest.json` (read back
//! by `verify`, `layer` and the no-op check) and the CycloneDX SBOM.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::native::NativeAudit;
use super::server::ServerRecord;
use super::web::WebRecord;
use super::{AssembleError, LoadedRecipe, MANIFEST, SBOM, sbom, verify};
use crate::closure::ClosureReport;
use crate::contained::{Contained, Existing, FileMode};
use crate::identity::{Sha256, TreeId};
use crate::install::{InstalledDistribution, SharedFile, WheelToInstall};
use crate::patch::PatchReport;
use crate::pep517::BuiltWheel;

/// The manifest written into the prefix.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct PrefixManifest<'a> {
    akpkg: &'static str,
    recipe: String,
    source: ManifestSource,
    target: serde_json::Value,
    runtime_python: String,
    settings_module: Option<&'a str>,
    verify_environment: &'a BTreeMap<String, String>,
    distributions: Vec<serde_json::Value>,
    patches: Vec<serde_json::Value>,
    /// Paths two distributions shipped with different bytes, and whose copy was kept.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    shared_files: &'a [SharedFile],
    warnings: &'a [String],
    /// The digest of every input that determines the prefix's bytes (see `incremental`).
    input_digest: Sha256,
    /// The `SOURCE_DATE_EPOCH` it was built with, which `layer` takes too.
    source_date_epoch: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<ServerRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    web: Option<WebRecord>,
    /// What the native code needs from the machine it runs on (see `native`).
    native: serde_json::Value,
}

/// The manifest's `source`: the tree that was built, and whether it is the recipe's pin.
/// (Fields in alphabetical order: the order the manifest had as untyped JSON.)
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ManifestSource {
    pub commit: Option<String>,
    pub recipe_tree: String,
    pub tree: String,
    pub verified: bool,
}

/// The manifest's `native`, as far as `verify` and `layer` need it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NativeSettings {
    #[serde(default)]
    pub self_contained: bool,
    /// The Debian packages a runtime image must install for the prefix's native code.
    #[serde(default)]
    pub debian_packages: Vec<String>,
}

/// What `verify`, `layer` and the summaries read from a prefix's manifest.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ManifestSettings {
    pub recipe: Option<String>,
    pub source: Option<ManifestSource>,
    pub source_date_epoch: Option<u64>,
    pub settings_module: Option<String>,
    #[serde(default)]
    pub native: NativeSettings,
    #[serde(default)]
    pub verify_environment: BTreeMap<String, String>,
    /// The Go server's binary and its hash, when the prefix has one.
    #[serde(default)]
    pub server: Option<verify::ServerPin>,
}

/// Read what `verify`, `layer` and the summaries need from `PREFIX/akpkg-manifest.json`.
pub fn manifest_settings(prefix: &Path) -> Result<ManifestSettings, AssembleError> {
    let path = prefix.join(MANIFEST);
    let text = fs_err::read_to_string(&path).map_err(AssembleError::io("cannot read", &path))?;
    serde_json::from_str(&text).map_err(|source| AssembleError::Json { path, source })
}

/// What step 10 records.
pub struct RecordInputs<'a> {
    pub loaded: &'a LoadedRecipe,
    pub source_tree: &'a TreeId,
    /// `bin/python3.X` for a self-contained prefix, else the runtime interpreter's path.
    pub runtime_python: String,
    pub warnings: &'a [String],
    pub installed: &'a [(WheelToInstall, InstalledDistribution)],
    pub shared_files: &'a [SharedFile],
    pub built: &'a [BuiltWheel],
    pub applied: &'a [PatchReport],
    pub input_digest: Sha256,
    pub sections: StageSections,
    pub native: &'a NativeAudit,
    pub closure: &'a ClosureReport,
    /// The build's date: the manifest records it and the SBOM is dated with it.
    pub source_date_epoch: u64,
}

/// The application stages' sections of the manifest, each written by its stage's `record`.
#[derive(Debug, Default)]
pub struct StageSections {
    pub server: Option<ServerRecord>,
    pub web: Option<WebRecord>,
}

/// What the later steps read of the manifest.
pub struct Recorded {
    pub input_digest: Sha256,
}

/// Write the manifest and the SBOM into the staged prefix.
pub fn write(staged: &Path, inputs: RecordInputs<'_>) -> Result<Recorded, AssembleError> {
    let recipe = &inputs.loaded.recipe;
    let lock = &inputs.loaded.lock;
    let manifest = PrefixManifest {
        akpkg: env!("CARGO_PKG_VERSION"),
        // The recipe's file name only: a path would name the build machine.
        recipe: format!(
            "{} {} ({})",
            recipe.name,
            recipe.version,
            Path::new(&inputs.loaded.origin)
                .file_name()
                .map_or_else(String::new, |name| name.to_string_lossy().into_owned())
        ),
        source: ManifestSource {
            commit: recipe.source.commit.clone(),
            recipe_tree: recipe.source.tree.clone(),
            tree: inputs.source_tree.to_string(),
            verified: *inputs.source_tree == recipe.source.tree,
        },
        target: serde_json::json!({
            "python-version": lock.target.python_version,
            "platform": lock.target.platform,
        }),
        runtime_python: inputs.runtime_python.clone(),
        settings_module: recipe.settings_module.as_deref(),
        verify_environment: &recipe.verify_environment,
        distributions: inputs
            .installed
            .iter()
            .map(|(wheel, distribution)| distribution_entry(wheel, distribution, inputs.built))
            .collect(),
        patches: inputs
            .applied
            .iter()
            .map(|patch| serde_json::json!({ "patch": patch.origin, "sha256": patch.sha256, "files": patch.files }))
            .collect(),
        shared_files: inputs.shared_files,
        warnings: inputs.warnings,
        input_digest: inputs.input_digest.clone(),
        server: inputs.sections.server.clone(),
        web: inputs.sections.web.clone(),
        native: native_manifest(inputs.native, inputs.closure),
        source_date_epoch: inputs.source_date_epoch,
    };
    let staging = Contained::open(staged)?;
    write_json(&staging, MANIFEST, &manifest)?;
    let sbom = inputs_for_sbom(&manifest, &inputs).map_err(|source| AssembleError::Json {
        path: staging.path(Path::new(SBOM)),
        source,
    })?;
    write_json(&staging, SBOM, &sbom)?;
    Ok(Recorded {
        input_digest: manifest.input_digest,
    })
}

/// A distribution's manifest entry: what it is and how its wheel was obtained.
fn distribution_entry(
    wheel: &WheelToInstall,
    distribution: &InstalledDistribution,
    built: &[BuiltWheel],
) -> serde_json::Value {
    let how = built
        .iter()
        .find(|built| {
            wheel
                .sha256
                .as_ref()
                .is_some_and(|sha256| built.sha256 == *sha256)
        })
        .map_or("wheel".to_string(), |built| {
            format!("built ({}) from {}", built.backend, built.source)
        });
    serde_json::json!({
        "name": distribution.name.to_string(),
        "version": distribution.version.to_string(),
        "wheel-sha256": wheel.sha256,
        "obtained": how,
    })
}

/// The SBOM document of a recorded prefix.
fn inputs_for_sbom(
    manifest: &PrefixManifest<'_>,
    inputs: &RecordInputs<'_>,
) -> Result<sbom::Bom, serde_json::Error> {
    let recipe = &inputs.loaded.recipe;
    let versions: Vec<String> = inputs
        .installed
        .iter()
        .map(|(_, distribution)| distribution.version.to_string())
        .collect();
    let components: Vec<sbom::SbomComponent<'_>> = inputs
        .installed
        .iter()
        .zip(&versions)
        .map(|((wheel, distribution), version)| sbom::SbomComponent {
            name: distribution.name.as_ref(),
            version,
            wheel_sha256: wheel.sha256.as_deref().unwrap_or_default(),
        })
        .collect();
    let server = manifest.server.as_ref().map(|record| sbom::SbomServer {
        binary: &record.binary,
        sha256: record.sha256.as_str(),
        go: &record.go,
        modules: &record.modules,
        api_client: record.api_client.as_ref(),
    });
    let source_tree = inputs.source_tree.to_string();
    sbom::sbom(
        &inputs.loaded.lock,
        sbom::SbomInputs {
            application: (&recipe.name, &recipe.version),
            source_tree: &source_tree,
            components: &components,
            server: server.as_ref(),
            web: manifest.web.as_ref(),
            patches: inputs.applied,
            closure: inputs.closure,
            timestamp: crate::timestamp::rfc3339(inputs.source_date_epoch),
        },
    )
}

/// The manifest's `native`: the ELF files and the Debian packages (names only: versions vary
/// between builders of the same release) a runtime image must install for them; for a
/// self-contained prefix, its interpreter and the libraries grafted into it, with the
/// packages and versions they came from.
fn native_manifest(
    audit: &NativeAudit,
    closure: &crate::closure::ClosureReport,
) -> serde_json::Value {
    let mut native = serde_json::json!({
        "elf-files": audit.elf_files,
        "debian-packages": audit.packages(),
        "unresolved": audit.unresolved.keys().collect::<Vec<_>>(),
        "self-contained": closure.self_contained,
    });
    if closure.self_contained {
        native["interpreter"] = serde_json::json!(closure.interpreter);
        native["grafted"] = serde_json::json!(closure.grafted);
    }
    native
}

/// `value` as pretty JSON, ending in a newline, at `name` in the staged prefix.
fn write_json(
    staging: &Contained,
    name: &str,
    value: &impl Serialize,
) -> Result<(), AssembleError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| AssembleError::Json {
        path: staging.path(Path::new(name)),
        source,
    })?;
    text.push('\n');
    staging.write(
        Path::new(name),
        text.as_bytes(),
        FileMode::Regular,
        Existing::Replace,
    )?;
    Ok(())
}
