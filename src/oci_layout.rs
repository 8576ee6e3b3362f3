//! An OCI image layout's blobs (image-spec `image-layout.md`), as `akpkg layer --oci` writes
//! them and `push` and `--oci-base` read them: the one place that turns a descriptor's digest
//! into a path and reads a blob checked against it.

use std::path::{Path, PathBuf};

use crate::identity::Sha256;

/// `blobs/sha256/<hex>`, relative to the layout.
pub fn blob_path(digest: &Sha256) -> PathBuf {
    Path::new("blobs/sha256").join(digest.as_str())
}

/// The sha256 a descriptor's digest names; any other algorithm, or a digest that is not 64
/// lowercase hex digits, is refused (with the reason) before it becomes a path.
pub fn sha256_of(digest: &oci_spec::image::Digest) -> Result<Sha256, String> {
    if digest.algorithm().as_ref() != "sha256" {
        return Err(format!("digest {digest}: akpkg reads sha256 digests only"));
    }
    digest
        .digest()
        .parse()
        .map_err(|error| format!("digest {digest}: {error}"))
}

/// The bytes of the blob `digest` of the layout at `layout`, read only if it is a regular file
/// and checked against its digest; the error says which file and why.
pub fn read_blob(layout: &Path, digest: &Sha256) -> Result<Vec<u8>, String> {
    let path = layout.join(blob_path(digest));
    let bytes = crate::path_io::read_regular(&path)
        .map_err(|error| format!("{}: {}", path.display(), crate::path_io::Reason(&error)))?;
    let actual = Sha256::of_bytes(&bytes);
    if actual != *digest {
        return Err(format!(
            "{}: its bytes hash to sha256:{actual}, not to the digest it is named after; the layout is corrupt or was altered",
            path.display()
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_named_by_their_sha256_and_read_checked() {
        let directory = tempfile::tempdir().unwrap();
        let digest = Sha256::of_bytes(b"{}");
        fs_err::create_dir_all(directory.path().join("blobs/sha256")).unwrap();
        fs_err::write(directory.path().join(blob_path(&digest)), b"{}").unwrap();
        assert_eq!(read_blob(directory.path(), &digest).unwrap(), b"{}");
        fs_err::write(directory.path().join(blob_path(&digest)), b"[]").unwrap();
        let error = read_blob(directory.path(), &digest).unwrap_err();
        assert!(
            error.contains("not to the digest it is named after"),
            "{error}"
        );
        let other: oci_spec::image::Digest = format!("sha512:{}", "0".repeat(128)).parse().unwrap();
        assert!(
            sha256_of(&other)
                .unwrap_err()
                .contains("sha256 digests only")
        );
    }
}
