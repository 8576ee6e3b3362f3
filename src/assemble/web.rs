//! The recipe's web UI as an application stage ([`super::stage::AppStage`]): whether to build
//! it and with which java (step 3), its pins fetched (5), built from the patched tree (6),
//! placed, or `--web-dist` copied in its stead (8), and what the manifest says of it (10).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::run::Run;
use super::stage::{AppStage, Fetch, Report, Step};
use super::{AssembleError, AssembleOptions, AssembleSummary, LoadedRecipe, Warnings, WebSummary};
use crate::fetch::{self, NpmTarballs};
use crate::identity::{NpmIntegrity, Sha256};
use crate::lock::LockedNpmPackage;
use crate::web::{self, ApiClientChoice, BuiltWeb, OverrideSource, WebRecipe};

/// Whether and how to build the recipe's web UI.
#[derive(Debug, Clone, Default)]
pub struct WebChoice {
    /// Build it when the recipe has one and no `--web-dist` was given (`--no-web`).
    pub build: bool,
    /// `--api-client`.
    pub api_client: ApiClientChoice,
}

/// A web UI this assemble builds: the recipe's, and java when the client is generated.
pub struct WebPlan<'a> {
    pub recipe: &'a WebRecipe,
    pub java: Option<PathBuf>,
    pub api_client: ApiClientChoice,
}

/// The web stage: every run has it, since it also copies `--web-dist` and says when the prefix
/// gets no web UI at all.
pub(super) fn stage<'a>(loaded: &'a LoadedRecipe) -> Option<Box<dyn AppStage + 'a>> {
    Some(Box::new(WebStage {
        loaded,
        plan: None,
        inputs: None,
        built: None,
        record: None,
    }))
}

/// The web stage: its plan (made in step 3), then what each step made.
struct WebStage<'a> {
    loaded: &'a LoadedRecipe,
    /// `None` when nothing is built: no web UI in the recipe, `--no-web` or `--web-dist`.
    plan: Option<WebPlan<'a>>,
    inputs: Option<WebInputs>,
    built: Option<BuiltWeb>,
    record: Option<WebRecord>,
}

impl AppStage for WebStage<'_> {
    fn check(&mut self, run: Run<'_>) -> Result<(), AssembleError> {
        self.plan = plan(self.loaded, run.options)?;
        Ok(())
    }

    fn fetch(&mut self, step: Step<'_>, fetch: Fetch<'_>) -> Result<Option<String>, AssembleError> {
        let Some(plan) = &self.plan else {
            return Ok(None);
        };
        let inputs = fetch_inputs(plan, step, self.loaded, fetch.downloads)?;
        let detail = format!(
            "{} npm tarballs, {} downloaded",
            inputs.tarballs.tarballs, inputs.tarballs.downloaded
        );
        self.inputs = Some(inputs);
        Ok(Some(detail))
    }

    fn build(&mut self, step: Step<'_>, report: Report<'_, '_>) -> Result<(), AssembleError> {
        let (Some(plan), Some(inputs)) = (&self.plan, &self.inputs) else {
            return Ok(());
        };
        report.stages.start("web", None);
        let built = build(plan, inputs, step, self.loaded)?;
        for warning in &built.warnings {
            report.warnings.push(warning.to_string());
        }
        report.stages.finish(
            "web",
            format!(
                "{} npm packages, {} overrides{}",
                inputs.packages.len(),
                built.overrides.len(),
                super::build_cache_note(built.from_cache)
            ),
        );
        self.built = Some(built);
        Ok(())
    }

    fn place(&mut self, step: Step<'_>, warnings: &mut Warnings<'_>) -> Result<(), AssembleError> {
        let staged = step.staged;
        if let Some(web_dist) = &step.run.options.web_dist {
            let to = staged.join("web/dist");
            fs_err::create_dir_all(&to).map_err(AssembleError::io("cannot create", &to))?;
            crate::archive::copy_tree(web_dist, &to, &[])?;
            return Ok(());
        }
        let (Some(plan), Some(inputs), Some(built)) = (&self.plan, &self.inputs, &self.built)
        else {
            warnings.push(
                "no web UI assets (web/dist): the recipe builds none or --no-web was given; give --web-dist DIR with a built web UI. The API and workers work without it".to_string(),
            );
            return Ok(());
        };
        let placed = place(plan, built, staged)?;
        self.record = Some(record(plan, inputs, built, placed));
        Ok(())
    }

    fn record(&mut self, sections: &mut super::record::StageSections) -> Result<(), AssembleError> {
        sections.web = self.record.clone();
        Ok(())
    }

    fn summarize(&self, summary: &mut AssembleSummary) {
        if let Some(inputs) = &self.inputs {
            summary.downloaded += inputs.tarballs.downloaded;
        }
        let (Some(record), Some(built)) = (&self.record, &self.built) else {
            return;
        };
        summary.web = Some(WebSummary {
            output: record.output.clone(),
            files: record.files,
            packages: record.packages.len(),
            overrides: record.overrides.len(),
            from_cache: built.from_cache,
            from_remote_cache: self
                .inputs
                .as_ref()
                .is_some_and(|inputs| inputs.from_remote_cache),
        });
    }
}

