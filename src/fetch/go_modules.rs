//! Go modules as go.sum pins them, into a module proxy tree in the cache.
//!
//! The tree has the module proxy protocol's shape (`PATH/@v/VERSION.mod`, `.zip`, `.info`, with
//! capitals escaped), so the go command reads it with `GOPROXY=file://…` and never reaches the
//! network or the checksum database. A file enters it only after its go.sum hash (Go's
//! `dirhash.Hash1`: a sha256 over the sorted lines `sha256(file)  name`) matched; a bundle
//! carries the same tree. The `.info` files are written here, not downloaded: they hold only the
//! version, which the pin already gives, so nothing unpinned enters the tree.

use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::Digest;

use super::{FetchError, FetchOptions};
use crate::identity::GoSumHash;
use crate::lock::{LockedGo, LockedGoModule};

/// A bundle's module proxy tree.
pub const BUNDLE_GO_PROXY: &str = "go-proxy";

/// The go command refuses module zips larger than this uncompressed (`modzip.MaxZipFile`).
const MAX_UNCOMPRESSED: u64 = 500 << 20;

/// The module proxy used when neither `--go-proxy` nor `GOPROXY` names one.
pub const DEFAULT_GO_PROXY: &str = "https://proxy.golang.org";

/// One file of the tree: what it is and the hash it must have.
#[derive(Debug, Clone)]
struct ProxyFile<'a> {
    module: &'a LockedGoModule,
    kind: FileKind,
    expected: &'a GoSumHash,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Zip,
    GoMod,
}

impl ProxyFile<'_> {
    /// The file's path inside a proxy tree.
    fn relative(&self) -> PathBuf {
        let extension = match self.kind {
            FileKind::Zip => "zip",
            FileKind::GoMod => "mod",
        };
        version_file(self.module, extension)
    }

    fn describe(&self) -> &'static str {
        match self.kind {
            FileKind::Zip => "its files",
            FileKind::GoMod => "its go.mod",
        }
    }
}

fn version_file(module: &LockedGoModule, extension: &str) -> PathBuf {
    Path::new(&module.path.escaped())
        .join("@v")
        .join(format!("{}.{extension}", module.version.escaped()))
}

/// The verified module proxy tree of a lock's Go modules.
#[derive(Debug, Clone)]
pub struct GoModuleTree {
    pub directory: PathBuf,
    /// Files fetched by this run (from the network or a bundle).
    pub fetched: usize,
    /// Files the tree holds for this lock.
    pub files: usize,
    /// Files no proxy had ([`Unavailable::Skip`] only), as `PATH@VERSION (what)`.
    pub unavailable: Vec<String>,
}

/// What to do with a file that no proxy has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Fail: the lock names exactly what the build reads.
    Fail,
    /// Leave it out and list it: go.sum also pins modules the build never reads (older
    /// versions, modules of other commands), which `lock` finds out by asking the go command.
    Skip,
}

impl GoModuleTree {
    /// The proxy tree of `cache`.
    pub fn in_cache(cache: &crate::cache::Cache) -> PathBuf {
        cache.bucket(crate::cache::Bucket::GoProxy)
    }
}

fn files_of(go: &LockedGo) -> Vec<ProxyFile<'_>> {
    let mut files = Vec::new();
    for module in &go.modules {
        if let Some(expected) = &module.go_mod {
            files.push(ProxyFile {
                module,
                kind: FileKind::GoMod,
                expected,
            });
        }
        if let Some(expected) = &module.zip {
            files.push(ProxyFile {
                module,
                kind: FileKind::Zip,
                expected,
            });
        }
    }
    files
}

/// Fetch every module file go.sum pins into the cache's proxy tree (from a bundle's tree, then
/// the module proxy), each checked against its hash before it is placed.
pub fn fetch_go_modules(
    go: &LockedGo,
    options: &FetchOptions,
    unavailable: Unavailable,
) -> Result<GoModuleTree, FetchError> {
    let directory = GoModuleTree::in_cache(&options.cache);
    let files = files_of(go);
    let missing: Vec<&ProxyFile> = files
        .iter()
        .filter(|file| !directory.join(file.relative()).is_file())
        .collect();
    let (from_bundle, missing): (Vec<&ProxyFile>, Vec<&ProxyFile>) =
        missing.into_iter().partition(|file| {
            options
                .go_bundle
                .as_ref()
                .is_some_and(|bundle| bundle.join(file.relative()).is_file())
        });
    if options.offline && !missing.is_empty() {
        let lines = missing.iter().map(|file| {
            format!(
                "Go module {}@{} ({})",
                file.module.path,
                file.module.version,
                file.describe()
            )
        });
        return Err(super::offline_missing(lines));
    }
    for file in &from_bundle {
        if let Some(bundle) = &options.go_bundle {
            let origin = bundle.join(file.relative());
            let copy = |temporary: &Path| {
                fs_err::copy(&origin, temporary)
                    .map(|_| ())
                    .map_err(FetchError::io("cannot copy", &origin))
            };
            place_checked(file, &directory, copy, &origin.display().to_string())?;
        }
    }
    let skipped = download_all(&missing, &directory, options, unavailable)?;
    for module in &go.modules {
        let held = ["mod", "zip"]
            .iter()
            .any(|extension| directory.join(version_file(module, extension)).is_file());
        if held {
            write_info(module, &directory)?;
        }
    }
    Ok(GoModuleTree {
        directory,
        fetched: from_bundle.len() + missing.len() - skipped.len(),
        files: files.len() - skipped.len(),
        unavailable: skipped,
    })
}

