//! sha256 over streams and files, and its lowercase hex form, shared by the stages.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// The sha256 digest of a stream and its byte count.
pub fn sha256_reader(mut reader: impl Read) -> std::io::Result<([u8; 32], u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((hasher.finalize().into(), size))
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> HashingReader<R> {
        HashingReader {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// The digest of everything read.
    pub fn finish(self) -> crate::identity::Sha256 {
        crate::identity::Sha256::from_digest(&self.digest())
    }

    /// The raw digest of everything read.
    pub fn digest(self) -> [u8; 32] {
        self.hasher.finalize().into()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        Ok(read)
    }
}

/// A writer that hashes (sha256) and counts what passes through: the one hash-while-writing
/// (a layer as it is compressed, a blob pulled from a registry).
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: std::io::Write> HashingWriter<W> {
    pub fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The inner writer, the lowercase hex sha256 and the size of everything written.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex(&self.hasher.finalize()), self.size)
    }
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buffer)?;
        self.hasher.update(&buffer[..written]);
        self.size += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The one way a stage makes its build-cache key: the inputs that decide its output, fed in a
/// fixed order and hashed with sha256. Each stage keeps the encoding its entries were made with
/// (a key that changed would orphan every cache entry, and the web UI's is in manifests):
/// `field` (name and value, each ended by a NUL), `line` (text ended by a newline), or
/// `document` (one serialized document as it is).
pub struct BuildKey(Sha256);

impl BuildKey {
    pub fn new() -> BuildKey {
        BuildKey(Sha256::new())
    }

    pub fn field(&mut self, name: &str, value: &str) -> &mut BuildKey {
        self.0.update(name.as_bytes());
        self.0.update([0]);
        self.0.update(value.as_bytes());
        self.0.update([0]);
        self
    }

    pub fn line(&mut self, text: &str) -> &mut BuildKey {
        self.0.update(text.as_bytes());
        self.0.update(b"\n");
        self
    }

    pub fn document(mut self, text: &str) -> BuildKey {
        self.0.update(text.as_bytes());
        self
    }

    pub fn finish(self) -> crate::identity::Sha256 {
        crate::identity::Sha256::from_digest(&self.0.finalize().into())
    }
}

impl Default for BuildKey {
    fn default() -> BuildKey {
        BuildKey::new()
    }
}

/// Lowercase hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The lowercase hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The lowercase hex sha256 of a file's contents.
pub fn sha256_hex_of_file(path: &Path) -> std::io::Result<String> {
    let file = fs_err::File::open(path)?;
    let (digest, _) = sha256_reader(file)?;
    Ok(hex(&digest))
}

/// [`sha256_hex_of_file`] of a regular file only, its link not followed
/// ([`crate::path_io::open_regular`]): for files below a directory akpkg did not write.
pub fn sha256_hex_of_regular_file(path: &Path) -> std::io::Result<String> {
    let (digest, _) = sha256_reader(crate::path_io::open_regular(path)?)?;
    Ok(hex(&digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(sha256_hex(b""), empty);
        assert_eq!(hex(&sha256_reader(&b""[..]).unwrap().0), empty);
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }

    /// Each encoding hashes exactly the bytes the stages hashed before there was one builder,
    /// so no cache entry and no manifest changed with it.
    #[test]
    fn build_keys_hash_the_encodings_the_caches_were_made_with() {
        let document = BuildKey::new().document("{\"format\":3}").finish();
        assert_eq!(document.to_string(), sha256_hex(b"{\"format\":3}"));
        let mut fields = BuildKey::new();
        fields
            .field("go", "go1.25.5")
            .field("package", "./cmd/server");
        assert_eq!(
            fields.finish().to_string(),
            sha256_hex(b"go\0go1.25.5\0package\0./cmd/server\0")
        );
        let mut lines = BuildKey::new();
        lines.line("akpkg-web 0.1.0").line("generated: true");
        assert_eq!(
            lines.finish().to_string(),
            sha256_hex(b"akpkg-web 0.1.0\ngenerated: true\n")
        );
    }
}
