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

/// Top-level module -> the crate's other top-level modules its code names (`crate::name`), test
/// modules and comments aside, for the crate whose sources are in `src`.
fn module_uses(src: &std::path::Path) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut all = Vec::new();
    files(src, &mut all);
    let module = |path: &std::path::Path| {
        let relative = path.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy().to_string();
        first.trim_end_matches(".rs").to_string()
    };
    let modules: std::collections::BTreeSet<String> =
        all.iter().map(|p| module(p)).filter(|m| m != "lib" && m != "main").collect();
    let mut uses: BTreeMap<String, std::collections::BTreeSet<String>> =
        modules.iter().map(|m| (m.clone(), Default::default())).collect();
    for path in &all {
        let from = module(path);
        let Some(used) = uses.get_mut(&from) else { continue };
        let text = std::fs::read_to_string(path).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group.split('}').next().unwrap_or_default().split(',').collect(),
                    None => vec![rest],
                };
                for name in names {
                    let name: String =
                        name.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if modules.contains(&name) && name != from {
                        used.insert(name);
                    }
                }
            }
        }
    }
    uses
}

/// A cycle among the modules, if any: each module's files form a layer over the ones it names.
fn module_cycle(uses: &BTreeMap<String, std::collections::BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        uses: &BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            return Some(path[start..].to_vec());
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for next in uses.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, uses, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = Default::default();
    uses.keys().find_map(|m| visit(m, uses, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_an_import_circle_among_its_modules() {
    let root = workspace_root();
    let mut sources: Vec<std::path::PathBuf> =
        std::fs::read_dir(root.join("services")).unwrap().flatten().map(|e| e.path().join("src")).collect();
    sources.extend([root.join("e2e/src"), root.join("bench/src")]);
    let circles: Vec<String> = sources
        .iter()
        .filter_map(|src| module_cycle(&module_uses(src)).map(|c| format!("{}: {}", src.display(), c.join(" -> "))))
        .collect();
    assert!(circles.is_empty(), "modules that import each other:\n{}", circles.join("\n"));
}

#[test]
fn the_circle_rule_catches_a_circle() {
    let uses: BTreeMap<String, std::collections::BTreeSet<String>> = [
        ("a".to_string(), ["b".to_string()].into()),
        ("b".to_string(), ["c".to_string()].into()),
        ("c".to_string(), ["a".to_string()].into()),
    ]
    .into();
    assert_eq!(module_cycle(&uses), Some(vec!["a".into(), "b".into(), "c".into()]));
    let layered: BTreeMap<String, std::collections::BTreeSet<String>> =
        [("a".to_string(), ["b".to_string()].into()), ("b".to_string(), Default::default())].into();
    assert_eq!(module_cycle(&layered), None);
}
