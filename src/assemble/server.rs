//! The recipe's Go server as an application stage ([`super::stage::AppStage`]): whether to
//! build it and with which go (step 1), its modules fetched (5), built from the patched tree
//! (6), placed in `bin/` (8), and what the manifest says of it (10).

use std::path::Path;

use super::stage::{AppStage, Fetch, Report, Step};
use super::{
    AssembleError, AssembleOptions, AssembleSummary, LoadedRecipe, ServerSummary, Warnings,
};
use crate::fetch::GoModuleTree;
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

/// The server stage of a run whose recipe has one (and no `--no-server`).
pub(super) fn stage<'a>(
    loaded: &'a LoadedRecipe,
    options: &AssembleOptions,
) -> Result<Option<Box<dyn AppStage + 'a>>, AssembleError> {
    Ok(plan(loaded, options)?.map(|plan| {
        Box::new(ServerStage {
            plan,
            modules: None,
            from_remote_cache: false,
            built: None,
            binary: None,
            record: None,
        }) as Box<dyn AppStage + 'a>
    }))
}

/// The server stage: its plan, then what each step made.
struct ServerStage<'a> {
    plan: ServerPlan<'a>,
    modules: Option<GoModuleTree>,
    from_remote_cache: bool,
    built: Option<BuiltServer>,
    /// `bin/authentik`, relative to the prefix.
    binary: Option<String>,
    record: Option<ServerRecord>,
}

impl AppStage for ServerStage<'_> {
    fn toolchain(&self) -> Option<(&'static str, &str)> {
        Some(("go", &self.plan.toolchain.version))
    }

    fn fetch(&mut self, step: Step<'_>, fetch: Fetch<'_>) -> Result<Option<String>, AssembleError> {
        let (tree, from_remote_cache) = fetch_modules(&self.plan, step, fetch)?;
        let detail = format!("{} Go module files, {} fetched", tree.files, tree.fetched);
        self.modules = Some(tree);
        self.from_remote_cache = from_remote_cache;
        Ok(Some(detail))
    }

    fn build(&mut self, step: Step<'_>, report: Report<'_, '_>) -> Result<(), AssembleError> {
        let Some(tree) = &self.modules else {
            return Ok(());
        };
        report.stages.start("server", None);
        let built = build(&self.plan, step, &tree.directory)?;
        report.stages.finish(
            "server",
            format!(
                "{} ({}, {} Go modules{})",
                self.plan.recipe.package,
                self.plan.toolchain.version,
                built.modules.len(),
                super::build_cache_note(built.from_cache)
            ),
        );
        self.built = Some(built);
        Ok(())
    }

    fn place(&mut self, step: Step<'_>, _warnings: &mut Warnings<'_>) -> Result<(), AssembleError> {
        if let Some(built) = &self.built {
            self.binary = Some(place(&self.plan, built, step.staged)?);
        }
        Ok(())
    }

    fn record(&mut self, sections: &mut super::record::StageSections) -> Result<(), AssembleError> {
        if let (Some(built), Some(binary)) = (&self.built, &self.binary) {
            let record = record(&self.plan, built, binary.clone())?;
            sections.server = Some(record.clone());
            self.record = Some(record);
        }
        Ok(())
    }

    fn summarize(&self, summary: &mut AssembleSummary) {
        let (Some(record), Some(built)) = (&self.record, &self.built) else {
            return;
        };
        summary.server = Some(ServerSummary {
            binary: record.binary.clone(),
            go: record.go.clone(),
            modules: record.modules.len(),
            from_cache: built.from_cache,
            from_remote_cache: self.from_remote_cache,
        });
    }
}

/// Build the server from the patched tree (or take it from the build cache).
fn build(
    plan: &ServerPlan,
    step: Step<'_>,
    module_tree: &Path,
) -> Result<BuiltServer, AssembleError> {
    let remote_cache = step.run.options.fetch.remote_cache();
    let source_key = source_key(step.source.tree, step.source.applied);
    let request = build_request(plan, step, module_tree, &source_key, remote_cache.as_ref());
    Ok(server::build(&request)?)
}

/// The server stage's request of the Go server build.
fn build_request<'a>(
    plan: &'a ServerPlan,
    step: Step<'a>,
    module_tree: &'a Path,
    source_key: &'a str,
    remote_cache: Option<&'a crate::registry::RemoteCache>,
) -> ServerBuild<'a> {
    let options = step.run.options;
    ServerBuild {
        source: step.source.root,
        recipe: plan.recipe,
        go: plan.go,
        module_tree,
        source_key,
        cache: &options.build.cache,
        toolchain: &plan.toolchain,
        remote_cache,
        api_client: plan.api_client.clone(),
        source_date_epoch: options.build.source_date_epoch,
    }
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
fn fetch_modules(
    plan: &ServerPlan,
    step: Step<'_>,
    fetch: Fetch<'_>,
) -> Result<(GoModuleTree, bool), AssembleError> {
    let remote_cache = step.run.options.fetch.remote_cache();
    let source_key = source_key(step.source.tree, step.source.applied);
    // The module tree is not read: the key covers go.sum, not the module files.
    let request = build_request(
        plan,
        step,
        Path::new(""),
        &source_key,
        remote_cache.as_ref(),
    );
    let Some(from_remote_cache) = server::finished_or_pulled(&request)? else {
        let tree = crate::fetch::fetch_go_modules(
            plan.go,
            fetch.options,
            crate::fetch::Unavailable::Fail,
        )?;
        if let Some(client) = &plan.api_client {
            let jar = crate::fetch::jar_request(&client.locked.generator)?;
            crate::fetch::fetch_all(&[jar], fetch.options, fetch.downloads)?;
        }
        return Ok((tree, false));
    };
    let files = plan
        .go
        .modules
        .iter()
        .map(|module| usize::from(module.zip.is_some()) + usize::from(module.go_mod.is_some()))
        .sum();
    let tree = GoModuleTree {
        directory: std::path::PathBuf::new(),
        fetched: 0,
        files,
        unavailable: Vec::new(),
    };
    Ok((tree, from_remote_cache))
}

/// Copy the binary into the staged prefix's `bin/`; returns its path there.
fn place(plan: &ServerPlan, built: &BuiltServer, staged: &Path) -> Result<String, AssembleError> {
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
fn record(
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
