//! akpkg's lock made from a plan, step by step: what `akpkg lock` and `release new` run.

use std::collections::BTreeMap;
use std::path::Path;

use crate::fetch::{DownloadProgress, IndexClient};
use crate::interpreter::Target;
use crate::lock::AkpkgLock;
use crate::pep517::BuildOptions;
use crate::plan::Plan;

use super::{FetchSet, FetchedSources, PipelineError};

/// What a lock is made from.
pub struct LockRequest<'a> {
    pub plan: &'a Plan,
    pub target: &'a Target,
    /// Upstream's lock (uv.lock, pylock.toml, …) the plan was read from.
    pub source_lock: &'a Path,
    /// The project: its workspace members are built, its go.mod and web UI locked.
    pub project_directory: &'a Path,
    /// The recipe's Go server and web UI, when it has them.
    pub server: Option<&'a crate::server::ServerRecipe>,
    pub web: Option<&'a crate::web::WebRecipe>,
    pub options: &'a BuildOptions,
    /// Record the Go server's generated API client (`[go.api-client]`) rather than pin the
    /// published module from go.sum.
    pub generate_go_api_client: bool,
    /// The go command, when not `go` on PATH.
    pub go: Option<&'a Path>,
    pub progress: &'a dyn DownloadProgress,
}

/// akpkg's lock of `request`:
/// 1. every artifact and git source of the plan, fetched and verified;
/// 2. each distribution to build, and its environment resolved and checked with its backend;
/// 3. the Go server's modules (only those its build reads) and the web UI's packages;
/// 4. all of it as one lock (not yet written: see [`super::write_lock_file`]).
pub fn lock<E>(
    request: &LockRequest<'_>,
    config_settings: impl Fn(&str) -> Result<BTreeMap<String, serde_json::Value>, E>,
) -> Result<AkpkgLock, E>
where
    E: From<PipelineError>,
{
    let fetch = &request.options.fetch;
    // 1. Every artifact and git source, fetched and verified.
    let index = IndexClient::new(fetch).map_err(PipelineError::from)?;
    let fetch_set = FetchSet::of_plan(request.plan, Some((&index, request.target)))?;
    let artifacts = crate::fetch::fetch_all(&fetch_set.artifacts, fetch, request.progress)
        .map_err(PipelineError::from)?;
    let checkouts =
        crate::fetch::fetch_git_sources(&fetch_set.git, fetch).map_err(PipelineError::from)?;

    // 2. Each distribution to build, and its environment.
    let sources = FetchedSources {
        fetch_set: &fetch_set,
        artifacts: &artifacts,
        checkouts: &checkouts,
        project_directory: request.project_directory,
    };
    let builds = super::build_set(request.plan, &sources, config_settings)?;
    let builds = super::lock_build_environments(&builds, request.target, request.options, &index)?;

    // 3. The Go server's modules and the web UI's packages.
    let go = super::lock_go(
        request.project_directory,
        request.server,
        request.generate_go_api_client,
        fetch,
        request.go,
        request.progress,
        request.options.source_date_epoch,
    )?;
    let web = match request.web {
        Some(web) => {
            Some(crate::web::lock(request.project_directory, web).map_err(PipelineError::from)?)
        }
        None => None,
    };

    // 4. One lock.
    Ok(super::akpkg_lock(super::LockInputs {
        source_lock: request.source_lock,
        target: request.target,
        fetch_set: &fetch_set,
        checkouts: &checkouts,
        builds,
        go,
        web,
    })?)
}
