//! The assemble steps of the recipe's Go server: whether to build it, building it from the
//! patched tree, placing it in `bin/`, and what the manifest says of it.

use std::path::Path;

use super::{AssembleError, AssembleOptions, LoadedRecipe};
use crate::identity::{Sha256, TreeId};
use crate::lock::LockedGo;
use crate::server::{
    self, BuiltServer, ClientGeneration, GoApiClientChoice, ServerBuild, ServerError, ServerRecipe,
    Toolchain,
};

/// A server this assemble builds: the recipe's, the lock's pins, and a go command new enough.
pub struct ServerPlan<'a> {
    pub recipe: &'a ServerRecipe,
    pub go: &'a LockedGo,
    pub toolchain: Toolchain,
    /// The API client it generates (the jar is fetched by the fetch step).
    pub api_client: Option<ClientGeneration<'a>>,
}

/// The API client to generate, with java checked, unless the recipe has none or
/// `--go-api-client locked` takes the published module (which the lock must then pin).
fn plan_api_client<'a>(
    recipe: &'a ServerRecipe,
    go: &'a LockedGo,
    choice: GoApiClientChoice,
    options: &AssembleOptions,
) -> Result<Option<ClientGeneration<'a>>, ServerError> {
    let Some(client) = &recipe.api_client else {
        return Ok(None);
    };
    if choice == GoApiClientChoice::Locked {
        if go.modules.iter().any(|module| module.path == client.module) {
            return Ok(None);
        }
        return Err(ServerError::ApiClientModuleNotLocked {
            module: client.module.to_string(),
        });
    }
    let locked = go
        .api_client
        .as_ref()
        .ok_or(ServerError::ApiClientNotLocked)?;
    ClientGeneration::new(client, locked, &options.fetch.cache).map(Some)
}

/// The server to build, if the recipe has one and `--no-server` was not given; the go command
/// is checked here, before anything is fetched.
pub fn plan<'a>(
    loaded: &'a LoadedRecipe,
    options: &AssembleOptions,
) -> Result<Option<ServerPlan<'a>>, AssembleError> {
    let Some(recipe) = loaded
        .recipe
        .server
        .as_ref()
        .filter(|_| options.server.build)
    else {
        return Ok(None);
    };
    let go = loaded.lock.go.as_ref().ok_or_else(|| {
        AssembleError::Recipe(
            "the recipe builds a Go server ([server]), but akpkg's lock has no [go] section; lock again with --source, which reads go.mod and go.sum (or give --no-server)"
                .to_string(),
        )
    })?;
    let toolchain = match &options.server.toolchain {
        Some(toolchain) => toolchain.clone(),
        None => server::find_toolchain(recipe, go, options.server.go_command.as_deref())?,
    };
    let api_client = plan_api_client(recipe, go, options.server.api_client, options)?;
    Ok(Some(ServerPlan {
        recipe,
        go,
        toolchain,
        api_client,
    }))
}

/// Build the server from the patched tree (or take it from the build cache).
pub fn build(
    plan: &ServerPlan,
    source: &Path,
    source_tree: &TreeId,
    applied: &[crate::patch::PatchReport],
    module_tree: &Path,
    options: &AssembleOptions,
) -> Result<BuiltServer, AssembleError> {
    let source_key = source_key(source_tree, applied);
    Ok(server::build(&ServerBuild {
        source,
        recipe: plan.recipe,
        go: plan.go,
        module_tree,
        source_key: &source_key,
        cache: &options.build.cache,
        toolchain: &plan.toolchain,
        remote_cache: options.fetch.remote_cache().as_ref(),
        api_client: plan.api_client.clone(),
        source_date_epoch: options.build.source_date_epoch,
    })?)
}

/// What identifies the patched files: the tree id and the patches, in order.
fn source_key(source_tree: &TreeId, applied: &[crate::patch::PatchReport]) -> String {
    let patches: Vec<&str> = applied.iter().map(|patch| patch.sha256.as_str()).collect();
    format!("{source_tree} {}", patches.join(" "))
}

