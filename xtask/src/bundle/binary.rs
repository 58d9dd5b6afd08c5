//! What a binary is, read from its bytes with goblin: format, architecture,
//! linkage, required glibc, and whether it carries symbols or debug info.

use goblin::elf::header::{EM_AARCH64, EM_X86_64};
use goblin::mach::cputype::{CPU_TYPE_ARM64, CPU_TYPE_X86_64};
use goblin::mach::Mach;
use goblin::Object;

use crate::targets::{Arch, Os, Target, ALLOWED_LIBRARIES, GLIBC_FLOOR};

/// Executable format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Linux and most Unixes.
    Elf,
    /// macOS.
    MachO,
}

impl Format {
    /// The manifest name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Elf => "elf",
            Format::MachO => "mach-o",
        }
    }
}

/// The facts `verify` checks about one binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryFacts {
    /// ELF or Mach-O.
    pub format: Format,
    /// The machine it runs on, if tether knows it.
    pub arch: Option<Arch>,
    /// Raw machine id, for messages about unknown ones.
    pub machine: String,
    /// The dynamic loader it asks for (`PT_INTERP`), if any.
    pub interpreter: Option<String>,
    /// Shared libraries it needs (`DT_NEEDED` / load commands).
    pub libraries: Vec<String>,
    /// Highest `GLIBC_x.y` among its versioned symbol needs.
    pub max_glibc: Option<(u32, u32)>,
    /// Sections that should not ship: `.symtab`, `.debug_*`, `__DWARF`.
    pub debug_sections: Vec<String>,
}

impl BinaryFacts {
    /// `static` when nothing is loaded at run time, else `dynamic`.
    pub fn linkage(&self) -> &'static str {
        if self.format == Format::Elf && self.interpreter.is_none() && self.libraries.is_empty() {
            "static"
        } else {
            "dynamic"
        }
    }
}

/// Reads the facts of a binary; `None` when the bytes are not an executable tether knows.
pub fn inspect(bytes: &[u8]) -> Option<BinaryFacts> {
    match Object::parse(bytes).ok()? {
        Object::Elf(elf) => {
            let arch = match elf.header.e_machine {
                EM_X86_64 => Some(Arch::X86_64),
                EM_AARCH64 => Some(Arch::Aarch64),
                _ => None,
            };
            let mut max_glibc = None;
            if let Some(verneed) = &elf.verneed {
                for need in verneed.iter() {
                    for aux in need.iter() {
                        let version = elf.dynstrtab.get_at(aux.vna_name).and_then(parse_glibc);
                        max_glibc = max_glibc.max(version);
                    }
                }
            }
            let debug_sections = elf
                .section_headers
                .iter()
                .filter_map(|sh| elf.shdr_strtab.get_at(sh.sh_name))
                .filter(|name| *name == ".symtab" || name.starts_with(".debug_"))
                .map(str::to_string)
                .collect();
            Some(BinaryFacts {
                format: Format::Elf,
                arch: if elf.is_64 { arch } else { None },
                machine: format!(
                    "ELF e_machine {}{}",
                    elf.header.e_machine,
                    if elf.is_64 { "" } else { " (32-bit)" }
                ),
                interpreter: elf.interpreter.map(str::to_string),
                libraries: elf.libraries.iter().map(|l| l.to_string()).collect(),
                max_glibc,
                debug_sections,
            })
        }
        Object::Mach(Mach::Binary(macho)) => {
            let arch = match macho.header.cputype {
                CPU_TYPE_ARM64 => Some(Arch::Aarch64),
                CPU_TYPE_X86_64 => Some(Arch::X86_64),
                _ => None,
            };
            let debug_sections = macho
                .segments
                .iter()
                .filter_map(|s| s.name().ok())
                .filter(|n| *n == "__DWARF")
                .map(str::to_string)
                .collect();
            Some(BinaryFacts {
                format: Format::MachO,
                arch,
                machine: format!("Mach-O cputype {:#x}", macho.header.cputype),
                interpreter: None,
                libraries: macho
                    .libs
                    .iter()
                    .filter(|l| **l != "self")
                    .map(|l| l.to_string())
                    .collect(),
                max_glibc: None,
                debug_sections,
            })
        }
        _ => None,
    }
}

fn parse_glibc(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("GLIBC_")?;
    let mut parts = rest.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

/// What is wrong with one binary for `target`.
pub fn problems(facts: &BinaryFacts, target: &Target) -> Vec<String> {
    let mut out = Vec::new();
    let want_format = match target.os {
        Os::Linux => Format::Elf,
        Os::Darwin => Format::MachO,
    };
    if facts.format != want_format {
        out.push(format!(
            "is {}, but {} needs {}",
            facts.format.name(),
            target.name,
            want_format.name()
        ));
        return out;
    }
    if facts.arch != Some(target.arch) {
        let found = facts
            .arch
            .map(|a| a.name().to_string())
            .unwrap_or_else(|| facts.machine.clone());
        out.push(format!(
            "built for {found}, but {} needs {}",
            target.name,
            target.arch.name()
        ));
    }
    if target.os == Os::Linux && facts.linkage() == "dynamic" {
        for lib in &facts.libraries {
            if !ALLOWED_LIBRARIES.contains(&lib.as_str()) {
                out.push(format!("needs {lib}, which is not part of glibc"));
            }
        }
        if let Some(found) = facts.max_glibc {
            if found > GLIBC_FLOOR {
                out.push(format!(
                    "needs GLIBC_{}.{}, above the floor GLIBC_{}.{}: it will not load on older Linux",
                    found.0, found.1, GLIBC_FLOOR.0, GLIBC_FLOOR.1
                ));
            }
        }
    }
    if !facts.debug_sections.is_empty() {
        out.push(format!(
            "not stripped: has {}",
            facts.debug_sections.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::fixture;

    #[test]
    fn static_x86_64_elf() {
        let facts = inspect(&fixture("static-x86_64")).expect("elf");
        assert_eq!(facts.arch, Some(Arch::X86_64));
        assert_eq!(facts.linkage(), "static");
        assert!(facts.debug_sections.is_empty());
    }

    #[test]
    fn aarch64_elf() {
        assert_eq!(
            inspect(&fixture("static-aarch64")).expect("elf").arch,
            Some(Arch::Aarch64)
        );
    }

    #[test]
    fn glibc_floor_is_read_from_the_bytes() {
        let facts = inspect(&fixture("dynamic-glibc-x86_64")).expect("elf");
        assert_eq!(facts.linkage(), "dynamic");
        assert!(facts.libraries.contains(&"libc.so.6".to_string()));
        assert!(facts.max_glibc >= Some((2, 34)), "{:?}", facts.max_glibc);
    }

    #[test]
    fn symbols_and_debug_info_are_found() {
        let facts = inspect(&fixture("unstripped-x86_64")).expect("elf");
        assert!(
            facts.debug_sections.iter().any(|s| s == ".symtab"),
            "{:?}",
            facts.debug_sections
        );
    }

    #[test]
    fn text_is_not_a_binary() {
        assert!(inspect(b"#!/bin/sh\necho hi\n").is_none());
    }

    #[test]
    fn glibc_versions_parse() {
        assert_eq!(parse_glibc("GLIBC_2.34"), Some((2, 34)));
        assert_eq!(parse_glibc("GLIBC_2.2.5"), Some((2, 2)));
        assert_eq!(parse_glibc("GCC_3.0"), None);
    }
}
