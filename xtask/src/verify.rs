//! `cargo xtask verify <file>…`: each release archive checked from its bytes
//! (`bundle::verify`), each package against the archive beside it (`packages::check`).

use crate::bundle::verify;
use crate::packages::check;

/// `cargo xtask verify`: verifies each archive or package (against the archive beside
/// it), prints problems one per line, fails if any.
pub fn run(archives: &[std::path::PathBuf], release: bool) -> anyhow::Result<()> {
    let official = if release {
        Some(crate::bundle::release_key::official()?)
    } else {
        None
    };
    let mut failed = 0;
    for path in archives {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if check::format_of(&name).is_some() {
            let problems = check::beside_archive(path)?;
            if problems.is_empty() {
                println!(
                    "{}: ok (the archive's binaries, the file list and the metadata of contract section 11)",
                    path.display()
                );
            } else {
                failed += 1;
                for line in &problems {
                    eprintln!("{line}");
                }
            }
            continue;
        }
        let mut report = verify::verify_path(path)?;
        if let Some(key) = &official {
            let bytes = std::fs::read(path)?;
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let problems = crate::bundle::release_key::release_problems(&name, &bytes, key);
            report.problems.extend(problems);
        }
        if report.problems.is_empty() {
            println!("{}: ok ({})", path.display(), verify::mib(report.size));
            verify::print_table(&report);
        } else {
            failed += 1;
            for line in &report.problems {
                eprintln!("{line}");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} archive(s) failed verification",
            archives.len()
        );
    }
    Ok(())
}
