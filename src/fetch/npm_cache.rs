//! npm's own cache (cacache, as `npm ci --offline --cache DIR` reads it), filled by akpkg from
//! tarballs it has already checked, so that the npm step of a web build never reaches the
//! network: the groundwork of the web UI stage (issue 17).
//!
//! npm looks a tarball up by its URL: `index-v5/<sha256(key)>` (split 2/2/rest) holds lines
//! `\n<sha1(entry)>\t<entry>`, where the entry is JSON naming the key
//! (`make-fetch-happen:request-cache:<url>`), the integrity and the size; the bytes live at
//! `content-v2/sha512/<hex of the sha512>` (split the same way). The layout is the one
//! nixpkgs' `prefetch-npm-deps` writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::Digest;

use super::FetchError;
use crate::identity::NpmIntegrity;

/// npm's cache directory (what `--cache` names).
pub struct NpmCache {
    root: PathBuf,
}

fn split(hex: &str) -> PathBuf {
    Path::new(&hex[..2]).join(&hex[2..4]).join(&hex[4..])
}

impl NpmCache {
    pub fn new(root: &Path) -> NpmCache {
        NpmCache {
            root: root.join("_cacache"),
        }
    }

    /// Put the tarball at `tarball` into the cache as what `url` serves, after checking that
    /// its bytes have `integrity`: a mismatch names the URL and both digests, and writes nothing.
    pub fn put(
        &self,
        url: &str,
        integrity: &NpmIntegrity,
        tarball: &Path,
    ) -> Result<(), FetchError> {
        let bytes = fs_err::read(tarball).map_err(FetchError::io("cannot read", tarball))?;
        let actual = NpmIntegrity::of_bytes(&bytes);
        if actual != *integrity {
            return Err(FetchError::NpmIntegrityMismatch {
                url: super::redacted(url),
                expected: integrity.to_string(),
                actual: actual.to_string(),
            });
        }
        self.store(integrity, &bytes)?;
        self.index(url, integrity, bytes.len(), None)
    }

    /// Put registry metadata (a packument) into the cache as what `url` serves, for both
    /// `accept` headers npm sends (full and abbreviated): npm matches a cache entry on it.
    pub fn put_packument(&self, url: &str, document: &[u8]) -> Result<(), FetchError> {
        let integrity = NpmIntegrity::of_bytes(document);
        self.store(&integrity, document)?;
        for accept in [
            "application/json",
            "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
        ] {
            self.index(url, &integrity, document.len(), Some(accept))?;
        }
        Ok(())
    }

    /// Write bytes where the cache keeps the content of `integrity`.
    fn store(&self, integrity: &NpmIntegrity, bytes: &[u8]) -> Result<(), FetchError> {
        let content = self
            .root
            .join("content-v2/sha512")
            .join(split(&integrity.hex()));
        let parent = content.parent().unwrap_or(&self.root);
        fs_err::create_dir_all(parent).map_err(FetchError::io("cannot create", parent))?;
        fs_err::write(&content, bytes).map_err(FetchError::io("cannot write", &content))
    }

    /// Append the index line that maps `url` (asked for with `accept`) to the content.
    fn index(
        &self,
        url: &str,
        integrity: &NpmIntegrity,
        size: usize,
        accept: Option<&str>,
    ) -> Result<(), FetchError> {
        let key = format!("make-fetch-happen:request-cache:{url}");
        let mut metadata = serde_json::json!({ "url": url, "options": { "compress": true } });
        if let Some(accept) = accept {
            metadata["reqHeaders"] = serde_json::json!({ "accept": accept });
        }
        let entry = serde_json::json!({
            "key": key,
            "integrity": integrity.to_string(),
            "time": 0,
            "size": size,
            "metadata": metadata,
        })
        .to_string();
        let index = self
            .root
            .join("index-v5")
            .join(split(&crate::digest::sha256_hex(key.as_bytes())));
        let parent = index.parent().unwrap_or(&self.root);
        fs_err::create_dir_all(parent).map_err(FetchError::io("cannot create", parent))?;
        let line = format!(
            "\n{}\t{entry}",
            crate::digest::hex(&sha1::Sha1::digest(entry.as_bytes()))
        );
        let mut file = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&index)
            .map_err(FetchError::io("cannot open", &index))?;
        file.write_all(line.as_bytes())
            .map_err(FetchError::io("cannot write", &index))
    }
}

