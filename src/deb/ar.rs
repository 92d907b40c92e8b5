//! The outer `ar` archive of a `.deb`.

use super::DebError;

/// An `ar` archive of `members` (name, contents) in order, each with mode `100644`, owner
/// `0/0` and timestamp `mtime`, as `dpkg-deb` writes them.
pub(super) fn archive(members: &[(&str, &[u8])], mtime: u64) -> Result<Vec<u8>, DebError> {
    let mut ar = ::ar::Builder::new(Vec::new());
    for (name, contents) in members {
        let mut header = ::ar::Header::new(name.as_bytes().to_vec(), contents.len() as u64);
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(0o100_644);
        ar.append(&header, *contents)?;
    }
    Ok(ar.into_inner()?)
}
