//! `akpkg fetch` and `akpkg cache verify|clean`.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};

use super::plan::{PlanInputArgs, plan_from_args};
use super::{CacheArgs, CliError, print};
use crate::fetch::{self, ArtifactCache, FetchOptions, Mirror};
use crate::identity::{GitCommit, TreeId};
use crate::pipeline::FetchSet;

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub input: PlanInputArgs,

    #[command(flatten)]
    pub cache: CacheArgs,

    #[command(flatten)]
    pub network: NetworkArgs,

    /// Also write an air-gapped bundle here: every artifact under DIR/artifacts and a manifest
    /// (akpkg-bundle.json). Another machine fetches from it with `--offline --bundle DIR`.
    #[arg(long, value_name = "DIR", help_heading = "Output")]
    pub dest: Option<PathBuf>,

    /// Print the result as one JSON object.
    #[arg(long, help_heading = "Output")]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Downloads and the network")]
pub struct NetworkArgs {
    /// Downloads at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,

    /// Never download: fail, listing every artifact missing from the cache.
    #[arg(long)]
    pub offline: bool,

    /// Fetch URLs that start with FROM from TO instead (repeatable), such as a private mirror of
    /// files.pythonhosted.org.
    #[arg(long, value_name = "FROM=TO")]
    pub mirror: Vec<String>,

    /// Allow plain HTTP to this host (loopback is always allowed).
    #[arg(long, value_name = "HOST")]
    pub allow_insecure_host: Vec<String>,

    /// A simple index (PEP 691 JSON or PEP 503 HTML, such as a static server over a directory
    /// tree) to take each file from, found by its sha256, before the lock's URL (repeatable).
    #[arg(long, value_name = "URL")]
    pub index_url: Vec<String>,

    /// A flat directory of wheels and sdists to take files from by name before the network
    /// (repeatable); each file is still verified against the lock's sha256.
    #[arg(long, value_name = "DIR")]
    pub find_links: Vec<PathBuf>,

    /// An air-gapped bundle written by `akpkg fetch --dest` to take files from.
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,

    /// Take a git source's files from an archive (`.tar`, `.tar.gz` such as a forge's
    /// `archive/<commit>.tar.gz`, or a directory) instead of cloning (repeatable). NAME is the
    /// distribution or the commit id. The files must hash to the commit's pinned tree id.
    #[arg(long, value_name = "NAME=PATH")]
    pub git_archive: Vec<String>,

    /// Pin the tree id of a git commit (repeatable), for archives of commits that no akpkg
    /// lock or bundle pins yet. Get it with `git rev-parse COMMIT^{tree}` in a trusted clone.
    #[arg(long, value_name = "COMMIT=TREE")]
    pub git_tree: Vec<String>,

    /// Attempts after the first for connection errors, timeouts, 429 and 5xx answers.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub retries: u32,

    /// A shared cache in an OCI registry: artifacts and built wheels are looked up there
    /// (by sha256 and by build key) before downloading or building, checked like downloads,
    /// and what it lacks is pushed after. A registry that cannot be reached is warned about
    /// once and the run goes on without it. Credentials as `akpkg push` finds them.
    #[arg(
        long,
        value_name = "oci://HOST[:PORT]/REPOSITORY",
        env = "AKPKG_REMOTE_CACHE"
    )]
    pub remote_cache: Option<String>,

    /// Only pull from the remote cache, never push.
    #[arg(long, env = "AKPKG_REMOTE_CACHE_READ_ONLY", requires = "remote_cache")]
    pub remote_cache_read_only: bool,

    /// Sign the build outputs pushed to the remote cache (built wheels, the Go server, the
    /// web UI) with this secret key file (`akpkg cache keygen` writes one). Without it only
    /// artifacts pinned by the lock are pushed.
    #[arg(
        long,
        value_name = "FILE",
        env = "AKPKG_REMOTE_CACHE_SIGNING_KEY",
        requires = "remote_cache"
    )]
    pub remote_cache_signing_key: Option<PathBuf>,

    /// Take build outputs from the remote cache only when this key signed them
    /// (`NAME:BASE64`, as `akpkg cache keygen` prints it; repeatable). Without a trusted key
    /// every build output is built here; artifacts are always checked by the lock's sha256.
    #[arg(long, value_name = "NAME:KEY", requires = "remote_cache")]
    pub remote_cache_trusted_key: Vec<String>,

    /// A file of trusted keys for the remote cache, one `NAME:BASE64` a line.
    #[arg(
        long,
        value_name = "FILE",
        env = "AKPKG_REMOTE_CACHE_TRUSTED_KEYS",
        requires = "remote_cache"
    )]
    pub remote_cache_trusted_keys: Option<PathBuf>,

    /// A Go module proxy to take the server's modules from (repeatable, asked in order; one
    /// that lacks a module is passed over, as with GOPROXY lists): `https://…`, or `file://DIR`
    /// for a proxy-shaped directory. Every file is checked against go.sum. Default: GOPROXY's
    /// URLs, else https://proxy.golang.org.
    #[arg(long, value_name = "URL")]
    pub go_proxy: Vec<String>,
}

