//! The streaming `Packages` parser: one stanza at a time from a `BufRead` over the decoder, so
//! the decompressed file is never held in memory at all.

use std::io::{BufRead, BufReader, Read};

use super::{CatalogError, MAX_LINE, Package};

/// Wraps `r` in the decoder its first bytes call for: xz, gzip, or none (plain text).
pub fn decoder<'a>(what: &str, r: impl Read + 'a) -> Result<Box<dyn BufRead + 'a>, CatalogError> {
    let mut r = BufReader::with_capacity(1 << 16, r);
    let head = r.fill_buf().map_err(|e| CatalogError::Decompress {
        what: what.to_string(),
        detail: e.to_string(),
    })?;
    const CAP: usize = 1 << 18;
    Ok(if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(BufReader::with_capacity(
            CAP,
            liblzma::read::XzDecoder::new_multi_decoder(r),
        ))
    } else if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(
            CAP,
            flate2::bufread::MultiGzDecoder::new(r),
        ))
    } else {
        Box::new(r)
    })
}

#[derive(Default)]
struct Stanza {
    name: Option<String>,
    version: Option<String>,
    section: String,
    priority: String,
    description: Option<String>,
    provides: String,
    /// The field the last line belonged to, for continuation lines.
    last: Option<Field>,
    any: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Provides,
    Other,
}

/// Parses a Packages stream, calling `each` for every stanza; returns the number of stanzas.
/// `what` names the input in errors.
pub fn parse(
    what: &str,
    mut r: impl BufRead,
    mut each: impl FnMut(Package),
) -> Result<u64, CatalogError> {
    let mut buf: Vec<u8> = Vec::with_capacity(256);
    let mut line_no = 0u64;
    let mut count = 0u64;
    let mut st = Stanza::default();
    let not_packages = |line: u64, why: &str| CatalogError::NotPackages {
        what: what.to_string(),
        line,
        why: why.to_string(),
    };
    loop {
        buf.clear();
        let n = r
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| CatalogError::Decompress {
                what: what.to_string(),
                detail: e.to_string(),
            })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.len() > MAX_LINE {
            return Err(CatalogError::LineTooLong {
                what: what.to_string(),
                line: line_no,
            });
        }
        let line = std::str::from_utf8(&buf).map_err(|_| not_packages(line_no, "not UTF-8"))?;
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            if st.any {
                count += 1;
                each(finish(what, line_no, std::mem::take(&mut st))?);
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match st.last {
                Some(Field::Provides) => {
                    st.provides.push(' ');
                    st.provides.push_str(line.trim());
                }
                Some(Field::Other) => {}
                None => return Err(not_packages(line_no, "continuation line without a field")),
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(not_packages(line_no, "expected 'Field: value'"));
        };
        if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(not_packages(line_no, "bad field name"));
        }
        let value = value.trim();
        st.any = true;
        st.last = Some(Field::Other);
        if key.eq_ignore_ascii_case("Package") {
            st.name = Some(value.to_string());
        } else if key.eq_ignore_ascii_case("Version") {
            st.version = Some(value.to_string());
        } else if key.eq_ignore_ascii_case("Section") {
            st.section = value.to_string();
        } else if key.eq_ignore_ascii_case("Priority") {
            st.priority = value.to_string();
        } else if key.eq_ignore_ascii_case("Description") {
            st.description = Some(value.to_string());
        } else if key.eq_ignore_ascii_case("Provides") {
            st.provides = value.to_string();
            st.last = Some(Field::Provides);
        }
    }
    if st.any {
        count += 1;
        each(finish(what, line_no + 1, st)?);
    }
    if count == 0 {
        return Err(CatalogError::Empty {
            what: what.to_string(),
        });
    }
    Ok(count)
}

fn finish(what: &str, line: u64, st: Stanza) -> Result<Package, CatalogError> {
    let missing = |field| CatalogError::MissingField {
        what: what.to_string(),
        line,
        field,
    };
    let name = st
        .name
        .filter(|n| !n.is_empty())
        .ok_or(missing("Package"))?;
    let version = st
        .version
        .filter(|v| !v.is_empty())
        .ok_or(missing("Version"))?;
    if crate::model::validate_package_name(&name).is_err() {
        return Err(CatalogError::NotPackages {
            what: what.to_string(),
            line,
            why: format!("bad package name '{name}'"),
        });
    }
    Ok(Package {
        name,
        version,
        section: st.section,
        priority: st.priority,
        description: st.description.unwrap_or_default(),
        provides: st
            .provides
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &[u8]) -> Result<Vec<Package>, CatalogError> {
        let mut out = Vec::new();
        parse("test", decoder("test", text)?, |p| out.push(p))?;
        Ok(out)
    }

    const TWO: &str = "Package: nginx\nVersion: 1.22.1-9\nSection: httpd\nPriority: optional\n\
        Provides: httpd, httpd-cgi,\n nginx-abi (= 1.22)\nDescription: small, powerful web server\n \
        long text\n\nPackage: less\nVersion: 590-2\nDescription: pager\n";

    #[test]
    fn parses_stanzas() {
        let p = parse_all(TWO.as_bytes()).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "nginx");
        assert_eq!(p[0].description, "small, powerful web server");
        assert_eq!(p[0].provides, ["httpd", "httpd-cgi", "nginx-abi (= 1.22)"]);
        assert_eq!(p[1].version, "590-2");
    }

    #[test]
    fn decompresses() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(TWO.as_bytes()).unwrap();
        assert_eq!(parse_all(&gz.finish().unwrap()).unwrap().len(), 2);
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(TWO.as_bytes()).unwrap();
        let xz = xz.finish().unwrap();
        assert_eq!(parse_all(&xz).unwrap().len(), 2);
        let err = parse_all(&xz[..xz.len() / 2]).unwrap_err().to_string();
        assert!(err.contains("cannot decompress"), "{err}");
    }

    #[test]
    fn rejects_bad_input() {
        let e = parse_all(b"<html>\n<body>nope</body>\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1: not a Packages file"), "{e}");
        let e = parse_all(b"Package: a\n\nPackage: b\nVersion: 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field 'Version'"), "{e}");
        let e = parse_all(b"Version: 1\n").unwrap_err().to_string();
        assert!(e.contains("missing field 'Package'"), "{e}");
        let e = parse_all(b"").unwrap_err().to_string();
        assert!(e.contains("no package stanzas"), "{e}");
        let long = format!(
            "Package: aa\nVersion: 1\nDescription: {}\n",
            "x".repeat(2 << 20)
        );
        let e = parse_all(long.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("line 3: longer than"), "{e}");
    }
}