/// The web UI to build, if any; java is checked here, before anything is fetched.
pub fn plan<'a>(
    loaded: &'a LoadedRecipe,
    options: &AssembleOptions,
) -> Result<Option<WebPlan<'a>>, AssembleError> {
    let Some(recipe) = loaded.recipe.web.as_ref() else {
        return Ok(None);
    };
    if !options.web.build || options.web_dist.is_some() {
        return Ok(None);
    }
    let generated = recipe
        .overrides
        .iter()
        .find(|entry| entry.source().ok() == Some(OverrideSource::ApiClient));
    let java = match (generated, options.web.api_client) {
        (Some(entry), ApiClientChoice::Generate) => Some(web::find_java(&entry.package)?),
        _ => None,
    };
    Ok(Some(WebPlan {
        recipe,
        java,
        api_client: options.web.api_client,
    }))
}

/// What the fetch step gave the web build.
pub struct WebInputs {
    pub lock_sha256: Sha256,
    pub packages: Vec<LockedNpmPackage>,
    pub tarballs: NpmTarballs,
    pub jar: Option<PathBuf>,
    /// The build was brought from the remote cache while fetching (so nothing was fetched).
    pub from_remote_cache: bool,
}

/// Fetch every tarball of the project's package-lock, Node, npm, the registry overrides and
/// the generator's jar, each checked before it is kept; unless the build they feed is in the
/// build cache already, or the remote cache has it.
fn fetch_inputs(
    plan: &WebPlan,
    step: Step<'_>,
    loaded: &LoadedRecipe,
    progress: &dyn fetch::DownloadProgress,
) -> Result<WebInputs, AssembleError> {
    let options = step.run.options;
    let source = step.source.root;
    let locked = loaded.lock.web.as_ref();
    let git_build_hash = loaded.recipe.source.commit.as_deref();
    let fetch_options = &options.fetch;
    let project_lock = web::locked_packages(source, plan.recipe, plan.api_client)?;
    web::check_package_lock(&project_lock, locked)?;
    let web::ProjectLock {
        sha256: lock_sha256,
        packages,
        ..
    } = project_lock;
    let mut downloads = packages.clone();
    downloads.extend(web::extra_downloads(plan.recipe));
    let jar_request = match (&plan.recipe.api_client, &plan.java) {
        (Some(client), Some(_)) => Some(fetch::jar_request(&client.generator)?),
        _ => None,
    };
    // Where the jar is (or will be): the generator's presence is part of the build key.
    let jar = jar_request
        .as_ref()
        .map(|request| fetch::ArtifactCache::new(&fetch_options.cache).path(&request.sha256));
    let unfetched = NpmTarballs {
        directory: fetch_options
            .cache
            .bucket(crate::cache::Bucket::Npm)
            .join("sha512"),
        // Distinct tarballs, as the fetch counts them.
        tarballs: downloads
            .iter()
            .map(|package| package.integrity.hex())
            .collect::<std::collections::HashSet<_>>()
            .len(),
        downloaded: 0,
    };
    let available = web::finished_or_pulled(&web::WebBuild {
        source,
        recipe: plan.recipe,
        packages: &packages,
        tarballs: &unfetched,
        generator: jar
            .as_deref()
            .zip(plan.java.clone())
            .map(|(jar, java)| web::Generator { jar, java }),
        cache: &options.build.cache,
        git_build_hash,
        remote_cache: fetch_options.remote_cache().as_ref(),
        source_date_epoch: options.build.source_date_epoch,
        limits: options.fetch.network.limits,
    })?;
    if let Some(from_remote_cache) = available {
        return Ok(WebInputs {
            lock_sha256,
            packages,
            tarballs: unfetched,
            jar,
            from_remote_cache,
        });
    }
    let tarballs = fetch::fetch_npm_tarballs(&downloads, fetch_options)?;
    if let Some(request) = jar_request {
        fetch::fetch_all(&[request], fetch_options, progress)?;
    }
    Ok(WebInputs {
        lock_sha256,
        packages,
        tarballs,
        jar,
        from_remote_cache: false,
    })
}

