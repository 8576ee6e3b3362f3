//! File positions for error messages: `path:line:column`, 1-based, columns in characters.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A place in an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The position of byte `offset` in `text`.
    pub fn at_offset(path: &Path, text: &str, offset: usize) -> Location {
        let offset = offset.min(text.len());
        // Never split a character: step back to the nearest boundary.
        let offset = (0..=offset)
            .rev()
            .find(|&index| text.is_char_boundary(index))
            .unwrap_or(0);
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |index| index + 1);
        let column = before[line_start..].chars().count() + 1;
        Location {
            path: path.to_path_buf(),
            line,
            column,
        }
    }

    /// A line (1-based) and column of a line-oriented format.
    pub fn at_line(path: &Path, line: usize, column: usize) -> Location {
        Location {
            path: path.to_path_buf(),
            line,
            column,
        }
    }
}

/// Line starts of one file, computed once, so that locating the thousands of entries of a
/// large lock stays linear rather than rescanning the text for each.
pub struct LineIndex<'a> {
    path: &'a Path,
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(path: &'a Path, text: &'a str) -> LineIndex<'a> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(index, _)| index + 1))
            .collect();
        LineIndex {
            path,
            text,
            line_starts,
        }
    }

    /// The position of the start of a span, as TOML parsers report them.
    pub fn at_span(&self, span: Range<usize>) -> Location {
        let offset = span.start.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line.saturating_sub(1)];
        let end = (line_start..=offset)
            .rev()
            .find(|&index| self.text.is_char_boundary(index))
            .unwrap_or(line_start);
        Location {
            path: self.path.to_path_buf(),
            line,
            column: self.text[line_start..end].chars().count() + 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "a = 1\nbé = 2\n";
        let path = Path::new("f.toml");
        assert_eq!(Location::at_offset(path, text, 0).to_string(), "f.toml:1:1");
        assert_eq!(Location::at_offset(path, text, 6).to_string(), "f.toml:2:1");
        // `=` after a two-byte character is the fourth character of line 2.
        let equals = text.rfind('=').unwrap();
        assert_eq!(
            Location::at_offset(path, text, equals).to_string(),
            "f.toml:2:4"
        );
        // Past the end clamps to the end.
        assert_eq!(
            Location::at_offset(path, text, 999).to_string(),
            "f.toml:3:1"
        );
    }

    #[test]
    fn line_index_agrees_with_offsets() {
        let text = "a = 1\nbé = 2\n\nlast";
        let path = Path::new("f.toml");
        let index = LineIndex::new(path, text);
        for offset in 0..=text.len() + 2 {
            assert_eq!(
                index.at_span(offset..offset + 1),
                Location::at_offset(path, text, offset),
                "offset {offset}"
            );
        }
    }
}
