//! The launchd agent `tether host install` writes on macOS (contract section 10):
//! `~/Library/LaunchAgents/dev.tether.host.<org>.plist`, kept alive and run at load.

use std::path::Path;

use crate::OrgId;

/// The agent's label, also its file name without `.plist`.
pub fn label(org: &OrgId) -> String {
    format!("dev.tether.host.{org}")
}

/// The property list's text. The environment comes from `env` (names and values); the
/// plist is written `0600` because it may hold the credential.
pub fn plist(org: &OrgId, host: &Path, env: &[(String, String)], log: &Path) -> String {
    let mut environment = String::new();
    for (name, value) in env {
        environment.push_str(&format!(
            "      <key>{}</key>\n      <string>{}</string>\n",
            xml(name),
            xml(value)
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
  <dict>
    <key>Label</key>
    <string>{label}</string>
    <key>ProgramArguments</key>
    <array>
      <string>{host}</string>
      <string>--org</string>
      <string>{org}</string>
    </array>
    <key>EnvironmentVariables</key>
    <dict>
{environment}    </dict>
    <key>RunAtLoad</key>
    <true/>
    <key>KeepAlive</key>
    <dict>
      <key>SuccessfulExit</key>
      <false/>
    </dict>
    <key>StandardOutPath</key>
    <string>{log}</string>
    <key>StandardErrorPath</key>
    <string>{log}</string>
  </dict>
</plist>
"#,
        label = xml(&label(org)),
        host = xml(&host.to_string_lossy()),
        org = xml(org),
        log = xml(&log.to_string_lossy()),
    )
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_plist() {
        let text = plist(
            &OrgId::parse("org_a").expect("org"),
            Path::new("/opt/tether/lib/tether-host"),
            &[
                ("TETHER_API_URL".into(), "https://api.example.com".into()),
                ("TETHER_HOME".into(), "/Users/alice/.config/tether".into()),
            ],
            Path::new("/Users/alice/.config/tether/logs/host-org_a.log"),
        );
        insta::assert_snapshot!(text);
    }
}