/// Build the web UI from the patched tree (or take it from the build cache).
fn build(
    plan: &WebPlan,
    inputs: &WebInputs,
    step: Step<'_>,
    loaded: &LoadedRecipe,
) -> Result<BuiltWeb, AssembleError> {
    let options = step.run.options;
    let source = step.source.root;
    let git_build_hash = loaded.recipe.source.commit.as_deref();
    let generator = match (&inputs.jar, &plan.java) {
        (Some(jar), Some(java)) => Some(web::Generator {
            jar,
            java: java.clone(),
        }),
        _ => None,
    };
    Ok(web::build(&web::WebBuild {
        source,
        recipe: plan.recipe,
        packages: &inputs.packages,
        tarballs: &inputs.tarballs,
        generator,
        cache: &options.build.cache,
        git_build_hash,
        remote_cache: options.fetch.remote_cache().as_ref(),
        source_date_epoch: options.build.source_date_epoch,
        limits: options.fetch.network.limits,
    })?)
}

/// Copy the output into the staged prefix at the project's path (`web/dist`); returns that
/// path and the number of files.
fn place(
    plan: &WebPlan,
    built: &BuiltWeb,
    staged: &Path,
) -> Result<(String, usize), AssembleError> {
    // Opened beneath the staged prefix (the recipe's paths are typed relative paths), never
    // joined first.
    let relative = Path::new(plan.recipe.project.as_str()).join(plan.recipe.output.as_str());
    crate::archive::copy_tree_under(&built.output, staged, &relative, &[])?;
    let to = staged.join(&relative);
    let files = walkdir::WalkDir::new(&to)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_file())
        .count();
    Ok((relative.display().to_string(), files))
}

/// One npm package the web UI was built with.
#[derive(Debug, Clone, Serialize)]
pub struct WebPackage {
    pub name: String,
    pub version: String,
    pub integrity: NpmIntegrity,
}

impl From<&web::PinnedPackage> for WebPackage {
    fn from(pinned: &web::PinnedPackage) -> WebPackage {
        WebPackage {
            name: pinned.package.clone(),
            version: pinned.version.clone(),
            integrity: pinned.integrity.clone(),
        }
    }
}

/// The manifest's `web`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct WebRecord {
    /// Relative to the prefix (`web/dist`).
    pub output: String,
    pub files: usize,
    pub build_key: Sha256,
    pub node: WebPackage,
    pub npm: WebPackage,
    pub package_lock_sha256: Sha256,
    /// The generator, when the API client was generated.
    pub generator: Option<crate::lock::LockedJar>,
    pub overrides: Vec<web::ResolvedOverride>,
    pub warnings: Vec<String>,
    /// Every package of the lock, once each, sorted.
    pub packages: Vec<WebPackage>,
}

fn record(
    plan: &WebPlan,
    inputs: &WebInputs,
    built: &BuiltWeb,
    (output, files): (String, usize),
) -> WebRecord {
    let mut packages: Vec<WebPackage> = Vec::new();
    let mut sorted: Vec<&LockedNpmPackage> = inputs.packages.iter().collect();
    sorted.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    for package in sorted {
        if packages
            .last()
            .is_some_and(|last| last.name == package.name && last.integrity == package.integrity)
        {
            continue;
        }
        packages.push(WebPackage {
            name: package.name.clone(),
            version: package.version.clone(),
            integrity: package.integrity.clone(),
        });
    }
    WebRecord {
        output,
        files,
        build_key: built.key.clone(),
        node: (&plan.recipe.node).into(),
        npm: (&plan.recipe.npm).into(),
        package_lock_sha256: inputs.lock_sha256.clone(),
        generator: plan
            .recipe
            .api_client
            .as_ref()
            .filter(|_| inputs.jar.is_some())
            .map(|client| client.generator.clone()),
        overrides: built.overrides.clone(),
        warnings: built.warnings.iter().map(ToString::to_string).collect(),
        packages,
    }
}