/// Download what is missing; with [`Unavailable::Skip`], returns the files no proxy had.
fn download_all(
    missing: &[&ProxyFile],
    directory: &Path,
    options: &FetchOptions,
    unavailable: Unavailable,
) -> Result<Vec<String>, FetchError> {
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let http = options.http()?;
    let client = http.client();
    let outcomes: Vec<Result<Option<String>, FetchError>> = http.run_downloads(|| {
        missing
            .par_iter()
            .map(
                |file| match fetch_from_proxies(client, file, directory, options) {
                    Ok(()) => Ok(None),
                    Err(error) if unavailable == Unavailable::Skip && is_not_there(&error) => {
                        Ok(Some(format!(
                            "{}@{} ({})",
                            file.module.path,
                            file.module.version,
                            file.describe()
                        )))
                    }
                    Err(error) => Err(error),
                },
            )
            .collect()
    });
    let mut skipped = Vec::new();
    for outcome in outcomes {
        skipped.extend(outcome?);
    }
    skipped.sort();
    Ok(skipped)
}

/// No proxy had it (each answered 403, 404 or 410, or had no such file).
fn is_not_there(error: &FetchError) -> bool {
    matches!(error, FetchError::GoModuleUnavailable { .. })
}

/// Ask each proxy in order, as the go command does with a GOPROXY list: a proxy that answers
/// 404 or 410 (or refuses, 403) does not have the module, and the next is asked.
fn fetch_from_proxies(
    client: &reqwest::blocking::Client,
    file: &ProxyFile,
    directory: &Path,
    options: &FetchOptions,
) -> Result<(), FetchError> {
    let mut refusals = Vec::new();
    for proxy in &options.go_proxies {
        let url = format!(
            "{}/{}",
            proxy.trim_end_matches('/'),
            file.relative().display()
        );
        let obtained = place_checked(
            file,
            directory,
            |temporary| obtain(client, file, &url, temporary, options),
            &super::redacted(&url),
        );
        match obtained {
            Err(FetchError::Status { status, url, .. }) if is_not_there_status(status) => {
                refusals.push(format!("{url} answered {status}"));
            }
            Err(FetchError::Io(crate::path_io::PathIoError { source, path, .. }))
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                refusals.push(format!("{} does not exist", path.display()));
            }
            other => return other,
        }
    }
    Err(FetchError::GoModuleUnavailable {
        module: file.module.path.to_string(),
        version: file.module.version.to_string(),
        what: file.describe(),
        tried: if refusals.is_empty() {
            "no --go-proxy is set".to_string()
        } else {
            refusals.join("; ")
        },
    })
}

fn is_not_there_status(status: u16) -> bool {
    matches!(status, 403 | 404 | 410)
}

/// One file from one proxy: a local tree (`file://`) or over HTTP.
fn obtain(
    client: &reqwest::blocking::Client,
    file: &ProxyFile,
    url: &str,
    temporary: &Path,
    options: &FetchOptions,
) -> Result<(), FetchError> {
    if let Some(path) = url::Url::parse(url)
        .ok()
        .filter(|parsed| parsed.scheme() == "file")
        .and_then(|parsed| parsed.to_file_path().ok())
    {
        // A proxy tree is input: only its regular files are read (a FIFO would hang the copy).
        return crate::path_io::open_regular(&path)
            .and_then(|mut file| {
                let mut target = std::fs::File::create(temporary)?;
                std::io::copy(&mut file, &mut target).map(|_| ())
            })
            .map_err(|source| {
                FetchError::Io(crate::path_io::PathIoError::new(
                    "cannot copy",
                    path,
                    source,
                ))
            });
    }
    super::download::download_checked_later(
        client,
        (file.module.path.as_str(), file.module.version.as_str()),
        url,
        temporary,
        options,
    )
}

