//! `cargo xtask layers`: the crate-layer rules of `shared/DESIGN.md` section 2, checked against
//! `cargo metadata` and the member manifests.
//!
//! Rules (each violation is reported with the offending crate and edge):
//! 1. every workspace member is known to the layer table below (a new crate is a design change);
//! 2. a normal or build dependency between our crates points to a strictly lower layer
//!    (no upward and no same-layer edges); `dev` crates (testkit) are never a normal dependency;
//! 3. the solver crates know nothing of meshes or networks, and vice versa;
//! 4. `faer` is reached only through `neurohybrid-linalg` and `neurohybrid-autodiff`;
//! 5. every internal library crate is declared in `[workspace.dependencies]` (TOML itself
//!    forbids a second declaration) and members use `workspace = true` for it.
//!
//! Dev-dependencies may cross layers (a test may compare against anything); tool crates
//! (xtask, benches, validate) may depend on everything and nothing depends on them.

use serde_json::Value;
use std::fmt;

/// Where a crate sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// A library layer, L0 at the bottom.
    L(u8),
    /// Dev-only support (testkit, alloc-count): may depend on libraries, only ever a
    /// dev-dependency.
    Dev,
    /// Automation and measurement (xtask, benches, validate).
    Tool,
}

/// The table of DESIGN.md section 2. Keep it in step with the design document.
pub const TABLE: &[(&str, Layer)] = &[
    ("neurohybrid-autodiff", Layer::L(0)),
    ("neurohybrid-linalg", Layer::L(0)),
    ("neurohybrid-system", Layer::L(1)),
    ("neurohybrid-solve", Layer::L(2)),
    ("neurohybrid-mesh", Layer::L(2)),
    ("neurohybrid-nn", Layer::L(2)),
    ("neurohybrid-solve-explicit", Layer::L(3)),
    ("neurohybrid-solve-implicit", Layer::L(3)),
    ("neurohybrid-hybrid", Layer::L(4)),
    ("neurohybrid-glioma", Layer::L(5)),
    ("neurohybrid-alzheimer", Layer::L(5)),
    ("neurohybrid-stroke", Layer::L(5)),
    ("neurohybrid", Layer::L(6)),
    ("neurohybrid-cli", Layer::L(6)),
    ("neurohybrid-testkit", Layer::Dev),
    ("neurohybrid-alloc-count", Layer::Dev),
    ("xtask", Layer::Tool),
    ("neurohybrid-benches", Layer::Tool),
    ("neurohybrid-validate", Layer::Tool),
];

const SOLVERS: &[&str] =
    &["neurohybrid-solve", "neurohybrid-solve-explicit", "neurohybrid-solve-implicit"];
const DISCRETIZERS: &[&str] = &["neurohybrid-mesh", "neurohybrid-nn"];
const FAER_OWNERS: &[&str] = &["neurohybrid-linalg", "neurohybrid-autodiff"];

fn layer_of(name: &str) -> Option<Layer> {
    TABLE.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A workspace member as the checker sees it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Package name.
    pub name: String,
    /// (dependency name, kind) with kind `None` for normal, `Some("dev")`, `Some("build")`.
    pub deps: Vec<(String, Option<String>)>,
    /// The member's manifest, parsed.
    pub manifest: toml::Table,
}

