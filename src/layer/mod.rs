//! The `layer` stage: a prefix as a byte-reproducible container layer, and OCI image layouts.
//!
//! The tar is rooted at the prefix's final path (`opt/authentik/…`, its parent directories
//! included): entries sorted by path with each directory before its contents, owner 0:0 (or
//! `--owner`), one fixed mtime, modes normalized (directories and executables 0755, other files
//! 0644, links 0777), no extended attributes or device numbers, and hard links kept as hard
//! links. Compression follows the file name: `.tar`, `.tar.gz` (a gzip header without name or
//! time) or `.tar.zst`. The same prefix always gives the same bytes.

mod error;
mod oci;
mod prefix;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use error::LayerError;
pub use oci::{OciImage, write_oci_layout};
pub use prefix::{ImageRequest, Written, write_prefix};

/// How to write a layer.
#[derive(Debug, Clone)]
pub struct LayerOptions {
    /// Where the prefix lives in the image, such as `/opt/authentik`.
    pub at: String,
    pub owner: (u64, u64),
    /// Every entry's mtime.
    pub mtime: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From the output's file name.
    pub fn of(path: &Path) -> Result<Compression, LayerError> {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(".tar") {
            Ok(Compression::None)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Ok(Compression::Gzip)
        } else if name.ends_with(".tar.zst") {
            Ok(Compression::Zstd)
        } else {
            Err(LayerError::Usage(format!(
                "{}: a layer's name ends in .tar, .tar.gz or .tar.zst",
                path.display()
            )))
        }
    }
}

/// A layer written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    pub path: PathBuf,
    pub compression: Compression,
    /// sha256 of the file as written (the OCI descriptor's digest).
    pub sha256: String,
    pub size: u64,
    /// sha256 of the uncompressed tar (the OCI config's diff_id).
    pub diff_id: String,
    pub entries: usize,
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LayerError {
    crate::path_io::io(action, path)
}

