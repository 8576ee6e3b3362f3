//! RECORD files: "a list of (almost) all the files in the wheel and their secure hashes"
//! (binary distribution format, "The .dist-info directory"), as CSV rows `path,hash,size` with
//! `hash` written `sha256=<urlsafe base64 without padding>`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// One row of a RECORD file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordEntry {
    /// `/`-separated, relative to the directory that holds the `.dist-info`.
    pub path: String,
    /// `sha256=…`, or empty for RECORD itself and signature files.
    pub hash: String,
    pub size: Option<u64>,
}

/// Parse RECORD's CSV. Rows with fewer than three fields are malformed.
pub fn parse_record(text: &[u8]) -> Result<Vec<RecordEntry>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text);
    let mut entries = Vec::new();
    for (index, row) in reader.records().enumerate() {
        let row = row.map_err(|error| format!("RECORD line {}: {error}", index + 1))?;
        // Quoted fields may span lines: name the line the row starts on.
        let line = row
            .position()
            .map_or(index as u64 + 1, |position| position.line());
        if row.len() != 3 {
            return Err(format!(
                "RECORD line {line}: expected 3 fields (path,hash,size), found {}",
                row.len()
            ));
        }
        if row[0].is_empty() {
            return Err(format!("RECORD line {line}: the path is empty"));
        }
        let size = match &row[2] {
            "" => None,
            text => Some(
                text.parse()
                    .map_err(|_| format!("RECORD line {line}: size `{text}` is not a number"))?,
            ),
        };
        entries.push(RecordEntry {
            path: row[0].to_string(),
            hash: row[1].to_string(),
            size,
        });
    }
    Ok(entries)
}

/// Write RECORD rows, sorted by path, with RECORD itself listed without hash or size.
pub fn write_record(mut entries: Vec<RecordEntry>, record_path: &str) -> Result<Vec<u8>, String> {
    entries.retain(|entry| entry.path != record_path);
    entries.push(RecordEntry {
        path: record_path.to_string(),
        hash: String::new(),
        size: None,
    });
    entries.sort();
    entries.dedup_by(|a, b| a.path == b.path);
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    for entry in &entries {
        let size = entry.size.map(|size| size.to_string()).unwrap_or_default();
        writer
            .write_record([entry.path.as_str(), entry.hash.as_str(), size.as_str()])
            .map_err(|error| error.to_string())?;
    }
    writer.into_inner().map_err(|error| error.to_string())
}

/// `sha256=<urlsafe base64, no padding>` of some bytes, as RECORD writes hashes.
pub fn record_hash(bytes: &[u8]) -> String {
    format!("sha256={}", URL_SAFE_NO_PAD.encode(Sha256::digest(bytes)))
}

/// RECORD's form of a sha256 digest.
pub fn record_hash_of_digest(digest: &[u8; 32]) -> String {
    format!("sha256={}", URL_SAFE_NO_PAD.encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_paths_and_empty_fields() {
        let text = b"pkg/__init__.py,sha256=abc,12\n\"pkg/a,b.py\",sha256=def,3\npkg-1.0.dist-info/RECORD,,\n";
        let entries = parse_record(text).unwrap();
        assert_eq!(entries[1].path, "pkg/a,b.py");
        assert_eq!(entries[2].size, None);
        assert!(
            parse_record(b"a,b\n")
                .unwrap_err()
                .contains("expected 3 fields")
        );
        assert!(parse_record(b"a,b,x\n").unwrap_err().contains("size `x`"));
        // Found by fuzzing: a row with an empty path was accepted.
        assert_eq!(
            parse_record(b"a,,\n\"multi\nline\",,\n,,\n").unwrap_err(),
            "RECORD line 4: the path is empty"
        );
    }

    #[test]
    fn writes_sorted_rows_with_record_last_in_order() {
        let entries = vec![
            RecordEntry {
                path: "z.py".into(),
                hash: "sha256=z".into(),
                size: Some(1),
            },
            RecordEntry {
                path: "a,b.py".into(),
                hash: "sha256=a".into(),
                size: Some(2),
            },
            RecordEntry {
                path: "x-1.dist-info/RECORD".into(),
                hash: "sha256=old".into(),
                size: Some(9),
            },
        ];
        let text =
            String::from_utf8(write_record(entries, "x-1.dist-info/RECORD").unwrap()).unwrap();
        insta::assert_snapshot!(text, @r#"
        "a,b.py",sha256=a,2
        x-1.dist-info/RECORD,,
        z.py,sha256=z,1
        "#);
    }

    #[test]
    fn hashes_are_urlsafe_base64_without_padding() {
        // sha256("") = e3b0c442…; in RECORD form:
        assert_eq!(
            record_hash(b""),
            "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
        let mut reader = crate::digest::HashingReader::new(&b"hello"[..]);
        std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
        assert_eq!(
            record_hash_of_digest(&reader.digest()),
            record_hash(b"hello")
        );
    }
}