/// Obtain a file into a temporary name beside its place, check its hash, then rename it into
/// place: the tree never holds a file that was not checked.
fn place_checked(
    file: &ProxyFile,
    directory: &Path,
    obtain: impl FnOnce(&Path) -> Result<(), FetchError>,
    origin: &str,
) -> Result<(), FetchError> {
    super::place_checked(&directory.join(file.relative()), obtain, |temporary| {
        check_hash(file, temporary, origin)
    })
}

/// The go.sum hash of the file at `path` must be the one `file` pins.
fn check_hash(file: &ProxyFile, path: &Path, origin: &str) -> Result<(), FetchError> {
    let actual = match file.kind {
        FileKind::GoMod => go_mod_hash(path),
        FileKind::Zip => zip_hash(path),
    }
    .map_err(|message| FetchError::GoModuleUnreadable {
        module: file.module.path.to_string(),
        version: file.module.version.to_string(),
        origin: origin.to_string(),
        message,
    })?;
    if actual == *file.expected {
        return Ok(());
    }
    Err(FetchError::GoModuleMismatch(Box::new(
        super::error::GoModuleMismatch {
            module: file.module.path.to_string(),
            version: file.module.version.to_string(),
            what: file.describe(),
            origin: origin.to_string(),
            expected: file.expected.to_string(),
            actual: actual.to_string(),
        },
    )))
}

/// `VERSION.info`: the version alone (its `Time` is optional in the protocol).
fn write_info(module: &LockedGoModule, directory: &Path) -> Result<(), FetchError> {
    let path = directory.join(version_file(module, "info"));
    if path.is_file() {
        return Ok(());
    }
    let text = serde_json::json!({ "Version": module.version.as_str() }).to_string();
    crate::cache::publish_bytes(&path, text.as_bytes())
        .map_err(FetchError::io("cannot write", &path))
}

/// Go's `dirhash.Hash1` of files given as (name, sha256 of the contents).
fn hash1(mut files: Vec<(String, [u8; 32])>) -> Result<GoSumHash, String> {
    files.sort();
    let mut summary = sha2::Sha256::new();
    for (name, digest) in &files {
        if name.contains('\n') {
            return Err(format!("a file name with a newline: {name:?}"));
        }
        summary.update(format!("{}  {name}\n", crate::digest::hex(digest)));
    }
    Ok(GoSumHash::from_digest(&summary.finalize().into()))
}

/// The go.sum hash of a module's go.mod (`VERSION/go.mod` lines): its one file named `go.mod`.
pub fn go_mod_hash(path: &Path) -> Result<GoSumHash, String> {
    let bytes = fs_err::read(path).map_err(|error| error.to_string())?;
    hash1(vec![(
        "go.mod".to_string(),
        sha2::Sha256::digest(&bytes).into(),
    )])
}

/// The go.sum hash of a module zip: every entry by its name in the zip.
pub fn zip_hash(path: &Path) -> Result<GoSumHash, String> {
    let file = fs_err::File::open(path).map_err(|error| error.to_string())?;
    let mut archive = zip::ZipArchive::new(file).map_err(|error| error.to_string())?;
    let mut files = Vec::with_capacity(archive.len());
    let mut total = 0u64;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|error| error.to_string())?;
        let name = entry
            .name()
            .map_err(|error| error.to_string())?
            .into_owned();
        // Read through a cap, whatever the header claims: a zip bomb stops here.
        let mut hasher = sha2::Sha256::new();
        let mut limited = (&mut entry).take(MAX_UNCOMPRESSED - total + 1);
        let copied = std::io::copy(&mut limited, &mut HashWriter(&mut hasher))
            .map_err(|error| format!("{name}: {error}"))?;
        total += copied;
        if total > MAX_UNCOMPRESSED {
            return Err(format!(
                "more than {MAX_UNCOMPRESSED} bytes uncompressed, which the go command refuses"
            ));
        }
        files.push((name, hasher.finalize().into()));
    }
    hash1(files)
}

