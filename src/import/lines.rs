//! Reading a file line by line from a byte offset, without ever holding
//! more than one bounded line in memory: Claude Code transcripts hold
//! snapshot lines of hundreds of megabytes that carry no usage.

use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

/// Lines longer than this are skipped (and counted): no usage line comes
/// near it.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// One complete line (its `\n` and any `\r` before it removed).
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Text(&'a [u8]),
    /// A line over [`MAX_LINE_BYTES`]: its length, its bytes dropped.
    TooLong(usize),
}

/// Bytes read from the file at a time.
const READ_BUFFER: usize = 256 * 1024;

pub struct LineReader<R> {
    reader: BufReader<R>,
    /// The line being returned, reused from line to line: a transcript
    /// has hundreds of thousands of lines, and a fresh buffer for each was
    /// a tenth of the import's time.
    line: Vec<u8>,
    /// Offset just past the last complete line returned.
    offset: u64,
    /// 1-based number of the last line returned.
    number: u64,
}

impl<R: Read + Seek> LineReader<R> {
    /// Starts at `offset`, which is just past line `number`.
    pub fn at(inner: R, offset: u64, number: u64) -> io::Result<LineReader<R>> {
        Self::with_buffer(inner, offset, number, READ_BUFFER)
    }

    /// As [`LineReader::at`], reading `buffer` bytes at a time (a small
    /// one to look at a first line only).
    pub fn with_buffer(
        mut inner: R,
        offset: u64,
        number: u64,
        buffer: usize,
    ) -> io::Result<LineReader<R>> {
        inner.seek(SeekFrom::Start(offset))?;
        Ok(LineReader {
            reader: BufReader::with_capacity(buffer, inner),
            line: Vec::new(),
            offset,
            number,
        })
    }
}

impl<R: Read> LineReader<R> {
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next complete line with its number, or `None` at the end. A
    /// last line without its `\n` is not complete yet (the writer may be
    /// in the middle of it): it is left for the next run.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        self.line.clear();
        let mut length = 0usize;
        loop {
            let buffer = self.reader.fill_buf()?;
            if buffer.is_empty() {
                return Ok(None);
            }
            let (chunk, complete) = match memchr::memchr(b'\n', buffer) {
                Some(end) => (&buffer[..=end], true),
                None => (buffer, false),
            };
            let taken = chunk.len();
            length += taken;
            if length <= MAX_LINE_BYTES + 1 {
                self.line.extend_from_slice(chunk);
            }
            self.reader.consume(taken);
            if complete {
                self.offset += length as u64;
                self.number += 1;
                if length > MAX_LINE_BYTES + 1 {
                    return Ok(Some((self.number, Line::TooLong(length - 1))));
                }
                self.line.pop();
                if self.line.last() == Some(&b'\r') {
                    self.line.pop();
                }
                // A huge line once should not keep its memory for the rest.
                if self.line.capacity() > 4 * READ_BUFFER && self.line.len() <= READ_BUFFER {
                    self.line.shrink_to(READ_BUFFER);
                }
                return Ok(Some((self.number, Line::Text(&self.line))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A line, owned, to compare.
    #[derive(Debug, PartialEq, Eq)]
    enum Owned {
        Text(Vec<u8>),
        TooLong(usize),
    }

    impl From<Line<'_>> for Owned {
        fn from(line: Line<'_>) -> Owned {
            match line {
                Line::Text(text) => Owned::Text(text.to_vec()),
                Line::TooLong(length) => Owned::TooLong(length),
            }
        }
    }

    fn all(data: &[u8], offset: u64) -> (Vec<(u64, Owned)>, u64) {
        let mut reader = LineReader::at(Cursor::new(data.to_vec()), offset, 0).expect("seek");
        let mut lines = Vec::new();
        while let Some((number, line)) = reader.next_line().expect("read") {
            lines.push((number, line.into()));
        }
        (lines, reader.offset())
    }

    #[test]
    fn complete_lines_only_and_resumable() {
        let (lines, end) = all(b"a\r\nbb\n\nccc", 0);
        assert_eq!(
            lines,
            vec![
                (1, Owned::Text(b"a".to_vec())),
                (2, Owned::Text(b"bb".to_vec())),
                (3, Owned::Text(Vec::new()))
            ]
        );
        assert_eq!(end, 7, "the unfinished last line is left for later");
        let (rest, _) = all(b"a\r\nbb\n\nccc\n", end);
        assert_eq!(rest, vec![(1, Owned::Text(b"ccc".to_vec()))]);
    }

    #[test]
    fn a_huge_line_is_skipped_without_being_held() {
        let mut data = vec![b'x'; MAX_LINE_BYTES + 10];
        data.extend_from_slice(b"\nok\n");
        let (lines, end) = all(&data, 0);
        assert_eq!(lines[0], (1, Owned::TooLong(MAX_LINE_BYTES + 10)));
        assert_eq!(lines[1], (2, Owned::Text(b"ok".to_vec())));
        assert_eq!(end, data.len() as u64);
    }
}