/// Write `prefix` as a layer at `output` (see the module's documentation); the file appears
/// under its name only when complete.
pub fn write_layer(
    prefix: &Path,
    output: &Path,
    options: &LayerOptions,
) -> Result<LayerInfo, LayerError> {
    let compression = Compression::of(output)?;
    // A prefix given through a link is archived as the directory it names, never as a link
    // to a path on this host.
    let prefix = &fs_err::canonicalize(prefix).map_err(io_error("cannot read", prefix))?;
    let at = options.at.trim_matches('/');
    if at.is_empty()
        || at
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(LayerError::Usage(format!(
            "--at {}: expected an absolute path such as /opt/authentik",
            options.at
        )));
    }
    let directory = output
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Readable as any file the user writes (tempfile's own 0600 would stay after the rename).
    let temporary = tempfile::Builder::new()
        .prefix(".layer-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(directory)
        .map_err(io_error("cannot create a temporary file in", directory))?;
    let file = std::io::BufWriter::new(
        temporary
            .reopen()
            .map_err(io_error("cannot open", temporary.path()))?,
    );
    // compressed file ← compressor ← hashing (diff_id) ← tar
    let compressed = crate::digest::HashingWriter::new(file);
    let (entries, diff_id, compressed) = match compression {
        Compression::None => {
            let (entries, diff_id, inner) = write_tar(prefix, at, options, compressed)?;
            (entries, diff_id, inner)
        }
        Compression::Gzip => {
            // No file name and mtime 0 in the header: the same bytes every time.
            let encoder = flate2::GzBuilder::new()
                .mtime(0)
                .write(compressed, flate2::Compression::default());
            let (entries, diff_id, encoder) = write_tar(prefix, at, options, encoder)?;
            let inner = encoder
                .finish()
                .map_err(io_error("cannot compress into", output))?;
            (entries, diff_id, inner)
        }
        Compression::Zstd => {
            let encoder = zstd::Encoder::new(compressed, 3)
                .map_err(io_error("cannot compress into", output))?;
            let (entries, diff_id, encoder) = write_tar(prefix, at, options, encoder)?;
            let inner = encoder
                .finish()
                .map_err(io_error("cannot compress into", output))?;
            (entries, diff_id, inner)
        }
    };
    let (mut file, sha256, size) = compressed.finish();
    file.flush().map_err(io_error("cannot write", output))?;
    drop(file);
    temporary
        .persist(output)
        .map_err(|error| io_error("cannot write", output)(error.error))?;
    Ok(LayerInfo {
        path: output.to_path_buf(),
        compression,
        sha256,
        size,
        diff_id,
        entries,
    })
}

/// The tar stream itself (archive's one deterministic writer); returns the entry count, the
/// diff_id and the inner writer.
fn write_tar<W: Write>(
    prefix: &Path,
    at: &str,
    options: &LayerOptions,
    writer: W,
) -> Result<(usize, String, W), LayerError> {
    let tar_options = crate::archive::TarOptions {
        root: at.to_string(),
        owner: options.owner,
        mtime: options.mtime,
    };
    let (hashing, entries) = crate::archive::write_tree_tar(
        prefix,
        crate::digest::HashingWriter::new(writer),
        &tar_options,
    )?;
    let (inner, diff_id, _) = hashing.finish();
    Ok((entries, diff_id, inner))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn prefix(directory: &Path) -> PathBuf {
        let prefix = directory.join("prefix");
        fs_err::create_dir_all(prefix.join("bin")).unwrap();
        fs_err::create_dir_all(prefix.join("lib/site")).unwrap();
        fs_err::write(prefix.join("bin/tool"), "#!/bin/sh\n").unwrap();
        fs_err::set_permissions(
            prefix.join("bin/tool"),
            std::fs::Permissions::from_mode(0o775),
        )
        .unwrap();
        fs_err::write(prefix.join("lib/site/a.py"), "a = 1\n").unwrap();
        fs_err::hard_link(prefix.join("lib/site/a.py"), prefix.join("lib/site/b.py")).unwrap();
        std::os::unix::fs::symlink("/usr/bin/python3", prefix.join("bin/python")).unwrap();
        prefix
    }

    fn listing(bytes: &[u8]) -> Vec<String> {
        tar::Archive::new(bytes)
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                format!(
                    "{:?} {} {:o} {}:{} {}{}",
                    header.entry_type(),
                    entry.path().unwrap().display(),
                    header.mode().unwrap(),
                    header.uid().unwrap(),
                    header.gid().unwrap(),
                    header.mtime().unwrap(),
                    entry
                        .link_name()
                        .unwrap()
                        .map(|link| format!(" -> {}", link.display()))
                        .unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn layers_are_sorted_normalized_and_reproducible() {
        let directory = tempfile::tempdir().unwrap();
        let prefix = prefix(directory.path());
        let options = LayerOptions {
            at: "/opt/app".to_string(),
            owner: (0, 0),
            mtime: 315_532_800,
        };
        let first = write_layer(&prefix, &directory.path().join("one.tar"), &options).unwrap();
        // Other times and modes on disk change nothing.
        fs_err::set_permissions(prefix.join("lib"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let second = write_layer(&prefix, &directory.path().join("two.tar"), &options).unwrap();
        assert_eq!(first.sha256, second.sha256);
        assert_eq!(
            first.sha256, first.diff_id,
            "an uncompressed layer is its own diff"
        );
        let bytes = fs_err::read(directory.path().join("one.tar")).unwrap();
        insta::assert_snapshot!(listing(&bytes).join("\n"), @r#"
        Directory opt/ 755 0:0 315532800
        Directory opt/app/ 755 0:0 315532800
        Directory opt/app/bin/ 755 0:0 315532800
        Symlink opt/app/bin/python 777 0:0 315532800 -> /usr/bin/python3
        Regular opt/app/bin/tool 755 0:0 315532800
        Directory opt/app/lib/ 755 0:0 315532800
        Directory opt/app/lib/site/ 755 0:0 315532800
        Regular opt/app/lib/site/a.py 644 0:0 315532800
        Link opt/app/lib/site/b.py 644 0:0 315532800 -> opt/app/lib/site/a.py
        "#);

        let gzip = write_layer(&prefix, &directory.path().join("l.tar.gz"), &options).unwrap();
        assert_eq!(gzip.diff_id, first.diff_id);
        let again = write_layer(&prefix, &directory.path().join("m.tar.gz"), &options).unwrap();
        assert_eq!(gzip.sha256, again.sha256);
        let zstd = write_layer(&prefix, &directory.path().join("l.tar.zst"), &options).unwrap();
        assert_eq!(zstd.diff_id, first.diff_id);
        assert_ne!(zstd.sha256, gzip.sha256);
    }

    #[test]
    fn bad_names_are_refused() {
        let directory = tempfile::tempdir().unwrap();
        let options = LayerOptions {
            at: "/opt/../x".to_string(),
            owner: (0, 0),
            mtime: 0,
        };
        let error = write_layer(directory.path(), &directory.path().join("x.tar"), &options)
            .unwrap_err()
            .to_string();
        insta::assert_snapshot!(error, @"--at /opt/../x: expected an absolute path such as /opt/authentik");
        let error = write_layer(directory.path(), &directory.path().join("x.zip"), &options)
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with("a layer's name ends in .tar, .tar.gz or .tar.zst"),
            "{error}"
        );
    }

    #[test]
    fn a_prefix_given_through_a_link_is_archived_as_its_directory() {
        let directory = tempfile::tempdir().unwrap();
        let real = prefix(directory.path());
        let link = directory.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let options = LayerOptions {
            at: "/opt/app".to_string(),
            owner: (0, 0),
            mtime: 0,
        };
        let through_link = write_layer(&link, &directory.path().join("a.tar"), &options).unwrap();
        let direct = write_layer(&real, &directory.path().join("b.tar"), &options).unwrap();
        assert_eq!(through_link.sha256, direct.sha256);
        let bytes = fs_err::read(directory.path().join("a.tar")).unwrap();
        let root = tar::Archive::new(bytes.as_slice())
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap())
            .find(|entry| entry.path().unwrap() == Path::new("opt/app/"))
            .map(|entry| entry.header().entry_type());
        assert_eq!(root, Some(tar::EntryType::Directory));
    }
}
