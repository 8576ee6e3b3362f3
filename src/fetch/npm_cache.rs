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
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| FetchError::Io {
                action,
                path,
                source,
            }
        };
        let bytes = fs_err::read(tarball).map_err(io("cannot read", tarball))?;
        let actual = NpmIntegrity::of_bytes(&bytes);
        if actual != *integrity {
            return Err(FetchError::NpmIntegrityMismatch {
                url: super::redacted(url),
                expected: integrity.to_string(),
                actual: actual.to_string(),
            });
        }
        let content = self
            .root
            .join("content-v2/sha512")
            .join(split(&integrity.hex()));
        let parent = content.parent().unwrap_or(&self.root);
        fs_err::create_dir_all(parent).map_err(io("cannot create", parent))?;
        fs_err::write(&content, &bytes).map_err(io("cannot write", &content))?;

        let key = format!("make-fetch-happen:request-cache:{url}");
        let entry = serde_json::json!({
            "key": key,
            "integrity": integrity.to_string(),
            "time": 0,
            "size": bytes.len(),
            "metadata": { "url": url, "options": { "compress": true } },
        })
        .to_string();
        let index = self
            .root
            .join("index-v5")
            .join(split(&crate::digest::sha256_hex(key.as_bytes())));
        let parent = index.parent().unwrap_or(&self.root);
        fs_err::create_dir_all(parent).map_err(io("cannot create", parent))?;
        let line = format!(
            "\n{}\t{entry}",
            crate::digest::hex(&sha1::Sha1::digest(entry.as_bytes()))
        );
        let mut file = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&index)
            .map_err(io("cannot open", &index))?;
        file.write_all(line.as_bytes())
            .map_err(io("cannot write", &index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `package/package.json` and `package/index.js` as an npm tarball.
    fn tarball(directory: &Path, name: &str, version: &str) -> PathBuf {
        let path = directory.join(format!("{name}-{version}.tgz"));
        let gzip = flate2::write::GzEncoder::new(
            fs_err::File::create(&path).unwrap(),
            flate2::Compression::default(),
        );
        let mut archive = tar::Builder::new(gzip);
        for (file, content) in [
            (
                "package/package.json",
                format!("{{\"name\":\"{name}\",\"version\":\"{version}\",\"main\":\"index.js\"}}"),
            ),
            (
                "package/index.js",
                format!("module.exports = \"{name} {version}\";\n"),
            ),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            archive
                .append_data(&mut header, file, content.as_bytes())
                .unwrap();
        }
        archive.into_inner().unwrap().finish().unwrap();
        path
    }

    #[test]
    fn integrities_parse_and_print_as_package_lock_writes_them() {
        let integrity = NpmIntegrity::of_bytes(b"x");
        assert_eq!(NpmIntegrity::parse(&integrity.to_string()), Some(integrity));
        for bad in ["sha1-AAAA", "sha512-short", "sha512-!!!", ""] {
            assert_eq!(NpmIntegrity::parse(bad), None, "{bad}");
        }
    }

    /// The real npm (every machine here has it) installs from the cache this writes, with
    /// `--offline` and every proxy variable pointing at a closed port: the registry URL in the
    /// lock is never asked. Without the entry, the same `npm ci` fails with ENOTCACHED.
    #[test]
    fn npm_ci_offline_installs_from_the_cache_akpkg_fills() {
        let directory = tempfile::tempdir().unwrap();
        let project = directory.path().join("project");
        fs_err::create_dir_all(&project).unwrap();
        let tgz = tarball(directory.path(), "fixture-left", "1.0.0");
        let integrity = NpmIntegrity::of_bytes(&fs_err::read(&tgz).unwrap());
        let url = "http://127.0.0.1:9/fixture-left/-/fixture-left-1.0.0.tgz";
        fs_err::write(
            project.join("package.json"),
            r#"{"name":"fixture-web","version":"1.0.0","dependencies":{"fixture-left":"^1.0.0"}}"#,
        )
        .unwrap();
        let lock = serde_json::json!({
            "name": "fixture-web", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
            "packages": {
                "": { "name": "fixture-web", "version": "1.0.0",
                      "dependencies": { "fixture-left": "^1.0.0" } },
                "node_modules/fixture-left": { "version": "1.0.0", "resolved": url,
                                               "integrity": integrity.to_string() },
            },
        });
        fs_err::write(project.join("package-lock.json"), lock.to_string()).unwrap();

        let cache = directory.path().join("npm-cache");
        let npm_cache = NpmCache::new(&cache);
        // A tarball with other bytes is refused, naming the URL and both digests.
        let other = tarball(directory.path(), "fixture-left", "9.9.9");
        let error = npm_cache
            .put(url, &integrity, &other)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(url) && error.contains(&integrity.to_string()),
            "{error}"
        );
        assert!(!cache.join("_cacache/content-v2").exists());
        npm_cache.put(url, &integrity, &tgz).unwrap();

        let mut command = std::process::Command::new("npm");
        command
            .args([
                "ci",
                "--offline",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--cache",
            ])
            .arg(&cache)
            .current_dir(&project)
            .env("npm_config_registry", "http://127.0.0.1:9/");
        for variable in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            command.env(variable, "http://127.0.0.1:9");
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            fs_err::read_to_string(project.join("node_modules/fixture-left/index.js")).unwrap(),
            "module.exports = \"fixture-left 1.0.0\";\n"
        );
    }
}
