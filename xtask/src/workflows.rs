//! Checks of `.github/workflows/` and the README, run with the tests: every workflow
//! parses, and every `cargo xtask …` they run is a command line this xtask accepts — so a
//! renamed subcommand breaks the tests here, not a release on GitHub.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Parser;
use yaml_rust2::{Yaml, YamlLoader};

use crate::flags::{project_root, Xtask};
use crate::targets::TARGETS;

fn workflow_paths() -> Vec<PathBuf> {
    let dir = project_root().join(".github/workflows");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    paths.sort();
    paths
}

fn load(path: &PathBuf) -> Yaml {
    let text = std::fs::read_to_string(path).expect("read workflow");
    let mut docs =
        YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}: one YAML document", path.display());
    docs.remove(0)
}

/// `(job, matrix rows, run script)` for every step with `run:`.
fn run_steps(doc: &Yaml) -> Vec<(String, Vec<Yaml>, String)> {
    let mut out = Vec::new();
    let Some(jobs) = doc["jobs"].as_hash() else {
        return out;
    };
    for (name, job) in jobs {
        let matrix = job["strategy"]["matrix"]["include"]
            .as_vec()
            .cloned()
            .unwrap_or_default();
        for step in job["steps"].as_vec().into_iter().flatten() {
            if let Some(run) = step["run"].as_str() {
                out.push((
                    name.as_str().unwrap_or("?").to_string(),
                    matrix.clone(),
                    run.to_string(),
                ));
            }
        }
    }
    out
}

/// Each `cargo xtask …` command in a script, with `${{ matrix.x }}` filled in from every matrix row.
fn xtask_commands(matrix: &[Yaml], script: &str) -> Vec<String> {
    let rows: Vec<Option<&Yaml>> = if matrix.is_empty() {
        vec![None]
    } else {
        matrix.iter().map(Some).collect()
    };
    let mut out = Vec::new();
    for line in script
        .lines()
        .flat_map(|l| l.split("&&"))
        .flat_map(|l| l.split(';'))
    {
        let line = line.trim();
        let Some(at) = line.find("cargo xtask") else {
            continue;
        };
        for row in &rows {
            let mut command = line[at..].to_string();
            while let Some(start) = command.find("${{") {
                let end = command[start..]
                    .find("}}")
                    .map(|e| start + e + 2)
                    .expect("closed expression");
                let expr = command[start + 3..end - 2].trim();
                let value = expr
                    .strip_prefix("matrix.")
                    .and_then(|key| row.and_then(|r| r[key].as_str()))
                    .unwrap_or("expr")
                    .to_string();
                command.replace_range(start..end, &value);
            }
            out.push(command);
        }
    }
    out
}

fn assert_xtask_accepts(command: &str, origin: &str) {
    let words =
        shlex::split(command).unwrap_or_else(|| panic!("{origin}: cannot split {command:?}"));
    let args = std::iter::once("cargo xtask".to_string()).chain(words.into_iter().skip(2));
    if let Err(e) = Xtask::try_parse_from(args) {
        panic!("{origin}: `{command}` is not a command this xtask accepts:\n{e}");
    }
}