/// Reads members out of `cargo metadata --no-deps` JSON plus their manifests.
pub fn members_from_metadata(meta: &Value) -> Result<Vec<Member>, String> {
    let packages = meta["packages"].as_array().ok_or("cargo metadata: no `packages` array")?;
    let mut out = Vec::new();
    for pkg in packages {
        let name = pkg["name"].as_str().ok_or("package without a name")?.to_owned();
        let manifest_path = pkg["manifest_path"].as_str().ok_or("package without manifest_path")?;
        let text = std::fs::read_to_string(manifest_path)
            .map_err(|e| format!("cannot read {manifest_path}: {e}"))?;
        let manifest: toml::Table =
            text.parse().map_err(|e| format!("cannot parse {manifest_path}: {e}"))?;
        let deps = pkg["dependencies"]
            .as_array()
            .map(|ds| {
                ds.iter()
                    .filter_map(|d| {
                        let n = d["name"].as_str()?.to_owned();
                        Some((n, d["kind"].as_str().map(str::to_owned)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Member { name, deps, manifest });
    }
    Ok(out)
}

fn is_internal(name: &str) -> bool {
    layer_of(name).is_some()
}

/// Checks every rule; an empty result means the layering holds.
pub fn check(members: &[Member], workspace_deps: &toml::Table) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut bad = |s: String| v.push(Violation(s));

    for m in members {
        let Some(layer) = layer_of(&m.name) else {
            bad(format!(
                "crate `{}` is not in the layer table (xtask/src/layers.rs, DESIGN.md section 2): \
                 a new crate is a design change",
                m.name
            ));
            continue;
        };
        if layer != Layer::Tool
            && !workspace_deps.contains_key(&m.name)
            && m.name != "neurohybrid-cli"
        {
            bad(format!("crate `{}` is not declared in [workspace.dependencies]", m.name));
        }
        for (dep, kind) in &m.deps {
            let normal = kind.as_deref() != Some("dev");
            if dep == "faer"
                && normal
                && !FAER_OWNERS.contains(&m.name.as_str())
                && layer != Layer::Tool
            {
                bad(format!(
                    "`{}` depends on faer directly; factorizations are reached only through \
                     neurohybrid-linalg and neurohybrid-autodiff",
                    m.name
                ));
            }
            let Some(dep_layer) = layer_of(dep) else { continue };
            if !normal {
                continue;
            }
            match (layer, dep_layer) {
                (_, Layer::Tool) => bad(format!("`{}` depends on the tool crate `{dep}`", m.name)),
                (Layer::L(_), Layer::Dev) => bad(format!(
                    "`{}` has `{dep}` as a normal dependency; it may only be a dev-dependency",
                    m.name
                )),
                (Layer::L(a), Layer::L(b)) if b >= a => bad(format!(
                    "`{}` (L{a}) depends on `{dep}` (L{b}): {} edge",
                    m.name,
                    if a == b { "same-layer" } else { "upward" }
                )),
                _ => {}
            }
            let forbidden = (SOLVERS.contains(&m.name.as_str())
                && DISCRETIZERS.contains(&dep.as_str()))
                || (DISCRETIZERS.contains(&m.name.as_str()) && SOLVERS.contains(&dep.as_str()));
            if forbidden {
                bad(format!(
                    "`{}` depends on `{dep}`: solvers know nothing of meshes or networks, and \
                     meshes and networks know nothing of solvers",
                    m.name
                ));
            }
        }
        for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
            let Some(deps) = m.manifest.get(table).and_then(|t| t.as_table()) else { continue };
            for (dep, spec) in deps {
                if !is_internal(dep) {
                    continue;
                }
                let uses_ws =
                    spec.as_table().and_then(|t| t.get("workspace")).and_then(|w| w.as_bool())
                        == Some(true);
                if !uses_ws {
                    bad(format!(
                        "`{}` declares `{dep}` in [{table}] without `workspace = true`",
                        m.name
                    ));
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, deps: &[(&str, Option<&str>)]) -> Member {
        let mut manifest = toml::Table::new();
        let mut table = toml::Table::new();
        let mut dev = toml::Table::new();
        for (d, kind) in deps {
            let mut spec = toml::Table::new();
            spec.insert("workspace".into(), toml::Value::Boolean(true));
            let target = if *kind == Some("dev") { &mut dev } else { &mut table };
            target.insert((*d).into(), toml::Value::Table(spec));
        }
        manifest.insert("dependencies".into(), toml::Value::Table(table));
        manifest.insert("dev-dependencies".into(), toml::Value::Table(dev));
        Member {
            name: name.into(),
            deps: deps.iter().map(|(d, k)| ((*d).into(), k.map(str::to_owned))).collect(),
            manifest,
        }
    }

    fn ws(names: &[&str]) -> toml::Table {
        names.iter().map(|n| ((*n).to_string(), toml::Value::Table(toml::Table::new()))).collect()
    }

    #[test]
    fn downward_edges_pass() {
        let ms = [
            member("neurohybrid-autodiff", &[("faer", None)]),
            member("neurohybrid-system", &[("neurohybrid-autodiff", None)]),
            member(
                "neurohybrid-solve",
                &[("neurohybrid-system", None), ("neurohybrid-testkit", Some("dev"))],
            ),
        ];
        let w = ws(&["neurohybrid-autodiff", "neurohybrid-system", "neurohybrid-solve"]);
        assert_eq!(check(&ms, &w), vec![]);
    }

    #[test]
    fn upward_edge_fails() {
        let ms = [member("neurohybrid-autodiff", &[("neurohybrid-system", None)])];
        let v = check(&ms, &ws(&["neurohybrid-autodiff"]));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].0.contains("upward"), "{v:?}");
    }

    #[test]
    fn same_layer_edge_fails() {
        let ms = [member("neurohybrid-glioma", &[("neurohybrid-stroke", None)])];
        let v = check(&ms, &ws(&["neurohybrid-glioma"]));
        assert!(v.iter().any(|x| x.0.contains("same-layer")), "{v:?}");
    }

    #[test]
    fn solver_to_mesh_edge_fails_even_though_downward() {
        let ms = [member("neurohybrid-solve-explicit", &[("neurohybrid-mesh", None)])];
        let v = check(&ms, &ws(&["neurohybrid-solve-explicit"]));
        assert!(v.iter().any(|x| x.0.contains("know nothing")), "{v:?}");
    }

    #[test]
    fn testkit_as_normal_dependency_fails() {
        let ms = [member("neurohybrid-solve", &[("neurohybrid-testkit", None)])];
        assert!(!check(&ms, &ws(&["neurohybrid-solve"])).is_empty());
    }

    #[test]
    fn faer_outside_linalg_fails() {
        let ms = [member("neurohybrid-mesh", &[("faer", None)])];
        assert!(check(&ms, &ws(&["neurohybrid-mesh"])).iter().any(|x| x.0.contains("faer")));
    }

    #[test]
    fn unknown_crate_and_missing_workspace_flag_fail() {
        let mut m = member("neurohybrid-system", &[]);
        let mut deps = toml::Table::new();
        deps.insert("neurohybrid-autodiff".into(), toml::Value::String("0.1".into()));
        m.manifest.insert("dependencies".into(), toml::Value::Table(deps));
        m.deps.push(("neurohybrid-autodiff".into(), None));
        let ms = [m, member("neurohybrid-surprise", &[])];
        let v = check(&ms, &ws(&["neurohybrid-system"]));
        assert!(v.iter().any(|x| x.0.contains("workspace = true")), "{v:?}");
        assert!(v.iter().any(|x| x.0.contains("not in the layer table")), "{v:?}");
    }

    /// The real workspace obeys its own rules (runs `cargo metadata`).
    #[test]
    fn this_workspace_passes() {
        let v = crate::run_layers_check().expect("cargo metadata runs");
        assert!(v.is_empty(), "layer violations: {v:#?}");
    }

    /// Adding an upward edge to the real workspace's bottom crate makes the check fail.
    #[test]
    fn this_workspace_fails_with_an_injected_upward_edge() {
        let (mut members, ws_deps) = crate::workspace_members().expect("cargo metadata runs");
        let autodiff = members
            .iter_mut()
            .find(|m| m.name == "neurohybrid-autodiff")
            .expect("the autodiff crate is a member");
        autodiff.deps.push(("neurohybrid-hybrid".into(), None));
        let v = check(&members, &ws_deps);
        assert!(
            v.iter().any(|x| x.0.contains("neurohybrid-autodiff") && x.0.contains("upward")),
            "{v:?}"
        );
    }
}
