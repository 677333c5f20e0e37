//! The crates as layers (docs/architecture.md): the layer table there is the rule, and every
//! crate's `[dependencies]` must name only crates of lower layers. Dev-dependencies are free (a
//! crate's tests may drive it through higher ones).

use std::collections::BTreeMap;

use sigstack_e2e::workspace_root;

/// crate name -> layer, from the table of docs/architecture.md (`| layer | crate | ... |`).
fn layers() -> BTreeMap<String, u32> {
    let doc = std::fs::read_to_string(workspace_root().join("docs/architecture.md")).unwrap();
    doc.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let layer = cells.get(1)?.parse().ok()?;
            Some((cells.get(2)?.to_string(), layer))
        })
        .collect()
}

/// The workspace's crates: name -> the sigstack crates its `[dependencies]` name.
fn workspace_dependencies() -> BTreeMap<String, Vec<String>> {
    let root = workspace_root();
    let mut manifests: Vec<std::path::PathBuf> =
        std::fs::read_dir(root.join("services")).unwrap().flatten().map(|e| e.path().join("Cargo.toml")).collect();
    manifests.extend([root.join("e2e/Cargo.toml"), root.join("bench/Cargo.toml")]);
    manifests
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let name = text
                .lines()
                .find_map(|l| l.strip_prefix("name = \""))
                .and_then(|rest| rest.strip_suffix('"'))
                .unwrap_or_else(|| panic!("{} has no package name", path.display()))
                .to_string();
            let mut section = "";
            let mut dependencies = Vec::new();
            for line in text.lines() {
                if line.starts_with('[') {
                    section = line;
                } else if section == "[dependencies]" {
                    let key = line.split(['=', '.', ' ']).next().unwrap_or_default();
                    if key.starts_with("sigstack") {
                        dependencies.push(key.to_string());
                    }
                }
            }
            (name, dependencies)
        })
        .collect()
}

#[test]
fn every_crate_uses_only_crates_of_lower_layers() {
    let layers = layers();
    let crates = workspace_dependencies();
    for name in crates.keys() {
        assert!(layers.contains_key(name), "{name} is missing from docs/architecture.md's layer table");
    }
    let mut violations = Vec::new();
    for (name, dependencies) in &crates {
        for dependency in dependencies {
            let (own, theirs) = (layers[name], layers[dependency]);
            if theirs >= own {
                violations.push(format!("{name} (layer {own}) uses {dependency} (layer {theirs})"));
            }
        }
    }
    assert!(violations.is_empty(), "crates above their layer (docs/architecture.md):\n{}", violations.join("\n"));
}

#[test]
fn the_rule_catches_a_crate_above_its_layer() {
    // The parser must see dependencies at all, or the test above would pass on nothing.
    let crates = workspace_dependencies();
    assert!(crates["sigstack"].contains(&"sigstack-rekor".to_string()), "{crates:?}");
    assert!(crates["sigstack-rekor"].contains(&"sigstack-fulcio".to_string()), "{crates:?}");
    assert_eq!(layers()["sigstack-rekor"], 2);
}