/// GOPROXY's URLs (it is a list; `direct` and `off` are not proxies).
fn go_proxies_from_environment() -> Vec<String> {
    let list = std::env::var("GOPROXY").unwrap_or_default();
    list.split([',', '|'])
        .map(str::trim)
        .filter(|entry| {
            ["https://", "http://", "file://"]
                .iter()
                .any(|scheme| entry.starts_with(scheme))
        })
        .map(str::to_string)
        .collect()
}

impl NetworkArgs {
    pub fn options(&self, cache: &CacheArgs) -> Result<FetchOptions, CliError> {
        let mirrors = self
            .mirror
            .iter()
            .map(|text| {
                pair(text, "--mirror", "FROM=TO").map(|(from, to)| Mirror {
                    from: from.to_string(),
                    to: to.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        let mut local_sources = self.find_links.clone();
        let mut git_archives: Vec<fetch::GitArchive> = self
            .git_archive
            .iter()
            .map(|text| {
                pair(text, "--git-archive", "NAME=PATH").map(|(key, path)| fetch::GitArchive {
                    key: key.to_string(),
                    path: PathBuf::from(path),
                })
            })
            .collect::<Result<_, _>>()?;
        let mut go_bundle = None;
        let mut npm_bundle = None;
        let mut git_trees = std::collections::BTreeMap::new();
        for text in &self.git_tree {
            let (commit, tree) = pair(text, "--git-tree", "COMMIT=TREE")?;
            let identity = |error: crate::identity::IdentityError| {
                CliError::Usage(format!("--git-tree {text}: {error}"))
            };
            git_trees.insert(
                commit.parse::<GitCommit>().map_err(identity)?,
                tree.parse::<TreeId>().map_err(identity)?,
            );
        }
        if let Some(bundle) = &self.bundle {
            if !bundle.join(fetch::BUNDLE_MANIFEST).is_file() {
                return Err(CliError::Usage(format!(
                    "{} is not a complete bundle: it has no {}",
                    bundle.display(),
                    fetch::BUNDLE_MANIFEST
                )));
            }
            local_sources.push(bundle.join("artifacts"));
            go_bundle = Some(bundle.join(fetch::BUNDLE_GO_PROXY)).filter(|tree| tree.is_dir());
            npm_bundle = Some(bundle.join(fetch::BUNDLE_NPM)).filter(|tree| tree.is_dir());
            let sources = fetch::read_bundle(bundle)?;
            git_archives.extend(sources.archives);
            for (commit, tree) in sources.trees {
                git_trees.entry(commit).or_insert(tree);
            }
        }
        Ok(FetchOptions {
            local_sources,
            git_archives,
            git_trees,
            index_urls: self.index_url.clone(),
            network: self.http(),
            offline: self.offline,
            mirrors,
            go_proxies: [self.go_proxy.clone(), go_proxies_from_environment()]
                .into_iter()
                .find(|proxies| !proxies.is_empty())
                .unwrap_or_else(|| vec![fetch::DEFAULT_GO_PROXY.to_string()]),
            go_bundle,
            npm_bundle,
            remote_cache: self.remote_cache()?,
            ..FetchOptions::new(cache.resolve()?)
        })
    }
}

impl NetworkArgs {
    /// How the run talks HTTP.
    fn http(&self) -> crate::http::HttpOptions {
        crate::http::HttpOptions {
            concurrency: self.concurrency.max(1),
            retries: self.retries,
            insecure_hosts: self.allow_insecure_host.clone(),
            limits: super::limits(),
            netrc: crate::http::Netrc::from_environment(),
            ..crate::http::HttpOptions::default()
        }
    }

    /// `--remote-cache` with its keys read.
    fn remote_cache(&self) -> Result<Option<crate::registry::RemoteCacheLocation>, CliError> {
        let Some(text) = &self.remote_cache else {
            return Ok(None);
        };
        let mut location =
            crate::registry::RemoteCacheLocation::parse(text, self.remote_cache_read_only)?;
        if let Some(path) = &self.remote_cache_signing_key {
            location.trust.signing_key =
                Some(std::sync::Arc::new(crate::registry::read_secret_key(path)?));
        }
        for key in &self.remote_cache_trusted_key {
            location
                .trust
                .trusted_keys
                .push(crate::registry::PublicKey::parse(
                    key,
                    "--remote-cache-trusted-key",
                )?);
        }
        if let Some(path) = &self.remote_cache_trusted_keys {
            location
                .trust
                .trusted_keys
                .extend(crate::registry::read_public_keys(path)?);
        }
        Ok(Some(location))
    }
}

/// `KEY=VALUE` with both sides non-empty.
fn pair<'a>(text: &'a str, flag: &str, shape: &str) -> Result<(&'a str, &'a str), CliError> {
    text.split_once('=')
        .filter(|(key, value)| !key.is_empty() && !value.is_empty())
        .ok_or_else(|| CliError::Usage(format!("{flag} {text}: expected {shape}")))
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Re-hash every cached artifact; remove and list those whose bytes do not match.
    Verify(CacheArgs),
    /// Delete the whole cache.
    Clean(CacheArgs),
    /// Make a key pair for signing remote-cache build outputs: writes the secret key file
    /// (owner-only, never replacing one) and prints the public key, `NAME:BASE64`, to give
    /// to consumers as `--remote-cache-trusted-key`.
    Keygen(KeygenArgs),
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The key's name, carried in every signature (letters, digits, '.', '-', '_'), such as
    /// the builder's host name.
    pub name: String,
    /// Where to write the secret key (the file must not exist).
    #[arg(long, value_name = "FILE")]
    pub secret_key: PathBuf,
}

pub fn run(args: FetchArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let mut options = args.network.options(&args.cache)?;
    // akpkg's own lock already names every file, build environments included: no planning.
    let mut go = None;
    let mut web = None;
    let fetch_set = if crate::lock::is_akpkg_lock(&args.input.lock.lock) {
        let lock = crate::lock::AkpkgLock::read(&args.input.lock.lock)?;
        go = lock.go.clone();
        web = lock.web.clone();
        for git in &lock.git {
            options
                .git_trees
                .entry(git.commit.clone())
                .or_insert_with(|| git.tree.clone());
        }
        FetchSet::of_akpkg_lock(&lock)
    } else {
        let (plan, target, _) = plan_from_args(&args.input, &args.cache)?;
        let index = fetch::IndexClient::new(&options)?;
        FetchSet::of_plan(&plan, Some((&index, &target)))?
    };
    let fetched = crate::pipeline::fetch_inputs(
        fetch_set,
        go.as_ref(),
        web.as_ref(),
        &options,
        &super::progress::DownloadBar::new(),
    )?;
    if let Some(destination) = &args.dest {
        crate::pipeline::write_bundle(&fetched, go.as_ref(), destination)?;
    }
    let report = Report {
        artifacts: &fetched.artifacts,
        git: &fetched.git,
        go_modules: fetched.go_modules.as_ref(),
        npm: fetched.npm.as_ref().map(|(_, tarballs)| tarballs),
        cache: options.cache.bucket(crate::cache::Bucket::Artifacts),
        bundle: args.dest.as_deref(),
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        print(&format!("{}\n", report.json()))
    } else {
        print(&report.text())
    }
}

/// What `akpkg fetch` brought, for its summary.
struct Report<'a> {
    artifacts: &'a [fetch::FetchedArtifact],
    git: &'a [(fetch::GitRequest, fetch::GitCheckout)],
    go_modules: Option<&'a fetch::GoModuleTree>,
    npm: Option<&'a fetch::NpmTarballs>,
    cache: PathBuf,
    bundle: Option<&'a std::path::Path>,
    seconds: f64,
}

impl Report<'_> {
    fn downloaded(&self) -> (usize, u64) {
        let downloaded = self.artifacts.iter().filter(|artifact| artifact.downloaded);
        let bytes = downloaded
            .clone()
            .filter_map(|artifact| artifact.request.size)
            .sum();
        (downloaded.count(), bytes)
    }

    fn json(&self) -> serde_json::Value {
        let (downloaded, bytes) = self.downloaded();
        let git: Vec<serde_json::Value> = self
            .git
            .iter()
            .map(|(request, checkout)| {
                serde_json::json!({
                    "name": request.name,
                    "repository": request.repository,
                    "commit": request.commit.to_string(),
                    "tree": checkout.tree_id.to_string(),
                })
            })
            .collect();
        serde_json::json!({
            "event": "summary",
            "artifacts": self.artifacts.len(),
            "cache": self.cache,
            "downloaded": downloaded,
            "bytes": bytes,
            "bundle": self.bundle,
            "git": git,
            "go-module-files": self.go_modules.map(|tree| tree.files),
            "go-module-files-fetched": self.go_modules.map(|tree| tree.fetched),
            "npm-tarballs": self.npm.map(|tarballs| tarballs.tarballs),
            "npm-tarballs-downloaded": self.npm.map(|tarballs| tarballs.downloaded),
            "seconds": self.seconds,
        })
    }

    fn text(&self) -> String {
        let (downloaded, bytes) = self.downloaded();
        let mut summary = format!(
            "{} artifacts in {} ({downloaded} downloaded, {:.1} MB) in {:.1}s\n",
            self.artifacts.len(),
            self.cache.display(),
            bytes as f64 / 1e6,
            self.seconds,
        );
        if let Some(tree) = self.go_modules {
            summary.push_str(&format!(
                "{} Go module files in {} ({} fetched), checked against go.sum\n",
                tree.files,
                tree.directory.display(),
                tree.fetched
            ));
        }
        if let Some(tarballs) = self.npm {
            summary.push_str(&format!(
                "{} npm tarballs in {} ({} downloaded), checked by sha512\n",
                tarballs.tarballs,
                tarballs.directory.display(),
                tarballs.downloaded
            ));
        }
        if let Some(destination) = self.bundle {
            summary.push_str(&format!("bundle written to {}\n", destination.display()));
        }
        for (request, checkout) in self.git {
            summary.push_str(&format!(
                "git {} {} at {}: tree {}\n",
                request.name, request.repository, request.commit, checkout.tree_id
            ));
        }
        summary
    }
}

pub fn run_cache(command: CacheCommand) -> Result<(), CliError> {
    match command {
        CacheCommand::Keygen(args) => {
            let key = crate::registry::SecretKey::generate(&args.name)?;
            crate::registry::write_secret_key(&args.secret_key, &key)?;
            print(&format!("{}\n", key.public()))
        }
        CacheCommand::Verify(cache) => {
            let directory = cache.resolve()?;
            let started = Instant::now();
            let artifacts = ArtifactCache::new(&directory);
            let abandoned = artifacts.remove_abandoned(&super::limits());
            let (checked, corrupt) = artifacts.verify()?;
            let mut report = format!(
                "checked {checked} artifacts in {:.1}s: {} corrupt; removed {abandoned} left by interrupted downloads\n",
                started.elapsed().as_secs_f64(),
                corrupt.len()
            );
            for path in &corrupt {
                report.push_str(&format!("removed {}\n", path.display()));
            }
            print(&report)
        }
        CacheCommand::Clean(cache) => {
            let directory = cache.locate()?.root().to_path_buf();
            // Only a directory akpkg made its cache: `--cache-dir ~` must not delete a home.
            if directory.exists() && !crate::cache::is_marked_cache(&directory) {
                return Err(CliError::Usage(format!(
                    "{} is not an akpkg cache (it has no {} that akpkg writes into its caches); nothing was removed",
                    directory.display(),
                    crate::cache::CACHE_MARKER
                )));
            }
            match fs_err::remove_dir_all(&directory) {
                Ok(()) => print(&format!("removed {}\n", directory.display())),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    print(&format!("{} does not exist\n", directory.display()))
                }
                Err(error) => Err(CliError::Output(error)),
            }
        }
    }
}
