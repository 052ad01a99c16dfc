//! OpenSSL found by symbol: which of `SSL_write`, `SSL_write_ex`,
//! `SSL_read` and `SSL_read_ex` an ELF file defines, so the uprobes go on
//! the subset it has (1.0.2 has no `_ex` forms; 1.1.1 and 3.x have all
//! four), in a shared libssl or in an executable that links it statically.
use std::path::Path;

use object::{Object, ObjectSymbol};

/// The functions the OpenSSL uprobes can sit on, in attach order.
pub const FUNCTIONS: [&str; 4] = ["SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex"];

/// What a file holds of OpenSSL.
#[derive(Debug, PartialEq, Eq)]
pub enum OpenSsl {
    /// The probe-able functions it defines (a non-empty subset of
    /// [`FUNCTIONS`], in their order).
    Symbols(Vec<&'static str>),
    /// OpenSSL's texts are in it but no symbol names it, neither defined
    /// nor imported from a libssl: a stripped static build, which nothing
    /// can probe by name.
    Stripped,
    /// Neither.
    Absent,
}

/// The subset of [`FUNCTIONS`] that `defined` says exist. Both directions
/// are needed to read a connection: with only one of them it is not
/// counted as OpenSSL (a program that defines its own `SSL_read`).
pub fn select(defined: impl Fn(&str) -> bool) -> Vec<&'static str> {
    let found: Vec<&'static str> = FUNCTIONS.into_iter().filter(|f| defined(f)).collect();
    let writes = found.iter().any(|f| f.starts_with("SSL_write"));
    let reads = found.iter().any(|f| f.starts_with("SSL_read"));
    if writes && reads { found } else { Vec::new() }
}

/// What `path` holds of OpenSSL. Only defined symbols count: a program
/// that calls a shared libssl has `SSL_write` too, undefined, in its
/// dynamic table. `look_for_stripped`: also search the bytes for
/// OpenSSL's texts when no symbol is found.
pub fn inspect(path: &Path, look_for_stripped: bool) -> OpenSsl {
    let Ok(data) = std::fs::read(path) else {
        return OpenSsl::Absent;
    };
    let Ok(file) = object::File::parse(&*data) else {
        return OpenSsl::Absent;
    };
    let (mut defined, mut imported): (Vec<&str>, bool) = (Vec::new(), false);
    for sym in file.dynamic_symbols().chain(file.symbols()) {
        let Ok(name) = sym.name() else { continue };
        if FUNCTIONS.contains(&name) {
            if sym.is_definition() {
                defined.push(name);
            } else {
                imported = true;
            }
        }
    }
    let found = select(|f| defined.contains(&f));
    if !found.is_empty() {
        OpenSsl::Symbols(found)
    } else if look_for_stripped && !imported && has_openssl_marker(&data) {
        // A program that imports SSL_write (nginx) names OpenSSL's version
        // too, for `-V`; its libssl is probed as a file of its own.
        OpenSsl::Stripped
    } else {
        OpenSsl::Absent
    }
}

/// Whether `data` holds a text that only OpenSSL's libcrypto carries:
/// its version (`OpenSSL 3.`, `OpenSSL 1.`, when `OpenSSL_version` is
/// linked in) or the name of its configuration file, which a stripped
/// static build keeps in its rodata.
fn has_openssl_marker(data: &[u8]) -> bool {
    const VERSION: &[u8] = b"OpenSSL ";
    const CONFIG: &[u8] = b"openssl.cnf";
    data.windows(CONFIG.len()).any(|w| {
        w == CONFIG
            || (w.starts_with(VERSION)
                && matches!(w[VERSION.len()], b'1' | b'3')
                && w[VERSION.len() + 1] == b'.')
    })
}

/// How the probed subset reads in a note: `SSL_read/SSL_write` when the
/// `_ex` forms are there too, otherwise the names.
pub fn describe(functions: &[&str]) -> String {
    if functions.len() == FUNCTIONS.len() {
        "SSL_read/SSL_write".to_string()
    } else {
        format!(
            "{} (no _ex forms: OpenSSL before 1.1.1)",
            functions.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_3_and_1_1_1_get_all_four() {
        assert_eq!(select(|_| true), FUNCTIONS);
    }

    #[test]
    fn openssl_1_0_2_gets_the_two_it_has() {
        let v102 = ["SSL_read", "SSL_write", "SSL_CTX_new"];
        assert_eq!(select(|f| v102.contains(&f)), ["SSL_write", "SSL_read"]);
    }

    #[test]
    fn one_direction_alone_is_not_openssl() {
        assert!(select(|f| f == "SSL_read").is_empty());
        assert!(select(|f| f.starts_with("SSL_write")).is_empty());
        assert!(select(|_| false).is_empty());
    }

    #[test]
    fn ex_forms_alone_are_enough() {
        let ex = ["SSL_read_ex", "SSL_write_ex"];
        assert_eq!(select(|f| ex.contains(&f)), ["SSL_write_ex", "SSL_read_ex"]);
    }

    #[test]
    fn the_system_libssl_defines_all_four_and_curl_none() {
        let lib = Path::new("/usr/lib/x86_64-linux-gnu/libssl.so.3");
        if lib.exists() {
            assert_eq!(inspect(lib, false), OpenSsl::Symbols(FUNCTIONS.to_vec()));
        }
        // curl calls SSL_write through libssl: undefined symbols only.
        // nginx too, and it carries OpenSSL's version text (for -V): still
        // not a stripped static build.
        for program in ["/usr/bin/curl", "/usr/sbin/nginx"] {
            let program = Path::new(program);
            if program.exists() {
                assert_eq!(inspect(program, true), OpenSsl::Absent, "{program:?}");
            }
        }
    }

    #[test]
    fn a_version_or_config_name_marks_a_stripped_build() {
        assert!(has_openssl_marker(b"\0OpenSSL 3.0.19 27 Jan 2026\0"));
        assert!(has_openssl_marker(b"OpenSSL 1.1.1w   "));
        assert!(has_openssl_marker(b"\0openssl.cnf\0"));
        assert!(!has_openssl_marker(b"OpenSSL_version\0"));
        assert!(!has_openssl_marker(b"OpenSSL 0.9.8 ..."));
    }

    #[test]
    fn notes_name_a_partial_subset() {
        assert_eq!(describe(&FUNCTIONS), "SSL_read/SSL_write");
        assert_eq!(
            describe(&["SSL_write", "SSL_read"]),
            "SSL_write, SSL_read (no _ex forms: OpenSSL before 1.1.1)"
        );
    }
}
