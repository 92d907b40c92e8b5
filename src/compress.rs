//! The two deterministic compressors: gzip for the debs' members and `Packages.gz`, xz for
//! `Packages.xz`.
//!
//! Pure: the same input gives the same bytes (for a given `Cargo.lock`: the deflate backend
//! and the bundled liblzma are pinned there). Neither writes a timestamp or a file name.

use std::io::{self, Write};

use flate2::{Compression, GzBuilder};

/// The operating-system byte of a gzip header (RFC 1952), which readers ignore. Two values are
/// in use, each kept so that an unchanged model keeps its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GzipOs {
    /// 3, as `gzip -n` and so `dpkg-deb` write it: the debs' `control.tar.gz`, `data.tar.gz`
    /// and changelog.
    Unix,
    /// 255, flate2's default: `Packages.gz`.
    Unknown,
}

impl GzipOs {
    fn byte(self) -> u8 {
        match self {
            GzipOs::Unix => 3,
            GzipOs::Unknown => 255,
        }
    }
}

/// gzip at level 9 with a zero timestamp and no file name.
pub fn gzip(data: &[u8], os: GzipOs) -> io::Result<Vec<u8>> {
    let mut enc = GzBuilder::new()
        .mtime(0)
        .operating_system(os.byte())
        .write(Vec::with_capacity(data.len() / 4 + 64), Compression::best());
    enc.write_all(data)?;
    enc.finish()
}

/// xz at preset 6 with a dictionary sized to the input (a power of two, 4 KiB to 8 MiB):
/// same output size for index-sized inputs, and ~3x faster than the preset's 8 MiB
/// dictionary, whose setup dominated a host's cold render. The size is part of the stream
/// header, so it is a pure function of the input length.
pub fn xz(data: &[u8]) -> io::Result<Vec<u8>> {
    use liblzma::stream::{Check, Filters, LzmaOptions, Stream};
    let lzma = |e: liblzma::stream::Error| io::Error::other(e.to_string());
    let mut opts = LzmaOptions::new_preset(6).map_err(lzma)?;
    let dict = data.len().next_power_of_two().clamp(4096, 8 << 20);
    opts.dict_size(u32::try_from(dict).unwrap_or(8 << 20));
    let mut filters = Filters::new();
    filters.lzma2(&opts);
    let stream = Stream::new_stream_encoder(&filters, Check::Crc64).map_err(lzma)?;
    let mut enc = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
    enc.write_all(data)?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_readable() {
        let text = b"Package: x\n".repeat(100);
        for os in [GzipOs::Unix, GzipOs::Unknown] {
            let gz = gzip(&text, os).unwrap();
            assert_eq!(gz, gzip(&text, os).unwrap());
            // mtime 0, no file name (FLG 0), the OS byte asked for.
            assert_eq!(&gz[3..10], &[0, 0, 0, 0, 0, 2, os.byte()]);
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain)
                .unwrap();
            assert_eq!(plain, text);
        }
        assert_eq!(xz(&text).unwrap(), xz(&text).unwrap());
    }
}