#[test]
fn every_workflow_parses_with_jobs_and_least_privilege() {
    let paths = workflow_paths();
    let names: BTreeSet<_> = paths
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains("ci.yml") && names.contains("release.yml"),
        "{names:?}"
    );
    for path in &paths {
        let doc = load(path);
        let jobs = doc["jobs"].as_hash().expect("jobs");
        assert!(!jobs.is_empty(), "{}: no jobs", path.display());
        assert!(
            doc["permissions"].as_hash().is_some_and(|p| p.is_empty()),
            "{}: the workflow grants nothing (`permissions: {{}}`); each job asks for its own",
            path.display()
        );
        for (name, job) in jobs {
            let name = name.as_str().unwrap_or("?");
            let permissions = job["permissions"]
                .as_hash()
                .unwrap_or_else(|| panic!("{} job {name}: no permissions", path.display()));
            for (scope, level) in permissions {
                let (scope, level) = (scope.as_str().unwrap_or("?"), level.as_str().unwrap_or("?"));
                // Only publish writes: the release (contents) and its attestations (which
                // need an OIDC token).
                let publish_may = ["contents", "id-token", "attestations"];
                let allowed = level == "read"
                    || name == "publish" && publish_may.contains(&scope) && level == "write";
                assert!(
                    allowed,
                    "{} job {name}: `{scope}: {level}` is more than it needs",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn every_checkout_drops_its_credentials_and_releases_use_no_cache() {
    for path in workflow_paths() {
        let doc = load(&path);
        for (name, job) in doc["jobs"].as_hash().into_iter().flatten() {
            for step in job["steps"].as_vec().into_iter().flatten() {
                let uses = step["uses"].as_str().unwrap_or("");
                if uses.starts_with("actions/checkout@") {
                    assert_eq!(
                        step["with"]["persist-credentials"].as_bool(),
                        Some(false),
                        "{} job {:?}: checkout keeps the token on disk",
                        path.display(),
                        name.as_str()
                    );
                }
                if path.ends_with("release.yml") {
                    assert!(
                        !uses.contains("cache"),
                        "release job {:?} uses a build cache ({uses}): a branch could poison it",
                        name.as_str()
                    );
                }
            }
        }
    }
}

#[test]
fn every_xtask_command_in_the_workflows_exists() {
    let mut seen = 0;
    for path in workflow_paths() {
        for (job, matrix, script) in run_steps(&load(&path)) {
            for command in xtask_commands(&matrix, &script) {
                assert_xtask_accepts(&command, &format!("{} job {job}", path.display()));
                seen += 1;
            }
        }
    }
    assert!(
        seen >= 4,
        "expected the workflows to run xtask commands, found {seen}"
    );
}

#[test]
fn actions_are_pinned_to_a_commit_with_the_version_beside_it() {
    for path in workflow_paths() {
        let text = std::fs::read_to_string(&path).expect("read");
        for line in text.lines().filter(|l| {
            l.trim_start().starts_with("- uses:") || l.trim_start().starts_with("uses:")
        }) {
            let after_at = line.split('@').nth(1).unwrap_or("");
            let (reference, comment) = after_at.split_once('#').unwrap_or((after_at, ""));
            let reference = reference.trim();
            let sha = reference.len() == 40 && reference.chars().all(|c| c.is_ascii_hexdigit());
            let version = comment.trim();
            assert!(
                sha && version.starts_with('v') && version.matches('.').count() == 2,
                "{}: `{}` is not pinned to a commit SHA with `# vX.Y.Z` after it",
                path.display(),
                line.trim()
            );
        }
    }
}

#[test]
fn the_release_builds_and_gathers_every_target() {
    let path = project_root().join(".github/workflows/release.yml");
    let doc = load(&path);
    let built: BTreeSet<_> = doc["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_vec()
        .expect("matrix")
        .iter()
        .filter_map(|row| row["target"].as_str())
        .collect();
    let all: BTreeSet<_> = TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(built, all);
    let gather = run_steps(&doc)
        .into_iter()
        .filter(|(job, _, _)| job == "publish")
        .map(|(_, _, s)| s)
        .collect::<String>();
    for target in TARGETS {
        assert!(
            gather.contains(target.name),
            "publish does not check for {}",
            target.name
        );
    }
    assert!(gather.contains("SHA256SUMS"));
    // Signed with the secret, checked with the standard tool, every signed file uploaded.
    assert!(gather.contains("cargo xtask sign"), "publish does not sign");
    assert!(gather.contains("minisign -Vm dist/SHA256SUMS -p keys/release.pub"));
    for uploaded in [
        "dist/SHA256SUMS.minisig",
        "dist/latest.json ",
        "dist/latest.json.minisig",
        "dist/install.sh",
    ] {
        assert!(
            gather.contains(uploaded),
            "publish does not upload {uploaded}"
        );
    }
    let build = run_steps(&doc)
        .into_iter()
        .filter(|(job, _, _)| job == "build")
        .map(|(_, _, s)| s)
        .collect::<String>();
    assert!(
        build.contains("cargo xtask verify --release"),
        "the build job must refuse a test build"
    );
    let attests = doc["jobs"]["publish"]["steps"]
        .as_vec()
        .into_iter()
        .flatten()
        .any(|step| {
            step["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/attest-build-provenance@"))
        });
    assert!(attests, "publish does not attest the build's provenance");
}

#[test]
fn the_readme_opens_with_two_commands_this_xtask_accepts() {
    let readme = std::fs::read_to_string(project_root().join("README.md")).expect("README.md");
    let block: Vec<&str> = readme
        .split("```sh")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```sh block at the top")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(block.len(), 2, "exactly two set-up commands: {block:?}");
    for line in block {
        let command = line.split('#').next().expect("command");
        for xtask in xtask_commands(&[], command) {
            assert_xtask_accepts(&xtask, "README.md");
        }
    }
}