/// The server's Go modules, fetched and checked against go.sum; unless the binary is in the
/// build cache already or the remote cache has it (then it is brought into the build cache),
/// since only its build reads them: then the tree is left empty and counts the files the lock
/// pins. The flag says whether the binary came from the remote cache.
pub fn fetch_modules(
    plan: &ServerPlan,
    source: &Path,
    source_tree: &TreeId,
    applied: &[crate::patch::PatchReport],
    options: &AssembleOptions,
    fetch_options: &crate::fetch::FetchOptions,
    progress: &dyn crate::fetch::DownloadProgress,
) -> Result<(crate::fetch::GoModuleTree, bool), AssembleError> {
    let Some(from_remote_cache) = finished_or_pulled(plan, source, source_tree, applied, options)?
    else {
        let tree = crate::fetch::fetch_go_modules(
            plan.go,
            fetch_options,
            crate::fetch::Unavailable::Fail,
        )?;
        if let Some(client) = &plan.api_client {
            let jar = crate::fetch::jar_request(&client.locked.generator)?;
            crate::fetch::fetch_all(&[jar], fetch_options, progress)?;
        }
        return Ok((tree, false));
    };
    let files = plan
        .go
        .modules
        .iter()
        .map(|module| usize::from(module.zip.is_some()) + usize::from(module.go_mod.is_some()))
        .sum();
    let tree = crate::fetch::GoModuleTree {
        directory: std::path::PathBuf::new(),
        fetched: 0,
        files,
        unavailable: Vec::new(),
    };
    Ok((tree, from_remote_cache))
}

/// Whether the binary is in the build cache already, or was just brought there from the remote
/// cache (`Some(true)`).
fn finished_or_pulled(
    plan: &ServerPlan,
    source: &Path,
    source_tree: &TreeId,
    applied: &[crate::patch::PatchReport],
    options: &AssembleOptions,
) -> Result<Option<bool>, AssembleError> {
    Ok(server::finished_or_pulled(&ServerBuild {
        source,
        recipe: plan.recipe,
        go: plan.go,
        // Not read: the key covers go.sum, not the module files.
        module_tree: Path::new(""),
        source_key: &source_key(source_tree, applied),
        cache: &options.build.cache,
        toolchain: &plan.toolchain,
        remote_cache: options.fetch.remote_cache().as_ref(),
        api_client: plan.api_client.clone(),
        source_date_epoch: options.build.source_date_epoch,
    })?)
}

/// Copy the binary into the staged prefix's `bin/`; returns its path there.
pub fn place(
    plan: &ServerPlan,
    built: &BuiltServer,
    staged: &Path,
) -> Result<String, AssembleError> {
    let relative = Path::new("bin").join(plan.recipe.binary_name()?.as_str());
    let staging = crate::contained::Contained::open(staged)?;
    staging.create_dir_all(Path::new("bin"))?;
    staging.place(&built.path, &relative, crate::contained::LinkMode::Copy)?;
    Ok(relative.display().to_string())
}

/// The manifest's `server`: the binary, its hash, how it was built and every linked module.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServerRecord {
    /// Relative to the prefix (`bin/authentik`).
    pub binary: String,
    pub sha256: Sha256,
    pub package: String,
    pub go: String,
    pub target: String,
    pub environment: std::collections::BTreeMap<String, String>,
    pub go_sum_sha256: Sha256,
    pub modules: Vec<crate::server::LinkedModule>,
    /// The API client generated in place of a module, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_client: Option<crate::lock::LockedGoApiClient>,
}

/// The record of the server placed at `binary`.
pub fn record(
    plan: &ServerPlan,
    built: &BuiltServer,
    binary: String,
) -> Result<ServerRecord, AssembleError> {
    let sha256 =
        Sha256::of_file(&built.path).map_err(AssembleError::io("cannot read", &built.path))?;
    Ok(ServerRecord {
        binary,
        sha256,
        package: plan.recipe.package.clone(),
        go: plan.toolchain.version.clone(),
        target: format!("{}/{}", plan.toolchain.goos, plan.toolchain.goarch),
        environment: plan.recipe.environment.clone(),
        go_sum_sha256: plan.go.go_sum_sha256.clone(),
        modules: built.modules.clone(),
        api_client: plan.api_client.as_ref().map(|client| client.locked.clone()),
    })
}
