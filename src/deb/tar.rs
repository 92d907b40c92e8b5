//! GNU-format tar, the way GNU tar (and so `dpkg-deb`) writes it.

use super::{DIR_MODE, DebError};

/// GNU tar pads an archive to a multiple of its record size (20 blocks).
const TAR_RECORD_SIZE: usize = 10240;
const TAR_BLOCK_SIZE: usize = 512;

/// Writes GNU-format tar archives the way GNU tar (and so `dpkg-deb`) does,
/// with names stored verbatim (`./etc/`), which the `tar` crate would
/// normalize away.
pub(super) struct TarWriter {
    out: Vec<u8>,
    mtime: u64,
}

impl TarWriter {
    pub(super) fn new(mtime: u64) -> Self {
        TarWriter {
            out: Vec::new(),
            mtime,
        }
    }

    pub(super) fn directory(&mut self, name: &str) -> Result<(), DebError> {
        self.entry(name, DIR_MODE, b'5', &[])
    }

    pub(super) fn file(&mut self, name: &str, mode: u32, contents: &[u8]) -> Result<(), DebError> {
        self.entry(name, mode, b'0', contents)
    }

    fn entry(&mut self, name: &str, mode: u32, kind: u8, contents: &[u8]) -> Result<(), DebError> {
        let name = name.as_bytes();
        if name.len() > 100 {
            let mut long = name.to_vec();
            long.push(0);
            self.header(b"././@LongLink", 0o644, long.len() as u64, 0, b'L', name)?;
            self.data(&long);
        }
        self.header(
            &name[..name.len().min(100)],
            mode,
            contents.len() as u64,
            self.mtime,
            kind,
            name,
        )?;
        self.data(contents);
        Ok(())
    }

    fn header(
        &mut self,
        name: &[u8],
        mode: u32,
        size: u64,
        mtime: u64,
        kind: u8,
        full_name: &[u8],
    ) -> Result<(), DebError> {
        let too_large = |what: &str| DebError::TooLarge {
            what: format!("{what} of {}", String::from_utf8_lossy(full_name)),
        };
        let mut h = [0u8; TAR_BLOCK_SIZE];
        h[..name.len()].copy_from_slice(name);
        octal(&mut h[100..108], u64::from(mode)).ok_or_else(|| too_large("mode"))?;
        octal(&mut h[108..116], 0).ok_or_else(|| too_large("uid"))?;
        octal(&mut h[116..124], 0).ok_or_else(|| too_large("gid"))?;
        octal(&mut h[124..136], size).ok_or_else(|| too_large("size"))?;
        octal(&mut h[136..148], mtime).ok_or_else(|| too_large("mtime"))?;
        h[156] = kind;
        h[257..265].copy_from_slice(b"ustar  \0");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        h[148..156].fill(b' ');
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        octal(&mut h[148..155], sum).ok_or_else(|| too_large("checksum"))?;
        h[155] = b' ';
        self.out.extend_from_slice(&h);
        Ok(())
    }

    fn data(&mut self, contents: &[u8]) {
        self.out.extend_from_slice(contents);
        let rem = contents.len() % TAR_BLOCK_SIZE;
        if rem != 0 {
            self.out.resize(self.out.len() + TAR_BLOCK_SIZE - rem, 0);
        }
    }

    pub(super) fn finish(mut self) -> Vec<u8> {
        self.out.resize(self.out.len() + 2 * TAR_BLOCK_SIZE, 0);
        let rem = self.out.len() % TAR_RECORD_SIZE;
        if rem != 0 {
            self.out.resize(self.out.len() + TAR_RECORD_SIZE - rem, 0);
        }
        self.out
    }
}

/// Write `value` as zero-padded octal filling all but the last byte of
/// `field`, followed by NUL. `None` when it does not fit.
fn octal(field: &mut [u8], value: u64) -> Option<()> {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    if text.len() > width {
        return None;
    }
    field[..width].copy_from_slice(text.as_bytes());
    field[width] = 0;
    Some(())
}
