//! SPDX 2.3 SBOM of an image, made by reading its layers: the image as the described package,
//! every regular file with SHA-1 and SHA-256 (SPDX requires SHA-1), and packages found in the
//! layers (Debian dpkg status, Cargo.lock, Python `*.dist-info/METADATA`, npm package-lock.json)
//! with purls and declared licenses where the metadata gives them.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, bail};
use aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY;
use serde_json::{Value, json};

use crate::oci::{Registry, hex};

/// A package found in the image.
struct Found {
    name: String,
    version: String,
    purl: String,
    license: Option<String>,
}

/// Licenses passed through as declared; anything else becomes NOASSERTION rather than an
/// expression the SPDX validator would reject.
const KNOWN_LICENSES: &[&str] = &[
    "MIT",
    "Apache-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "MPL-2.0",
    "GPL-2.0-only",
    "GPL-3.0-only",
    "LGPL-2.1-only",
    "LGPL-3.0-only",
    "Unlicense",
    "0BSD",
    "Zlib",
    "PSF-2.0",
];

fn license(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|l| KNOWN_LICENSES.contains(l)).map(str::to_string)
}

fn dpkg(status: &str) -> Vec<Found> {
    status
        .split("\n\n")
        .filter_map(|stanza| {
            let field = |name: &str| stanza.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::trim));
            let (name, version) = (field("Package")?, field("Version")?);
            let arch = field("Architecture").unwrap_or("all");
            Some(Found {
                name: name.into(),
                version: version.into(),
                purl: format!("pkg:deb/debian/{name}@{version}?arch={arch}"),
                license: None,
            })
        })
        .collect()
}

fn cargo_lock(lock: &str) -> Vec<Found> {
    lock.split("[[package]]")
        .skip(1)
        .filter_map(|block| {
            let value = |key: &str| {
                block
                    .lines()
                    .find_map(|l| l.trim().strip_prefix(&format!("{key} = \"")).map(|v| v.trim_end_matches('"')))
            };
            let (name, version) = (value("name")?, value("version")?);
            Some(Found {
                name: name.into(),
                version: version.into(),
                purl: format!("pkg:cargo/{name}@{version}"),
                license: None,
            })
        })
        .collect()
}

fn python_metadata(metadata: &str) -> Option<Found> {
    let field = |name: &str| metadata.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::trim));
    let (name, version) = (field("Name")?, field("Version")?);
    Some(Found {
        name: name.into(),
        version: version.into(),
        purl: format!("pkg:pypi/{}@{version}", name.to_lowercase()),
        license: license(field("License")),
    })
}

fn npm_lock(lock: &str) -> Vec<Found> {
    let Ok(lock) = serde_json::from_str::<Value>(lock) else { return Vec::new() };
    lock["packages"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(path, package)| {
            let name =
                path.rsplit("node_modules/").next().filter(|n| !n.is_empty() && path.contains("node_modules/"))?;
            let version = package["version"].as_str()?;
            Some(Found {
                name: name.into(),
                version: version.into(),
                purl: format!("pkg:npm/{name}@{version}"),
                license: license(package["license"].as_str()),
            })
        })
        .collect()
}

/// Reads every layer (later layers replace earlier paths; whiteouts remove them).
async fn files(
    registry: &Registry,
    reference: &oci_client::Reference,
    manifest: &Value,
) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    for layer in manifest["layers"].as_array().context("manifest has no layers")? {
        let blob = registry.blob(reference, layer["digest"].as_str().context("layer digest")?).await?;
        let tar_bytes = if blob.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(blob.as_slice()).read_to_end(&mut out).context("gunzip layer")?;
            out
        } else {
            blob
        };
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        for entry in archive.entries().context("read layer")? {
            let mut entry = entry?;
            let path = entry.path()?.to_string_lossy().trim_start_matches("./").trim_start_matches('/').to_string();
            if let Some((dir, name)) =
                path.rsplit_once('/').map_or(Some(("", path.as_str())), Some).filter(|(_, n)| n.starts_with(".wh."))
            {
                let target =
                    format!("{}{}", if dir.is_empty() { String::new() } else { format!("{dir}/") }, &name[4..]);
                files.retain(|p: &String, _| p != &target && !p.starts_with(&format!("{target}/")));
                continue;
            }
            if entry.header().entry_type().is_file() {
                let mut content = Vec::new();
                entry.read_to_end(&mut content)?;
                files.insert(path, content);
            }
        }
    }
    Ok(files)
}