/// Where a bundle keeps npm tarballs, named by their sha512 in hexadecimal.
pub const BUNDLE_NPM: &str = "npm";

/// Copy the tarballs of `packages` into `BUNDLE/npm/`.
pub fn write_bundle_npm(
    packages: &[crate::lock::LockedNpmPackage],
    tarballs: &NpmTarballs,
    bundle: &Path,
) -> Result<usize, FetchError> {
    let destination =
        crate::contained::Contained::create(bundle)?.subdirectory(Path::new(BUNDLE_NPM))?;
    let mut copied = std::collections::BTreeSet::new();
    for package in packages {
        let name = format!("{}.tgz", package.integrity.hex());
        if copied.insert(name.clone()) {
            let source = tarballs.path(&package.integrity);
            destination.place(&source, Path::new(&name), crate::contained::LinkMode::Copy)?;
            // Hashed again as a bundle's wheels are: the cache may have changed since the fetch.
            let copy = destination.path(Path::new(&name));
            let actual = crate::path_io::open_regular(&copy)
                .and_then(NpmIntegrity::of_reader)
                .map_err(FetchError::io("cannot read", &copy))?;
            if actual != package.integrity {
                destination.remove_file(Path::new(&name))?;
                return Err(FetchError::BundleCopyChanged {
                    what: format!("`{}` {}", package.name, package.version),
                    path: source,
                    expected: package.integrity.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
    }
    Ok(copied.len())
}

/// The checked tarballs of a package-lock, in the cache.
#[derive(Debug, Clone)]
pub struct NpmTarballs {
    pub directory: PathBuf,
    /// Distinct tarballs (a package nested in several places is one tarball).
    pub tarballs: usize,
    pub downloaded: usize,
}

impl NpmTarballs {
    /// Where the tarball of `integrity` is kept.
    pub fn path(&self, integrity: &NpmIntegrity) -> PathBuf {
        self.directory.join(format!("{}.tgz", integrity.hex()))
    }

    /// npm's cache for `packages`, filled from these tarballs (see [`NpmCache`]).
    pub fn fill(
        &self,
        packages: &[crate::lock::LockedNpmPackage],
        npm_cache: &Path,
    ) -> Result<(), FetchError> {
        let cache = NpmCache::new(npm_cache);
        for package in packages {
            cache.put(
                &package.url,
                &package.integrity,
                &self.path(&package.integrity),
            )?;
        }
        Ok(())
    }
}

/// Download every tarball of `packages` that the cache lacks, each checked against its sha512
/// before it is kept (the same client, retries and limits as every other download).
pub fn fetch_npm_tarballs(
    packages: &[crate::lock::LockedNpmPackage],
    options: &super::FetchOptions,
) -> Result<NpmTarballs, FetchError> {
    use rayon::prelude::*;
    let store = NpmTarballs {
        directory: options
            .cache
            .bucket(crate::cache::Bucket::Npm)
            .join("sha512"),
        tarballs: 0,
        downloaded: 0,
    };
    // One tarball per integrity, in the lock's order (a set: a lock has ~10^5 entries).
    let mut seen = std::collections::HashSet::new();
    let distinct: Vec<&crate::lock::LockedNpmPackage> = packages
        .iter()
        .filter(|package| seen.insert(package.integrity.hex()))
        .collect();
    let in_bundle = |package: &crate::lock::LockedNpmPackage| {
        options
            .npm_bundle
            .as_ref()
            .map(|bundle| bundle.join(format!("{}.tgz", package.integrity.hex())))
            .filter(|path| path.is_file())
    };
    let missing: Vec<&&crate::lock::LockedNpmPackage> = distinct
        .iter()
        .filter(|package| !store.path(&package.integrity).is_file())
        .collect();
    if options.offline && missing.iter().any(|package| in_bundle(package).is_none()) {
        let missing: Vec<_> = missing
            .iter()
            .filter(|package| in_bundle(package).is_none())
            .collect();
        let lines = missing
            .iter()
            .map(|package| format!("npm {} {} ({})", package.name, package.version, package.url));
        return Err(super::offline_missing(lines));
    }
    fs_err::create_dir_all(&store.directory)
        .map_err(FetchError::io("cannot create", &store.directory))?;
    let http = options.http()?;
    let client = http.client();
    http.run_downloads(|| {
        missing
            .par_iter()
            .try_for_each(|package| download_checked(client, package, &store, options))
    })?;
    Ok(NpmTarballs {
        tarballs: distinct.len(),
        // Copies from a bundle are not downloads.
        downloaded: missing
            .iter()
            .filter(|package| in_bundle(package).is_none())
            .count(),
        ..store
    })
}

/// One tarball: downloaded beside its place, checked, then renamed into place.
fn download_checked(
    client: &reqwest::blocking::Client,
    package: &crate::lock::LockedNpmPackage,
    store: &NpmTarballs,
    options: &super::FetchOptions,
) -> Result<(), FetchError> {
    let bundled = options
        .npm_bundle
        .as_ref()
        .map(|bundle| bundle.join(format!("{}.tgz", package.integrity.hex())))
        .filter(|path| path.is_file());
    let obtain = |temporary: &Path| match &bundled {
        // A bundle's copy is checked like a download before it is kept.
        Some(path) => fs_err::copy(path, temporary)
            .map(|_| ())
            .map_err(FetchError::io("cannot copy", path)),
        None => super::download::download_checked_later(
            client,
            (&package.name, &package.version),
            &package.url,
            temporary,
            options,
        ),
    };
    let check = |temporary: &Path| {
        let file =
            fs_err::File::open(temporary).map_err(FetchError::io("cannot read", temporary))?;
        let actual =
            NpmIntegrity::of_reader(file).map_err(FetchError::io("cannot read", temporary))?;
        if actual == package.integrity {
            return Ok(());
        }
        Err(FetchError::NpmIntegrityMismatch {
            url: super::redacted(&package.url),
            expected: package.integrity.to_string(),
            actual: actual.to_string(),
        })
    };
    super::place_checked(&store.path(&package.integrity), obtain, check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrities_parse_and_print_as_package_lock_writes_them() {
        let integrity = NpmIntegrity::of_bytes(b"x");
        assert_eq!(NpmIntegrity::parse(&integrity.to_string()), Some(integrity));
        for bad in ["sha1-AAAA", "sha512-short", "sha512-!!!", ""] {
            assert_eq!(NpmIntegrity::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_bundle_copy_is_hashed_again_and_a_changed_tarball_left_out() {
        let directory = tempfile::tempdir().unwrap();
        let cache = directory.path().join("npm");
        fs_err::create_dir_all(&cache).unwrap();
        let package = |bytes: &[u8]| crate::lock::LockedNpmPackage {
            path: "node_modules/left-pad".to_string(),
            name: "left-pad".to_string(),
            version: "1.3.0".to_string(),
            url: "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz".to_string(),
            integrity: NpmIntegrity::of_bytes(bytes),
        };
        let good = package(b"tarball");
        let tarballs = NpmTarballs {
            directory: cache.clone(),
            tarballs: 1,
            downloaded: 0,
        };
        fs_err::write(tarballs.path(&good.integrity), b"tarball").unwrap();
        let bundle = directory.path().join("bundle");
        assert_eq!(
            write_bundle_npm(std::slice::from_ref(&good), &tarballs, &bundle).unwrap(),
            1
        );

        // The cached file changed after it was fetched: the copy is refused and removed.
        fs_err::write(tarballs.path(&good.integrity), b"tampered").unwrap();
        let again = directory.path().join("bundle-2");
        let error = write_bundle_npm(std::slice::from_ref(&good), &tarballs, &again).unwrap_err();
        assert!(
            matches!(error, FetchError::BundleCopyChanged { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("`left-pad` 1.3.0"), "{error}");
        assert!(
            !again
                .join(BUNDLE_NPM)
                .join(format!("{}.tgz", good.integrity.hex()))
                .exists()
        );

        // A bundle whose `npm` is already a link out of it: nothing is written through it.
        fs_err::write(tarballs.path(&good.integrity), b"tarball").unwrap();
        let outside = directory.path().join("outside");
        fs_err::create_dir_all(&outside).unwrap();
        let linked = directory.path().join("bundle-3");
        fs_err::create_dir_all(&linked).unwrap();
        std::os::unix::fs::symlink(&outside, linked.join(BUNDLE_NPM)).unwrap();
        assert!(write_bundle_npm(std::slice::from_ref(&good), &tarballs, &linked).is_err());
        assert_eq!(fs_err::read_dir(&outside).unwrap().count(), 0);
    }
}
