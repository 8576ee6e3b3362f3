//! A web build through the shared remote cache: its record and its output as one tar, under
//! the tag `web-<key>`.

use std::path::Path;

use crate::identity::Sha256;
use crate::registry::{RECORD_MEDIA_TYPE, RemoteCache, TAR_MEDIA_TYPE, WEB_TYPE};

const OUTPUT_TAR: &str = "output.tar";

fn tag(key: &Sha256) -> String {
    format!("web-{key}")
}

/// Push the finished build `bucket/<key>`: its record and its output, as a deterministic tar.
pub fn push(remote: &RemoteCache, bucket: &Path, key: &Sha256) {
    let finished = bucket.join(key.as_str());
    let Ok(outgoing) = tempfile::Builder::new()
        .prefix(".outgoing-")
        .tempdir_in(bucket)
    else {
        return;
    };
    let tar = outgoing.path().join(OUTPUT_TAR);
    let written = fs_err::File::create(&tar)
        .ok()
        .and_then(|file| {
            crate::archive::write_tree_tar(
                &finished.join("output"),
                std::io::BufWriter::new(file),
                &crate::archive::TarOptions::default(),
            )
            .ok()
        })
        .and_then(|(writer, _)| writer.into_inner().ok());
    if written.is_none() {
        return;
    }
    remote.push_files(
        &tag(key),
        WEB_TYPE,
        &[
            (&finished.join(super::RECORD), RECORD_MEDIA_TYPE),
            (&tar, TAR_MEDIA_TYPE),
        ],
    );
}

/// Bring the build `key` from the remote cache into `bucket/<key>`: the record and the tar
/// (each checked against its digest, the entry against its key by the remote cache), the tar
/// unpacked through the contained edge within the unpacking limits; `false` if anything is
/// missing or wrong.
pub fn pull(remote: &RemoteCache, bucket: &Path, key: &Sha256) -> bool {
    let Some((incoming, files)) = remote.pull_into(bucket, &tag(key), WEB_TYPE) else {
        return false;
    };
    let names: Vec<&str> = files.iter().map(|(_, name)| name.as_str()).collect();
    if names.len() != 2 || !names.contains(&super::RECORD) || !names.contains(&OUTPUT_TAR) {
        return false;
    }
    let output = incoming.path().join("output");
    let tar = incoming.path().join(OUTPUT_TAR);
    if fs_err::create_dir(&output).is_err()
        || crate::archive::unpack_tar(&tar, &output, remote.limits()).is_err()
        || fs_err::remove_file(&tar).is_err()
        || !matches!(super::finished_record(incoming.path()), Ok(Some(_)))
    {
        return false;
    }
    let finished = bucket.join(key.as_str());
    crate::registry::publish(incoming, &finished);
    matches!(super::finished_record(&finished), Ok(Some(_)))
}
