//! `tether completions <shell>` (contract section 11): scripts the shells accept and that
//! complete tether's own commands.

use std::process::Command;

use super::support::bin;

fn script(shell: &str) -> String {
    let out = Command::new(bin("tether"))
        .args(["completions", shell])
        .output()
        .expect("tether completions");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// What bash offers after `words` (the last one being completed), with the script loaded.
fn bash_completes(words: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("tether.bash");
    std::fs::write(&file, script("bash")).expect("write");
    let words: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let probe = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; _tether tether \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display(),
        words.join(" "),
        words.len() - 1
    );
    let out = Command::new("bash")
        .args(["-c", &probe])
        .output()
        .expect("bash");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_commands_and_subcommands() {
    let top = bash_completes(&["tether", "se"]);
    assert_eq!(top, ["self-update"], "{top:?}");
    let host = bash_completes(&["tether", "host", "st"]);
    assert!(
        host.contains(&"start".to_string()) && host.contains(&"status".to_string()),
        "{host:?}"
    );
    let shells = bash_completes(&["tether", "completions", ""]);
    assert!(shells.contains(&"fish".to_string()), "{shells:?}");
}

#[test]
fn zsh_and_fish_scripts_name_every_command() {
    let zsh = script("zsh");
    assert!(
        zsh.starts_with("#compdef tether"),
        "{}",
        &zsh[..40.min(zsh.len())]
    );
    let fish = script("fish");
    for command in ["auth", "host", "doctor", "self-update", "completions"] {
        assert!(zsh.contains(&format!("'{command}:")), "zsh lacks {command}");
        assert!(
            fish.contains(&format!("-a \"{command}\"")),
            "fish lacks {command}"
        );
    }
}

#[test]
fn an_unknown_shell_is_refused_with_the_choices() {
    let out = Command::new(bin("tether"))
        .args(["completions", "tcsh"])
        .output()
        .expect("tether completions");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bash, zsh, fish"), "{stderr}");
}
