//! Everything a lock pins, fetched into the cache and, when asked, written as a bundle for a
//! machine with no network: what `akpkg fetch` runs.

use std::path::Path;

use crate::fetch::{
    DownloadProgress, FetchOptions, FetchedArtifact, GitCheckout, GitRequest, GoModuleTree,
    NpmTarballs,
};
use crate::lock::{LockedGo, LockedNpmPackage, LockedWeb};

use super::{FetchSet, PipelineError};

/// What [`fetch_inputs`] brought into the cache.
pub struct FetchedInputs {
    pub artifacts: Vec<FetchedArtifact>,
    pub git: Vec<(GitRequest, GitCheckout)>,
    /// The Go server's module files, as the lock's go.sum pins them.
    pub go_modules: Option<GoModuleTree>,
    /// The web UI's npm packages and their tarballs, checked by sha512.
    pub npm: Option<(Vec<LockedNpmPackage>, NpmTarballs)>,
}

/// Fetch, verified, every artifact and git source of `fetch_set`, and what the lock's Go server
/// and web UI read: their generators' jars (artifacts like the wheels, by sha256), the npm
/// tarballs and the Go modules.
pub fn fetch_inputs(
    fetch_set: FetchSet,
    go: Option<&LockedGo>,
    web: Option<&LockedWeb>,
    options: &FetchOptions,
    progress: &dyn DownloadProgress,
) -> Result<FetchedInputs, PipelineError> {
    let FetchSet {
        artifacts: mut requests,
        git: git_requests,
    } = fetch_set;
    let web_generator = web.and_then(|web| web.generator.as_ref());
    let go_generator = go
        .and_then(|go| go.api_client.as_ref())
        .map(|client| &client.generator);
    for generator in web_generator.into_iter().chain(go_generator) {
        requests.push(crate::fetch::jar_request(generator)?);
    }
    let artifacts = crate::fetch::fetch_all(&requests, options, progress)?;
    let npm = match web {
        Some(web) => {
            let packages: Vec<LockedNpmPackage> = web
                .packages
                .iter()
                .map(|package| package.package())
                .collect();
            let tarballs = crate::fetch::fetch_npm_tarballs(&packages, options)?;
            Some((packages, tarballs))
        }
        None => None,
    };
    let checkouts = crate::fetch::fetch_git_sources(&git_requests, options)?;
    let go_modules = match go {
        Some(go) => Some(crate::fetch::fetch_go_modules(
            go,
            options,
            crate::fetch::Unavailable::Fail,
        )?),
        None => None,
    };
    Ok(FetchedInputs {
        artifacts,
        git: git_requests.into_iter().zip(checkouts).collect(),
        go_modules,
        npm,
    })
}

/// Write `fetched` as a bundle into `destination`; the bundle's manifest last, which marks it
/// complete.
pub fn write_bundle(
    fetched: &FetchedInputs,
    go: Option<&LockedGo>,
    destination: &Path,
) -> Result<(), PipelineError> {
    if let (Some(go), Some(tree)) = (go, &fetched.go_modules) {
        crate::fetch::write_bundle_tree(go, tree, destination)?;
    }
    if let Some((packages, tarballs)) = &fetched.npm {
        crate::fetch::write_bundle_npm(packages, tarballs, destination)?;
    }
    crate::fetch::write_bundle(&fetched.artifacts, &fetched.git, destination)?;
    Ok(())
}
