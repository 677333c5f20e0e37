//! Kyverno's image normalisation (pkg/utils/image/infos.go): the string patterns are matched against.

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Registry host (with port), `docker.io` when none is given.
    pub registry: String,
    /// Repository path.
    pub path: String,
    /// Tag (`latest` when neither tag nor digest is given).
    pub tag: Option<String>,
    /// `sha256:...`, if pinned.
    pub digest: Option<String>,
}

impl ImageInfo {
    /// Parses as Kyverno does: `docker.io/` is prepended when the first component has no `.` or `:`
    /// and is not `localhost` (and `library/` is NOT added).
    pub fn parse(image: &str) -> Result<ImageInfo, String> {
        if image.is_empty() || image.contains(char::is_whitespace) {
            return Err(format!("invalid image reference {image:?}"));
        }
        let (rest, digest) = match image.split_once('@') {
            Some((rest, digest)) if digest.starts_with("sha256:") && digest.len() == 71 => {
                (rest, Some(digest.to_string()))
            }
            Some(_) => return Err(format!("invalid digest in image reference {image:?}")),
            None => (image, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), path.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        if path.is_empty() {
            return Err(format!("invalid image reference {image:?}"));
        }
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(ImageInfo { registry, path, tag, digest })
    }

    /// `registry/path@digest` when pinned (the tag is dropped), else `registry/path:tag`.
    pub fn matching_string(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => format!("{}/{}@{digest}", self.registry, self.path),
            (None, Some(tag)) => format!("{}/{}:{tag}", self.registry, self.path),
            (None, None) => format!("{}/{}", self.registry, self.path),
        }
    }

    /// `registry/path:tag` (or without tag): what the digest is appended to (the tag is kept).
    pub fn without_digest(&self) -> String {
        match &self.tag {
            Some(tag) => format!("{}/{}:{tag}", self.registry, self.path),
            None => format!("{}/{}", self.registry, self.path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ImageInfo;

    #[test]
    fn normalisation_table() {
        let cases = [
            ("nginx", "docker.io/nginx:latest"),
            ("test/nginx", "docker.io/test/nginx:latest"),
            ("docker.io/library/nginx", "docker.io/library/nginx:latest"),
            (
                "ghcr.io/o/a:v1@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "ghcr.io/o/a@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            ),
            ("localhost:5001/x", "localhost:5001/x:latest"),
            ("127.0.0.1:8095/acme/widget:v1", "127.0.0.1:8095/acme/widget:v1"),
        ];
        for (input, expected) in cases {
            assert_eq!(ImageInfo::parse(input).unwrap().matching_string(), expected, "{input}");
        }
        let pinned =
            ImageInfo::parse("ghcr.io/o/a:v1@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
                .unwrap();
        assert_eq!(pinned.without_digest(), "ghcr.io/o/a:v1");
        assert!(ImageInfo::parse("a@sha256:short").is_err());
        assert!(ImageInfo::parse("").is_err());
    }
}
