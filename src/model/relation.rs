//! One `Depends:` entry of a task, parsed and normalized.

use super::{ModelError, validate_package_name};

/// A parsed `Depends:` entry: its normalized text and the package names it mentions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub text: String,
    pub packages: Vec<String>,
}

/// Parses one relation entry (`a`, `a (>= 1.2)`, `a:any`, `a | b`) with debian-control's parser
/// and rejects what a binary package's `Depends:` may not hold (substvars, arch lists, profiles).
pub fn parse_relation(input: &str) -> Result<Relation, ModelError> {
    use debian_control::lossy::Relations;
    let err = |why: String| ModelError::InvalidRelation {
        relation: input.to_string(),
        why,
    };
    if input.contains(',') {
        return Err(err(
            "one relation per argument; give 'a, b' as two arguments".into(),
        ));
    }
    if input.contains(['\n', '\r', '$']) {
        return Err(err("contains a newline or substitution variable".into()));
    }
    let parsed: Relations = input.parse().map_err(|e: String| err(e.to_lowercase()))?;
    let entry = match parsed.0.as_slice() {
        [entry] => entry,
        [] => return Err(err("empty".into())),
        _ => return Err(err("more than one relation".into())),
    };
    let mut packages = Vec::new();
    let mut parts = Vec::new();
    for rel in entry {
        validate_package_name(&rel.name)
            .map_err(|_| err(format!("bad package name '{}'", rel.name)))?;
        if rel.architectures.is_some() || !rel.profiles.is_empty() {
            return Err(err(
                "architecture lists and build profiles belong in build dependencies".into(),
            ));
        }
        if let Some(q) = &rel.archqual
            && !q.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(err(format!("bad architecture qualifier '{q}'")));
        }
        packages.push(rel.name.clone());
        parts.push(rel.to_string());
    }
    Ok(Relation {
        text: parts.join(" | "),
        packages,
    })
}

/// The package names relation `text` mentions (the text itself when it does not parse).
pub(super) fn relation_packages(text: &str) -> Vec<String> {
    parse_relation(text)
        .map(|r| r.packages)
        .unwrap_or_else(|_| vec![text.to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations() {
        assert_eq!(parse_relation("nginx-light").unwrap().text, "nginx-light");
        assert_eq!(
            parse_relation("php8.2-fpm (>= 8.2)").unwrap().text,
            "php8.2-fpm (>= 8.2)"
        );
        let r = parse_relation("mawk | gawk").unwrap();
        assert_eq!(r.text, "mawk | gawk");
        assert_eq!(r.packages, ["mawk", "gawk"]);
        for bad in [
            "",
            "Nginx",
            "a, b",
            "a (>> )",
            "a [amd64]",
            "${misc:Depends}",
            "a (= 1",
        ] {
            assert!(parse_relation(bad).is_err(), "{bad}");
        }
    }
}