/// The SPDX 2.3 JSON document for `image`, and the digest it describes.
pub async fn sbom(registry: &Registry, image: &str) -> anyhow::Result<(String, Value)> {
    let reference = registry.reference(image)?;
    let digest = registry.resolve(&reference).await?;
    let pinned = registry.reference(&format!("{}@{digest}", reference.repository()))?;
    let (manifest, _) = registry.manifest(&pinned).await?.context("the image manifest disappeared")?;
    let manifest: Value = serde_json::from_slice(&manifest)?;
    if manifest["manifests"].is_array() {
        bail!("{image} is a multi-platform index: give the digest of one platform's image");
    }
    let files = files(registry, &pinned, &manifest).await?;
    let mut found = Vec::new();
    for (path, content) in &files {
        let text = String::from_utf8_lossy(content);
        if path == "var/lib/dpkg/status" {
            found.extend(dpkg(&text));
        } else if path.ends_with("Cargo.lock") {
            found.extend(cargo_lock(&text));
        } else if path.ends_with(".dist-info/METADATA") {
            found.extend(python_metadata(&text));
        } else if path.ends_with("package-lock.json") {
            found.extend(npm_lock(&text));
        }
    }
    let repository = reference.repository();
    let name = format!("{}/{repository}", registry.host);
    let short = repository.rsplit('/').next().unwrap_or(repository);
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Package-image",
        "name": name,
        "versionInfo": digest,
        "downloadLocation": "NOASSERTION",
        // It contains the files listed below, which SPDX allows only for an analysed package.
        "filesAnalyzed": true,
        "packageVerificationCode": {"packageVerificationCodeValue": verification_code(&files)},
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": digest.trim_start_matches("sha256:")}],
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
            "referenceLocator": format!("pkg:oci/{short}@{}?repository_url={name}", digest.replace(':', "%3A"))}]
    })];
    let mut relationships = vec![
        json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Package-image"}),
    ];
    for (i, package) in found.iter().enumerate() {
        let id = format!("SPDXRef-Package-{i}");
        packages.push(json!({
            "SPDXID": id,
            "name": package.name,
            "versionInfo": package.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": package.license.as_deref().unwrap_or("NOASSERTION"),
            "copyrightText": "NOASSERTION",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": package.purl}]
        }));
        relationships.push(
            json!({"spdxElementId": "SPDXRef-Package-image", "relationshipType": "CONTAINS", "relatedSpdxElement": id}),
        );
    }
    let spdx_files: Vec<Value> = files
        .iter()
        .enumerate()
        .map(|(i, (path, content))| {
            let id = format!("SPDXRef-File-{i}");
            relationships.push(json!({"spdxElementId": "SPDXRef-Package-image", "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
            json!({
                "SPDXID": id,
                "fileName": format!("./{path}"),
                "checksums": [
                    {"algorithm": "SHA1", "checksumValue": hex(aws_lc_rs::digest::digest(&SHA1_FOR_LEGACY_USE_ONLY, content).as_ref())},
                    {"algorithm": "SHA256", "checksumValue": hex(&crate::oci::sha256(content))}
                ],
                "licenseConcluded": "NOASSERTION",
                "copyrightText": "NOASSERTION"
            })
        })
        .collect();
    let created =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{name}@{digest}"),
        "documentNamespace": format!("https://sigstack.test/spdx/{}/{}-{}", repository, digest.replace(':', "-"), uuid::Uuid::new_v4()),
        "creationInfo": {"created": rfc3339(created), "creators": [format!("Tool: sigstack-{}", env!("CARGO_PKG_VERSION"))]},
        "packages": packages,
        "files": spdx_files,
        "relationships": relationships
    });
    Ok((digest, document))
}

/// SPDX 2.3 §7.9: SHA-1 over the sorted, concatenated SHA-1 hex digests of the package's files.
fn verification_code(files: &BTreeMap<String, Vec<u8>>) -> String {
    let mut sums: Vec<String> =
        files.values().map(|c| hex(aws_lc_rs::digest::digest(&SHA1_FOR_LEGACY_USE_ONLY, c).as_ref())).collect();
    sums.sort();
    hex(aws_lc_rs::digest::digest(&SHA1_FOR_LEGACY_USE_ONLY, sums.concat().as_bytes()).as_ref())
}

/// Unix seconds as RFC 3339 UTC (civil-from-days, Howard Hinnant's algorithm).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers_find_packages() {
        let status = "Package: a\nVersion: 1.0\nArchitecture: amd64\n\nPackage: b\nVersion: 2\n";
        let found = dpkg(status);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].purl, "pkg:deb/debian/a@1.0?arch=amd64");
        let lock = "[[package]]\nname = \"itoa\"\nversion = \"1.0.11\"\n";
        assert_eq!(cargo_lock(lock)[0].purl, "pkg:cargo/itoa@1.0.11");
        let metadata = python_metadata("Name: Six\nVersion: 1.16.0\nLicense: MIT\n").unwrap();
        assert_eq!((metadata.purl.as_str(), metadata.license.as_deref()), ("pkg:pypi/six@1.16.0", Some("MIT")));
        let npm =
            npm_lock(r#"{"packages": {"": {"version": "1"}, "node_modules/x": {"version": "2", "license": "ISC"}}}"#);
        assert_eq!(npm.len(), 1);
        assert_eq!(npm[0].purl, "pkg:npm/x@2");
        assert_eq!(license(Some("Apache 2")), None);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_708_246), "2026-11-26T15:50:46Z");
    }
}