struct HashWriter<'a>(&'a mut sha2::Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        self.0.update(buffer);
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Copy the lock's files of the proxy tree into `BUNDLE/go-proxy`.
pub fn write_bundle_tree(
    go: &LockedGo,
    tree: &GoModuleTree,
    bundle: &Path,
) -> Result<usize, FetchError> {
    let destination =
        crate::contained::Contained::create(bundle)?.subdirectory(Path::new(BUNDLE_GO_PROXY))?;
    let mut copied = 0;
    for file in files_of(go) {
        let relative = file.relative();
        let origin = tree.directory.join(&relative);
        if let Some(parent) = relative.parent() {
            destination.create_dir_all(parent)?;
        }
        destination.place(&origin, &relative, crate::contained::LinkMode::Copy)?;
        // Hashed again as a bundle's wheels are: the cache may have changed since the fetch.
        if let Err(error) = check_hash(&file, &destination.path(&relative), "the bundle's copy") {
            destination.remove_file(&relative)?;
            return Err(error);
        }
        copied += 1;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module_zip(directory: &Path, entries: &[(&str, &str)]) -> PathBuf {
        let path = directory.join("module.zip");
        let mut writer = zip::ZipWriter::new(fs_err::File::create(&path).unwrap());
        for (name, content) in entries {
            writer
                .start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut writer, content.as_bytes()).unwrap();
        }
        writer.finish().unwrap();
        path
    }

    #[test]
    fn a_bundle_copy_is_hashed_again_and_a_changed_module_left_out() {
        let directory = tempfile::tempdir().unwrap();
        let tree_directory = directory.path().join("tree");
        let go_mod_bytes = "module example.com/greeting\n";
        let go_mod_source = directory.path().join("go.mod");
        fs_err::write(&go_mod_source, go_mod_bytes).unwrap();
        let module = LockedGoModule {
            path: "example.com/greeting".parse().unwrap(),
            version: "v1.0.0".parse().unwrap(),
            zip: None,
            go_mod: Some(go_mod_hash(&go_mod_source).unwrap()),
        };
        let go = LockedGo {
            go: "1.22".to_string(),
            toolchain: None,
            go_sum_sha256: crate::identity::Sha256::of_bytes(b""),
            modules: vec![module.clone()],
            api_client: None,
        };
        let relative = version_file(&module, "mod");
        fs_err::create_dir_all(tree_directory.join(relative.parent().unwrap())).unwrap();
        fs_err::write(tree_directory.join(&relative), go_mod_bytes).unwrap();
        let tree = GoModuleTree {
            directory: tree_directory.clone(),
            fetched: 0,
            files: 1,
            unavailable: Vec::new(),
        };
        let bundle = directory.path().join("bundle");
        assert_eq!(write_bundle_tree(&go, &tree, &bundle).unwrap(), 1);

        fs_err::write(tree_directory.join(&relative), "module example.com/evil\n").unwrap();
        let again = directory.path().join("bundle-2");
        let error = write_bundle_tree(&go, &tree, &again).unwrap_err();
        assert!(matches!(error, FetchError::GoModuleMismatch(_)), "{error}");
        assert!(!again.join(BUNDLE_GO_PROXY).join(&relative).exists());
    }

    #[test]
    fn a_fifo_in_a_file_proxy_is_refused_without_waiting_on_it() {
        let directory = tempfile::tempdir().unwrap();
        let fifo = directory.path().join("v1.0.0.mod");
        crate::path_io::make_fifo(&fifo);
        let module = LockedGoModule {
            path: "example.com/greeting".parse().unwrap(),
            version: "v1.0.0".parse().unwrap(),
            zip: None,
            go_mod: None,
        };
        let expected: GoSumHash = "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
            .parse()
            .unwrap();
        let file = ProxyFile {
            module: &module,
            kind: FileKind::GoMod,
            expected: &expected,
        };
        let options = FetchOptions::new(crate::cache::Cache::new(directory.path().join("cache")));
        let client = reqwest::blocking::Client::new();
        let url = url::Url::from_file_path(&fifo).unwrap().to_string();
        let error = obtain(
            &client,
            &file,
            &url,
            &directory.path().join("copy"),
            &options,
        )
        .unwrap_err();
        assert!(error.to_string().contains("a FIFO"), "{error}");
    }

    #[test]
    fn hash1_is_go_dirhash_over_sorted_names() {
        // Computed by hand as dirhash.Hash1 does: sha256 over "HEX  NAME\n" lines, sorted.
        let directory = tempfile::tempdir().unwrap();
        let go_mod = directory.path().join("x.mod");
        fs_err::write(&go_mod, "module example.com/x\n").unwrap();
        let line = format!(
            "{}  go.mod\n",
            crate::digest::sha256_hex(b"module example.com/x\n")
        );
        assert_eq!(
            go_mod_hash(&go_mod).unwrap(),
            GoSumHash::from_digest(&sha2::Sha256::digest(line.as_bytes()).into())
        );
        // Entry order in the zip does not matter; names and contents do.
        let one = zip_hash(&module_zip(
            directory.path(),
            &[("m@v1.0.0/b.go", "b"), ("m@v1.0.0/a.go", "a")],
        ))
        .unwrap();
        let two = zip_hash(&module_zip(
            directory.path(),
            &[("m@v1.0.0/a.go", "a"), ("m@v1.0.0/b.go", "b")],
        ))
        .unwrap();
        let three = zip_hash(&module_zip(
            directory.path(),
            &[("m@v1.0.0/a.go", "a"), ("m@v1.0.0/b.go", "c")],
        ))
        .unwrap();
        assert_eq!(one, two);
        assert_ne!(one, three);
    }
}
